/**
 * Registry operations, one per CLI command: push, get, pull, copy, tags,
 * remote inspect, login/logout. Every transfer goes through {@link copy}.
 *
 * @module
 */
import { copy, copyGraph, type CopyOptions } from "./copy.ts";
import { OcipkgError, UsageError } from "./errors.ts";
import { type ImageInfo, inspectImage, type InspectOptions } from "./inspect.ts";
import { createLayout, type LayoutLocation, openLayout, parseLayoutLocation } from "./location.ts";
import { ANNOTATION_REF_NAME } from "./media_types.ts";
import type { Descriptor, Platform } from "./manifest.ts";
import { hostPlatform, platformMatches } from "./platform.ts";
import { ImageName } from "./reference.ts";
import type { ClientOptions } from "./registry/client.ts";
import { type Credential, removeCredential, saveCredential } from "./registry/credentials.ts";
import { RegistryTarget, type RegistryTargetOptions } from "./registry/target.ts";
import { type InstallResult, Store } from "./store.ts";
import type { ExtractLimits } from "./extract.ts";
import { type ListableTarget, type ReadTarget, type Target, using } from "./target.ts";
import { checkDistinctPlatforms, mergeVariants, pushIndex, variantsOf } from "./variants.ts";

/** Options shared by registry operations. */
export interface RemoteOptions
  extends RegistryTargetOptions, Pick<CopyOptions, "concurrency" | "onProgress"> {}

/**
 * Open the repository of an image on its registry.
 *
 * @param name image name
 * @param options client options
 * @returns the registry target
 * @example
 * ```ts
 * import { openRepository, ImageName } from "../mod.ts";
 * const t = openRepository(ImageName.parse("localhost:5000/a/b:1"), { credential: null });
 * console.assert(t.repository === "a/b");
 * await t.close();
 * ```
 */
export function openRepository(
  name: ImageName,
  options: RegistryTargetOptions = {},
): RegistryTarget {
  return new RegistryTarget(name.registry, name.name, options);
}

/** Where an image is: a registry, or a layout. */
export type Location =
  | { kind: "registry"; name: ImageName }
  | LayoutLocation;

/**
 * Parse a location for `copy`: `docker://<image>` or an image name for a
 * registry; `oci:<dir>[:<ref>]`, `oci-archive:<file>[:<ref>]`, an existing
 * path, or a path ending in `.tar` for a layout.
 *
 * @param s the location
 * @returns the parsed location
 */
export async function parseLocation(s: string): Promise<Location> {
  if (s.startsWith("docker://")) return { kind: "registry", name: ImageName.parse(s.slice(9)) };
  if (/^(oci|oci-dir|oci-archive):/.test(s)) return await parseLayoutLocation(s);
  try {
    await Deno.lstat(s);
    return await parseLayoutLocation(s);
  } catch { /* not a path */ }
  if (s.endsWith(".tar") || s.startsWith(".") || s.startsWith("/")) {
    return await parseLayoutLocation(s);
  }
  return { kind: "registry", name: ImageName.parse(s) };
}

function refOf(loc: Location): string | undefined {
  return loc.kind === "registry" ? loc.name.reference : loc.ref;
}

async function openSource(loc: Location, options: RemoteOptions): Promise<ReadTarget> {
  return loc.kind === "registry" ? openRepository(loc.name, options) : await openLayout(loc);
}

async function openDestination(loc: Location, options: RemoteOptions): Promise<Target> {
  return loc.kind === "registry" ? openRepository(loc.name, options) : await createLayout(loc);
}

/**
 * Copy an image between registries, oci-dirs and oci-archives in any
 * combination.
 *
 * @param source e.g. `oci-archive:a.tar`, `localhost:5000/x:1`, `docker://ghcr.io/o/x:1`
 * @param destination same forms
 * @param options client options, concurrency, progress
 * @returns the digest copied
 */
export async function copyImage(
  source: string,
  destination: string,
  options: RemoteOptions = {},
): Promise<string> {
  const src = await parseLocation(source);
  const dst = await parseLocation(destination);
  return await using(await openSource(src, options), async (s) => {
    const root = await s.resolve(refOf(src));
    const dstRef = dst.kind === "registry" ? dst.name.reference : dst.ref ??
      (src.kind === "registry" ? src.name.toString() : root.annotations?.[ANNOTATION_REF_NAME]) ??
      root.digest;
    await using(
      await openDestination(dst, options),
      (d) => copy(s, d, { ...options, srcRef: root.digest, dstRef }),
    );
    return root.digest;
  });
}

/**
 * Push an oci-archive/oci-dir to a registry. Given several layouts, each
 * holding a platform-specific package (packed with `--platform`) or a
 * multi-platform index, push them all under one tag as an OCI index.
 *
 * @param location the layout (`file.tar`, `dir`, `oci:dir:ref`, …), or several
 * @param image destination image name (default: the (first) layout's ref name)
 * @param options client options, concurrency, progress
 * @returns the image name and the digest of what the tag points to
 * @throws {UsageError} when several layouts give the same platform, or one has none
 */
export async function pushImage(
  location: string | string[],
  image?: string,
  options: RemoteOptions = {},
): Promise<{ name: ImageName; digest: string }> {
  const locations = typeof location === "string" ? [location] : location;
  if (locations.length === 0) throw new UsageError("push needs at least one layout");
  const given = image ? ImageName.parse(image) : undefined;
  const locs = await Promise.all(locations.map((l) => parseLayoutLocation(l)));
  if (locs.length === 1) {
    const loc = locs[0]!;
    return await using(await openLayout(loc), async (src) => {
      const root = await src.resolve(loc.ref);
      const name = given ?? refNameOf(root, src.description);
      await using(
        openRepository(name, options),
        (dst) => copy(src, dst, { ...options, srcRef: root.digest, dstRef: name.reference }),
      );
      return { name, digest: root.digest };
    });
  }
  // several variants: copy each manifest, then tag an index over them all
  let name = given;
  const variants: { desc: Descriptor; from: string }[] = [];
  const sources: { src: ListableTarget & Target; roots: Descriptor[] }[] = [];
  try {
    for (const loc of locs) {
      const src = await openLayout(loc);
      sources.push({ src, roots: [] });
      const root = await src.resolve(loc.ref);
      name ??= refNameOf(root, src.description);
      for (const d of await variantsOf(src, root, src.description)) {
        variants.push({ desc: d, from: loc.path });
        sources.at(-1)!.roots.push(d);
      }
    }
    checkDistinctPlatforms(variants);
    const target = name!;
    const digest = await using(openRepository(target, options), async (dst) => {
      for (const { src, roots } of sources) {
        for (const root of roots) await copyGraph(src, dst, root, options);
      }
      const index = await pushIndex(dst, mergeVariants([], variants.map((v) => v.desc)));
      await dst.tag(index, target.reference);
      return index.digest;
    });
    return { name: target, digest };
  } finally {
    for (const { src } of sources) await src.close().catch(() => {});
  }
}

function refNameOf(root: Descriptor, where: string): ImageName {
  const refName = root.annotations?.[ANNOTATION_REF_NAME];
  if (!refName) throw new UsageError(`${where} has no ref name; give the image name to push to`);
  return ImageName.parse(refName);
}

/** Options of {@link getImage}. */
export interface GetOptions extends RemoteOptions, ExtractLimits {
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
 */
export async function getImage(
  image: string | ImageName,
  options: GetOptions = {},
): Promise<InstallResult> {
  const name = typeof image === "string" ? ImageName.parse(image) : image;
  const store = options.store ?? new Store();
  const installed = await store.installedDescriptor(name);
  // an image installed for another platform (from an index) is replaced
  const otherPlatform = installed?.platform !== undefined &&
    !platformMatches(installed.platform, options.platform ?? hostPlatform());
  const present = installed !== undefined && !otherPlatform;
  if (present && !options.force && !options.refresh) {
    return { name, dir: store.imageDir(name), digest: installed.digest, status: "present" };
  }
  return await using(openRepository(name, options), async (src) => {
    const root = await src.resolve(name.reference);
    let force = (options.force ?? false) || otherPlatform;
    if (present && options.refresh && !force) {
      const installed = await installedDigests(store, name);
      if (installed.has(root.digest)) {
        return { name, dir: store.imageDir(name), digest: root.digest, status: "present" };
      }
      force = true;
    }
    return await store.install(src, root, name, { ...options, force });
  });
}

async function installedDigests(store: Store, name: ImageName): Promise<Set<string>> {
  const out = new Set<string>();
  try {
    const layout = await store.layout(name);
    for (const d of await layout.list()) out.add(d.digest);
  } catch { /* none */ }
  return out;
}

/**
 * Pull an image from a registry into an oci-archive or oci-dir.
 *
 * @param image image name
 * @param output `out.tar`, `oci:dir`, `oci-archive:file` (ref name = the image name)
 * @param options client options and `format` for plain paths
 * @returns the digest pulled
 */
export async function pullImage(
  image: string,
  output: string,
  options: RemoteOptions & { format?: "archive" | "dir" } = {},
): Promise<string> {
  const name = ImageName.parse(image);
  const loc = await parseLayoutLocation(output, options.format);
  return await using(openRepository(name, options), async (src) => {
    const root = await src.resolve(name.reference);
    await using(
      await createLayout(loc),
      (dst) =>
        copy(src, dst, { ...options, srcRef: root.digest, dstRef: loc.ref ?? name.toString() }),
    );
    return root.digest;
  });
}

/**
 * List a repository's tags (all pages; see {@link listTagPages} to stream them).
 *
 * @param repository `host[:port]/name` (a tag, if given, is ignored)
 * @param options client options
 * @returns tags
 */
export async function listTags(
  repository: string,
  options: RegistryTargetOptions = {},
): Promise<string[]> {
  const out: string[] = [];
  for await (const page of listTagPages(repository, options)) for (const t of page) out.push(t);
  return out;
}

/**
 * Stream a repository's tags page by page: memory stays bounded by one page
 * (4 MiB) however many tags there are; pages and tags are capped
 * (`maxTagPages`, `maxTags`).
 *
 * @param repository `host[:port]/name` (a tag, if given, is ignored)
 * @param options client options
 * @returns an async iterator of pages of tags
 */
export async function* listTagPages(
  repository: string,
  options: RegistryTargetOptions = {},
): AsyncGenerator<string[], void, undefined> {
  const t = openRepository(ImageName.parse(repository), options);
  try {
    yield* t.tagPages();
  } finally {
    await t.close();
  }
}

/**
 * Inspect an image on a registry (or, for a layout location, in the layout).
 *
 * @param image image name or layout location
 * @param options client options and `files: false` to skip reading layers
 * @returns the description
 */
export async function inspectAny(
  image: string,
  options: RegistryTargetOptions & InspectOptions = {},
): Promise<ImageInfo> {
  const loc = await parseLocation(image);
  return await using(await openSource(loc, options), async (t) => {
    const info = await inspectImage(t, refOf(loc), options);
    if (loc.kind === "registry") info.name = loc.name.toString();
    return info;
  });
}

/**
 * Check credentials against a registry and save them (mode 0600).
 *
 * @param registry `host[:port]`
 * @param credential user and password/token
 * @param options client options (scheme, CA)
 * @throws {AuthError} when the registry refuses them (nothing is saved)
 */
export async function login(
  registry: string,
  credential: Credential,
  options: ClientOptions = {},
): Promise<void> {
  if (!/^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9a-fA-F:]+\](:\d+)?$/.test(registry)) {
    throw new UsageError(`invalid registry '${registry}': use host[:port]`);
  }
  const t = new RegistryTarget(registry, "ocipkg/login-check", { ...options, credential });
  try {
    await t.ping();
  } finally {
    await t.close();
  }
  await saveCredential(registry, credential);
}

/**
 * Remove saved credentials.
 *
 * @param registry `host[:port]`
 * @throws {OcipkgError} when none were saved
 */
export async function logout(registry: string): Promise<void> {
  if (!(await removeCredential(registry))) throw new OcipkgError(`not logged in to ${registry}`);
}
