/**
 * cosign's keyed signatures: signing and verifying a payload, and the
 * documents that carry signatures — the signature "image" under the tag
 * `sha256-<hex>.sig` and the OCI 1.1 referrer variant — laid out as
 * cosign (through go-containerregistry) writes them.
 *
 * @module
 */
import type { KeyObject } from "node:crypto";
import { parseDigest } from "../oci/digest.ts";
import { FormatError } from "../util/errors.ts";
import { nodeCrypto } from "../util/lazy_node.ts";
import { fromBase64, toBase64 } from "../util/text.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { OCI_CONFIG, OCI_MANIFEST } from "../oci/media_types.ts";
import { signatureAlgorithm } from "./keys.ts";

/** Media type of a signature layer: the simple-signing payload. */
export const SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json";
/** Layer annotation holding the base64 signature. */
export const SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";
/**
 * artifactType (and config media type) of cosign's OCI 1.1 signature
 * referrers (`cosign sign --registry-referrers-mode=oci-1-1`).
 */
export const COSIGN_SIGNATURE_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json";
/** cosign's cap on signature layers in one signature manifest. */
export const MAX_SIGNATURE_LAYERS = 1000;

/**
 * Sign a payload the way cosign does: ECDSA (DER/ASN.1 encoded) over the
 * SHA-256 of the payload for P-256 keys (SHA-384/512 for P-384/521;
 * RSA PKCS#1 v1.5 SHA-256).
 *
 * @param key the private key
 * @param payload the bytes to sign
 * @returns the signature, base64 (the annotation's value)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateSigningKeyPair, signPayload, verifyPayload } from "@ocipkg/cli/sign";
 * const { privateKey, publicKey } = generateSigningKeyPair();
 * const payload = new TextEncoder().encode("hello");
 * const sig = signPayload(privateKey, payload);
 * assert.ok(verifyPayload(publicKey, payload, sig));
 * assert.ok(!verifyPayload(publicKey, new TextEncoder().encode("hellO"), sig));
 * ```
 */
export function signPayload(key: KeyObject, payload: Uint8Array): string {
  const hash = signatureAlgorithm(key, "signing key");
  return toBase64(nodeCrypto().sign(hash, payload, { key, dsaEncoding: "der" }));
}

/**
 * Check a base64 signature over a payload with a public key (ECDSA signatures
 * DER-encoded, as cosign writes and requires).
 *
 * @param key the public key (a private key's public half is used)
 * @param payload the signed bytes
 * @param signature base64, as in the annotation
 * @returns whether it verifies; false for a malformed signature too
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateSigningKeyPair, signPayload, verifyPayload } from "@ocipkg/cli/sign";
 * const signer = generateSigningKeyPair();
 * const payload = new TextEncoder().encode("{}");
 * const sig = signPayload(signer.privateKey, payload);
 * assert.ok(verifyPayload(signer.publicKey, payload, sig));
 * assert.ok(!verifyPayload(generateSigningKeyPair().publicKey, payload, sig)); // another key
 * assert.ok(!verifyPayload(signer.publicKey, payload, "not base64!")); // malformed
 * ```
 */
export function verifyPayload(key: KeyObject, payload: Uint8Array, signature: string): boolean {
  const pub = key.type === "private" ? nodeCrypto().createPublicKey(key) : key;
  const raw = decodeSignature(signature);
  if (!raw) return false;
  try {
    return nodeCrypto().verify(signatureAlgorithm(pub, "public key"), payload, {
      key: pub,
      dsaEncoding: "der",
    }, raw);
  } catch {
    return false;
  }
}

/** A base64 signature's bytes, or undefined when it is not base64. */
export function decodeSignature(signature: string): Uint8Array | undefined {
  if (
    signature.length === 0 || signature.length > 8192 || signature.length % 4 !== 0 ||
    !/^[A-Za-z0-9+/]+={0,2}$/.test(signature)
  ) return undefined;
  return fromBase64(signature);
}

/**
 * The tag cosign stores signatures of `digest` under: `sha256-<hex>.sig`.
 *
 * @param digest the signed manifest's digest
 * @param suffix `sig` (signatures); cosign uses `att` and `sbom` for others
 * @returns the tag
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { signatureTag } from "@ocipkg/cli/sign";
 * assert.equal(signatureTag("sha256:" + "ab".repeat(32)), `sha256-${"ab".repeat(32)}.sig`);
 * ```
 */
export function signatureTag(digest: string, suffix = "sig"): string {
  const { algorithm, hex } = parseDigest(digest);
  return suffix ? `${algorithm}-${hex}.${suffix}` : `${algorithm}-${hex}`;
}

/** Go's zero `time.Time`, as go-containerregistry writes it. */
const ZERO_TIME = "0001-01-01T00:00:00Z";

/**
 * The config of a signature image as cosign writes it (go-containerregistry's
 * `ConfigFile` of an empty image with the payload layers appended, creation
 * time zero): one `rootfs.diff_ids` and one `history` entry per layer.
 *
 * @param payloadDigests the payload digests, in layer order
 * @returns the config bytes
 */
export function signatureConfig(payloadDigests: string[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({
    architecture: "",
    created: ZERO_TIME,
    history: payloadDigests.map(() => ({ created: ZERO_TIME })),
    os: "",
    rootfs: { type: "layers", diff_ids: payloadDigests },
    config: {},
  }));
}

/** A descriptor in go-containerregistry's field order (mediaType, size, digest, annotations). */
function goDescriptor(d: Descriptor): Descriptor {
  const out: Record<string, unknown> = { mediaType: d.mediaType, size: d.size, digest: d.digest };
  if (d.annotations && Object.keys(d.annotations).length) {
    out.annotations = Object.fromEntries(
      Object.entries(d.annotations).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
  }
  if (d.artifactType) out.artifactType = d.artifactType;
  return out as unknown as Descriptor;
}

/**
 * A signature layer's descriptor: the payload with its signature annotation.
 *
 * @param payload the payload blob's descriptor (digest, size)
 * @param signature base64 signature
 * @returns the layer descriptor
 */
export function signatureLayer(
  payload: { digest: string; size: number },
  signature: string,
): Descriptor {
  return {
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    size: payload.size,
    digest: payload.digest,
    annotations: { [SIGNATURE_ANNOTATION]: signature },
  };
}

/**
 * The signature manifest cosign puts under `sha256-<hex>.sig`, serialized as
 * go-containerregistry does (`schemaVersion`, `mediaType`, `config`,
 * `layers`, then `annotations`/`subject`/`artifactType` when present;
 * descriptors as `mediaType`, `size`, `digest`, `annotations`).
 *
 * @param config the config blob's descriptor
 * @param layers the signature layers (see {@link signatureLayer})
 * @param extra manifest annotations, subject and artifactType (referrer form)
 * @returns the manifest bytes
 */
export function signatureManifest(
  config: Descriptor,
  layers: Descriptor[],
  extra: { annotations?: Record<string, string>; subject?: Descriptor; artifactType?: string } = {},
): Uint8Array {
  const m: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: goDescriptor(config),
    layers: layers.map(goDescriptor),
  };
  if (extra.annotations && Object.keys(extra.annotations).length) {
    m.annotations = extra.annotations;
  }
  if (extra.subject) {
    const { mediaType, size, digest } = extra.subject;
    m.subject = { mediaType, size, digest };
  }
  if (extra.artifactType) m.artifactType = extra.artifactType;
  return new TextEncoder().encode(JSON.stringify(m));
}

/** The config media type of a tag-scheme signature image. */
export const SIGNATURE_CONFIG_MEDIA_TYPE = OCI_CONFIG;

/**
 * Read the `rootfs.diff_ids` of an existing signature image's config, to
 * append a layer to it.
 *
 * @param bytes the config
 * @param what names it in errors
 * @returns the config object (kept as written) and its diff_ids list
 * @throws {FormatError} when it is not an image config
 */
export function parseSignatureConfig(
  bytes: Uint8Array,
  what: string,
): { config: Record<string, unknown>; diffIds: string[]; history: unknown[] } {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new FormatError(`${what}: config is not valid JSON`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new FormatError(`${what}: config is not a JSON object`);
  }
  const config = v as Record<string, unknown>;
  const rootfs = config.rootfs as Record<string, unknown> | undefined;
  const diffIds = rootfs?.diff_ids ?? [];
  if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === "string")) {
    throw new FormatError(`${what}: config rootfs.diff_ids is not a list of digests`);
  }
  const history = config.history ?? [];
  if (!Array.isArray(history)) throw new FormatError(`${what}: config history is not a list`);
  return { config, diffIds: diffIds as string[], history };
}
