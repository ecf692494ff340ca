// Large blobs written past the page cache (lib/util/direct_write.ts): the bytes on disk are the
// bytes verified, every way out closes the worker's handle and leaves no temp file, a file system
// that fills up gives the system's reason, and file systems not meant for it are written as before.
import assert from "node:assert/strict";
import { join } from "node:path";
import { digestOf } from "../lib/oci/mod.ts";
import { OciDir, VerificationError } from "../mod.ts";
import {
  ALIGN,
  DirectWriter,
  fileSystemOf,
  mountTypeOf,
  SLOT_SIZE,
} from "../lib/util/direct_write.ts";
import { DIRECT_MIN } from "../lib/transport/layout/verified_write.ts";
import { run, tempDir } from "./_helpers.ts";

/** Deterministic bytes (a cheap PRNG: 64 MiB of `getRandomValues` is slow to make). */
function bytes(n: number, seed = 1): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  const words = new Uint32Array(out.buffer, 0, n >> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let i = words.length * 4; i < n; i++) out[i] = i & 0xff;
  return out;
}

/** `data` as a byte stream (BYOB readers fill their own buffers) or as chunks of odd sizes. */
function streamOf(data: Uint8Array, byteStream: boolean): ReadableStream<Uint8Array> {
  let off = 0;
  let k = 0;
  if (byteStream) {
    return new ReadableStream({
      type: "bytes",
      pull(c) {
        if (off >= data.byteLength) {
          c.close();
          c.byobRequest?.respond(0);
          return;
        }
        const req = c.byobRequest!;
        const view = req.view as Uint8Array;
        const n = Math.min(view.byteLength, data.byteLength - off, 100_000 + (k++ % 7) * 33_333);
        view.set(data.subarray(off, off + n));
        off += n;
        req.respond(n);
      },
    });
  }
  return new ReadableStream({
    pull(c) {
      if (off >= data.byteLength) return c.close();
      const n = Math.min(data.byteLength - off, 65_536 + (k++ % 5) * 12_345);
      c.enqueue(data.slice(off, off + n));
      off += n;
    },
  });
}

/**
 * This process's open files under `dir` (deleted ones too). Not a count of all its handles:
 * test modules run in parallel may share the process and open their own meanwhile.
 */
function openFilesUnder(dir: string): string[] {
  const open: string[] = [];
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      const target = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
      if (target.startsWith(dir + "/")) open.push(target);
    } catch { /* closed meanwhile */ }
  }
  return open;
}

/** Wait until `check()` holds (a worker closes its handle as it ends), at most ~5 s. */
async function eventually(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(check());
}

/** Count the direct writers made while `fn` runs. */
async function countingDirect<T>(fn: () => Promise<T>): Promise<{ made: number; out: T }> {
  const open = DirectWriter.open;
  let made = 0;
  DirectWriter.open = async (...args) => {
    const w = await open.apply(DirectWriter, args);
    if (w) made++;
    return w;
  };
  try {
    const out = await fn();
    return { made, out };
  } finally {
    DirectWriter.open = open;
  }
}

const linux = Deno.build.os === "linux";

Deno.test({
  name: "direct write: a large blob lands byte for byte, through the worker on a local disk",
  ignore: !linux,
  async fn() {
    const dir = await tempDir();
    const direct = fileSystemOf(join(dir, "x")) !== undefined;
    if (!direct) console.log(`  (${dir} is not on a local disk file system: checked as written)`);
    const layout = await OciDir.open(join(dir, "lay"), { create: true });
    // a tail under ALIGN, none, and a partial last slot
    const sizes = [DIRECT_MIN + ALIGN + 17, DIRECT_MIN, DIRECT_MIN + SLOT_SIZE / 2 + 3];
    for (const [i, size] of sizes.entries()) {
      const data = bytes(size, i + 7);
      const digest = digestOf(data);
      const { made, out } = await countingDirect(() =>
        layout.push(
          { mediaType: "application/octet-stream", digest, size },
          streamOf(data, i !== 1),
        )
      );
      assert.deepEqual(out, { mediaType: "application/octet-stream", digest, size });
      assert.equal(made, direct ? 1 : 0);
    }
    await layout.close();
    for (const [i, size] of sizes.entries()) {
      const data = bytes(size, i + 7);
      const got = await Deno.readFile(join(dir, "lay", "blobs", "sha256", digestOf(data).slice(7)));
      assert.equal(got.byteLength, size);
      assert.ok(got.every((b, k) => b === data[k]), `blob ${i} differs`);
    }
    // nothing left beside the blobs
    const names = [...Deno.readDirSync(join(dir, "lay", "blobs", "sha256"))].map((e) => e.name);
    assert.equal(names.filter((n) => n.startsWith(".")).length, 0);
  },
});

Deno.test({
  name: "direct write: wrong bytes and a stop keep no file and no open handle",
  ignore: !linux,
  async fn() {
    const dir = await tempDir();
    const layout = await OciDir.open(join(dir, "lay"), { create: true });
    const size = DIRECT_MIN + 1000;
    const data = bytes(size, 3);
    // a digest that is not the bytes'
    const wrong = digestOf(bytes(16, 9));
    await assert.rejects(
      layout.push({ mediaType: "x/y", digest: wrong, size }, streamOf(data, true)),
      VerificationError,
    );
    // one byte more than the size: refused at the chunk that goes past it
    await assert.rejects(
      layout.push(
        { mediaType: "x/y", digest: digestOf(data), size: size - 1 },
        streamOf(data, false),
      ),
      VerificationError,
    );
    // stopped half-way (the reason given is the one thrown)
    const stop = new AbortController();
    const why = new Error("stopped by the test");
    let sent = 0;
    const src = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent > size / 2) {
          stop.abort(why);
          return new Promise(() => {}); // never more
        }
        c.enqueue(data.slice(sent, sent + 1_000_000));
        sent += 1_000_000;
      },
    });
    const e = await layout.push({ mediaType: "x/y", digest: digestOf(data), size }, src, {
      signal: stop.signal,
    }).catch((e) => e);
    assert.equal(e, why);
    await layout.close();
    assert.deepEqual([...Deno.readDirSync(join(dir, "lay", "blobs", "sha256"))], []);
    const real = Deno.realPathSync(dir);
    await eventually(() => openFilesUnder(real).length === 0);
  },
});

Deno.test({
  name: "direct write: a file system that fills up gives the system's reason (ENOSPC)",
  ignore: !linux,
  async fn(t) {
    const dir = await tempDir();
    const mnt = join(dir, "small");
    await Deno.mkdir(mnt);
    const mounted = await run("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt])
      .catch((e) => ({ code: -1, stdout: "", stderr: String(e) }));
    if (mounted.code !== 0) {
      console.log(`  skipped: cannot mount a small tmpfs here (${mounted.stderr.trim()})`);
      return;
    }
    try {
      const path = join(mnt, "blob");
      using file = await Deno.open(path, { write: true, createNew: true });
      // a tmpfs is not written directly unless asked (memory either way)
      assert.equal(fileSystemOf(path), undefined);
      assert.equal(await DirectWriter.open(path, file), undefined);
      const w = await DirectWriter.open(path, file, { anyFileSystem: true });
      if (!w) {
        console.log("  skipped: this kernel's tmpfs refuses O_DIRECT");
        return;
      }
      await t.step("the worker's failure reaches the writer with its code", async () => {
        const e = await (async () => {
          for (let i = 0; i < 8; i++) await w.write(bytes(SLOT_SIZE, i));
          await w.flush();
        })().catch((e) => e);
        assert.ok(e instanceof Error, String(e));
        assert.equal((e as { code?: string }).code, "ENOSPC");
        w.dispose();
      });
    } finally {
      await run("umount", ["-l", mnt]);
    }
  },
});

Deno.test("direct write: the mount that holds a directory decides", () => {
  const table = [
    "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw",
    "27 26 0:30 / /data rw - xfs /dev/vdb rw",
    "28 27 0:31 / /data/nfs rw - nfs4 srv:/e rw",
    "29 26 0:32 / /tmp rw - tmpfs tmpfs rw",
    "30 29 0:33 / /tmp rw - ext4 /dev/vdc rw", // mounted over the tmpfs: hides it
    "31 26 0:34 / /with\\040space rw shared:1 - btrfs /dev/vdd rw",
    "garbage line",
  ].join("\n");
  assert.equal(mountTypeOf(table, "/"), "ext4");
  assert.equal(mountTypeOf(table, "/home/me"), "ext4");
  assert.equal(mountTypeOf(table, "/data"), "xfs");
  assert.equal(mountTypeOf(table, "/data/nfs/x"), "nfs4");
  assert.equal(mountTypeOf(table, "/data/nfsx"), "xfs");
  assert.equal(mountTypeOf(table, "/tmp/a"), "ext4");
  assert.equal(mountTypeOf(table, "/with space/lib"), "btrfs");
  assert.equal(mountTypeOf("", "/"), undefined);
});

Deno.test({
  name: "direct write: through a symlink, the real directory's file system decides",
  ignore: !linux,
  async fn() {
    const dir = await tempDir();
    await Deno.symlink("/proc/self", join(dir, "proc"));
    assert.equal(fileSystemOf(join(dir, "proc", "status")), undefined);
    assert.equal(fileSystemOf(join(dir, "x")), fileSystemOf(join(Deno.realPathSync(dir), "x")));
    // a file at the root is on the root's file system, wherever the working directory is
    const cwd = Deno.cwd();
    Deno.chdir("/proc/self");
    try {
      assert.equal(
        fileSystemOf("/x"),
        mountTypeOf(Deno.readTextFileSync("/proc/self/mountinfo"), "/"),
      );
      assert.equal(fileSystemOf("status"), undefined); // relative: the working directory's
    } finally {
      Deno.chdir(cwd);
    }
  },
});

/**
 * In a process of its own (to read its memory, and collect garbage on demand): `count` writers
 * one after another, each with 5 slots written, then stopped (`dispose`) or finished (`flush`);
 * what the process's memory (after a stop: its RSS at the end; after a finish: its peak) and open
 * handles grew by over them.
 */
async function growthOverWriters(
  dir: string,
  end: "dispose" | "flush",
  collect: boolean,
  count: number,
): Promise<{ grew: number; fds: number }> {
  const module = new URL("../lib/util/direct_write.ts", import.meta.url).href;
  const script = join(dir, `${end}.ts`);
  await Deno.writeTextFile(
    script,
    `import { DirectWriter, SLOT_SIZE } from ${JSON.stringify(module)};
const rss = () => Number(Deno.readTextFileSync("/proc/self/status").match(/${
      end === "flush" ? "VmHWM" : "VmRSS"
    }:\\s+(\\d+)/)![1]) >> 10;
const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
const gc = (globalThis as unknown as { gc(): void }).gc;
const chunk = new Uint8Array(SLOT_SIZE).fill(7);
const round = async (k: number) => {
  const path = ${JSON.stringify(dir)} + "/f" + k;
  const file = await Deno.open(path, { write: true, createNew: true });
  const w = (await DirectWriter.open(path, file))!;
  for (let i = 0; i < 5; i++) await w.write(chunk);
  ${end === "dispose" ? "w.dispose();" : "await w.flush();"}
  file.close();
  await Deno.remove(path);
};
await round(-1);
const settle = async (want: number) => {
  for (let i = 0; i < 100 && fds() > want; i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 200));
  ${collect ? "gc();" : ""}
};
const fd0 = fds();
await settle(fd0);
const before = rss();
for (let k = 0; k < ${count}; k++) await round(k);
await settle(fd0);
console.log(JSON.stringify({ grew: rss() - before, fds: fds() - fd0 }));
`,
  );
  const r = await run(Deno.execPath(), ["run", "-A", "--v8-flags=--expose-gc", script]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

Deno.test({
  name: "direct write: a stopped writer's worker and ring are freed (no 16 MiB per stopped blob)",
  ignore: !linux,
  async fn() {
    const dir = await tempDir();
    if (fileSystemOf(join(dir, "x")) === undefined) {
      console.log(`  skipped: ${dir} is not on a local disk file system`);
      return;
    }
    // A worker that only ended itself kept its isolate and the ring: ≈ 16 MiB more per
    // stopped writer, for good (≈ 260 MB here).
    const { grew, fds } = await growthOverWriters(dir, "dispose", true, 16);
    const what = `over 16 stopped writers: memory grew by ${grew} MB, ${fds} handles more`;
    assert.ok(grew < 96 && fds <= 0, what);
  },
});

Deno.test({
  name: "direct write: writers one after another reuse their rings (flat without the collector)",
  ignore: !linux,
  async fn() {
    const dir = await tempDir();
    if (fileSystemOf(join(dir, "x")) === undefined) {
      console.log(`  skipped: ${dir} is not on a local disk file system`);
      return;
    }
    // no garbage collection asked for: each finished writer's ring goes to the next one (a new
    // 16 MiB ring per writer: the peak grew by ≈ 250 MB over 30 before V8 collected them)
    const { grew, fds } = await growthOverWriters(dir, "flush", false, 30);
    const what = `over 30 finished writers: peak memory grew by ${grew} MB, ${fds} handles more`;
    // (the last worker's event loop may still be closing its 2 handles: not one pair per writer)
    assert.ok(grew < 96 && fds <= 2, what);
  },
});
