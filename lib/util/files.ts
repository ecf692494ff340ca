/**
 * Writing files: all of a buffer ({@link writeAll}), few large blocks while
 * bytes stream in ({@link BlockWriter}), a small file replaced atomically
 * ({@link atomicWriteFile}); a file handed to `fetch` as Deno's native stream
 * ({@link openFileStream}), or a byte range of one as a byte stream
 * ({@link openFileRange}); whether a path exists; a small regular file read
 * whole, never waiting on a fifo or reading a device without end
 * ({@link readSmallFile}, {@link readSmallFileSync}). Temp paths are in
 * `temp.ts`; a blob written through the verifier is `writeVerified` in
 * `transport/layout/verified_write.ts`.
 *
 * @module
 */
import { forEachBounded } from "./concurrency.ts";
import { releaseTemp, tempPathFor } from "./temp.ts";
import { OcipkgError, systemReason } from "./errors.ts";
import { basename, dirname, join } from "./path.ts";
import { sleep } from "./timer.ts";

/**
 * Write all of `data` to an open file (handles short writes).
 *
 * @param file open file
 * @param data bytes
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeAll } from "./files.ts";
 * const path = await Deno.makeTempFile();
 * using file = await Deno.open(path, { write: true });
 * await writeAll(file, new TextEncoder().encode("hello"));
 * assert.equal(await Deno.readTextFile(path), "hello");
 * await Deno.remove(path);
 * ```
 */
export async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.byteLength) off += await file.write(data.subarray(off));
}

/**
 * Bytes per disk write in {@link BlockWriter} (1 MiB): few writes, each small
 * enough that the kernel copies it into the page cache while it is still in
 * the CPU's cache (measured on a 1 GiB pull: 4 MiB writes cost 1.8–2.9 s of
 * system time, 1 MiB writes 0.7–0.8 s; 512 KiB saved no more).
 */
export const WRITE_BLOCK = 1 << 20;

/**
 * Coalesces small chunks into large writes to an open file, double-buffered:
 * one block is written in the background while the next one fills, so the
 * disk overlaps with the network and hashing. Two reused buffers, no
 * per-chunk allocation. Call {@link flush} before syncing or closing, and
 * {@link settle} on error paths so no write is in flight when the file closes.
 *
 * Deno's per-call cost of an async write dominates with ~64 KiB chunks
 * (≈ 18k writes per GiB); {@link WRITE_BLOCK} writes cut it to ≈ 1k. It never
 * syncs: the caller makes the file durable when it must be (starting write-
 * back with an fdatasync every 32–256 MiB made a 1 GiB pull slower, not
 * faster, than one fdatasync at the end: medians 4.0 s at 64 MiB, 3.3 s at
 * 256 MiB, 3.1 s with none, on a shared 2-core VM).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BlockWriter } from "./files.ts";
 * const path = await Deno.makeTempFile();
 * using file = await Deno.open(path, { write: true });
 * const w = new BlockWriter(file, 10);
 * for (const part of ["hello", " ", "world"]) await w.write(new TextEncoder().encode(part));
 * await w.flush(); // before syncing or closing
 * assert.equal(await Deno.readTextFile(path), "hello world");
 * await Deno.remove(path);
 * ```
 */
export class BlockWriter {
  #file: Deno.FsFile;
  #size: number;
  #bufs: Uint8Array[] = [];
  #cur = 0;
  #fill = 0;
  #pending: Promise<void> | undefined;
  #error: unknown;

  #sync: boolean;

  /**
   * @param file open, writable file (the caller owns it)
   * @param hint expected total size, when known (small blobs get small buffers)
   * @param options `sync`: write each block synchronously (no write in flight).
   *   A `Deno.serve` handler must: async file writes while it reads a
   *   streamed request body slow the body to a crawl (measured: a 1 GiB
   *   chunked upload took > 200 s instead of 2.4 s).
   */
  constructor(file: Deno.FsFile, hint?: number, options: { sync?: boolean } = {}) {
    this.#file = file;
    this.#sync = options.sync ?? false;
    this.#size = hint !== undefined && hint >= 0 && hint < WRITE_BLOCK
      ? Math.max(hint, 1)
      : WRITE_BLOCK;
  }

  /**
   * Append bytes (copied; the caller may reuse `chunk`).
   *
   * @param chunk bytes
   */
  async write(chunk: Uint8Array): Promise<void> {
    while (chunk.byteLength > 0) {
      const buf = this.#bufs[this.#cur] ??= new Uint8Array(this.#size);
      const n = Math.min(chunk.byteLength, buf.byteLength - this.#fill);
      buf.set(n === chunk.byteLength ? chunk : chunk.subarray(0, n), this.#fill);
      this.#fill += n;
      chunk = chunk.subarray(n);
      if (this.#fill === buf.byteLength) await this.#submit();
    }
  }

  /**
   * The free part of the block being filled, for a BYOB read straight into
   * it (no chunk allocated, no copy); pass what the read returns to
   * {@link BlockWriter.filled}.
   *
   * @returns a view of the free space (never empty)
   */
  space(): Uint8Array {
    const buf = this.#bufs[this.#cur] ??= new Uint8Array(this.#size);
    return buf.subarray(this.#fill);
  }

  /**
   * Account for bytes a BYOB read put into {@link BlockWriter.space} (the
   * read transferred the block's memory: `view` is its new owner).
   *
   * @param view what the read returned
   */
  async filled(view: Uint8Array): Promise<void> {
    this.#bufs[this.#cur] = new Uint8Array(view.buffer);
    this.#fill += view.byteLength;
    if (this.#fill === this.#bufs[this.#cur]!.byteLength) await this.#submit();
  }

  /** Write out everything buffered and wait for it. */
  async flush(): Promise<void> {
    await this.#submit();
    await this.#wait();
  }

  /** Wait for any write in flight, ignoring its failure (for error paths). */
  async settle(): Promise<void> {
    await this.#pending;
    this.#pending = undefined;
  }

  async #wait(): Promise<void> {
    await this.#pending;
    this.#pending = undefined;
    if (this.#error !== undefined) throw this.#error;
  }

  async #submit(): Promise<void> {
    await this.#wait();
    if (this.#fill === 0) return;
    if (this.#sync) {
      const data = this.#bufs[this.#cur]!.subarray(0, this.#fill);
      for (let off = 0; off < data.byteLength;) off += this.#file.writeSync(data.subarray(off));
      this.#fill = 0;
      return;
    }
    const data = this.#bufs[this.#cur]!.subarray(0, this.#fill);
    // Never left unhandled: the failure surfaces at the next write/flush.
    this.#pending = writeAll(this.#file, data).catch((e) => {
      this.#error = e;
    });
    this.#cur ^= 1;
    this.#fill = 0;
  }
}

const fileStreams = new WeakMap<ReadableStream<Uint8Array>, number>();

/**
 * Open a file as a stream Deno reads natively (passed to `fetch` as a body,
 * no chunk goes through JavaScript), after checking its size.
 *
 * @param path the file
 * @param size the size it must have
 * @returns the stream and the size found (equal to `size` unless it differs)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isFileStream, openFileStream } from "./files.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "hello");
 * const { stream, found } = await openFileStream(path, 5);
 * assert.equal(found, 5);
 * assert.ok(isFileStream(stream, 5));
 * assert.equal(await new Response(stream).text(), "hello");
 * // another size than expected: an empty stream (the file is closed) and the size found
 * const other = await openFileStream(path, 4);
 * assert.equal(other.found, 5);
 * assert.ok(!isFileStream(other.stream, 4));
 * await Deno.remove(path);
 * ```
 */
export async function openFileStream(
  path: string,
  size: number,
): Promise<{ stream: ReadableStream<Uint8Array>; found: number }> {
  // a fifo or a device is refused unopened (opening a fifo waits for a writer)
  if (!(await Deno.stat(path)).isFile) throw notRegular(`file '${path}'`);
  const file = await Deno.open(path);
  let found: number;
  try {
    const st = await file.stat();
    if (!st.isFile) throw notRegular(`file '${path}'`);
    found = st.size;
  } catch (e) {
    file.close();
    throw e;
  }
  if (found !== size) {
    file.close();
    return { stream: new ReadableStream(), found };
  }
  const stream = file.readable;
  fileStreams.set(stream, size);
  return { stream, found };
}

/** Bytes per chunk a default reader gets from {@link openFileRange} (256 KiB). */
export const RANGE_CHUNK = 256 << 10;

/**
 * Open `size` bytes of a file from `offset` (a blob inside a tar, a ranged
 * answer of `serve`) as a byte stream of exactly those bytes: a BYOB reader's reads go straight from the
 * file into its buffers (as large as it gives), a default reader gets fresh
 * {@link RANGE_CHUNK} chunks. The file is closed at the end, on an error and
 * on cancel. (Deno's native file body, {@link openFileStream}, cannot send a
 * range: `fetch` reads its file to the end; a registry upload reads a range
 * through JavaScript, into chunks whose memory goes back once sent — see
 * `body_chunks.ts`.)
 *
 * @param path the file
 * @param offset where the range starts
 * @param size its length
 * @param truncated the error when the file ends before the range does
 * @param options `same`: the `stat` of the file the range was found in — a
 *   file now at `path` that is another (renamed over it) fails with
 *   `changed()`, as its offsets are not the range's
 * @returns the stream
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openFileRange } from "./files.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "tar header|hello|padding");
 * const stream = await openFileRange(path, 11, 5, () => new Error("truncated"));
 * assert.equal(await new Response(stream).text(), "hello");
 * // a range past the end of the file fails instead of ending early
 * const past = await openFileRange(path, 20, 10, () => new Error("truncated"));
 * await assert.rejects(new Response(past).text(), /truncated/);
 * await Deno.remove(path);
 * ```
 */
export async function openFileRange(
  path: string,
  offset: number,
  size: number,
  truncated: () => Error,
  options: { same?: Deno.FileInfo; changed?: () => Error } = {},
): Promise<ReadableStream<Uint8Array>> {
  const file = await Deno.open(path);
  try {
    if (options.same && !sameFile(options.same, await file.stat())) {
      throw options.changed?.() ?? new OcipkgError(`'${path}' was replaced`);
    }
    await file.seek(offset, Deno.SeekMode.Start);
  } catch (e) {
    file.close();
    throw e;
  }
  let left = size;
  let open = true;
  const close = () => {
    if (open) file.close();
    open = false;
  };
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: RANGE_CHUNK,
    async pull(c: ReadableByteStreamController) {
      const request = c.byobRequest!;
      const view = request.view!;
      if (left === 0) {
        close();
        c.close();
        request.respond(0);
        return;
      }
      let n: number | null;
      try {
        n = await file.read(
          new Uint8Array(view.buffer, view.byteOffset, Math.min(view.byteLength, left)),
        );
      } catch (e) {
        close();
        throw e;
      }
      if (n === null) {
        close();
        throw truncated();
      }
      left -= n;
      request.respond(n);
      if (left === 0) {
        close();
        c.close();
      }
    },
    cancel: close,
  }, { highWaterMark: 0 });
}

/**
 * Whether `stream` is an untouched file stream from {@link openFileStream} of
 * exactly `size` bytes.
 *
 * @param stream a stream
 * @param size the size expected
 * @returns true when it can go to `fetch` as it is
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isFileStream } from "./files.ts";
 * assert.ok(!isFileStream(ReadableStream.from([new Uint8Array(1)]), 1));
 * ```
 */
export function isFileStream(stream: ReadableStream<Uint8Array>, size: number): boolean {
  return fileStreams.get(stream) === size && !stream.locked;
}

/**
 * Write a small file atomically: temp file, fsync, rename.
 *
 * @param path destination
 * @param data content
 * @param mode file mode (e.g. 0o600 for secrets)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { atomicWriteFile } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * await atomicWriteFile(`${dir}/config.json`, new TextEncoder().encode("{}"), 0o600);
 * assert.equal(await Deno.readTextFile(`${dir}/config.json`), "{}");
 * assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["config.json"]); // no temp left
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function atomicWriteFile(path: string, data: Uint8Array, mode = 0o644): Promise<void> {
  await atomicWriteFiles([[path, data]], mode);
}

/**
 * Write small files atomically, each as {@link atomicWriteFile} does, their
 * temp files written and synced at once (one wait for the disk, not one per
 * file), then renamed into place one by one in the order given: a reader
 * that finds a later one finds the earlier ones too. If any write fails,
 * none is renamed.
 *
 * @param files destinations and contents, in the order they appear
 * @param mode file mode
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { atomicWriteFiles } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * const text = (s: string) => new TextEncoder().encode(s);
 * await atomicWriteFiles([[`${dir}/index.json`, text("{}")], [`${dir}/oci-layout`, text("{}")]]);
 * assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["index.json", "oci-layout"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function atomicWriteFiles(
  files: readonly (readonly [path: string, data: Uint8Array])[],
  mode = 0o644,
): Promise<void> {
  const temps = files.map(([path]) => tempPathFor(path));
  try {
    const written = await Promise.allSettled(files.map(async ([, data], i) => {
      const f = await Deno.open(temps[i]!, { write: true, createNew: true, mode });
      try {
        await writeAll(f, data);
        await f.syncData();
      } finally {
        f.close();
      }
    }));
    for (const w of written) if (w.status === "rejected") throw w.reason;
    for (const [i, [path]] of files.entries()) await Deno.rename(temps[i]!, path);
  } catch (e) {
    for (const tmp of temps) await Deno.remove(tmp).catch(() => {});
    throw e;
  } finally {
    for (const tmp of temps) releaseTemp(tmp);
  }
}

/**
 * Make a directory's entries durable (a rename into it, a file created in
 * it): `fsync` of the directory. Where a directory cannot be opened as a file
 * (Windows, whose file systems journal their entries) this does nothing.
 *
 * @param path the directory
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { syncDirectory } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/.new`, "x");
 * await Deno.rename(`${dir}/.new`, `${dir}/done`);
 * await syncDirectory(dir); // the rename survives a power loss from here on
 * assert.equal(await Deno.readTextFile(`${dir}/done`), "x");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function syncDirectory(path: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  const dir = await Deno.open(path);
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}

/** Name of the lock file {@link withDirectoryLock} holds in a directory where it cannot lock the directory itself. */
export const DIRECTORY_LOCK_FILE = ".ocipkg-lock";

/** Options for {@link withDirectoryLock}. */
export interface DirectoryLockOptions {
  /**
   * Lock with a lock file in the directory ({@link DIRECTORY_LOCK_FILE},
   * through {@link withLockFile}) instead of the directory itself: what
   * Windows does, where a directory cannot be opened; set to run that path
   * on another system (tests).
   */
  lockFile?: boolean;
}

/**
 * Run `fn` holding an exclusive lock on a directory, for writers in several
 * processes that read, change and replace a file in it (an oci-dir's
 * `index.json`). Where a directory can be opened as a file (Linux, macOS, the
 * BSDs) the lock is a `flock` of the directory itself: no lock file is left
 * in it. On Windows, which cannot open a directory, it is a lock file in it,
 * {@link DIRECTORY_LOCK_FILE}, locked and removed by {@link withLockFile}.
 * Either way the lock goes with the process: a crash never leaves it held.
 *
 * @param path the directory
 * @param fn what to run under the lock
 * @param options `lockFile`: the Windows way on any system
 * @returns what `fn` returns
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withDirectoryLock } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * for (const lockFile of [false, true]) {
 *   const order: string[] = [];
 *   await Promise.all(["a", "b"].map((who) =>
 *     withDirectoryLock(dir, async () => {
 *       order.push(`${who} in`);
 *       await new Promise((r) => setTimeout(r, 10));
 *       order.push(`${who} out`);
 *     }, { lockFile })
 *   ));
 *   // one at a time: each is out before the other is in
 *   assert.equal(order[1], order[0]!.replace("in", "out"));
 *   assert.equal(order[3], order[2]!.replace("in", "out"));
 *   assert.deepEqual([...Deno.readDirSync(dir)], []); // no lock file left
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function withDirectoryLock<T>(
  path: string,
  fn: () => Promise<T>,
  options: DirectoryLockOptions = {},
): Promise<T> {
  if (options.lockFile || Deno.build.os === "windows") {
    // a lock file needs the directory: a missing one fails as the directory, not the file
    if (!(await Deno.stat(path)).isDirectory) throw new Deno.errors.NotADirectory(path);
    return await withLockFile(join(path, DIRECTORY_LOCK_FILE), fn);
  }
  const dir = await Deno.open(path);
  try {
    await dir.lock(true);
  } catch (e) {
    dir.close();
    throw e;
  }
  try {
    return await fn();
  } finally {
    dir.close(); // closing releases the lock
  }
}

/**
 * The lock file {@link withFileLock} holds for a file that writers replace
 * whole: `.<name>.ocipkg-lock` beside it.
 *
 * @param path the file
 * @returns its lock file's path
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lockPathFor } from "./files.ts";
 * assert.equal(lockPathFor("/data/out.tar"), "/data/.out.tar.ocipkg-lock");
 * ```
 */
export function lockPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.ocipkg-lock`);
}

/**
 * Run `fn` holding an exclusive lock on a file that writers read, change and
 * replace whole by renaming a new one over it (an oci-archive, an auth or
 * config file), so that several writers, in one process or several, take
 * turns and each starts from what the one before wrote. The lock is a lock
 * file beside it ({@link lockPathFor}), through {@link withLockFile}: the
 * file itself cannot be locked, as every write replaces it.
 *
 * @param path the file (it need not exist)
 * @param fn what to run under the lock
 * @returns what `fn` returns
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withFileLock } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/count`;
 * // ten read-change-replace writers at once: none is lost
 * await Promise.all([...Array(10).keys()].map(() =>
 *   withFileLock(path, async () => {
 *     const n = Number(await Deno.readTextFile(path).catch(() => "0"));
 *     await new Promise((r) => setTimeout(r, 1));
 *     await Deno.writeTextFile(`${path}.new`, String(n + 1));
 *     await Deno.rename(`${path}.new`, path);
 *   })
 * ));
 * assert.equal(await Deno.readTextFile(path), "10");
 * assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["count"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function withFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  return withLockFile(lockPathFor(path), fn);
}

/**
 * Run `fn` holding an exclusive lock on the lock file `lockPath` (made when
 * missing), then remove it. The lock is the system's (`flock`; `LockFileEx`
 * on Windows; over NFS, the server's lock manager): it goes with the process,
 * so a writer killed while it holds it never leaves it held — the file may
 * stay behind, and the next writer takes it and removes it. No pid or age is
 * ever trusted to tell a stale lock (pids mean nothing across containers or
 * NFS clients; a writer may hold a lock for long). A writer that locked the
 * file while the one before removed it finds the path gone or naming another
 * file, and starts again. What is at the path must be a regular file: a
 * symlink, fifo or directory planted there is refused, never opened.
 *
 * @param lockPath the lock file
 * @param fn what to run under the lock
 * @returns what `fn` returns
 * @throws {OcipkgError} naming the lock file when it is not a regular file
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withLockFile } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * const seen = await withLockFile(`${dir}/.lock`, async () => Deno.stat(`${dir}/.lock`));
 * assert.ok(seen.isFile); // held while fn runs
 * assert.deepEqual([...Deno.readDirSync(dir)], []); // removed after
 * await Deno.symlink("/etc/passwd", `${dir}/.lock`);
 * await assert.rejects(withLockFile(`${dir}/.lock`, async () => {}), /not a regular file/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function withLockFile<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  // Windows keeps a removed file's name until its last handle is closed (a writer that waited
  // on it still holds one) and refuses to open it meanwhile: that passes within moments
  let pendingDelete = 0;
  const removing = (e: unknown) =>
    Deno.build.os === "windows" && e instanceof Deno.errors.PermissionDenied &&
    pendingDelete++ < 500;
  for (;;) {
    let before: Deno.FileInfo | undefined;
    let file: Deno.FsFile;
    try {
      before = await Deno.lstat(lockPath).catch((e) => {
        if (e instanceof Deno.errors.NotFound) return undefined;
        throw e;
      });
      if (before && !before.isFile) {
        throw new OcipkgError(`lock file '${lockPath}' is not a regular file; remove it`);
      }
      try {
        file = await Deno.open(lockPath, { read: true, write: true, create: true });
      } catch (e) {
        // another user's lock file in a shared directory: a read-only open locks it too
        if (!(e instanceof Deno.errors.PermissionDenied) || !before) throw e;
        file = await Deno.open(lockPath, { read: true });
      }
    } catch (e) {
      if (!removing(e)) throw e;
      await sleep(10);
      continue;
    }
    let held = false;
    try {
      await file.lock(true);
      const mine = await file.stat();
      const now = await Deno.lstat(lockPath).catch(() => undefined);
      // the writer before removed the file this one waited on: lock the path's file anew
      if (!now || !now.isFile || !sameFile(now, mine)) continue;
      held = true;
      return await fn();
    } finally {
      // removed before it is unlocked: a writer that locks it next finds it gone and retries
      if (held) await Deno.remove(lockPath).catch(() => {});
      file.close();
    }
  }
}

/**
 * Make files' written bytes durable, many at once (`fdatasync` of each,
 * {@link SYNC_BATCH} at a time: the file system commits its journal for
 * many of them together, where one after another each waits for its own).
 * Each file, once durable, may be handed on (`then`, e.g. renamed into
 * place) while the others are still being synced.
 *
 * @param paths the files (written and closed)
 * @param then called with a file's index in `paths` once it is durable;
 *   the round ends when every call has
 * @param signal stops the round: no file's sync starts after it aborts,
 *   and the round rejects with its reason once those under way have ended
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { syncFiles } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * const paths = [1, 2, 3].map((i) => `${dir}/blob-${i}.tmp`);
 * for (const p of paths) await Deno.writeTextFile(p, p);
 * // on disk, whatever happens next; each renamed into place once it is
 * await syncFiles(paths, (i) => Deno.rename(paths[i]!, paths[i]!.replace(".tmp", "")));
 * assert.equal(await Deno.readTextFile(`${dir}/blob-3`), paths[2]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function syncFiles(
  paths: readonly string[],
  then?: (index: number) => Promise<void> | void,
  signal?: AbortSignal,
): Promise<void> {
  await forEachBounded(
    paths.map((path, i) => [path, i] as const),
    SYNC_BATCH,
    async ([path, i]) => {
      signal?.throwIfAborted();
      const f = await Deno.open(path, { write: true });
      try {
        await f.syncData();
      } finally {
        f.close();
      }
      await then?.(i);
    },
  );
}

/** Files {@link syncFiles} syncs at once. */
export const SYNC_BATCH = 64;

/**
 * Whether a path exists (without following a final symlink).
 *
 * @param path any path
 * @returns true when lstat succeeds
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pathExists } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.symlink(`${dir}/nowhere`, `${dir}/dangling`);
 * assert.ok(await pathExists(`${dir}/dangling`)); // the link itself exists
 * assert.ok(!(await pathExists(`${dir}/nowhere`)));
 * assert.ok(!(await pathExists(`${dir}/nowhere/below`)));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return false;
    throw e;
  }
}

/** A small file read whole: its bytes, and the `stat` of what was read. */
export interface SmallFile {
  /** Its bytes. */
  bytes: Uint8Array;
  /** `fstat` of the open file. */
  stat: Deno.FileInfo;
}

/**
 * A file {@link readSmallFile} refuses for what it is — not a regular file
 * (a directory, fifo, device), or over the cap — rather than because it
 * cannot be read.
 */
export class UnfitFileError extends OcipkgError {}

function notRegular(what: string): UnfitFileError {
  return new UnfitFileError(`${what} is not a regular file`);
}

function tooLarge(what: string, max: number): UnfitFileError {
  return new UnfitFileError(`${what} is over ${max} bytes`);
}

function unreadable(e: unknown, what: string): OcipkgError {
  if (e instanceof OcipkgError) return e;
  return new OcipkgError(
    `cannot read ${what}: ${systemReason(e) ?? (e instanceof Error ? e.message : String(e))}`,
  );
}

/** The same file: what `stat` saw before it was opened is what was opened. */
function sameFile(before: Deno.FileInfo, opened: Deno.FileInfo): boolean {
  return opened.isFile &&
    (before.ino === null || opened.ino === null || before.ino === opened.ino) &&
    (before.dev === null || opened.dev === null || before.dev === opened.dev);
}

/**
 * A small regular file's bytes, at most `max`; undefined when it does not
 * exist. What the path names is checked with `stat` before it is opened, so
 * a fifo (whose `open` would wait for a writer) or a device (`/dev/zero`
 * never ends) is refused unopened; the open file is checked again (one
 * swapped in between must be a regular file too: a writer's atomic
 * replacement is read as it is now), and at most `max + 1` bytes are ever read,
 * so a file that grows while it is read is refused too. Config files, CA
 * files, lock files, auth files, keys, bundles and trusted roots are read
 * here.
 *
 * @param path the file (a symlink is followed)
 * @param what names it in errors, e.g. `CA file 'ca.pem' (--ca-file)`
 * @param max the largest size accepted, in bytes
 * @returns its bytes and `stat`, or undefined when absent
 * @throws {OcipkgError} naming `what` when it is not a regular file, over
 *   `max` bytes, or unreadable
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSmallFile } from "./files.ts";
 * const tmp = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${tmp}/a.json`, "{}");
 * assert.equal((await readSmallFile(`${tmp}/a.json`, "config a.json", 10))?.bytes.length, 2);
 * assert.equal(await readSmallFile(`${tmp}/none.json`, "config none.json", 10), undefined);
 * await assert.rejects(readSmallFile(`${tmp}/a.json`, "config a.json", 1), /^UnfitFileError: config a\.json is over 1 bytes$/);
 * await assert.rejects(readSmallFile(tmp, "config dir", 10), /^UnfitFileError: config dir is not a regular file$/);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function readSmallFile(
  path: string,
  what: string,
  max: number,
): Promise<SmallFile | undefined> {
  let file: Deno.FsFile;
  let stat: Deno.FileInfo;
  try {
    const before = await Deno.stat(path);
    if (!before.isFile) throw notRegular(what);
    if (before.size > max) throw tooLarge(what, max);
    file = await Deno.open(path);
    try {
      stat = await file.stat();
    } catch (e) {
      file.close();
      throw e;
    }
    // another file since the stat: a writer's atomic replacement is read as it now is, bounded
    // as any; a fifo or a device swapped in is refused
    if (!stat.isFile) {
      file.close();
      throw notRegular(what);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw unreadable(e, what);
  }
  try {
    let buf = new Uint8Array(Math.min(stat.size, max) + 1);
    let n = 0;
    for (;;) {
      const r = await file.read(buf.subarray(n));
      if (r === null) break;
      n += r;
      if (n > max) throw tooLarge(what, max);
      if (n === buf.length) {
        // grew since the stat: read on, up to the cap
        const more = new Uint8Array(Math.min(buf.length * 2, max + 1));
        more.set(buf);
        buf = more;
      }
    }
    return { bytes: buf.subarray(0, n), stat };
  } catch (e) {
    throw unreadable(e, what);
  } finally {
    file.close();
  }
}

/**
 * {@link readSmallFile}, synchronously (for the config file and CA files,
 * read where nothing can wait).
 *
 * @param path the file (a symlink is followed)
 * @param what names it in errors
 * @param max the largest size accepted, in bytes
 * @returns its bytes and `stat`, or undefined when absent
 * @throws {OcipkgError} naming `what` when it is not a regular file, over
 *   `max` bytes, or unreadable
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSmallFileSync } from "./files.ts";
 * assert.throws(() => readSmallFileSync("/dev/null", "CA file '/dev/null'", 10), /is not a regular file$/);
 * ```
 */
export function readSmallFileSync(
  path: string,
  what: string,
  max: number,
): SmallFile | undefined {
  let file: Deno.FsFile;
  let stat: Deno.FileInfo;
  try {
    const before = Deno.statSync(path);
    if (!before.isFile) throw notRegular(what);
    if (before.size > max) throw tooLarge(what, max);
    file = Deno.openSync(path);
    try {
      stat = file.statSync();
    } catch (e) {
      file.close();
      throw e;
    }
    // another file since the stat: a writer's atomic replacement is read as it now is, bounded
    // as any; a fifo or a device swapped in is refused
    if (!stat.isFile) {
      file.close();
      throw notRegular(what);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw unreadable(e, what);
  }
  try {
    let buf = new Uint8Array(Math.min(stat.size, max) + 1);
    let n = 0;
    for (;;) {
      const r = file.readSync(buf.subarray(n));
      if (r === null) break;
      n += r;
      if (n > max) throw tooLarge(what, max);
      if (n === buf.length) {
        const more = new Uint8Array(Math.min(buf.length * 2, max + 1));
        more.set(buf);
        buf = more;
      }
    }
    return { bytes: buf.subarray(0, n), stat };
  } catch (e) {
    throw unreadable(e, what);
  } finally {
    file.close();
  }
}
