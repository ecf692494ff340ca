// Hostile packages against `link`: symlinked pkgconfig/ and cmake/ entries,
// planted symlinks/hardlinks at the generated files' paths, annotations and
// file names that try to inject into .pc / CMake / Cargo output (store paths
// with spaces, quotes and `$`: link_store_path_test.ts). Generated files are
// checked with the real pkg-config (pkgconf), cmake and cc; every test also
// checks that nothing outside the store changed.
import { join } from "node:path";
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "./_assert.ts";
import {
  cargoLinkLines,
  findLibraries,
  ImageName,
  libraryPath,
  linkPackage,
  type LinkResult,
  NotFoundError,
  OcipkgError,
  Store,
  UsageError,
  writeCmakeConfig,
  writePkgConfig,
} from "./_internal.ts";
import { runCli, withTempDir } from "./_helpers.ts";
import {
  cmakeFind,
  exists,
  fooPackage,
  hasCmake,
  hasPkgConfig,
  install,
  LINUX,
  oneLineError,
  outsideFixtures,
  pack,
  pkgConfig,
  snapshot,
  splitFlags,
} from "./_link_hostile.ts";

// ---------- generated files never go through symlinks ----------

Deno.test("link refuses pkgconfig/ and cmake/ entries that are symlinks (outside, file, inside, dangling) or files", async () => {
  await withTempDir(async (base) => {
    const outside = await outsideFixtures(base);
    const image = "example.com/hostile/foo:1.0";
    // a package may hold symlinks inside itself: pkgconfig -> lib, cmake -> include
    const inside = await pack(
      base,
      image,
      fooPackage(async (d) => {
        await Deno.symlink("lib", join(d, "pkgconfig"));
        await Deno.symlink("include", join(d, "cmake"));
      }),
    );
    const plain = await pack(base, image, fooPackage());
    const root = join(base, "store");
    const variants: [string, (entry: string) => Promise<void>][] = [
      ["inside the image", async () => {}],
      ["outside dir", (p) => Deno.symlink(join(outside, "dir"), p)],
      ["outside file", (p) => Deno.symlink(join(outside, "victim.txt"), p)],
      ["dangling to outside", (p) => Deno.symlink(join(outside, "created-by-ocipkg"), p)],
      ["dangling relative", (p) => Deno.symlink("missing", p)],
      ["regular file", (p) => Deno.writeTextFile(p, "not a dir\n")],
    ];
    for (const [label, plant] of variants) {
      await Deno.remove(root, { recursive: true }).catch(() => {});
      const { store, dir } = await install(
        label === "inside the image" ? inside : plain,
        root,
        image,
      );
      for (const entry of ["pkgconfig", "cmake"]) {
        if (label !== "inside the image") await plant(join(dir, entry));
      }
      const before = await snapshot(base);
      const r = await linkPackage(image, { store, platform: LINUX });
      const pc = await assertRejects(() => writePkgConfig(r, { store }), OcipkgError);
      oneLineError(pc, image);
      assertStringIncludes(pc.message, `'${join(dir, "pkgconfig")}'`, label);
      assertStringIncludes(pc.message, label === "regular file" ? "a regular file" : "a symlink");
      const cm = await assertRejects(() => writeCmakeConfig(r, { store }), OcipkgError);
      oneLineError(cm, image);
      assertStringIncludes(cm.message, `'${join(dir, "cmake")}'`, label);
      // nothing changed anywhere: not outside, not in the package (lib/, include/)
      assertEquals(await snapshot(base), before, label);
      assert(!(await exists(join(outside, "created-by-ocipkg"))), label);
      assertEquals(await Deno.readTextFile(join(outside, "victim.txt")), "precious\n");
    }
    // the CLI says it in one line naming the image and the path, exit 1
    const before = await snapshot(base);
    const cli = await runCli(["link", "--pkg-config", image], { dataHome: root });
    assertEquals(cli.code, 1, cli.stderr);
    assertEquals(cli.stderr.trim().split("\n").length, 1, cli.stderr);
    assertStringIncludes(cli.stderr, `error: image '${image}': refusing to write`);
    assertStringIncludes(
      cli.stderr,
      join(root, ...ImageName.parse(image).storePath(), "pkgconfig"),
    );
    assertEquals(cli.stdout, "");
    assertEquals(await snapshot(base), before);
  });
});

Deno.test("link never writes through a planted .pc / Config.cmake: symlinks and directories are refused, hardlinks replaced", async () => {
  await withTempDir(async (base) => {
    const outside = await outsideFixtures(base);
    const image = "example.com/hostile/foo:1.0";
    const archive = await pack(
      base,
      image,
      fooPackage(async (d) => {
        // a package's own .pc is replaced by ocipkg's
        await Deno.mkdir(join(d, "pkgconfig"));
        await Deno.writeTextFile(join(d, "pkgconfig", "foo.pc"), "Name: foo\nLibs: -lEVIL\n");
      }),
    );
    const root = join(base, "store");
    const { store, dir } = await install(archive, root, image);
    const r = await linkPackage(image, { store, platform: LINUX });
    const pcPath = join(dir, "pkgconfig", "foo.pc");
    const victim = join(outside, "victim.txt");
    const cases: [string, string, () => Promise<void>][] = [
      ["pkgconfig", "foo.pc", () => Deno.symlink(victim, pcPath)],
      ["pkgconfig", "foo.pc", () => Deno.symlink(join(outside, "new.pc"), pcPath)],
      ["pkgconfig", "foo.pc", () => Deno.mkdir(pcPath)],
      [
        "cmake",
        "fooConfig.cmake",
        () => Deno.symlink(victim, join(dir, "cmake", "fooConfig.cmake")),
      ],
      // the config itself is a plain file, its version file a symlink: nothing is written
      [
        "cmake",
        "fooConfigVersion.cmake",
        () => Deno.symlink(victim, join(dir, "cmake", "fooConfigVersion.cmake")),
      ],
    ];
    for (const [sub, file, plant] of cases) {
      await Deno.remove(join(dir, "pkgconfig"), { recursive: true }).catch(() => {});
      await Deno.remove(join(dir, "cmake"), { recursive: true }).catch(() => {});
      await Deno.mkdir(join(dir, sub));
      if (file === "fooConfigVersion.cmake") {
        await Deno.writeTextFile(join(dir, "cmake", "fooConfig.cmake"), "# old\n");
      }
      await plant();
      const before = await snapshot(base);
      const write = sub === "pkgconfig"
        ? () => writePkgConfig(r, { store })
        : () => writeCmakeConfig(r, { store });
      const e = await assertRejects(write, OcipkgError);
      oneLineError(e, image);
      assertStringIncludes(e.message, `refusing to replace '${join(dir, sub, file)}'`);
      assertEquals(await snapshot(base), before, `${sub}/${file}`);
      assertEquals(await Deno.readTextFile(victim), "precious\n");
      assert(!(await exists(join(outside, "new.pc"))));
    }
    // a hardlink to a file outside: replaced by rename, the outside file keeps its content
    await Deno.remove(join(dir, "pkgconfig"), { recursive: true }).catch(() => {});
    await Deno.mkdir(join(dir, "pkgconfig"));
    await Deno.link(victim, pcPath);
    const outsideBefore = await snapshot(outside);
    const pc = await writePkgConfig(r, { store });
    assertEquals(pc.path, pcPath);
    assertEquals(await snapshot(outside), outsideBefore);
    assertEquals((await Deno.lstat(pcPath)).nlink, 1);
    assertStringIncludes(await Deno.readTextFile(pcPath), "Name: foo\n");
    assert(!(await Deno.readTextFile(pcPath)).includes("EVIL"));
    // and with nothing planted both writers work, leaving no temp files
    await Deno.remove(join(dir, "cmake"), { recursive: true });
    await writeCmakeConfig(r, { store });
    assertEquals(
      (await Array.fromAsync(Deno.readDir(join(dir, "cmake")))).map((e) => e.name).sort(),
      ["fooConfig.cmake", "fooConfigVersion.cmake"],
    );
    assertEquals((await Array.fromAsync(Deno.readDir(join(dir, "pkgconfig")))).map((e) => e.name), [
      "foo.pc",
    ]);
    assertEquals(await snapshot(outside), outsideBefore);
  });
});

// ---------- annotations ----------

Deno.test({
  name:
    "hostile version/description annotations cannot inject into .pc or CMake files (real pkg-config and cmake)",
  ignore: !hasPkgConfig || !hasCmake,
  async fn() {
    await withTempDir(async (base) => {
      const outside = await outsideFixtures(base);
      const markers = join(base, "markers");
      await Deno.mkdir(markers);
      const evil = join(outside, "evil.so");
      const m = (n: string) => join(markers, n);
      const cases = [
        {
          tag: "rel",
          version: `1.0")\nexecute_process(COMMAND "\${CMAKE_COMMAND}" -E touch "${
            m("exec")
          }")\nset(_x "`,
          description: `fine\nCflags: -fplugin=${evil}\nLibs: -lpwned`,
          want: { pc: "0", cmake: "" },
        },
        {
          tag: "3.1",
          version: `1.0\nCflags: -fplugin=${evil}`,
          description: "ends in a backslash \\",
          want: { pc: "3.1", cmake: "3.1" },
        },
        {
          tag: "v4.2",
          version: `1.0]=]\nfile(WRITE "${m("bracket")}" x)\n#[=[`,
          description: "${prefix} $$ ${pcfiledir} #not a comment\r\n\u2028x\u001b[2J",
          want: { pc: "4.2", cmake: "4.2" },
        },
        {
          tag: "rel2",
          version: "$(touch x)",
          description: `]=] ")\nfile(WRITE "${m("desc")}" x)\n# \\`,
          want: { pc: "0", cmake: "" },
        },
        {
          tag: "rel3",
          version: "1.2.3+build.5~rc_1-x",
          description: "a plain description",
          want: { pc: "1.2.3+build.5~rc_1-x", cmake: "1.2.3+build.5~rc_1-x" },
        },
      ];
      const root = join(base, "store");
      const scratch = join(base, "scratch");
      for (const c of cases) {
        const image = `example.com/hostile/ann:${c.tag}`;
        const archive = await pack(base, image, fooPackage(), {
          "org.opencontainers.image.version": c.version,
          "org.opencontainers.image.description": c.description,
        });
        const { store, dir } = await install(archive, root, image);
        const outsideBefore = await snapshot(base, (p) => p === "store" || p === "scratch");
        const r = await linkPackage(image, { store, platform: LINUX, prefer: "static" });
        const pc = await writePkgConfig(r, { store });
        const text = await Deno.readTextFile(pc.path);
        for (const key of ["Name", "Description", "Version", "Libs", "Cflags"]) {
          assertEquals(
            text.split("\n").filter((l) => l.startsWith(`${key}:`)).length,
            1,
            `${key} in\n${text}`,
          );
        }
        assert(!text.includes("fplugin=") || /^Description: .*fplugin=/m.test(text), text);
        const flags = await pkgConfig(pc.searchPath, "--cflags", "--libs", "ann");
        assertEquals(flags.code, 0, flags.stderr);
        // libfoo.a next to libfoo.so is named by its path
        assertEquals(splitFlags(flags.stdout), [
          `-I${dir}/include`,
          `-L${dir}/lib`,
          `${dir}/lib/libfoo.a`,
        ]);
        const mod = await pkgConfig(pc.searchPath, "--modversion", "ann");
        assertEquals(mod.stdout.trim(), c.want.pc, text);
        const listed = (await pkgConfig(pc.searchPath, "--list-all")).stdout.split("\n")
          .filter((l) => l.startsWith("ann "));
        assertEquals(listed.length, 1, listed.join("\n"));

        const cm = await writeCmakeConfig(r, { store });
        const cmText = await Deno.readTextFile(cm.path);
        for (const bad of ["execute_process", "file(WRITE", "fplugin", "touch"]) {
          assert(!cmText.includes(bad), cmText);
        }
        const found = await cmakeFind(scratch, cm.prefix, "ann", "foo");
        assertEquals(found.code, 0, found.stderr + found.stdout);
        assertEquals(found.found.version, c.want.cmake);
        assertEquals(found.found.location, `${dir}/lib/libfoo.a`);
        for (const n of ["exec", "bracket", "desc"]) assert(!(await exists(m(n))), n);
        assert(!(await exists(join(scratch, "x"))));
        assertEquals(await snapshot(base, (p) => p === "store" || p === "scratch"), outsideBefore);
      }
      // without a store option the writer reads the annotations of the store the image is in
      const rel3 = await linkPackage("example.com/hostile/ann:rel3", {
        store: new Store(root),
        platform: LINUX,
      });
      const pc3 = await writePkgConfig(rel3);
      assertEquals(
        (await pkgConfig(pc3.searchPath, "--modversion", "ann")).stdout.trim(),
        "1.2.3+build.5~rc_1-x",
      );
      // a plain version works with find_package version checks
      const okDir = new Store(root).imageDir("example.com/hostile/ann:rel3");
      assertEquals((await cmakeFind(scratch, okDir, "ann", "foo", "1.2")).code, 0);
      assert((await cmakeFind(scratch, okDir, "ann", "foo", "2.0")).code !== 0);
    });
  },
});

// ---------- library file names ----------

Deno.test({
  name:
    "library files with unsafe names or outside targets are left out of Cargo, .pc, CMake and FFI",
  ignore: !hasPkgConfig || !hasCmake,
  async fn() {
    await withTempDir(async (base) => {
      const outside = await outsideFixtures(base);
      const image = "example.com/hostile/names:1";
      const archive = await pack(base, image, async (d) => {
        await Deno.mkdir(join(d, "lib"));
        await Deno.writeFile(join(d, "lib", "libok.a"), new Uint8Array([1]));
      });
      const root = join(base, "store");
      const { store, dir } = await install(archive, root, image);
      // planted after install: extraction may refuse some of these names, linking must cope anyway
      const bad = [
        "libx;y.a",
        "lib a.a",
        'libq"u.so',
        "lib'q.a",
        "lib$x.a",
        "lib${HOME}.a",
        "lib$(touch pwned).so",
        "libnl\ncargo:rustc-link-arg=-fplugin=x.a",
        "libb\\s.a",
        "libesc\u001b[2J.so",
        "lib-dash.a",
        "lib#h.a",
        "libé.a",
      ];
      for (const f of bad) await Deno.writeFile(join(dir, "lib", f), new Uint8Array([1]));
      await Deno.symlink(join(outside, "libevil.so"), join(dir, "lib", "libevil.so"));
      await Deno.symlink(join(outside, "libdir"), join(dir, "lib64"));
      // a second package with nothing but unsafe files
      const image2 = "example.com/hostile/onlybad:1";
      const archive2 = await pack(base, image2, async (d) => {
        await Deno.writeTextFile(join(d, "README"), "x\n");
      });
      const { dir: dir2 } = await install(archive2, root, image2);
      await Deno.writeFile(join(dir2, "libnl\nx.a"), new Uint8Array([1]));
      const outsideBefore = await snapshot(base, (p) => p === "store" || p.startsWith("scratch"));

      const c = await findLibraries(dir, "linux");
      assertEquals(c.libraries.map((l) => l.name), ["ok"]);
      assertEquals(
        c.skipped.map((s) => s.path).sort(),
        [
          ...bad.map((f) => join(dir, "lib", f)),
          join(dir, "lib", "libevil.so"),
          join(dir, "lib64", "libsys.a"),
        ].sort(),
      );
      assert(c.skipped.every((s) => !s.reason.includes("\n")));

      const r = await linkPackage(image, { store, platform: LINUX });
      assertEquals(r.libraries.map((l) => l.file), ["libok.a"]);
      assertEquals(r.skipped?.length, bad.length + 2);
      assertEquals(cargoLinkLines(r), [
        `cargo:rustc-link-search=native=${dir}/lib`,
        "cargo:rustc-link-lib=static=ok",
        `cargo:rerun-if-changed=${dir}`,
        "cargo:rerun-if-env-changed=XDG_DATA_HOME",
        "cargo:rerun-if-env-changed=OCIPKG_DATA_DIR",
        "cargo:rerun-if-env-changed=OCIPKG_CONFIG",
        `cargo:root=${dir}`,
        `cargo:lib_dir=${dir}/lib`,
        `cargo:image=${image}`,
      ]);
      const pc = await writePkgConfig(r, { store });
      const flags = await pkgConfig(pc.searchPath, "--cflags", "--libs", "names");
      assertEquals(flags.code, 0, flags.stderr);
      assertEquals(splitFlags(flags.stdout), [`-L${dir}/lib`, "-lok"]);
      const cm = await writeCmakeConfig(r, { store });
      const found = await cmakeFind(join(base, "scratch"), cm.prefix, "names", "ok");
      assertEquals(found.code, 0, found.stderr);
      assertEquals(found.found.location, `${dir}/lib/libok.a`);
      assert(!(await Deno.readTextFile(cm.path)).includes("evil"));

      // FFI: a library symlinked to outside the image is not found; a bad name is a usage error
      await assertRejects(
        () => libraryPath(image, "evil", { store }),
        NotFoundError,
        "no library 'evil'",
      );
      await assertRejects(() => libraryPath(image, "x;y", { store }), UsageError);
      await assertRejects(() => libraryPath(image, "sys", { store }), NotFoundError);

      // only unsafe files: a one-line error naming what was left out
      const e = await assertRejects(
        () => linkPackage(image2, { store, platform: LINUX }),
        NotFoundError,
      );
      oneLineError(e, image2);
      assertStringIncludes(e.message, "left out as unsafe");
      assertStringIncludes(e.message, "libnl\\nx.a");
      assertEquals(
        await snapshot(base, (p) => p === "store" || p.startsWith("scratch")),
        outsideBefore,
      );
    });
  },
});

// ---------- values handed in by a caller ----------

Deno.test("cargo, .pc and CMake writers refuse names and paths that would inject, even from a hand-made LinkResult", async () => {
  const r: LinkResult = {
    image: ImageName.parse("example.com/x:1"),
    dir: "/nonexistent-ocipkg/s",
    platform: LINUX,
    libraries: [{
      name: "a",
      kind: "dylib",
      path: "/nonexistent-ocipkg/s/lib/liba.so",
      dir: "/nonexistent-ocipkg/s/lib",
      file: "liba.so",
    }],
    searchDirs: ["/nonexistent-ocipkg/s/lib"],
    annotations: {},
  };
  const lib = r.libraries[0]!;
  const variants: [string, LinkResult][] = [
    ["name", { ...r, libraries: [{ ...lib, name: "a\ncargo:rustc-link-arg=-fplugin=x" }] }],
    ["name", { ...r, libraries: [{ ...lib, name: "a;b" }] }],
    ["file", { ...r, libraries: [{ ...lib, verbatim: true, file: "liba.so\ncargo:warning=x" }] }],
    ["dir", {
      ...r,
      searchDirs: ["/nonexistent-ocipkg/s/lib\ncargo:rustc-link-arg=x"],
      libraries: [{ ...lib, dir: "/nonexistent-ocipkg/s/lib\ncargo:rustc-link-arg=x" }],
    }],
  ];
  for (const [what, v] of variants) {
    const e = assertThrows(() => cargoLinkLines(v), OcipkgError);
    oneLineError(e, "example.com/x:1");
    assert(/library name|library file|directory/.test(e.message), `${what}: ${e.message}`);
    await assertRejects(() => writePkgConfig(v), OcipkgError);
    await assertRejects(() => writeCmakeConfig(v), OcipkgError);
  }
  // the metadata lines (DEP_<LINKS>_*) follow the same rule
  for (const bad of [{ libDir: "/t/out\ncargo:rustc-link-arg=x" }, { version: "1\ncargo:x=y" }]) {
    const e = assertThrows(() => cargoLinkLines(r, bad), OcipkgError, "control character");
    oneLineError(e, "example.com/x:1");
  }
  assertThrows(
    () => cargoLinkLines({ ...r, includeDir: "/s/include\ncargo:warning=x" }),
    OcipkgError,
    "include metadata",
  );
  // a library path outside the image directory is not written into .pc / CMake files
  const away = { ...r, libraries: [{ ...lib, kind: "static" as const, path: "/etc/liba.a" }] };
  await assertRejects(() => writeCmakeConfig(away), OcipkgError, "not a plain path inside");
  await assertRejects(
    () => writePkgConfig({ ...away, searchDirs: ["/etc"] }),
    OcipkgError,
    "not a plain path inside",
  );
  await assertRejects(() => writePkgConfig(r, { name: "x\ny" }), UsageError);
  assert(!(await exists("/nonexistent-ocipkg")));
});
