/**
 * Verifying a Sigstore bundle, as the Sigstore client specification
 * prescribes — and as `cosign verify-blob` and `cosign verify` (v3) do: the
 * signature over the artifact (or over a DSSE envelope whose in-toto
 * statement names the artifact), the signing certificate's chain to a
 * trusted Fulcio CA and its validity at a verified time, its SCT, the Rekor
 * entry (v1 or v2) with its inclusion proof and signed checkpoint or its
 * signed entry timestamp, RFC 3161 timestamps from a trusted TSA — then the
 * policy: the certificate's identity and OIDC issuer, or the public key.
 *
 * The checks are `@sigstore/verify`'s (lib/sign/sigstore_lib.ts, loaded on
 * first use); the binding of the artifact to what was signed, the trusted
 * root's sanity and the policy are checked here.
 *
 * @module
 */
import { OcipkgError, UsageError } from "../util/errors.ts";
import { nodeBuffer, nodeCrypto } from "../util/lazy_node.ts";
import { printable, toBase64 } from "../util/text.ts";
import { digestOf, parseDigest } from "../oci/digest.ts";
import type { SigstoreBundle } from "./bundle.ts";
import { SignatureError, type SignatureFailure } from "./image.ts";
import { type PublicKeyFile, readPublicKey } from "./keys.ts";
import { keyFingerprint } from "./pem.ts";
import { loadSigstore, type SigstoreLib } from "./sigstore_lib.ts";
import {
  findSubject,
  IN_TOTO_PAYLOAD_TYPE,
  type InTotoStatement,
  type InTotoSubject,
  parseStatement,
} from "./statement.ts";
import { publicGoodTrustedRoot, type TrustedRoot } from "./trusted_root.ts";
import { type BundleSigner, identityMismatch, type IdentityPolicy } from "./signers.ts";

/**
 * What was signed: the artifact's bytes, or only its digest (`sha256:<hex>`;
 * with `sha512`, its SHA-512 digest too, for statements that name only that).
 */
export type BundleArtifact = Uint8Array | { digest: string; sha512?: string };

/** Verify with a public key (`cosign sign --key` bundles). */
export interface KeyPolicy {
  /** The key: a `PUBLIC KEY` PEM text, or a key file as ocipkg reads it. */
  key: string | PublicKeyFile;
}

/** Who must have signed: a key, or a certificate identity and issuer. */
export type BundlePolicy = KeyPolicy | IdentityPolicy;

/** Options of {@link verifyBundle}. */
export interface VerifyBundleOptions {
  /** The trusted root; default the Sigstore public-good root shipped with ocipkg. */
  trustedRoot?: TrustedRoot;
  /** Names the artifact in messages (e.g. its path); default `the artifact`. */
  artifactName?: string;
}

/** A verified time the signature existed at. */
export interface VerifiedTimestamp {
  /** From a Rekor entry's integrated time, or an RFC 3161 timestamp. */
  source: "transparency-log" | "timestamp-authority";
  /** The time. */
  time: Date;
}

/** A transparency-log entry of the bundle (all verified). */
export interface VerifiedLogEntry {
  /** The log's URL, from the trusted root (undefined when not listed there by log id). */
  log?: string;
  /** The entry's index in the log (a decimal string: it may exceed 2^53). */
  logIndex: string;
  /** The entry's kind and version, e.g. `hashedrekord 0.0.1`, `dsse 0.0.1`. */
  kind: string;
}

/** What {@link verifyBundle} verified. */
export interface VerifiedBundle {
  /** The bundle's media type. */
  mediaType: string;
  /** Who signed. */
  signer: BundleSigner;
  /** The artifact's digest the signature covers, `<algorithm>:<hex>`. */
  digest: string;
  /** For a DSSE bundle: the envelope's payload and the in-toto statement that names the artifact. */
  dsse?: {
    /** The payload type, `application/vnd.in-toto+json`. */
    payloadType: string;
    /** The signed payload. */
    payload: Uint8Array;
    /** The statement. */
    statement: InTotoStatement;
    /** The subject of the statement that is the artifact. */
    subject: InTotoSubject;
  };
  /** The verified times: at least one for a certificate; none for a key bundle without log entry or timestamp. */
  timestamps: VerifiedTimestamp[];
  /** The transparency-log entries. */
  tlogEntries: VerifiedLogEntry[];
}

/** The hash names of the protobuf `HashAlgorithm` enum, by its JSON name. */
const MESSAGE_DIGESTS: Record<string, "sha256" | "sha384" | "sha512"> = {
  SHA2_256: "sha256",
  SHA2_384: "sha384",
  SHA2_512: "sha512",
};

function isKeyPolicy(p: BundlePolicy): p is KeyPolicy {
  return "key" in p && p.key !== undefined;
}

/** The policy's key: a key file as read, or a PEM text read now. */
async function policyKey(
  k: string | PublicKeyFile,
): Promise<Omit<PublicKeyFile, "text" | "path"> & { path?: string }> {
  if (typeof k !== "string") return k;
  const what = "the policy's key";
  const key = readPublicKey(k, what);
  return { fingerprint: await keyFingerprint(k, what), key: () => key };
}

/** Check the policy's shape: a key, or one identity and one issuer criterion. */
function checkPolicy(policy: BundlePolicy): void {
  if (isKeyPolicy(policy)) {
    const p = policy as IdentityPolicy;
    if (p.identity ?? p.identityRegexp ?? p.issuer ?? p.issuerRegexp) {
      throw new UsageError("verify with a key or with a certificate identity, not both");
    }
    return;
  }
  const p = policy as IdentityPolicy;
  if ((p.identity === undefined) === (p.identityRegexp === undefined)) {
    throw new UsageError("give the certificate identity, exactly or as a regular expression");
  }
  if ((p.issuer === undefined) === (p.issuerRegexp === undefined)) {
    throw new UsageError("give the certificate's OIDC issuer, exactly or as a regular expression");
  }
}

/** One line from whatever the Sigstore libraries threw. */
function libReason(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return printable(message.split("\n")[0] ?? "").slice(0, 300);
}

function hexOf(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The digest of bytes by a message digest's algorithm. */
function hashOf(bytes: Uint8Array, algorithm: "sha256" | "sha384" | "sha512"): string {
  if (algorithm !== "sha384") return digestOf(bytes, algorithm);
  return `sha384:${nodeCrypto().createHash("sha384").update(bytes).digest("hex")}`;
}

/** The code of a `@sigstore/verify` error (`SIGNATURE_ERROR`, `TLOG_BODY_ERROR`…), else "". */
function failureCode(e: unknown): string {
  return e instanceof Error && "code" in e ? String(e.code) : "";
}

/** The verifier's failure codes, as {@link SignatureError} reasons. */
function failureOf(e: unknown): SignatureFailure {
  const code = failureCode(e);
  if (code === "SIGNATURE_ERROR" || code === "TLOG_BODY_ERROR") return "tampered";
  if (code === "UNTRUSTED_SIGNER_ERROR") return "wrong-key";
  if (code.endsWith("_ERROR")) return "untrusted";
  return "malformed";
}

/**
 * Verify a Sigstore bundle for an artifact under a policy: that the bundle
 * is well formed, that its signature verifies — over the artifact (a
 * message signature) or over a DSSE envelope whose in-toto statement has the
 * artifact as a subject — with a certificate that chains to the trusted
 * root's Fulcio CA, was valid at a verified time (Rekor's integrated time or
 * an RFC 3161 timestamp) and carries an SCT, or with the policy's key; that
 * its Rekor entries match it and are in the log (inclusion proof with a
 * signed checkpoint, or a signed entry timestamp); and that the signer is
 * the policy's identity and issuer, or key.
 *
 * A keyless bundle must have a log entry (or an RFC 3161 timestamp) to be
 * valid at a verified time. A bundle signed with a key needs neither: the
 * key is the trust, as with a legacy `.sig` signature (`cosign verify --key`
 * asks for `--insecure-ignore-tlog` there) — the log entries and timestamps it
 * does have are checked all the same.
 *
 * A message signature needs the artifact's bytes; a DSSE bundle is checked
 * against the bytes' digest or a given digest.
 *
 * @param bundle the bundle ({@link parseBundle})
 * @param artifact the signed artifact, or its digest
 * @param policy who must have signed
 * @param options the trusted root, how to name the artifact
 * @returns the signer, the artifact's digest, for DSSE the statement, the verified times
 * @throws {SignatureError} when it does not verify, with the reason: `malformed`
 *   (not a valid bundle), `other-digest` (it signs another artifact), `tampered` (the
 *   signature or log entry does not match), `untrusted` (certificate, log or timestamp
 *   not trusted by the root, or not valid at the signing time), `wrong-key` (another
 *   signer than the policy's)
 * @throws {UsageError} for a policy that is neither a key nor an identity and issuer
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SignatureError } from "@ocipkg/cli";
 * import { parseBundle, verifyBundle } from "@ocipkg/cli/sign";
 * // a v0.3 keyless bundle whose signature is cut: refused, and why
 * const bundle = parseBundle(JSON.stringify({
 *   mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
 *   verificationMaterial: { certificate: { rawBytes: "MIIB" }, tlogEntries: [] },
 *   messageSignature: { messageDigest: { algorithm: "SHA2_256", digest: "" }, signature: "" },
 * }), "b.json");
 * await assert.rejects(
 *   verifyBundle(bundle, new TextEncoder().encode("hello\n"), {
 *     identity: "https://github.com/org/repo/.github/workflows/release.yml@refs/tags/v1.2",
 *     issuer: "https://token.actions.githubusercontent.com",
 *   }),
 *   (e) => e instanceof SignatureError && e.reason === "malformed" && /^bundle b\.json is not a valid Sigstore bundle/.test(e.message),
 * );
 * ```
 */
export async function verifyBundle(
  bundle: SigstoreBundle,
  artifact: BundleArtifact,
  policy: BundlePolicy,
  options: VerifyBundleOptions = {},
): Promise<VerifiedBundle> {
  checkPolicy(policy);
  const what = `bundle ${bundle.what}`;
  const artifactName = options.artifactName ?? "the artifact";
  const lib = await loadSigstore();
  const root = options.trustedRoot ?? await publicGoodTrustedRoot();

  let parsed: ReturnType<SigstoreLib["bundle"]["bundleFromJSON"]>;
  try {
    parsed = lib.bundle.bundleFromJSON(bundle.json);
  } catch (e) {
    const fields = e instanceof lib.bundle.ValidationError ? ` (${e.fields.join(", ")})` : "";
    throw new SignatureError(
      "malformed",
      `${what} is not a valid Sigstore bundle: ${libReason(e)}${fields}`,
    );
  }
  const key = isKeyPolicy(policy) ? await policyKey(policy.key) : undefined;
  let trustMaterial: ReturnType<SigstoreLib["verify"]["toTrustMaterial"]>;
  try {
    const keyFinder = key ? () => ({ publicKey: key.key(), validFor: () => true }) : undefined;
    trustMaterial = lib.verify.toTrustMaterial(
      lib.specs.TrustedRoot.fromJSON(root.json),
      keyFinder,
    );
  } catch (e) {
    if (e instanceof OcipkgError) throw e;
    throw new OcipkgError(`trusted root ${root.what} is not valid: ${libReason(e)}`);
  }

  // the signer's kind must be the policy's
  const material = parsed.verificationMaterial.content;
  if (isKeyPolicy(policy) && material.$case !== "publicKey") {
    throw new SignatureError(
      "wrong-key",
      `${what} is signed with a certificate (keyless), not a key: verify it with an identity and issuer`,
    );
  }
  if (!isKeyPolicy(policy) && material.$case === "publicKey") {
    throw new SignatureError(
      "wrong-key",
      `${what} is signed with a key, not a certificate: verify it with the public key`,
    );
  }

  // the artifact must be what was signed
  const { Buffer } = nodeBuffer();
  const bytes = artifact instanceof Uint8Array ? artifact : undefined;
  const given = artifact instanceof Uint8Array ? undefined : parseDigest(artifact.digest);
  let digest: string;
  let dsse: VerifiedBundle["dsse"];
  const content = parsed.content;
  if (content.$case === "messageSignature") {
    if (!bytes) {
      throw new OcipkgError(
        `${what} holds a message signature: verifying it needs the artifact's bytes, not only its digest`,
      );
    }
    const md = content.messageSignature.messageDigest;
    const algName = lib.specs.hashAlgorithmToJSON(md?.algorithm ?? 0);
    const alg = MESSAGE_DIGESTS[algName];
    if (!md || !alg) {
      throw new SignatureError("malformed", `${what}: unsupported message digest ${algName}`);
    }
    digest = hashOf(bytes, alg);
    const signed = `${alg}:${hexOf(md.digest)}`;
    if (signed !== digest) {
      throw new SignatureError(
        "other-digest",
        `${what} signs ${signed}, not ${artifactName} (${digest})`,
      );
    }
  } else {
    const env = content.dsseEnvelope;
    if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
      throw new SignatureError(
        "other-digest",
        `${what}: the DSSE payload is '${
          printable(env.payloadType).slice(0, 100)
        }', not an in-toto statement that could name ${artifactName}`,
      );
    }
    const statement = parseStatement(env.payload);
    if (typeof statement === "string") {
      throw new SignatureError("malformed", `${what}: the DSSE payload ${statement}`);
    }
    digest = given ? `${given.algorithm}:${given.hex}` : digestOf(bytes!);
    let subject = findSubject(statement, digest);
    if (!subject && statement.subject.some((s) => "sha512" in s.digest)) {
      const d512 = bytes ? digestOf(bytes, "sha512") : (artifact as { sha512?: string }).sha512;
      subject = d512 === undefined ? undefined : findSubject(statement, d512);
      if (subject) digest = d512!;
    }
    if (!subject) {
      const names = statement.subject.slice(0, 3).map((s) =>
        Object.entries(s.digest).map(([a, h]) => `${printable(a).slice(0, 20)}:${h}`)[0] ?? "?"
      );
      throw new SignatureError(
        "other-digest",
        `${what}: its in-toto statement is about ${names.join(", ")}${
          statement.subject.length > 3 ? ", …" : ""
        }, not ${artifactName} (${digest})`,
      );
    }
    dsse = {
      payloadType: env.payloadType,
      payload: new Uint8Array(env.payload),
      statement,
      subject,
    };
  }

  // the signature, certificate, log entries and timestamps (@sigstore/verify)
  let signer: ReturnType<InstanceType<SigstoreLib["verify"]["Verifier"]>["verify"]>;
  try {
    const entity = lib.verify.toSignedEntity(
      parsed,
      bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : undefined,
    );
    // a key is its own trust: its bundle needs no log entry nor timestamp (those it has are
    // still checked); a certificate is trusted only at a verified time, so it needs one
    const thresholds = key ? { tlogThreshold: 0, timestampThreshold: 0 } : {};
    signer = new lib.verify.Verifier(trustMaterial, thresholds).verify(entity);
  } catch (e) {
    if (e instanceof OcipkgError) throw e;
    const reason = failureOf(e);
    if (key && reason === "tampered" && failureCode(e) === "SIGNATURE_ERROR") {
      // the log entry matched the signature: the key is what does not
      throw new SignatureError(
        "wrong-key",
        `${what} was not signed with ${
          key.path ? `key ${key.path}` : "the key"
        } (${key.fingerprint})`,
      );
    }
    throw new SignatureError(
      reason,
      reason === "malformed"
        ? `${what} is not a valid Sigstore bundle: ${libReason(e)}`
        : `${what} does not verify: ${libReason(e)}`,
    );
  }

  // the policy
  let who: BundleSigner;
  if (key) {
    who = key.path === undefined
      ? { kind: "key", fingerprint: key.fingerprint }
      : { kind: "key", path: key.path, fingerprint: key.fingerprint };
  } else {
    const policyIdentity = policy as IdentityPolicy;
    const identity = signer.identity?.subjectAlternativeName ?? "";
    const issuer = signer.identity?.extensions?.issuer ?? "";
    const mismatch = identityMismatch(policyIdentity, identity, issuer);
    if (mismatch) throw new SignatureError("wrong-key", `${what} ${mismatch}`);
    who = { kind: "certificate", identity, issuer };
  }

  return {
    mediaType: bundle.mediaType,
    signer: who,
    digest,
    dsse,
    timestamps: verifiedTimes(lib, parsed),
    tlogEntries: logEntries(parsed, root),
  };
}

type ParsedBundle = ReturnType<SigstoreLib["bundle"]["bundleFromJSON"]>;

/** The times the verifier accepted: Rekor integrated times and RFC 3161 timestamps. */
function verifiedTimes(lib: SigstoreLib, parsed: ParsedBundle): VerifiedTimestamp[] {
  const times: VerifiedTimestamp[] = [];
  for (const e of parsed.verificationMaterial.tlogEntries) {
    const t = Number(e.integratedTime);
    if (t > 0) times.push({ source: "transparency-log", time: new Date(t * 1000) });
  }
  const tsa = parsed.verificationMaterial.timestampVerificationData?.rfc3161Timestamps ?? [];
  for (const ts of tsa) {
    const parsedTs = lib.core.RFC3161Timestamp.parse(nodeBuffer().Buffer.from(ts.signedTimestamp));
    times.push({ source: "timestamp-authority", time: parsedTs.signingTime });
  }
  return times;
}

/** The bundle's log entries, each with its log's URL from the trusted root. */
function logEntries(parsed: ParsedBundle, root: TrustedRoot): VerifiedLogEntry[] {
  const urls = new Map<string, string>();
  const tlogs = Array.isArray(root.json.tlogs) ? root.json.tlogs as unknown[] : [];
  for (const t of tlogs) {
    const log = t as { baseUrl?: unknown; logId?: { keyId?: unknown } };
    if (typeof log.baseUrl === "string" && typeof log.logId?.keyId === "string") {
      urls.set(log.logId.keyId, log.baseUrl);
    }
  }
  return parsed.verificationMaterial.tlogEntries.map((e) => ({
    log: e.logId ? urls.get(toBase64(e.logId.keyId)) : undefined,
    logIndex: e.logIndex,
    kind: `${e.kindVersion?.kind} ${e.kindVersion?.version}`,
  }));
}
