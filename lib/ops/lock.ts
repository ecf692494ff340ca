/**
 * A project's lock in use: which lock file a command reads (`lockFileOf`),
 * what a reference's entry says (`lockStateOf`), refusing a change under
 * `--locked`, recording what was installed — and the `ocipkg lock`
 * operations, {@link lockImages} (add, update) and {@link checkLock} (does
 * every entry still match the registry?). The file format is
 * `store/lock_file.ts`; installing exactly what a lock pins is `install.ts`.
 *
 * @module
 */
import { resolve } from "../util/path.ts";
import { NotFoundError, OcipkgError, UsageError } from "../util/errors.ts";
import { forEachBounded } from "../util/concurrency.ts";
import type { Descriptor, Platform } from "../oci/manifest.ts";
import { hostPlatform, parsePlatform } from "../oci/platform.ts";
import { type ImageName, imageName } from "../oci/reference.ts";
import { RegistryClients, type RegistryTarget } from "../transport/registry/target.ts";
import { DEFAULT_CONCURRENCY } from "../transport/copy.ts";
import { type ReadTarget, withTarget } from "../transport/target.ts";
import type { RemoteOptions } from "../transport/location.ts";
import { pickVariant } from "../transport/variants.ts";
import {
  findLockFile,
  LOCK_FILE_NAME,
  type LockedImage,
  lockKey,
  platformLockKey,
  readLockEntry,
  readLockFile,
  updateLockFile,
} from "../store/lock_file.ts";
import {
  enforceVerification,
  type VerifyPolicyOptions,
  verifyRequirements,
} from "../sign/policy.ts";

/** Options of `getImage`, `linkPackage`, `loadImage` that choose a project's lock. */
export interface LockOptions {
  /**
   * The lock file (`ocipkg.lock`): a path (created with the first reference
   * recorded when it does not exist yet); `true` to use the project's:
   * `$OCIPKG_LOCK`, else the first `ocipkg.lock` found walking up from the
   * working directory, else none; `false` or omitted: no lock (library calls
   * use a lock only when asked; the CLI and the FFI loader pass `true`).
   */
  lock?: string | boolean;
  /**
   * Refuse what would change the lock (CI): a reference it does not hold, a
   * platform its entry lacks, or no lock file at all. Default, when `lock`
   * is given: whether `OCIPKG_LOCKED` is `1`, `true` or `yes`.
   */
  locked?: boolean;
}

/** Whether `OCIPKG_LOCKED` asks for `locked`: `1`, `true` or `yes` (any case). */
function lockedByEnv(): boolean {
  return /^(1|true|yes)$/i.test(Deno.env.get("OCIPKG_LOCKED")?.trim() ?? "");
}

/** The lock file an install uses: the path given, the project's (`true`), or none. */
async function lockFileOf(options: LockOptions): Promise<string | undefined> {
  if (options.lock === true) return await findLockFile();
  if (typeof options.lock === "string") return resolve(options.lock);
  return undefined;
}

/** A reference's place in the lock an install uses. */
export interface LockState {
  /** The lock file. */
  path: string;
  /** The reference's key ({@link lockKey}). */
  key: string;
  /** Its entry, when locked. */
  entry?: LockedImage;
  /** Whether the lock may not change ({@link LockOptions.locked}). */
  locked: boolean;
  /** Whether the lock file was named (a path given), not found. */
  named: boolean;
}

/**
 * The lock an install of `name` uses and its entry for `name`: undefined
 * when there is no lock, or when `name` is pinned by digest (its own lock).
 *
 * @param name the image
 * @param options the lock options
 * @param platform the platform installed: when the entry locks it, only the
 *   entry is read and checked (nothing will be written), not the whole file
 * @returns the state, or undefined
 * @throws {OcipkgError} naming the file when it cannot be read, or when
 *   `locked` is set and there is no lock file
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName } from "@ocipkg/cli";
 * import { lockRefusal, lockStateOf, recordLocked } from "./lock.ts";
 * const tmp = await Deno.makeTempDir();
 * const lock = `${tmp}/ocipkg.lock`;
 * const name = ImageName.parse("example.com/foo:1");
 * const d = `sha256:${"a".repeat(64)}`;
 * assert.equal(await lockStateOf(name, {}), undefined); // no lock asked for
 * const state = (await lockStateOf(name, { lock }))!;
 * assert.equal(state.entry, undefined); // the file does not exist yet
 * await recordLocked(state, d, { "linux/amd64": d }, []); // creates it
 * const again = (await lockStateOf(name, { lock, locked: true }))!;
 * assert.deepEqual(again.entry, { digest: d, platforms: { "linux/amd64": d } });
 * assert.match(lockRefusal(name, again, "linux/arm64").message, /without platform linux\/arm64/);
 * await assert.rejects(lockStateOf(name, { lock: `${tmp}/none.lock`, locked: true }), /no lock file/);
 * assert.equal(await lockStateOf(name.withReference(d), { lock, locked: true }), undefined);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function lockStateOf(
  name: ImageName,
  options: LockOptions,
  platform?: Platform,
): Promise<LockState | undefined> {
  if (name.digest !== undefined || !options.lock) return undefined;
  const locked = options.locked ?? lockedByEnv();
  const path = await lockFileOf(options);
  const key = lockKey(name);
  let lock = path === undefined ? undefined : await readLockEntry(path, key);
  // the whole file is checked unless the entry locks the platform used (nothing is written
  // then): a lock of 10,000 images takes some 50 ms to read this way, 140 ms whole
  const enough = platform !== undefined &&
    lock?.entry?.platforms[platformLockKey(platform)] !== undefined;
  if (path !== undefined && lock !== undefined && !enough) {
    const whole = await readLockFile(path);
    lock = whole && { entry: whole.images[key] };
  }
  if (lock === undefined && locked) {
    const where = path ?? `${LOCK_FILE_NAME} (looked from ${Deno.cwd()} up)`;
    throw new OcipkgError(
      `image '${name}' cannot be locked: there is no lock file ${where}, and the lock may not change (--locked, OCIPKG_LOCKED); create one with 'ocipkg lock ${name}'`,
    );
  }
  if (path === undefined) return undefined;
  const state: LockState = { path, key, locked, named: typeof options.lock === "string" };
  if (lock?.entry) state.entry = lock.entry;
  return state;
}

/**
 * The refusal of a change to the lock under `locked`: the image (and the
 * platform its entry lacks) and the command that locks it.
 *
 * @param name the image
 * @param state its lock state (a named lock file is named in the command too)
 * @param platform the platform missing from its entry, when it has one
 * @returns the error (see {@link lockStateOf}'s example)
 */
export function lockRefusal(
  name: ImageName,
  state: LockState,
  platform: string | undefined,
): OcipkgError {
  const flags = `${platform ? ` --platform ${platform}` : ""}${
    state.named ? ` --lock ${state.path}` : ""
  }`;
  const what = state.entry && platform
    ? `is locked in ${state.path} without platform ${platform}`
    : `is not locked in ${state.path}`;
  return new OcipkgError(
    `image '${name}' ${what}, and the lock may not change (--locked, OCIPKG_LOCKED); lock it with 'ocipkg lock ${name}${flags}'`,
  );
}

/**
 * Record in a lock what an install used: the root digest, a platform's
 * manifest digest, the keys that verified it (under the file's lock: builds
 * that run at once lose nothing).
 *
 * @param state the lock and the reference's key
 * @param root the root digest installed
 * @param platforms manifest digest per platform key
 * @param keys fingerprints of the keys that verified it
 * @throws {OcipkgError} when another process locked the reference to another digest meanwhile
 *   (see {@link lockStateOf}'s example)
 */
export async function recordLocked(
  state: LockState,
  root: string,
  platforms: Record<string, string>,
  keys: string[],
): Promise<void> {
  await updateLockFile(state.path, (lock) => {
    const entry = lock.images[state.key] ?? { digest: root, platforms: {} };
    if (entry.digest !== root) {
      throw new OcipkgError(
        `${state.path}: image '${state.key}' was locked to ${entry.digest} meanwhile (this install is ${root}); run again`,
      );
    }
    entry.platforms = { ...platforms, ...entry.platforms };
    if (keys.length) entry.keys = [...new Set([...(entry.keys ?? []), ...keys])];
    lock.images[state.key] = entry;
    return lock;
  });
}

/** Options of {@link lockImages}. */
export interface LockImagesOptions extends RemoteOptions, VerifyPolicyOptions {
  /** The lock file (default: the project's, else `./ocipkg.lock`, created). */
  lock?: string;
  /**
   * Platforms to lock besides the host's (the host's is left out when the
   * image has none and other platforms are asked for).
   */
  platforms?: Platform[];
  /** Re-resolve the tags of locked images (all of them when no image is named). */
  update?: boolean;
}

/** What {@link lockImages} did to one image's entry. */
export interface LockChange {
  /** The reference (canonical). */
  image: string;
  /** Root digest locked now. */
  digest: string;
  /** Root digest locked before, if it was locked. */
  previous?: string;
  /** Manifest digest per platform, as locked now. */
  platforms: Record<string, string>;
  /** Fingerprints of the keys that verified it. */
  keys: string[];
}

/** What {@link lockImages} returns. */
export interface LockImagesResult {
  /** The lock file written. */
  path: string;
  /** One per image, in the order given (a reference named twice, once). */
  changes: LockChange[];
}

/**
 * `ocipkg lock`: add images to a project's lock, or update them. A new
 * image's tag is resolved on its registry (the root index or manifest is
 * fetched, never a layer) and its manifest digest recorded for the host's
 * platform and each of `platforms`; when a verify rule or key applies, the
 * image is verified and the keys' fingerprints recorded. An image already
 * locked keeps its digest (only platforms it lacks are added, from the
 * locked root) unless `update`, which re-resolves its tag (every entry's
 * when no image is named). The lock file is created when missing, even with
 * no image.
 *
 * @param images the images to lock (tags; a digest pins itself and is refused)
 * @param options lock file, platforms, update, verify keys, client options
 * @returns the lock file and the entries changed
 * @throws {UsageError} for an image named by digest
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lockImages, packDirectory, pushImage, readLockFile, serve } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * const registry = await serve({ root: `${tmp}/registry`, addr: "127.0.0.1:0" });
 * const image = `${registry.addr}/org/libfoo:1`;
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "v1");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: image });
 * const digest = (await pushImage(`${tmp}/foo.tar`)).digest;
 * const { changes } = await lockImages([image], { lock: `${tmp}/ocipkg.lock`, policy: false });
 * assert.equal(changes[0]?.digest, digest);
 * const lock = await readLockFile(`${tmp}/ocipkg.lock`);
 * assert.equal(lock?.images[image]?.digest, digest);
 * await registry.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function lockImages(
  images: readonly (string | ImageName)[],
  options: LockImagesOptions = {},
): Promise<LockImagesResult> {
  const path = options.lock !== undefined
    ? resolve(options.lock)
    : (await findLockFile()) ?? resolve(LOCK_FILE_NAME);
  const before = (await readLockFile(path))?.images ?? {};
  // each reference once, however often it is named
  const names = [...new Map(images.map((i) => imageName(i)).map((n) => [lockKey(n), n])).values()];
  for (const n of names) {
    if (n.digest !== undefined) {
      throw new UsageError(`image '${n}' is pinned by its digest: there is nothing to lock`);
    }
  }
  if (options.update && names.length === 0) {
    for (const key of Object.keys(before)) names.push(imageName(key));
  }
  const given = (options.platforms ?? []).map(platformLockKey);
  const changes: LockChange[] = new Array(names.length);
  // one client per registry for all of them, small requests DEFAULT_CONCURRENCY at a time
  const clients = new RegistryClients(options);
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
  try {
    await forEachBounded([...names.keys()], concurrency, async (i) => {
      const name = names[i]!;
      const key = lockKey(name);
      const old = before[key];
      const update = options.update || old === undefined;
      const wanted = update && old && Object.keys(old.platforms).length
        ? [...new Set([...Object.keys(old.platforms), ...given])]
        : [...new Set([platformLockKey(hostPlatform()), ...given])];
      const optional = !(update && old) && given.length > 0
        ? platformLockKey(hostPlatform())
        : undefined;
      const required = await verifyRequirements(name, options);
      changes[i] = await withTarget(clients.open(name), async (src) => {
        const root = await src.resolve(update ? name.reference : old!.digest);
        const keys = await enforceVerification(src, root, name, required);
        const platforms: Record<string, string> = update ? {} : { ...old!.platforms };
        for (const p of wanted) {
          if (platforms[p] !== undefined) continue;
          const picked = await pickPlatform(
            src,
            root,
            name,
            p,
            p === optional && wanted.length > 1,
          );
          if (picked) platforms[p] = picked.digest;
        }
        const change: LockChange = { image: key, digest: root.digest, platforms, keys };
        if (old) change.previous = old.digest;
        return change;
      });
    });
  } finally {
    clients.close();
  }
  await updateLockFile(path, (lock) => {
    for (const c of changes) {
      const entry: LockedImage = { digest: c.digest, platforms: c.platforms };
      const keys = c.digest === c.previous
        ? [...(lock.images[c.image]?.keys ?? []), ...c.keys]
        : c.keys;
      if (keys.length) entry.keys = keys;
      lock.images[c.image] = entry;
    }
    return lock;
  });
  return { path, changes };
}

/** A platform's manifest of `root`; undefined for an optional platform the image lacks. */
async function pickPlatform(
  src: ReadTarget,
  root: Descriptor,
  name: ImageName,
  key: string,
  optional: boolean,
): Promise<Descriptor | undefined> {
  try {
    return await pickVariant(src, root, parsePlatform(key), `image '${name}'`);
  } catch (e) {
    if (optional && e instanceof NotFoundError) return undefined;
    throw e;
  }
}

/** Options of {@link checkLock}. */
export interface CheckLockOptions extends RemoteOptions {
  /** The lock file (default: the project's). */
  lock?: string;
}

/** An entry of a lock that no longer matches its registry. */
export interface LockMismatch {
  /** The reference. */
  image: string;
  /** The platform whose manifest differs, when the root is the same. */
  platform?: string;
  /** The digest locked. */
  locked: string;
  /** The digest the registry has now; undefined when the tag is gone. */
  now?: string;
}

/** What {@link checkLock} found. */
export interface CheckLockResult {
  /** The lock file read. */
  path: string;
  /** How many entries were checked. */
  checked: number;
  /** The entries that no longer match. */
  mismatches: LockMismatch[];
}

/**
 * `ocipkg lock --check`: whether each entry of a lock (or each image named)
 * still matches its registry — the tag resolves to the locked root digest,
 * and the root's manifest for each locked platform is the locked one. Only
 * manifests are asked for: over one client per registry, `concurrency`
 * (default `DEFAULT_CONCURRENCY`) at a time, each reference once; an entry
 * whose locked platforms are its root (an image of one manifest) is settled
 * by a `HEAD` whose `Docker-Content-Digest` is the locked digest, and any
 * other answer is checked on the manifest itself. Memory holds the lock and
 * the mismatches found.
 *
 * @param images the images to check (default: every entry)
 * @param options the lock file, client options
 * @returns what matched and what did not
 * @throws {NotFoundError} when there is no lock file, or a named image is not locked
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkLock, lockImages, packDirectory, pushImage, serve } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * const registry = await serve({ root: `${tmp}/registry`, addr: "127.0.0.1:0" });
 * const image = `${registry.addr}/org/libfoo:1`;
 * await Deno.mkdir(`${tmp}/pkg`);
 * const push = async (text: string) => {
 *   await Deno.writeTextFile(`${tmp}/pkg/a.txt`, text);
 *   await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: image });
 *   return (await pushImage(`${tmp}/foo.tar`)).digest;
 * };
 * const v1 = await push("v1");
 * const lock = `${tmp}/ocipkg.lock`;
 * await lockImages([image], { lock, policy: false });
 * assert.deepEqual((await checkLock([], { lock })).mismatches, []);
 * const v2 = await push("v2"); // the tag moves
 * assert.deepEqual((await checkLock([], { lock })).mismatches, [{ image, locked: v1, now: v2 }]);
 * await registry.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function checkLock(
  images: readonly (string | ImageName)[] = [],
  options: CheckLockOptions = {},
): Promise<CheckLockResult> {
  const path = options.lock !== undefined ? resolve(options.lock) : await findLockFile();
  const lock = path === undefined ? undefined : await readLockFile(path);
  if (path === undefined || lock === undefined) {
    throw new NotFoundError(
      `no lock file ${path ?? `${LOCK_FILE_NAME} (looked from ${Deno.cwd()} up)`}`,
    );
  }
  // each reference once, however often it is named
  const keys = images.length
    ? [...new Set(images.map((i) => lockKey(imageName(i))))]
    : Object.keys(lock.images).sort();
  for (const k of keys) {
    if (!lock.images[k]) throw new NotFoundError(`image '${k}' is not locked in ${path}`);
  }
  // one client per registry for all of them (connections, credentials, tokens), small requests
  // DEFAULT_CONCURRENCY at a time; only mismatches are kept
  const clients = new RegistryClients(options);
  const found = new Map<number, LockMismatch[]>();
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
  try {
    await forEachBounded([...keys.keys()], concurrency, async (i) => {
      const out = await checkEntry(
        clients.open(imageName(keys[i]!)),
        keys[i]!,
        lock.images[keys[i]!]!,
      );
      if (out.length > 0) found.set(i, out);
    });
  } finally {
    clients.close();
  }
  const mismatches = [...found.keys()].sort((a, b) => a - b).flatMap((i) => found.get(i)!);
  return { path, checked: keys.length, mismatches };
}

/**
 * Check one entry of a lock against its repository: a `HEAD` of the tag
 * first when every locked platform is the root itself (an image of one
 * manifest; or none is locked) — the `Docker-Content-Digest` the registry
 * answers, when it is the locked root, is the whole check (the platforms
 * follow from the root's bytes, which its digest names); else, and when it
 * answers another digest or none, the manifest itself (verified) and each
 * locked platform's, as before.
 */
async function checkEntry(
  target: RegistryTarget,
  image: string,
  entry: LockedImage,
): Promise<LockMismatch[]> {
  const name = imageName(image);
  return await withTarget(target, async (src) => {
    if (Object.values(entry.platforms).every((d) => d === entry.digest)) {
      if (await src.digestOf(name.reference) === entry.digest) return [];
    }
    let root: Descriptor;
    try {
      root = await src.resolve(name.reference);
    } catch (e) {
      if (e instanceof NotFoundError) return [{ image, locked: entry.digest }];
      throw e;
    }
    if (root.digest !== entry.digest) return [{ image, locked: entry.digest, now: root.digest }];
    const out: LockMismatch[] = [];
    for (const [platform, locked] of Object.entries(entry.platforms)) {
      const picked = await pickPlatform(src, root, name, platform, true);
      if (picked?.digest !== locked) {
        const m: LockMismatch = { image, platform, locked };
        if (picked) m.now = picked.digest;
        out.push(m);
      }
    }
    return out;
  });
}
