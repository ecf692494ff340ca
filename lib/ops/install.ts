/**
 * Installing images into the local store: `get` (from a registry, cached) and
 * `load` (from a layout). Both go through {@link Store.install}.
 *
 * @module
 */
import type { ExtractLimits } from "../archive/budget.ts";
import { OcipkgError } from "../util/errors.ts";
import { type LayoutLocation, openLocation, toLocation } from "../transport/location.ts";
import { openRepository } from "../transport/registry/target.ts";
import { ANNOTATION_REF_NAME } from "../oci/media_types.ts";
import type { Platform } from "../oci/manifest.ts";
import { hostPlatform, platformMatches } from "../oci/platform.ts";
import { ImageName, imageName } from "../oci/reference.ts";
import { type InstallOptions, type InstallResult, Store } from "../store/store.ts";
import { withTarget } from "../transport/target.ts";
import type { RemoteOptions } from "../transport/location.ts";
import {
  enforceVerification,
  isVerified,
  type VerifyPolicyOptions,
  verifyRequirements,
} from "../sign/policy.ts";

/** Options of {@link getImage}. */
export interface GetOptions extends RemoteOptions, ExtractLimits, VerifyPolicyOptions {
  /** Reinstall even if present. */
  force?: boolean;
  /** Re-resolve a tag on the registry and reinstall if it moved. */
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
 * @param image image name
 * @param options force, refresh, platform, store, client options
 * @returns the install result
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
 */
export async function getImage(
  image: string | ImageName,
  options: GetOptions = {},
): Promise<InstallResult> {
  const name = imageName(image);
  const store = options.store ?? new Store();
  // the keys it must verify with, each key file read once (the policy's rules, the given keys)
  const required = await verifyRequirements(name, options);
  // each platform has its own entry (the host's by default)
  const installed = await store.installedDescriptor(name, options.platform);
  // an entry recording another platform (the host's, written by an older version) is replaced
  const otherPlatform = installed?.platform !== undefined &&
    !platformMatches(installed.platform, options.platform ?? hostPlatform());
  const present = installed !== undefined && !otherPlatform;
  const dir = store.imageDir(name, options.platform);
  // cached and trusted (the store's record of what verified): done, no request
  if (
    present && !options.force && !options.refresh &&
    await isVerified(store, installed.digest, required)
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
      (await installedDigests(store, name, options.platform)).has(root.digest)
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
export interface LoadOptions extends InstallOptions, VerifyPolicyOptions {
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
 * @param location the layout
 * @param options reference, name, force, platform, store
 * @returns the install result
 * @throws {OcipkgError} when the layout names no image and no name is given
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
): Promise<InstallResult> {
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
    const fingerprints = await enforceVerification(src, root, name, required);
    const r = await store.install(src, root, name, options);
    if (r.status === "installed") await store.recordVerified(r.digest, fingerprints);
    return r;
  });
}
