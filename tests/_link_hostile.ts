// What the hostile-package tests of `link` share: packing and installing a package made by
// a callback, a snapshot of a tree (lstat, content hashes) to prove nothing outside the store
// changed, the real pkg-config and cmake run on generated files, and which of them are here.
import { join } from "node:path";
import { assert, assertStringIncludes } from "./_assert.ts";
import { loadImage, packDirectory, Store } from "../mod.ts";
import { have, run, sha256 } from "./_helpers.ts";

export const hasPkgConfig = await have("pkg-config");
export const hasCmake = await have("cmake");
export const hasCc = await have("cc");

// ---------- helpers ----------

/** Every entry under `dir` (lstat: symlinks are not followed), with content hashes. */
export async function snapshot(dir: string, skip: (rel: string) => boolean = () => false) {
  const out: [string, string][] = [];
  const walk = async (abs: string, rel: string) => {
    for await (const e of Deno.readDir(abs)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (skip(r)) continue;
      const p = join(abs, e.name);
      const st = await Deno.lstat(p);
      if (st.isSymlink) out.push([r, `symlink -> ${await Deno.readLink(p)}`]);
      else if (st.isDirectory) {
        out.push([r, "dir"]);
        await walk(p, r);
      } else {
        out.push([
          r,
          `file ${st.mode} ${st.mtime?.getTime()} ${await sha256(await Deno.readFile(p))}`,
        ]);
      }
    }
  };
  await walk(dir, "");
  return out.sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
}

/** Pack a package directory filled by `fill` into an oci-archive. */
export async function pack(
  base: string,
  image: string,
  fill: (dir: string) => Promise<void>,
  annotations?: Record<string, string>,
): Promise<string> {
  const id = crypto.randomUUID().slice(0, 8);
  const src = join(base, "src", id);
  await Deno.mkdir(src, { recursive: true });
  await fill(src);
  const archive = join(base, "src", `${id}.tar`);
  await packDirectory(src, archive, { name: image, annotations });
  return archive;
}

/** Load an archive into a store rooted at `root`; returns the store and image dir. */
export async function install(archive: string, root: string, image: string) {
  const store = new Store(root);
  await loadImage(archive, { store });
  return { store, dir: store.imageDir(image) };
}

/** A package with lib/libfoo.a (+ lib/libfoo.so) and include/foo.h (fake contents). */
export function fooPackage(extra?: (dir: string) => Promise<void>) {
  return async (dir: string) => {
    await Deno.mkdir(join(dir, "lib"));
    await Deno.mkdir(join(dir, "include"));
    await Deno.writeFile(join(dir, "lib", "libfoo.a"), new Uint8Array([1, 2, 3]));
    await Deno.writeFile(join(dir, "lib", "libfoo.so"), new Uint8Array([4, 5, 6]));
    await Deno.writeTextFile(join(dir, "include", "foo.h"), "int foo(void);\n");
    if (extra) await extra(dir);
  };
}

/** Outside-the-store fixtures that a hostile package would point at. */
export async function outsideFixtures(base: string) {
  const outside = join(base, "outside");
  await Deno.mkdir(join(outside, "dir"), { recursive: true });
  await Deno.writeTextFile(join(outside, "victim.txt"), "precious\n");
  await Deno.writeTextFile(join(outside, "dir", "keep.txt"), "keep\n");
  await Deno.writeFile(join(outside, "libevil.so"), new Uint8Array([9]));
  await Deno.mkdir(join(outside, "libdir"));
  await Deno.writeFile(join(outside, "libdir", "libsys.a"), new Uint8Array([9]));
  return outside;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

export async function pkgConfig(searchPath: string, ...args: string[]) {
  return await run("pkg-config", args, undefined, { PKG_CONFIG_PATH: searchPath });
}

/** Split pkgconf's output into arguments (it escapes with backslashes). */
export function splitFlags(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  let any = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "\\" && i + 1 < s.length) {
      cur += s[++i];
      any = true;
    } else if (c === " " || c === "\n") {
      if (any) out.push(cur);
      cur = "";
      any = false;
    } else {
      cur += c;
      any = true;
    }
  }
  if (any) out.push(cur);
  return out;
}

/**
 * Configure a CMake project (no languages) that runs find_package(<pkg>)
 * with CMAKE_PREFIX_PATH=<prefix> and reports what it found.
 */
export async function cmakeFind(
  scratch: string,
  prefix: string,
  pkg: string,
  lib = pkg,
  version = "",
) {
  const proj = join(scratch, `cmake-${crypto.randomUUID().slice(0, 8)}`);
  await Deno.mkdir(proj, { recursive: true });
  await Deno.writeTextFile(
    join(proj, "CMakeLists.txt"),
    [
      "cmake_minimum_required(VERSION 3.16)",
      "project(probe NONE)",
      `find_package(${pkg} ${version} REQUIRED)`,
      `get_target_property(_loc ${pkg}::${lib} IMPORTED_LOCATION)`,
      `get_target_property(_inc ${pkg}::${lib} INTERFACE_INCLUDE_DIRECTORIES)`,
      `file(WRITE "\${CMAKE_BINARY_DIR}/found.txt" "version=\${${pkg}_VERSION}\\ninclude=\${${pkg}_INCLUDE_DIRS}\\nlocation=\${_loc}\\ntarget_include=\${_inc}\\n")`,
      "",
    ].join("\n"),
  );
  const r = await run("cmake", [
    "-S",
    proj,
    "-B",
    join(proj, "b"),
    `-DCMAKE_PREFIX_PATH=${prefix}`,
  ]);
  let found: Record<string, string> = {};
  try {
    const text = await Deno.readTextFile(join(proj, "b", "found.txt"));
    found = Object.fromEntries(
      text.trimEnd().split("\n").map((
        l,
      ) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
  } catch { /* configure failed */ }
  return { ...r, found };
}

export function oneLineError(e: Error, image: string): void {
  assert(!e.message.includes("\n"), e.message);
  assertStringIncludes(e.message, `image '${image}'`);
}

export const LINUX = { os: "linux", architecture: "amd64" };
