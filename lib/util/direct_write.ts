/**
 * A large file written past the page cache: the aligned bulk of it with
 * `O_DIRECT` from a worker thread, the unaligned tail through the caller's
 * file handle ({@link DirectWriter}). Linux only, on local disk file systems
 * ({@link DIRECT_FILE_SYSTEMS}: ext4, xfs, btrfs, …); elsewhere (tmpfs, NFS
 * and other network or FUSE mounts, macOS, Windows), and wherever the open
 * with `O_DIRECT` is refused, the caller writes through the page cache as
 * before.
 *
 * Why: a layout makes each blob durable (fdatasync) before an index names
 * it. Written through the page cache, a 1 GiB blob is first copied into
 * ≈ 1 GiB of fresh page-cache memory (`copy_folio_from_iter`: 0.5–1.3 s of
 * kernel time on a 2-core VM, more after other programs wrote and deleted
 * gigabytes), then written back by the fdatasync, after the download.
 * Written with `O_DIRECT`, the bytes go to the disk from this process's
 * memory while the download goes on: no copy, no dirty pages, no second
 * pass; the fdatasync that follows only flushes the disk's cache and the
 * file's size. (Measured and kept out: an fdatasync every 128–256 MiB
 * during the download made the last one short but the whole no faster.)
 *
 * `O_DIRECT` wants the memory, the file offset and the length aligned to the
 * disk's logical block: the ring is a shared `WebAssembly.Memory` (its base
 * is page-aligned, unlike an `ArrayBuffer`'s), cut in {@link SLOT_SIZE}
 * slots; each full slot goes out at a multiple of its size, the last
 * partial one rounded down to {@link ALIGN}, the rest (under 4 KiB) through
 * the caller's handle once the worker is done. The worker runs the writes
 * synchronously (Deno's `node:fs` writes on the calling thread: from the main
 * thread they would stall the download), so they need a thread of their own.
 * A write that the file system refuses for its alignment after all
 * (`EINVAL`) switches the worker to an ordinary handle for that write and
 * every one after it: bytes are never dropped for a choice of speed.
 *
 * The worker's code is inline (a `blob:` URL): nothing is read next to the
 * module, `deno compile` needs no extra file.
 *
 * @module
 */
import { OcipkgError } from "./errors.ts";

/** Bytes per slot of the ring (4 MiB: one `O_DIRECT` write each). */
export const SLOT_SIZE = 4 << 20;
/** Slots in the ring: up to 3 full slots queued while one fills. */
const SLOTS = 4;
/** Bytes per read a writer gives out ({@link DirectWriter.space}). */
const READ_BUFFER = 1 << 20;
/** Alignment of every direct write's offset and length. */
export const ALIGN = 4096;
/** Longest wait on the worker before it is declared stuck (ms). */
const STUCK_MS = 120_000;

/** ctl[SLOTS]: 0 running, 1 closed after its last write, 2 failed, 3 closed when stopped. */
const STATUS = SLOTS;

const WORKER_SOURCE = `
import * as fs from "node:fs";
let fd, plain, ctl, data, path, report;
const fail = (err) => {
  // the reason first (code, then message), then the status the main thread waits on
  const text = new TextEncoder().encode((err?.code ?? "") + "\\n" + String(err?.message ?? err));
  report.set(text.subarray(0, report.length));
  Atomics.store(ctl, ${STATUS}, 2);
  for (let i = 0; i < ctl.length; i++) Atomics.notify(ctl, i);
};
const closeAll = () => {
  for (const f of [fd, plain]) if (f !== undefined) try { fs.closeSync(f); } catch {}
  fd = plain = undefined;
};
self.onmessage = (e) => {
  const m = e.data;
  if (m.init) {
    ctl = new Int32Array(m.ctl);
    data = new Uint8Array(m.mem);
    report = new Uint8Array(m.report);
    path = m.path;
    const flag = fs.constants.O_DIRECT;
    try {
      if (typeof flag !== "number") throw new Error("no O_DIRECT");
      fd = fs.openSync(path, fs.constants.O_WRONLY | flag);
      self.postMessage({ ready: true });
    } catch (err) {
      self.postMessage({ ready: false }); // the caller writes through the page cache
      self.close();
    }
    return;
  }
  if (m.close) {
    closeAll();
    Atomics.compareExchange(ctl, ${STATUS}, 0, m.ok ? 1 : 3);
    Atomics.notify(ctl, ${STATUS});
    self.close();
    return;
  }
  try {
    let off = 0;
    while (off < m.len) {
      const at = m.slot * ${SLOT_SIZE} + off;
      let n;
      try {
        n = fs.writeSync(plain ?? fd, data, at, m.len - off, m.pos + off);
      } catch (err) {
        // refused for its alignment after all: the rest goes through the page cache
        if (plain !== undefined || err?.code !== "EINVAL") throw err;
        plain = fs.openSync(path, fs.constants.O_WRONLY);
        continue;
      }
      if (n <= 0) throw new Error("a write made no progress");
      off += n;
    }
    Atomics.store(ctl, m.slot, 0);
    Atomics.notify(ctl, m.slot);
  } catch (err) {
    closeAll();
    fail(err);
    self.close();
  }
};
`;
let workerUrl: string | undefined;

/**
 * Rings given back by writers whose worker closed its handle and ended (no write of theirs can
 * touch the memory any more), for the next writer: back-to-back large blobs reuse two rings
 * instead of leaving one per blob for the collector (a loop of 30 writers grew to ≈ 300 MB).
 */
const spareRings: WebAssembly.Memory[] = [];
const MAX_SPARE_RINGS = 2;

/** A ring for a writer: a spare one, or a new shared, page-aligned memory. */
function takeRing(): WebAssembly.Memory {
  const pages = (SLOTS * SLOT_SIZE) >> 16;
  return spareRings.pop() ??
    new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
}

/** Keep a ring whose worker is gone for the next writer (up to {@link MAX_SPARE_RINGS}). */
function giveBackRing(ring: WebAssembly.Memory): void {
  if (spareRings.length < MAX_SPARE_RINGS && !spareRings.includes(ring)) spareRings.push(ring);
}

/**
 * File systems written with `O_DIRECT`: local ones on a block device, where a
 * direct write goes to the disk's queue at once. Elsewhere it does not pay
 * (tmpfs: memory either way) or costs (NFS and other network file systems:
 * one synchronous round trip per write, where the page cache pipelines them).
 */
export const DIRECT_FILE_SYSTEMS: ReadonlySet<string> = new Set([
  "ext2",
  "ext3",
  "ext4",
  "xfs",
  "btrfs",
  "f2fs",
]);

/**
 * The type of the local file system {@link DirectWriter} may write `path`
 * on with `O_DIRECT` (one of {@link DIRECT_FILE_SYSTEMS}), or `undefined`:
 * not Linux, `/proc/self/mountinfo` unreadable, another file system. Decided
 * by the mount that holds the file's real directory (symlinks resolved; the
 * longest mount point that contains it).
 *
 * @param path a file (its directory must exist)
 * @returns the file system's type, when direct writes suit it
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DIRECT_FILE_SYSTEMS, fileSystemOf } from "./direct_write.ts";
 * const fs = fileSystemOf("/proc/self/status");
 * assert.equal(fs, undefined); // procfs: no
 * const here = fileSystemOf("./deno.json");
 * assert.ok(here === undefined || DIRECT_FILE_SYSTEMS.has(here));
 * ```
 */
export function fileSystemOf(path: string): string | undefined {
  if (Deno.build.os !== "linux") return undefined;
  try {
    // the file's directory: "/" for "/x", "." for "x" (not the working directory for "/x")
    const slash = path.lastIndexOf("/");
    const dir = Deno.realPathSync(slash < 0 ? "." : path.slice(0, slash) || "/");
    const type = mountTypeOf(Deno.readTextFileSync("/proc/self/mountinfo"), dir);
    return type !== undefined && DIRECT_FILE_SYSTEMS.has(type) ? type : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The type of the file system mounted at the longest mount point of a
 * `/proc/self/mountinfo` table that contains `dir` (the last of several
 * mounts on one point: it hides the others); octal escapes (`\040` for a
 * space) decoded.
 *
 * @param table the text of a mountinfo file
 * @param dir an absolute, real directory
 * @returns the file system's type, or `undefined` when no line matches
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mountTypeOf } from "./direct_write.ts";
 * const table = [
 *   "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw",
 *   "30 26 0:40 / /home/a\\040b rw - nfs srv:/x rw",
 * ].join("\n");
 * assert.equal(mountTypeOf(table, "/home/a b/lib"), "nfs");
 * assert.equal(mountTypeOf(table, "/home/a bc"), "ext4"); // not inside "/home/a b"
 * ```
 */
export function mountTypeOf(table: string, dir: string): string | undefined {
  let best = -1;
  let type: string | undefined;
  for (const line of table.split("\n")) {
    // "36 35 98:0 /root /mnt rw,noatime master:1 - ext4 /dev/vda rw": point 5th, type after "-"
    const fields = line.split(" ");
    const dash = fields.indexOf("-", 6);
    if (dash < 0 || fields.length < dash + 2) continue;
    const point = fields[4]!.replace(
      /\\([0-7]{3})/g,
      (_, o: string) => String.fromCharCode(parseInt(o, 8)),
    );
    const inside = point === "/" || dir === point || dir.startsWith(point + "/");
    if (inside && point.length >= best) {
      best = point.length;
      type = fields[dash + 1];
    }
  }
  return type;
}

/**
 * Writes a file's bytes in order: whole slots with `O_DIRECT` from a worker
 * thread, the last few bytes through `file`. Use {@link DirectWriter.open}
 * (it answers `undefined` where direct writes are not possible), then
 * {@link DirectWriter.write} for each chunk, then {@link DirectWriter.flush}
 * — or {@link DirectWriter.dispose} on every other way out. It never syncs:
 * the caller makes the file durable (fdatasync through any handle covers it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DirectWriter, SLOT_SIZE } from "./direct_write.ts";
 * const dir = await Deno.makeTempDir({ dir: "." }); // on a disk (a tmpfs is not written directly)
 * const path = `${dir}/blob`;
 * const data = new Uint8Array(SLOT_SIZE + 5000).map((_, i) => i % 251);
 * using file = await Deno.open(path, { write: true, createNew: true });
 * const w = await DirectWriter.open(path, file);
 * if (w) {
 *   await w.write(data.subarray(0, 100));
 *   await w.write(data.subarray(100));
 *   await w.flush();
 * } else {
 *   await file.write(data); // no O_DIRECT here (not Linux, or the file system refuses it)
 * }
 * assert.deepEqual(await Deno.readFile(path), data);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class DirectWriter {
  #file: Deno.FsFile;
  #worker: Worker;
  #ctl: Int32Array;
  #ring: WebAssembly.Memory;
  #mem: Uint8Array;
  #read: Uint8Array = new Uint8Array(READ_BUFFER);
  #cur = 0;
  #fill = 0;
  #pos = 0;
  #report: Uint8Array;
  #done = false;

  private constructor(
    file: Deno.FsFile,
    worker: Worker,
    shared: { ctl: Int32Array; ring: WebAssembly.Memory; report: Uint8Array },
  ) {
    this.#file = file;
    this.#worker = worker;
    this.#ctl = shared.ctl;
    this.#ring = shared.ring;
    this.#mem = new Uint8Array(shared.ring.buffer);
    this.#report = shared.report;
  }

  /**
   * A writer for the empty file at `path`, open as `file`, or `undefined`
   * when direct writes are not possible here (not Linux, no `O_DIRECT`, a
   * file system that refuses it): then write through `file` as usual.
   *
   * @param path the file's path (the worker opens it again, for `O_DIRECT`)
   * @param file the caller's open handle of the same file (the tail goes through it)
   * @param options `anyFileSystem`: skip the check of {@link fileSystemOf} (tests: a small
   *   tmpfs that fills up)
   * @returns the writer, or `undefined`
   */
  static async open(
    path: string,
    file: Deno.FsFile,
    options: { anyFileSystem?: boolean } = {},
  ): Promise<DirectWriter | undefined> {
    if (Deno.build.os !== "linux") return undefined;
    if (!options.anyFileSystem && fileSystemOf(path) === undefined) return undefined;
    let mem: WebAssembly.Memory;
    let worker: Worker;
    try {
      mem = takeRing();
      workerUrl ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
      worker = new Worker(workerUrl, { type: "module" });
    } catch {
      return undefined; // no shared memory or workers here
    }
    const ctl = new Int32Array(new SharedArrayBuffer(4 * (SLOTS + 1)));
    const report = new Uint8Array(new SharedArrayBuffer(512));
    const ready = await new Promise<boolean>((resolve) => {
      worker.onmessage = (e: MessageEvent<{ ready?: boolean }>) => resolve(e.data.ready === true);
      worker.onerror = (e) => {
        e.preventDefault();
        resolve(false);
      };
      worker.postMessage({
        init: true,
        ctl: ctl.buffer,
        mem: mem.buffer,
        report: report.buffer,
        path,
      });
    });
    if (!ready) {
      worker.terminate();
      giveBackRing(mem); // the worker never wrote
      return undefined;
    }
    return new DirectWriter(file, worker, { ctl, ring: mem, report });
  }

  /**
   * A buffer for the next BYOB read (the ring is shared memory, which a read
   * cannot take): pass what the read returns to {@link DirectWriter.filled}.
   *
   * @returns a view of a 1 MiB buffer of the writer's own
   */
  space(): Uint8Array {
    return this.#read;
  }

  /**
   * Queue what a BYOB read put into {@link DirectWriter.space} (copied into
   * the ring; the read's buffer is the next read's).
   *
   * @param view what the read returned
   */
  async filled(view: Uint8Array): Promise<void> {
    this.#read = new Uint8Array(view.buffer as ArrayBuffer);
    await this.write(view);
  }

  /**
   * Where the next bytes go, in the ring itself: for a read that fills
   * memory in place (not a BYOB read, which would take the buffer), so the
   * bytes are not copied again. Fill it from its start, then pass how many
   * bytes it holds to {@link DirectWriter.wrote}; nothing else may write to
   * the writer meanwhile. Waits while the worker still writes that slot.
   *
   * @returns the rest of the slot being filled (at least one byte)
   * @throws {Error} the system's reason when an earlier write failed
   */
  async spaceInRing(): Promise<Uint8Array> {
    if (this.#fill === 0) await this.#waitFor(this.#cur, 1);
    const start = this.#cur * SLOT_SIZE;
    return this.#mem.subarray(start + this.#fill, start + SLOT_SIZE);
  }

  /**
   * Queue `n` bytes a read put at the start of {@link DirectWriter.spaceInRing}.
   *
   * @param n bytes it put there (no more than it had room for)
   */
  wrote(n: number): void {
    if (!(n >= 0 && this.#fill + n <= SLOT_SIZE)) throw new RangeError(`wrote ${n}: past the slot`);
    this.#fill += n;
    if (this.#fill === SLOT_SIZE) this.#post(SLOT_SIZE);
  }

  /** {@link DirectWriter.dispose}, in the shape of `BlockWriter.settle` (error paths). */
  settle(): Promise<void> {
    this.dispose();
    return Promise.resolve();
  }

  /**
   * Append bytes (copied into the ring: `chunk` may be reused at once). Waits
   * only while the worker is a whole ring behind.
   *
   * @param chunk bytes
   * @throws {Error} the system's reason (its `code`: `ENOSPC`, `EIO`, …) when a write failed
   */
  async write(chunk: Uint8Array): Promise<void> {
    while (chunk.byteLength > 0) {
      if (this.#fill === 0) await this.#waitFor(this.#cur, 1);
      const n = Math.min(chunk.byteLength, SLOT_SIZE - this.#fill);
      this.#mem.set(chunk.subarray(0, n), this.#cur * SLOT_SIZE + this.#fill);
      this.#fill += n;
      chunk = chunk.subarray(n);
      if (this.#fill === SLOT_SIZE) this.#post(SLOT_SIZE);
    }
  }

  /**
   * Write out everything: the aligned rest by the worker, which then closes
   * its handle and ends; the last bytes through the caller's handle.
   *
   * @throws {Error} the system's reason (its `code`: `ENOSPC`, `EIO`, …) when a write failed
   */
  async flush(): Promise<void> {
    const aligned = this.#fill - this.#fill % ALIGN;
    const start = this.#cur * SLOT_SIZE;
    const tail = this.#mem.slice(start + aligned, start + this.#fill);
    if (aligned > 0) this.#post(aligned);
    this.#fill = 0;
    for (let i = 0; i < SLOTS; i++) await this.#waitFor(i, 1);
    this.#done = true;
    this.#worker.postMessage({ close: true, ok: true });
    await this.#waitFor(STATUS, 0);
    this.#worker.terminate();
    if (Atomics.load(this.#ctl, STATUS) !== 1) throw this.#failure();
    giveBackRing(this.#ring); // its handle closed: no write of the worker's is left
    if (tail.byteLength > 0) {
      await this.#file.seek(this.#pos, Deno.SeekMode.Start);
      for (let off = 0; off < tail.byteLength;) off += await this.#file.write(tail.subarray(off));
    }
  }

  /**
   * Stop on a way out other than {@link DirectWriter.flush} (idempotent): the
   * worker closes its handle after the write it is in, and ends.
   */
  dispose(): void {
    if (this.#done) return;
    this.#done = true;
    this.#worker.postMessage({ close: true, ok: false });
    // Ended from here once its handle is closed: a worker that only ends itself keeps its
    // isolate and the ring (16 MiB) for the rest of the process, at every stopped or failed
    // blob. One stuck in a write (a hung mount) is ended after STUCK_MS all the same.
    const worker = this.#worker;
    const ctl = this.#ctl;
    const ring = this.#ring;
    (async () => {
      const r = Atomics.waitAsync(ctl, STATUS, 0, STUCK_MS);
      if (r.async) await r.value;
      worker.terminate();
      // reused only once the worker said its handle is closed (a stuck one may still write)
      if (Atomics.load(ctl, STATUS) === 3) giveBackRing(ring);
    })();
  }

  #post(len: number): void {
    Atomics.store(this.#ctl, this.#cur, 1);
    this.#worker.postMessage({ slot: this.#cur, len, pos: this.#pos });
    this.#pos += len;
    this.#fill = 0;
    this.#cur = (this.#cur + 1) % SLOTS;
  }

  /** Wait (without blocking the event loop) while `ctl[index] === busy`. */
  async #waitFor(index: number, busy: number): Promise<void> {
    const deadline = Date.now() + STUCK_MS;
    while (Atomics.load(this.#ctl, index) === busy) {
      if (Atomics.load(this.#ctl, STATUS) === 2) break;
      const left = deadline - Date.now();
      if (left <= 0) {
        this.#worker.terminate();
        throw new OcipkgError("the file-writing worker stopped responding");
      }
      const r = Atomics.waitAsync(this.#ctl, index, busy, Math.min(left, 1000));
      if (r.async) await r.value;
    }
    if (Atomics.load(this.#ctl, STATUS) === 2) {
      this.#done = true;
      this.#worker.terminate();
      throw this.#failure();
    }
  }

  /** The worker's reason, as an error with the system's `code` (`ENOSPC`, `EIO`, …). */
  #failure(): Error {
    const text = new TextDecoder().decode(this.#report.slice()).replace(/\0+$/, "");
    const nl = text.indexOf("\n");
    if (nl < 0) return new OcipkgError("the file-writing worker stopped");
    const code = text.slice(0, nl);
    return Object.assign(new Error(text.slice(nl + 1)), code ? { code } : {});
  }
}
