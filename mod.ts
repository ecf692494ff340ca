/**
 * ocipkg — distribute compiled binaries (static and shared libraries,
 * executables, any files) through OCI registries, without docker.
 *
 * The library owns all behaviour; the `ocipkg` CLI is a thin layer over it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadImage, packDirectory, Store } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/libfoo.a`, "!<arch>\n");
 * // pack a directory into an oci-archive, then install it into a store
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1.0" });
 * const r = await loadImage(`${tmp}/foo.tar`, { store: new Store(`${tmp}/store`) });
 * assert.equal(r.status, "installed");
 * assert.equal(await Deno.readTextFile(`${r.dir}/libfoo.a`), "!<arch>\n");
 * await Deno.remove(tmp, { recursive: true });
 * ```
 *
 * @module
 */
// Image names, digests, media types, OCI structures, platforms
export {
  canonicalRegistry,
  DEFAULT_HOST,
  ImageName,
  imageName,
  isRepositoryName,
  isTag,
} from "./lib/oci/reference.ts";
export {
  type DigestAlgorithm,
  digestOf,
  type Expected,
  isDigest,
  type Measured,
  type ParsedDigest,
  parseDigest,
  Verifier,
  type VerifierOptions,
  VerifyingStream,
  vouch,
  vouchedFor,
} from "./lib/oci/digest.ts";
export {
  ANNOTATION_REF_NAME,
  OCI_INDEX,
  OCI_LAYER_TAR,
  OCI_LAYER_TAR_GZIP,
  OCI_LAYER_TAR_ZSTD,
  OCI_MANIFEST,
  OCIPKG_ARTIFACT,
  OCIPKG_CONFIG,
  OCIPKG_LAYER,
} from "./lib/oci/media_types.ts";
export {
  type Descriptor,
  encodeJson,
  type Index,
  type Manifest,
  type ManifestDocument,
  parseManifestDocument,
  type Platform,
  validateDescriptor,
} from "./lib/oci/manifest.ts";
export {
  formatPlatform,
  hostPlatform,
  parsePlatform,
  platformMatches,
} from "./lib/oci/platform.ts";

// Where images live: the one resolver, targets, the one copy routine
export {
  createLocation,
  type LayoutLocation,
  type Location,
  type OpenedImage,
  openImage,
  openLocation,
  openRepository,
  type RegistryLocation,
  type RemoteOptions,
  resolveLocation,
  type ResolveOptions,
  toLocation,
} from "./lib/transport/location.ts";
export {
  type BlobSpec,
  bytesStream,
  fetchBytes,
  type ListableTarget,
  pushBytes,
  type ReadTarget,
  type Target,
  withTarget,
} from "./lib/transport/target.ts";
export { OciDir, type OciDirOptions } from "./lib/transport/layout/oci_dir.ts";
export { OciArchive, type OciArchiveOptions } from "./lib/transport/layout/oci_archive.ts";
export { MemoryTarget } from "./lib/transport/layout/memory.ts";
export { RegistryTarget, type RegistryTargetOptions } from "./lib/transport/registry/target.ts";
export {
  type ClientOptions,
  DEFAULT_TIMEOUTS,
  RegistryClient,
  type RegistryRequest,
  type RetryInfo,
} from "./lib/transport/registry/client.ts";
export { type Credential } from "./lib/transport/registry/credentials.ts";
export { copy, type CopyEvent, copyGraph, type CopyOptions } from "./lib/transport/copy.ts";

// Packages: pack, push, get, pull, copy, tags, inspect, login
export {
  type ArtifactOptions,
  composeFiles,
  type Compression,
  packDirectory,
  type PackOptions,
  type PackResult,
} from "./lib/ops/artifact.ts";
export { type AttachedOptions, copyImage, pullImage, pushImage } from "./lib/ops/transfer.ts";
export { getImage, type GetOptions, loadImage, type LoadOptions } from "./lib/ops/install.ts";
export { listTagPages, listTags } from "./lib/transport/registry/tags.ts";
export { login, logout } from "./lib/transport/registry/login.ts";
export {
  type ImageInfo,
  inspectAny,
  inspectImage,
  type InspectOptions,
  type LayerInfo,
  type ManifestInfo,
} from "./lib/ops/inspect.ts";
export { tagVariant } from "./lib/transport/variants.ts";

// The local store and safe extraction
export { dataDir, LAYOUT_DIR } from "./lib/store/paths.ts";
export {
  type InstallOptions,
  type InstallResult,
  Store,
  type StoreEntry,
} from "./lib/store/store.ts";
export {
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_ENTRIES,
  DEFAULT_MAX_RATIO,
  ExtractBudget,
  type ExtractLimits,
} from "./lib/archive/budget.ts";
export {
  checkLinks,
  extractLayer,
  type ExtractOptions,
  type ExtractResult,
} from "./lib/archive/extract.ts";

// Native builds: link, Cargo, runnable images, FFI
export {
  type LinkedLibrary,
  type LinkOptions,
  linkPackage,
  type LinkResult,
} from "./lib/native/link.ts";
export { cargoLinkLines } from "./lib/native/link_cargo.ts";
export { type ConfigOptions } from "./lib/native/link_config.ts";
export { writePkgConfig } from "./lib/native/link_pkgconfig.ts";
export { writeCmakeConfig } from "./lib/native/link_cmake.ts";
export {
  findLibraries,
  type Library,
  type LibraryFile,
  type LinkKind,
  type PackageContents,
  type SkippedFile,
} from "./lib/native/libraries.ts";
export { libraryPath, openLibrary } from "./lib/native/ffi.ts";
export {
  cargoBuild,
  type CargoBuildResult,
  type CargoOptions,
  cargoPublish,
  installCargoShim,
} from "./lib/native/cargo.ts";
export {
  buildRunnable,
  type ImageConfig,
  type RunnableOptions,
  type RunnableResult,
} from "./lib/native/runnable.ts";
export { type BinaryInfo, readBinaryInfo } from "./lib/oci/binary_platform.ts";
export { resolveImage, tagImage } from "./lib/ops/tagging.ts";
export { installLauncher, type LauncherTarget } from "./lib/native/launcher.ts";

// An embedded registry: `ocipkg serve`
export { serve, type ServeHandle, type ServeOptions } from "./lib/serve/server.ts";

// Referrers (OCI 1.1): attach artifacts to an image, list them
export {
  ANNOTATION_TITLE,
  attachArtifact,
  type AttachedFile,
  type AttachOptions,
  copyReferrers,
  type CopyReferrersOptions,
  type DiscoverOptions,
  discoverReferrers,
  listReferrers,
  type ListReferrersOptions,
  type PushedReferrer,
  pushReferrer,
  type PushReferrerOptions,
  type ReferrerList,
  type ReferrerNode,
  type ReferrersApi,
  referrersTag,
} from "./lib/transport/referrers.ts";

// Signing: cosign-compatible keys, keyed signatures, verification
export {
  encodePublicKey,
  type EncryptOptions,
  encryptPrivateKey,
  generateSigningKeyPair,
  KeyError,
  keyFingerprint,
  type KeyPair,
  type PasswordSource,
  type PublicKeyFile,
  type ReadKeyOptions,
  readPrivateKey,
  readPublicKey,
} from "./lib/sign/keys.ts";
export {
  buildPayload,
  COSIGN_SIGNATURE_TYPE,
  dockerReference,
  parsePayload,
  type SimpleSigningPayload,
} from "./lib/sign/payload.ts";
export {
  COSIGN_SIGNATURE_ARTIFACT_TYPE,
  SIGNATURE_ANNOTATION,
  signatureTag,
  signPayload,
  SIMPLE_SIGNING_MEDIA_TYPE,
  verifyPayload,
} from "./lib/sign/signature.ts";
export {
  findSignatureManifests,
  type FindSignaturesOptions,
  SignatureError,
  type SignatureFailure,
  type SignatureManifestRef,
  signImage,
  type SignImageOptions,
  type SignResult,
  type VerifiedSignature,
  verifySignatures,
  type VerifySignaturesOptions,
} from "./lib/sign/image.ts";
export {
  generateKeyFiles,
  type KeyFilesOptions,
  signReference,
  type SignReferenceOptions,
  type VerifiedImage,
  verifyReference,
  type VerifyReferenceOptions,
} from "./lib/sign/flow.ts";
export {
  configFile,
  enforceVerification,
  type VerifyPolicyOptions,
  type VerifyRequirement,
  verifyRequirements,
} from "./lib/sign/policy.ts";

// Errors and output
export {
  ArchiveError,
  FormatError,
  NotFoundError,
  OcipkgError,
  oneLine,
  ResourceError,
  systemReason,
  UsageError,
  VerificationError,
} from "./lib/util/errors.ts";
export { AuthError, RegistryError } from "./lib/transport/registry/errors.ts";
export { RegistryTimeoutError, type TimeoutKind } from "./lib/transport/registry/client.ts";
export { TransferLostError } from "./lib/transport/target.ts";
export { printable } from "./lib/util/text.ts";
