// Local files ocipkg reads whole — the config file, CA files (flag or config entry), lock files,
// auth files, a layout's oci-layout, index.json and blobs — as a fifo (opening one waits for a
// writer), a device (/dev/zero never ends), a directory, or over their cap: each is refused with
// one line naming the file, exit 1, never a hang or unbounded memory. The CLI runs under a
// deadline, so a hang fails the test instead of the suite.
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { OciDir, packDirectory } from "./_internal.ts";
import { readLockFile } from "../lib/store/lock_file.ts";
import { readSmallFile, readSmallFileSync } from "../lib/util/files.ts";
import { CLI, tempDir } from "./_helpers.ts";

const DENO_DIR = Deno.env.get("DENO_DIR");

/** Run the CLI with a deadline (a hang is killed, and fails the test). */
async function cliWithin(
  args: string[],
  env: Record<string, string>,
  ms = 20_000,
): Promise<{ code: number; stderr: string; killed: boolean }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CLI, ...args],
    env: {
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
      ...(DENO_DIR ? { DENO_DIR } : {}),
      ...env,
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, ms);
  const r = await child.output();
  clearTimeout(timer);
  return { code: r.code, stderr: new TextDecoder().decode(r.stderr), killed };
}

function oneLineError(r: { code: number; stderr: string; killed: boolean }, re: RegExp): void {
  assert(!r.killed, "hung: killed after the deadline");
  assertEquals(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assertEquals(lines.length, 1, r.stderr);
  assert(re.test(lines[0]!), `expected ${JSON.stringify(lines[0])} to match ${re}`);
}

async function mkfifo(path: string): Promise<void> {
  const r = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert(r.success, "mkfifo");
}

const dir = await tempDir();
const env = {
  HOME: dir,
  OCIPKG_DATA_DIR: join(dir, "data"),
  OCIPKG_AUTH_FILE: join(dir, "auth.json"),
  DOCKER_CONFIG: join(dir, ".docker"),
  OCIPKG_CONFIG: join(dir, "config.json"),
};
const fifo = join(dir, "fifo");
await mkfifo(fifo);
const big = join(dir, "big.pem");
await Deno.writeFile(big, new Uint8Array(2 * 1024 * 1024 + 1).fill(0x41));
/** Kinds of file that are not a small regular file, with what the refusal says. */
const unfit: [string, string, RegExp][] = [
  ["a fifo", fifo, /is not a regular file$/],
  ["/dev/zero", "/dev/zero", /is not a regular file$/],
  ["a directory", dir, /is not a regular file$/],
  ["a symlink to /dev/zero", join(dir, "zero-link"), /is not a regular file$/],
];
await Deno.symlink("/dev/zero", join(dir, "zero-link"));
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

for (const [kind, path, re] of [...unfit, ["over 1 MiB", big, /is over 1048576 bytes$/] as const]) {
  Deno.test(`a CA file that is ${kind}: refused unread, naming it and the flag or entry`, async () => {
    oneLineError(
      await cliWithin(["tags", "registry.invalid:5443/x", "--ca-file", path], env),
      new RegExp(`^error: CA file '${esc(path)}' \\(--ca-file\\) ${re.source}`),
    );
    const config = join(await tempDir(), "config.json");
    await Deno.writeTextFile(
      config,
      JSON.stringify({ registries: { "registry.invalid:5443": { caFile: path } } }),
    );
    oneLineError(
      await cliWithin(["tags", "registry.invalid:5443/x"], { ...env, OCIPKG_CONFIG: config }),
      new RegExp(
        `^error: CA file '${esc(path)}' \\("caFile" of the registries entry .*${re.source}`,
      ),
    );
  });
}

for (const [kind, path, re] of unfit) {
  Deno.test(`a config file, lock file or layout file that is ${kind}: refused unread`, async () => {
    oneLineError(
      await cliWithin(["tags", "127.0.0.1:9/x"], { ...env, OCIPKG_CONFIG: path }),
      new RegExp(`^error: config file ${esc(path)} ${re.source}`),
    );
    oneLineError(
      await cliWithin(["prune", "--keep-locked", path, "--dry-run"], env),
      new RegExp(`^error: ${esc(path)}: the lock file ${re.source}`),
    );
    await assertRejects(() => readLockFile(path), Error, "is not a regular file");
    // an oci-dir whose oci-layout, index.json or a blob is one
    const work = await tempDir();
    await Deno.mkdir(join(work, "pkg"));
    await Deno.writeTextFile(join(work, "pkg", "a.txt"), "a");
    const packed = await packDirectory(join(work, "pkg"), `oci:${join(work, "lay")}`, {
      name: "example.com/x:1",
    });
    for (const file of ["oci-layout", "index.json", `blobs/sha256/${packed.digest.slice(7)}`]) {
      const lay = join(await tempDir(), "lay");
      await new Deno.Command("cp", { args: ["-r", join(work, "lay"), lay] }).output();
      await Deno.remove(join(lay, file));
      if (path === fifo) await mkfifo(join(lay, file));
      else await Deno.symlink(path, join(lay, file));
      const r = await cliWithin(["inspect", `oci:${lay}`], env);
      oneLineError(r, /is not a regular file$/);
      assert(r.stderr.includes(file.split("/")[0]!), r.stderr);
    }
  });
}

Deno.test("the small-file reader: a file that grows past its cap while read is refused; a fifo is never opened", async () => {
  const d = await tempDir();
  const f = join(d, "f");
  await Deno.writeTextFile(f, "1234");
  assertEquals((await readSmallFile(f, "f", 4))?.bytes.length, 4);
  assertEquals(readSmallFileSync(f, "f", 4)?.bytes.length, 4);
  await assertRejects(() => readSmallFile(f, "file f", 3), Error, "file f is over 3 bytes");
  assertEquals(await readSmallFile(join(d, "none"), "none", 4), undefined);
  // no writer ever opens the fifo: a reader that opened it would wait forever
  await assertRejects(() => readSmallFile(fifo, "fifo", 4), Error, "fifo is not a regular file");
  await assertRejects(() => OciDir.open(fifo), Error);
});
