/**
 * Signing an image in the Sigstore bundle format, as `cosign sign --key` and
 * `cosign attest --key` (v3) write it: an in-toto statement whose subject is
 * the image's manifest digest, in a DSSE envelope signed with the key, in a
 * v0.3 bundle (`application/vnd.dev.sigstore.bundle.v0.3+json`) — attached
 * to the image as an OCI 1.1 referrer laid out as cosign's
 * specs/BUNDLE_SPEC.md says:
 *
 * | field          | value                                                       |
 * | -------------- | ----------------------------------------------------------- |
 * | `artifactType` | `application/vnd.dev.sigstore.bundle.v0.3+json`             |
 * | `config`       | the empty descriptor (`application/vnd.oci.empty.v1+json`)  |
 * | `layers`       | one: the bundle JSON, media type the bundle's               |
 * | `subject`      | the image's manifest                                        |
 * | `annotations`  | `dev.sigstore.bundle.content: dsse-envelope`, `dev.sigstore.bundle.predicateType`, `org.opencontainers.image.created` |
 *
 * The bundle has no transparency-log entry and no timestamp: ocipkg signs
 * offline. It verifies with the key (the key is the trust); `cosign verify
 * --key` verifies it with `--insecure-ignore-tlog=true`.
 *
 * @module
 */
import type { KeyObject } from "node:crypto";
import { UsageError } from "../util/errors.ts";
import { nodeCrypto } from "../util/lazy_node.ts";
import { toBase64 } from "../util/text.ts";
import { parseDigest } from "../oci/digest.ts";
import { type Descriptor, type Manifest, stripUndefined } from "../oci/manifest.ts";
import { OCI_EMPTY, OCI_MANIFEST } from "../oci/media_types.ts";
import { pushReferrer } from "../transport/referrers.ts";
import { pushBytes, type Target } from "../transport/target.ts";
import { BUNDLE_V03_MEDIA_TYPE } from "./bundle.ts";
import { BUNDLE_CONTENT_ANNOTATION, BUNDLE_PREDICATE_TYPE_ANNOTATION } from "./image_bundle.ts";
import { signPayload } from "./signature.ts";
import { COSIGN_SIGN_PREDICATE_TYPE, IN_TOTO_PAYLOAD_TYPE } from "./statement.ts";

/** A bundle larger than this is not attached (a registry's manifest-sized fetch cap: 4 MiB). */
export const MAX_ATTACHED_BUNDLE = 4 << 20;

/** Options of {@link signImageBundle}. */
export interface SignImageBundleOptions {
  /** The statement's predicate type; default cosign v3's signature, `https://sigstore.dev/cosign/sign/v1`. */
  predicateType?: string;
  /** The predicate (an attestation's content); default `{}`. */
  predicate?: unknown;
  /** The subject's name (cosign's `attest` names the repository); default none. */
  subjectName?: string;
  /** Annotations of the subject (`sign -a k=v`, as cosign v3 writes them). */
  annotations?: Record<string, string>;
  /** Whether the target has the referrers API (else the `sha256-<hex>` index is written); default: asked. */
  referrersApi?: boolean;
  /** The fallback index's reference; default `sha256-<hex>`. */
  fallbackTag?: string;
  /** The `org.opencontainers.image.created` time; default now. */
  created?: Date;
}

/** What {@link signImageBundle} wrote. */
export interface BundleSignResult {
  /** Always `bundle`. */
  mode: "bundle";
  /** The referrer manifest. */
  manifest: Descriptor;
  /** The bundle blob (its one layer). */
  bundle: Descriptor;
  /** The fallback index's tag, when written (no referrers API). */
  tag?: string;
  /** The statement's predicate type. */
  predicateType: string;
  /** The fallback index already listed it. */
  existed: boolean;
}

/** DSSE's pre-authentication encoding: what the signature covers. */
function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const enc = new TextEncoder();
  const type = enc.encode(payloadType);
  const head = enc.encode(`DSSEv1 ${type.byteLength} ${payloadType} ${payload.byteLength} `);
  const out = new Uint8Array(head.byteLength + payload.byteLength);
  out.set(head);
  out.set(payload, head.byteLength);
  return out;
}

/**
 * A v0.3 Sigstore bundle of `statement`, signed with `key` in a DSSE
 * envelope; its verification material the key's hint (the base64 SHA-256 of
 * its SubjectPublicKeyInfo), no log entry, no timestamp.
 *
 * @param statement the in-toto statement's bytes
 * @param key the private key
 * @returns the bundle document
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateSigningKeyPair } from "@ocipkg/cli/sign";
 * import { dsseBundle } from "./bundle_sign.ts";
 * const b = dsseBundle(new TextEncoder().encode("{}"), generateSigningKeyPair().privateKey);
 * assert.equal(b.mediaType, "application/vnd.dev.sigstore.bundle.v0.3+json");
 * ```
 */
export function dsseBundle(statement: Uint8Array, key: KeyObject): Record<string, unknown> {
  const crypto = nodeCrypto();
  const spki = crypto.createPublicKey(key).export({ type: "spki", format: "der" });
  const hint = toBase64(new Uint8Array(crypto.createHash("sha256").update(spki).digest()));
  return {
    mediaType: BUNDLE_V03_MEDIA_TYPE,
    verificationMaterial: { publicKey: { hint }, tlogEntries: [] },
    dsseEnvelope: {
      payload: toBase64(statement),
      payloadType: IN_TOTO_PAYLOAD_TYPE,
      signatures: [{ sig: signPayload(key, pae(IN_TOTO_PAYLOAD_TYPE, statement)), keyid: "" }],
    },
  };
}

/**
 * Sign the image `subject` in `target` with `key` as a Sigstore bundle and
 * attach it as a referrer (see the module doc for the layout): a signature
 * (cosign v3's `sign`, the default predicate type) or an attestation (a
 * predicate type and predicate, cosign's `attest`).
 *
 * @param target where the image is (a registry repository or a layout)
 * @param subject the image's manifest
 * @param key the private key
 * @param options the statement's predicate type and predicate, subject annotations
 * @returns what was written
 * @throws {UsageError} when the bundle would be over {@link MAX_ATTACHED_BUNDLE}
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * import { encodePublicKey, generateSigningKeyPair, signImageBundle, verifyImageBundles } from "@ocipkg/cli/sign";
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const image = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * const signer = generateSigningKeyPair();
 * const r = await signImageBundle(t, image, signer.privateKey);
 * assert.equal(r.tag, `sha256-${image.digest.slice(7)}`); // a layout: the fallback index
 * const [ok] = await verifyImageBundles(t, image, [{ key: encodePublicKey(signer.publicKey) }], { kind: "signature" });
 * assert.equal(ok?.predicateType, "https://sigstore.dev/cosign/sign/v1");
 * ```
 */
export async function signImageBundle(
  target: Target,
  subject: Descriptor,
  key: KeyObject,
  options: SignImageBundleOptions = {},
): Promise<BundleSignResult> {
  const predicateType = options.predicateType ?? COSIGN_SIGN_PREDICATE_TYPE;
  const { algorithm, hex } = parseDigest(subject.digest);
  const annotations = options.annotations && Object.keys(options.annotations).length > 0
    ? options.annotations
    : undefined;
  const statement = new TextEncoder().encode(JSON.stringify({
    _type: "https://in-toto.io/Statement/v1",
    subject: [
      stripUndefined({ name: options.subjectName, digest: { [algorithm]: hex }, annotations }),
    ],
    predicateType,
    predicate: options.predicate ?? {},
  }));
  const bundleBytes = new TextEncoder().encode(JSON.stringify(dsseBundle(statement, key)));
  if (bundleBytes.byteLength > MAX_ATTACHED_BUNDLE) {
    throw new UsageError(
      `the bundle would be ${bundleBytes.byteLength} bytes, over the ${MAX_ATTACHED_BUNDLE}-byte ` +
        `cap a registry's manifest-sized reads allow: give a smaller predicate`,
    );
  }
  const bundle = await pushBytes(target, BUNDLE_V03_MEDIA_TYPE, bundleBytes);
  const config = await pushBytes(target, OCI_EMPTY, new TextEncoder().encode("{}"));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: BUNDLE_V03_MEDIA_TYPE,
    config,
    layers: [bundle],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: {
      [BUNDLE_CONTENT_ANNOTATION]: "dsse-envelope",
      [BUNDLE_PREDICATE_TYPE_ANNOTATION]: predicateType,
      "org.opencontainers.image.created": (options.created ?? new Date()).toISOString(),
    },
  };
  const pushed = await pushReferrer(target, manifest, {
    referrersApi: options.referrersApi,
    fallbackTag: options.fallbackTag,
  });
  return {
    mode: "bundle",
    manifest: pushed.manifest,
    bundle,
    ...(pushed.fallbackTag ? { tag: pushed.fallbackTag } : {}),
    predicateType,
    existed: pushed.existed,
  };
}
