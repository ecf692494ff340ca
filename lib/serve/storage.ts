/**
 * The served root: one OCI image layout ({@link OciDir}) per repository,
 * `<root>/<name>/`, as olareg keeps them. Names are checked against the
 * distribution spec's grammar (`isRepositoryName`, `isTag` of reference.ts).
 *
 * Containment is decided on disk, on every request, whatever a local user
 * does under the root after start. The root is resolved once, at start
 * (`realPath`). Before a repository's files are read or written, every
 * directory from the root down to them — the root itself, each component of
 * the name, `blobs`, `blobs/<alg>` — is checked with `lstat` to be a real
 * directory ({@link containedDir}), and `oci-layout`, `index.json` and a blob
 * to be regular files. A symlink (or anything else) where a directory belongs
 * is refused, never followed: the request is answered 500 `UNKNOWN` with one
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
import { atomicWriteFile } from "../util/files.ts";
import { Mutex } from "../util/concurrency.ts";
import { LayoutIndex, OCI_LAYOUT_FILE } from "../transport/layout/index_file.ts";
import { OciDir } from "../transport/layout/oci_dir.ts";
import { type Descriptor, MAX_MANIFEST_SIZE } from "../oci/manifest.ts";
import { ANNOTATION_REF_NAME, OCI_INDEX, OCI_MANIFEST } from "../oci/media_types.ts";
import { isRepositoryName, isTag } from "../oci/reference.ts";
import { ServeError } from "./errors.ts";

// a nested repository's directory sits inside its parent's layout: it must not take a layout's names
const RESERVED = new Set(["blobs", "index.json", "oci-layout"]);

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
  if (name.split("/").slice(1).some((c) => RESERVED.has(c))) {
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

async function lstatOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    throw e;
  }
}

/** What a file that is not what it should be is, for messages. */
function kind(st: Deno.FileInfo): string {
  if (st.isSymlink) return "a symlink";
  if (st.isDirectory) return "a directory";
  if (st.isFile) return "a regular file";
  if (st.isFifo) return "a fifo";
  if (st.isSocket) return "a socket";
  if (st.isCharDevice) return "a character device";
  if (st.isBlockDevice) return "a block device";
  return "not a regular file";
}

/** The refusal of something under the root that is not what it must be (500 `UNKNOWN`). */
function refused(where: string, st: Deno.FileInfo, want: string): ServeError {
  return new ServeError(
    "UNKNOWN",
    `refused: '${where}' under the registry's root is ${kind(st)}, not ${want}`,
  );
}

/**
 * A directory under the root, checked on disk: the root and every component
 * on the way must be real directories (`lstat`, so a symlink is refused,
 * never followed).
 *
 * @param root the root (resolved with `realPath` at start)
 * @param parts the components under it
 * @param create make the missing ones
 * @param made receives the components of each directory made (for cleaning up)
 * @returns the directory's path, or undefined when one is missing (and not `create`)
 * @throws {ServeError} `UNKNOWN` (500) naming the component that is a symlink or not a directory
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { containedDir } from "./storage.ts";
 * const root = await Deno.realPath(await Deno.makeTempDir());
 * assert.equal(await containedDir(root, ["org", "app"], true), `${root}/org/app`);
 * assert.equal(await containedDir(root, ["org", "other"], false), undefined);
 * // a symlink where a directory belongs is refused, not followed
 * const elsewhere = await Deno.makeTempDir();
 * await Deno.symlink(elsewhere, `${root}/link`);
 * await assert.rejects(containedDir(root, ["link", "app"], true), {
 *   code: "UNKNOWN",
 *   message: "refused: 'link' under the registry's root is a symlink, not a directory",
 * });
 * assert.deepEqual([...Deno.readDirSync(elsewhere)], []); // nothing made there
 * await Deno.remove(root, { recursive: true });
 * await Deno.remove(elsewhere);
 * ```
 */
export async function containedDir(
  root: string,
  parts: readonly string[],
  create: boolean,
  made?: string[][],
): Promise<string | undefined> {
  const top = await lstatOrUndefined(root);
  if (!top) {
    throw new ServeError("UNKNOWN", "refused: the registry's root directory is gone");
  }
  if (!top.isDirectory) {
    throw new ServeError("UNKNOWN", `refused: the registry's root is now ${kind(top)}`);
  }
  let path = root;
  for (let i = 0; i < parts.length; i++) {
    path = join(path, parts[i]!);
    let st = await lstatOrUndefined(path);
    if (!st && create) {
      try {
        await Deno.mkdir(path);
        made?.push(parts.slice(0, i + 1));
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
      st = await lstatOrUndefined(path);
    }
    if (!st) return undefined;
    if (!st.isDirectory) throw refused(parts.slice(0, i + 1).join("/"), st, "a directory");
  }
  return path;
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

/** One repository: an OCI layout under the root. */
export class Repository {
  /** Its name. */
  readonly name: string;
  /** Its directory. */
  readonly path: string;
  /** Serializes index writes (manifest push, tag, delete). */
  readonly mutex: Mutex = new Mutex();
  #root: string;
  #parts: string[];
  #dir: OciDir;
  #indexId: string;
  #writers = 0;
  #infos = new Map<string, ManifestInfo>();

  private constructor(root: string, name: string, dir: OciDir, indexId: string) {
    this.name = name;
    this.path = dir.path;
    this.#root = root;
    this.#parts = name.split("/");
    this.#dir = dir;
    this.#indexId = indexId;
  }

  /** @internal */
  static async open(root: string, name: string): Promise<Repository> {
    const path = join(root, ...name.split("/"));
    const id = await Repository.#check(root, name);
    return new Repository(root, name, await OciDir.open(path), id);
  }

  /**
   * Check the repository on disk: every directory from the root down to it
   * and its `blobs/<alg>` real, `oci-layout` and `index.json` regular files.
   * @returns the identity of its `index.json` (inode, mtime, size)
   */
  static async #check(root: string, name: string): Promise<string> {
    const parts = name.split("/");
    const path = await containedDir(root, parts, false);
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
    return `${index!.ino}:${index!.mtime?.getTime()}:${index!.size}`;
  }

  /**
   * The layout, checked on disk (see the module doc), reopened when another
   * process replaced its `index.json`.
   * @returns the layout
   */
  async layout(): Promise<OciDir> {
    const id = await Repository.#check(this.#root, this.name);
    // a writer is at work (it reloads, writes and stamps the index itself): its layout is
    // the current one; a reader never swaps the layout a writer holds — a swap there once
    // made the next write start from a stale index and drop acknowledged tags
    if (id === this.#indexId || this.#writers > 0) return this.#dir;
    // another process replaced the index: reload, as a writer would
    return await this.exclusive(() => this.layoutLocked());
  }

  /**
   * Run `fn` as the repository's one writer (index writes are serialized);
   * inside it, use {@link Repository.layoutLocked} and {@link Repository.wrote}.
   * @param fn the write
   * @returns what `fn` returns
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      this.#writers++;
      try {
        return await fn();
      } finally {
        this.#writers--;
      }
    });
  }

  /**
   * The layout, for a writer already inside {@link Repository.exclusive}: reopened when another
   * process replaced its `index.json`.
   * @returns the layout
   */
  async layoutLocked(): Promise<OciDir> {
    const id = await Repository.#check(this.#root, this.name);
    if (id !== this.#indexId) {
      await this.#dir.close();
      this.#dir = await OciDir.open(this.path);
      this.#indexId = id;
    }
    return this.#dir;
  }

  /** Remember the current `index.json` as ours (after a write). */
  async wrote(): Promise<void> {
    this.#indexId = await Repository.#check(this.#root, this.name);
  }

  /**
   * Path of a blob (the digest is valid). Only a path: use it right after
   * {@link Repository.blobSize}, {@link Repository.blobDir} or
   * {@link Repository.layout} checked the directories on the way.
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
   * The index entries naming a tag, or holding a digest.
   * @param reference tag or digest
   * @returns the entries
   */
  async entries(reference: string): Promise<Descriptor[]> {
    const all = await (await this.layout()).list();
    return isDigest(reference)
      ? all.filter((d) => d.digest === reference)
      : all.filter((d) => d.annotations?.[ANNOTATION_REF_NAME] === reference);
  }

  /**
   * The tags, sorted.
   * @returns the tags
   */
  async tags(): Promise<string[]> {
    const all = await (await this.layout()).list();
    const tags = new Set<string>();
    for (const d of all) {
      const t = d.annotations?.[ANNOTATION_REF_NAME];
      if (t !== undefined && isTag(t)) tags.add(t);
    }
    return [...tags].sort();
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

/** The root and its repositories. */
export class Storage {
  /** The root directory (resolved). */
  readonly root: string;
  /** Where upload sessions write (`<root>/.uploads`). */
  readonly uploads: string;
  #repos = new Map<string, Promise<Repository>>();
  #create = new Mutex();

  private constructor(root: string) {
    this.root = root;
    this.uploads = join(root, ".uploads");
  }

  /**
   * Open (making when missing) a root: resolved here, once (`realPath`).
   * @param root the directory
   * @returns the storage
   */
  static async open(root: string): Promise<Storage> {
    await Deno.mkdir(root, { recursive: true });
    const real = await Deno.realPath(root);
    const s = new Storage(real);
    await containedDir(real, [".uploads"], true);
    return s;
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
    return await this.#create.run(async () => {
      if (await this.#exists(name)) return await this.#open(name);
      const parts = name.split("/");
      const made: string[][] = [];
      let wroteIndex = false;
      try {
        const path = (await containedDir(this.root, parts, true, made))!;
        await containedDir(this.root, [...parts, "blobs", "sha256"], true, made);
        const index = await lstatOrUndefined(join(path, "index.json"));
        if (!index) {
          await atomicWriteFile(join(path, "index.json"), new LayoutIndex(name).encode());
          wroteIndex = true;
        }
        await atomicWriteFile(join(path, OCI_LAYOUT), OCI_LAYOUT_FILE);
        return await this.#open(name);
      } catch (e) {
        // nothing half-made is left (a full disk, a symlink swapped in meanwhile)
        const dir = await containedDir(this.root, parts, false).catch(() => undefined);
        if (dir && wroteIndex) await Deno.remove(join(dir, "index.json")).catch(() => {});
        for (const p of made.reverse()) {
          const parent = await containedDir(this.root, p.slice(0, -1), false).catch(() =>
            undefined
          );
          if (parent) await Deno.remove(join(parent, p[p.length - 1]!)).catch(() => {});
        }
        throw e;
      }
    });
  }

  /** Whether a repository is there: real directories down to it, its `oci-layout` a regular file. */
  async #exists(name: string): Promise<boolean> {
    const path = await containedDir(this.root, name.split("/"), false);
    return !!path && !!(await lstatOrUndefined(join(path, OCI_LAYOUT)))?.isFile;
  }

  /** The one open Repository of a name (its mutex serializes the index writes). */
  #open(name: string): Promise<Repository> {
    let p = this.#repos.get(name);
    if (!p) {
      const opening = Repository.open(this.root, name);
      this.#repos.set(name, opening);
      opening.catch(() => {
        if (this.#repos.get(name) === opening) this.#repos.delete(name);
      });
      p = opening;
    }
    return p;
  }

  /**
   * Repository names under the root, sorted (a layout's own blobs are not
   * walked; a directory that is not real when its turn comes is skipped).
   * @param max most names
   * @returns the names
   */
  async catalog(max = 10_000): Promise<string[]> {
    const names: string[] = [];
    const walk = async (parts: string[]): Promise<void> => {
      let dir: string | undefined;
      try {
        dir = await containedDir(this.root, parts, false);
      } catch (e) {
        if (e instanceof ServeError) return; // swapped for a symlink: not walked
        throw e;
      }
      if (!dir) return;
      const entries: string[] = [];
      for await (const e of Deno.readDir(dir)) {
        if (e.isDirectory && !e.isSymlink) entries.push(e.name);
      }
      for (const n of entries.sort()) {
        if (names.length >= max) return;
        const name = [...parts, n].join("/");
        if (parts.length && RESERVED.has(n)) continue;
        if (!isRepositoryName(name)) continue;
        if (!(await lstatOrUndefined(join(dir, n)))?.isDirectory) continue; // swapped meanwhile
        if ((await lstatOrUndefined(join(dir, n, OCI_LAYOUT)))?.isFile) names.push(name);
        await walk([...parts, n]);
      }
    };
    await walk([]);
    return names.sort();
  }
}
