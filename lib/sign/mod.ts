/**
 * `@ocipkg/cli/sign` — the pieces of cosign-compatible signing: key pairs
 * and their PEM files, simple-signing payloads, signatures and their tags,
 * signing and verifying images on any target, and the verify policy (which
 * images must be signed by which keys). `signReference`, `verifyReference`
 * and `generateKeyFiles` — what the `sign`, `verify` and `key` commands do —
 * are in the main module, with the errors `KeyError` and `SignatureError`.
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
export {
  enforceVerification,
  type VerifyPolicyOptions,
  type VerifyRequirement,
  verifyRequirements,
} from "./policy.ts";
