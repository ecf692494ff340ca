/**
 * The `ocipkg lock` operations: {@link lockImages} (add images to a project's
 * lock, or update them, resolving their tags on the registry) and
 * {@link checkLock} (does every entry still match its registry?). The lock
 * in use by an install is `lock.ts`, the file format `store/lock_file.ts`.
 *
 * @module
 */
import { resolve } from "../util/path.ts";
import { NotFoundError, UsageError } from "../util/errors.ts";
import { forEachBounded } from "../util/concurrency.ts";
import type { Descriptor, Platform } from "../oci/manifest.ts";
import { hostPlatform, parsePlatform } from "../oci/platform.ts";
import { type ImageName, imageName } from "../oci/reference.ts";
import { RegistryClients, type RegistryTarget } from "../transport/registry/target.ts";
import { DEFAULT_CONCURRENCY } from "../transport/defaults.ts";
import { type ReadTarget, withTarget } from "../transport/target.ts";
import type { RemoteOptions } from "../transport/location.ts";
import { pickVariant } from "../transport/variants.ts";
import {
  findLockFile,
  LOCK_FILE_NAME,
  type LockedImage,
  lockKey,
  platformLockKey,
  readLockFile,
  updateLockFile,
} from "../store/lock_file.ts";
import { type VerifyPolicyOptions, verifyRequirements } from "../sign/policy.ts";
import { enforceVerification } from "../sign/enforce.ts";

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
