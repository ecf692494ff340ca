/**
 * Blob upload sessions: each writes a temp file under `<root>/.uploads/`,
 * measured by the one verifier (`Verifier` of oci/digest.ts) as chunks
 * arrive. A finished upload is verified (size and digest) before the caller
 * renames it into a repository; a failed, cancelled, abandoned or interrupted
 * one is removed.
 *
 * The directory is checked on disk (`containedDir` of `storage.ts`: it and
 * its parent, the root, real directories, not symlinks) before each temp file
 * is made (`createNew`), read again, handed over for its rename or removed: a
 * directory swapped for a symlink after start is refused (500 `UNKNOWN`), and
 * nothing is made, read or removed at its target.
 *
 * @module
 */
import { basename, dirname, join } from "../util/path.ts";
import { parseDigest, Verifier } from "../oci/digest.ts";
import { OFF_THREAD_MIN } from "../util/hash_worker.ts";
import { BlockWriter } from "../util/files.ts";
import { releaseTemp, trackTemp } from "../util/temp.ts";
import { ServeError } from "./errors.ts";
import { containedDir } from "./storage.ts";

/** One upload session. */
export interface Upload {
  /** Session id (in the Location URL). */
  readonly id: string;
  /** The repository it uploads to. */
  readonly repository: string;
  /** Bytes received so far. */
  readonly size: number;
}

interface Session extends Upload {
  size: number;
  path: string;
  file: Deno.FsFile;
  /** measures sha256 as bytes arrive: on a worker thread when the blob is large */
  verifier: Verifier;
  /** whether `verifier` hashes on a worker thread */
  offThread: boolean;
  busy: boolean;
  touched: number;
  reader?: ReadableStreamDefaultReader<Uint8Array>;
}

/** Limits of {@link Uploads}. */
export interface UploadLimits {
  /** Most sessions open at once (default 32). */
  maxUploads?: number;
  /** A session idle this long is dropped (default 15 min). */
  idleMs?: number;
}

/** The open upload sessions of a server. */
export class Uploads {
  #dir: string;
  #sessions = new Map<string, Session>();
  #max: number;
  #idleMs: number;
  #timer: ReturnType<typeof setInterval>;
  #closed = false;

  /**
   * @param dir the directory for temp files (same file system as the root)
   * @param limits session limits
   */
  constructor(dir: string, limits: UploadLimits = {}) {
    this.#dir = dir;
    this.#max = limits.maxUploads ?? 32;
    this.#idleMs = limits.idleMs ?? 15 * 60_000;
    this.#timer = setInterval(() => this.#sweep(), Math.min(60_000, this.#idleMs));
    Deno.unrefTimer(this.#timer);
  }

  /**
   * The directory, checked on disk: it and its parent real directories.
   * @throws {ServeError} `UNKNOWN` (500) when one is a symlink, not a directory, or gone
   */
  async #checkDir(): Promise<void> {
    const dir = await containedDir(dirname(this.#dir), [basename(this.#dir)], false);
    if (!dir) throw new ServeError("UNKNOWN", "refused: the registry's upload directory is gone");
  }

  /**
   * A fresh path for a temp file in the directory (checked on disk first),
   * e.g. for a cross-repository mount's link.
   * @param prefix starts its name
   * @returns the path (nothing is there yet)
   */
  async tempPath(prefix: string): Promise<string> {
    await this.#checkDir();
    return join(this.#dir, `${prefix}-${crypto.randomUUID()}`);
  }

  /** Sessions open. */
  get count(): number {
    return this.#sessions.size;
  }

  /**
   * Open a session.
   * @param repository its repository
   * @returns the session
   * @throws {ServeError} `TOOMANYREQUESTS` past the limit
   */
  async start(repository: string): Promise<Upload> {
    if (this.#closed) {
      throw new ServeError("UNSUPPORTED", "the registry is shutting down", { status: 503 });
    }
    if (this.#sessions.size >= this.#max) {
      throw new ServeError(
        "TOOMANYREQUESTS",
        `too many uploads in progress (${this.#max}); try again later`,
        { headers: { "retry-after": "1" } },
      );
    }
    const id = crypto.randomUUID();
    await this.#checkDir();
    const path = trackTemp(join(this.#dir, id));
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { write: true, createNew: true, mode: 0o644 });
    } catch (e) {
      releaseTemp(path);
      throw e;
    }
    const s: Session = {
      id,
      repository,
      size: 0,
      path,
      file,
      verifier: new Verifier({}, `upload '${id}'`),
      offThread: false,
      busy: false,
      touched: Date.now(),
    };
    this.#sessions.set(id, s);
    return s;
  }

  /**
   * A session by id, for its repository.
   * @param id the id
   * @param repository the repository of the request
   * @returns the session
   * @throws {ServeError} `BLOB_UPLOAD_UNKNOWN`
   */
  get(id: string, repository: string): Upload {
    const s = this.#sessions.get(id);
    if (!s || s.repository !== repository) {
      throw new ServeError("BLOB_UPLOAD_UNKNOWN", `upload '${id.slice(0, 80)}' is not known`);
    }
    return s;
  }

  #session(u: Upload): Session {
    const s = this.#sessions.get(u.id);
    if (!s) throw new ServeError("BLOB_UPLOAD_UNKNOWN", `upload '${u.id}' is not known`);
    if (s.busy) {
      throw new ServeError(
        "BLOB_UPLOAD_INVALID",
        `upload '${u.id}' is busy with another request`,
      );
    }
    return s;
  }

  /**
   * Append a request body. A body that fails midway (the client went away)
   * drops the whole session.
   *
   * @param u the session
   * @param body the bytes (null: nothing)
   * @param hint the body's length, when the request says it
   * @returns bytes appended
   */
  async append(
    u: Upload,
    body: ReadableStream<Uint8Array> | null,
    hint?: number,
  ): Promise<number> {
    const s = this.#session(u);
    if (!body) return 0;
    s.busy = true;
    s.touched = Date.now();
    const start = s.size;
    // sync block writes: async ones starve the request body (see BlockWriter)
    const w = new BlockWriter(s.file, hint, { sync: true });
    if (s.size === 0 && (hint ?? 0) >= OFF_THREAD_MIN && !s.offThread) {
      // a large blob: hash it on a worker while this thread receives and writes
      s.verifier = new Verifier({}, `upload '${s.id}'`, { offThread: true, sizeHint: hint });
      s.offThread = true;
    }
    let rehashAt = s.offThread ? Infinity : OFF_THREAD_MIN;
    const reader = body.getReader();
    s.reader = reader;
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        s.verifier.update(value);
        s.size += value.byteLength;
        await w.write(value);
        if (s.size >= rehashAt) {
          // a large body of unknown length (chunked): move the hash to a worker
          rehashAt = Infinity;
          await w.flush();
          s.verifier = await this.#hashOffThread(s);
          s.offThread = true;
        }
      }
      await w.flush();
      if (!this.#sessions.has(s.id)) {
        throw new ServeError("BLOB_UPLOAD_UNKNOWN", `upload '${s.id}' was cancelled`);
      }
    } catch (e) {
      await w.settle();
      await reader.cancel().catch(() => {});
      await this.discard(s);
      throw e;
    } finally {
      s.reader = undefined;
      s.busy = false;
      s.touched = Date.now();
    }
    return s.size - start;
  }

  /** A verifier hashing on a worker, fed with what the session's file holds so far. */
  async #hashOffThread(s: Session): Promise<Verifier> {
    const v = new Verifier({}, `upload '${s.id}'`, { offThread: true, sizeHint: s.size });
    let read = 0;
    try {
      await this.#checkDir();
      using f = await Deno.open(s.path);
      for await (const chunk of f.readable) {
        v.update(chunk);
        read += chunk.byteLength;
      }
    } catch (e) {
      v.dispose();
      throw e;
    }
    if (read !== s.size) {
      v.dispose();
      throw new ServeError("BLOB_UPLOAD_INVALID", `upload '${s.id}' changed on disk`);
    }
    return v;
  }

  /**
   * Finish a session: verify the digest, close the file and hand over its path
   * (the caller renames it into place, or calls {@link Uploads.release}).
   * A mismatch drops the session.
   *
   * @param u the session
   * @param digest the digest the client claims
   * @returns the temp path, verified
   * @throws {ServeError} `DIGEST_INVALID`
   */
  async finish(u: Upload, digest: string): Promise<{ path: string; size: number }> {
    const s = this.#session(u);
    const { algorithm } = parseDigest(digest);
    this.#sessions.delete(s.id);
    try {
      await s.file.syncData();
      s.file.close();
      let got: string;
      if (algorithm === "sha256") got = s.verifier.finish().digest;
      else {
        // a sha512 digest: hash the file once more (uploads hash sha256 as they arrive)
        s.verifier.dispose();
        await this.#checkDir();
        const v = new Verifier({}, `upload '${s.id}'`, { algorithm });
        using f = await Deno.open(s.path);
        for await (const chunk of f.readable) v.update(chunk);
        got = v.finish().digest;
      }
      if (got !== digest) {
        throw new ServeError(
          "DIGEST_INVALID",
          `upload of ${s.size} bytes has digest ${got}, not ${digest}`,
        );
      }
      await this.#checkDir(); // the caller renames it next
      return { path: s.path, size: s.size };
    } catch (e) {
      s.verifier.dispose();
      await this.release(s.path);
      throw e;
    }
  }

  /**
   * Remove a finished upload's temp file (after a failed rename), or forget it (after a rename).
   * @param path its path
   */
  async release(path: string): Promise<void> {
    // never removed through a directory swapped for a symlink
    if (await this.#checkDir().then(() => true, () => false)) {
      await Deno.remove(path).catch(() => {});
    }
    releaseTemp(path);
  }

  /**
   * Cancel a session and remove its file.
   * @param u the session
   */
  async discard(u: Upload): Promise<void> {
    const s = this.#sessions.get(u.id);
    if (!s) return;
    this.#sessions.delete(s.id);
    s.verifier.dispose();
    await s.reader?.cancel().catch(() => {});
    try {
      s.file.close();
    } catch { /* closed */ }
    await this.release(s.path);
  }

  #sweep(): void {
    const now = Date.now();
    for (const s of this.#sessions.values()) {
      if (!s.busy && now - s.touched > this.#idleMs) this.discard(s).catch(() => {});
    }
  }

  /** Refuse new sessions, cancel every open one (bodies being read stop), remove their files. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await Promise.all([...this.#sessions.values()].map((s) => this.discard(s)));
  }
}
