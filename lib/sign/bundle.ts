/**
 * Sigstore bundles as read from a file or a registry: the JSON document
 * (`application/vnd.dev.sigstore.bundle.v0.3+json` and its v0.1–v0.3
 * predecessors) holding a signature — over the artifact itself or a DSSE
 * envelope — with its certificate or key hint, its transparency-log entries
 * and its timestamps. Parsing here is cheap and checks only the outline; the
 * Sigstore libraries check every field when the bundle is verified
 * (`verifyBundle`). Every byte is hostile: nothing here trusts a length, a
 * type or a string of the document.
 *
 * @module
 */
import { OcipkgError } from "../util/errors.ts";
import { printable } from "../util/text.ts";
import { SignatureError } from "./image.ts";
import { readSmallFile } from "./pem.ts";

/** v0.1 bundles (Rekor inclusion promises only). */
export const BUNDLE_V01_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle+json;version=0.1";
/** v0.2 bundles (inclusion proofs with checkpoints). */
export const BUNDLE_V02_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle+json;version=0.2";
/** v0.3 bundles, the first spelling. */
export const BUNDLE_V03_LEGACY_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle+json;version=0.3";
/** v0.3 bundles: what cosign v3 writes, and the artifact type of a bundle referrer. */
export const BUNDLE_V03_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";

/** The bundle media types ocipkg verifies. */
export const BUNDLE_MEDIA_TYPES: readonly string[] = [
  BUNDLE_V01_MEDIA_TYPE,
  BUNDLE_V02_MEDIA_TYPE,
  BUNDLE_V03_LEGACY_MEDIA_TYPE,
  BUNDLE_V03_MEDIA_TYPE,
];

/** A bundle file larger than this is refused unread (a DSSE provenance is rarely over 1 MiB). */
export const MAX_BUNDLE = 16 << 20;

/** A parsed bundle: its outline checked, the rest left to the verifier. */
export interface SigstoreBundle {
  /** What it is, for messages: its path, or the manifest it came from. */
  readonly what: string;
  /** One of {@link BUNDLE_MEDIA_TYPES}. */
  readonly mediaType: string;
  /** What is signed: the artifact itself (`messageSignature`) or a DSSE envelope. */
  readonly content: "messageSignature" | "dsseEnvelope";
  /** What vouches for the signing key: a certificate (chain) or a public key hint. */
  readonly material: "certificate" | "x509CertificateChain" | "publicKey";
  /** The document (protobuf-JSON), as `@sigstore/bundle`'s `bundleFromJSON` takes it. */
  readonly json: Readonly<Record<string, unknown>>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function malformed(what: string, why: string): SignatureError {
  return new SignatureError("malformed", `bundle ${what} ${why}`);
}

/**
 * Parse a Sigstore bundle's JSON and check its outline: a known media type
 * (v0.1, v0.2, v0.3), exactly one of `messageSignature` and `dsseEnvelope`,
 * and verification material with a certificate, a chain or a public key.
 *
 * @param text the document
 * @param what names it in errors (its path)
 * @returns the bundle
 * @throws {SignatureError} (reason `malformed`) naming `what` and the fault
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseBundle } from "@ocipkg/cli/sign";
 * const b = parseBundle(JSON.stringify({
 *   mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
 *   verificationMaterial: { certificate: { rawBytes: "MIIB" }, tlogEntries: [] },
 *   messageSignature: { messageDigest: { algorithm: "SHA2_256", digest: "" }, signature: "" },
 * }), "b.json");
 * assert.equal(b.content, "messageSignature");
 * assert.equal(b.material, "certificate");
 * assert.throws(
 *   () => parseBundle('{"mediaType": "application/vnd.dev.sigstore.bundle+json;version=99.9"}', "b.json"),
 *   /^SignatureError: bundle b\.json has media type 'application\/vnd\.dev\.sigstore\.bundle\+json;version=99\.9', not one of v0\.1–v0\.3$/,
 * );
 * ```
 */
export function parseBundle(text: string, what: string): SigstoreBundle {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw malformed(what, "is not valid JSON");
  }
  if (!isObject(json)) throw malformed(what, "is not a JSON object");
  const mediaType = json.mediaType;
  if (typeof mediaType !== "string" || !BUNDLE_MEDIA_TYPES.includes(mediaType)) {
    throw malformed(
      what,
      typeof mediaType === "string"
        ? `has media type '${printable(mediaType).slice(0, 100)}', not one of v0.1–v0.3`
        : "has no media type",
    );
  }
  const contents = (["messageSignature", "dsseEnvelope"] as const).filter((k) => k in json);
  if (contents.length !== 1 || !isObject(json[contents[0]!])) {
    throw malformed(what, "must hold exactly one of messageSignature and dsseEnvelope");
  }
  const vm = json.verificationMaterial;
  if (!isObject(vm)) throw malformed(what, "has no verificationMaterial");
  const materials = (["certificate", "x509CertificateChain", "publicKey"] as const)
    .filter((k) => k in vm);
  if (materials.length !== 1 || !isObject(vm[materials[0]!])) {
    throw malformed(what, "must hold exactly one certificate, certificate chain or public key");
  }
  return { what, mediaType, content: contents[0]!, material: materials[0]!, json };
}

/**
 * Read a bundle file (`--bundle`): at most {@link MAX_BUNDLE} bytes, then
 * {@link parseBundle}.
 *
 * @param path the file
 * @returns the bundle
 * @throws {OcipkgError} naming the file when it is absent or too large
 * @throws {SignatureError} (reason `malformed`) when it is not a bundle
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readBundle } from "@ocipkg/cli/sign";
 * await assert.rejects(readBundle("/nonexistent/b.json"), /bundle \/nonexistent\/b\.json does not exist/);
 * ```
 */
export async function readBundle(path: string): Promise<SigstoreBundle> {
  const text = await readSmallFile(path, `bundle ${path}`, MAX_BUNDLE);
  if (text === undefined) throw new OcipkgError(`bundle ${path} does not exist`);
  return parseBundle(text, path);
}
