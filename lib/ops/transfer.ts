/**
 * Moving images between places — registries, oci-dirs and oci-archives in
 * any combination: push, pull and copy. Each resolves its arguments with the
 * one resolver ({@link toLocation} → `resolveLocation`) and moves bytes with the one copy
 * routine ({@link copy} / {@link copyGraph}).
 *
 * @module
 */
import { copy, copyGraph } from "../transport/copy.ts";
import { UsageError } from "../util/errors.ts";
import {
  createLocation,
  type LayoutLocation,
  type Location,
  openImage,
  openLocation,
  referenceOf,
  type RemoteOptions,
  toLocation,
} from "../transport/location.ts";
import { openRepository, openRepositoryToWrite } from "../transport/registry/target.ts";
import type { ClientOptions } from "../transport/registry/client.ts";
import { isDigest } from "../oci/digest.ts";
import { ANNOTATION_REF_NAME } from "../oci/media_types.ts";
import type { Descriptor, Platform } from "../oci/manifest.ts";
import { ImageName, imageName } from "../oci/reference.ts";
import type { CopyReferrersOptions } from "../transport/referrers.ts";
import {
  type ListableTarget,
  type ReadTarget,
  type Target,
  withTarget,
} from "../transport/target.ts";
import {
  checkDistinctPlatforms,
  mergeVariants,
  pickVariant,
  pushIndex,
  variantsOf,
} from "../transport/variants.ts";

/** Whether attached signatures and referrers travel with an image. */
export interface AttachedOptions {
  /**
   * Copy the image's cosign signatures (`sha256-<hex>.sig`, `.att`, `.sbom`)
   * and OCI 1.1 referrers too (see {@link copyReferrers}). Default: yes when
   * the source is named by digest, or pushed from a layout; no otherwise.
   */
  includeSignatures?: boolean;
}

/**
 * The options of one side of {@link copyImage}, over those both sides share:
 * how to reach its registry and who to be there (ORAS's `--from-…`/`--to-…`).
 */
export interface CopySides {
  /** The source's own client options, e.g. `{ plainHttp: true }`. */
  from?: ClientOptions;
  /** The destination's own client options, e.g. `{ caFile: "ca.pem", credential }`. */
  to?: ClientOptions;
}

/**
 * Copy an image between registries, oci-dirs and oci-archives in any
 * combination.
 *
 * @param source e.g. `oci-archive:a.tar`, `localhost:5000/x:1`, `docker://ghcr.io/o/x:1`
 * @param destination same forms (see {@link resolveLocation})
 * @param options client options, concurrency, progress; `from`/`to`: one side's own
 * @returns the digest copied
 * @throws {UsageError} for an ambiguous location (no request is made)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyImage, inspectAny, packDirectory } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "a");
 * const packed = await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * // oci-archive → oci-dir; registries are named the same way (`ghcr.io/org/foo:1`)
 * assert.equal(await copyImage(`${tmp}/foo.tar`, `oci:${tmp}/foo`), packed.digest);
 * const copied = await inspectAny(`oci:${tmp}/foo`);
 * assert.equal(copied.name, "example.com/foo:1"); // the ref name comes along
 * assert.equal(copied.digest, packed.digest);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function copyImage(
  source: string | ImageName | Location,
  destination: string | ImageName | Location,
  options: RemoteOptions & AttachedOptions & CopySides & { platform?: Platform } = {},
): Promise<string> {
  const { from, to, ...shared } = options;
  const dst = await toLocation(destination);
  const opened = await openImage(source, { ...shared, ...from });
  const src = opened.location;
  return await withTarget(opened.target, async (s) => {
    const resolved = opened.subject;
    // one platform of an index, when asked (else every platform)
    const root = await pickVariant(s, resolved, options.platform, `image '${describe(src)}'`);
    const dstRef = dst.kind === "registry" ? dst.name.reference : dst.ref ??
      (src.kind === "registry"
        ? src.name.toString()
        : resolved.annotations?.[ANNOTATION_REF_NAME]) ??
      root.digest;
    const byDigest = isDigest(referenceOf(src) ?? "");
    await withTarget(await createLocation(dst, { ...shared, ...to }), async (d) => {
      await copy(s, d, { ...shared, srcRef: root.digest, dstRef });
      if (shared.includeSignatures ?? byDigest) await copyReferrers(s, d, root, shared);
    });
    return root.digest;
  });
}

/**
 * Push an oci-archive/oci-dir to a registry. Given several layouts, each
 * holding a platform-specific package (packed with a platform) or a
 * multi-platform index, push them all under one tag as an OCI index.
 *
 * @param location the layout (`file.tar`, `./dir`, `oci:dir:ref`, …), or several
 * @param image destination image name (default: the (first) layout's ref name)
 * @param options client options, concurrency, progress
 * @returns the image name and the digest of what the tag points to
 * @throws {UsageError} when several layouts give the same platform, or one has none
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectAny, packDirectory, pushImage, serve } from "@ocipkg/cli";
 * import { parsePlatform } from "@ocipkg/cli/oci";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/dist`);
 * await Deno.writeTextFile(`${tmp}/dist/a.txt`, "a");
 * const registry = await serve({ root: `${tmp}/root`, addr: "127.0.0.1:0" }); // or ghcr.io, …
 * const name = `${registry.addr}/org/libfoo:1.2`;
 * const packed = await packDirectory(`${tmp}/dist`, `${tmp}/libfoo.tar`, { name });
 * const pushed = await pushImage(`${tmp}/libfoo.tar`); // to the archive's ref name
 * assert.equal(pushed.name.toString(), name);
 * assert.equal(pushed.digest, packed.digest);
 * // one package per platform, pushed under one tag as an index
 * await packDirectory(`${tmp}/dist`, `${tmp}/arm64.tar`, { platform: parsePlatform("linux/arm64") });
 * await packDirectory(`${tmp}/dist`, `${tmp}/amd64.tar`, { platform: parsePlatform("linux/amd64") });
 * await pushImage([`${tmp}/arm64.tar`, `${tmp}/amd64.tar`], `${registry.addr}/org/libfoo:1.3`);
 * assert.equal((await inspectAny(`${registry.addr}/org/libfoo:1.3`)).manifests.length, 2);
 * await registry.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function pushImage(
  location: string | LayoutLocation | (string | LayoutLocation)[],
  image?: string | ImageName,
  options: RemoteOptions & AttachedOptions = {},
): Promise<{ name: ImageName; digest: string }> {
  const locations = Array.isArray(location) ? location : [location];
  if (locations.length === 0) throw new UsageError("push needs at least one layout");
  const given = image === undefined ? undefined : imageName(image);
  const locs = await Promise.all(
    locations.map((l) => toLocation(l, { accept: "layout" }) as Promise<LayoutLocation>),
  );
  if (locs.length === 1) {
    const loc = locs[0]!;
    return await withTarget(await openLocation(loc), async (src) => {
      const root = await src.resolve(loc.ref);
      const name = given ?? refNameOf(root, src.description);
      await withTarget(openRepositoryToWrite(name, options), async (dst) => {
        await copy(src, dst, { ...options, srcRef: root.digest, dstRef: name.reference });
        // a package signed before it was pushed keeps its signatures
        if (options.includeSignatures ?? true) await copyReferrers(src, dst, root, options);
      });
      return { name, digest: root.digest };
    });
  }
  // several variants: copy each manifest, then tag an index over them all
  let name = given;
  const variants: { desc: Descriptor; from: string }[] = [];
  const sources: { src: ReadTarget; roots: Descriptor[] }[] = [];
  try {
    // open every layout first, so a missing one is reported before any other fault
    for (const loc of locs) sources.push({ src: await openLocation(loc), roots: [] });
    for (const [i, loc] of locs.entries()) {
      const { src, roots } = sources[i]!;
      const root = await src.resolve(loc.ref);
      name ??= refNameOf(root, src.description);
      for (const d of await variantsOf(src as ListableTarget, root, src.description)) {
        variants.push({ desc: d, from: loc.path });
        roots.push(d);
      }
    }
    checkDistinctPlatforms(variants);
    const target = name!;
    const digest = await withTarget(
      openRepositoryToWrite(target, options),
      async (dst) => {
        for (const { src, roots } of sources) {
          for (const root of roots) await copyGraph(src, dst, root, options);
        }
        const index = await pushIndex(dst, mergeVariants([], variants.map((v) => v.desc)));
        await dst.tag(index, target.reference);
        return index.digest;
      },
    );
    return { name: target, digest };
  } finally {
    for (const { src } of sources) await src.close().catch(() => {});
  }
}

/**
 * `copyReferrers`, its module (and the listings under it) loaded on first
 * use: a pull by tag copies no referrers.
 */
async function copyReferrers(
  src: ReadTarget,
  dst: Target,
  subject: Descriptor,
  options: CopyReferrersOptions,
): Promise<void> {
  await (await import("../transport/referrers.ts")).copyReferrers(src, dst, subject, options);
}

/** A location as a user would write it, for messages. */
function describe(loc: Location): string {
  if (loc.kind === "registry") return loc.name.toString();
  return `${loc.kind}:${loc.path}${loc.ref ? `:${loc.ref}` : ""}`;
}

function refNameOf(root: Descriptor, where: string): ImageName {
  const refName = root.annotations?.[ANNOTATION_REF_NAME];
  if (!refName) throw new UsageError(`${where} has no ref name; give the image name to push to`);
  return ImageName.parse(refName);
}

/**
 * Pull an image from a registry into an oci-archive or oci-dir.
 *
 * @param image image name
 * @param output `out.tar`, `oci:dir`, `oci-archive:file` (ref name = the image name)
 * @param options client options and `format` for plain paths
 * @returns the digest pulled
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectAny, packDirectory, pullImage, pushImage, serve } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "a");
 * const registry = await serve({ root: `${tmp}/root`, addr: "127.0.0.1:0" }); // or ghcr.io, …
 * const name = `${registry.addr}/org/libfoo:1.2`;
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name });
 * await pushImage(`${tmp}/foo.tar`);
 * const digest = await pullImage(name, `${tmp}/libfoo.tar`);
 * const info = await inspectAny(`${tmp}/libfoo.tar`); // no request: a layout
 * assert.equal(info.digest, digest);
 * assert.equal(info.name, name); // the archive's ref name
 * await registry.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function pullImage(
  image: string | ImageName,
  output: string | LayoutLocation,
  options: RemoteOptions & AttachedOptions & {
    format?: "archive" | "dir";
    platform?: Platform;
  } = {},
): Promise<string> {
  const name = imageName(image);
  const loc = await toLocation(output, { accept: "layout", format: options.format });
  return await withTarget(openRepository(name, options), async (src) => {
    // one platform of an index, when asked (else every platform)
    const root = await pickVariant(
      src,
      await src.resolve(name.reference),
      options.platform,
      `image '${name}'`,
    );
    await withTarget(await createLocation(loc), async (dst) => {
      await copy(src, dst, {
        ...options,
        srcRef: root.digest,
        dstRef: referenceOf(loc) ?? name.toString(),
      });
      if (options.includeSignatures ?? name.digest !== undefined) {
        await copyReferrers(src, dst, root, options);
      }
    });
    return root.digest;
  });
}
