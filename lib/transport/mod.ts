/**
 * `@ocipkg/cli/transport` — moving images and bytes between the places they
 * live: the one copy routine between any two targets (`copy`, `copyGraph`),
 * single blobs (`pushBytes`, `fetchBytes`), a target's life (`withTarget`),
 * the variants of a multi-platform index (`tagVariant`), OCI 1.1 referrers
 * (attach, list, discover, copy), the registry client with its tags,
 * catalog, logins and timeouts, and ocipkg's config file (`configFile`, the
 * `registries` settings of a registry: `registrySettings`). The `Target` interface, its implementations and the
 * resolver of locations are in the main module.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget } from "@ocipkg/cli";
 * import { copyGraph, fetchBytes, pushBytes } from "@ocipkg/cli/transport";
 * const src = new MemoryTarget();
 * const blob = await pushBytes(src, "text/plain", new TextEncoder().encode("hello"));
 * const dst = new MemoryTarget();
 * await copyGraph(src, dst, blob);
 * assert.equal(new TextDecoder().decode(await fetchBytes(dst, blob, "blob")), "hello");
 * ```
 *
 * @module
 */
export { copy, type CopyEvent, copyGraph, type CopyOptions } from "./copy.ts";
export {
  DEFAULT_CONCURRENCY,
  DEFAULT_LARGE_TRANSFERS,
  DEFAULT_RANGE_PARTS,
  DEFAULT_RANGE_THRESHOLD,
  DEFAULT_TIMEOUTS,
  LARGE_BLOB,
} from "./defaults.ts";
export { fetchBytes, pushBytes, withTarget } from "./target.ts";
export { isStdio } from "./location.ts";
export { tagVariant } from "./variants.ts";
export {
  attachArtifact,
  type AttachedFile,
  type AttachOptions,
  copyReferrers,
  type CopyReferrersOptions,
  type DiscoverOptions,
  discoverReferrers,
  IncompleteReferrersError,
  listReferrers,
  type ListReferrersOptions,
  type PushedReferrer,
  pushReferrer,
  type PushReferrerOptions,
  type ReferrerList,
  type ReferrerNode,
  type ReferrersApi,
  referrersTag,
} from "./referrers.ts";
export { type ClientOptions, RegistryClient, type RegistryRequest } from "./registry/client.ts";
export { type OptionNames } from "./registry/scheme.ts";
export { configFile, type Mirror, type RegistrySettings, registrySettings } from "./config.ts";
export { DownloadStalls } from "./registry/http.ts";
export { type RetryInfo } from "./registry/retry.ts";
export { type Credential } from "./registry/credentials.ts";
export { listTagPages, listTags } from "./registry/tags.ts";
export { type CatalogOptions, listCatalog, listCatalogPages } from "./registry/catalog.ts";
export { login, logout } from "./registry/login.ts";
