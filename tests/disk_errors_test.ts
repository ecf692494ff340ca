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

/** Mount a fresh ext4 of `mib` MiB (a loop device over a file) at a fresh dir for `fn`. */
async function withExt4(mib: number, fn: (dir: string) => Promise<void>): Promise<boolean> {
  const work = await tempDir("ocipkg-ext4-");
  const image = `${work}/fs.img`;
  const dir = `${work}/mnt`;
  await Deno.mkdir(dir);
  const file = await Deno.open(image, { write: true, createNew: true });
  await file.truncate(mib << 20);
  file.close();
  const made = await run("mkfs.ext4", ["-q", "-F", image]).catch(() => null);
  if (made?.code !== 0) return false;
  const m = await run("mount", ["-o", "loop", image, dir]);
  if (m.code !== 0) return false;
  try {
    await fn(dir);
  } finally {
    await run("umount", [dir]);
  }
  return true;
}

Deno.test({
  name:
    "disk errors: a large blob written past the page cache to a full ext4 is named, nothing left",
  ignore: !canMount || Deno.build.os !== "linux",
  fn: async () => {
    const work = await tempDir();
    const src = `${work}/pkg`;
    await Deno.mkdir(src);
    // 72 MiB that does not compress: over the size written with O_DIRECT (64 MiB), and more
    // than a 48 MiB file system holds
    const big = new Uint8Array(72 << 20);
    for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
    await Deno.writeFile(`${src}/libbig.so`, big);
    const reg = await startRegistry();
    const image = `${reg.host}/disk/large:1`;
    try {
      assertEquals((await runCli(["pack", src, `${work}/big.tar`, "-t", image])).code, 0);
      assertEquals((await runCli(["push", `${work}/big.tar`, image])).code, 0);
      const mounted = await withExt4(48, async (fs) => {
        const r = await runCli(["pull", image, "-o", `oci:${fs}/dir`]);
        resourceFailure(r, /out of disk space \(ENOSPC\)/, `${fs}/dir`);
        const got = await runCli(["get", image], { dataHome: `${fs}/store` });
        resourceFailure(got, /out of disk space \(ENOSPC\)/, `${fs}/store`);
        const files = (await listTree(fs)).filter((p) => !p.endsWith("/"));
        const left = files.filter((p) => /blobs\/sha256\/|\.tmp|libbig/.test(p));
        assertEquals(left, [], files.join("\n"));
      });
      if (!mounted) console.log("  skipped: no mkfs.ext4 or loop mount here");
    } finally {
      await reg.stop();
    }
  },
});
