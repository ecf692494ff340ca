/**
 * Deleting an image from a registry, knowing what goes with it. A registry
 * deletes manifests by digest, and every tag pointing to that digest goes
 * too: so a tag is resolved to its digest first, the repository's other
 * tags are checked for the same digest, and deleting by tag stops (nothing
 * deleted) when it would take other tags along, unless forced. A tag alone
 * can be deleted where the registry allows it (the OCI distribution spec
 * does; distribution 2.x — `docker-registry`, Docker Hub — does not).
 *
 * @module
 */
import { OcipkgError, oneLine, UsageError } from "../util/errors.ts";
import { forEachBounded } from "../util/concurrency.ts";
import { type ImageName, imageName } from "../oci/reference.ts";
import type { RemoteOptions } from "../transport/location.ts";
import { openRepositoryToWrite, type RegistryTarget } from "../transport/registry/target.ts";
import { withTarget } from "../transport/target.ts";
import { DEFAULT_CONCURRENCY } from "../transport/defaults.ts";

/** Most tags checked for the digest being deleted (default of `maxTagChecks`). */
export const MAX_TAG_CHECKS = 1000;

/** Options of {@link deleteImage}. */
export interface DeleteOptions extends RemoteOptions {
  /** Delete the tag alone, not the manifest (where the registry allows it). */
  tagOnly?: boolean;
  /** Delete the manifest even though other tags point to it (they go too). */
  force?: boolean;
  /** Work out what would be deleted, and delete nothing. */
  dryRun?: boolean;
  /** Most tags checked for the digest (default {@link MAX_TAG_CHECKS}); with more, none is. */
  maxTagChecks?: number;
}

/** What {@link deleteImage} deleted (or, with `dryRun`, would delete). */
export interface DeleteResult {
  /** The image as named, canonical. */
  image: string;
  /** The digest of the manifest the name pointed to. */
  digest: string;
  /** `manifest`: the manifest and every tag pointing to it; `tag`: the tag alone. */
  deleted: "manifest" | "tag";
  /** The tags that went (or would go) with it, sorted. */
  tags: string[];
  /**
   * Why the tags pointing to the manifest could not all be known (the
   * registry does not list them, or has more than `maxTagChecks`); then
   * `tags` holds the named tag only.
   */
  tagsUnknown?: string;
  /** Nothing was deleted: `dryRun` was set. */
  dryRun: boolean;
}

/**
 * The tags of a repository that point to `digest` (a `HEAD` each, a few at a
 * time), or why they cannot be known.
 */
async function tagsPointingTo(
  repo: RegistryTarget,
  digest: string,
  options: DeleteOptions,
): Promise<{ tags: string[]; unknown?: string }> {
  const max = options.maxTagChecks ?? MAX_TAG_CHECKS;
  const all: string[] = [];
  try {
    // listed only as far as checked: a registry with a million tags is not read to the end
    for await (const page of repo.tagPages()) {
      all.push(...page);
      if (all.length > max) {
        return { tags: [], unknown: `it has more than the ${max} tags checked` };
      }
    }
  } catch (e) {
    if (!(e instanceof OcipkgError)) throw e;
    return { tags: [], unknown: `its tags could not be listed: ${oneLine(e)}` };
  }
  const pointing = new Set<string>();
  await forEachBounded(all, options.concurrency ?? DEFAULT_CONCURRENCY, async (tag) => {
    if (await repo.digestOf(tag) === digest) pointing.add(tag);
  });
  return { tags: [...pointing] };
}

/**
 * Delete an image from a registry. Named by digest, the manifest is deleted
 * and the tags pointing to it are reported; named by tag, the tag is
 * resolved to its digest first, and when other tags point to the same
 * manifest nothing is deleted unless `force` is set (or `tagOnly`, which
 * deletes the tag alone, where the registry allows it). The registry must
 * allow deleting (`docker-registry`: `storage.delete.enabled`; `ocipkg
 * serve`: `--delete`). Blobs are left to the registry's garbage collection.
 *
 * @param image e.g. `ghcr.io/org/libfoo:1.0`, `localhost:5000/x@sha256:…`
 * @param options client options; `tagOnly`, `force`, `dryRun`
 * @returns what was deleted (or would be)
 * @throws {NotFoundError} when there is no such tag or manifest
 * @throws {OcipkgError} naming the other tags, when deleting by tag would take them too
 * @throws {RegistryError} naming the registry when it does not delete (this)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deleteImage, NotFoundError, packDirectory, pushImage, serve } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * const registry = await serve({ root: `${tmp}/root`, addr: "127.0.0.1:0", delete: true });
 * const name = `${registry.addr}/org/libfoo:1.0`;
 * const packed = await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name });
 * await pushImage(`${tmp}/foo.tar`);
 * await pushImage(`${tmp}/foo.tar`, `${registry.addr}/org/libfoo:latest`);
 * // 1.0 and latest are one manifest: deleting it by tag takes both, so only with force
 * await assert.rejects(deleteImage(name), /also removes tag latest/);
 * const planned = await deleteImage(name, { force: true, dryRun: true });
 * assert.deepEqual(planned.tags, ["1.0", "latest"]);
 * const r = await deleteImage(name, { force: true });
 * assert.equal(r.digest, packed.digest);
 * await assert.rejects(deleteImage(name), NotFoundError);
 * await registry.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function deleteImage(
  image: string | ImageName,
  options: DeleteOptions = {},
): Promise<DeleteResult> {
  const name = imageName(image);
  const tag = name.digest ? undefined : name.tag;
  if (options.tagOnly && tag === undefined) {
    throw new UsageError(`'${name}' names a digest: deleting a tag alone needs a tag`);
  }
  return await withTarget(openRepositoryToWrite(name, options), async (repo) => {
    // what is deleted is what the name resolves to, verified (the other tags: a HEAD each)
    const digest = (await repo.resolve(name.reference)).digest;
    const dryRun = options.dryRun === true;
    if (options.tagOnly) {
      if (!dryRun) await repo.delete(tag!);
      return { image: name.toString(), digest, deleted: "tag", tags: [tag!], dryRun };
    }
    const found = await tagsPointingTo(repo, digest, options);
    const tags = (tag && !found.tags.includes(tag) ? [tag, ...found.tags] : found.tags).sort();
    const others = tags.filter((t) => t !== tag);
    if (tag && !options.force && (others.length > 0 || found.unknown)) {
      const lead = `deleting '${name}' deletes manifest ${digest}`;
      throw new OcipkgError(
        found.unknown
          ? `${lead} and every tag pointing to it, which are not known (${found.unknown}); nothing deleted`
          : `${lead}, which also removes ${others.length === 1 ? "tag" : "tags"} ${
            others.join(", ")
          }; nothing deleted`,
      );
    }
    if (!dryRun) await repo.delete(digest);
    const result: DeleteResult = {
      image: name.toString(),
      digest,
      deleted: "manifest",
      tags,
      dryRun,
    };
    if (found.unknown) result.tagsUnknown = found.unknown;
    return result;
  });
}
