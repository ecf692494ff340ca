// A host build and a cross build of one crate share a store: the build
// script runs `ocipkg link --cargo --dynamic IMAGE` for a two-platform image
// served by a real docker-registry (behind a proxy that counts requests).
// Each platform gets its own store entry; alternating the builds downloads
// nothing again and never changes the other platform's files.
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { packDirectory, pushImage } from "../mod.ts";
import { parsePlatform, readBinaryInfo } from "../lib/oci/mod.ts";
import { buildGreet, have, ocipkgBinDir, pathWith, ROOT, run, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";
import { startFaultProxy } from "./_fault_proxy.ts";
import { EM } from "./_binaries.ts";

const CI = !!Deno.env.get("CI");
const ready = Deno.build.os === "linux" && Deno.build.arch === "x86_64" &&
  ((await have("cargo") && await have("cc") && await have("docker-registry")) || CI);
const reg = ready ? await startRegistry() : undefined;
const proxy = reg ? startFaultProxy(reg.host) : undefined;
globalThis.addEventListener("unload", () => reg?.kill());

const CROSS = "aarch64-unknown-linux-gnu";

/**
 * The image: linux/amd64 is libgreet built with cc; linux/arm64 is the same
 * shared library with an aarch64 ELF header (no cross compiler needed: it is
 * only linked against, never run) and a marker file.
 */
async function twoPlatformImage(image: string): Promise<void> {
  const amd64 = await buildGreet();
  const arm64 = await buildGreet();
  await Deno.remove(join(arm64, "lib", "libgreet.a"));
  const so = await Deno.readFile(join(arm64, "lib", "libgreet.so"));
  new DataView(so.buffer).setUint16(18, EM.aarch64, true);
  await Deno.writeFile(join(arm64, "lib", "libgreet.so"), so);
  await Deno.writeTextFile(join(arm64, "ARM64"), "arm64 build\n");
  const archive = join(await tempDir(), "greet.tar");
  await packDirectory(amd64, archive, { name: image, platform: parsePlatform("linux/amd64") });
  await packDirectory(arm64, archive, { name: image, platform: parsePlatform(CROSS) });
  await pushImage(archive);
}

/** A crate whose build.rs links libgreet dynamically through `ocipkg link`, logging each run. */
async function crate(): Promise<string> {
  const dir = join(await tempDir(), "cross-app");
  await Deno.mkdir(join(dir, "src"), { recursive: true });
  await Deno.writeTextFile(
    join(dir, "Cargo.toml"),
    '[package]\nname = "cross-app"\nversion = "0.1.0"\nedition = "2021"\npublish = false\nbuild = "build.rs"\n\n[dependencies]\n',
  );
  await Deno.writeTextFile(
    join(dir, "build.rs"),
    `use std::{env, fs::OpenOptions, io::Write, process::Command};

fn main() {
    let image = env::var("GREET_IMAGE").unwrap();
    // BUILD_ROUND makes cargo run this script again in every round of the test
    println!("cargo:rerun-if-env-changed=BUILD_ROUND");
    let mut log = OpenOptions::new().create(true).append(true).open(env::var("RUN_LOG").unwrap()).unwrap();
    writeln!(log, "{}", env::var("TARGET").unwrap()).unwrap();
    let out = Command::new("ocipkg").args(["link", "--cargo", "--dynamic", &image]).output().unwrap();
    if !out.status.success() {
        panic!("ocipkg link failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    print!("{}", String::from_utf8_lossy(&out.stdout));
}
`,
  );
  await Deno.copyFile(
    join(ROOT, "examples", "rust-exe", "src", "main.rs"),
    join(dir, "src", "main.rs"),
  );
  return dir;
}

/** The search line for the build script's shared libraries, placed in its $OUT_DIR. */
const placed = (targetDir: string) =>
  new RegExp(
    `^cargo:rustc-link-search=native=${
      RegExp.escape(join(targetDir, "debug", "build", "cross-app-"))
    }[0-9a-f]+/out/ocipkg-lib/[0-9a-f]{12}-[0-9a-f]{12}$`,
    "m",
  );

/** The output of the crate's build script for a target directory. */
async function buildScriptOutput(targetDir: string): Promise<string> {
  const build = join(targetDir, "debug", "build");
  for await (const e of Deno.readDir(build)) {
    if (!e.name.startsWith("cross-app-")) continue;
    try {
      return await Deno.readTextFile(join(build, e.name, "output"));
    } catch { /* the build script's own build directory */ }
  }
  throw new Error(`no build script output under ${build}`);
}

Deno.test({
  name:
    "cargo host and cross (TARGET=aarch64) builds linking one two-platform image keep two store entries; alternating downloads nothing again",
  ignore: !ready,
  async fn() {
    const image = `${proxy!.host}/cross/greet:1.0`;
    await twoPlatformImage(image);
    const app = await crate();
    const data = await tempDir();
    const runLog = join(await tempDir(), "runs.log");
    const target = join(app, "target");
    const bin = await ocipkgBinDir();
    const env = (round: number) => ({
      PATH: pathWith(bin),
      OCIPKG_DATA_DIR: data,
      GREET_IMAGE: image,
      CARGO_TARGET_DIR: target,
      CARGO_NET_OFFLINE: "true",
      RUN_LOG: runLog,
      BUILD_ROUND: String(round),
    });
    const hostDir = join(data, proxy!.host.replace(":", "__"), "cross", "greet", "__1.0");
    const crossDir = `${hostDir}+linux-arm64`;
    const exe = join(target, "debug", "cross-app");
    proxy!.reset();
    let afterFirst = 0;
    let hostVersion = "";
    for (let round = 1; round <= 4; round++) {
      if (round % 2 === 1) {
        const b = await run("cargo", ["build", "--quiet"], app, env(round));
        assertEquals(b.code, 0, b.stderr);
        // linked to the host's libgreet.so, found at run time through the rpath
        assertEquals((await run(exe, [])).stdout, "hello from libgreet 42\n");
        const out = await buildScriptOutput(target);
        // searched in the copy placed in $OUT_DIR (for dependents' cargo run); rpath to the store
        assert(placed(target).test(out), out);
        assertStringIncludes(out, `cargo:rustc-link-arg=-Wl,-rpath,${hostDir}/lib\n`);
        assertStringIncludes(out, `cargo:root=${hostDir}\n`);
      } else {
        // without the aarch64 standard library the compile fails after the build script ran
        const b = await run("cargo", ["build", "--target", CROSS], app, env(round));
        assert(!b.stderr.includes("failed to run custom build command"), b.stderr);
        const out = await buildScriptOutput(join(target, CROSS));
        assert(placed(join(target, CROSS)).test(out), out);
        assertStringIncludes(out, `cargo:rpath=${crossDir}/lib\n`);
        assertStringIncludes(out, `cargo:root=${crossDir}\n`);
        assertStringIncludes(out, "cargo:rustc-link-lib=dylib=greet\n");
      }
      if (round === 1) hostVersion = await Deno.readLink(hostDir);
      if (round === 2) afterFirst = proxy!.log.length;
    }
    // every round ran the build script (and so ocipkg link), host and cross in turn
    const runs = (await Deno.readTextFile(runLog)).trim().split("\n");
    assertEquals(runs, [
      "x86_64-unknown-linux-gnu",
      CROSS,
      "x86_64-unknown-linux-gnu",
      CROSS,
    ]);
    // the first host and cross builds downloaded; the next two made no request at all
    assert(afterFirst > 0);
    assertEquals(proxy!.log.length, afterFirst, JSON.stringify(proxy!.log.slice(afterFirst)));
    const blobs = proxy!.log.filter((l) => l.method === "GET" && l.path.includes("/blobs/"));
    assertEquals(blobs.length, new Set(blobs.map((l) => l.path)).size, "each blob fetched once");
    // both entries hold their own platform's library; the host's was never replaced
    assertEquals(await Deno.readLink(hostDir), hostVersion);
    const hostLib = await readBinaryInfo(join(hostDir, "lib", "libgreet.so"));
    assertEquals(hostLib.platform.architecture, "amd64");
    const crossLib = await readBinaryInfo(join(crossDir, "lib", "libgreet.so"));
    assertEquals(crossLib.platform.architecture, "arm64");
    assertEquals(await Deno.readTextFile(join(crossDir, "ARM64")), "arm64 build\n");
    const ldd = await run("ldd", [exe]);
    if (ldd.code === 0) assertStringIncludes(ldd.stdout, `${hostDir}/lib/libgreet.so`);
  },
});
