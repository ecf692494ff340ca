// Shared libraries through a `-sys` crate: `foo-sys` (links = "foo") runs `ocipkg link --cargo
// --dynamic IMAGE` in its build.rs, `app` depends on it. Cargo applies the rpath printed for
// the store to foo-sys's own targets only; what makes `cargo run -p app` and `cargo test -p app`
// find libfoo.so.1 is the copy of the library in foo-sys's $OUT_DIR (searched with
// `native=`, which Cargo puts on LD_LIBRARY_PATH because it lies in the target directory). The
// package's metadata reaches app's build.rs as DEP_FOO_*. Then the placing itself (soname names,
// reuse, replacement, refused names) on a store without a registry, and the soname reader on
// headers of other classes and byte orders.
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import {
  linkPackage,
  type LinkResult,
  loadImage,
  OcipkgError,
  packDirectory,
  pushImage,
  Store,
} from "../mod.ts";
import { readSoname, STAGE_DIR, stageSharedLibraries } from "./_internal.ts";
import { have, ocipkgBinDir, pathWith, ROOT, run, runCli, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";

const CI = !!Deno.env.get("CI");
const linux = Deno.build.os === "linux";
const hasCc = linux && (await have("cc") || CI);
const ready = hasCc && (await have("docker-registry") || CI);
const hasCargo = ready && (await have("cargo") || CI);
const reg = ready ? await startRegistry() : undefined;
globalThis.addEventListener("unload", () => reg?.kill());
const LINUX = { os: "linux", architecture: "amd64" };

/**
 * libfoo built with cc from examples/c-greet: lib/libfoo.so.1.0.0 (soname `soname`), the links
 * lib/libfoo.so.1 and lib/libfoo.so to it, lib/libfoo.a, include/greet.h.
 */
async function fooPackage(soname = "libfoo.so.1"): Promise<string> {
  const dir = await tempDir("foo-pkg-");
  const src = join(ROOT, "examples", "c-greet");
  await Deno.mkdir(join(dir, "lib"), { recursive: true });
  await Deno.mkdir(join(dir, "include"));
  const obj = join(await tempDir("foo-obj-"), "greet.o");
  const steps = [
    ["cc", "-O2", "-fPIC", "-I", join(src, "include"), "-c", join(src, "greet.c"), "-o", obj],
    ["cc", "-shared", `-Wl,-soname,${soname}`, "-o", join(dir, "lib", "libfoo.so.1.0.0"), obj],
    ["ar", "rcs", join(dir, "lib", "libfoo.a"), obj],
  ];
  for (const [cmd, ...args] of steps) {
    const r = await run(cmd!, args);
    assertEquals(r.code, 0, r.stderr);
  }
  await Deno.symlink("libfoo.so.1.0.0", join(dir, "lib", "libfoo.so.1"));
  await Deno.symlink("libfoo.so.1", join(dir, "lib", "libfoo.so"));
  await Deno.copyFile(join(src, "include", "greet.h"), join(dir, "include", "greet.h"));
  return dir;
}

const VERSION = { "org.opencontainers.image.version": "1.0.0" };

let published: Promise<string> | undefined;
/** libfoo pushed once to the test registry (version annotation 1.0.0). */
function fooImage(): Promise<string> {
  published ??= (async () => {
    const image = `${reg!.host}/sys/foo:1`;
    const archive = join(await tempDir(), "foo.tar");
    await packDirectory(await fooPackage(), archive, { name: image, annotations: VERSION });
    await pushImage(archive);
    return image;
  })();
  return published;
}

/** The workspace: foo-sys (links = "foo", build.rs runs ocipkg) and app (uses DEP_FOO_*). */
async function workspace(): Promise<string> {
  const ws = join(await tempDir(), "ws");
  const files: Record<string, string> = {
    "Cargo.toml": '[workspace]\nmembers = ["foo-sys", "app"]\nresolver = "2"\n',
    "foo-sys/Cargo.toml":
      '[package]\nname = "foo-sys"\nversion = "0.1.0"\nedition = "2021"\npublish = false\nlinks = "foo"\nbuild = "build.rs"\n',
    "foo-sys/build.rs": `use std::{env, process::Command};

fn main() {
    let image = env::var("FOO_IMAGE").unwrap();
    println!("cargo:rerun-if-env-changed=FOO_IMAGE");
    println!("cargo:rerun-if-env-changed=BUILD_ROUND");
    let out = Command::new("ocipkg").args(["link", "--cargo", "--dynamic", &image]).output().unwrap();
    if !out.status.success() {
        panic!("ocipkg link failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    print!("{}", String::from_utf8_lossy(&out.stdout));
}
`,
    "foo-sys/src/lib.rs": `use std::ffi::CStr;
use std::os::raw::c_char;

extern "C" {
    fn greet_answer() -> i32;
    fn greet_message() -> *const c_char;
}

pub fn answer() -> i32 {
    // SAFETY: a plain int from libfoo
    unsafe { greet_answer() }
}

pub fn message() -> String {
    // SAFETY: libfoo returns a static NUL-terminated string
    unsafe { CStr::from_ptr(greet_message()) }.to_string_lossy().into_owned()
}
`,
    "app/Cargo.toml":
      '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\npublish = false\nbuild = "build.rs"\n\n[dependencies]\nfoo-sys = { path = "../foo-sys" }\n',
    "app/build.rs": `use std::{env, path::Path};

fn main() {
    let dir = env::var("DEP_FOO_LIB_DIR").expect("DEP_FOO_LIB_DIR");
    assert!(Path::new(&dir).join("libfoo.so.1").is_file(), "no libfoo.so.1 in {dir}");
    println!("cargo:rustc-env=FOO_LIB_DIR={dir}");
    println!("cargo:rustc-env=FOO_VERSION={}", env::var("DEP_FOO_VERSION").unwrap());
    // shipped with libfoo.so.1 beside it, the binary finds it there
    println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN");
}
`,
    "app/src/main.rs": `fn main() {
    println!("{} {}", foo_sys::message(), foo_sys::answer());
    println!("{}", env!("FOO_LIB_DIR"));
    println!("{}", env!("FOO_VERSION"));
}

#[cfg(test)]
mod tests {
    #[test]
    fn calls_libfoo() {
        assert_eq!(foo_sys::answer(), 42);
    }
}
`,
  };
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(join(ws, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(ws, path), text);
  }
  return ws;
}

/** The stdout foo-sys's build script printed (cargo keeps it in build/foo-sys-*\/output). */
async function fooSysOutput(target: string): Promise<string> {
  const build = join(target, "debug", "build");
  for await (const e of Deno.readDir(build)) {
    if (!e.name.startsWith("foo-sys-")) continue;
    try {
      return await Deno.readTextFile(join(build, e.name, "output"));
    } catch { /* the build script's own build directory */ }
  }
  throw new Error(`no build script output under ${build}`);
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

Deno.test({
  name:
    "a -sys crate links a shared library with --dynamic: `cargo run`/`cargo test` of a dependent find it in $OUT_DIR, its build.rs sees DEP_FOO_*",
  ignore: !hasCargo,
  async fn() {
    const image = await fooImage();
    const ws = await workspace();
    const data = await tempDir();
    const target = join(ws, "target");
    const bin = await ocipkgBinDir();
    const env = (round: number) => ({
      PATH: pathWith(bin),
      OCIPKG_DATA_DIR: data,
      FOO_IMAGE: image,
      CARGO_TARGET_DIR: target,
      CARGO_NET_OFFLINE: "true",
      BUILD_ROUND: String(round),
      // the library's only homes are the store and what ocipkg places in $OUT_DIR
      LD_LIBRARY_PATH: "",
    });
    const store = new Store(data).imageDir(image);

    const r = await run("cargo", ["run", "--quiet", "-p", "app"], ws, env(1));
    assertEquals(r.code, 0, r.stderr);
    const [greeting, libDir, version] = r.stdout.trimEnd().split("\n");
    assertEquals(greeting, "hello from libgreet 42");
    assertEquals(version, "1.0.0");
    assert(libDir!.startsWith(join(target, "debug", "build", "foo-sys-")), libDir);
    assert(/\/out\/ocipkg-lib\/[0-9a-f]{12}-[0-9a-f]{12}$/.test(libDir!), libDir);
    // the file the linker looks for and the soname the binary asks for, both the store's file
    assertEquals(names(libDir!), ["libfoo.so", "libfoo.so.1"]);
    const real = await Deno.stat(join(store, "lib", "libfoo.so.1.0.0"));
    for (const f of ["libfoo.so", "libfoo.so.1"]) {
      const st = await Deno.lstat(join(libDir!, f));
      assert(st.isFile, f);
      if (st.dev === real.dev) assertEquals(st.ino, real.ino, `${f} is a hard link`);
    }

    const t = await run("cargo", ["test", "--quiet", "-p", "app"], ws, env(1));
    assertEquals(t.code, 0, t.stderr + t.stdout);
    assertStringIncludes(t.stdout, "test result: ok. 1 passed");

    // foo-sys printed: the placed directory to search, the store's rpath for its own targets,
    // and the metadata (old cargo:KEY=VALUE syntax, which every Cargo reads)
    const out = await fooSysOutput(target);
    for (
      const line of [
        `cargo:rustc-link-search=native=${libDir}`,
        "cargo:rustc-link-lib=dylib=foo",
        `cargo:rustc-link-arg=-Wl,-rpath,${store}/lib`,
        `cargo:root=${store}`,
        `cargo:lib_dir=${libDir}`,
        `cargo:rpath=${store}/lib`,
        `cargo:include=${store}/include`,
        "cargo:version=1.0.0",
        `cargo:image=${image}`,
      ]
    ) assertStringIncludes(out, `${line}\n`);
    assert(!out.includes(`native=${store}`), out);

    // run outside cargo, nothing tells the loader where libfoo.so.1 is (so cargo did, above)
    const exe = join(target, "debug", "app");
    const bare = await run(exe, [], undefined, { LD_LIBRARY_PATH: "" });
    assertEquals(bare.code, 127);
    assertStringIncludes(bare.stderr, "libfoo.so.1: cannot open shared object file");
    // shipped: the binary and libfoo.so.1 side by side, found through its $ORIGIN rpath
    const dist = await tempDir("dist-");
    await Deno.copyFile(exe, join(dist, "app"));
    await Deno.copyFile(join(libDir!, "libfoo.so.1"), join(dist, "libfoo.so.1"));
    const shipped = await run(join(dist, "app"), [], undefined, { LD_LIBRARY_PATH: "" });
    assertEquals(shipped.code, 0, shipped.stderr);
    assertStringIncludes(shipped.stdout, "hello from libgreet 42\n");

    // the build script runs again: the same directory, reused, nothing else beside it
    const again = await run("cargo", ["run", "--quiet", "-p", "app"], ws, env(2));
    assertEquals(again.code, 0, again.stderr);
    assertEquals(again.stdout.split("\n")[1], libDir);
    assertEquals(names(join(libDir!, "..")), [libDir!.slice(libDir!.lastIndexOf("/") + 1)]);
  },
});

Deno.test({
  name: "link --cargo --static in a build script places nothing and prints the metadata lines",
  ignore: !ready,
  async fn() {
    const image = await fooImage();
    const data = await tempDir();
    const outDir = await tempDir("out-");
    const r = await runCli(["link", "--cargo", "--static", image], {
      dataHome: data,
      env: { OUT_DIR: outDir },
    });
    assertEquals(r.code, 0, r.stderr);
    const dir = new Store(data).imageDir(image);
    assertEquals(r.stdout.trimEnd().split("\n"), [
      `cargo:rustc-link-search=native=${dir}/lib`,
      "cargo:rustc-link-lib=static=foo",
      `cargo:rerun-if-changed=${dir}`,
      "cargo:rerun-if-env-changed=XDG_DATA_HOME",
      "cargo:rerun-if-env-changed=OCIPKG_DATA_DIR",
      "cargo:rerun-if-env-changed=OCIPKG_CONFIG",
      `cargo:root=${dir}`,
      `cargo:lib_dir=${dir}/lib`,
      `cargo:include=${dir}/include`,
      "cargo:version=1.0.0",
      `cargo:image=${image}`,
    ]);
    assertEquals(names(outDir), []);
  },
});

/** A LinkResult of `pkg` loaded into a store of its own as example.com/sys/<tag>. */
async function linked(pkg: string, tag: string, store: Store): Promise<LinkResult> {
  const archive = join(await tempDir(), "p.tar");
  await packDirectory(pkg, archive, { name: `example.com/sys/${tag}` });
  await loadImage(archive, { store, force: true }); // a new build replaces the tag's files
  return await linkPackage(`example.com/sys/${tag}`, { store, platform: LINUX, prefer: "dynamic" });
}

Deno.test({
  name:
    "placed libraries: a lone libbar.so also under its soname; a soname of another library is not used; reused, then replaced",
  ignore: !hasCc,
  async fn() {
    const store = new Store(await tempDir());
    const out = await tempDir("out-");
    // only libbar.so in the package (no libbar.so.1 anywhere): the binary would ask for libbar.so.1
    const lone = await fooPackage("libbar.so.1");
    await Deno.remove(join(lone, "lib", "libfoo.so"));
    await Deno.remove(join(lone, "lib", "libfoo.so.1"));
    await Deno.rename(join(lone, "lib", "libfoo.so.1.0.0"), join(lone, "lib", "libbar.so"));
    const r = await linked(lone, "bar:1", store);
    const dir = await stageSharedLibraries(r, out);
    assert(dir?.startsWith(join(out, STAGE_DIR)), dir);
    assertEquals(names(dir!), ["libbar.so", "libbar.so.1"]);
    const first = await Deno.stat(join(dir!, "libbar.so.1"));
    // unchanged: the same directory, the same files
    assertEquals(await stageSharedLibraries(r, out), dir);
    assertEquals((await Deno.stat(join(dir!, "libbar.so.1"))).ino, first.ino);
    // a new build of the package under the same tag: a new directory, the old one gone
    const rebuilt = await fooPackage("libbar.so.1");
    await Deno.remove(join(rebuilt, "lib", "libfoo.so"));
    await Deno.remove(join(rebuilt, "lib", "libfoo.so.1"));
    await Deno.writeTextFile(join(rebuilt, "NEWS"), "2\n");
    await Deno.rename(join(rebuilt, "lib", "libfoo.so.1.0.0"), join(rebuilt, "lib", "libbar.so"));
    const r2 = await linked(rebuilt, "bar:1", store);
    const dir2 = await stageSharedLibraries(r2, out);
    assert(dir2 !== dir, "a changed package gets a new directory");
    assertEquals(names(join(out, STAGE_DIR)), [dir2!.slice(dir2!.lastIndexOf("/") + 1)]);
    // another image in the same $OUT_DIR keeps its own directory; a soname that is not a plain
    // name of the same library is not used (it would shadow libc for all cargo runs, or escape)
    let r3: LinkResult | undefined;
    for (const [i, soname] of ["libc.so.6", "../libfoo.so.1", "libfoo.so.1/x"].entries()) {
      r3 = await linked(await fooPackage(soname), `other${i}:1`, store);
      assertEquals(names((await stageSharedLibraries(r3, out))!), ["libfoo.so"], soname);
    }
    assertEquals(names(join(out, STAGE_DIR)).length, 4);
    // static libraries are not placed
    const st = await linkPackage("example.com/sys/other0:1", {
      store,
      platform: LINUX,
      prefer: "static",
    });
    assertEquals(await stageSharedLibraries(st, await tempDir("out-")), undefined);
    // a library that no longer leads into the image is refused
    const outside = await tempDir();
    await Deno.writeTextFile(join(outside, "libx.so"), "");
    const lib = { ...r3!.libraries[0]!, path: join(outside, "libx.so"), file: "libx.so" };
    await assertRejects(
      () => stageSharedLibraries({ ...r3!, libraries: [lib] }, out),
      OcipkgError,
      "does not lead to a file inside the image",
    );
  },
});

/** A minimal ELF shared library header: PT_LOAD + PT_DYNAMIC, DT_STRTAB + DT_SONAME. */
function elf(name: string, opts: { bits: 32 | 64; little: boolean }): Uint8Array {
  const is64 = opts.bits === 64;
  const le = opts.little;
  const ehsize = is64 ? 64 : 52, phentsize = is64 ? 56 : 32, dynent = is64 ? 16 : 8;
  const phoff = ehsize, dynoff = phoff + 2 * phentsize, stroff = dynoff + 3 * dynent;
  const str = new TextEncoder().encode(`\0${name}\0`);
  const b = new Uint8Array(stroff + str.length);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, le ? 1 : 2, 1, 0]);
  v.setUint16(16, 3, le); // ET_DYN
  const word = (off: number, x: number) =>
    is64 ? v.setBigUint64(off, BigInt(x), le) : v.setUint32(off, x, le);
  word(is64 ? 32 : 28, phoff);
  v.setUint16(is64 ? 54 : 42, phentsize, le);
  v.setUint16(is64 ? 56 : 44, 2, le);
  const vaddr = 0x10000; // the file is loaded at this address
  const ph = (i: number, type: number, offset: number, size: number) => {
    const o = phoff + i * phentsize;
    v.setUint32(o, type, le);
    word(o + (is64 ? 8 : 4), offset);
    word(o + (is64 ? 16 : 8), vaddr + offset);
    word(o + (is64 ? 32 : 16), size);
  };
  ph(0, 1, 0, b.length);
  ph(1, 2, dynoff, 3 * dynent);
  word(dynoff, 5); // DT_STRTAB
  word(dynoff + dynent / 2, vaddr + stroff);
  word(dynoff + dynent, 14); // DT_SONAME
  word(dynoff + dynent + dynent / 2, 1);
  b.set(str, stroff);
  return b;
}

Deno.test("readSoname: ELF of both classes and byte orders; damaged headers give none", async () => {
  const dir = await tempDir();
  const at = async (bytes: Uint8Array) => {
    await Deno.writeFile(join(dir, "lib.so"), bytes);
    return await readSoname(join(dir, "lib.so"));
  };
  for (const bits of [32, 64] as const) {
    for (const little of [true, false]) {
      assertEquals(await at(elf("libq.so.3", { bits, little })), "libq.so.3", `${bits} ${little}`);
    }
  }
  const good = elf("libq.so.3", { bits: 64, little: true });
  // cut short, a string table address outside the loaded segment, a huge program header count
  assertEquals(await at(good.subarray(0, 100)), undefined);
  const far = good.slice();
  new DataView(far.buffer).setBigUint64(64 + 2 * 56 + 8, 0xffffffffn, true);
  assertEquals(await at(far), undefined);
  const many = good.slice();
  new DataView(many.buffer).setUint16(56, 0xffff, true);
  assertEquals(await at(many), undefined);
  assertEquals(await at(new Uint8Array(64)), undefined);
  if (hasCc) {
    const pkg = await fooPackage("libfoo.so.7");
    assertEquals(await readSoname(join(pkg, "lib", "libfoo.so")), "libfoo.so.7");
    assertEquals(await readSoname(join(pkg, "lib", "libfoo.a")), undefined);
  }
});
