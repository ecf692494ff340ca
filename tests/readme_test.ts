// The README's examples work as written (issue 25): every ```sh/```bash block not marked
// `<!-- not run …: reason -->` runs, in README order, in a fresh copy of this checkout (its files,
// committed to a new git repository), with `ocipkg` the launcher `deno task install --dir <tmp>`
// writes, HOME in a temp dir and no `deno` on PATH — the rewrites that keep it hermetic and
// parallel-safe are listed in _readme_blocks.ts. Each block is one bash script (`set -e`); what a
// line's comment states (an exit code, an output) is checked. The blocks left out are few, and
// each says why.
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { have, ROOT, run, tempDir } from "./_helpers.ts";
import { freePort } from "./_registry.ts";
import {
  blockScript,
  loopbackPorts,
  outputPattern,
  shellBlocks,
  withPorts,
} from "./_readme_blocks.ts";

const README = await Deno.readTextFile(join(ROOT, "README.md"));
const BLOCKS = shellBlocks(README);
const CI = !!Deno.env.get("CI");

/** Programs some blocks run besides ocipkg and the shell's own tools. */
const TOOLS = ["bash", "docker-registry", "cargo", "cmake", "cc", "pkg-config", "git", "openssl"];
const HAVE = new Map(await Promise.all(TOOLS.map(async (t) => [t, await have(t)] as const)));

/** The tools a block needs that are not installed. */
function missingTools(lines: string[]): string[] {
  const text = lines.join("\n");
  return TOOLS.filter((t) =>
    !HAVE.get(t) && (t === "bash" || new RegExp(`(^|[\\s(;&|])${t}\\b`, "m").test(text))
  );
}

const DENO_DIR = Deno.env.get("DENO_DIR") ||
  join(Deno.env.get("XDG_CACHE_HOME") || join(Deno.env.get("HOME") ?? "/root", ".cache"), "deno");

/**
 * A DENO_DIR of its own (the transpiled copy of the checkout goes there, and away with the temp
 * dir) sharing the npm packages already downloaded, so nothing is fetched.
 */
async function denoDir(dir: string): Promise<string> {
  await Deno.mkdir(dir);
  for (const sub of ["npm", "remote"]) {
    const from = join(DENO_DIR, sub);
    if (await Deno.stat(from).then(() => true, () => false)) {
      await Deno.symlink(from, join(dir, sub));
    }
  }
  return dir;
}

/** A copy of the checkout's files (tracked, and new ones not ignored), committed to a new repository. */
async function checkoutCopy(to: string, ports: Map<number, number>): Promise<string> {
  const ls = await run(
    "git",
    ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    ROOT,
  );
  assertEquals(ls.code, 0, ls.stderr);
  for (const rel of new Set(ls.stdout.split("\0").filter(Boolean))) {
    const from = join(ROOT, rel);
    const info = await Deno.lstat(from).catch(() => undefined);
    if (!info) continue; // deleted, not yet committed
    await Deno.mkdir(join(to, rel, ".."), { recursive: true });
    if (info.isSymlink) await Deno.symlink(await Deno.readLink(from), join(to, rel));
    else await Deno.copyFile(from, join(to, rel));
    // the examples name the README's registry too (build.rs, Cargo.toml, config.yml)
    if (rel.startsWith("examples/") && info.isFile && info.size < 1 << 20) {
      const text = await Deno.readTextFile(from).catch(() => undefined);
      if (text !== undefined && loopbackPorts(text).length > 0) {
        await Deno.writeTextFile(join(to, rel), withPorts(text, ports));
      }
    }
  }
  const git = (...args: string[]) =>
    run("git", ["-c", "user.email=readme@example.com", "-c", "user.name=readme", ...args], to);
  assertEquals((await git("init", "-q")).code, 0);
  assertEquals((await git("add", "-A")).code, 0);
  const c = await git("commit", "-q", "-m", "a checkout");
  assertEquals(c.code, 0, c.stderr);
  return to;
}

/** PATH without any directory holding a `deno`: a machine with only Node/npm. */
async function pathWithoutDeno(): Promise<string[]> {
  const dirs: string[] = [];
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    if (!dir || dirs.includes(dir)) continue;
    if (await Deno.stat(join(dir, "deno")).then(() => false, () => true)) dirs.push(dir);
  }
  return dirs;
}

Deno.test("readme: the blocks marked not run say why, and are few", () => {
  const notRun = BLOCKS.filter((b) => b.notRun !== undefined);
  for (const b of notRun) {
    assert(b.notRun!.length > 10, `README line ${b.line}: say why it is not run`);
  }
  console.log(
    `${BLOCKS.length} shell blocks; not run:\n` +
      notRun.map((b) => `  line ${b.line}: ${b.notRun}`).join("\n"),
  );
  assert(notRun.length * 2 < BLOCKS.length, "most of the README's examples run");
  // bare `deno` only where Install explains it: examples run it through npx
  for (const b of BLOCKS) {
    for (const l of b.lines) {
      assert(
        !/(^|[\s(;&|])deno\s/.test(l.replaceAll("npx -y deno", "")),
        `README line ${b.line}: ${l}`,
      );
    }
  }
});

Deno.test("readme: an output a comment states is matched with <…> and … as wildcards", () => {
  const re = new RegExp(outputPattern("localhost:5000/x:<rev> sha256:… …/target/a.tar"));
  assert(re.test("localhost:5000/x:1a2b3c4 sha256:0123 /t/target/a.tar"));
  assert(!re.test("localhost:5000/x:1 sha256:0 /t/target/aXtar"));
  assert(!re.test("localhost:5000/x:1 sha256:0 target/a.tar"));
});

Deno.test({
  name: "readme: every shell example not marked otherwise runs as written, in order",
  async fn(t) {
    const tmp = await tempDir("ocipkg-readme-");
    const runBlocks = BLOCKS.filter((b) => b.notRun === undefined);
    const named = new Set(runBlocks.flatMap((b) => loopbackPorts(b.lines.join("\n"))));
    named.add(5000);
    const ports = new Map<number, number>();
    for (const p of named) {
      let free = freePort();
      while ([...ports.values()].includes(free)) free = freePort();
      ports.set(p, free);
    }
    const checkout = await checkoutCopy(join(tmp, "checkout"), ports);
    const home = join(tmp, "home");
    const bin = join(tmp, "bin");
    await Deno.mkdir(home);
    await Deno.mkdir(join(tmp, "tmp"));
    const realHome = Deno.env.get("HOME") ?? "/root";
    const env: Record<string, string> = {
      HOME: home,
      PATH: [bin, ...await pathWithoutDeno()].join(":"),
      DENO_DIR: await denoDir(join(tmp, "deno-dir")),
      DENO_NO_UPDATE_CHECK: "1",
      NO_COLOR: "1",
      TERM: "dumb",
      TMPDIR: join(tmp, "tmp"),
      CARGO_NET_OFFLINE: "true",
    };
    // cargo through rustup finds its toolchains in the real home's
    for (const [name, dir] of [["CARGO_HOME", ".cargo"], ["RUSTUP_HOME", ".rustup"]]) {
      const path = Deno.env.get(name!) ?? join(realHome, dir!);
      if (await Deno.stat(path).then(() => true, () => false)) env[name!] = path;
    }
    // `ocipkg` on PATH: the documented way (the README's own install block then writes ~/.local/bin)
    const inst = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "install", "--dir", bin],
      cwd: checkout,
      clearEnv: true,
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(inst.code, 0, new TextDecoder().decode(inst.stderr));

    for (const block of BLOCKS) {
      const first = block.lines.find((l) => l.trim() && !l.startsWith("#"))?.trim() ?? "";
      const name = `README line ${block.line}: ${first.slice(0, 60)}`;
      if (block.notRun !== undefined) {
        await t.step({ name: `${name} (not run: ${block.notRun})`, ignore: true, fn() {} });
        continue;
      }
      const missing = missingTools(block.lines);
      if (missing.length > 0 && !CI) {
        console.log(`note: README line ${block.line} not run: ${missing.join(", ")} not installed`);
        await t.step({ name: `${name} (needs ${missing.join(", ")})`, ignore: true, fn() {} });
        continue;
      }
      await t.step(name, async () => {
        const script = join(tmp, `block-${block.line}.sh`);
        await Deno.writeTextFile(script, blockScript(block, { deno: Deno.execPath(), ports }));
        const r = await new Deno.Command("bash", {
          args: [script],
          cwd: checkout,
          clearEnv: true,
          env,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        const dec = new TextDecoder();
        const tail = (s: string) => s.split("\n").slice(-40).join("\n");
        assertEquals(
          r.code,
          0,
          `README line ${block.line}: exit ${r.code}\n--- stdout\n${
            tail(dec.decode(r.stdout))
          }\n--- stderr\n${tail(dec.decode(r.stderr))}`,
        );
      });
    }
  },
});
