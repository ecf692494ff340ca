// Finding libraries in a package for a target OS, and the Cargo lines made from them.
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import {
  cargoLinkLines,
  classifyLibrary,
  findLibraries,
  ImageName,
  type LinkResult,
} from "./_internal.ts";
import { tempDir } from "./_helpers.ts";

async function touch(dir: string, ...names: string[]): Promise<void> {
  for (const n of names) {
    await Deno.mkdir(join(dir, n, ".."), { recursive: true });
    await Deno.writeFile(join(dir, n), new Uint8Array([1]));
  }
}

Deno.test("classifyLibrary names libraries by the target OS's conventions", () => {
  const c = (f: string, os: string) => {
    const m = classifyLibrary(f, os);
    return m ? `${m.name}:${m.kind}${m.verbatim ? ":v" : ""}` : undefined;
  };
  assertEquals(c("libfoo.a", "linux"), "foo:static");
  assertEquals(c("libfoo.so", "linux"), "foo:dylib");
  assertEquals(c("libfoo.so.1.2.3", "linux"), "foo:dylib:v");
  assertEquals(c("libfoo-bar.so", "freebsd"), "foo-bar:dylib");
  assertEquals(c("libfoo.dylib", "linux"), undefined);
  assertEquals(c("foo.lib", "linux"), undefined);
  assertEquals(c("libfoo.dylib", "darwin"), "foo:dylib");
  assertEquals(c("libfoo.1.dylib", "darwin"), "foo:dylib:v");
  assertEquals(c("libfoo.so", "darwin"), undefined);
  assertEquals(c("foo.lib", "windows"), "foo:static");
  assertEquals(c("Foo.DLL", "windows"), "Foo:dylib");
  assertEquals(c("libfoo.dll.a", "windows"), "foo:dylib");
  assertEquals(c("libfoo.a", "windows"), "foo:static");
  assertEquals(c("README", "linux"), undefined);
  assertEquals(c("foo.h", "linux"), undefined);
});

Deno.test("findLibraries looks at the top (Rust ocipkg layout) and under lib/", async () => {
  const dir = await tempDir();
  await touch(dir, "libtop.a", "lib/libfoo.a", "lib/libfoo.so", "lib/libz.so.1", "include/foo.h");
  await touch(dir, "lib/libv.so.2", "lib/libv.so", "share/libnot.a", "README.md");
  const c = await findLibraries(dir, "linux");
  assertEquals(c.libraries.map((l) => l.name), ["foo", "top", "v", "z"]);
  const foo = c.libraries.find((l) => l.name === "foo")!;
  assertEquals(foo.static?.path, join(dir, "lib", "libfoo.a"));
  assertEquals(foo.dylib?.path, join(dir, "lib", "libfoo.so"));
  assertEquals(c.libraries.find((l) => l.name === "top")!.static?.dir, dir);
  // libz.so.1 alone must be linked by its verbatim name; libv.so wins over libv.so.2
  assertEquals(c.libraries.find((l) => l.name === "z")!.dylib?.verbatim, true);
  assertEquals(c.libraries.find((l) => l.name === "v")!.dylib?.file, "libv.so");
  assertEquals(c.includeDir, join(dir, "include"));
});

Deno.test("findLibraries on Windows pairs foo.lib with foo.dll as its import library", async () => {
  const dir = await tempDir();
  await touch(dir, "lib/foo.lib", "bin/foo.dll", "lib/bar.lib", "lib/libgnu.dll.a", "bin/gnu.dll");
  const c = await findLibraries(dir, "windows");
  const byName = Object.fromEntries(c.libraries.map((l) => [l.name, l]));
  assertEquals(byName.foo!.static, undefined);
  assertEquals(byName.foo!.dylib?.file, "foo.lib");
  assertEquals(byName.foo!.runtime, join(dir, "bin", "foo.dll"));
  assertEquals(byName.bar!.static?.file, "bar.lib");
  assertEquals(byName.gnu!.dylib?.file, "libgnu.dll.a");
  assertEquals(c.includeDir, undefined);
});

Deno.test("findLibraries skips dangling symlinks and finds nothing in an empty package", async () => {
  const dir = await tempDir();
  await Deno.symlink("missing.so.1", join(dir, "libgone.so"));
  assertEquals((await findLibraries(dir, "linux")).libraries, []);
});

Deno.test("cargoLinkLines: search paths, static/dylib/verbatim libs, rpath, rerun lines, metadata", () => {
  const r: LinkResult = {
    image: ImageName.parse("localhost:5000/x:1"),
    dir: "/s",
    platform: { os: "linux", architecture: "amd64" },
    libraries: [
      { name: "a", kind: "static", path: "/s/liba.a", dir: "/s", file: "liba.a" },
      { name: "b", kind: "dylib", path: "/s/lib/libb.so", dir: "/s/lib", file: "libb.so" },
      {
        name: "c",
        kind: "dylib",
        path: "/s/lib/libc.so.6",
        dir: "/s/lib",
        file: "libc.so.6",
        verbatim: true,
      },
    ],
    searchDirs: ["/s", "/s/lib"],
    includeDir: "/s/include",
  };
  const lines = cargoLinkLines(r);
  const links = [
    "cargo:rustc-link-lib=static=a",
    "cargo:rustc-link-lib=dylib=b",
    "cargo:rustc-link-lib=dylib:+verbatim=libc.so.6",
    "cargo:rustc-link-arg=-Wl,-rpath,/s/lib",
    "cargo:rerun-if-changed=/s",
    "cargo:rerun-if-env-changed=XDG_DATA_HOME",
    "cargo:rerun-if-env-changed=OCIPKG_DATA_DIR",
    "cargo:rerun-if-env-changed=OCIPKG_CONFIG",
    "cargo:root=/s",
  ];
  assertEquals(lines, [
    "cargo:rustc-link-search=native=/s",
    "cargo:rustc-link-search=native=/s/lib",
    ...links,
    "cargo:lib_dir=/s:/s/lib", // joined like PATH (std::env::split_paths)
    "cargo:rpath=/s/lib",
    "cargo:include=/s/include",
    "cargo:image=localhost:5000/x:1",
  ]);
  assert(lines.every((l) => l.startsWith("cargo:")));
  // the shared libraries placed in $OUT_DIR: searched there instead of /s/lib (which holds no
  // static library), the rpath still the store's, and the version given
  const placed = cargoLinkLines(r, { libDir: "/t/out/ocipkg-lib/k", version: "1.2" });
  assertEquals(placed, [
    "cargo:rustc-link-search=native=/t/out/ocipkg-lib/k",
    "cargo:rustc-link-search=native=/s",
    ...links,
    "cargo:lib_dir=/t/out/ocipkg-lib/k",
    "cargo:rpath=/s/lib",
    "cargo:include=/s/include",
    "cargo:version=1.2",
    "cargo:image=localhost:5000/x:1",
  ]);
});
