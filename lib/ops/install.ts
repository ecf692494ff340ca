/**
 * Installing images into the local store: `get` (from a registry, cached) and
 * `load` (from a layout). Both go through {@link Store.install}.
 *
 * @module
 */
import type { ExtractLimits } from "../archive/budget.ts";
import { NotFoundError, OcipkgError, VerificationError } from "../util/errors.ts";
import { type LayoutLocation, openLocation, toLocation } from "../transport/location.ts";
import { openRepository } from "../transport/registry/target.ts";
import { ANNOTATION_REF_NAME } from "../oci/media_types.ts";
import type { Descriptor, Platform } from "../oci/manifest.ts";
import { hostPlatform, platformMatches } from "../oci/platform.ts";
import { ImageName, imageName } from "../oci/reference.ts";
import { type InstallOptions, type InstallResult, Store } from "../store/store.ts";
import { platformLockKey } from "../store/lock_file.ts";
import { type ReadTarget, withTarget } from "../transport/target.ts";
import type { RemoteOptions } from "../transport/location.ts";
import { pickVariant } from "../transport/variants.ts";
import {
  enforceVerification,
  isVerified,
  type VerifyPolicyOptions,
  type VerifyRequirement,
  verifyRequirements,
} from "../sign/policy.ts";
import {
  type LockOptions,
  lockRefusal,
  type LockState,
  lockStateOf,
  recordLocked,
} from "./lock.ts";

/** What {@link getImage} and {@link loadImage} did. */
export interface GetResult extends InstallResult {
  /** The lock file that pinned (or recorded) the image, when one was used. */
  lock?: string;
}

/** Options of {@link getImage}. */
export interface GetOptions extends RemoteOptions, ExtractLimits, VerifyPolicyOptions, LockOptions {
  /** Reinstall even if present. */
  force?: boolean;
  /** Re-resolve a tag on the registry and reinstall if it moved (a locked reference: no effect). */
  refresh?: boolean;
  /** Platform to pick from an index (the host's by default). */
  platform?: Platform;
  /** The store (default: the data dir). */
  store?: Store;
}

/**
 * Get an image into the local store: pull, verify, extract. An image already
 * in the store is returned at once with no network request; a tag is only
 * re-resolved with `refresh`.
 *
 * With a lock (`lock`: a path, or `true` for the project's `ocipkg.lock`;
 * library calls use none unless asked), a locked reference installs exactly
 * the locked digest: it is satisfied by the tag's store entry when that holds
 * the locked manifest for the platform, else by the entry of
 * `name@<locked root digest>`; when neither does, the root is fetched by its
 * digest (never by the tag) into the tag's entry if there is none, else into
 * the digest's (so projects locking different digests of one tag do not
 * replace each other's). A moved tag, `refresh` or a new store change
 * nothing. A reference the lock lacks is resolved on its registry, installed
 * and recorded (a new platform of a locked one: its manifest in the locked
 * root) — refused with `locked`. A reference by digest is its own lock.
 * Verification rules apply either way.
 *
 * @param image image name
 * @param options force, refresh, platform, store, lock, locked, verify keys, client options
 * @returns the install result, and the lock file when one was used
 * @throws {OcipkgError} with `locked`, when the install would change the lock
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { getImage } from "@ocipkg/cli";
 * const r = await getImage("ghcr.io/org/libfoo:1.2"); // into the data dir's store
 * assert.ok((await Deno.stat(`${r.dir}/libfoo.a`)).isFile);
 * // the second time nothing is requested; `refresh` asks whether the tag moved
 * assert.equal((await getImage("ghcr.io/org/libfoo:1.2")).status, "present");
 * await getImage("ghcr.io/org/libfoo:1.2", { refresh: true });
 * ```
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getImage, loadImage, packDirectory, Store } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/libfoo.a`, "!<arch>\n");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * const store = new Store(`${tmp}/store`);
 * await loadImage(`${tmp}/foo.tar`, { store });
 * // already in the store: returned at once, without a request to example.com
 * const r = await getImage("example.com/foo:1", { store });
 * assert.equal(r.status, "present");
 * assert.equal(await Deno.readTextFile(`${r.dir}/libfoo.a`), "!<arch>\n");
 * await Deno.remove(tmp, { recursive: true });
 * ```
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getImage, packDirectory, pushImage, readLockFile, serve, Store } from "@ocipkg/cli";
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
 * const lock = `${tmp}/ocipkg.lock`; // created with the first image got
 * const r = await getImage(image, { store: new Store(`${tmp}/a`), lock });
 * assert.equal((await readLockFile(lock))?.images[image]?.digest, v1);
 * await push("v2"); // the tag moves: a new store still gets v1
 * const again = await getImage(image, { store: new Store(`${tmp}/b`), lock });
 * assert.equal(again.digest, r.digest);
 * assert.equal(await Deno.readTextFile(`${again.dir}/a.txt`), "v1");
 * await registry.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function getImage(
  image: string | ImageName,
  options: GetOptions = {},
): Promise<GetResult> {
  const name = imageName(image);
  const store = options.store ?? new Store();
  // the keys it must verify with, each key file read once (the policy's rules, the given keys)
  const required = await verifyRequirements(name, options);
  const state = await lockStateOf(name, options, options.platform ?? hostPlatform());
  if (state) return await getLocked(name, store, required, state, options);
  // each platform has its own entry (the host's by default)
  const installed = await store.installedDescriptor(name, options.platform);
  // an entry recording another platform (the host's, written by an older version) is replaced
  const otherPlatform = installed?.platform !== undefined &&
    !platformMatches(installed.platform, options.platform ?? hostPlatform());
  const present = installed !== undefined && !otherPlatform;
  const dir = store.imageDir(name, options.platform);
  // cached and trusted (the store's record of what verified): done, no request
  // (the use is recorded for `prune --unused-for`; an entry a prune removed meanwhile is installed)
  if (
    present && !options.force && !options.refresh &&
    await isVerified(store, installed.digest, required) &&
    await store.recordUse(name, options.platform)
  ) {
    return { name, dir, digest: installed.digest, status: "present" };
  }
  return await withTarget(openRepository(name, options), async (src) => {
    // resolve
    const root = await src.resolve(name.reference);
    // verify, before a byte is fetched for installing: nothing lands when this throws
    const fingerprints = await enforceVerification(src, root, name, required);
    // install — or keep the installed copy (asked to refresh, or not yet trusted) when it
    // is what the tag names now
    if (
      present && !options.force &&
      (await installedDigests(store, name, options.platform)).has(root.digest) &&
      await store.recordUse(name, options.platform)
    ) {
      await store.recordVerified(installed.digest, fingerprints);
      return { name, dir, digest: root.digest, status: "present" };
    }
    const force = (options.force ?? false) || present || otherPlatform;
    const r = await store.install(src, root, name, { ...options, force });
    // record
    await store.recordVerified(r.digest, fingerprints);
    return r;
  });
}

/** {@link getImage} of a tag with a lock in use. */
async function getLocked(
  name: ImageName,
  store: Store,
  required: VerifyRequirement[],
  state: LockState,
  options: GetOptions,
): Promise<GetResult> {
  const platform = options.platform ?? hostPlatform();
  const key = platformLockKey(platform);
  const entry = state.entry;
  const locked = entry?.platforms[key];
  if (locked === undefined && state.locked) throw lockRefusal(name, state, entry ? key : undefined);
  // cached and trusted: an entry holding the locked manifest, no request
  if (entry && locked !== undefined && !options.force) {
    const holder = await entryHolding(store, name, entry.digest, locked, platform);
    if (holder && await isVerified(store, locked, required)) {
      const dir = store.imageDir(holder, platform);
      return { name: holder, dir, digest: locked, status: "present", lock: state.path };
    }
  }
  const remote = { hashOffThread: false, ...options };
  const where = `image '${name}'`;
  const r = await withTarget(openRepository(name, remote), async (src) => {
    // the locked root by its digest (the tag is not asked), else the tag now
    const root = await src.resolve(entry?.digest ?? name.reference).catch((e) => {
      if (!entry || !(e instanceof NotFoundError)) throw e;
      throw new NotFoundError(
        `${where} is locked to ${entry.digest} in ${state.path}, which its registry no longer has ('ocipkg lock --update ${name}' moves the lock)`,
        { cause: e },
      );
    });
    const fingerprints = await enforceVerification(src, root, name, required);
    const manifest = await pickVariant(src, root, platform, where);
    if (locked !== undefined && manifest.digest !== locked) {
      throw new VerificationError(
        `${where}: ${state.path} locks ${locked} for ${key}, but the locked ${root.digest} has ${manifest.digest} for it`,
      );
    }
    const r = await installPinned(store, src, root, manifest, name, platform, options);
    await store.recordVerified(r.digest, fingerprints);
    return { ...r, root: root.digest, fingerprints };
  });
  if (locked === undefined) await recordLocked(state, r.root, { [key]: r.digest }, r.fingerprints);
  return { name: r.name, dir: r.dir, digest: r.digest, status: r.status, lock: state.path };
}

/**
 * The store entry holding the manifest `manifest` of root `root` for a
 * platform: the tag's entry, else the entry of `name@root`; undefined when
 * neither does.
 */
/**
 * The store directory `get` would answer for an image without asking a
 * registry: with a lock in use that locks the image for the platform, the
 * entry holding the locked manifest (the tag's, or `name@<root digest>`);
 * else the tag's entry. Undefined when that is not installed.
 *
 * @param image the image
 * @param options platform, store, lock (`true`: the project's)
 * @returns the directory, or undefined
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { installedImageDir, loadImage, packDirectory, Store } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "a");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * const store = new Store(`${tmp}/store`);
 * assert.equal(await installedImageDir("example.com/foo:1", { store }), undefined);
 * const r = await loadImage(`${tmp}/foo.tar`, { store });
 * assert.equal(await installedImageDir("example.com/foo:1", { store }), r.dir);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function installedImageDir(
  image: string | ImageName,
  options: Pick<GetOptions, "platform" | "store" | "lock"> = {},
): Promise<string | undefined> {
  const name = imageName(image);
  const store = options.store ?? new Store();
  const platform = options.platform ?? hostPlatform();
  const entry = (await lockStateOf(name, { lock: options.lock, locked: false }, platform))?.entry;
  const locked = entry?.platforms[platformLockKey(platform)];
  if (entry && locked !== undefined) {
    const holder = await entryHolding(store, name, entry.digest, locked, platform);
    return holder && store.imageDir(holder, options.platform);
  }
  return await store.has(name, options.platform)
    ? store.imageDir(name, options.platform)
    : undefined;
}

async function entryHolding(
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

/**
 * Install the manifest `manifest` of `root` for a platform as a lock pins it:
 * kept where an entry holds it already (reinstalled there with `force`),
 * else into the tag's entry when there is none, else into the entry of
 * `name@<root digest>` — a tag's entry holding other bytes is never replaced.
 */
async function installPinned(
  store: Store,
  src: ReadTarget,
  root: Descriptor,
  manifest: Descriptor,
  name: ImageName,
  platform: Platform,
  options: InstallOptions,
): Promise<InstallResult> {
  const pinned = name.withReference(root.digest);
  const holder = await entryHolding(store, name, root.digest, manifest.digest, platform);
  if (holder && !options.force) {
    return {
      name: holder,
      dir: store.imageDir(holder, platform),
      digest: manifest.digest,
      status: "present",
    };
  }
  const target = holder ??
    ((await store.installedDescriptor(name, platform)) === undefined ? name : pinned);
  const exists = (await store.installedDescriptor(target, platform)) !== undefined;
  const install = (n: ImageName, force: boolean) =>
    store.install(src, root, n, { ...options, platform, force, manifestDigest: manifest.digest });
  const r = await install(target, (options.force ?? false) || exists);
  // another process put other bytes into the tag's entry first: the digest's entry then
  if (
    r.status === "present" && target !== pinned &&
    (await store.installedDescriptor(target, platform))?.digest !== manifest.digest
  ) return await install(pinned, true);
  return r;
}
async function installedDigests(
  store: Store,
  name: ImageName,
  platform: Platform | undefined,
): Promise<Set<string>> {
  const out = new Set<string>();
  try {
    const layout = await store.layout(name, platform);
    for (const d of await layout.list()) out.add(d.digest);
  } catch { /* none */ }
  return out;
}

/** Options of {@link loadImage}. */
export interface LoadOptions extends InstallOptions, VerifyPolicyOptions, LockOptions {
  /** Reference in the layout (default: its only image). */
  ref?: string;
  /** Name to install under (default: the layout's ref name). */
  name?: string | ImageName;
  /** The store (default: the data dir). */
  store?: Store;
}

/**
 * Load an image from an oci-archive or oci-dir into the local store.
 *
 * With a lock (`lock`, as {@link getImage} takes it), an image the lock
 * holds must be the locked one (its root digest, and its manifest for the
 * platform when the entry has one): another is refused. It is installed as
 * `getImage` installs a locked digest (into the tag's entry unless that holds
 * other bytes, else the digest's). An image the lock lacks is recorded —
 * refused with `locked`.
 *
 * @param location the layout
 * @param options reference, name, force, platform, store, lock, locked, verify keys
 * @returns the install result, and the lock file when one was used
 * @throws {OcipkgError} when the layout names no image and no name is given
 * @throws {VerificationError} when the lock pins other bytes than the layout holds
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadImage, packDirectory, Store } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "a");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * const store = new Store(`${tmp}/store`); // default: the data dir's store
 * const r = await loadImage(`${tmp}/foo.tar`, { store });
 * assert.equal(r.status, "installed");
 * assert.equal(r.name.toString(), "example.com/foo:1"); // the archive's ref name
 * assert.equal(await Deno.readTextFile(`${r.dir}/a.txt`), "a");
 * assert.equal((await loadImage(`${tmp}/foo.tar`, { store })).status, "present");
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function loadImage(
  location: string | LayoutLocation,
  options: LoadOptions = {},
): Promise<GetResult> {
  const loc = await toLocation(location, { accept: "layout" }) as LayoutLocation;
  const store = options.store ?? new Store();
  const given = options.name === undefined ? undefined : imageName(options.name);
  return await withTarget(await openLocation(loc), async (src) => {
    const root = await src.resolve(options.ref ?? loc.ref);
    const refName = root.annotations?.[ANNOTATION_REF_NAME];
    const name = given ?? (refName ? ImageName.parse(refName) : undefined);
    if (!name) {
      throw new OcipkgError(`${src.description}: the image has no ref name`);
    }
    const required = await verifyRequirements(name, options);
    const state = await lockStateOf(name, options);
    const fingerprints = await enforceVerification(src, root, name, required);
    if (!state) {
      const r = await store.install(src, root, name, options);
      if (r.status === "installed") await store.recordVerified(r.digest, fingerprints);
      return r;
    }
    // the lock holds it: exactly the locked bytes, else refused
    const platform = options.platform ?? hostPlatform();
    const key = platformLockKey(platform);
    const entry = state.entry;
    const locked = entry?.platforms[key];
    if (entry && entry.digest !== root.digest) {
      throw new VerificationError(
        `image '${name}' is locked to ${entry.digest} in ${state.path}, but ${src.description} holds ${root.digest}`,
      );
    }
    if (locked === undefined && state.locked) {
      throw lockRefusal(name, state, entry ? key : undefined);
    }
    const manifest = await pickVariant(src, root, platform, `image '${name}'`);
    if (locked !== undefined && manifest.digest !== locked) {
      throw new VerificationError(
        `image '${name}': ${state.path} locks ${locked} for ${key}, but ${src.description} has ${manifest.digest} for it`,
      );
    }
    const r = await installPinned(store, src, root, manifest, name, platform, options);
    await store.recordVerified(r.digest, fingerprints);
    if (locked === undefined) {
      await recordLocked(state, root.digest, { [key]: r.digest }, fingerprints);
    }
    return { ...r, lock: state.path };
  });
}
