// A full disk or a read-only file system is reported as such, naming the path
// — never as a corrupt layer — with exit code 1 and nothing partial left.
// Needs a small tmpfs: run as root (CI is), skipped otherwise.
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { listTree, run, runCli, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";

const canMount = Deno.uid() === 0 && (await run("mount", ["--version"]).catch(() => null)) !== null;

/** Mount a tmpfs of `size` at a fresh dir for `fn`, then unmount it. */
async function withTmpfs(size: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir("ocipkg-tmpfs-");
  const m = await run("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  assertEquals(m.code, 0, m.stderr);
  try {
    await fn(dir);
  } finally {
    await run("umount", [dir]);
  }
}

/** The error: one line, exit 1, says what ran out, names a path under `where`, never "corrupt". */
function resourceFailure(r: { code: number; stderr: string }, reason: RegExp, where: string) {
  assertEquals(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assertEquals(lines.length, 1, r.stderr);
  assert(reason.test(lines[0]!), lines[0]);
  assertStringIncludes(lines[0]!, where);
  assert(!/corrupt/.test(lines[0]!), lines[0]);
}

Deno.test({
  name: "disk errors: out of space and read-only are named, with the path, nothing left",
  ignore: !canMount,
  fn: async (t) => {
    const work = await tempDir();
    const src = `${work}/pkg`;
    await Deno.mkdir(src);
    // 3 MiB that does not compress: too big for a 2 MiB file system
    const big = new Uint8Array(3 << 20);
    for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
    await Deno.writeFile(`${src}/libbig.so`, big);
    const reg = await startRegistry();
    const image = `${reg.host}/disk/big:1`;
    try {
      assertEquals((await runCli(["pack", src, `${work}/big.tar`, "-t", image])).code, 0);
      assertEquals((await runCli(["push", `${work}/big.tar`, image])).code, 0);

      await t.step("pack to a full disk", () =>
        withTmpfs("2m", async (fs) => {
          const r = await runCli(["pack", src, `${fs}/out.tar`]);
          resourceFailure(r, /out of disk space \(ENOSPC\)/, `${fs}/out.tar`);
          assertEquals(await listTree(fs), []);
        }));

      await t.step("get into a store on a full disk", () =>
        withTmpfs("2m", async (fs) => {
          const r = await runCli(["get", image], { dataHome: `${fs}/store` });
          resourceFailure(r, /out of disk space \(ENOSPC\)/, `${fs}/store`);
          // no image, no temp dir: at most the empty directories of the store
          const files = (await listTree(fs)).filter((p) => !p.endsWith("/"));
          assertEquals(files.filter((p) => !/\.lock$/.test(p)), [], files.join("\n"));
        }));

      await t.step("pull to a full disk", () =>
        withTmpfs("2m", async (fs) => {
          for (const out of [`oci:${fs}/dir`, `${fs}/out.tar`]) {
            const r = await runCli(["pull", image, "-o", out]);
            resourceFailure(r, /out of disk space \(ENOSPC\)/, fs);
          }
          const files = (await listTree(fs)).filter((p) =>
            /blobs\/sha256\/[0-9a-f]{64}$|\.tar$/.test(p)
          );
          assertEquals(files, [], "no blob or archive is left");
        }));

      await t.step("pull to a read-only file system", () =>
        withTmpfs("8m", async (fs) => {
          assertEquals((await run("mount", ["-o", "remount,ro", fs])).code, 0);
          const r = await runCli(["pull", image, "-o", `${fs}/out.tar`]);
          resourceFailure(r, /read-only file system \(EROFS\)/, `${fs}/out.tar`);
        }));
    } finally {
      await reg.stop();
    }
  },
});
