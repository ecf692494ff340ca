/**
 * The served root: one OCI image layout per repository, `<root>/<name>/`, as
 * olareg keeps them. Names are checked against the distribution spec's
 * grammar (`isRepositoryName`, `isTag` of reference.ts). A repository's tags,
 * manifests and referrers are read from and written to its private index
 * (`<name>/.ocipkg-index`, `repo_index.ts`), from which its `index.json` is
 * written ({@link Repository.export}, when `export_schedule.ts` says); a
 * repository from before (a plain `index.json`) is read whole until its first
 * write moves it over. The root's repository names are kept in the catalog
 * index (`<root>/.ocipkg-catalog`, `catalog_index.ts`), which every
 * repository made here is added to. At most {@link OPEN_REPOSITORIES}
 * repositories are kept open (least recently used dropped); their write
 * locks and export marks are kept by name, so two objects of one repository
 * never write at once.
 *
 * Containment is decided on disk, on every request, whatever a local user
 * does under the root after start. The root is resolved once, at start
 * (`realPath`). Before a repository's files are read or written, every
 * directory from the root down to them — the root itself, each component of
 * the name, `blobs`, `blobs/<alg>` — is checked with `lstat` to be a real
 * directory ({@link containedDir}), and `oci-layout`, `index.json` and a blob
 * to be regular files (the private index's directories and files likewise). A
 * symlink (or anything else) where a directory belongs is refused, never followed: the request is answered 500 `UNKNOWN` with one
 * line naming the path under the root, and nothing is read or written through
 * it; other repositories are served as before. The cache of open repositories
 * is checked the same way on every use. The upload directory
 * (`<root>/.uploads`) is checked before each temp file is made, read,
 * renamed or removed (`uploads.ts`).
 *
 * @module
 */
import { join } from "../util/path.ts";
import { digestOf, isDigest, parseDigest } from "../oci/digest.ts";
import { atomicWriteFile, readSmallFile, writeAll } from "../util/files.ts";
import { Mutex } from "../util/concurrency.ts";
import { releaseTemp, tempPathFor } from "../util/temp.ts";
import { LayoutIndex, OCI_LAYOUT_FILE } from "../transport/layout/index_file.ts";
import { type Descriptor, MAX_MANIFEST_SIZE } from "../oci/manifest.ts";
import { OCI_INDEX, OCI_MANIFEST } from "../oci/media_types.ts";
import { isRepositoryName } from "../oci/reference.ts";
import { Catalog, type CatalogPage, RESERVED_COMPONENTS } from "./catalog_index.ts";
import { ServeError } from "./errors.ts";
import { containedDir, lstatOrUndefined, refused } from "./contained.ts";
import { ExportSchedule, type StorageOptions } from "./export_schedule.ts";
import { LegacyIndex, parseIndexJson, readIndexJson, validAnnotations } from "./legacy_index.ts";
import {
  FORMAT_FILE,
  INDEX_DIR,
  RepoIndex,
  type StoredManifest,
  type TagPage,
} from "./repo_index.ts";
import { syncDir } from "./sorted_file.ts";

export { containedDir } from "./contained.ts";
export type { StorageOptions } from "./export_schedule.ts";

/**
 * Check a repository name.
 *
 * @param name from the URL
 * @throws {ServeError} `NAME_INVALID`
 */
export function checkName(name: string): void {
  if (!isRepositoryName(name)) {
    throw new ServeError("NAME_INVALID", `invalid repository name '${name.slice(0, 300)}'`);
  }
  // a nested repository's directory sits inside its parent's layout: it must not take a layout's names
  if (name.split("/").slice(1).some((c) => RESERVED_COMPONENTS.has(c))) {
    throw new ServeError(
      "NAME_INVALID",
      `repository name '${name}' has a component reserved by the OCI layout (blobs, index.json, oci-layout)`,
    );
  }
}

/** What the registry knows of a stored manifest, for referrers and content types. */
export interface ManifestInfo {
  /** The media type it was stored with. */
  mediaType: string;
  /** Its size. */
  size: number;
  /** `artifactType`, or an image manifest's config media type. */
  artifactType?: string;
  /** Its subject's digest. */
  subject?: string;
  /** Its annotations. */
  annotations?: Record<string, string>;
}

/** The digest algorithms a layout may hold blobs of (`blobs/<alg>`). */
const ALGORITHMS = ["sha256", "sha512"];

/** Parse a stored manifest's bytes for what the registry needs to know. */
export function manifestInfo(bytes: Uint8Array, mediaType?: string): ManifestInfo | undefined {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const doc = v as Record<string, unknown>;
  const declared = typeof doc.mediaType === "string" ? doc.mediaType : undefined;
  const config = doc.config as { mediaType?: unknown } | undefined;
  const type = mediaType ?? declared ??
    (Array.isArray(doc.manifests) ? OCI_INDEX : config ? OCI_MANIFEST : undefined);
  if (!type) return undefined;
  const subject = (doc.subject as { digest?: unknown } | undefined)?.digest;
  const artifactType = typeof doc.artifactType === "string"
    ? doc.artifactType
    : typeof config?.mediaType === "string"
    ? config.mediaType
    : undefined;
  const annotations = typeof doc.annotations === "object" && doc.annotations !== null
    ? doc.annotations as Record<string, string>
    : undefined;
  return {
    mediaType: type,
    size: bytes.byteLength,
    ...(artifactType ? { artifactType } : {}),
    ...(typeof subject === "string" ? { subject } : {}),
    ...(annotations ? { annotations } : {}),
  };
}

/** The largest private index `format` file read (it holds a version and the index's annotations). */
const MAX_FORMAT_FILE = 1 << 20;

/**
 * One repository: an OCI layout under the root, and its private index
 * (`repo_index.ts`) once it has been written to through `serve` — until
 * then (or for ever under `--read-only`) its plain `index.json` is read
 * whole (`legacy_index.ts`). Reads run beside writes; writes run one at a
 * time ({@link Repository.exclusive}).
 */
export class Repository {
  /** Its name. */
  readonly name: string;
  /** Its directory. */
  readonly path: string;
  #root: string;
  /** Serializes writes (manifest push, tag, delete, the end of an export): one per name, held by the storage. */
  #lock: <T>(fn: () => Promise<T>) => Promise<T>;
  #parts: string[];
  #index: RepoIndex;
  #legacy: LegacyIndex | undefined;
  /** The `index.json` last found to be ours (or merged in). */
  #indexSeen: string | undefined;
  #infos = new Map<string, ManifestInfo>();
  #onWrite: (repo: Repository) => void;
  /** Never merge another tool's `index.json` in (nothing is written). */
  #readOnly = false;

  private constructor(
    root: string,
    name: string,
    path: string,
    onWrite: (r: Repository) => void,
    lock: <T>(fn: () => Promise<T>) => Promise<T>,
    readOnly: boolean,
  ) {
    this.name = name;
    this.#readOnly = readOnly;
    this.path = path;
    this.#root = root;
    this.#lock = lock;
    this.#parts = name.split("/");
    this.#onWrite = onWrite;
    this.#index = new RepoIndex(
      async () => {
        const dir = await containedDir(this.#root, [...this.#parts, INDEX_DIR], false);
        if (!dir) throw new ServeError("UNKNOWN", `'${name}/${INDEX_DIR}' is gone`);
        return dir;
      },
      `${name}/${INDEX_DIR}`,
      readOnly,
    );
  }

  /** @internal */
  static async open(
    root: string,
    name: string,
    onWrite: (repo: Repository) => void,
    readOnly: boolean,
    lock: <T>(fn: () => Promise<T>) => Promise<T>,
  ): Promise<Repository> {
    const path = join(root, ...name.split("/"));
    const repo = new Repository(root, name, path, onWrite, lock, readOnly);
    const c = await repo.#check();
    // writes a stop did not export (a crash): exported soon
    if (c.private && (await repo.#index.hasPending())) onWrite(repo);
    return repo;
  }

  /**
   * Check the repository on disk: every directory from the root down to it
   * and its `blobs/<alg>` and `.ocipkg-index` real, `oci-layout`,
   * `index.json` and `.ocipkg-index/format` regular files.
   * @returns the version of `index.json` (inode, mtime, size), its inode, and whether the
   * private index is there
   */
  async #check(): Promise<{ indexId: string; ino: number | null; private: boolean }> {
    const name = this.name;
    const path = await containedDir(this.#root, this.#parts, false);
    if (!path) throw new ServeError("NAME_UNKNOWN", `repository '${name}' is not known`);
    const blobs = await lstatOrUndefined(join(path, "blobs"));
    if (blobs && !blobs.isDirectory) throw refused(`${name}/blobs`, blobs, "a directory");
    for (const alg of blobs ? ALGORITHMS : []) {
      const st = await lstatOrUndefined(join(path, "blobs", alg));
      if (st && !st.isDirectory) throw refused(`${name}/blobs/${alg}`, st, "a directory");
    }
    let index: Deno.FileInfo | undefined;
    for (const f of [OCI_LAYOUT, "index.json"]) {
      const st = await lstatOrUndefined(join(path, f));
      if (!st) throw new ServeError("NAME_UNKNOWN", `repository '${name}' has no ${f}`);
      if (!st.isFile) throw refused(`${name}/${f}`, st, "a regular file");
      index = st;
    }
    let isPrivate = false;
    const dir = await lstatOrUndefined(join(path, INDEX_DIR));
    if (dir) {
      if (!dir.isDirectory) throw refused(`${name}/${INDEX_DIR}`, dir, "a directory");
      const format = await lstatOrUndefined(join(path, INDEX_DIR, FORMAT_FILE));
      if (format && !format.isFile) {
        throw refused(`${name}/${INDEX_DIR}/${FORMAT_FILE}`, format, "a regular file");
      }
      isPrivate = !!format;
    }
    return {
      indexId: `${index!.ino}:${index!.mtime?.getTime()}:${index!.size}`,
      ino: index!.ino,
      private: isPrivate,
    };
  }

  /** The index to read: the private one (another tool's `index.json` merged in first), or the plain one. */
  async #view(): Promise<RepoIndex | LegacyIndex> {
    const c = await this.#check();
    if (c.private) {
      if (c.indexId !== this.#indexSeen && !this.#readOnly) {
        // our own export (the usual case, e.g. a repository just opened): nothing to merge
        if (await this.#index.isExport(c.ino)) this.#indexSeen = c.indexId;
        else await this.exclusive(() => this.#privateLocked());
      }
      return this.#index;
    }
    if (this.#legacy?.id !== c.indexId) {
      const bytes = await readIndexJson(join(this.path, "index.json"), `${this.name}/index.json`);
      if (!bytes) {
        throw new ServeError("NAME_UNKNOWN", `repository '${this.name}' has no index.json`);
      }
      this.#legacy = new LegacyIndex(c.indexId, parseIndexJson(bytes, this.name));
    }
    return this.#legacy;
  }

  /**
   * The private index, for a writer inside {@link Repository.exclusive}: made
   * from `index.json` when the repository has none yet; an `index.json`
   * another tool wrote since our last export merged in.
   */
  async #privateLocked(): Promise<RepoIndex> {
    const c = await this.#check();
    if (!c.private) {
      const dir = (await containedDir(this.#root, [...this.#parts, INDEX_DIR], true))!;
      await RepoIndex.build(dir, this.path, (d, m) => this.#stored(d, m), this.name);
      this.#indexSeen = c.indexId;
      this.#legacy = undefined;
      return this.#index;
    }
    if (c.indexId !== this.#indexSeen) {
      if (!(await this.#index.isExport(c.ino))) {
        await this.#index.merge(this.path, (d, m) => this.#stored(d, m));
        this.#onWrite(this);
      }
      this.#indexSeen = c.indexId;
    }
    return this.#index;
  }

  /** What the index keeps of a stored manifest. */
  async #stored(digest: string, mediaType: string): Promise<StoredManifest | undefined> {
    const info = await this.info(digest, mediaType);
    if (!info) return undefined;
    return {
      ...(info.subject !== undefined ? { subject: info.subject } : {}),
      ...(info.artifactType !== undefined ? { artifactType: info.artifactType } : {}),
      ...(info.annotations !== undefined ? { annotations: info.annotations } : {}),
    };
  }

  /**
   * Run `fn` as the repository's one writer (the lock is the storage's, by
   * name: two objects of one repository never write at once).
   * @param fn the write
   * @returns what `fn` returns
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.#lock(fn);
  }

  /**
   * The entry a tag names.
   * @param tag the tag
   * @returns its descriptor, or undefined
   */
  async tagged(tag: string): Promise<Descriptor | undefined> {
    return await (await this.#view()).tagged(tag);
  }

  /**
   * The entry of a stored manifest.
   * @param digest its digest
   * @returns its descriptor, or undefined when the index does not list it
   */
  async entry(digest: string): Promise<Descriptor | undefined> {
    return await (await this.#view()).entry(digest);
  }

  /**
   * A page of the tags, sorted.
   * @param after only tags after this one
   * @param n most tags
   * @returns the page
   */
  async tagPage(after: string | undefined, n: number): Promise<TagPage> {
    const view = await this.#view();
    if (view instanceof RepoIndex) return await view.tagPage(after, n);
    const all = view.tags();
    let i = 0;
    if (after !== undefined) { while (i < all.length && all[i]! <= after) i++; }
    return { tags: all.slice(i, i + n), more: i + n < all.length };
  }

  /**
   * The referrers of a subject, in digest order.
   * @param subject the subject's digest
   * @param after only referrers after this digest
   * @yields each referrer's descriptor (its artifact type and annotations)
   */
  async *referrersOf(subject: string, after?: string): AsyncGenerator<Descriptor> {
    const view = await this.#view();
    if (view instanceof RepoIndex) {
      yield* view.referrersOf(subject, after);
      return;
    }
    for (const digest of view.digests()) {
      if (after !== undefined && digest <= after) continue;
      const entry = view.entry(digest)!;
      const info = await this.info(digest, entry.mediaType);
      if (info?.subject !== subject) continue;
      yield {
        mediaType: entry.mediaType,
        digest,
        size: info.size,
        ...(info.artifactType ? { artifactType: info.artifactType } : {}),
        ...(info.annotations ? { annotations: info.annotations } : {}),
      };
    }
  }

  /**
   * Store a manifest and tag it: its blob written durably, then its entry,
   * its place among its subject's referrers and the tag (see
   * `repo_index.ts`), all before this returns.
   * @param desc its descriptor (as its tag's entry lists it)
   * @param ref the tag or digest it is pushed under
   * @param bytes its bytes
   */
  async storeManifest(desc: Descriptor, ref: string, bytes: Uint8Array): Promise<void> {
    await this.exclusive(async () => {
      const index = await this.#privateLocked();
      await this.#writeBlob(desc.digest, bytes);
      const info = manifestInfo(bytes, desc.mediaType);
      if (info) {
        this.#infos.set(desc.digest, info);
        if (this.#infos.size > 10_000) this.#infos.clear();
      }
      await index.record(desc, isDigest(ref) ? undefined : ref, {
        ...(info?.subject !== undefined ? { subject: info.subject } : {}),
        ...(info?.artifactType !== undefined ? { artifactType: info.artifactType } : {}),
        ...(info?.annotations !== undefined ? { annotations: info.annotations } : {}),
      });
    });
    this.#onWrite(this);
  }

  /** Write a blob whole and durably (kept when a file of its size is there). */
  async #writeBlob(digest: string, bytes: Uint8Array): Promise<void> {
    const dir = await this.blobDir(digest);
    if ((await this.blobSize(digest)) === bytes.byteLength) return;
    const path = this.blobPath(digest);
    const tmp = tempPathFor(path);
    try {
      const f = await Deno.open(tmp, { write: true, createNew: true });
      try {
        await writeAll(f, bytes);
        await f.syncData();
      } finally {
        f.close();
      }
      await Deno.rename(tmp, path);
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      throw e;
    } finally {
      releaseTemp(tmp);
    }
    await syncDir(dir);
  }

  /**
   * Remove a tag (its manifest stays, untagged).
   * @param tag the tag
   * @returns whether it was there
   */
  async deleteTag(tag: string): Promise<boolean> {
    const removed = await this.exclusive(async () => {
      return await (await this.#privateLocked()).removeTag(tag);
    });
    if (removed) this.#onWrite(this);
    return removed;
  }

  /**
   * Remove a manifest: every tag naming it, its entry, its blob.
   * @param digest its digest
   * @returns whether it was there
   */
  async deleteManifest(digest: string): Promise<boolean> {
    const removed = await this.exclusive(async () => {
      const index = await this.#privateLocked();
      const listed = await index.entry(digest);
      const info = await this.info(digest, listed?.mediaType);
      if (!listed && (!info || (await this.blobSize(digest)) === undefined)) return false;
      await index.removeManifest(digest, info?.subject);
      await Deno.remove(this.blobPath(digest)).catch(() => {});
      this.forget(digest);
      return true;
    });
    if (removed) this.#onWrite(this);
    return removed;
  }

  /**
   * Write `index.json` from the private index (see `RepoIndex.export`); a
   * repository with none (never written through `serve`) is left as it is.
   * @returns whether it was written
   */
  async export(): Promise<boolean> {
    const c = await this.#check();
    if (!c.private) return false;
    let annotations: Record<string, string> | undefined;
    try {
      const dir = await containedDir(this.#root, [...this.#parts, INDEX_DIR], false);
      const format = await readSmallFile(join(dir!, FORMAT_FILE), FORMAT_FILE, MAX_FORMAT_FILE);
      const parsed = JSON.parse(new TextDecoder().decode(format!.bytes));
      annotations = validAnnotations(parsed.annotations);
    } catch { /* none */ }
    await this.#index.export(this.path, (fn) => this.exclusive(fn), annotations);
    return true;
  }

  /**
   * Writes not yet compacted into the private index's base files.
   * @returns the count (0 for a repository without one)
   */
  async pending(): Promise<number> {
    const c = await this.#check();
    return c.private ? await this.#index.pending() : 0;
  }

  /**
   * Path of a blob (the digest is valid). Only a path: use it right after
   * {@link Repository.blobSize} or {@link Repository.blobDir} checked the
   * directories on the way.
   * @param digest a digest
   * @returns `<repo>/blobs/<alg>/<hex>`
   */
  blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.path, "blobs", algorithm, hex);
  }

  /**
   * Size of a stored blob: a regular file (a symlink is not followed), every
   * directory from the root down to it checked on disk.
   * @param digest its digest
   * @returns the size, or undefined when absent
   */
  async blobSize(digest: string): Promise<number | undefined> {
    const { algorithm, hex } = parseDigest(digest);
    const dir = await containedDir(this.#root, [...this.#parts, "blobs", algorithm], false);
    if (!dir) return undefined;
    const st = await lstatOrUndefined(join(dir, hex));
    return st?.isFile ? st.size : undefined;
  }

  /**
   * Directory for blobs of an algorithm, made when missing, every directory
   * from the root down to it checked on disk.
   * @param digest a digest of that algorithm
   * @returns the directory
   */
  async blobDir(digest: string): Promise<string> {
    const { algorithm } = parseDigest(digest);
    const dir = await containedDir(this.#root, [...this.#parts, "blobs", algorithm], true);
    return dir!;
  }

  /**
   * Read a stored manifest whole, checked against its digest.
   * @param digest its digest
   * @returns the bytes, or undefined when absent, too large or damaged
   */
  async readManifest(digest: string): Promise<Uint8Array | undefined> {
    const size = await this.blobSize(digest);
    if (size === undefined || size > MAX_MANIFEST_SIZE) return undefined;
    const bytes = await Deno.readFile(this.blobPath(digest)).catch(() => undefined);
    if (!bytes || digestOf(bytes, parseDigest(digest).algorithm) !== digest) return undefined;
    return bytes;
  }

  /**
   * What is known of a stored manifest (cached: content never changes).
   * @param digest its digest
   * @param mediaType the media type its index entry gives, when any
   * @returns the info, or undefined when it is not a stored manifest
   */
  async info(digest: string, mediaType?: string): Promise<ManifestInfo | undefined> {
    const known = this.#infos.get(digest);
    if (known) return known;
    const bytes = await this.readManifest(digest);
    const info = bytes && manifestInfo(bytes, mediaType);
    if (info) {
      if (this.#infos.size > 10_000) this.#infos.clear();
      this.#infos.set(digest, info);
    }
    return info;
  }

  /**
   * Forget what was cached of a manifest (it was deleted).
   * @param digest its digest
   */
  forget(digest: string): void {
    this.#infos.delete(digest);
  }
}

const OCI_LAYOUT = "oci-layout";

/** Most repositories kept open (least recently used dropped first; reopened on their next use). */
export const OPEN_REPOSITORIES = 256;

/** The root and its repositories. */
export class Storage {
  /** The root directory (resolved). */
  readonly root: string;
  /** Where upload sessions write (`<root>/.uploads`). */
  readonly uploads: string;
  /** The open repositories, least recently used first (at most {@link OPEN_REPOSITORIES}). */
  #repos = new Map<string, Promise<Repository>>();
  /** Each repository's write lock, by name, while held or awaited. */
  #locks = new Map<string, { mutex: Mutex; users: number }>();
  #catalog: Catalog;
  #exports: ExportSchedule;
  #readOnly: boolean;
  #maxOpen: number;

  private constructor(root: string, options: StorageOptions, catalog: Catalog) {
    this.root = root;
    this.uploads = join(root, ".uploads");
    this.#catalog = catalog;
    this.#exports = new ExportSchedule(options);
    this.#readOnly = options.readOnly ?? false;
    this.#maxOpen = Math.max(1, options.maxOpenRepositories ?? OPEN_REPOSITORIES);
  }

  /**
   * Write now the `index.json` of every repository written since its last
   * export (see {@link ExportSchedule}).
   */
  async flush(): Promise<void> {
    await this.#exports.flush();
  }

  /**
   * Write the `index.json` of every repository that has a private index,
   * one after the other (the catalog read a page at a time); one that fails
   * (a corrupt private index) does not stop the others.
   * @param onError receives each repository that failed and why (by default the first
   *   failure is thrown once the others are written)
   * @returns the names of the repositories written
   */
  async exportAll(onError?: (name: string, error: unknown) => void): Promise<string[]> {
    const done: string[] = [];
    let failed: { error: unknown } | undefined;
    let after: string | undefined;
    for (;;) {
      const page = await this.#catalog.page(after, 1000);
      for (const name of page.names) {
        try {
          const repo = await this.repository(name);
          if (repo && (await repo.export())) done.push(name);
        } catch (e) {
          if (onError) onError(name, e);
          else failed ??= { error: e };
        }
      }
      if (!page.more) break;
      after = page.names[page.names.length - 1];
    }
    if (failed) throw failed.error;
    return done;
  }

  /**
   * Stop the export timers, write every `index.json` that trails its
   * writes, and leave the catalog's marker of a clean stop (see
   * `catalog_index.ts`).
   */
  async close(): Promise<void> {
    await this.#exports.close();
    await this.#catalog.close();
  }

  /**
   * Open (making when missing) a root: resolved here, once (`realPath`).
   * @param root the directory
   * @param options when `index.json` files are written, where their failures go
   * @returns the storage
   */
  static async open(root: string, options: StorageOptions = {}): Promise<Storage> {
    await Deno.mkdir(root, { recursive: true });
    const real = await Deno.realPath(root);
    await containedDir(real, [".uploads"], true);
    const catalog = await Catalog.open(real, options.readOnly ?? false);
    return new Storage(real, options, catalog);
  }

  /**
   * A repository, or undefined when it does not exist (and `create` is not
   * set). The directories from the root down to it are checked on disk on
   * every call, cached or not.
   * @param name a checked name
   * @param create make it when missing
   * @returns the repository
   * @throws {ServeError} `UNKNOWN` (500) when a symlink or another file sits where a directory belongs
   */
  async repository(name: string, create = false): Promise<Repository | undefined> {
    checkName(name);
    if (await this.#exists(name)) return await this.#open(name);
    this.#repos.delete(name); // removed behind our back, or never there
    if (!create) return undefined;
    await this.#catalog.creating(name, async (madeDir) => {
      if (await this.#exists(name)) return;
      const parts = name.split("/");
      const made: string[][] = [];
      let wroteIndex = false;
      let madeIndex = false;
      try {
        const path = (await containedDir(this.root, parts, true, made))!;
        madeDir(); // the directories above it are as this left them
        await containedDir(this.root, [...parts, "blobs", "sha256"], true, made);
        const index = await lstatOrUndefined(join(path, "index.json"));
        if (!index) {
          await atomicWriteFile(join(path, "index.json"), new LayoutIndex(name).encode());
          wroteIndex = true;
        }
        // a new repository starts with its private index (and oci-layout, last, makes it one)
        if (!(await lstatOrUndefined(join(path, INDEX_DIR)))) {
          const dir = (await containedDir(this.root, [...parts, INDEX_DIR], true))!;
          madeIndex = true;
          await RepoIndex.build(dir, path, () => Promise.resolve(undefined), name);
        }
        await atomicWriteFile(join(path, OCI_LAYOUT), OCI_LAYOUT_FILE);
      } catch (e) {
        // nothing half-made is left (a full disk, a symlink swapped in meanwhile)
        const dir = await containedDir(this.root, parts, false).catch(() => undefined);
        if (dir && wroteIndex) await Deno.remove(join(dir, "index.json")).catch(() => {});
        if (dir && madeIndex) {
          await Deno.remove(join(dir, INDEX_DIR), { recursive: true }).catch(() => {});
        }
        for (const p of made.reverse()) {
          const parent = await containedDir(this.root, p.slice(0, -1), false).catch(() =>
            undefined
          );
          if (parent) await Deno.remove(join(parent, p[p.length - 1]!)).catch(() => {});
        }
        throw e;
      }
    });
    return await this.#open(name);
  }

  /** Whether a repository is there: real directories down to it, its `oci-layout` a regular file. */
  async #exists(name: string): Promise<boolean> {
    const path = await containedDir(this.root, name.split("/"), false);
    return !!path && !!(await lstatOrUndefined(join(path, OCI_LAYOUT)))?.isFile;
  }

  /** Run `fn` as a repository's one writer (whichever of its objects asks). */
  #exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    let lock = this.#locks.get(name);
    if (!lock) this.#locks.set(name, lock = { mutex: new Mutex(), users: 0 });
    const held = lock;
    held.users++;
    return held.mutex.run(fn).finally(() => {
      if (--held.users === 0 && this.#locks.get(name) === held) this.#locks.delete(name);
    });
  }

  /**
   * The open Repository of a name, opened when it is not (and added to the
   * catalog when the catalog lacks it). At most {@link OPEN_REPOSITORIES}
   * are kept: dropping one is safe, as its write lock and export schedule
   * are kept by name, not by object.
   */
  #open(name: string): Promise<Repository> {
    let p = this.#repos.get(name);
    if (p) {
      this.#repos.delete(name); // most recently used: last
      this.#repos.set(name, p);
      return p;
    }
    const opening = (async () => {
      const repo = await Repository.open(
        this.root,
        name,
        (r) => this.#exports.wrote(r),
        this.#readOnly,
        (fn) => this.#exclusive(name, fn),
      );
      await this.#catalog.known(name);
      return repo;
    })();
    this.#repos.set(name, opening);
    opening.catch(() => {
      if (this.#repos.get(name) === opening) this.#repos.delete(name);
    });
    while (this.#repos.size > this.#maxOpen) {
      this.#repos.delete(this.#repos.keys().next().value!);
    }
    p = opening;
    return p;
  }

  /** How many repositories are open (at most {@link OPEN_REPOSITORIES}). */
  get openRepositories(): number {
    return this.#repos.size;
  }

  /**
   * A page of the repository names under the root, sorted, from the catalog
   * kept incrementally (`catalog_index.ts`), each checked on disk.
   * @param after only names after this one
   * @param n most names
   * @returns the page
   */
  async catalogPage(after: string | undefined, n: number): Promise<CatalogPage> {
    return await this.#catalog.page(after, n);
  }
}
