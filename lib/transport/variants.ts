/**
 * Multi-platform packages: several platform-specific manifests under one tag
 * as an OCI image index. A single variant stays a plain manifest (what the
 * Rust ocipkg and every OCI tool read), with its platform recorded on its
 * descriptor in the layout's `index.json`; a second platform under the same
 * tag turns the tag into an index.
 *
 * @module
 */
import { NotFoundError, OcipkgError, UsageError } from "../util/errors.ts";
import {
  type Descriptor,
  encodeJson,
  type Index,
  isIndexType,
  isManifestType,
  parseManifestDocument,
  type Platform,
} from "../oci/manifest.ts";
import { ANNOTATION_PLATFORM, ANNOTATION_REF_NAME, OCI_INDEX } from "../oci/media_types.ts";
import { formatPlatform, parsePlatform, platformMatches, selectPlatform } from "../oci/platform.ts";
import { fetchBytes, pushBytes, type ReadTarget, type Target } from "./target.ts";

/**
 * The manifest of `root` for a platform: an index's entry for `platform`
 * (else for `fallback`; with neither, the index itself); a single manifest
 * is itself — unless a platform was asked for and the manifest records
 * (`vnd.ocipkg.platform`) another one.
 *
 * @param src where the root is
 * @param root the image's root descriptor
 * @param platform the platform asked for, if any
 * @param where names the image in errors
 * @param fallback the platform to pick from an index when none was asked for
 * @returns the descriptor to use
 * @throws {NotFoundError} listing the platforms there are
 */
export async function pickVariant(
  src: ReadTarget,
  root: Descriptor,
  platform: Platform | undefined,
  where: string,
  fallback?: Platform,
): Promise<Descriptor> {
  if (isIndexType(root.mediaType)) {
    const want = platform ?? fallback;
    if (!want) return root;
    const doc = parseManifestDocument(await fetchBytes(src, root, where), root.mediaType, where);
    if (doc.kind !== "index") throw new OcipkgError(`${where}: expected an index`);
    const picked = selectPlatform(doc.index, want, where);
    // the index entry's platform and the manifest's own must both fit
    return await checkDeclared(src, picked, want, where);
  }
  if (!platform || !isManifestType(root.mediaType)) return root;
  return await checkDeclared(src, root, platform, where);
}

/**
 * A manifest's descriptor, when neither the platform its descriptor names nor
 * the one its manifest records (`vnd.ocipkg.platform`) is another than `want`.
 */
async function checkDeclared(
  src: ReadTarget,
  desc: Descriptor,
  want: Platform,
  where: string,
): Promise<Descriptor> {
  const declared: Platform[] = desc.platform ? [desc.platform] : [];
  if (isManifestType(desc.mediaType)) {
    const doc = parseManifestDocument(await fetchBytes(src, desc, where), desc.mediaType, where);
    const packed = doc.kind === "manifest"
      ? doc.manifest.annotations?.[ANNOTATION_PLATFORM]
      : undefined;
    try {
      if (packed) declared.push(parsePlatform(packed));
    } catch { /* not a platform: the manifest says nothing we can use */ }
  }
  const other = declared.find((p) => !platformMatches(p, want));
  if (other) {
    throw new NotFoundError(
      `${where} has no manifest for platform ${formatPlatform(want)} (available: ${
        formatPlatform(other)
      })`,
    );
  }
  return desc;
}

function samePlatform(a: Descriptor, b: Descriptor): boolean {
  return formatPlatform(a.platform) === formatPlatform(b.platform);
}

/** A descriptor as an index entry: without the layout's ref name. */
function entry(desc: Descriptor): Descriptor {
  const { annotations, ...rest } = desc;
  const kept = { ...(annotations ?? {}) };
  delete kept[ANNOTATION_REF_NAME];
  return Object.keys(kept).length ? { ...rest, annotations: kept } : rest;
}

/**
 * The platform-specific manifests behind a root descriptor: an index's
 * entries, or the root itself when its descriptor names a platform.
 *
 * @param src where the root is
 * @param root an index, or a manifest descriptor with `platform`
 * @param where names the source in errors
 * @returns descriptors, each with a platform
 * @throws {UsageError} when a manifest has no platform
 */
export async function variantsOf(
  src: ReadTarget,
  root: Descriptor,
  where: string,
): Promise<Descriptor[]> {
  const doc = parseManifestDocument(await fetchBytes(src, root, where), root.mediaType, where);
  const list = doc.kind === "index" ? doc.index.manifests : [root];
  for (const d of list) {
    if (!d.platform) {
      throw new UsageError(
        `${where}: manifest ${d.digest} has no platform`,
      );
    }
  }
  return list.map(entry);
}

/**
 * Merge variants: a later one replaces an earlier one of the same platform.
 *
 * @param existing variants already there
 * @param added variants to add
 * @returns the merged list, sorted by platform
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mergeVariants } from "./variants.ts";
 * const d = (architecture: string, digest: string) => ({
 *   mediaType: "application/vnd.oci.image.manifest.v1+json",
 *   size: 1,
 *   digest,
 *   platform: { os: "linux", architecture },
 * });
 * const old = [d("amd64", "sha256:a")];
 * const merged = mergeVariants(old, [d("arm64", "sha256:b"), d("amd64", "sha256:c")]);
 * assert.deepEqual(merged.map((x) => x.digest), ["sha256:c", "sha256:b"]); // amd64 replaced
 * ```
 */
export function mergeVariants(existing: Descriptor[], added: Descriptor[]): Descriptor[] {
  const out = existing.filter((e) => !added.some((a) => samePlatform(a, e)));
  out.push(...added);
  return out.map(entry).sort((a, b) =>
    formatPlatform(a.platform).localeCompare(formatPlatform(b.platform))
  );
}

/**
 * Check that no platform is given twice.
 *
 * @param variants descriptors with platforms, and where each came from
 * @throws {UsageError} naming the platform and both sources
 */
export function checkDistinctPlatforms(variants: { desc: Descriptor; from: string }[]): void {
  const seen = new Map<string, string>();
  for (const v of variants) {
    const p = formatPlatform(v.desc.platform);
    const before = seen.get(p);
    if (before !== undefined) {
      throw new UsageError(`platform ${p} is given twice (${before} and ${v.from})`);
    }
    seen.set(p, v.from);
  }
}

/**
 * Write an OCI index over variants into a target (untagged).
 *
 * @param target where to write
 * @param variants descriptors with platforms
 * @returns the index descriptor
 */
export async function pushIndex(target: Target, variants: Descriptor[]): Promise<Descriptor> {
  const index: Index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: variants.map(entry) };
  return await pushBytes(target, OCI_INDEX, encodeJson(index));
}

/**
 * Tag a platform-specific manifest, merging it with what the tag already
 * holds: nothing or a manifest without a platform → the manifest is tagged
 * (its descriptor keeps the platform); another platform's manifest or an
 * index → an index of all of them (the same platform is replaced).
 *
 * @param target a layout (or any target that can resolve and tag)
 * @param desc the new manifest, with `platform`
 * @param ref the tag / ref name
 * @returns what the tag points to now
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget } from "@ocipkg/cli";
 * import { encodeJson, OCI_INDEX, OCI_MANIFEST, parsePlatform } from "@ocipkg/cli/oci";
 * import { pushBytes, tagVariant } from "@ocipkg/cli/transport";
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/json", encodeJson({}));
 * const build = async (platform: string) => {
 *   const manifest = { schemaVersion: 2, config, layers: [], annotations: { platform } };
 *   const desc = await pushBytes(t, OCI_MANIFEST, encodeJson(manifest));
 *   return { ...desc, platform: parsePlatform(platform) };
 * };
 * const one = await tagVariant(t, await build("linux/amd64"), "example.com/foo:1");
 * assert.equal(one.mediaType, OCI_MANIFEST); // a single platform stays a manifest
 * const both = await tagVariant(t, await build("linux/arm64"), "example.com/foo:1");
 * assert.equal(both.mediaType, OCI_INDEX); // a second one makes an index of both
 * assert.equal((await t.resolve("example.com/foo:1")).digest, both.digest);
 * ```
 */
export async function tagVariant(
  target: Target,
  desc: Descriptor,
  ref: string,
): Promise<Descriptor> {
  let existing: Descriptor[] = [];
  try {
    const old = await target.resolve(ref);
    if (old.digest !== desc.digest) {
      existing = await variantsOf(target, old, target.description).catch(() => []);
    }
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
  }
  const merged = mergeVariants(existing, [desc]);
  const root = merged.length === 1 ? entry(desc) : await pushIndex(target, merged);
  await target.tag(root, ref);
  return root;
}
