// What the tests reach beyond the public API (mod.ts and the subpath modules): every entry point,
// and internals of the modules under test.
export * from "../mod.ts";
export * from "../lib/oci/mod.ts";
export * from "../lib/archive/mod.ts";
export * from "../lib/transport/mod.ts";
export * from "../lib/sign/mod.ts";
export * from "../lib/native/mod.ts";
export { vouch, vouchedFor } from "../lib/oci/digest.ts";
export { bytesStream } from "../lib/transport/target.ts";
export { SoleImageError } from "../lib/transport/layout/index_file.ts";
export { LAYOUT_DIR } from "../lib/store/paths.ts";
export { oneLine, systemReason } from "../lib/util/errors.ts";
export { printable } from "../lib/util/text.ts";
export { readTar } from "../lib/archive/tar.ts";
export { StreamSource } from "../lib/archive/tar_source.ts";
export { decompress } from "../lib/archive/decompress.ts";
export { type TarEntryType } from "../lib/archive/tar_header.ts";
export { TAR_END, tarHeader, tarPadding } from "../lib/archive/tar_writer.ts";
export { RELEASE_MARGIN, teeBounded } from "../lib/util/tee.ts";
export { BodyChunks } from "../lib/util/body_chunks.ts";
export { openFileRange } from "../lib/util/files.ts";
export { buildArtifact, gzipStream, walkDirectory, zstdStream } from "../lib/ops/artifact.ts";
export { classifyLibrary } from "../lib/native/libraries.ts";
export { STAGE_DIR, stageSharedLibraries } from "../lib/native/link_stage.ts";
export { readSoname } from "../lib/native/soname.ts";
export { binaryInfo } from "../lib/oci/binary_platform.ts";
export {
  findCredential,
  registryOfKey,
  removeCredential,
  saveCredential,
} from "../lib/transport/registry/credentials.ts";
export { RegistryClient } from "../lib/transport/registry/client.ts";
export { isLoopbackHost, isRegistryHost } from "../lib/oci/reference.ts";
export { removeTempsSync } from "../lib/util/temp.ts";
export { OCI_EMPTY } from "../lib/oci/media_types.ts";
export { inspectLayout } from "../lib/ops/inspect.ts";
export { BackgroundDigester, OFF_THREAD_MIN } from "../lib/oci/digest.ts";
export { checkBinaryPlatforms, filePlatform } from "../lib/oci/binary_platform.ts";
export { defaultDigest, loadSigstore, withDefaultDigest } from "../lib/sign/sigstore_lib.ts";
export { VerifyBudget } from "../lib/sign/image.ts";
export { verifyImageBundlesWithin } from "../lib/sign/image_bundle.ts";
