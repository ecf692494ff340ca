/**
 * The served root: one OCI image layout ({@link OciDir}) per repository,
 * `<root>/<name>/`, as olareg keeps them. Names are checked against the
 * distribution spec's grammar (`isRepositoryName`, `isTag` of reference.ts) and
 * every directory on the way is checked on disk (`lstat`): no symlink is
 * followed out of the root.
 *
 * @module
 */
import { join } from "../util/path.ts";
import { digestOf, isDigest, parseDigest } from "../oci/digest.ts";
import { OcipkgError } from "../util/errors.ts";
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

/** A directory that must be real (not a symlink); made when missing and `create`. */
async function realDir(path: string, create: boolean): Promise<boolean> {
  let st = await lstatOrUndefined(path);
  if (!st && create) {
    await Deno.mkdir(path).catch((e) => {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    });
    st = await lstatOrUndefined(path);
  }
  if (!st) return false;
  if (!st.isDirectory) {
    throw new ServeError("NAME_INVALID", `'${path}' is not a real directory under the root`, {
      status: 500,
    });
  }
  return true;
}

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
  #dir: OciDir;
  #indexId: string;
  #infos = new Map<string, ManifestInfo>();

  private constructor(name: string, path: string, dir: OciDir, indexId: string) {
    this.name = name;
    this.path = path;
    this.#dir = dir;
    this.#indexId = indexId;
  }

  /** @internal */
  static async open(name: string, path: string): Promise<Repository> {
    const id = await Repository.#statIndex(path);
    return new Repository(name, path, await OciDir.open(path), id);
  }

  static async #statIndex(path: string): Promise<string> {
    for (const f of ["oci-layout", "index.json"]) {
      const st = await Deno.lstat(join(path, f));
      if (!st.isFile) throw new OcipkgError(`'${join(path, f)}' is not a regular file`);
    }
    const st = await Deno.lstat(join(path, "index.json"));
    return `${st.ino}:${st.mtime?.getTime()}:${st.size}`;
  }

  /**
   * The layout, reopened when another process replaced its `index.json`.
   * @returns the layout
   */
  async layout(): Promise<OciDir> {
    const id = await Repository.#statIndex(this.path);
    if (id !== this.#indexId) {
      await this.#dir.close();
      this.#dir = await OciDir.open(this.path);
      this.#indexId = id;
    }
    return this.#dir;
  }

  /** Remember the current `index.json` as ours (after a write). */
  async wrote(): Promise<void> {
    this.#indexId = await Repository.#statIndex(this.path);
  }

  /**
   * Path of a blob (the digest is valid).
   * @param digest a digest
   * @returns `<repo>/blobs/<alg>/<hex>`
   */
  blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.path, "blobs", algorithm, hex);
  }

  /**
   * Size of a stored blob: a regular file (a symlink is not followed).
   * @param digest its digest
   * @returns the size, or undefined when absent
   */
  async blobSize(digest: string): Promise<number | undefined> {
    const { algorithm } = parseDigest(digest);
    if (!(await realDir(join(this.path, "blobs"), false))) return undefined;
    if (!(await realDir(join(this.path, "blobs", algorithm), false))) return undefined;
    const st = await lstatOrUndefined(this.blobPath(digest));
    return st?.isFile ? st.size : undefined;
  }

  /**
   * Directory for blobs of an algorithm, made when missing.
   * @param digest a digest of that algorithm
   */
  async blobDir(digest: string): Promise<string> {
    const { algorithm } = parseDigest(digest);
    await realDir(join(this.path, "blobs"), true);
    const dir = join(this.path, "blobs", algorithm);
    await realDir(dir, true);
    return dir;
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

/** The root and its repositories. */
export class Storage {
  /** The root directory (resolved). */
  readonly root: string;
  /** Where upload sessions write (`<root>/.uploads`). */
  readonly uploads: string;
  #repos = new Map<string, Promise<Repository | undefined>>();
  #create = new Mutex();

  private constructor(root: string) {
    this.root = root;
    this.uploads = join(root, ".uploads");
  }

  /**
   * Open (making when missing) a root.
   * @param root the directory
   * @returns the storage
   */
  static async open(root: string): Promise<Storage> {
    await Deno.mkdir(root, { recursive: true });
    const real = await Deno.realPath(root);
    const s = new Storage(real);
    await realDir(s.uploads, true);
    return s;
  }

  /**
   * A repository, or undefined when it does not exist (and `create` is not set).
   * @param name a checked name
   * @param create make it when missing
   * @returns the repository
   */
  async repository(name: string, create = false): Promise<Repository | undefined> {
    checkName(name);
    const known = await this.#repos.get(name);
    if (known) {
      if (await lstatOrUndefined(join(known.path, "oci-layout"))) return known;
      this.#repos.delete(name); // removed behind our back
    }
    if (!create) {
      const p = this.#find(name);
      const r = await p;
      if (r) this.#repos.set(name, p);
      return r;
    }
    return await this.#create.run(async () => {
      const again = await this.#find(name);
      if (again) {
        this.#repos.set(name, Promise.resolve(again));
        return again;
      }
      let path = this.root;
      for (const part of name.split("/")) {
        path = join(path, part);
        await realDir(path, true);
      }
      await realDir(join(path, "blobs"), true);
      await realDir(join(path, "blobs", "sha256"), true);
      if (!(await lstatOrUndefined(join(path, "index.json")))) {
        await atomicWriteFile(join(path, "index.json"), new LayoutIndex(name).encode());
      }
      await atomicWriteFile(join(path, "oci-layout"), OCI_LAYOUT_FILE);
      const repo = await Repository.open(name, path);
      this.#repos.set(name, Promise.resolve(repo));
      return repo;
    });
  }

  async #find(name: string): Promise<Repository | undefined> {
    let path = this.root;
    for (const part of name.split("/")) {
      path = join(path, part);
      if (!(await realDir(path, false))) return undefined;
    }
    const marker = await lstatOrUndefined(join(path, "oci-layout"));
    if (!marker?.isFile) return undefined;
    return await Repository.open(name, path);
  }

  /**
   * Repository names under the root, sorted (a layout's own blobs are not walked).
   * @param max most names
   * @returns the names
   */
  async catalog(max = 10_000): Promise<string[]> {
    const names: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      const entries: string[] = [];
      for await (const e of Deno.readDir(dir)) {
        if (e.isDirectory && !e.isSymlink) entries.push(e.name);
      }
      for (const n of entries.sort()) {
        if (names.length >= max) return;
        const name = prefix ? `${prefix}/${n}` : n;
        if (prefix && RESERVED.has(n)) continue;
        if (!isRepositoryName(name)) continue;
        const path = join(dir, n);
        if ((await lstatOrUndefined(join(path, "oci-layout")))?.isFile) names.push(name);
        await walk(path, name);
      }
    };
    await walk(this.root, "");
    return names.sort();
  }
}
