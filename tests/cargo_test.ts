// `ocipkg cargo build` / `publish` (and `cargo ocipkg …` through the shim) on
// the example crate in examples/rust-lib, pushed to a real docker-registry,
// then loaded back from Deno through FFI.
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { inspectLayout, Store } from "./_internal.ts";
import { callGreet, copyTree, have, pathWith, ROOT, run, runCli, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";

const CI = !!Deno.env.get("CI");
const ready = (await have("cargo") && await have("git") && await have("docker-registry")) || CI;
const reg = ready ? await startRegistry() : undefined;
globalThis.addEventListener("unload", () => reg?.kill());

/** A copy of examples/rust-lib pointing at the test registry, committed to git. */
async function exampleCrate(opts: { git?: boolean; registry?: boolean } = {}): Promise<string> {
  const crate = await copyTree(join(ROOT, "examples", "rust-lib"), join(await tempDir(), "crate"));
  const toml = join(crate, "Cargo.toml");
  let text = await Deno.readTextFile(toml);
  text = opts.registry === false
    ? text.replace(/\[package\.metadata\.ocipkg\][^[]*/, "")
    : text.replace("localhost:5000", reg!.host);
  await Deno.writeTextFile(toml, text);
  if (opts.git !== false) {
    const g = (...a: string[]) =>
      run("git", ["-c", "user.email=t@example.com", "-c", "user.name=t", ...a], crate);
    await g("init", "-q");
    await g("add", "-A");
    assertEquals((await g("commit", "-q", "-m", "init")).code, 0);
  }
  return crate;
}

const env = { CARGO_NET_OFFLINE: "true" };

Deno.test({
  name:
    "cargo build packs staticlib+cdylib as {registry}:{rev} with Cargo annotations; publish pushes it",
  ignore: !ready,
  async fn() {
    const crate = await exampleCrate();
    const rev = (await run("git", ["rev-parse", "--short=7", "HEAD"], crate)).stdout.trim();
    const image = `${reg!.host}/examples/rust-greet:${rev}`;
    const data = await tempDir();
    const b = await runCli(["cargo", "build"], { cwd: crate, dataHome: data, env });
    assertEquals(b.code, 0, b.stderr);
    const [name, digest, archive] = b.stdout.trim().split(" ");
    assertEquals(name, image);
    assert(/^sha256:[0-9a-f]{64}$/.test(digest!));
    assert(/\/target\/debug\/ocipkg_[0-9a-f]{16}\.tar$/.test(archive!), archive);
    const info = await inspectLayout(archive!);
    const m = info.manifests[0]!;
    assertEquals(m.platform?.os, "linux");
    assertEquals(m.layers[0]!.files, ["librust_greet.a", "librust_greet.so"]);
    assertEquals(m.annotations, {
      "org.opencontainers.image.title": "rust-greet",
      "org.opencontainers.image.version": "0.2.0",
      "org.opencontainers.image.url": "https://github.com/example/rust-greet",
      "org.opencontainers.image.source": "https://github.com/example/rust-greet",
      "org.opencontainers.image.licenses": "MIT OR Apache-2.0",
      "org.opencontainers.image.description":
        "A C ABI library written in Rust, distributed with ocipkg",
      "org.opencontainers.image.revision": rev,
      "org.opencontainers.image.authors": "Example Author <author@example.com>",
      // the platform it was built for is part of its identity
      "vnd.ocipkg.platform": `${m.platform!.os}/${m.platform!.architecture}`,
    });
    const p = await runCli(["cargo", "publish"], { cwd: crate, dataHome: data, env });
    assertEquals(p.code, 0, p.stderr);
    assertEquals(p.stdout.trim(), `${image} ${digest}`);
    // what was published links and loads
    const store = new Store(data);
    assertEquals(await callGreet(image, "rust_greet", { store }), "hello from rust-greet 42");
    const link = await runCli(["link", "--cargo", image], { dataHome: data });
    assertStringIncludes(link.stdout, "cargo:rustc-link-lib=static=rust_greet\n");
  },
});

Deno.test({
  name: "`cargo ocipkg build --release -t …` runs through the installed cargo-ocipkg shim",
  ignore: !ready,
  async fn() {
    const crate = await exampleCrate();
    const bin = await tempDir();
    const i = await runCli(["cargo", "install-shim", "--dir", bin]);
    assertEquals(i.code, 0, i.stderr);
    assertEquals(i.stdout.trim(), join(bin, "cargo-ocipkg"));
    const image = `${reg!.host}/examples/shimmed:1`;
    const r = await run("cargo", ["ocipkg", "build", "--release", "-t", image], crate, {
      ...env,
      PATH: pathWith(bin),
    });
    assertEquals(r.code, 0, r.stderr);
    const [name, , archive] = r.stdout.trim().split(" ");
    assertEquals(name, image);
    assertStringIncludes(archive!, "/target/release/ocipkg_");
    const p = await run("cargo", ["ocipkg", "publish", "--release", "-t", image], crate, {
      ...env,
      PATH: pathWith(bin),
    });
    assertEquals(p.code, 0, p.stderr);
    assertStringIncludes(p.stdout, image);
  },
});

Deno.test({
  name: "cargo build/publish errors: no registry metadata, no git revision, nothing built, bad -p",
  ignore: !ready,
  async fn() {
    const noMeta = await exampleCrate({ registry: false });
    const a = await runCli(["cargo", "build"], { cwd: noMeta, env });
    assertEquals(a.code, 2);
    assertEquals(a.stderr.trim().split("\n").length, 1);
    assertStringIncludes(a.stderr, "crate 'rust-greet' has no [package.metadata.ocipkg] registry");
    assertStringIncludes(a.stderr, join(noMeta, "Cargo.toml"));
    const noGit = await exampleCrate({ git: false });
    const b = await runCli(["cargo", "build"], { cwd: noGit, env });
    assertEquals(b.code, 2);
    assertStringIncludes(b.stderr, "is not in a git repository");
    const c = await runCli(["cargo", "publish"], { cwd: await exampleCrate(), env });
    assertEquals(c.code, 3);
    assertStringIncludes(c.stderr, "run 'ocipkg cargo build' first");
    const d = await runCli(["cargo", "build", "-p", "other"], { cwd: noGit, env });
    assertEquals(d.code, 2);
    assertStringIncludes(d.stderr, "package 'other' is not in the workspace (members: rust-greet)");
    const e = await runCli(["cargo", "build"], { cwd: await tempDir(), env });
    assertEquals(e.code, 1);
    assertStringIncludes(e.stderr, "cargo metadata failed");
    const f = await runCli(["cargo", "build", "--target", "nonsense"], { cwd: noGit, env });
    assertEquals(f.code, 2);
    assertStringIncludes(f.stderr, "invalid platform 'nonsense'");
  },
});

Deno.test({
  name: "cargo build --bin packs a binary crate; without --bin it says there is nothing to pack",
  ignore: !ready,
  async fn() {
    const crate = join(await tempDir(), "hello-bin");
    await Deno.mkdir(join(crate, "src"), { recursive: true });
    await Deno.writeTextFile(
      join(crate, "Cargo.toml"),
      `[package]\nname = "hello-bin"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n`,
    );
    await Deno.writeTextFile(join(crate, "src", "main.rs"), 'fn main() { println!("hi"); }\n');
    const image = `${reg!.host}/examples/hello-bin:1`;
    const none = await runCli(["cargo", "build", "-t", image], { cwd: crate, env });
    assertEquals(none.code, 3);
    assertStringIncludes(none.stderr, "has no staticlib or cdylib target (use --bin");
    const r = await runCli(["cargo", "build", "--bin", "-t", image], { cwd: crate, env });
    assertEquals(r.code, 0, r.stderr);
    const archive = r.stdout.trim().split(" ")[2]!;
    const info = await inspectLayout(archive);
    assertEquals(info.manifests[0]!.layers[0]!.files, ["hello-bin"]);
    // no git repository: the revision annotation is left out, the rest is there
    assertEquals(info.manifests[0]!.annotations["org.opencontainers.image.revision"], undefined);
    assertEquals(info.manifests[0]!.annotations["org.opencontainers.image.title"], "hello-bin");
  },
});
