/**
 * `ocipkg.lock`: a project's lock file — for each image reference the
 * project uses, the digest its root (index or manifest) resolved to, the
 * manifest digest installed per platform, and the fingerprints of the keys
 * that verified it. JSON, keys in sorted order, one value per line, so a
 * change is a small diff:
 *
 * ```json
 * {
 *   "version": 1,
 *   "images": {
 *     "ghcr.io/org/libfoo:1.2": {
 *       "digest": "sha256:6c3c…",
 *       "platforms": {
 *         "linux/amd64": "sha256:0f1e…",
 *         "linux/arm64": "sha256:9a8b…"
 *       },
 *       "keys": ["sha256:4a1f…"]
 *     }
 *   }
 * }
 * ```
 *
 * The reference is the canonical spelling ({@link ImageName.toString}), so
 * `GHCR.io/org/libfoo:1.2` and `ghcr.io:443/org/libfoo:1.2` share an entry.
 * This module holds the format (parse, format, find, update under a file
 * lock); what `get`/`link`/`lock` do with it is in `ops/`.
 *
 * @module
 */
import { dirname, join, resolve } from "../util/path.ts";
import { fsError, OcipkgError } from "../util/errors.ts";
import { atomicWriteFile, readSmallFileSync } from "../util/files.ts";
import { isDigest } from "../oci/digest.ts";
import type { Platform } from "../oci/manifest.ts";
import { formatPlatform, parsePlatform } from "../oci/platform.ts";
import { ImageName } from "../oci/reference.ts";

/** The file name looked for, walking up from the working directory. */
export const LOCK_FILE_NAME = "ocipkg.lock";

/** The format version this code reads and writes. */
export const LOCK_VERSION = 1;

/** The largest lock file read (a lock of 10,000 images is about 4 MiB). */
export const MAX_LOCK_FILE_SIZE = 16 << 20;

/** What a lock file records for one image reference. */
export interface LockedImage {
  /** Digest of the root (index or manifest) the reference resolved to. */
  digest: string;
  /** Per platform (`os/arch[/variant]`), the digest of the manifest installed. */
  platforms: Record<string, string>;
  /** Fingerprints of the keys that verified it (when a key or rule applied), sorted. */
  keys?: string[];
}

/** A lock file's content. */
export interface LockFile {
  /** Always {@link LOCK_VERSION}. */
  version: 1;
  /** Locked images by canonical reference. */
  images: Record<string, LockedImage>;
}

/**
 * An empty lock.
 *
 * @returns a lock with no image
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { emptyLock } from "./lock_file.ts";
 * assert.deepEqual(emptyLock(), { version: 1, images: {} });
 * ```
 */
export function emptyLock(): LockFile {
  return { version: LOCK_VERSION, images: {} };
}

/**
 * The key of a reference in a lock: its canonical spelling.
 *
 * @param name an image name
 * @returns the key
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lockKey } from "./lock_file.ts";
 * assert.equal(lockKey("GHCR.io:443/org/libfoo:1.2"), "ghcr.io/org/libfoo:1.2");
 * ```
 */
export function lockKey(name: ImageName | string): string {
  return (typeof name === "string" ? ImageName.parse(name) : name).toString();
}

/**
 * The key of a platform in a lock entry: `os/arch[/variant]`.
 *
 * @param p a platform
 * @returns the key
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { platformLockKey } from "./lock_file.ts";
 * assert.equal(platformLockKey({ os: "linux", architecture: "arm", variant: "v7" }), "linux/arm/v7");
 * ```
 */
export function platformLockKey(p: Platform): string {
  return formatPlatform(p);
}

/** A key fingerprint (`sha256:<hex>`) or a keyless identity: printable ASCII, no spaces. */
const FINGERPRINT = /^[!-~]{1,1024}$/;

/**
 * Parse and check a lock file's text. Everything is checked: the version,
 * each reference (it must be canonical), digests, platforms, fingerprints.
 *
 * @param text the file's text
 * @param where what to name in errors (the file's path)
 * @returns the lock
 * @throws {OcipkgError} naming the file and the entry at fault
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseLockFile } from "./lock_file.ts";
 * const d = `sha256:${"a".repeat(64)}`;
 * const lock = parseLockFile(
 *   JSON.stringify({ version: 1, images: { "ghcr.io/org/libfoo:1.2": { digest: d, platforms: { "linux/amd64": d } } } }),
 *   "ocipkg.lock",
 * );
 * assert.equal(lock.images["ghcr.io/org/libfoo:1.2"]?.platforms["linux/amd64"], d);
 * assert.throws(() => parseLockFile(`{"version": 2, "images": {}}`, "ocipkg.lock"), /version 2/);
 * assert.throws(
 *   () => parseLockFile(JSON.stringify({ version: 1, images: { "GHCR.io/x:1": { digest: d, platforms: {} } } }), "ocipkg.lock"),
 *   /not canonical/,
 * );
 * ```
 */
export function parseLockFile(text: string, where: string): LockFile {
  const bad = (what: string) => new OcipkgError(`${where}: ${what}`);
  const raw = lockImagesOf(text, bad);
  const images: Record<string, LockedImage> = {};
  for (const [ref, v] of Object.entries(raw)) {
    const label = JSON.stringify(ref.slice(0, 300));
    let name: ImageName;
    try {
      name = ImageName.parse(ref);
    } catch {
      throw bad(`${label} is not an image reference`);
    }
    if (name.toString() !== ref) {
      throw bad(`${label} is not canonical (write ${JSON.stringify(name.toString())})`);
    }
    images[ref] = checkLockedImage(v, label, bad);
  }
  return { version: LOCK_VERSION, images };
}

/**
 * One entry of a lock file, the others left unchecked: what an install of
 * one image needs from a lock of thousands (the file is parsed, but only its
 * version and this entry are checked — some 25 ms less for 10,000 entries
 * than {@link parseLockFile}, which checks each reference).
 *
 * @param text the file's text
 * @param where what to name in errors (the file's path)
 * @param key the reference's key ({@link lockKey})
 * @returns the entry, or undefined when the lock does not hold the reference
 * @throws {OcipkgError} naming the file when it is not a lock, or the entry is invalid
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lockEntryOf } from "./lock_file.ts";
 * const d = `sha256:${"a".repeat(64)}`;
 * const text = JSON.stringify({ version: 1, images: {
 *   "ghcr.io/org/libfoo:1.2": { digest: d, platforms: {} },
 *   "not a reference": { digest: "not checked" },
 * } });
 * assert.deepEqual(lockEntryOf(text, "ocipkg.lock", "ghcr.io/org/libfoo:1.2"), { digest: d, platforms: {} });
 * assert.equal(lockEntryOf(text, "ocipkg.lock", "ghcr.io/org/libfoo:1.3"), undefined);
 * assert.throws(() => lockEntryOf(text, "ocipkg.lock", "not a reference"), /bad 'digest'/);
 * ```
 */
export function lockEntryOf(text: string, where: string, key: string): LockedImage | undefined {
  const bad = (what: string) => new OcipkgError(`${where}: ${what}`);
  const raw = lockImagesOf(text, bad);
  if (!Object.hasOwn(raw, key)) return undefined;
  return checkLockedImage(raw[key], JSON.stringify(key.slice(0, 300)), bad);
}

/** A lock file's `images`, its version checked, its entries not. */
function lockImagesOf(
  text: string,
  bad: (what: string) => OcipkgError,
): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw bad(`not a lock file: ${(e as Error).message}`);
  }
  if (!isObject(doc)) throw bad("not a lock file: not a JSON object");
  if (doc.version !== LOCK_VERSION) {
    throw bad(
      `version ${
        JSON.stringify(doc.version)
      } is not supported (this ocipkg reads version ${LOCK_VERSION})`,
    );
  }
  if (!isObject(doc.images)) throw bad(`'images' is not an object`);
  return doc.images;
}

/** Check one entry's value: digests, platforms, fingerprints. */
function checkLockedImage(
  v: unknown,
  label: string,
  bad: (what: string) => OcipkgError,
): LockedImage {
  if (!isObject(v)) throw bad(`${label}: not an object`);
  if (typeof v.digest !== "string" || !isDigest(v.digest)) throw bad(`${label}: bad 'digest'`);
  if (!isObject(v.platforms)) throw bad(`${label}: 'platforms' is not an object`);
  const platforms: Record<string, string> = {};
  for (const [p, d] of Object.entries(v.platforms)) {
    let canonical: string | undefined;
    try {
      canonical = formatPlatform(parsePlatform(p));
    } catch { /* below */ }
    if (canonical !== p) throw bad(`${label}: bad platform ${JSON.stringify(p.slice(0, 100))}`);
    if (typeof d !== "string" || !isDigest(d)) throw bad(`${label}: bad digest for ${p}`);
    platforms[p] = d;
  }
  const entry: LockedImage = { digest: v.digest, platforms };
  if (v.keys !== undefined) {
    if (
      !Array.isArray(v.keys) ||
      !v.keys.every((k): k is string => typeof k === "string" && FINGERPRINT.test(k))
    ) {
      throw bad(`${label}: 'keys' is not a list of key fingerprints`);
    }
    entry.keys = [...v.keys];
  }
  return entry;
}

/**
 * A lock file's text: keys sorted, two-space indents, a final newline — the
 * same lock always gives the same bytes.
 *
 * @param lock the lock
 * @returns its text
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatLockFile, parseLockFile } from "./lock_file.ts";
 * const d = `sha256:${"b".repeat(64)}`;
 * const lock = {
 *   version: 1 as const,
 *   images: {
 *     "z.io/b:1": { digest: d, platforms: { "linux/arm64": d, "linux/amd64": d } },
 *     "a.io/a:1": { digest: d, platforms: {}, keys: ["SHA256:y", "SHA256:x"] },
 *   },
 * };
 * const text = formatLockFile(lock);
 * assert.ok(text.indexOf("a.io/a:1") < text.indexOf("z.io/b:1"));
 * assert.ok(text.indexOf("linux/amd64") < text.indexOf("linux/arm64"));
 * assert.ok(text.indexOf("SHA256:x") < text.indexOf("SHA256:y"));
 * assert.equal(formatLockFile(parseLockFile(text, "ocipkg.lock")), text);
 * ```
 */
export function formatLockFile(lock: LockFile): string {
  const images: Record<string, LockedImage> = {};
  for (const ref of Object.keys(lock.images).sort()) {
    const e = lock.images[ref]!;
    const platforms: Record<string, string> = {};
    for (const p of Object.keys(e.platforms).sort()) platforms[p] = e.platforms[p]!;
    const entry: LockedImage = { digest: e.digest, platforms };
    if (e.keys?.length) entry.keys = [...new Set(e.keys)].sort();
    images[ref] = entry;
  }
  return `${JSON.stringify({ version: LOCK_VERSION, images }, null, 2)}\n`;
}

/**
 * Read a lock file; `undefined` when there is none at that path.
 *
 * @param path the lock file
 * @returns the lock, or undefined
 * @throws {OcipkgError} when it is not a regular file, too large, or not a valid lock
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readLockFile } from "./lock_file.ts";
 * const dir = await Deno.makeTempDir();
 * assert.equal(await readLockFile(`${dir}/ocipkg.lock`), undefined);
 * await Deno.writeTextFile(`${dir}/ocipkg.lock`, `{"version": 1, "images": {}}`);
 * assert.deepEqual(await readLockFile(`${dir}/ocipkg.lock`), { version: 1, images: {} });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
// async for its callers; its reads are synchronous (see readLockText)
// deno-lint-ignore require-await
export async function readLockFile(path: string): Promise<LockFile | undefined> {
  const text = readLockText(path);
  return text === undefined ? undefined : parseLockFile(text, path);
}

/**
 * Read one entry of a lock file ({@link lockEntryOf}: the others are not
 * checked); `undefined` when there is no file at that path.
 *
 * @param path the lock file
 * @param key the reference's key ({@link lockKey})
 * @returns the file's entry for it (`entry` undefined when it has none), or undefined
 * @throws {OcipkgError} when it is not a regular file, too large, or not a lock, or the entry is invalid
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readLockEntry } from "./lock_file.ts";
 * const dir = await Deno.makeTempDir();
 * assert.equal(await readLockEntry(`${dir}/ocipkg.lock`, "example.com/a:1"), undefined);
 * await Deno.writeTextFile(`${dir}/ocipkg.lock`, `{"version": 1, "images": {}}`);
 * assert.deepEqual(await readLockEntry(`${dir}/ocipkg.lock`, "example.com/a:1"), {});
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
// async for its callers; its reads are synchronous (see readLockText)
// deno-lint-ignore require-await
export async function readLockEntry(
  path: string,
  key: string,
): Promise<{ entry?: LockedImage } | undefined> {
  const text = readLockText(path);
  if (text === undefined) return undefined;
  const entry = lockEntryOf(text, path, key);
  return entry === undefined ? {} : { entry };
}

/**
 * A lock file's text, or undefined when there is none. Read synchronously: every cached `get`
 * and `link` reads it, and a few file operations cost no thread hand-off each this way.
 */
function readLockText(path: string): string | undefined {
  // a fifo or a device is refused unopened (opening a fifo waits for a writer)
  const read = readSmallFileSync(path, `${path}: the lock file`, MAX_LOCK_FILE_SIZE);
  if (read === undefined) return undefined;
  return new TextDecoder("utf-8", { fatal: false }).decode(read.bytes);
}

async function readCapped(file: Deno.FsFile, path: string): Promise<string> {
  const st = await file.stat();
  if (!st.isFile) throw new OcipkgError(`${path}: the lock file is not a regular file`);
  if (st.size > MAX_LOCK_FILE_SIZE) {
    throw new OcipkgError(`${path}: the lock file is larger than ${MAX_LOCK_FILE_SIZE} bytes`);
  }
  const buf = new Uint8Array(st.size + 1);
  let n = 0;
  while (n < buf.length) {
    const r = await file.read(buf.subarray(n));
    if (r === null) break;
    n += r;
  }
  if (n > st.size) throw new OcipkgError(`${path}: the lock file grew while it was read`);
  return new TextDecoder("utf-8", { fatal: false }).decode(buf.subarray(0, n));
}

/**
 * The lock file of a project: `$OCIPKG_LOCK` when set (whether or not it
 * exists yet), else the first `ocipkg.lock` found walking up from `start`;
 * `undefined` when there is none.
 *
 * @param start where to start (default: the working directory)
 * @param env the environment's `OCIPKG_LOCK` (default: read from the environment)
 * @returns the path, absolute, or undefined
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findLockFile } from "./lock_file.ts";
 * const dir = await Deno.realPath(await Deno.makeTempDir());
 * await Deno.mkdir(`${dir}/crate/src`, { recursive: true });
 * assert.equal(await findLockFile(`${dir}/crate/src`, ""), undefined);
 * await Deno.writeTextFile(`${dir}/crate/ocipkg.lock`, `{"version": 1, "images": {}}`);
 * assert.equal(await findLockFile(`${dir}/crate/src`, ""), `${dir}/crate/ocipkg.lock`);
 * assert.equal(await findLockFile(`${dir}/crate/src`, "elsewhere.lock"), `${dir}/crate/src/elsewhere.lock`);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
// async for its callers; its stats are synchronous (see the comment below)
// deno-lint-ignore require-await
export async function findLockFile(
  start: string = Deno.cwd(),
  env: string | undefined = Deno.env.get("OCIPKG_LOCK"),
): Promise<string | undefined> {
  if (env) return resolve(start, env);
  let dir = resolve(start);
  for (;;) {
    const candidate = join(dir, LOCK_FILE_NAME);
    try {
      Deno.lstatSync(candidate); // one stat a directory, on the path of every cached get
      return candidate;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory)) {
        throw fsError(e, "lock file", candidate);
      }
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/**
 * Read, change and write a lock file under an exclusive file lock, so build
 * scripts that run at once (Cargo runs them in parallel) do not lose each
 * other's entries. The file is replaced atomically (temp + rename) and only
 * when its text changes. A missing file starts empty (and is written, even
 * when nothing is added); `update` returning `undefined` changes nothing.
 *
 * @param path the lock file
 * @param update what to change (may mutate and return the lock it is given)
 * @returns the lock as written (or as found, when unchanged)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readLockFile, updateLockFile } from "./lock_file.ts";
 * const dir = await Deno.makeTempDir();
 * const d = `sha256:${"c".repeat(64)}`;
 * const lock = `${dir}/ocipkg.lock`;
 * // ten writers at once: no entry lost
 * await Promise.all([...Array(10).keys()].map((i) =>
 *   updateLockFile(lock, (l) => {
 *     l.images[`example.com/lib${i}:1`] = { digest: d, platforms: {} };
 *     return l;
 *   })
 * ));
 * assert.equal(Object.keys((await readLockFile(lock))!.images).length, 10);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function updateLockFile(
  path: string,
  update: (lock: LockFile) => LockFile | undefined | Promise<LockFile | undefined>,
): Promise<LockFile> {
  for (;;) {
    // lock the file itself; after the lock is held, make sure the path still names that
    // file (a writer before us may have renamed a new one into place)
    let file: Deno.FsFile;
    try {
      const st = await Deno.stat(path).catch((e) => {
        if (e instanceof Deno.errors.NotFound) return undefined;
        throw e;
      });
      if (st && !st.isFile) throw new OcipkgError(`${path}: the lock file is not a regular file`);
      file = await Deno.open(path, { read: true, write: true, create: true });
    } catch (e) {
      throw fsError(e, "lock file", path); // ours pass as they are
    }
    try {
      await file.lock(true);
      const held = await file.stat();
      const now = await Deno.stat(path).catch(() => undefined);
      if (!now || (held.ino !== null && now.ino !== held.ino)) continue;
      const text = held.size === 0 ? "" : await readCapped(file, path);
      const before = text === "" ? emptyLock() : parseLockFile(text, path);
      const after = (await update(structuredClone(before))) ?? before;
      const out = formatLockFile(after);
      if (out !== text) await atomicWriteFile(path, new TextEncoder().encode(out));
      return parseLockFile(out, path);
    } finally {
      file.close();
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
