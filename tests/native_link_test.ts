// End to end with real toolchains: a C library built with cc, packed and
// pushed to a real docker-registry, then linked by a Rust build.rs (`ocipkg
// link --cargo`), by CMake (find_package), by pkg-config, and loaded from
// Deno through FFI.
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import { NotFoundError, packDirectory, pushImage, Store } from "../mod.ts";
import { encodePublicKey, generateSigningKeyPair } from "../lib/sign/mod.ts";
import { libraryPath } from "../lib/native/mod.ts";
import {
  buildGreet,
  callGreet,
  copyTree,
  have,
  ocipkgBinDir,
  pathWith,
  ROOT,
  run,
  runCli,
  tempDir,
} from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";

const CI = !!Deno.env.get("CI");
const hasCc = await have("cc") || CI;
const ready = (hasCc && await have("docker-registry")) || CI;
const reg = ready ? await startRegistry() : undefined;
globalThis.addEventListener("unload", () => reg?.kill());

let published: Promise<string> | undefined;
/** Build libgreet with cc, pack it (version 1.0) and push it once for all tests. */
function greetImage(): Promise<string> {
  published ??= (async () => {
    const image = `${reg!.host}/examples/greet:1.0`;
    const archive = join(await tempDir(), "greet.tar");
    await packDirectory(await buildGreet(), archive, { name: image });
    await pushImage(archive);
    return image;
  })();
  return published;
}

Deno.test({
  name: "link --cargo gets the package and prints the cargo: lines for its static library",
  ignore: !ready,
  async fn() {
    const image = await greetImage();
    const data = await tempDir();
    const r = await runCli(["link", "--cargo", image], { dataHome: data });
    assertEquals(r.code, 0, r.stderr);
    const dir = join(data, `${reg!.host.replace(":", "__")}`, "examples", "greet", "__1.0");
    assertEquals(r.stdout.trim().split("\n"), [
      `cargo:rustc-link-search=native=${dir}/lib`,
      "cargo:rustc-link-lib=static=greet",
      `cargo:rerun-if-changed=${dir}`,
      "cargo:rerun-if-env-changed=XDG_DATA_HOME",
      "cargo:rerun-if-env-changed=OCIPKG_DATA_DIR",
      "cargo:rerun-if-env-changed=OCIPKG_CONFIG",
      // metadata, DEP_GREET_* for crates depending on a `links = "greet"` crate
      `cargo:root=${dir}`,
      `cargo:lib_dir=${dir}/lib`,
      `cargo:include=${dir}/include`,
      "cargo:version=1.0",
      `cargo:image=${image}`,
    ]);
    // --json: the libraries chosen, and every one found (static and shared files)
    const json = JSON.parse(
      (await runCli(["link", "--static", image, "--json"], { dataHome: data })).stdout,
    );
    assertEquals(json.libraries.map((l: { kind: string }) => l.kind), ["static"]);
    assertEquals(json.found.length, 1);
    assert(json.found[0].static && json.found[0].dylib, JSON.stringify(json.found));
    const dyn = await runCli(["link", "--cargo", "--dynamic", image], { dataHome: data });
    assertStringIncludes(dyn.stdout, "cargo:rustc-link-lib=dylib=greet\n");
    assertStringIncludes(dyn.stdout, `cargo:rustc-link-arg=-Wl,-rpath,${dir}/lib\n`);
    // cached: the second run makes no request at all
    const cached = await runCli(["--debug", "link", "--cargo", image], { dataHome: data });
    assertEquals(cached.code, 0);
    assert(!cached.stderr.includes("debug:"), cached.stderr);
  },
});

Deno.test({
  name: "link names what is wrong: a missing library, no static one, no libraries, bad flags",
  ignore: !ready,
  async fn() {
    const image = await greetImage();
    const data = await tempDir();
    const missing = await runCli(["link", image, "--lib", "nope"], { dataHome: data });
    assertEquals(missing.code, 3);
    assertEquals(
      missing.stderr.trim(),
      `error: image '${image}' has no library 'nope' (has: greet (static+shared))`,
    );
    const onlyShared = await tempDir();
    await Deno.writeFile(join(onlyShared, "libdyn.so"), new Uint8Array(8));
    const noLibs = await tempDir();
    await Deno.writeTextFile(join(noLibs, "README"), "docs only\n");
    for (const [dir, tag] of [[onlyShared, "dyn:1"], [noLibs, "docs:1"]]) {
      const archive = join(await tempDir(), "p.tar");
      await packDirectory(dir!, archive, { name: `${reg!.host}/examples/${tag}` });
      await pushImage(archive);
    }
    const st = await runCli(["link", "--static", `${reg!.host}/examples/dyn:1`], {
      dataHome: data,
    });
    assertEquals(st.code, 3);
    assertStringIncludes(st.stderr, "has no static libraries (has: dyn (shared))");
    const none = await runCli(["link", "--cargo", `${reg!.host}/examples/docs:1`], {
      dataHome: data,
    });
    assertEquals(none.code, 3);
    assertStringIncludes(none.stderr, "contains no libraries for linux");
    assertEquals(none.stdout, "");
    const both = await runCli(["link", "--static", "--dynamic", image], { dataHome: data });
    assertEquals(both.code, 2);
    const gone = await runCli(["link", `${reg!.host}/examples/absent:1`], { dataHome: data });
    assertEquals(gone.code, 3);
    assertEquals(gone.stderr.trim().split("\n").length, 1);
  },
});

Deno.test({
  name: "a Rust executable links libgreet through build.rs running `ocipkg link --cargo`",
  ignore: !ready || (!(await have("cargo")) && !CI),
  async fn() {
    const image = await greetImage();
    const crate = await copyTree(join(ROOT, "examples", "rust-exe"), join(await tempDir(), "app"));
    const data = await tempDir();
    const env = {
      PATH: pathWith(await ocipkgBinDir()),
      OCIPKG_DATA_DIR: data,
      GREET_IMAGE: image,
      CARGO_TARGET_DIR: join(crate, "target"),
      CARGO_NET_OFFLINE: "true",
    };
    const b = await run("cargo", ["build", "--quiet"], crate, env);
    assertEquals(b.code, 0, b.stderr);
    const app = await run(join(crate, "target", "debug", "greet-app"), []);
    assertEquals(app.stdout, "hello from libgreet 42\n");
    // the package is in the store, ready for the next build
    const stored = join(new Store(data).imageDir(image), "lib", "libgreet.a");
    assert((await Deno.stat(stored)).isFile, stored);

    // a verify rule for the registry in ocipkg's config file: build.rs cannot link the
    // unsigned package (cargo reruns the script because OCIPKG_CONFIG changed), nothing lands
    const keys = await tempDir();
    const { publicKey } = generateSigningKeyPair();
    await Deno.writeTextFile(join(keys, "org.pub"), encodePublicKey(publicKey));
    await Deno.writeTextFile(
      join(keys, "config.json"),
      JSON.stringify({ verify: [{ prefix: `${reg!.host}/`, key: "org.pub" }] }),
    );
    const fresh = await tempDir();
    const refused = await run("cargo", ["build", "--quiet"], crate, {
      ...env,
      OCIPKG_DATA_DIR: fresh,
      OCIPKG_CONFIG: join(keys, "config.json"),
    });
    assert(refused.code !== 0, "the build must fail");
    assertStringIncludes(refused.stderr, `refusing to install image '${image}'`);
    assertStringIncludes(refused.stderr, "no signature of");
    assertEquals([...Deno.readDirSync(fresh)].filter((e) => !e.name.startsWith(".")), []);
  },
});

Deno.test({
  name: "a CMake project finds libgreet with find_package after `ocipkg link --cmake`",
  ignore: !ready || (!(await have("cmake")) && !CI),
  async fn() {
    const image = await greetImage();
    const data = await tempDir();
    const r = await runCli(["link", "--cmake", image], { dataHome: data });
    assertEquals(r.code, 0, r.stderr);
    const prefix = r.stdout.trim().replace(/^CMAKE_PREFIX_PATH=/, "");
    const dir = await runCli(["image-directory", image], { dataHome: data });
    assertEquals(dir.stdout.trim(), prefix);
    const build = join(await tempDir(), "build");
    const cfg = await run("cmake", [
      "-S",
      join(ROOT, "examples", "cmake-exe"),
      "-B",
      build,
      `-DCMAKE_PREFIX_PATH=${prefix}`,
    ]);
    assertEquals(cfg.code, 0, cfg.stderr + cfg.stdout);
    const mk = await run("cmake", ["--build", build]);
    assertEquals(mk.code, 0, mk.stderr + mk.stdout);
    assertEquals((await run(join(build, "greet_app"), [])).stdout, "hello from libgreet 42\n");
    // find_package(greet 2.0) is refused: the package is 1.0
    const cml = join(await tempDir(), "CMakeLists.txt");
    await Deno.writeTextFile(
      cml,
      "cmake_minimum_required(VERSION 3.16)\nproject(v C)\nfind_package(greet 2.0 REQUIRED)\n",
    );
    const v2 = await run("cmake", [
      "-S",
      join(cml, ".."),
      "-B",
      join(cml, "../b"),
      `-DCMAKE_PREFIX_PATH=${prefix}`,
    ]);
    assert(v2.code !== 0);
    assertStringIncludes(v2.stderr, "1.0");
  },
});

Deno.test({
  name:
    "pkg-config reads the .pc written by `ocipkg link --pkg-config`; cc builds and runs with it",
  ignore: !ready || (!(await have("pkg-config")) && !CI),
  async fn() {
    const image = await greetImage();
    const data = await tempDir();
    const r = await runCli(["link", "--pkg-config", "--dynamic", image], { dataHome: data });
    assertEquals(r.code, 0, r.stderr);
    const pcPath = r.stdout.trim().replace(/^PKG_CONFIG_PATH=/, "");
    const flags = await run("pkg-config", ["--cflags", "--libs", "greet"], undefined, {
      PKG_CONFIG_PATH: pcPath,
      PATH: Deno.env.get("PATH") ?? "",
    });
    assertEquals(flags.code, 0, flags.stderr);
    assertStringIncludes(flags.stdout, "-lgreet");
    const mod = await run("pkg-config", ["--modversion", "greet"], undefined, {
      PKG_CONFIG_PATH: pcPath,
    });
    assertEquals(mod.stdout.trim(), "1.0");
    const exe = join(await tempDir(), "app");
    const cc = await run(
      "sh",
      [
        "-c",
        `cc "${ROOT}/examples/cmake-exe/main.c" $(pkg-config --cflags --libs greet) -o "${exe}"`,
      ],
      undefined,
      { PKG_CONFIG_PATH: pcPath, PATH: Deno.env.get("PATH") ?? "" },
    );
    assertEquals(cc.code, 0, cc.stderr);
    // linked to libgreet.so, found at run time through the rpath
    assertEquals((await run(exe, [])).stdout, "hello from libgreet 42\n");
    const ldd = await run("ldd", [exe]);
    if (ldd.code === 0) {
      assertStringIncludes(ldd.stdout, `${pcPath.replace(/\/pkgconfig$/, "")}/lib/libgreet.so`);
    }
  },
});

Deno.test({
  name: "Deno FFI: libraryPath and openLibrary load libgreet.so from the package",
  ignore: !ready,
  async fn() {
    const image = await greetImage();
    const store = new Store(await tempDir());
    const path = await libraryPath(image, "greet", { store });
    assert(path.endsWith("/lib/libgreet.so"), path);
    assertEquals(await callGreet(image, "greet", { store }), "hello from libgreet 42");
    await assertRejects(
      () => libraryPath(image, "other", { store }),
      NotFoundError,
      "no library 'other'",
    );
    // the example script does the same
    const ex = await run(
      Deno.execPath(),
      ["run", "-A", "--quiet", join(ROOT, "examples", "deno-ffi", "main.ts"), image],
      undefined,
      {
        OCIPKG_DATA_DIR: store.root,
        PATH: Deno.env.get("PATH") ?? "",
      },
    );
    assertEquals(ex.stdout, "hello from libgreet 42\n", ex.stderr);
  },
});
