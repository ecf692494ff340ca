/**
 * cosign's "simple signing" payload: the document a keyed cosign signature
 * signs, naming the repository and the manifest digest
 * (`github.com/sigstore/sigstore/pkg/signature/payload`).
 *
 * @module
 */
import { isDigest } from "../oci/digest.ts";
import { FormatError, UsageError } from "../util/errors.ts";
import { DEFAULT_HOST, type ImageName } from "../oci/reference.ts";

/** `critical.type` of a cosign image signature. */
export const COSIGN_SIGNATURE_TYPE = "cosign container image signature";

/**
 * The largest payload ocipkg reads or writes: 64 KiB (cosign's are a few
 * hundred bytes; SECURITY.md states the same number).
 */
export const MAX_PAYLOAD_SIZE = 64 * 1024;

/** A simple-signing payload, as cosign writes it. */
export interface SimpleSigningPayload {
  /** What the signature vouches for. */
  critical: {
    /** The claimed identity. */
    identity: {
      /** The repository (`host/path`), or what the signer claimed. */
      "docker-reference": string;
    };
    /** The signed manifest. */
    image: {
      /** Its digest. */
      "docker-manifest-digest": string;
    };
    /** Always {@link COSIGN_SIGNATURE_TYPE}. */
    type: string;
  };
  /** Signer's annotations (`cosign sign -a k=v`), or null. */
  optional: Record<string, unknown> | null;
}

/**
 * The repository name cosign writes in `docker-reference`: what
 * go-containerregistry's `Repository.Name()` gives — Docker Hub (any of its
 * names: the image name is canonical) as `index.docker.io`, with `library/`
 * for single names.
 *
 * @param name the image
 * @returns `host[:port]/path`, without tag or digest
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName } from "@ocipkg/cli";
 * import { dockerReference } from "@ocipkg/cli/sign";
 * assert.equal(dockerReference(ImageName.parse("ghcr.io/org/libfoo:1.0")), "ghcr.io/org/libfoo");
 * assert.equal(dockerReference(ImageName.parse("alpine")), "index.docker.io/library/alpine");
 * const hub = ImageName.parse("Registry-1.Docker.IO:443/library/alpine");
 * assert.equal(dockerReference(hub), "index.docker.io/library/alpine");
 * ```
 */
export function dockerReference(name: ImageName): string {
  const registry = name.hostname === DEFAULT_HOST && name.port === undefined
    ? "index.docker.io"
    : name.registry;
  return `${registry}/${name.name}`;
}

/** Go's encoding/json escapes these where JSON.stringify does not. */
function goJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * Build the payload cosign signs for `image@digest`, byte for byte as cosign
 * does: `critical` (identity, image, type) then `optional` (annotations with
 * keys sorted, or `null`), compact, with Go's HTML escaping.
 *
 * @param reference the `docker-reference` (see {@link dockerReference})
 * @param digest the manifest digest
 * @param annotations optional annotations (`cosign sign -a k=v`)
 * @returns the payload bytes
 * @throws {UsageError} for a bad digest or an annotation that is not well-formed text
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildPayload } from "@ocipkg/cli/sign";
 * const digest = "sha256:" + "a".repeat(64);
 * const bytes = buildPayload("ghcr.io/org/libfoo", digest, { b: "2", a: "1" });
 * assert.equal(
 *   new TextDecoder().decode(bytes),
 *   `{"critical":{"identity":{"docker-reference":"ghcr.io/org/libfoo"},` +
 *     `"image":{"docker-manifest-digest":"${digest}"},` +
 *     `"type":"cosign container image signature"},"optional":{"a":"1","b":"2"}}`,
 * );
 * ```
 */
export function buildPayload(
  reference: string,
  digest: string,
  annotations?: Record<string, string>,
): Uint8Array {
  if (!isDigest(digest)) throw new UsageError(`'${digest}' is not a digest`);
  let optional: Record<string, string> | null = null;
  if (annotations && Object.keys(annotations).length > 0) {
    optional = {};
    // Go marshals a map with its keys sorted by bytes
    for (const k of Object.keys(annotations).sort(compareBytes)) {
      const v = annotations[k]!;
      if (!k.isWellFormed() || typeof v !== "string" || !v.isWellFormed()) {
        throw new UsageError(`annotation '${k}' is not well-formed text`);
      }
      optional[k] = v;
    }
  }
  const payload: SimpleSigningPayload = {
    critical: {
      identity: { "docker-reference": reference },
      image: { "docker-manifest-digest": digest },
      type: COSIGN_SIGNATURE_TYPE,
    },
    optional,
  };
  return new TextEncoder().encode(goJson(payload));
}

function compareBytes(a: string, b: string): number {
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(ea.length, eb.length); i++) {
    if (ea[i] !== eb[i]) return ea[i]! - eb[i]!;
  }
  return ea.length - eb.length;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Parse and check a simple-signing payload (hostile input: size cap, UTF-8,
 * JSON object, every field's type, a valid digest).
 *
 * @param bytes the payload
 * @param what names it in errors
 * @returns the payload
 * @throws {FormatError} naming the field at fault
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FormatError } from "@ocipkg/cli";
 * import { buildPayload, parsePayload } from "@ocipkg/cli/sign";
 * const digest = "sha256:" + "b".repeat(64);
 * const p = parsePayload(buildPayload("example.com/foo", digest), "payload");
 * assert.equal(p.critical.image["docker-manifest-digest"], digest);
 * assert.equal(p.optional, null);
 * assert.throws(
 *   () => parsePayload(new TextEncoder().encode("[]"), "payload"),
 *   (e) => e instanceof FormatError && e.message === "payload: not a JSON object",
 * );
 * ```
 */
export function parsePayload(bytes: Uint8Array, what: string): SimpleSigningPayload {
  if (bytes.byteLength > MAX_PAYLOAD_SIZE) {
    throw new FormatError(`${what}: ${bytes.byteLength} bytes, over the ${MAX_PAYLOAD_SIZE} cap`);
  }
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new FormatError(`${what}: not valid JSON`);
  }
  if (!isObject(v)) throw new FormatError(`${what}: not a JSON object`);
  const c = v.critical;
  if (!isObject(c)) throw new FormatError(`${what}: 'critical' is not an object`);
  if (c.type !== COSIGN_SIGNATURE_TYPE) {
    throw new FormatError(`${what}: critical.type is not '${COSIGN_SIGNATURE_TYPE}'`);
  }
  const identity = c.identity;
  if (!isObject(identity) || typeof identity["docker-reference"] !== "string") {
    throw new FormatError(`${what}: critical.identity.docker-reference is not a string`);
  }
  const image = c.image;
  if (!isObject(image) || typeof image["docker-manifest-digest"] !== "string") {
    throw new FormatError(`${what}: critical.image.docker-manifest-digest is not a string`);
  }
  if (!isDigest(image["docker-manifest-digest"])) {
    throw new FormatError(`${what}: critical.image.docker-manifest-digest is not a digest`);
  }
  const optional = v.optional ?? null;
  if (optional !== null && !isObject(optional)) {
    throw new FormatError(`${what}: 'optional' is not an object`);
  }
  return v as unknown as SimpleSigningPayload;
}
