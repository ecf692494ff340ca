/**
 * A project's lock in use: which lock file a command reads (`lockFileOf`),
 * what a reference's entry says (`lockStateOf`), which store entry holds
 * what it pins (`entryHolding`), refusing a change under `--locked`,
 * recording what was installed. Reading it needs no registry: a cached `get`
 * loads this module and no network code. The `ocipkg lock` operations are
 * `lock_images.ts`, the file format `store/lock_file.ts`; installing exactly
 * what a lock pins is `install.ts`.
 *
 * @module
 */
import { resolve } from "../util/path.ts";
import { OcipkgError } from "../util/errors.ts";
import type { Platform } from "../oci/manifest.ts";
import { hostPlatform, platformMatches } from "../oci/platform.ts";
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
import type { ImageName } from "../oci/reference.ts";
import type { Store } from "../store/store.ts";

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

/** What a lock holds for one platform of one image (see {@link lockedFor}). */
export interface LockedPlatform {
  /** The platform installed. */
  platform: Platform;
  /** Its key in the entry's `platforms` ({@link platformLockKey}). */
  key: string;
  /** The image's entry in the lock, when it has one. */
  entry?: LockedImage;
  /** The manifest the entry locks for the platform, when it locks one. */
  locked?: string;
}

/**
 * The manifest a lock holds for one platform of the image a lock state is
 * for — where an install starts from (cached, refused, or recorded).
 *
 * @param state the image's lock state (undefined: no lock)
 * @param platform the platform installed (default: this machine's)
 * @returns the platform, its key, the entry and its locked manifest
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lockedFor } from "./lock.ts";
 * const digest = "sha256:" + "1".repeat(64);
 * const state = { path: "ocipkg.lock", key: "example.com/a:1", locked: false, named: false,
 *   entry: { digest, platforms: { "linux/amd64": digest } } };
 * const linux = { os: "linux", architecture: "amd64" };
 * assert.equal(lockedFor(state, linux).locked, digest);
 * assert.equal(lockedFor(state, { os: "linux", architecture: "arm64" }).locked, undefined);
 * assert.equal(lockedFor(undefined, linux).entry, undefined);
 * ```
 */
export function lockedFor(
  state: LockState | undefined,
  platform: Platform = hostPlatform(),
): LockedPlatform {
  const key = platformLockKey(platform);
  const entry = state?.entry;
  return { platform, key, entry, locked: entry?.platforms[key] };
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

/**
 * The store entry holding the manifest `manifest` of root `root` for a
 * platform: the tag's entry, else the entry of `name@root`; undefined when
 * neither does.
 *
 * @param store the store
 * @param name the image (a tag)
 * @param root the locked root digest
 * @param manifest the locked manifest digest for the platform
 * @param platform the platform
 * @returns the entry's name, or undefined
 */
export async function entryHolding(
  store: Store,
  name: ImageName,
  root: string,
  manifest: string,
  platform: Platform,
): Promise<ImageName | undefined> {
  for (const n of [name, name.withReference(root)]) {
    const d = await store.installedDescriptor(n, platform);
    if (
      d?.digest === manifest &&
      (d.platform === undefined || platformMatches(d.platform, platform))
    ) return n;
  }
  return undefined;
}
