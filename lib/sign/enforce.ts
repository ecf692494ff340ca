/**
 * Enforcing the verify policy on an image before it is installed: its
 * signatures (legacy `.sig` and referrers, Sigstore bundles) and the
 * attestations a rule asks for, checked against the requirements of
 * `policy.ts` (`verifyRequirements`) within one budget, and the
 * records of who verified, for the store.
 *
 * @module
 */
import { OcipkgError } from "../util/errors.ts";
import type { Descriptor } from "../oci/manifest.ts";
import type { ImageName } from "../oci/reference.ts";
import type { ReadTarget } from "../transport/target.ts";
import { SignatureError, type VerifiedSignature, VerifyBudget, verifyWithin } from "./image.ts";
import { verifyImageBundlesWithin } from "./image_bundle.ts";
import { bundlePolicies, verifyImage } from "./image_verify.ts";
import type { PublicKeyFile } from "./keys.ts";
import type { VerifyRequirement } from "./policy.ts";
import { attestationRecord, rootId, signerRecord } from "./signers.ts";

/** What {@link verifyWithAnyKey} verified. */
export interface KeyVerified {
  /** The key that verified. */
  key: PublicKeyFile;
  /** Every signature that verified with it. */
  signatures: VerifiedSignature[];
}

/**
 * Verify the cosign signatures of `root` in `src` with any one of `keys`,
 * tried in order: the one "any of these keys" routine of `verify`, `get`,
 * `link` and `load`. Everything is read once for all the keys, within one
 * budget ({@link VerifyBudget}: 64 signature manifests, 256 signature
 * layers, 256 payload fetches, each payload digest fetched once); pass
 * `budget` to share it with other requirements of the same command.
 *
 * @param src where the image is (registry or layout)
 * @param root the image's manifest or index
 * @param keys the keys (from `readPublicKeyFile` or `verifyRequirements`)
 * @param budget what the command may still read, and what it read; default a new one
 * @returns the first key that verified, and its signatures
 * @throws {SignatureError} the last key's reason when none verifies
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget, SignatureError } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * import { encodePublicKey, generateSigningKeyPair, signImage } from "@ocipkg/cli/sign";
 * import { readPublicKeyFile } from "./keys.ts";
 * import { verifyWithAnyKey } from "./enforce.ts";
 * const tmp = await Deno.makeTempDir();
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const root = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * const signer = generateSigningKeyPair();
 * await Deno.writeTextFile(`${tmp}/other.pub`, encodePublicKey(generateSigningKeyPair().publicKey));
 * await Deno.writeTextFile(`${tmp}/cosign.pub`, encodePublicKey(signer.publicKey));
 * const keys = [await readPublicKeyFile(`${tmp}/other.pub`, "--key"), await readPublicKeyFile(`${tmp}/cosign.pub`, "--key")];
 * await assert.rejects(verifyWithAnyKey(t, root, keys), SignatureError); // unsigned
 * await signImage(t, root, signer.privateKey, { dockerReference: "example.com/foo" });
 * assert.equal((await verifyWithAnyKey(t, root, keys)).key.path, `${tmp}/cosign.pub`);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function verifyWithAnyKey(
  src: ReadTarget,
  root: Descriptor,
  keys: PublicKeyFile[],
  budget: VerifyBudget = new VerifyBudget(),
): Promise<KeyVerified> {
  if (keys.length === 0) throw new OcipkgError(`no key to verify image ${root.digest} with`);
  let last: SignatureError | undefined;
  for (const key of keys) {
    try {
      return {
        key,
        signatures: await verifyWithin(src, root, key.key(), { keyName: key.path }, budget),
      };
    } catch (e) {
      if (!(e instanceof SignatureError)) throw e;
      last = e;
    }
  }
  throw last!;
}

/**
 * Check the requirements against the image `root` in `src` — its
 * signatures, under the `.sig` tag or as referrers (legacy signatures and
 * Sigstore bundles), looked up once, and the attestations a rule asks for —
 * before anything is installed. One budget holds for all the requirements
 * and signers (64 signature manifests, 256 signature layers, 256 payload and
 * bundle fetches, 64 MiB of bundles, each manifest and blob read once): a
 * registry that lists endless signatures
 * ends the command with an error that says so, not a million requests. A
 * place that cannot be read (a referrers page over its cap) gives no
 * signatures, and the others are still checked; a refusal names each.
 *
 * @param src where the image is (registry or layout)
 * @param root the image's manifest or index
 * @param name names the image in messages
 * @param requirements from `verifyRequirements`
 * @returns the records of who verified (key fingerprints, `identity:` and
 *   `attestation:` records; for {@link Store.recordVerified})
 * @throws {SignatureError} naming the image, the reason and the requirement
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName, MemoryTarget, SignatureError } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * import {
 *   encodePublicKey, enforceVerification, generateSigningKeyPair, signImage, verifyRequirements,
 * } from "@ocipkg/cli/sign";
 * const tmp = await Deno.makeTempDir();
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const root = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * const signer = generateSigningKeyPair();
 * await Deno.writeTextFile(`${tmp}/cosign.pub`, encodePublicKey(signer.publicKey));
 * const name = ImageName.parse("example.com/foo:1");
 * const need = await verifyRequirements(name, { verifyKeys: [`${tmp}/cosign.pub`], policy: false });
 * await assert.rejects(
 *   enforceVerification(t, root, name, need), // unsigned
 *   (e) => e instanceof SignatureError && /required by verifyKeys option: no signature/.test(e.message),
 * );
 * await signImage(t, root, signer.privateKey, { dockerReference: "example.com/foo" });
 * assert.deepEqual(await enforceVerification(t, root, name, need), [need[0]!.keys[0]!.fingerprint]);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function enforceVerification(
  src: ReadTarget,
  root: Descriptor,
  name: ImageName,
  requirements: VerifyRequirement[],
): Promise<string[]> {
  const records = new Set<string>();
  const budget = new VerifyBudget(); // one for the command: every requirement, every signer
  for (const req of requirements) {
    try {
      for (const r of await meetRequirement(src, root, req, budget)) records.add(r);
    } catch (e) {
      if (!(e instanceof SignatureError)) throw e;
      throw new SignatureError(
        e.reason,
        `refusing to install image '${name}' (${root.digest}), required by ${req.source}: ${e.message}`,
        { cause: e },
      );
    }
  }
  return [...records];
}

/** One requirement checked: the records of its signer and of each attestation it asks for. */
async function meetRequirement(
  src: ReadTarget,
  root: Descriptor,
  req: VerifyRequirement,
  budget: VerifyBudget,
): Promise<string[]> {
  const signers = {
    keys: req.keys,
    identities: req.identities ?? [],
    ...(req.trustedRoot ? { trustedRoot: req.trustedRoot } : {}),
  };
  const signed = await verifyImage(src, root, signers, { first: true }, budget);
  const records = [signed.signers[0]!];
  for (const att of req.attestations ?? []) {
    const [a] = await verifyImageBundlesWithin(
      src,
      root,
      bundlePolicies(signers),
      {
        kind: "attestation",
        predicateTypes: att.predicateTypes,
        name: att.name,
      },
      { trustedRoot: req.trustedRoot, first: true },
      budget,
    );
    records.push(
      attestationRecord(a!.predicateType!, signerRecord(a!.signer, rootId(req.trustedRoot))),
    );
  }
  return records;
}
