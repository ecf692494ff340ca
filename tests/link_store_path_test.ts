// Store paths that a build file format cannot hold or must escape, against `link`: a store
// path with spaces, quotes, '#' and '$' reaches pkg-config, CMake, cc and Cargo intact; one a
// format cannot hold is refused in one line with nothing written. Generated files are checked
// with the real pkg-config (pkgconf), cmake and cc.
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
  linkPackage,
  OcipkgError,
  packDirectory,
  writeCmakeConfig,
  writePkgConfig,
} from "./_internal.ts";
import { ROOT, run, runCli, withTempDir } from "./_helpers.ts";
import {
  cmakeFind,
  fooPackage,
  hasCc,
  hasCmake,
  hasPkgConfig,
  install,
  LINUX,
  oneLineError,
  pack,
  pkgConfig,
  snapshot,
  splitFlags,
} from "./_link_hostile.ts";

Deno.test({
  name:
    "a store path with spaces, quotes, '#' and '$' reaches pkg-config, CMake, cc and Cargo intact",
  ignore: !hasPkgConfig || !hasCmake || !hasCc,
  async fn() {
    await withTempDir(async (base) => {
      const greet = join(base, "greet");
      const b = await run("sh", [join(ROOT, "examples", "c-greet", "build.sh"), greet]);
      assertEquals(b.code, 0, b.stderr);
      const image = "example.com/examples/greet:1.0";
      const archive = join(base, "greet.tar");
      await packDirectory(greet, archive, { name: image });
      const root = join(base, `my store $HOME $x 'q' "d" #h (p) &a`);
      const { store, dir } = await install(archive, root, image);
      const scratch = join(base, "scratch");
      await Deno.mkdir(scratch);
      const outsideBefore = await snapshot(
        base,
        (p) => p.startsWith("my store") || p === "scratch",
      );
      const main = join(ROOT, "examples", "cmake-exe", "main.c");

      for (const prefer of ["static", "dynamic"] as const) {
        const r = await linkPackage(image, { store, platform: LINUX, prefer });
        const lines = cargoLinkLines(r);
        assertEquals(lines[0], `cargo:rustc-link-search=native=${dir}/lib`);
        if (prefer === "dynamic") {
          assert(lines.includes(`cargo:rustc-link-arg=-Wl,-rpath,${dir}/lib`));
        }

        const pc = await writePkgConfig(r, { store });
        const flags = await pkgConfig(pc.searchPath, "--cflags", "--libs", "greet");
        assertEquals(flags.code, 0, flags.stderr);
        const args = splitFlags(flags.stdout);
        const want = prefer === "static"
          ? [`-I${dir}/include`, `-L${dir}/lib`, `${dir}/lib/libgreet.a`]
          : [`-I${dir}/include`, `-L${dir}/lib`, "-lgreet", `-Wl,-rpath,${dir}/lib`];
        assertEquals(args, want);
        // cc gets exactly those arguments (no shell): it compiles, links and runs
        const exe = join(scratch, `app-${prefer}`);
        const cc = await run("cc", [main, ...args, "-o", exe]);
        assertEquals(cc.code, 0, cc.stderr);
        assertEquals((await run(exe, [])).stdout, "hello from libgreet 42\n");
      }

      const r = await linkPackage(image, { store, platform: LINUX });
      const cm = await writeCmakeConfig(r, { store });
      assertEquals(cm.prefix, dir);
      const found = await cmakeFind(scratch, dir, "greet");
      assertEquals(found.code, 0, found.stderr + found.stdout);
      assertEquals(found.found, {
        version: "1.0",
        include: `${dir}/include`,
        location: `${dir}/lib/libgreet.a`,
        target_include: `${dir}/include`,
      });
      const build = join(scratch, "cmake-exe");
      const cfg = await run("cmake", [
        "-S",
        join(ROOT, "examples", "cmake-exe"),
        "-B",
        build,
        `-DCMAKE_PREFIX_PATH=${dir}`,
      ]);
      assertEquals(cfg.code, 0, cfg.stderr + cfg.stdout);
      const mk = await run("cmake", ["--build", build]);
      assertEquals(mk.code, 0, mk.stderr + mk.stdout);
      assertEquals((await run(join(build, "greet_app"), [])).stdout, "hello from libgreet 42\n");

      // the CLI prints the paths as they are
      const cli = await runCli(["link", "--pkg-config", "--cmake", image], { dataHome: root });
      assertEquals(cli.code, 0, cli.stderr);
      assertEquals(cli.stdout.split("\n"), [
        `PKG_CONFIG_PATH=${dir}/pkgconfig`,
        `CMAKE_PREFIX_PATH=${dir}`,
        "",
      ]);
      assertEquals(
        await snapshot(base, (p) => p.startsWith("my store") || p === "scratch"),
        outsideBefore,
      );
    });
  },
});

Deno.test({
  name: "store paths a format cannot hold are refused in one line, and nothing is written",
  ignore: !hasPkgConfig || !hasCmake,
  async fn() {
    await withTempDir(async (base) => {
      const image = "example.com/hostile/foo:1.0";
      const archive = await pack(base, image, fooPackage());
      const scratch = join(base, "scratch");
      type Outcome = "ok" | "refused";
      const cases: {
        root: string;
        cargo: [Outcome, Outcome]; // static, dynamic
        pc: [Outcome, Outcome];
        cmake: Outcome;
        why?: string;
      }[] = [
        {
          root: "brace ${x}",
          cargo: ["ok", "ok"],
          pc: ["refused", "refused"],
          cmake: "ok",
          why: "'${' or '$$'",
        },
        {
          root: "dd $$x",
          cargo: ["ok", "ok"],
          pc: ["refused", "refused"],
          cmake: "ok",
          why: "'${' or '$$'",
        },
        {
          root: "comma,dir",
          cargo: ["ok", "refused"],
          pc: ["ok", "refused"],
          cmake: "ok",
          why: "','",
        },
        {
          root: "colon:dir",
          cargo: ["ok", "refused"],
          pc: ["refused", "refused"],
          cmake: "ok",
          why: "':'",
        },
        {
          root: "origin $ORIGIN",
          cargo: ["ok", "refused"],
          pc: ["ok", "refused"],
          cmake: "ok",
          why: "$ORIGIN",
        },
        { root: "lib ${LIB}x", cargo: ["ok", "refused"], pc: ["refused", "refused"], cmake: "ok" },
        {
          root: "nl\ncargo:rustc-link-arg=-fplugin=x",
          cargo: ["refused", "refused"],
          pc: ["refused", "refused"],
          cmake: "refused",
          why: "control character",
        },
        {
          root: "tab\tx",
          cargo: ["refused", "refused"],
          pc: ["refused", "refused"],
          cmake: "refused",
        },
        { root: "semi;colon", cargo: ["ok", "ok"], pc: ["ok", "ok"], cmake: "refused", why: "';'" },
        {
          root: "back\\slash",
          cargo: ["ok", "ok"],
          pc: ["ok", "ok"],
          cmake: "refused",
          why: "backslash",
        },
        {
          root: "genex $<ANGLE-R>x",
          cargo: ["ok", "ok"],
          pc: ["ok", "ok"],
          cmake: "refused",
          why: "'$<'",
        },
      ];
      for (const c of cases) {
        const root = join(base, "stores", c.root);
        const { store, dir } = await install(archive, root, image);
        const before = await snapshot(base, (p) => p === "scratch");
        for (const [i, prefer] of (["static", "dynamic"] as const).entries()) {
          const r = await linkPackage(image, { store, platform: LINUX, prefer });
          const label = `${JSON.stringify(c.root)} ${prefer}`;
          if (c.cargo[i] === "ok") {
            const lines = cargoLinkLines(r);
            assert(lines.every((l) => l.startsWith("cargo:") && !l.includes("\n")), label);
          } else {
            const e = assertThrows(() => cargoLinkLines(r), OcipkgError);
            oneLineError(e, image);
            if (c.why) assertStringIncludes(e.message, c.why, label);
          }
          if (c.pc[i] === "ok") {
            const pc = await writePkgConfig(r, { store });
            const flags = await pkgConfig(pc.searchPath, "--libs-only-L", "foo");
            assertEquals(flags.code, 0, `${label}: ${flags.stderr}`);
            assertEquals(splitFlags(flags.stdout), [`-L${dir}/lib`], label);
            await Deno.remove(join(dir, "pkgconfig"), { recursive: true });
          } else {
            const e = await assertRejects(() => writePkgConfig(r, { store }), OcipkgError);
            oneLineError(e, image);
            if (c.why) assertStringIncludes(e.message, c.why, label);
          }
        }
        const r = await linkPackage(image, { store, platform: LINUX });
        if (c.cmake === "ok") {
          const cm = await writeCmakeConfig(r, { store });
          const found = await cmakeFind(scratch, cm.prefix, "foo");
          assertEquals(found.code, 0, found.stderr);
          assertEquals(found.found.location, `${dir}/lib/libfoo.a`);
          await Deno.remove(join(dir, "cmake"), { recursive: true });
        } else {
          const e = await assertRejects(() => writeCmakeConfig(r, { store }), OcipkgError);
          oneLineError(e, image);
          if (c.why) assertStringIncludes(e.message, c.why);
        }
        // refusals write nothing; successes were removed again
        assertEquals(await snapshot(base, (p) => p === "scratch"), before, JSON.stringify(c.root));
      }
    });
  },
});
