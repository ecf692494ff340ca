/**
 * `@ocipkg/cli/sign` — the pieces of cosign-compatible signing: key pairs
 * and their PEM files, simple-signing payloads, signatures and their tags,
 * signing and verifying images on any target, and the verify policy (which
 * images must be signed by which keys); Sigstore bundles (cosign v3's
 * keyless and keyed signatures) with their trusted roots and in-toto
 * statements, and `verifyBundle`, which checks one. `signReference`,
 * `verifyReference`, `verifyBlob` and `generateKeyFiles` — what the `sign`,
 * `verify`, `verify-blob` and `key` commands do — are in the main module,
 * with the errors `KeyError` and `SignatureError`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   encodePublicKey, generateSigningKeyPair, readPublicKey, signPayload, verifyPayload,
 * } from "@ocipkg/cli/sign";
 * const { privateKey, publicKey } = generateSigningKeyPair();
 * const payload = new TextEncoder().encode("hello");
 * const signature = signPayload(privateKey, payload);
 * const pub = readPublicKey(encodePublicKey(publicKey), "cosign.pub"); // as read from a file
 * assert.ok(verifyPayload(pub, payload, signature));
 * ```
 *
 * @module
 */
export {
  encodePublicKey,
  type EncryptOptions,
  encryptPrivateKey,
  generateSigningKeyPair,
  keyFingerprint,
  type KeyPair,
  type PasswordSource,
  type PublicKeyFile,
  type ReadKeyOptions,
  readPrivateKey,
  readPublicKey,
} from "./keys.ts";
export {
  buildPayload,
  COSIGN_SIGNATURE_TYPE,
  dockerReference,
  parsePayload,
  type SimpleSigningPayload,
} from "./payload.ts";
export {
  COSIGN_SIGNATURE_ARTIFACT_TYPE,
  SIGNATURE_ANNOTATION,
  signatureTag,
  signPayload,
  SIMPLE_SIGNING_MEDIA_TYPE,
  verifyPayload,
} from "./signature.ts";
export {
  findSignatureManifests,
  type FindSignaturesOptions,
  type SignatureManifestRef,
  signImage,
  type SignImageOptions,
  type SignResult,
  type VerifiedSignature,
  verifySignatures,
  type VerifySignaturesOptions,
} from "./image.ts";
export { type AttestationRequirement } from "./policy_rules.ts";
export { type VerifyPolicyOptions, type VerifyRequirement, verifyRequirements } from "./policy.ts";
export { enforceVerification } from "./enforce.ts";
export {
  BUNDLE_MEDIA_TYPES,
  BUNDLE_V03_MEDIA_TYPE,
  parseBundle,
  readBundle,
  type SigstoreBundle,
} from "./bundle.ts";
export {
  type BundleArtifact,
  type BundlePolicy,
  type KeyPolicy,
  type VerifiedBundle,
  type VerifiedLogEntry,
  type VerifiedTimestamp,
  verifyBundle,
  type VerifyBundleOptions,
} from "./bundle_verify.ts";
export { type BundleSigner, type IdentityPolicy } from "./signers.ts";
export {
  parseTrustedRoot,
  publicGoodTrustedRoot,
  readTrustedRoot,
  type TrustedRoot,
} from "./trusted_root.ts";
export {
  type BundleSignResult,
  signImageBundle,
  type SignImageBundleOptions,
} from "./bundle_sign.ts";
export {
  type BundlePurpose,
  type ImageBundleOptions,
  type VerifiedImageBundle,
  verifyImageBundles,
} from "./image_bundle.ts";
export {
  COSIGN_SIGN_PREDICATE_TYPE,
  findSubject,
  IN_TOTO_PAYLOAD_TYPE,
  type InTotoStatement,
  type InTotoSubject,
  parseStatement,
  PREDICATE_TYPES,
  predicateTypes,
} from "./statement.ts";
