/**
 * Media type constants of the OCI image spec, Docker, and ocipkg artifacts.
 *
 * @module
 */

/** OCI image manifest. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** OCI image index. */
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** OCI image config (container images). */
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
/** OCI empty JSON descriptor `{}`. */
export const OCI_EMPTY = "application/vnd.oci.empty.v1+json";
/** Plain tar layer. */
export const OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";
/** Gzip tar layer. */
export const OCI_LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
/** Zstd tar layer. */
export const OCI_LAYER_TAR_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";
/** Docker v2 schema 2 manifest. */
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
/** Docker manifest list. */
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
/** Docker container config. */
export const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
/** Docker gzip layer. */
export const DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/** ocipkg v1 artifact type. */
export const OCIPKG_ARTIFACT = "application/vnd.ocipkg.v1.artifact";
/** ocipkg v1 config (`{"layers": {digest: [paths]}}`). */
export const OCIPKG_CONFIG = "application/vnd.ocipkg.v1.config+json";
/** ocipkg v1 layer (gzip tar). */
export const OCIPKG_LAYER = "application/vnd.ocipkg.v1.layer.tar+gzip";

/** Annotation holding an image's name in an OCI layout's index. */
export const ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name";
/**
 * Manifest annotation recording the platform a package was packed for
 * (`os/arch[/variant]`): packages of one directory for two platforms differ,
 * and a registry (which has no index.json entry to carry it) still knows it.
 */
export const ANNOTATION_PLATFORM = "vnd.ocipkg.platform";
/** Annotation holding the creation time. */
export const ANNOTATION_CREATED = "org.opencontainers.image.created";
/** The title annotation a file layer carries (its base name). */
export const ANNOTATION_TITLE = "org.opencontainers.image.title";
/** Annotation holding the version of the packaged software. */
export const ANNOTATION_VERSION = "org.opencontainers.image.version";
/** Annotation holding a human-readable description of the packaged software. */
export const ANNOTATION_DESCRIPTION = "org.opencontainers.image.description";

/** Media types that are manifests (point at a config and layers). */
export const MANIFEST_TYPES: readonly string[] = [OCI_MANIFEST, DOCKER_MANIFEST];
/** Media types that are indexes (point at manifests). */
export const INDEX_TYPES: readonly string[] = [OCI_INDEX, DOCKER_MANIFEST_LIST];

/**
 * How a layer's bytes are compressed, judged by its media type.
 *
 * @param mediaType a layer media type
 * @returns "gzip", "zstd", "none", or undefined when it is not a tar layer
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layerCompression, OCI_LAYER_TAR_ZSTD, OCIPKG_LAYER } from "./media_types.ts";
 * assert.equal(layerCompression(OCIPKG_LAYER), "gzip");
 * assert.equal(layerCompression(OCI_LAYER_TAR_ZSTD), "zstd");
 * assert.equal(layerCompression("application/octet-stream"), undefined);
 * ```
 */
export function layerCompression(mediaType: string): "gzip" | "zstd" | "none" | undefined {
  if (mediaType === OCIPKG_LAYER || mediaType === DOCKER_LAYER_GZIP) return "gzip";
  if (/\.tar\+gzip$|\.tar\.gzip$/.test(mediaType)) return "gzip";
  if (/\.tar\+zstd$/.test(mediaType)) return "zstd";
  if (/\.tar$/.test(mediaType) || mediaType === "application/vnd.docker.image.rootfs.diff.tar") {
    return "none";
  }
  return undefined;
}
