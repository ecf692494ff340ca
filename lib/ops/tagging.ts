/**
 * Resolve an image to its digest, and give it more tags without moving a
 * byte of its content: a registry receives its manifest again under each new
 * tag (the blobs stay where they are), an oci-dir gets new ref names.
 *
 * @module
 */
import { OcipkgError, UsageError } from "../util/errors.ts";
import { ImageName, isTag } from "../oci/reference.ts";
import { type Location, openImage, referenceOf, toLocation } from "../transport/location.ts";
import { openRepositoryToWrite } from "../transport/registry/target.ts";
import { OciDir } from "../transport/layout/oci_dir.ts";
import type { RemoteOptions } from "../transport/location.ts";
import { type Target, withTarget } from "../transport/target.ts";

/**
 * The digest an image (registry, oci-dir or oci-archive) resolves to — a
 * manifest, or an index for a multi-platform image.
 *
 * @param image e.g. `ghcr.io/org/libfoo:1.0`, `oci:./layout:v1`, `libfoo.tar`
 * @param options client options
 * @returns `sha256:…`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { packDirectory, resolveImage } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "a");
 * const packed = await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * assert.equal(await resolveImage(`${tmp}/foo.tar`), packed.digest);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function resolveImage(
  image: string | ImageName | Location,
  options: RemoteOptions = {},
): Promise<string> {
  const { target, subject } = await openImage(image, options);
  await target.close();
  return subject.digest;
}

/**
 * Point more tags at an image: on a registry the manifest is put again under
 * each tag (no blob is read or sent); in an oci-dir each tag becomes a ref
 * name (`image.ref.name`) of the same manifest.
 *
 * @param image the image to tag, e.g. `ghcr.io/org/libfoo:1.0.3` or `oci:./layout:1.0.3`
 * @param tags new tags, e.g. `["1.0", "latest"]` (a registry image takes bare
 *   tags; an oci-dir takes any ref name)
 * @param options client options
 * @returns the digest the tags now point at
 * @throws {UsageError} for a malformed tag, or an oci-archive (rewrite it with `copy`)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { packDirectory, resolveImage, tagImage } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "a");
 * const packed = await packDirectory(`${tmp}/pkg`, `oci:${tmp}/lay`, { name: "example.com/foo:1.0.3" });
 * await tagImage(`oci:${tmp}/lay:example.com/foo:1.0.3`, ["example.com/foo:1.0"]);
 * assert.equal(await resolveImage(`oci:${tmp}/lay:example.com/foo:1.0`), packed.digest);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function tagImage(
  image: string | ImageName | Location,
  tags: string[],
  options: RemoteOptions = {},
): Promise<string> {
  if (tags.length === 0) throw new UsageError("give at least one new tag");
  const loc = await toLocation(image, { accept: "any" });
  let target: Target;
  if (loc.kind === "registry") {
    for (const t of tags) {
      // the same rule as a tag in an image name
      if (!isTag(t)) {
        throw new UsageError(`invalid tag '${t}': use [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
      }
      ImageName.parse(`${loc.name.registry}/${loc.name.name}:${t}`);
    }
    target = openRepositoryToWrite(loc.name, options); // tags: the registry's own
  } else if (loc.kind === "oci-dir") {
    target = await OciDir.open(loc.path);
  } else {
    throw new UsageError(
      `cannot tag inside oci-archive '${loc.path}' in place; copy it with a new name instead`,
    );
  }
  return await withTarget(target, async (t) => {
    const desc = await t.resolve(referenceOf(loc));
    for (const tag of tags) {
      if (!tag) throw new OcipkgError("an empty tag");
      await t.tag(desc, tag);
    }
    return desc.digest;
  });
}
