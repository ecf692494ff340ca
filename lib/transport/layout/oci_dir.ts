/**
 * `oci-dir`: an OCI Image Layout directory as a {@link Target}.
 *
 * @module
 */
import { dirname, join } from "../../util/path.ts";
import { parseDigest } from "../../oci/digest.ts";
import { fsError, NotFoundError, OcipkgError, VerificationError } from "../../util/errors.ts";
import {
  atomicWriteFile,
  atomicWriteFiles,
  DIRECTORY_LOCK_FILE,
  openFileStream,
  pathExists,
  readSmallFile,
  syncDirectory,
  syncFiles,
  withDirectoryLock,
} from "../../util/files.ts";
import { Mutex } from "../../util/concurrency.ts";
import { HeldTemps, removeStaleTemps, STALE_TEMP_AGE, tempPathFor } from "../../util/temp.ts";
import { type Descriptor, isManifestType, stripUndefined } from "../../oci/manifest.ts";
import {
  type BlobSpec,
  type ListableTarget,
  type PushOptions,
  stopIfAborted,
  type TagOptions,
  type Target,
} from "../target.ts";
import {
  blobPathIn,
  checkLayoutFile,
  checkSoleImage,
  LayoutIndex,
  MAX_INDEX_FILE,
  OCI_LAYOUT_FILE,
} from "./index_file.ts";
import { writeVerified } from "./verified_write.ts";
import { LARGE_BLOB } from "../defaults.ts";

/** Largest `oci-layout` file read (64 KiB; it holds one version string). */
export const MAX_LAYOUT_FILE = 64 * 1024;

/** Options for {@link OciDir.open}. */
export interface OciDirOptions {
  /** Create the layout when missing (for writing). */
  create?: boolean;
  /**
   * Age in ms of a temp file a killed writer left (`.blob.tmp-*`) that this
   * writer removes, under the layout's lock (default one hour,
   * `STALE_TEMP_AGE` in `util/temp.ts`; a test sets 0). This writer touches
   * the temps it holds every sixth of it.
   */
  staleTempAge?: number;
  /**
   * Lock the layout with a lock file in it, as on Windows, on any system
   * (for tests; see `withDirectoryLock`).
   */
  lockFile?: boolean;
  /**
   * This writer's images must be alone in the layout (a `pack` without
   * `--append`): a tag that finds, under the layout's lock, an image of
   * another name in `index.json` fails with a `SoleImageError` and changes
   * nothing — the check a caller made before writing cannot see another
   * writer that adds one meanwhile.
   */
  soleImage?: boolean;
}

/**
 * An OCI image layout directory (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`).
 *
 * Durability: a file under a blob's name is always complete and on disk, and
 * an image in `index.json` has all its blobs on disk. A pushed blob is
 * written to a temp file beside its place and verified, but neither synced
 * nor renamed yet; the layout serves it from there ({@link OciDir.exists},
 * {@link OciDir.fetch}). Before `index.json` is written ({@link OciDir.tag})
 * or the layout is closed, every such blob is made durable at once — one
 * round of `fdatasync` over all of them, which the file system commits
 * together, instead of one after each blob — each renamed into place as
 * soon as it is durable, then the `blobs/<alg>` directories synced; then `index.json` is replaced
 * atomically (written, `fdatasync`, renamed) and the layout's directory
 * synced. A crash before that leaves only temp files (`.blob.tmp-*`), never a
 * blob that is not what its name says; the next writer removes them once
 * stale ({@link OciDirOptions.staleTempAge}). Writers in several processes
 * change `index.json` under the directory's lock (`withDirectoryLock`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OciDir, packDirectory } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "a");
 * const packed = await packDirectory(`${tmp}/pkg`, `oci:${tmp}/layout`, { name: "example.com/foo:1" });
 * const layout = await OciDir.open(`${tmp}/layout`);
 * const [entry] = await layout.list();
 * assert.equal(entry?.digest, packed.digest);
 * assert.equal(entry?.annotations?.["org.opencontainers.image.ref.name"], "example.com/foo:1");
 * assert.ok((await Deno.stat(layout.blobPath(packed.digest))).isFile);
 * await layout.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export class OciDir implements Target, ListableTarget {
  /** Root directory of the layout. */
  readonly path: string;
  readonly description: string;
  #index: LayoutIndex;
  #mutex = new Mutex();
  #made = false;
  /** Blobs written and verified, waiting in temp files to be synced and renamed. */
  #pending = new Map<string, { tmp: string; size: number; manifest: boolean }>();
  /** The `blobs/<alg>` directories made (or found) by this object. */
  #dirs = new Set<string>();
  /** In a layout this object made: the blobs it put in place, by digest, with their sizes. */
  #placed = new Map<string, number>();
  #options: OciDirOptions;
  /** The names this object tagged (for `soleImage`). */
  #tagged = new Set<string>();
  /** Temp files this object holds (being written, or pending), touched while held. */
  #temps: HeldTemps;
  /** Whether the temps crashed writers left have been looked for. */
  #swept = false;

  private constructor(path: string, index: LayoutIndex, options: OciDirOptions) {
    this.path = path;
    this.#index = index;
    this.description = `oci-dir '${path}'`;
    this.#options = options;
    this.#temps = new HeldTemps(options.staleTempAge);
  }

  #lock<T>(fn: () => Promise<T>): Promise<T> {
    return withDirectoryLock(this.path, fn, { lockFile: this.#options.lockFile });
  }

  /**
   * Remove the temp files writers killed before they finished left in the
   * layout (its root and `blobs/<alg>`): those older than the stale age
   * ({@link STALE_TEMP_AGE}) and not this process's. Run once per writer,
   * under the layout's lock.
   */
  async #sweep(): Promise<void> {
    if (this.#swept || this.#made) return;
    this.#swept = true;
    const age = this.#options.staleTempAge ?? STALE_TEMP_AGE;
    const dirs = [this.path];
    try {
      for await (const e of Deno.readDir(join(this.path, "blobs"))) {
        if (e.isDirectory) dirs.push(join(this.path, "blobs", e.name));
      }
    } catch { /* a layout without blobs/ */ }
    for (const dir of dirs) await removeStaleTemps(dir, { age });
  }

  /**
   * Open (or with `create`, create) a layout directory.
   *
   * @param path the directory
   * @param options `create` to make it when missing
   * @returns the layout
   * @throws {NotFoundError} when it does not exist and `create` is not set
   * @throws {FormatError} when `oci-layout` or `index.json` is invalid
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { NotFoundError, OciDir } from "@ocipkg/cli";
   * const tmp = await Deno.makeTempDir();
   * await assert.rejects(OciDir.open(`${tmp}/layout`), NotFoundError);
   * const layout = await OciDir.open(`${tmp}/layout`, { create: true });
   * assert.deepEqual(await layout.list(), []);
   * assert.ok((await Deno.stat(`${tmp}/layout/index.json`)).isFile);
   * await layout.close();
   * await Deno.remove(tmp, { recursive: true });
   * ```
   */
  static async open(path: string, options: OciDirOptions = {}): Promise<OciDir> {
    const where = `oci-dir '${path}'`;
    const found = await OciDir.#read(path, where, options);
    if (found) return found;
    if (!options.create) {
      throw new NotFoundError(
        (await pathExists(path))
          ? `${where} is not an OCI layout: it has no oci-layout file`
          : `oci-dir '${path}' does not exist`,
      );
    }
    // Made under the directory's lock, as every index.json write is: of several writers
    // creating it at once (two pulls into one new oci-dir), one makes the layout and the
    // others open it; only the one that made the directory may remove it again.
    let existed = true;
    try {
      await Deno.mkdir(dirname(path), { recursive: true });
      await Deno.mkdir(path);
      existed = false;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw fsError(e, "oci-dir", path);
    }
    const lock = { lockFile: options.lockFile };
    return await withDirectoryLock(path, async () => {
      const other = await OciDir.#read(path, where, options);
      if (other) return other;
      // a directory that is there, not a layout and not empty is someone else's
      for await (const e of Deno.readDir(path)) {
        if (e.name === DIRECTORY_LOCK_FILE) continue; // the lock held now (Windows)
        throw new OcipkgError(
          `${where} is a directory that is not an OCI layout and not empty; refusing to write into it`,
        );
      }
      await Deno.mkdir(join(path, "blobs", "sha256"), { recursive: true });
      const dir = new OciDir(path, new LayoutIndex(where, `oci:${path}`), options);
      // made here: an aborted write removes it again (nothing half-written is left)
      dir.#made = !existed;
      // oci-layout last: a writer that finds it (unlocked) finds index.json too
      await atomicWriteFiles([
        [join(path, "index.json"), dir.#index.encode()],
        [join(path, "oci-layout"), OCI_LAYOUT_FILE],
      ]);
      return dir;
    }, lock).catch((e) => {
      throw fsError(e, "oci-dir", path);
    });
  }

  /** The layout at `path` as it is on disk, or undefined when there is none (no `oci-layout`). */
  static async #read(
    path: string,
    where: string,
    options: OciDirOptions,
  ): Promise<OciDir | undefined> {
    try {
      const st = await Deno.stat(path);
      if (!st.isDirectory) throw new OcipkgError(`${where} is not a directory`);
      // a fifo or a device is refused unopened: a layout may come from anywhere
      const layout = await readSmallFile(
        join(path, "oci-layout"),
        `${where}: oci-layout`,
        MAX_LAYOUT_FILE,
      );
      if (layout === undefined) return undefined;
      checkLayoutFile(layout.bytes, where);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw fsError(e, "oci-dir", path);
    }
    return new OciDir(path, await OciDir.#readIndex(path, where), options);
  }

  /** The layout's `index.json` as it is on disk. */
  static async #readIndex(path: string, where: string): Promise<LayoutIndex> {
    const file = join(path, "index.json");
    let indexBytes: Uint8Array;
    try {
      const index = await readSmallFile(file, `${where}: index.json`, MAX_INDEX_FILE);
      if (index === undefined) throw new Deno.errors.NotFound("no index.json");
      indexBytes = index.bytes;
    } catch (e) {
      throw fsError(e, `${where} index.json:`, file);
    }
    return LayoutIndex.parse(indexBytes, where, `oci:${path}`);
  }

  /**
   * Path of a blob in the layout.
   *
   * @param digest the blob's digest
   * @returns `<root>/blobs/<alg>/<hex>`
   */
  blobPath(digest: string): string {
    return blobPathIn(this.path, digest);
  }

  resolve(reference?: string): Promise<Descriptor> {
    return Promise.resolve(this.#index.resolve(reference));
  }

  list(): Promise<Descriptor[]> {
    return Promise.resolve([...this.#index.manifests]);
  }

  async fetch(desc: Descriptor): Promise<ReadableStream<Uint8Array>> {
    const path = this.#pending.get(desc.digest)?.tmp ?? this.blobPath(desc.digest);
    try {
      const { stream, found } = await openFileStream(path, desc.size);
      if (found !== desc.size) {
        throw new VerificationError(
          `blob ${desc.digest} in ${this.description} is ${found} bytes, expected ${desc.size}`,
        );
      }
      return stream;
    } catch (e) {
      if (e instanceof VerificationError) throw e;
      if (e instanceof Deno.errors.NotFound) {
        throw new NotFoundError(`blob ${desc.digest} is missing from ${this.description}`);
      }
      throw fsError(e, "blob", this.blobPath(desc.digest));
    }
  }

  async exists(desc: Descriptor): Promise<boolean> {
    const pending = this.#pending.get(desc.digest);
    if (pending) return pending.size === desc.size;
    // a layout this object made holds only what it put there: no need to ask the disk
    // (whoever else writes into it meanwhile costs a second copy, renamed over the first)
    if (this.#made) return this.#placed.get(desc.digest) === desc.size;
    try {
      return (await Deno.stat(this.blobPath(desc.digest))).size === desc.size;
    } catch {
      return false;
    }
  }

  async push(
    spec: BlobSpec,
    content: ReadableStream<Uint8Array>,
    options: PushOptions = {},
  ): Promise<Descriptor> {
    const signal = options.signal;
    await stopIfAborted(content, signal);
    if (spec.digest !== undefined && spec.size !== undefined) {
      const desc = { ...spec, digest: spec.digest, size: spec.size };
      if (await this.exists(desc)) {
        await content.cancel();
        return stripUndefined(desc);
      }
    }
    const algorithm = spec.digest ? parseDigest(spec.digest).algorithm : "sha256";
    const dir = join(this.path, "blobs", algorithm);
    if (!this.#dirs.has(dir)) {
      await Deno.mkdir(dir, { recursive: true });
      this.#dirs.add(dir);
    }
    const tmp = tempPathFor(join(dir, "blob"));
    this.#temps.hold(tmp);
    let file: Deno.FsFile;
    try {
      const options = { write: true, createNew: true };
      // a small blob's file at once (no round trip through the I/O threads: per blob, that
      // was a tenth of a pull of 200 small blobs)
      file = (spec.size ?? LARGE_BLOB) < LARGE_BLOB
        ? Deno.openSync(tmp, options)
        : await Deno.open(tmp, options);
    } catch (e) {
      this.#temps.release(tmp);
      throw e;
    }
    let kept = false;
    try {
      const got = await writeVerified(
        content,
        file,
        spec,
        `blob ${spec.digest ?? "(new)"} for ${this.description}`,
        signal,
        tmp,
      );
      file.close();
      const desc = stripUndefined({ ...spec, digest: got.digest, size: got.size });
      // another push of the same blob got there first: this copy is not needed
      if (!this.#pending.has(got.digest)) {
        this.#pending.set(got.digest, {
          tmp,
          size: got.size,
          manifest: isManifestType(spec.mediaType),
        });
        kept = true;
      }
      return desc;
    } catch (e) {
      if (signal?.aborted) throw signal.reason; // as the caller gave it
      throw fsError(e, "blob file", tmp);
    } finally {
      if (!kept) {
        try {
          file.close();
        } catch { /* already closed */ }
        await Deno.remove(tmp).catch(() => {});
        this.#temps.release(tmp);
      }
    }
  }

  /**
   * Make every pending blob durable and put it in place: one round of
   * fdatasync over all of them (each blob renamed once it is durable), the
   * manifests renamed in order, then the directories synced. `signal` stops
   * it between files (before any manifest is put in place: what is in place
   * is a whole graph or blobs named by nothing).
   */
  async #commit(signal?: AbortSignal): Promise<void> {
    if (this.#pending.size === 0) return;
    const pending = [...this.#pending];
    const place = async ([digest, p]: (typeof pending)[number]) => {
      await Deno.rename(p.tmp, this.blobPath(digest));
      if (this.#made) this.#placed.set(digest, p.size);
      this.#pending.delete(digest);
      this.#temps.release(p.tmp);
    };
    try {
      // Blobs first, each as soon as it is durable; then manifests and indexes one by one, in
      // the order they were pushed (a copy pushes children before their parent): a writer beside
      // this one that finds a manifest in place (and so skips its graph and tags it) finds all it
      // names too.
      await syncFiles(pending.map(([, p]) => p.tmp), (i) => {
        if (!pending[i]![1].manifest) return place(pending[i]!);
      }, signal);
      signal?.throwIfAborted();
      for (const entry of pending.filter(([, p]) => p.manifest)) await place(entry);
      const dirs = new Set(pending.map(([digest]) => dirname(this.blobPath(digest))));
      for (const dir of dirs) await syncDirectory(dir);
    } catch (e) {
      if (signal?.aborted) throw signal.reason; // as the caller gave it
      if (e instanceof Deno.errors.NotFound) {
        // removed by another writer as a killed one's: this one stood still past the stale age
        for (const [digest, p] of this.#pending) {
          if (await pathExists(p.tmp)) continue;
          throw new OcipkgError(
            `blob ${digest} for ${this.description}: its temp file '${p.tmp}' was removed ` +
              `before it was put in place (left untouched for too long?)`,
          );
        }
      }
      throw fsError(e, "oci-dir", this.path);
    }
  }

  /**
   * Change `index.json` (after the blobs it may name are in place) and make
   * it durable: read as it is on disk, changed and replaced under the
   * directory's lock, so that writers beside this one (another pull into the
   * same layout) lose none of their tags to this object's older view.
   */
  async #updateIndex<T>(
    change: (index: LayoutIndex) => { result: T; changed: boolean },
    signal?: AbortSignal,
  ): Promise<T> {
    signal?.throwIfAborted();
    await this.#commit(signal);
    return await this.#lock(async () => {
      await this.#sweep();
      const index = await OciDir.#readIndex(this.path, this.description);
      const { result, changed } = change(index);
      signal?.throwIfAborted(); // the last moment: the index is not changed
      if (changed) {
        await atomicWriteFile(join(this.path, "index.json"), index.encode());
        await syncDirectory(this.path);
      }
      this.#index = index;
      return result;
    });
  }

  tag(desc: Descriptor, reference: string, options: TagOptions = {}): Promise<void> {
    return this.#mutex.run(
      () =>
        this.#updateIndex((index) => {
          if (this.#options.soleImage) {
            this.#tagged.add(reference);
            checkSoleImage(this.description, index.manifests, this.#tagged);
          }
          index.tag(desc, reference);
          return { result: undefined, changed: true };
        }, options.signal),
      options.signal,
    );
  }

  /**
   * Remove the index entries `drop` picks (a deleted tag or manifest);
   * `index.json` is replaced atomically. Blobs stay.
   *
   * @param drop picks the entries to remove
   * @returns how many were removed
   */
  untag(drop: (entry: Descriptor) => boolean): Promise<number> {
    return this.#mutex.run(() =>
      this.#updateIndex((index) => {
        const before = index.manifests.length;
        index.manifests = index.manifests.filter((m) => !drop(m));
        const removed = before - index.manifests.length;
        return { result: removed, changed: removed > 0 };
      })
    );
  }

  /** Finish: blobs pushed and not yet in place are made durable and put there. */
  close(): Promise<void> {
    return this.#mutex.run(() => this.#commit());
  }

  /**
   * Discard: blobs pushed and not yet in place are deleted, and a layout this
   * object created (it was not there before) is removed — unless another
   * writer has put something in it meanwhile (an image in its `index.json`,
   * a blob, or a blob on its way).
   */
  abort(): Promise<void> {
    return this.#mutex.run(async () => {
      for (const [digest, p] of this.#pending) {
        await Deno.remove(p.tmp).catch(() => {});
        this.#temps.release(p.tmp);
        this.#pending.delete(digest);
      }
      if (!this.#made) return;
      await this.#lock(async () => {
        if (!(await this.#untouched())) return;
        await Deno.remove(this.path, { recursive: true });
      }).catch(() => {});
    });
  }

  /** Whether the layout holds nothing but what this object put there (and no image). */
  async #untouched(): Promise<boolean> {
    const index = await OciDir.#readIndex(this.path, this.description);
    if (index.manifests.length > 0) return false;
    for await (const alg of Deno.readDir(join(this.path, "blobs"))) {
      if (!alg.isDirectory) return false;
      for await (const e of Deno.readDir(join(this.path, "blobs", alg.name))) {
        const placed = this.#placed.has(`${alg.name}:${e.name}`);
        if (!placed) return false;
      }
    }
    return true;
  }
}
