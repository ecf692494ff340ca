/**
 * `@ocipkg/cli/oci` — the formats: the grammar of tags and repository names,
 * digests and the one streaming verifier, media types, manifests and
 * indexes, platforms, and the platform of a binary read from its header.
 * Image names themselves (`ImageName`) are in the main module.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestOf, formatPlatform, isDigest, parsePlatform } from "@ocipkg/cli/oci";
 * const digest = digestOf(new TextEncoder().encode("hello"));
 * assert.ok(isDigest(digest));
 * assert.equal(formatPlatform(parsePlatform("linux/arm64")), "linux/arm64");
 * ```
 *
 * @module
 */
export { isRepositoryName, isTag } from "./reference.ts";
export {
  type DigestAlgorithm,
  digestBytes,
  digestOf,
  type Expected,
  isDigest,
  type Measured,
  type ParsedDigest,
  parseDigest,
  Verifier,
  type VerifierOptions,
  verifyBytes,
  VerifyingStream,
} from "./digest.ts";
export {
  ANNOTATION_REF_NAME,
  ANNOTATION_TITLE,
  OCI_INDEX,
  OCI_LAYER_TAR,
  OCI_LAYER_TAR_GZIP,
  OCI_LAYER_TAR_ZSTD,
  OCI_MANIFEST,
  OCIPKG_ARTIFACT,
  OCIPKG_CONFIG,
  OCIPKG_LAYER,
} from "./media_types.ts";
export {
  type Descriptor,
  encodeJson,
  type Index,
  type Manifest,
  type ManifestDocument,
  parseManifestDocument,
  type Platform,
  validateDescriptor,
} from "./manifest.ts";
export { formatPlatform, hostPlatform, parsePlatform, platformMatches } from "./platform.ts";
export { type BinaryInfo, readBinaryInfo } from "./binary_platform.ts";
