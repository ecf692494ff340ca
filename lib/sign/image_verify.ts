/**
 * An image's signature, in whichever format it comes: a legacy cosign
 * signature (the `.sig` tag or a `…artifact.sig.v1+json` referrer, checked
 * with a key) or a Sigstore bundle referrer (cosign v3, checked with a key or
 * a keyless identity) — the one routine `verify`, `get`, `link` and `load`
 * use, within one per-command budget.
 *
 * @module
 */
import type { Descriptor } from "../oci/manifest.ts";
import type { ReadTarget } from "../transport/target.ts";
import type { BundlePolicy } from "./bundle_verify.ts";
import type { IdentityPolicy } from "./signers.ts";
import {
  PRIORITY,
  SignatureError,
  type VerifiedSignature,
  VerifyBudget,
  verifyWithin,
} from "./image.ts";
import { type VerifiedImageBundle, verifyImageBundlesWithin } from "./image_bundle.ts";
import type { PublicKeyFile } from "./keys.ts";
import { rootId, signerRecord } from "./signers.ts";
import type { TrustedRoot } from "./trusted_root.ts";

/** Who may have signed an image: any one of these keys or keyless identities. */
export interface ImageSigners {
  /** Public keys (legacy signatures and key bundles). */
  keys: PublicKeyFile[];
  /** Keyless identities (bundles with a Fulcio certificate). */
  identities: IdentityPolicy[];
  /** The trusted root of bundles; default the shipped public-good root. */
  trustedRoot?: TrustedRoot;
}

/** What {@link verifyImage} verified. */
export interface ImageVerification {
  /** The key a legacy signature verified with. */
  key?: PublicKeyFile;
  /** The legacy signatures that verified (with `key`). */
  signatures: VerifiedSignature[];
  /** The bundles that verified. */
  bundles: VerifiedImageBundle[];
  /** The records of who signed (key fingerprints, `identity:` records), first the first that verified. */
  signers: string[];
}

/** The bundle policies of a signer set: each key, each identity. */
export function bundlePolicies(signers: ImageSigners): BundlePolicy[] {
  return [...signers.keys.map((key) => ({ key })), ...signers.identities];
}

/** One refusal out of the legacy signatures' and the bundles': the worse first, the other after. */
function combine(errors: SignatureError[]): SignatureError {
  const real = errors.filter((e) => e.reason !== "none");
  if (real.length === 0) return errors[0]!;
  const worst = PRIORITY.map((p) => real.find((e) => e.reason === p)).find((e) => e) ?? real[0]!;
  const others = real.filter((e) => e !== worst).map((e) => `; ${e.message}`).join("");
  return new SignatureError(worst.reason, worst.message + others, { cause: worst });
}

/**
 * Verify that one of `signers` signed the image `subject`: legacy cosign
 * signatures with the keys ({@link verifyWithin}), then the Sigstore bundles
 * that are signatures ({@link verifyImageBundles}) with the keys and
 * identities. With `first`, stop at the first that verifies.
 *
 * @param target where the image is
 * @param subject the image's manifest
 * @param signers the keys and identities, the trusted root
 * @param options `first`: stop at the first signature that verifies
 * @param budget what the command may still read; default a new one
 * @returns what verified, and the records of who signed
 * @throws {SignatureError} when nothing verified, with the worse reason of both formats
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget, SignatureError } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * import { verifyImage } from "./image_verify.ts";
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const image = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * const signers = { keys: [], identities: [{ identity: "me@example.com", issuer: "https://accounts.example.com" }] };
 * await assert.rejects(verifyImage(t, image, signers), (e) => e instanceof SignatureError && e.reason === "none");
 * ```
 */
export async function verifyImage(
  target: ReadTarget,
  subject: Descriptor,
  signers: ImageSigners,
  options: { first?: boolean } = {},
  budget: VerifyBudget = new VerifyBudget(),
): Promise<ImageVerification> {
  const errors: SignatureError[] = [];
  const out: ImageVerification = { signatures: [], bundles: [], signers: [] };
  for (const key of signers.keys) {
    try {
      out.signatures = await verifyWithin(
        target,
        subject,
        key.key(),
        { keyName: key.path },
        budget,
      );
      out.key = key;
      out.signers.push(key.fingerprint);
      break;
    } catch (e) {
      if (!(e instanceof SignatureError)) throw e;
      if (key === signers.keys.at(-1)) errors.push(e); // the last key's reason, as before
    }
  }
  if (out.key && options.first) return out;
  const policies = bundlePolicies(signers);
  if (policies.length > 0) {
    try {
      out.bundles = await verifyImageBundlesWithin(
        target,
        subject,
        policies,
        { kind: "signature" },
        {
          trustedRoot: signers.trustedRoot,
          first: options.first,
        },
        budget,
      );
      const root = rootId(signers.trustedRoot);
      for (const b of out.bundles) {
        const record = signerRecord(b.signer, root);
        if (!out.signers.includes(record)) out.signers.push(record);
      }
    } catch (e) {
      if (!(e instanceof SignatureError)) throw e;
      errors.push(e);
    }
  }
  if (out.signers.length > 0) return out;
  if (errors.length === 0) {
    throw new SignatureError("none", `no key or identity to verify image ${subject.digest} with`);
  }
  // no bundle signature either: the legacy message says it ("no signature of …"), and what the
  // bundles that are not signatures are
  if (errors.length === 2 && errors[1]!.reason === "none") {
    const [legacy, bundles] = errors as [SignatureError, SignatureError];
    const others = /other bundles hold [^;]*/.exec(bundles.message)?.[0];
    throw others && legacy.reason === "none"
      ? new SignatureError("none", `${legacy.message}; ${others}`, { cause: legacy })
      : legacy;
  }
  throw combine(errors);
}
