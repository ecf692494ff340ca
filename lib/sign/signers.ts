/**
 * Who may sign, as the verify policy names them, and what the store records
 * of who did: keys by fingerprint, keyless signers by certificate identity
 * and OIDC issuer (exactly, by glob, or by regular expression) under a
 * trusted root, and attestations by predicate type and signer. A record is a
 * string in the store's verified record (`Store.recordVerified`); matching a
 * record needs no network, no Sigstore library and no `node:crypto`, so a
 * cached `get` stays cheap.
 *
 * | record                                              | means                                   |
 * | --------------------------------------------------- | --------------------------------------- |
 * | `sha256:<hex>`                                      | a signature by the key of that fingerprint |
 * | `identity:{"root","issuer","identity"}`             | a keyless signature by that certificate identity, under that root |
 * | `attestation:{"predicateType","signer"}`            | an attestation of that type, by that signer (one of the above) |
 *
 * @module
 */
import { UsageError } from "../util/errors.ts";
import { printable } from "../util/text.ts";

/**
 * Verify a keyless (Fulcio certificate) bundle: the certificate's identity
 * (its subject alternative name: a workflow URI, an email) and its OIDC
 * issuer, each given exactly or as a regular expression. A regular expression
 * matches anywhere in the value, as cosign's `--certificate-identity-regexp`
 * does: anchor it (`^…$`) to match the whole.
 */
export interface IdentityPolicy {
  /** The identity, exactly. */
  identity?: string;
  /** Or a regular expression the identity must match. */
  identityRegexp?: string | RegExp;
  /** The OIDC issuer, exactly (e.g. `https://token.actions.githubusercontent.com`). */
  issuer?: string;
  /** Or a regular expression the issuer must match. */
  issuerRegexp?: string | RegExp;
}

/** Who signed, as verified. */
export type BundleSigner =
  | {
    /** A Fulcio certificate. */
    kind: "certificate";
    /** Its subject alternative name (URI or email). */
    identity: string;
    /** Its OIDC issuer extension. */
    issuer: string;
  }
  | {
    /** A public key. */
    kind: "key";
    /** The key file (absolute), when the key came from one. */
    path?: string;
    /** Its fingerprint (`sha256:` of the DER SubjectPublicKeyInfo). */
    fingerprint: string;
  };

/** The trusted root id of the shipped Sigstore public-good root, in records. */
export const PUBLIC_GOOD_ROOT = "public-good";

/**
 * How records name a trusted root: its file's digest, else what it is
 * ({@link PUBLIC_GOOD_ROOT} when none is given).
 * @param root the trusted root, or undefined for the shipped one
 * @returns its id
 */
export function rootId(root?: { digest?: string; what: string }): string {
  return root ? root.digest ?? root.what : PUBLIC_GOOD_ROOT;
}

/**
 * A glob of a certificate identity or issuer as a regular expression matching
 * the whole value: `*` stands for any run of characters but `/`, `**` for
 * any run at all; every other character is itself. So the glob below (`*`
 * in place of the repository, the workflow file and the tag) admits every
 * workflow file of every repository of `org` at a tag — not a branch named
 * `x@refs/tags/v1`, whose `/` no `*` crosses.
 *
 * @param glob the pattern
 * @returns the anchored regular expression
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { globRegExp } from "./signers.ts";
 * const re = globRegExp("https://github.com/org/*\/.github/workflows/*@refs/tags/*");
 * assert.ok(re.test("https://github.com/org/libfoo/.github/workflows/release.yml@refs/tags/v1.2"));
 * assert.ok(!re.test("https://github.com/org/libfoo/.github/workflows/release.yml@refs/heads/x@refs/tags/v1"));
 * assert.ok(!re.test("https://github.com/org-evil/libfoo/.github/workflows/release.yml@refs/tags/v1"));
 * assert.ok(globRegExp("https://github.com/org/**").test("https://github.com/org/a/b@refs/heads/main"));
 * ```
 */
export function globRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*" && glob[i + 1] === "*") {
      re += ".*";
      i++;
    } else if (c === "*") re += "[^/]*";
    else re += c.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
  }
  return new RegExp(`^${re}$`, "s");
}

/** A regular expression from the user; a malformed one is a usage error naming `what`. */
export function compileRegExp(source: string, what: string): RegExp {
  try {
    return new RegExp(source);
  } catch (e) {
    throw new UsageError(
      `invalid ${what} regular expression '${printable(source)}': ${(e as Error).message}`,
    );
  }
}

/**
 * The policy's verdict on a certificate's identity and issuer; undefined when they match.
 * @param p the policy
 * @param identity the certificate's subject alternative name
 * @param issuer its OIDC issuer
 * @returns why they do not match, or undefined
 */
export function identityMismatch(
  p: IdentityPolicy,
  identity: string,
  issuer: string,
): string | undefined {
  const regexp = (r: string | RegExp | undefined, what: string) =>
    r === undefined || r instanceof RegExp ? r : compileRegExp(r, what);
  const idRe = regexp(p.identityRegexp, "identity");
  const issRe = regexp(p.issuerRegexp, "issuer");
  const idOk = idRe ? idRe.test(identity) : identity === p.identity;
  const issOk = issRe ? issRe.test(issuer) : issuer === p.issuer;
  if (idOk && issOk) return undefined;
  const wanted = (exact: string | undefined, re: RegExp | undefined) =>
    re ? `one matching /${re.source}/` : `'${exact}'`;
  if (!idOk) {
    return `was signed by '${printable(identity)}', not ${wanted(p.identity, idRe)}`;
  }
  return `was signed by '${printable(identity)}' with issuer '${printable(issuer)}', not ${
    wanted(p.issuer, issRe)
  }`;
}

/**
 * The record of a verified signer: a key's fingerprint, or a certificate's
 * identity and issuer with the root that vouched for it.
 *
 * @param signer who signed, as verified
 * @param root the trusted root's id ({@link PUBLIC_GOOD_ROOT}, or a root file's `sha256:`)
 * @returns the record
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { signerRecord } from "./signers.ts";
 * assert.equal(signerRecord({ kind: "key", fingerprint: "sha256:ab" }, "public-good"), "sha256:ab");
 * assert.equal(
 *   signerRecord({ kind: "certificate", identity: "me@example.com", issuer: "https://accounts.example.com" }, "public-good"),
 *   'identity:{"root":"public-good","issuer":"https://accounts.example.com","identity":"me@example.com"}',
 * );
 * ```
 */
export function signerRecord(signer: BundleSigner, root: string): string {
  if (signer.kind === "key") return signer.fingerprint;
  return `identity:${JSON.stringify({ root, issuer: signer.issuer, identity: signer.identity })}`;
}

/**
 * The record of a verified attestation: its predicate type and its signer's record.
 *
 * @param predicateType the statement's predicate type
 * @param signer the signer's record ({@link signerRecord})
 * @returns the record
 */
export function attestationRecord(predicateType: string, signer: string): string {
  return `attestation:${JSON.stringify({ predicateType, signer })}`;
}

/** Who a requirement admits: keys by fingerprint, identities under one root. */
export interface SignerSet {
  /** Key fingerprints (`sha256:<hex>`). */
  fingerprints: readonly string[];
  /** Keyless identities. */
  identities: readonly IdentityPolicy[];
  /** The trusted root's id the identities must have been verified under. */
  root: string;
}

/** Whether a signer's record is one the set admits. */
export function admits(set: SignerSet, record: string): boolean {
  if (!record.startsWith("identity:")) return set.fingerprints.includes(record);
  let v: unknown;
  try {
    v = JSON.parse(record.slice("identity:".length));
  } catch {
    return false;
  }
  const r = v as { root?: unknown; issuer?: unknown; identity?: unknown };
  if (r.root !== set.root || typeof r.issuer !== "string" || typeof r.identity !== "string") {
    return false;
  }
  const { identity, issuer } = r as { identity: string; issuer: string };
  return set.identities.some((p) => identityMismatch(p, identity, issuer) === undefined);
}

/**
 * Whether the records (of one installed manifest) show a signature by one of
 * the set's signers and, for each group of predicate types, an attestation of
 * one of them by one of the set's signers.
 *
 * @param records the store's records
 * @param set who may sign
 * @param attestations the predicate types required, each group met by any one of its types
 * @returns true when the records meet it all
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { attestationRecord, recordsMeet, signerRecord } from "./signers.ts";
 * const signer = signerRecord({ kind: "certificate", identity: "https://github.com/org/a/.github/workflows/r.yml@refs/tags/v1", issuer: "https://token.actions.githubusercontent.com" }, "public-good");
 * const set = {
 *   fingerprints: [], root: "public-good",
 *   identities: [{ identityRegexp: /^https:\/\/github\.com\/org\//, issuer: "https://token.actions.githubusercontent.com" }],
 * };
 * assert.ok(recordsMeet(new Set([signer]), set, []));
 * assert.ok(!recordsMeet(new Set([signer]), set, [["https://slsa.dev/provenance/v1"]]));
 * assert.ok(recordsMeet(new Set([signer, attestationRecord("https://slsa.dev/provenance/v1", signer)]), set, [["https://slsa.dev/provenance/v1"]]));
 * assert.ok(!recordsMeet(new Set([signer]), { ...set, root: "sha256:00" }, [])); // another root
 * ```
 */
export function recordsMeet(
  records: ReadonlySet<string>,
  set: SignerSet,
  attestations: readonly (readonly string[])[],
): boolean {
  const all = [...records];
  if (!all.some((r) => !r.startsWith("attestation:") && admits(set, r))) return false;
  const attested = all.flatMap((r) => {
    if (!r.startsWith("attestation:")) return [];
    try {
      const v = JSON.parse(r.slice("attestation:".length)) as {
        predicateType?: unknown;
        signer?: unknown;
      };
      return typeof v.predicateType === "string" && typeof v.signer === "string" &&
          admits(set, v.signer)
        ? [v.predicateType]
        : [];
    } catch {
      return [];
    }
  });
  return attestations.every((types) => types.some((t) => attested.includes(t)));
}
