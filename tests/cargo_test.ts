// `ocipkg cargo build` / `publish` (and `cargo ocipkg …` through the shim) on
// the example crate in examples/rust-lib, pushed to a real docker-registry,
// then loaded back from Deno through FFI.
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { inspectLayout, Store } from "./_internal.ts";
import {
  callGreet,
  copyTree,
  have,
  pathWith,
  ROOT,
  run,
  runCli,
  sha256,
  tempDir,
} from "./_helpers.ts";
import { libraryPath } from "../lib/native/mod.ts";
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
  name: "cargo build/publish errors: no registry metadata, no git revision, bad -p",
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
    const c = await runCli(["cargo", "publish"], { cwd: noGit, env });
    assertEquals(c.code, 2);
    assertEquals(c.stderr.trim().split("\n").length, 1);
    assertStringIncludes(c.stderr, "is not in a git repository with a commit (give -t)");
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

Deno.test({
  name:
    "cargo publish builds what it pushes: an edit is published as <rev>-dirty, as <new rev> once committed",
  ignore: !ready,
  async fn() {
    const crate = await exampleCrate();
    const g = (...a: string[]) =>
      run("git", ["-c", "user.email=t@example.com", "-c", "user.name=t", ...a], crate);
    const head = async () => (await g("rev-parse", "--short=7", "HEAD")).stdout.trim();
    const repo = `${reg!.host}/examples/rust-greet`;
    const data = await tempDir();
    const store = new Store(data);
    const publish = async (image: string) => {
      const p = await runCli(["cargo", "publish"], { cwd: crate, dataHome: data, env });
      assertEquals(p.code, 0, p.stderr);
      const [name, digest] = p.stdout.trim().split(" ");
      assertEquals(name, image);
      // the library pulled back is, byte for byte, the one cargo just built
      const pulled = await Deno.readFile(await libraryPath(image, "rust_greet", { store }));
      const built = await Deno.readFile(join(crate, "target", "debug", "librust_greet.so"));
      assertEquals(await sha256(pulled), await sha256(built));
      return {
        digest: digest!,
        stderr: p.stderr,
        greet: await callGreet(image, "rust_greet", { store }),
      };
    };
    const rev = await head();
    const b = await runCli(["cargo", "build"], { cwd: crate, env });
    assertEquals(b.code, 0, b.stderr);
    // target/ and the Cargo.lock cargo wrote are untracked, and do not count
    const first = await publish(`${repo}:${rev}`);
    assertEquals(first.greet, "hello from rust-greet 42");
    assertEquals(first.digest, b.stdout.split(" ")[1]); // nothing changed: the build's digest

    // an edit without a build: publish compiles it and marks the revision dirty
    const lib = join(crate, "src", "lib.rs");
    await Deno.writeTextFile(lib, (await Deno.readTextFile(lib)).replace("    42\n", "    43\n"));
    const edited = await publish(`${repo}:${rev}-dirty`);
    assertEquals(edited.greet, "hello from rust-greet 43");
    assertStringIncludes(edited.stderr, "'src/lib.rs' differs from git HEAD");
    const archive = b.stdout.trim().split(" ")[2]!; // publish packs where build does
    const info = await inspectLayout(archive);
    assertEquals(
      info.manifests[0]!.annotations["org.opencontainers.image.revision"],
      `${rev}-dirty`,
    );

    // committed: the new revision, clean
    assertEquals((await g("commit", "-q", "-am", "43")).code, 0);
    const rev2 = await head();
    const committed = await publish(`${repo}:${rev2}`);
    assertEquals(committed.greet, "hello from rust-greet 43");
    assert(!committed.stderr.includes("differs from git HEAD"), committed.stderr);

    // an untracked file that is not ignored makes it dirty too; on a detached HEAD, the same tags
    await Deno.writeTextFile(join(crate, "notes.txt"), "todo\n");
    assertEquals((await g("checkout", "-q", "--detach")).code, 0);
    assertStringIncludes((await publish(`${repo}:${rev2}-dirty`)).stderr, "'notes.txt' differs");
    await Deno.writeTextFile(join(crate, ".gitignore"), "notes.txt\n.gitignore\n");
    assertEquals((await publish(`${repo}:${rev2}`)).greet, "hello from rust-greet 43");
  },
});
