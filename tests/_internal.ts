// What the tests reach beyond the public API (mod.ts): internals of the modules under test.
export * from "../mod.ts";
export {
  readTar,
  StreamSource,
  TAR_END,
  type TarEntryType,
  tarHeader,
  tarPadding,
} from "../lib/tar.ts";
export { teeBounded } from "../lib/tee.ts";
export { buildArtifact, gzipStream, walkDirectory, zstdStream } from "../lib/artifact.ts";
export { classifyLibrary } from "../lib/libraries.ts";
export { binaryInfo } from "../lib/binary_platform.ts";
export {
  findCredential,
  registryOfKey,
  removeCredential,
  saveCredential,
} from "../lib/registry/credentials.ts";
export { RegistryClient } from "../lib/registry/client.ts";
export { isLoopbackHost } from "../lib/reference.ts";
export { removeTempsSync } from "../lib/fs_util.ts";
export { OCI_EMPTY } from "../lib/media_types.ts";
export { inspectLayout } from "../lib/inspect.ts";
export { BackgroundDigester, OFF_THREAD_MIN } from "../lib/hash_worker.ts";
export { checkBinaryPlatforms, filePlatform } from "../lib/binary_platform.ts";
