/**
 * A pkg-config `.pc` file for a linked package. Paths are escaped for
 * pkg-config's argument splitting (`\`, space, `"`, `'`, `#` get a
 * backslash); paths holding control characters, `${` or `$$` (which
 * pkg-config and pkgconf read differently) are refused; the description is
 * made one line and escaped.
 *
 * @module
 */
import { join } from "../util/path.ts";
import type { LinkedLibrary, LinkResult } from "./link.ts";
import {
  below,
  checkLibrary,
  checkName,
  commentText,
  CONTROL,
  oneLineText,
  packageName,
  rpathDirs,
  unsafe,
} from "./link_checks.ts";
import { type ConfigOptions, packageInfo, writeGenerated } from "./link_config.ts";

/**
 * A path for a `.pc` value: backslash before `\\`, space, `"`, `'` and `#`
 * (pkg-config splits Libs/Cflags like a shell and starts comments at `#`);
 * refused when it holds a control character, `${` or `$$` (a variable or an
 * escape that pkg-config and pkgconf read differently).
 */
function pcPath(r: LinkResult, out: string, what: string, p: string): string {
  if (CONTROL.test(p)) throw unsafe(r, out, what, p, "it holds a control character");
  if (/\$[{$]/.test(p)) {
    throw unsafe(r, out, what, p, "it holds '${' or '$$', which pkg-config would expand");
  }
  return p.replace(/[\\ "'#]/g, "\\$&");
}

/** Refuse an image directory that cannot be an entry of PKG_CONFIG_PATH. */
function checkPkgConfigDir(r: LinkResult, out: string): void {
  const separator = Deno.build.os === "windows" ? ";" : ":";
  if (r.dir.includes(separator)) {
    throw unsafe(
      r,
      out,
      "image directory",
      r.dir,
      `it holds '${separator}', which separates PKG_CONFIG_PATH entries; use a data dir (OCIPKG_DATA_DIR) without it`,
    );
  }
}

/** Free text for a `.pc` field: one line, `\\` and `#` escaped, no `${`/`$$`. */
function pcText(s: string): string {
  return oneLineText(s).replace(/\\/g, "\\\\").replace(/#/g, "\\#").replace(/\$(?=[{$])/g, "$ ");
}

/**
 * Write `<dir>/pkgconfig/<name>.pc` for a linked package. Paths are escaped
 * for pkg-config, the description is one line, and the version is written
 * only when it is plain (see `link_checks.ts`). The file is created
 * inside the image directory without following symlinks.
 *
 * @param r what {@link linkPackage} returned
 * @param options package name, store
 * @returns the `.pc` path and the `PKG_CONFIG_PATH` entry to use
 * @throws {UsageError} for an invalid package name
 * @throws {OcipkgError} when a path cannot be written into a `.pc` file, or
 *   `pkgconfig/` or the `.pc` file in the package is a symlink or not a
 *   directory / regular file
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linkPackage, loadImage, packDirectory, Store } from "@ocipkg/cli";
 * import { writePkgConfig } from "@ocipkg/cli/native";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg/include`, { recursive: true });
 * await Deno.writeTextFile(`${tmp}/pkg/libfoo.a`, "!<arch>\n");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/libfoo:1.2" });
 * const store = new Store(`${tmp}/store`);
 * await loadImage(`${tmp}/foo.tar`, { store });
 * const pc = await writePkgConfig(await linkPackage("example.com/libfoo:1.2", { store }));
 * // PKG_CONFIG_PATH=<pc.searchPath> pkg-config --cflags --libs libfoo
 * const lines = (await Deno.readTextFile(pc.path)).split("\n");
 * assert.ok(lines.includes("Version: 1.2")); // from the tag
 * assert.ok(lines.includes("Libs: -L${prefix} -lfoo"));
 * assert.ok(lines.includes("Cflags: -I${prefix}/include"));
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function writePkgConfig(
  r: LinkResult,
  options: ConfigOptions = {},
): Promise<{ path: string; searchPath: string; name: string }> {
  const name = checkName(options.name ?? packageName(r.image));
  const file = `${name}.pc`;
  const info = await packageInfo(r, options.store);
  const prefix = pcPath(
    r,
    file,
    "image directory",
    Deno.build.os === "windows" ? r.dir.replaceAll("\\", "/") : r.dir,
  );
  checkPkgConfigDir(r, file);
  // below() allows only [A-Za-z0-9_.+-] names: nothing to escape after ${prefix}
  const rel = (p: string) => "${prefix}" + below(r, file, p);
  const libs = [
    ...r.searchDirs.map((d) => `-L${rel(d)}`),
    ...r.libraries.map((l) => {
      checkLibrary(r, file, l);
      // a static archive next to a shared one of the same name is named by path
      if (l.kind === "static" && hasSharedSibling(l)) return rel(l.path);
      return l.verbatim ? `-l:${l.file}` : `-l${l.name}`;
    }),
  ];
  for (const d of rpathDirs(r, file)) libs.push(`-Wl,-rpath,${rel(d)}`);
  const lines = [
    `# written by ocipkg for ${commentText(r.image.toString())}`,
    `prefix=${prefix}`,
    "",
    `Name: ${name}`,
    `Description: ${pcText(info.description ?? `${r.image} (ocipkg)`)}`,
    `Version: ${info.version ?? "0"}`,
    `Libs: ${libs.join(" ")}`,
  ];
  if (r.includeDir) lines.push(`Cflags: -I${rel(r.includeDir)}`);
  await writeGenerated(r, ["pkgconfig"], [[
    file,
    new TextEncoder().encode(lines.join("\n") + "\n"),
  ]]);
  const searchPath = join(r.dir, "pkgconfig");
  return { path: join(searchPath, file), searchPath, name };
}

/** A shared library of the same name sits next to a static one (so `-l` would pick it). */
function hasSharedSibling(l: LinkedLibrary): boolean {
  const base = l.path.slice(0, -".a".length);
  return [".so", ".dylib"].some((ext) => {
    try {
      return Deno.statSync(base + ext).isFile;
    } catch {
      return false;
    }
  });
}
