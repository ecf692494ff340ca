/**
 * Installing images into the local store — `get` from a registry, cached —
 * as far as the store can answer: an entry that holds the image (or what
 * the lock pins) and verified is returned without a request. What needs the
 * source — resolve, verify, install, record — and `load` (from a layout) are
 * `install_from.ts`, imported only then: a cached `get` loads no registry,
 * archive or signature code.
 *
 * @module
 */
import { hostPlatform, platformMatches } from "../oci/platform.ts";
import { type ImageName, imageName } from "../oci/reference.ts";
import { Store } from "../store/store.ts";
import { isVerified, type VerifyRequirement, verifyRequirements } from "../sign/policy.ts";
import { entryHolding, lockedFor, lockRefusal, type LockState, lockStateOf } from "./lock.ts";
import type { GetOptions, GetResult } from "./install_from.ts";

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
  const { getFromRegistry } = await import("./install_from.ts");
  return await getFromRegistry(
    name,
    store,
    required,
    { present: present ? installed : undefined, otherPlatform },
    options,
  );
}

/** {@link getImage} of a tag with a lock in use. */
async function getLocked(
  name: ImageName,
  store: Store,
  required: VerifyRequirement[],
  state: LockState,
  options: GetOptions,
): Promise<GetResult> {
  const { platform, key, entry, locked } = lockedFor(state, options.platform);
  if (locked === undefined && state.locked) throw lockRefusal(name, state, entry ? key : undefined);
  // cached and trusted: an entry holding the locked manifest, no request
  if (entry && locked !== undefined && !options.force) {
    const holder = await entryHolding(store, name, entry.digest, locked, platform);
    if (holder && await isVerified(store, locked, required)) {
      const dir = store.imageDir(holder, platform);
      return { name: holder, dir, digest: locked, status: "present", lock: state.path };
    }
  }
  const { getLockedFromRegistry } = await import("./install_from.ts");
  return await getLockedFromRegistry(name, store, required, state, options);
}

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
  const state = await lockStateOf(name, { lock: options.lock, locked: false }, platform);
  const { entry, locked } = lockedFor(state, platform);
  if (entry && locked !== undefined) {
    const holder = await entryHolding(store, name, entry.digest, locked, platform);
    return holder && store.imageDir(holder, options.platform);
  }
  return await store.has(name, options.platform)
    ? store.imageDir(name, options.platform)
    : undefined;
}
