/**
 * Installing images into the local store from their source: `get` from a
 * registry when the store cannot answer (`install.ts` asks it first), and
 * `load` from an oci-archive or oci-dir — resolve, verify, install (as a
 * lock pins it, when one is in use), record. All go through
 * {@link Store.install}.
 *
 * @module
 */
import type { ExtractLimits } from "../archive/budget.ts";
import { NotFoundError, OcipkgError, VerificationError } from "../util/errors.ts";
import { type LayoutLocation, openLocation, toLocation } from "../transport/location.ts";
import { openRepository } from "../transport/registry/target.ts";
import { ANNOTATION_REF_NAME } from "../oci/media_types.ts";
import type { Descriptor, Platform } from "../oci/manifest.ts";
import { ImageName, imageName } from "../oci/reference.ts";
import { type InstallOptions, type InstallResult, Store } from "../store/store.ts";
import { type ReadTarget, withTarget } from "../transport/target.ts";
import type { RemoteOptions } from "../transport/location.ts";
import { pickVariant } from "../transport/variants.ts";
import {
  type VerifyPolicyOptions,
  type VerifyRequirement,
  verifyRequirements,
} from "../sign/policy.ts";
import {
  entryHolding,
  lockedFor,
  type LockOptions,
  lockRefusal,
  type LockState,
  lockStateOf,
  recordLocked,
} from "./lock.ts";
import { enforceVerification } from "../sign/enforce.ts";

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
 * {@link getImage} when the store cannot answer: resolve the image on its
 * registry, verify it, then install it — or keep the installed copy when it
 * is what the tag names now (asked to refresh, or not yet trusted) — and
 * record who verified it.
 *
 * @param name the image
 * @param store the store
 * @param required the verify requirements
 * @param cached what the store holds: the descriptor of its entry for the
 *   platform asked (`present`), or whether the entry is another platform's
 * @param options as {@link getImage} takes them
 * @returns the install result
 */
export async function getFromRegistry(
  name: ImageName,
  store: Store,
  required: VerifyRequirement[],
  cached: { present?: Descriptor; otherPlatform: boolean },
  options: GetOptions,
): Promise<GetResult> {
  const { present, otherPlatform } = cached;
  const dir = store.imageDir(name, options.platform);
  return await withTarget(openRepository(name, options), async (src) => {
    // resolve
    const root = await src.resolve(name.reference);
    // verify, before a byte is fetched for installing: nothing lands when this throws
    const fingerprints = await enforceVerification(src, root, name, required);
    // install — or keep the installed copy (asked to refresh, or not yet trusted) when it
    // is what the tag names now
    if (
      present !== undefined && !options.force &&
      (await installedDigests(store, name, options.platform)).has(root.digest) &&
      await store.recordUse(name, options.platform)
    ) {
      await store.recordVerified(present.digest, fingerprints);
      return { name, dir, digest: root.digest, status: "present" };
    }
    const force = (options.force ?? false) || present !== undefined || otherPlatform;
    const r = await store.install(src, root, name, { ...options, force });
    // record
    await store.recordVerified(r.digest, fingerprints);
    return r;
  });
}

/**
 * {@link getImage} of a tag with a lock in use, when the store cannot
 * answer: the locked root by its digest (the tag is not asked), else the tag
 * now; verified, the platform's manifest checked against the lock, installed
 * as the lock pins it, and recorded in the lock when it lacked the platform.
 *
 * @param name the image
 * @param store the store
 * @param required the verify requirements
 * @param state the lock in use and its entry for the image
 * @param options as {@link getImage} takes them
 * @returns the install result and the lock file
 */
export async function getLockedFromRegistry(
  name: ImageName,
  store: Store,
  required: VerifyRequirement[],
  state: LockState,
  options: GetOptions,
): Promise<GetResult> {
  const { platform, key, entry, locked } = lockedFor(state, options.platform);
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
    const { platform, key, entry, locked } = lockedFor(state, options.platform);
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
