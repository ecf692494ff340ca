/**
 * Blob upload sessions: each writes a temp file under `<root>/.uploads/`,
 * measured by the one verifier (`Verifier` of oci/digest.ts) as chunks
 * arrive. A finished upload is verified (size and digest) before the caller
 * renames it into a repository; a failed, cancelled, abandoned or interrupted
 * one is removed.
 *
 * Sessions are shared fairly: a client (its address, or its user when
 * authenticated; see `clients.ts`) holds at most `maxClientUploads` of them
 * (default 16) and all clients together `maxUploads` (default 128). When all
 * are taken, a new session of a client takes the place of the idlest session
 * of a client holding at least two more (a session between requests, never
 * one receiving a body). A session that receives no bytes for `idleMs`
 * (default 60 s) is dropped, its file removed. A body that stalls midway is
 * cut by the server (`front.ts`), which drops its session too.
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
import { OFF_THREAD_MIN, parseDigest, Verifier } from "../oci/digest.ts";
import { BlockWriter } from "../util/files.ts";
import { releaseTemp, trackTemp } from "../util/temp.ts";
import { ServeError } from "./errors.ts";
import { containedDir } from "./contained.ts";
import { UPLOAD_DEFAULTS } from "./defaults.ts";

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
  /** the client that opened it */
  owner: string;
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
  /** Most sessions open at once, all clients together (default 128). */
  maxUploads?: number;
  /** Most sessions one client holds at once (default 16). */
  maxClientUploads?: number;
  /** A session that receives no bytes this long is dropped (default 60 s). */
  idleMs?: number;
}

/** What every view of one server's sessions shares. */
interface Pool {
  dir: string;
  sessions: Map<string, Session>;
  max: number;
  maxClient: number;
  idleMs: number;
  timer: ReturnType<typeof setInterval>;
  closed: boolean;
  /** discards under way (their files being removed) */
  pending: Set<Promise<void>>;
  /** sessions being opened: id → client */
  opening: Map<string, string>;
}

const VIEW: UploadLimits = {};

/**
 * The open upload sessions of a server, as one client sees them: the
 * sessions it starts count against that client's share ({@link Uploads.owned}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Uploads } from "./uploads.ts";
 * const dir = await Deno.makeTempDir();
 * const uploads = new Uploads(dir, { maxUploads: 2, maxClientUploads: 1 });
 * const a = uploads.owned("192.0.2.1");
 * const b = uploads.owned("user:bob");
 * const first = await a.start("app");
 * await assert.rejects(a.start("app"), { code: "TOOMANYREQUESTS" }); // a holds its share
 * await b.start("app"); // b is served meanwhile
 * assert.equal(uploads.held("192.0.2.1"), 1);
 * await uploads.discard(first);
 * await a.start("app"); // its place is free again
 * await uploads.close(); // every session dropped, its file removed
 * assert.deepEqual([...Deno.readDirSync(dir)], []);
 * await Deno.remove(dir);
 * ```
 */
export class Uploads {
  #pool!: Pool;
  #owner = "";

  /**
   * @param dir the directory for temp files (same file system as the root)
   * @param limits session limits
   */
  constructor(dir: string, limits: UploadLimits = {}) {
    if (limits === VIEW) return; // owned() fills it in
    const idleMs = limits.idleMs ?? UPLOAD_DEFAULTS.idleMs;
    const timer = setInterval(() => this.#sweep(), Math.max(10, Math.min(5_000, idleMs / 4)));
    Deno.unrefTimer(timer);
    this.#pool = {
      dir,
      sessions: new Map(),
      max: limits.maxUploads ?? UPLOAD_DEFAULTS.maxUploads,
      maxClient: limits.maxClientUploads ?? UPLOAD_DEFAULTS.maxClientUploads,
      idleMs,
      timer,
      closed: false,
      pending: new Set(),
      opening: new Map(),
    };
  }

  /**
   * The directory, checked on disk: it and its parent real directories.
   * @throws {ServeError} `UNKNOWN` (500) when one is a symlink, not a directory, or gone
   */
  async #checkDir(): Promise<void> {
    const dir = await containedDir(dirname(this.#pool.dir), [basename(this.#pool.dir)], false);
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
    return join(this.#pool.dir, `${prefix}-${crypto.randomUUID()}`);
  }

  /**
   * The same sessions, for one client: those it starts count against its share.
   * @param client the client's key (its address, or `user:<name>`)
   * @returns a view of these sessions
   */
  owned(client: string): Uploads {
    const view = new Uploads("", VIEW);
    view.#pool = this.#pool;
    view.#owner = client;
    return view;
  }

  /** Sessions open (or being opened). */
  get count(): number {
    return this.#pool.sessions.size + this.#pool.opening.size;
  }

  /**
   * Sessions a client holds.
   * @param client the client's key
   * @returns how many
   */
  held(client: string): number {
    let n = 0;
    for (const s of this.#pool.sessions.values()) if (s.owner === client) n++;
    for (const owner of this.#pool.opening.values()) if (owner === client) n++;
    return n;
  }

  /**
   * Open a session for this view's client. When every session is taken, the
   * idlest session of a client holding more than this one is dropped for it.
   *
   * @param repository its repository
   * @returns the session
   * @throws {ServeError} `TOOMANYREQUESTS` (with `Retry-After`) past the client's share or the limit
   */
  async start(repository: string): Promise<Upload> {
    const pool = this.#pool;
    if (pool.closed) {
      throw new ServeError("UNSUPPORTED", "the registry is shutting down", { status: 503 });
    }
    const mine = this.held(this.#owner);
    if (mine >= pool.maxClient) {
      throw new ServeError(
        "TOOMANYREQUESTS",
        `client ${this.#owner || "-"} holds ${mine} upload sessions, the most one client may; ` +
          "finish or cancel one",
        { headers: { "retry-after": String(this.#retryAfter(this.#owner)) } },
      );
    }
    let dropped: Promise<void> | undefined;
    if (pool.sessions.size + pool.opening.size >= pool.max) {
      const victim = this.#victim(mine);
      if (!victim) {
        throw new ServeError(
          "TOOMANYREQUESTS",
          `all ${pool.max} upload sessions are in use; try again later`,
          { headers: { "retry-after": String(this.#retryAfter()) } },
        );
      }
      dropped = this.discard(victim); // its place is free from here on
    }
    // the place is taken now (requests starting meanwhile count it), the file made below
    const id = crypto.randomUUID();
    pool.opening.set(id, this.#owner);
    let file: Deno.FsFile | undefined;
    const path = trackTemp(join(pool.dir, id));
    try {
      await dropped;
      await this.#checkDir();
      file = await Deno.open(path, { write: true, createNew: true, mode: 0o644 });
      if (pool.closed) {
        throw new ServeError("UNSUPPORTED", "the registry is shutting down", { status: 503 });
      }
    } catch (e) {
      file?.close();
      if (file) await this.release(path);
      else releaseTemp(path);
      throw e;
    } finally {
      pool.opening.delete(id);
    }
    const s: Session = {
      id,
      repository,
      owner: this.#owner,
      size: 0,
      path,
      file,
      verifier: new Verifier({}, `upload '${id}'`),
      offThread: false,
      busy: false,
      touched: Date.now(),
    };
    pool.sessions.set(id, s);
    return s;
  }

  /**
   * The session to drop for a client holding `mine` when all are taken: the
   * idlest one between requests of a client holding at least two more.
   */
  #victim(mine: number): Session | undefined {
    const held = new Map<string, number>();
    for (const s of this.#pool.sessions.values()) held.set(s.owner, (held.get(s.owner) ?? 0) + 1);
    for (const o of this.#pool.opening.values()) held.set(o, (held.get(o) ?? 0) + 1);
    let victim: Session | undefined;
    for (const s of this.#pool.sessions.values()) {
      const n = held.get(s.owner)!;
      if (s.busy || n <= mine + 1) continue;
      const v = victim && held.get(victim.owner)!;
      if (!victim || n > v! || (n === v && s.touched < victim.touched)) victim = s;
    }
    return victim;
  }

  /** Seconds until a session (of `client`, or any) between requests reaches its idle limit. */
  #retryAfter(client?: string): number {
    const now = Date.now();
    let soonest = Infinity;
    for (const s of this.#pool.sessions.values()) {
      if (s.busy || (client !== undefined && s.owner !== client)) continue;
      soonest = Math.min(soonest, s.touched + this.#pool.idleMs - now);
    }
    return Number.isFinite(soonest) ? Math.max(1, Math.ceil(soonest / 1000)) : 1;
  }

  /**
   * A session by id, for its repository.
   * @param id the id
   * @param repository the repository of the request
   * @returns the session
   * @throws {ServeError} `BLOB_UPLOAD_UNKNOWN`
   */
  get(id: string, repository: string): Upload {
    const s = this.#pool.sessions.get(id);
    if (!s || s.repository !== repository) {
      throw new ServeError("BLOB_UPLOAD_UNKNOWN", `upload '${id.slice(0, 80)}' is not known`);
    }
    return s;
  }

  #session(u: Upload): Session {
    const s = this.#pool.sessions.get(u.id);
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
      if (!this.#pool.sessions.has(s.id)) {
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
    this.#pool.sessions.delete(s.id);
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
    const s = this.#pool.sessions.get(u.id);
    if (!s) return;
    this.#pool.sessions.delete(s.id);
    const done = (async () => {
      s.verifier.dispose();
      await s.reader?.cancel().catch(() => {});
      try {
        s.file.close();
      } catch { /* closed */ }
      await this.release(s.path);
    })();
    this.#pool.pending.add(done);
    try {
      await done;
    } finally {
      this.#pool.pending.delete(done);
    }
  }

  #sweep(): void {
    const now = Date.now();
    for (const s of this.#pool.sessions.values()) {
      if (!s.busy && now - s.touched > this.#pool.idleMs) this.discard(s).catch(() => {});
    }
  }

  /**
   * Refuse new sessions and drop those between requests (a stopping server
   * takes no new request); those receiving a body go on until they end or
   * {@link Uploads.close}.
   */
  async drain(): Promise<void> {
    this.#pool.closed = true;
    const idle = [...this.#pool.sessions.values()].filter((s) => !s.busy);
    await Promise.all(idle.map((s) => this.discard(s)));
  }

  /** Refuse new sessions, cancel every open one (bodies being read stop), remove their files. */
  async close(): Promise<void> {
    this.#pool.closed = true;
    clearInterval(this.#pool.timer);
    await Promise.all([...this.#pool.sessions.values()].map((s) => this.discard(s)));
    while (this.#pool.pending.size > 0) await Promise.all(this.#pool.pending);
  }
}
