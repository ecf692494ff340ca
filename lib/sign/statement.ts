/**
 * in-toto statements, the payload of the DSSE envelopes cosign signs
 * attestations (and, since cosign v3, images) with: which artifacts they are
 * about (`subject`, each with its digests), and what they say of them
 * (`predicateType`, `predicate`). A DSSE signature vouches for the statement;
 * the statement names the artifact by digest.
 *
 * @module
 */
import { printable } from "../util/text.ts";

/** The DSSE payload type of an in-toto statement. */
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";

/** The statement `_type`s read: in-toto v1 and v0.1. */
export const IN_TOTO_STATEMENT_TYPES: readonly string[] = [
  "https://in-toto.io/Statement/v1",
  "https://in-toto.io/Statement/v0.1",
];

/** One subject of a statement: an artifact by name and digests. */
export interface InTotoSubject {
  /** Its name, e.g. a file name or an image repository (may be empty). */
  name: string;
  /** Its digests by algorithm, lower-case hex: `{ sha256: "…" }`. */
  digest: Record<string, string>;
}

/** An in-toto statement (v1 or v0.1). */
export interface InTotoStatement {
  /** `https://in-toto.io/Statement/v1` or `…/v0.1`. */
  _type: string;
  /** The artifacts it is about. */
  subject: InTotoSubject[];
  /** What kind of claim, e.g. `https://slsa.dev/provenance/v1`. */
  predicateType: string;
  /** The claim itself (its shape is the predicate type's). */
  predicate?: unknown;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Parse an in-toto statement, checking its shape: a known `_type`, a
 * non-empty `subject` list whose digests are hex strings, a `predicateType`.
 *
 * @param payload the DSSE payload
 * @returns the statement, or a one-line reason it is not one
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseStatement } from "@ocipkg/cli/sign";
 * const text = JSON.stringify({
 *   _type: "https://in-toto.io/Statement/v1",
 *   subject: [{ name: "a.txt", digest: { sha256: "a".repeat(64) } }],
 *   predicateType: "https://slsa.dev/provenance/v1",
 *   predicate: {},
 * });
 * const s = parseStatement(new TextEncoder().encode(text));
 * assert.ok(typeof s !== "string" && s.subject[0]?.digest.sha256 === "a".repeat(64));
 * assert.equal(parseStatement(new TextEncoder().encode("{}")), "its _type is not an in-toto statement's");
 * ```
 */
export function parseStatement(payload: Uint8Array): InTotoStatement | string {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch {
    return "it is not JSON";
  }
  if (!isObject(v)) return "it is not a JSON object";
  if (typeof v._type !== "string" || !IN_TOTO_STATEMENT_TYPES.includes(v._type)) {
    return "its _type is not an in-toto statement's";
  }
  if (typeof v.predicateType !== "string") return "it has no predicateType";
  if (!Array.isArray(v.subject) || v.subject.length === 0) return "it has no subject";
  const subject: InTotoSubject[] = [];
  for (const s of v.subject as unknown[]) {
    if (!isObject(s) || !isObject(s.digest)) return "a subject has no digest";
    const digest: Record<string, string> = {};
    for (const [alg, hex] of Object.entries(s.digest)) {
      if (typeof hex !== "string" || !/^[0-9a-fA-F]{1,256}$/.test(hex)) {
        return `subject digest ${printable(alg).slice(0, 40)} is not hex`;
      }
      digest[alg] = hex.toLowerCase();
    }
    subject.push({ name: typeof s.name === "string" ? s.name : "", digest });
  }
  return { _type: v._type, subject, predicateType: v.predicateType, predicate: v.predicate };
}

/**
 * The subject of a statement an artifact digest names, if any.
 *
 * @param statement the statement
 * @param digest `<algorithm>:<hex>`, e.g. `sha256:…`
 * @returns the subject whose digest of that algorithm is `hex`, or undefined
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findSubject } from "@ocipkg/cli/sign";
 * const statement = {
 *   _type: "https://in-toto.io/Statement/v1",
 *   subject: [{ name: "a.txt", digest: { sha256: "a".repeat(64) } }],
 *   predicateType: "https://example.com/p",
 * };
 * assert.equal(findSubject(statement, `sha256:${"a".repeat(64)}`)?.name, "a.txt");
 * assert.equal(findSubject(statement, `sha256:${"b".repeat(64)}`), undefined);
 * ```
 */
export function findSubject(statement: InTotoStatement, digest: string): InTotoSubject | undefined {
  const colon = digest.indexOf(":");
  const alg = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  return statement.subject.find((s) => Object.hasOwn(s.digest, alg) && s.digest[alg] === hex);
}

/**
 * The predicate type of what `cosign sign` (v3) attaches to an image: a DSSE
 * in-toto statement whose subject is the image's manifest digest and whose
 * predicate is empty — a signature, in the bundle format.
 */
export const COSIGN_SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1";

/**
 * The short names of predicate types (`--type`), as cosign names them, each
 * with the predicate type URIs it stands for; the first is the one `attest`
 * writes. `slsaprovenance` is cosign's SLSA v0.2 when writing, and either
 * SLSA version when verifying (GitHub's build provenance is v1).
 */
export const PREDICATE_TYPES: Readonly<Record<string, readonly string[]>> = {
  slsaprovenance: ["https://slsa.dev/provenance/v0.2", "https://slsa.dev/provenance/v1"],
  slsaprovenance02: ["https://slsa.dev/provenance/v0.2"],
  slsaprovenance1: ["https://slsa.dev/provenance/v1"],
  spdx: ["https://spdx.dev/Document"],
  spdxjson: ["https://spdx.dev/Document"],
  cyclonedx: ["https://cyclonedx.org/bom"],
  link: ["https://in-toto.io/Link/v1"],
  vuln: ["https://cosign.sigstore.dev/attestation/vuln/v1"],
  openvex: ["https://openvex.dev/ns"],
  custom: ["https://cosign.sigstore.dev/attestation/v1"],
};

/**
 * The predicate type URIs a `--type` names: a short name of
 * {@link PREDICATE_TYPES}, or a URI (itself).
 *
 * @param type e.g. `slsaprovenance1`, `https://example.com/review/v1`
 * @returns the URIs (the first is the one to write), or undefined when it is neither
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { predicateTypes } from "./statement.ts";
 * assert.deepEqual(predicateTypes("cyclonedx"), ["https://cyclonedx.org/bom"]);
 * assert.deepEqual(predicateTypes("https://example.com/review/v1"), ["https://example.com/review/v1"]);
 * assert.equal(predicateTypes("provenance"), undefined);
 * ```
 */
export function predicateTypes(type: string): string[] | undefined {
  const known = Object.hasOwn(PREDICATE_TYPES, type) ? PREDICATE_TYPES[type] : undefined;
  if (known) return [...known];
  return /^[a-z][a-z0-9+.-]*:[^\s]+$/i.test(type) && type.length <= 1000 ? [type] : undefined;
}
