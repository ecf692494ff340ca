/**
 * Describe an image: name, digest, artifact type, annotations, platforms of an
 * index, and the files of every layer.
 *
 * @module
 */
import { VerifyingStream } from "../oci/digest.ts";
import { decompress } from "../archive/decompress.ts";
import {
  type Descriptor,
  isImageManifestType,
  parseManifestDocument,
  type Platform,
} from "../oci/manifest.ts";
import {
  ANNOTATION_PLATFORM,
  ANNOTATION_REF_NAME,
  ANNOTATION_TITLE,
  layerCompression,
  OCIPKG_ARTIFACT,
  OCIPKG_CONFIG,
} from "../oci/media_types.ts";
import { parsePlatform } from "../oci/platform.ts";
import { readTar } from "../archive/tar.ts";
import { StreamSource } from "../archive/tar_source.ts";
import { fetchBytes, type ReadTarget, withTarget } from "../transport/target.ts";
import {
  type LayoutLocation,
  type Location,
  openImage,
  openLocation,
  toLocation,
} from "../transport/location.ts";
import type { ImageName } from "../oci/reference.ts";
import type { RegistryTargetOptions } from "../transport/registry/repository.ts";

/** A layer as shown by inspect. */
export interface LayerInfo {
  /** Layer digest. */
  digest: string;
  /** Layer media type. */
  mediaType: string;
  /** Compressed size. */
  size: number;
  /** Paths in the layer (tar entries; the title for non-tar layers). */
  files: string[];
}

/** A manifest as shown by inspect. */
export interface ManifestInfo {
  /** Manifest digest. */
  digest: string;
  /** Manifest media type. */
  mediaType: string;
  /** `v1` (ocipkg artifact), `v0` (plain layers), or `other`. */
  format: "v1" | "v0" | "other";
  /** Artifact type, if any. */
  artifactType?: string;
  /** Config media type. */
  configMediaType: string;
  /** Platform, when the manifest came from an index. */
  platform?: Platform;
  /** Manifest annotations. */
  annotations: Record<string, string>;
  /** Layers with their files. */
  layers: LayerInfo[];
}

/** Everything inspect shows. */
export interface ImageInfo {
  /** Ref name in the layout, or the image name inspected. */
  name?: string;
  /** Root digest. */
  digest: string;
  /** Root media type. */
  mediaType: string;
  /** For an index: its annotations. */
  annotations?: Record<string, string>;
  /** Manifests (one for a plain image, one per platform for an index). */
  manifests: ManifestInfo[];
}

/** Options of {@link inspectImage}. */
export interface InspectOptions {
  /** Read layers to list their files (default true). */
  files?: boolean;
}

/**
 * Inspect an image held by any target.
 *
 * @param src where it is
 * @param reference tag/ref name/digest, or the descriptor already resolved (omitted: the only image of a layout)
 * @param options whether to list files
 * @returns the description
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectImage, OciArchive, packDirectory } from "@ocipkg/cli";
 * import { OCIPKG_ARTIFACT } from "@ocipkg/cli/oci";
 * import { withTarget } from "@ocipkg/cli/transport";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/libfoo.a`, "!<arch>\n");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * const src = await OciArchive.open(`${tmp}/foo.tar`);
 * const info = await withTarget(src, (t) => inspectImage(t, "example.com/foo:1"));
 * const [m] = info.manifests;
 * assert.equal(m?.format, "v1"); // an ocipkg artifact
 * assert.equal(m?.artifactType, OCIPKG_ARTIFACT);
 * assert.deepEqual(m?.layers.map((l) => l.files), [["libfoo.a"]]);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function inspectImage(
  src: ReadTarget,
  reference?: string | Descriptor,
  options: InspectOptions = {},
): Promise<ImageInfo> {
  const root = typeof reference === "object" ? reference : await src.resolve(reference);
  const ref = typeof reference === "object" ? undefined : reference;
  const where = `image ${ref ?? root.digest} in ${src.description}`;
  const doc = parseManifestDocument(await fetchBytes(src, root, where), root.mediaType, where);
  const info: ImageInfo = {
    name: root.annotations?.[ANNOTATION_REF_NAME] ?? ref,
    digest: root.digest,
    mediaType: root.mediaType,
    manifests: [],
  };
  if (doc.kind === "index") {
    info.annotations = doc.index.annotations ?? {};
    for (const m of doc.index.manifests) {
      if (isImageManifestType(m.mediaType)) {
        info.manifests.push(await inspectManifest(src, m, where, options));
      }
    }
  } else info.manifests.push(await inspectManifest(src, root, where, options));
  return info;
}

async function inspectManifest(
  src: ReadTarget,
  desc: Descriptor,
  where: string,
  options: InspectOptions,
): Promise<ManifestInfo> {
  const doc = parseManifestDocument(await fetchBytes(src, desc, where), desc.mediaType, where);
  if (doc.kind !== "manifest") {
    return {
      digest: desc.digest,
      mediaType: desc.mediaType,
      format: "other",
      configMediaType: "",
      annotations: {},
      layers: [],
    };
  }
  const m = doc.manifest;
  const v1 = m.artifactType === OCIPKG_ARTIFACT || m.config.mediaType === OCIPKG_CONFIG;
  const layers: LayerInfo[] = [];
  let allTar = true;
  for (const l of m.layers) {
    const compression = layerCompression(l.mediaType);
    if (!compression) allTar = false;
    const files: string[] = [];
    const title = l.annotations?.[ANNOTATION_TITLE];
    if (!compression && title) files.push(title);
    if (compression && options.files !== false) {
      const what = `layer ${l.digest} of ${where}`;
      const stream = (await src.fetch(l)).pipeThrough(new VerifyingStream(l, what));
      const source = new StreamSource(decompress(stream, compression, what), what);
      for await (const e of readTar(source, what)) {
        files.push(e.type === "directory" ? `${e.name.replace(/\/$/, "")}/` : e.name);
      }
      await source.drain(); // let the verifier see every byte
    }
    layers.push({ digest: l.digest, mediaType: l.mediaType, size: l.size, files });
  }
  const info: ManifestInfo = {
    digest: desc.digest,
    mediaType: desc.mediaType,
    format: v1 ? "v1" : allTar ? "v0" : "other",
    configMediaType: m.config.mediaType,
    annotations: m.annotations ?? {},
    layers,
  };
  if (m.artifactType) info.artifactType = m.artifactType;
  if (desc.platform) info.platform = desc.platform;
  else {
    // a package packed for a platform records it in the manifest too
    const packed = m.annotations?.[ANNOTATION_PLATFORM];
    try {
      if (packed) info.platform = parsePlatform(packed);
    } catch { /* not a platform */ }
  }
  return info;
}

/**
 * Inspect an image on a registry (or, for a layout location, in the layout).
 *
 * @param image image name or layout location
 * @param options client options and `files: false` to skip reading layers
 * @returns the description
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectAny, packDirectory } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "a");
 * const packed = await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * // a layout here; `ghcr.io/org/foo:1` would ask the registry
 * const info = await inspectAny(`${tmp}/foo.tar`, { files: false });
 * assert.equal(info.name, "example.com/foo:1");
 * assert.equal(info.digest, packed.digest);
 * assert.deepEqual(info.manifests[0]?.layers[0]?.files, []); // not read
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function inspectAny(
  image: string | ImageName | Location,
  options: RegistryTargetOptions & InspectOptions = {},
): Promise<ImageInfo> {
  const { target, subject, location } = await openImage(image, options);
  return await withTarget(target, async (t) => {
    const info = await inspectImage(t, subject, options);
    if (location.kind === "registry") info.name = location.name.toString();
    else info.name ??= location.ref;
    return info;
  });
}

/**
 * Inspect an image in a layout.
 *
 * @param location `file.tar`, `dir`, `oci:dir[:ref]`, `oci-archive:file[:ref]`
 * @param options `files: false` to skip reading layers
 * @returns what {@link inspectImage} returns
 */
export async function inspectLayout(
  location: string | LayoutLocation,
  options: InspectOptions & { ref?: string } = {},
): Promise<ImageInfo> {
  const loc = await toLocation(location, { accept: "layout" }) as LayoutLocation;
  return await withTarget(
    await openLocation(loc),
    (t) => inspectImage(t, options.ref ?? loc.ref, options),
  );
}
