// A Sigstore bundle made here, with no network and nothing from ../shared: a file signed with a
// fresh ECDSA P-256 key (`cosign sign-blob --key` style), logged in a throwaway "Rekor" whose
// P-256 key signs the entry's signed entry timestamp (a v0.1 bundle), and the trusted root that
// names that log. Enough for verify-blob's keyed path end to end, and for the SET check, which
// `@sigstore/core` verifies without naming a digest (the Deno ECDSA fix).
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
} from "node:crypto";

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

/** What {@link keyedBundle} made. */
export interface KeyedBundle {
  /** The bundle document (v0.1, a message signature, a public-key hint). */
  bundle: Record<string, unknown>;
  /** A trusted root whose only log is the one that logged it. */
  trustedRoot: Record<string, unknown>;
  /** The signing key's public half, as `cosign.pub`. */
  publicKeyPem: string;
}

/**
 * Sign `artifact` and log it.
 * @param artifact the file's bytes
 * @param options a signing key to use (default a fresh one), the integrated time (default now)
 * @returns the bundle, the trusted root and the public key
 */
export function keyedBundle(
  artifact: Uint8Array,
  options: { signingKey?: KeyObject; integratedTime?: number } = {},
): KeyedBundle {
  const signingKey = options.signingKey ??
    generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  const log = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const logDer = new Uint8Array(log.publicKey.export({ type: "spki", format: "der" }));
  const logId = new Uint8Array(createHash("sha256").update(logDer).digest());
  const digest = new Uint8Array(createHash("sha256").update(artifact).digest());
  const signature = new Uint8Array(sign("sha256", artifact, signingKey));
  const publicKeyPem = createPublicKey(signingKey).export({ type: "spki", format: "pem" })
    .toString();
  const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const body = JSON.stringify({
    apiVersion: "0.0.1",
    kind: "hashedrekord",
    spec: {
      data: { hash: { algorithm: "sha256", value: hex(digest) } },
      signature: {
        content: b64(signature),
        publicKey: { content: b64(new TextEncoder().encode(publicKeyPem)) },
      },
    },
  });
  const canonicalizedBody = b64(new TextEncoder().encode(body));
  const integratedTime = options.integratedTime ?? Math.floor(Date.now() / 1000) - 60;
  const logIndex = 42;
  // Rekor's SET: the log's signature over the canonical JSON of these four (keys sorted)
  const payload = JSON.stringify({
    body: canonicalizedBody,
    integratedTime,
    logID: hex(logId),
    logIndex,
  });
  const set = new Uint8Array(sign("sha256", new TextEncoder().encode(payload), log.privateKey));
  const bundle = {
    mediaType: "application/vnd.dev.sigstore.bundle+json;version=0.1",
    verificationMaterial: {
      publicKey: { hint: "" },
      tlogEntries: [{
        logIndex: String(logIndex),
        logId: { keyId: b64(logId) },
        kindVersion: { kind: "hashedrekord", version: "0.0.1" },
        integratedTime: String(integratedTime),
        inclusionPromise: { signedEntryTimestamp: b64(set) },
        canonicalizedBody,
      }],
    },
    messageSignature: {
      messageDigest: { algorithm: "SHA2_256", digest: b64(digest) },
      signature: b64(signature),
    },
  };
  const trustedRoot = {
    mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    tlogs: [{
      baseUrl: "https://rekor.test.invalid",
      hashAlgorithm: "SHA2_256",
      publicKey: {
        rawBytes: b64(logDer),
        keyDetails: "PKIX_ECDSA_P256_SHA_256",
        validFor: { start: "2020-01-01T00:00:00Z" },
      },
      logId: { keyId: b64(logId) },
    }],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  };
  return { bundle, trustedRoot, publicKeyPem };
}
