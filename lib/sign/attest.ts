/**
 * Attestations by name, as the CLI does them: `attest` (an in-toto statement
 * about the image, signed with a key in a Sigstore bundle attached as a
 * referrer — cosign v3's `attest --key`) and `verify-attestation` (the
 * attestations of a predicate type attached to an image, verified with a key
 * or a keyless identity).
 *
 * @module
 */
import { UsageError } from "../util/errors.ts";
import type { ImageName } from "../oci/reference.ts";
import { type Location, openImage, type RemoteOptions } from "../transport/location.ts";
import { type BundleSignResult, MAX_ATTACHED_BUNDLE, signImageBundle } from "./bundle_sign.ts";
import { type VerifiedImageBundle, verifyImageBundles } from "./image_bundle.ts";
import { bundlePolicies } from "./image_verify.ts";
import { type PasswordSource, readPrivateKey } from "./keys.ts";
import { dockerReference } from "./payload.ts";
import { readSmallFile } from "./pem.ts";
import { predicateTypes } from "./statement.ts";
import { readSigners, type VerifyReferenceOptions } from "./flow.ts";

/** Options of {@link attestReference}. */
export interface AttestReferenceOptions extends RemoteOptions {
  /** The private key file (cosign's encrypted PEM, or PKCS#8 PEM). */
  key: string;
  /** Its password, asked only when the key is encrypted. */
  password?: PasswordSource;
  /** The predicate file (JSON). */
  predicate: string;
  /** The predicate type: a name (`slsaprovenance`, `spdxjson`, `cyclonedx`, …) or a URI. */
  type: string;
}

/** The one predicate type URI a `--type` writes. */
function typeToWrite(type: string): string {
  const types = predicateTypes(type);
  if (!types) {
    throw new UsageError(
      `unknown predicate type '${type}': give a name (slsaprovenance, slsaprovenance1, spdxjson, ` +
        `cyclonedx, vuln, openvex, link, custom) or a URI`,
    );
  }
  return types[0]!;
}

/**
 * Attach an attestation to the image `image` names, as `cosign attest --key`
 * (v3) does: an in-toto statement (subject: the image's repository and
 * manifest digest; the predicate file's JSON; the predicate type) in a DSSE
 * envelope signed with the key, in a v0.3 Sigstore bundle attached as a
 * referrer ({@link signImageBundle}).
 *
 * @param image a registry image, or a layout before it is pushed
 * @param options the key, its password, the predicate file and its type
 * @returns what was written, with the image's digest
 * @throws {UsageError} for an unknown type, a predicate file that is absent or not JSON
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { attestReference, packDirectory, verifyAttestationReference } from "@ocipkg/cli";
 * import { encodePublicKey, generateSigningKeyPair } from "@ocipkg/cli/sign";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * const { privateKey, publicKey } = generateSigningKeyPair();
 * await Deno.writeTextFile(`${tmp}/k.pem`, privateKey.export({ format: "pem", type: "pkcs8" }).toString());
 * await Deno.writeTextFile(`${tmp}/k.pub`, encodePublicKey(publicKey));
 * await Deno.writeTextFile(`${tmp}/review.json`, '{"reviewed": true}');
 * await attestReference(`${tmp}/foo.tar`, { key: `${tmp}/k.pem`, predicate: `${tmp}/review.json`, type: "https://example.com/review/v1" });
 * const { attestations } = await verifyAttestationReference(`${tmp}/foo.tar`, {
 *   keys: [`${tmp}/k.pub`], type: "https://example.com/review/v1",
 * });
 * assert.deepEqual(attestations[0]?.dsse?.statement.predicate, { reviewed: true });
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function attestReference(
  image: string | ImageName | Location,
  options: AttestReferenceOptions,
): Promise<BundleSignResult & { digest: string }> {
  const predicateType = typeToWrite(options.type);
  const text = await readSmallFile(
    options.predicate,
    `predicate ${options.predicate}`,
    MAX_ATTACHED_BUNDLE,
  );
  if (text === undefined) {
    throw new UsageError(`predicate file '${options.predicate}' does not exist`);
  }
  let predicate: unknown;
  try {
    predicate = JSON.parse(text);
  } catch {
    throw new UsageError(`predicate file '${options.predicate}' is not JSON`);
  }
  const keyText = await readSmallFile(options.key, `key ${options.key}`);
  if (keyText === undefined) throw new UsageError(`key file '${options.key}' does not exist`);
  const key = await readPrivateKey(keyText, options.key, { password: options.password });
  const { target, subject, name } = await openImage(image, { ...options, write: true });
  try {
    const r = await signImageBundle(target, subject, key, {
      predicateType,
      predicate,
      subjectName: name ? dockerReference(name) : undefined,
    });
    await target.close();
    return { ...r, digest: subject.digest };
  } catch (e) {
    await target.abort().catch(() => {});
    throw e;
  }
}

/** Options of {@link verifyAttestationReference}: the signers (as `verify`'s) and the type. */
export interface VerifyAttestationOptions extends VerifyReferenceOptions {
  /** The predicate type: a name (`slsaprovenance`, `spdxjson`, `cyclonedx`, …) or a URI. */
  type: string;
}

/**
 * Verify the attestations of a predicate type attached to the image `image`
 * names, as `cosign verify-attestation --type` (v3) does: each Sigstore
 * bundle referrer whose in-toto statement is of that type, names the image's
 * manifest digest as a subject and is signed by one of the keys or the
 * keyless identity. `slsaprovenance` admits SLSA v0.2 and v1.
 *
 * @param image a registry image or a layout
 * @param options the keys or identity and issuer, the trusted root, the type
 * @returns the image's digest and every attestation that verified (at least one)
 * @throws {SignatureError} when none verifies, with the reason
 * @throws {UsageError} for an unknown type, or neither or both of keys and an identity
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { packDirectory, SignatureError, verifyAttestationReference } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * await assert.rejects(
 *   verifyAttestationReference(`${tmp}/foo.tar`, {
 *     identity: "https://github.com/org/foo/.github/workflows/release.yml@refs/tags/v1",
 *     issuer: "https://token.actions.githubusercontent.com",
 *     type: "slsaprovenance",
 *   }),
 *   (e) => e instanceof SignatureError && /^no slsaprovenance attestation of sha256:/.test(e.message),
 * );
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function verifyAttestationReference(
  image: string | ImageName | Location,
  options: VerifyAttestationOptions,
): Promise<{ digest: string; attestations: VerifiedImageBundle[] }> {
  const types = predicateTypes(options.type);
  if (!types) typeToWrite(options.type); // the usage error
  const signers = await readSigners(options);
  const { target, subject } = await openImage(image, options);
  try {
    const attestations = await verifyImageBundles(
      target,
      subject,
      bundlePolicies(signers),
      { kind: "attestation", predicateTypes: types!, name: options.type },
      { trustedRoot: signers.trustedRoot },
    );
    return { digest: subject.digest, attestations };
  } finally {
    await target.close();
  }
}
