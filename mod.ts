/**
 * ocipkg — distribute compiled binaries (static and shared libraries,
 * executables, any files) through OCI registries, without docker.
 *
 * The library owns all behaviour; the `ocipkg` CLI is a thin layer over it.
 * This module holds what a library user needs: pack and compose, push, pull
 * and copy, get, load and link, inspect, tag and resolve, sign and verify,
 * serve; the store they install into; the `Target` interface and its
 * implementations; image names and locations; raw manifests, blobs and
 * deletes for managing a registry; the errors. The building
 * blocks are subpath modules, one per layer of the library:
 *
 * - `@ocipkg/cli/oci` — digests and the verifier, media types, manifests, platforms
 * - `@ocipkg/cli/archive` — the extractor and its limits
 * - `@ocipkg/cli/transport` — the copy routine, blobs, referrers, the registry client
 * - `@ocipkg/cli/sign` — keys, payloads, signatures, the verify policy
 * - `@ocipkg/cli/native` — libraries, build-system files, FFI, Cargo, runnables
 * - `@ocipkg/cli/cli` — the command line itself (`main`)
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
// Image names and locations: the one resolver
export { canonicalRegistry, DEFAULT_HOST, ImageName, imageName } from "./lib/oci/reference.ts";
export {
  createLocation,
  type LayoutLocation,
  type Location,
  type OpenedImage,
  openImage,
  openLocation,
  type RegistryLocation,
  type RemoteOptions,
  resolveLocation,
  type ResolveOptions,
  toLocation,
} from "./lib/transport/location.ts";

// Where images live: the Target interface and its implementations
export {
  type BlobSpec,
  type FetchOptions,
  type ListableTarget,
  type PushOptions,
  type ReadTarget,
  type TagOptions,
  type Target,
} from "./lib/transport/target.ts";
export { OciDir, type OciDirOptions } from "./lib/transport/layout/oci_dir.ts";
export { OciArchive, type OciArchiveOptions } from "./lib/transport/layout/oci_archive.ts";
export { MemoryTarget } from "./lib/transport/layout/memory.ts";
export { openRepository, RegistryTarget } from "./lib/transport/registry/target.ts";
export { type RegistryTargetOptions } from "./lib/transport/registry/repository.ts";

// Packages: pack/compose, push/pull/copy, get/load/link, inspect, tag/resolve
export {
  type ArtifactOptions,
  composeFiles,
  type Compression,
  packDirectory,
  type PackOptions,
  type PackResult,
} from "./lib/ops/artifact.ts";
export {
  type AttachedOptions,
  copyImage,
  type CopySides,
  pullImage,
  pushImage,
} from "./lib/ops/transfer.ts";
export { getImage, installedImageDir } from "./lib/ops/install.ts";
export {
  type GetOptions,
  type GetResult,
  loadImage,
  type LoadOptions,
} from "./lib/ops/install_from.ts";
export {
  type LinkedLibrary,
  type LinkOptions,
  linkPackage,
  type LinkResult,
} from "./lib/native/link.ts";
export {
  type ImageInfo,
  inspectAny,
  inspectImage,
  type InspectOptions,
  type LayerInfo,
  type ManifestInfo,
} from "./lib/ops/inspect.ts";
export { resolveImage, tagImage } from "./lib/ops/tagging.ts";

// A project's lock: `ocipkg.lock` pins each tag it uses to a digest
export {
  checkLock,
  type CheckLockOptions,
  type CheckLockResult,
  type LockChange,
  lockImages,
  type LockImagesOptions,
  type LockImagesResult,
  type LockMismatch,
} from "./lib/ops/lock_images.ts";
export { type LockOptions } from "./lib/ops/lock.ts";
export {
  findLockFile,
  type LockedImage,
  type LockFile,
  readLockFile,
} from "./lib/store/lock_file.ts";

// Managing a registry by hand: content as stored, deleting
export {
  fetchManifest,
  putManifest,
  type PutManifestOptions,
  type RawManifest,
  saveBlob,
} from "./lib/ops/raw.ts";
export { deleteImage, type DeleteOptions, type DeleteResult } from "./lib/ops/deletion.ts";

// The local store that get, load and link install into
export { dataDir } from "./lib/store/paths.ts";
export {
  type EntryUsage,
  type InstallOptions,
  type InstallResult,
  type PrunedItem,
  type PruneOptions,
  type PruneResult,
  Store,
  type StoreEntry,
  type StoreUsage,
} from "./lib/store/store.ts";

// Signing: keys, sign, verify
export {
  generateKeyFiles,
  type KeyFilesOptions,
  signReference,
  type SignReferenceOptions,
  type VerifiedImage,
  verifyReference,
  type VerifyReferenceOptions,
} from "./lib/sign/flow.ts";
export { type VerifiedBlob, verifyBlob, type VerifyBlobOptions } from "./lib/sign/blob.ts";
export {
  attestReference,
  type AttestReferenceOptions,
  type VerifyAttestationOptions,
  verifyAttestationReference,
} from "./lib/sign/attest.ts";

// An embedded registry: `ocipkg serve`
export { exportRoot, serve, type ServeHandle, type ServeOptions } from "./lib/serve/server.ts";
export { SERVE_DEFAULTS } from "./lib/serve/defaults.ts";

// Errors
export {
  ArchiveError,
  FormatError,
  NotFoundError,
  OcipkgError,
  ResourceError,
  UsageError,
  VerificationError,
} from "./lib/util/errors.ts";
export { AuthError, RegistryError } from "./lib/transport/registry/errors.ts";
export { RegistryTimeoutError, type TimeoutKind } from "./lib/transport/registry/http.ts";
export { TransferLostError } from "./lib/transport/target.ts";
export { KeyError } from "./lib/sign/pem.ts";
export { SignatureError, type SignatureFailure } from "./lib/sign/image.ts";
