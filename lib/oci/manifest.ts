/**
 * OCI structures (descriptor, manifest, index, platform) and their validation.
 *
 * @module
 */
import { FormatError } from "../util/errors.ts";
import { parseDigest } from "./digest.ts";
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  INDEX_TYPES,
  MANIFEST_TYPES,
  OCI_INDEX,
  OCI_MANIFEST,
} from "./media_types.ts";

/** The largest manifest, index or config ocipkg reads (4 MiB). */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

/** Platform of an image in an index. */
export interface Platform {
  /** CPU architecture, e.g. `amd64`, `arm64`. */
  architecture: string;
  /** Operating system, e.g. `linux`, `darwin`, `windows`. */
  os: string;
  /** OS version (Windows). */
  "os.version"?: string;
  /** OS features. */
  "os.features"?: string[];
  /** CPU variant, e.g. `v8`. */
  variant?: string;
}

/** A content descriptor: what a blob is, how large, and its digest. */
export interface Descriptor {
  /** Media type of the referenced content. */
  mediaType: string;
  /** Digest of the content. */
  digest: string;
  /** Size in bytes. */
  size: number;
  /** Free-form annotations. */
  annotations?: Record<string, string>;
  /** Platform (in an index). */
  platform?: Platform;
  /** Artifact type (in an index entry or referrers list). */
  artifactType?: string;
  /** Alternate download URLs (foreign layers); never followed. */
  urls?: string[];
  /** Embedded data (base64). */
  data?: string;
}

/** OCI image manifest (also Docker schema 2, which has the same shape). */
export interface Manifest {
  /** Always 2. */
  schemaVersion: 2;
  /** Manifest media type. */
  mediaType?: string;
  /** Artifact type (OCI 1.1). */
  artifactType?: string;
  /** Config blob. */
  config: Descriptor;
  /** Layer blobs. */
  layers: Descriptor[];
  /** Subject (referrers). */
  subject?: Descriptor;
  /** Annotations. */
  annotations?: Record<string, string>;
}

/** OCI image index (also Docker manifest list). */
export interface Index {
  /** Always 2. */
  schemaVersion: 2;
  /** Index media type. */
  mediaType?: string;
  /** Artifact type (OCI 1.1). */
  artifactType?: string;
  /** Child manifests. */
  manifests: Descriptor[];
  /** Subject. */
  subject?: Descriptor;
  /** Annotations. */
  annotations?: Record<string, string>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkAnnotations(v: unknown, where: string): void {
  if (v === undefined) return;
  if (!isObject(v) || !Object.values(v).every((x) => typeof x === "string")) {
    throw new FormatError(`${where}: annotations must map strings to strings`);
  }
}

/**
 * Validate a descriptor object.
 *
 * @param v parsed JSON
 * @param where names the document in errors
 * @returns the descriptor
 * @throws {FormatError} naming the field at fault
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FormatError } from "@ocipkg/cli";
 * import { validateDescriptor } from "@ocipkg/cli/oci";
 * const json = { mediaType: "text/plain", digest: "sha256:" + "0".repeat(64), size: 1 };
 * assert.equal(validateDescriptor(json, "layer").size, 1);
 * assert.throws(
 *   () => validateDescriptor({ ...json, size: -1 }, "layer"),
 *   (e) => e instanceof FormatError && /invalid size/.test(e.message),
 * );
 * ```
 */
export function validateDescriptor(v: unknown, where: string): Descriptor {
  if (!isObject(v)) throw new FormatError(`${where}: descriptor is not an object`);
  if (typeof v.mediaType !== "string" || !/^[\w.+-]+\/[\w.+-]+$/.test(v.mediaType)) {
    throw new FormatError(`${where}: descriptor has an invalid mediaType`);
  }
  if (typeof v.digest !== "string") throw new FormatError(`${where}: descriptor has no digest`);
  try {
    parseDigest(v.digest);
  } catch (e) {
    throw new FormatError(`${where}: ${(e as Error).message}`);
  }
  if (typeof v.size !== "number" || !Number.isSafeInteger(v.size) || v.size < 0) {
    throw new FormatError(`${where}: descriptor ${v.digest} has an invalid size`);
  }
  checkAnnotations(v.annotations, where);
  if (v.platform !== undefined) {
    const p = v.platform;
    if (!isObject(p) || typeof p.os !== "string" || typeof p.architecture !== "string") {
      throw new FormatError(`${where}: descriptor ${v.digest} has an invalid platform`);
    }
  }
  return v as unknown as Descriptor;
}

function parseJson(bytes: Uint8Array, where: string): Record<string, unknown> {
  if (bytes.byteLength > MAX_MANIFEST_SIZE) {
    throw new FormatError(`${where}: larger than ${MAX_MANIFEST_SIZE} bytes`);
  }
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new FormatError(`${where}: not valid JSON`);
  }
  if (!isObject(v)) throw new FormatError(`${where}: not a JSON object`);
  return v;
}

/** A parsed manifest or index, tagged by kind. */
export type ManifestDocument =
  | { kind: "manifest"; mediaType: string; manifest: Manifest }
  | { kind: "index"; mediaType: string; index: Index };

/**
 * Parse a manifest or index. The document's own `mediaType` must agree with
 * the descriptor's and with its content (a manifest has `config`/`layers`, an
 * index has `manifests`), which closes CVE-2021-41190.
 *
 * @param bytes the document
 * @param mediaType the media type it was served or referenced with
 * @param where names the document in errors (e.g. the digest and image)
 * @returns the parsed document
 * @throws {FormatError} when it is not a valid manifest or index
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FormatError } from "@ocipkg/cli";
 * import { encodeJson, OCI_INDEX, OCI_MANIFEST, parseManifestDocument } from "@ocipkg/cli/oci";
 * const bytes = encodeJson({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
 * const doc = parseManifestDocument(bytes, OCI_INDEX, "index of example.com/foo:1");
 * assert.equal(doc.kind, "index");
 * assert.deepEqual(doc.kind === "index" && doc.index.manifests, []);
 * // an index served as a manifest is refused (CVE-2021-41190)
 * assert.throws(() => parseManifestDocument(bytes, OCI_MANIFEST, "x"), FormatError);
 * ```
 */
export function parseManifestDocument(
  bytes: Uint8Array,
  mediaType: string,
  where: string,
): ManifestDocument {
  const v = parseJson(bytes, where);
  if (v.schemaVersion !== 2) throw new FormatError(`${where}: schemaVersion must be 2`);
  const declared = v.mediaType;
  if (declared !== undefined && declared !== mediaType) {
    throw new FormatError(
      `${where}: mediaType '${
        typeof declared === "string" ? declared : JSON.stringify(declared)
      }' disagrees with the descriptor's '${mediaType}'`,
    );
  }
  checkAnnotations(v.annotations, where);
  const hasManifests = "manifests" in v;
  const hasLayers = "layers" in v || "config" in v;
  if (INDEX_TYPES.includes(mediaType)) {
    if (hasLayers) throw new FormatError(`${where}: an index must not have config or layers`);
    if (!Array.isArray(v.manifests)) throw new FormatError(`${where}: index has no manifests list`);
    v.manifests.forEach((d, i) => validateDescriptor(d, `${where} manifests[${i}]`));
    if (v.subject !== undefined) validateDescriptor(v.subject, `${where} subject`);
    return { kind: "index", mediaType, index: v as unknown as Index };
  }
  if (MANIFEST_TYPES.includes(mediaType)) {
    if (hasManifests) throw new FormatError(`${where}: a manifest must not have manifests`);
    validateDescriptor(v.config, `${where} config`);
    if (!Array.isArray(v.layers)) throw new FormatError(`${where}: manifest has no layers list`);
    v.layers.forEach((d, i) => validateDescriptor(d, `${where} layers[${i}]`));
    if (v.subject !== undefined) validateDescriptor(v.subject, `${where} subject`);
    return { kind: "manifest", mediaType, manifest: v as unknown as Manifest };
  }
  throw new FormatError(`${where}: '${mediaType}' is not a manifest or index media type`);
}

/** Whether a media type is a manifest or an index. */
export function isManifestType(mediaType: string): boolean {
  return MANIFEST_TYPES.includes(mediaType) || INDEX_TYPES.includes(mediaType);
}

/** Whether a media type is an index (OCI index or Docker manifest list). */
export function isIndexType(mediaType: string): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST;
}

/** Whether a media type is an image manifest (OCI or Docker). */
export function isImageManifestType(mediaType: string): boolean {
  return mediaType === OCI_MANIFEST || mediaType === DOCKER_MANIFEST;
}

/**
 * Serialize a JSON document canonically enough for stable digests
 * (no whitespace, keys in insertion order).
 *
 * @param doc any JSON value
 * @returns UTF-8 bytes
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestOf, encodeJson } from "@ocipkg/cli/oci";
 * const bytes = encodeJson({ b: 1, a: [true] });
 * assert.equal(new TextDecoder().decode(bytes), '{"b":1,"a":[true]}');
 * assert.equal(digestOf(encodeJson({ b: 1, a: [true] })), digestOf(bytes)); // stable
 * ```
 */
export function encodeJson(doc: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(doc));
}

/**
 * Drop undefined optional fields so descriptors serialize cleanly.
 *
 * @param d an object with possibly-undefined optional fields
 * @returns a copy without them
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stripUndefined } from "./manifest.ts";
 * assert.deepEqual(stripUndefined({ a: undefined, b: 1 }), { b: 1 });
 * ```
 */
export function stripUndefined<T extends object>(d: T): T {
  return Object.fromEntries(Object.entries(d).filter(([, v]) => v !== undefined)) as T;
}
