/**
 * Sigstore bundles attached to an image — what `cosign sign` and `cosign
 * attest` (v3) and GitHub's `actions/attest` push: an OCI 1.1 referrer whose
 * `artifactType` is the bundle media type, whose one layer is the bundle JSON
 * and whose `subject` is the image (cosign's specs/BUNDLE_SPEC.md). Found by
 * the same search as legacy signatures (the referrers API, else the
 * `sha256-<hex>` fallback index), read within the same per-command budget,
 * and each checked by `verifyBundle` against the image's manifest digest: a
 * DSSE statement must name it as a subject, a message signature must sign the
 * manifest's bytes.
 *
 * What a bundle is for: a *signature* is a message signature, or a DSSE
 * statement of predicate type `https://sigstore.dev/cosign/sign/v1` (cosign
 * v3's); an *attestation* is a DSSE statement of the predicate type asked
 * for. A bundle of another kind is passed over, not counted as a failure.
 *
 * @module
 */
import { NotFoundError, oneLine } from "../util/errors.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { fromBase64, printable } from "../util/text.ts";
import type { ReadTarget } from "../transport/target.ts";
import { parseBundle, type SigstoreBundle } from "./bundle.ts";
import { type BundlePolicy, type VerifiedBundle, verifyBundle } from "./bundle_verify.ts";
import {
  BUNDLE_ARTIFACT_TYPE_PREFIX,
  PRIORITY,
  SignatureError,
  type SignatureManifestRef,
  VerifyBudget,
} from "./image.ts";
import { COSIGN_SIGN_PREDICATE_TYPE, parseStatement } from "./statement.ts";
import type { TrustedRoot } from "./trusted_root.ts";

/** The annotation of a bundle referrer naming its statement's predicate type (a hint only). */
export const BUNDLE_PREDICATE_TYPE_ANNOTATION = "dev.sigstore.bundle.predicateType";
/** The annotation of a bundle referrer naming its content: `dsse-envelope` or `message-signature`. */
export const BUNDLE_CONTENT_ANNOTATION = "dev.sigstore.bundle.content";

/** What the bundles looked for are: signatures of the image, or attestations of a type. */
export type BundlePurpose =
  | {
    /** A signature: a message signature, or a cosign v3 `sign` statement. */
    kind: "signature";
  }
  | {
    /** An attestation: a DSSE in-toto statement of one of these predicate types. */
    kind: "attestation";
    /** The predicate type URIs that count. */
    predicateTypes: readonly string[];
    /** Names them in messages (e.g. `slsaprovenance`); default the URIs. */
    name?: string;
  };

/** A bundle of an image that verified. */
export interface VerifiedImageBundle extends VerifiedBundle {
  /** The referrer manifest that holds it. */
  manifest: Descriptor;
  /** The predicate type of its statement (DSSE bundles). */
  predicateType?: string;
}

/** Options of {@link verifyImageBundles}. */
export interface ImageBundleOptions {
  /** The trusted root; default the shipped Sigstore public-good root. */
  trustedRoot?: TrustedRoot;
  /** Stop at the first bundle that verifies (what an install needs); default every one. */
  first?: boolean;
}

/** The predicate type of a DSSE bundle's statement, read before anything is verified; else undefined. */
function claimedPredicateType(bundle: SigstoreBundle): string | undefined {
  const env = bundle.json.dsseEnvelope as { payload?: unknown } | undefined;
  if (typeof env?.payload !== "string") return undefined;
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(env.payload);
  } catch {
    return undefined; // the verifier says why
  }
  const statement = parseStatement(bytes);
  return typeof statement === "string" ? undefined : statement.predicateType;
}

/** Whether a bundle of this content and predicate type is what `purpose` looks for. */
function serves(
  purpose: BundlePurpose,
  content: string,
  predicateType: string | undefined,
): boolean {
  if (purpose.kind === "signature") {
    return content === "messageSignature" || predicateType === COSIGN_SIGN_PREDICATE_TYPE;
  }
  return content === "dsseEnvelope" && predicateType !== undefined &&
    purpose.predicateTypes.includes(predicateType);
}

/** How a purpose is named in messages. */
function purposeName(purpose: BundlePurpose): string {
  if (purpose.kind === "signature") return "Sigstore bundle signature";
  return `${purpose.name ?? purpose.predicateTypes.join(" or ")} attestation`;
}

/** The worst of some failures (by {@link PRIORITY}). */
function worstOf(failures: SignatureError[]): SignatureError | undefined {
  return PRIORITY.map((p) => failures.find((f) => f.reason === p)).find((f) => f);
}

/**
 * Verify the Sigstore bundles attached to `subject` that serve `purpose`,
 * each with the policies it can meet (a key bundle with the keys, a keyless
 * one with the identities): its referrer manifest must name `subject`, hold
 * a bundle layer, and the bundle must verify for the manifest digest
 * ({@link verifyBundle}). Everything read counts against `budget` (shared
 * with the legacy signatures of the same command).
 *
 * @param target where the image is
 * @param subject the image's manifest
 * @param policies who may have signed (any one)
 * @param purpose signatures, or attestations of a type
 * @param options the trusted root, whether to stop at the first
 * @returns the bundles that verified (at least one)
 * @throws {SignatureError} when none did: `none` when no bundle serves the
 *   purpose, else the worst reason, naming each refused bundle's fault
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget, SignatureError } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * import { verifyImageBundles } from "@ocipkg/cli/sign";
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const image = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * await assert.rejects(
 *   verifyImageBundles(t, image, [{ identity: "me@example.com", issuer: "https://accounts.example.com" }], { kind: "signature" }),
 *   (e) => e instanceof SignatureError && e.reason === "none" && /^no Sigstore bundle signature of sha256:/.test(e.message),
 * );
 * ```
 */
export async function verifyImageBundles(
  target: ReadTarget,
  subject: Descriptor,
  policies: BundlePolicy[],
  purpose: BundlePurpose,
  options: ImageBundleOptions = {},
): Promise<VerifiedImageBundle[]> {
  return await verifyImageBundlesWithin(
    target,
    subject,
    policies,
    purpose,
    options,
    new VerifyBudget(),
  );
}

/**
 * {@link verifyImageBundles} within a budget the caller shares with the
 * command's other checks (legacy signatures, other requirements): what it
 * already read is not read again.
 *
 * @param target where the image is
 * @param subject the image's manifest
 * @param policies who may have signed (any one)
 * @param purpose signatures, or attestations of a type
 * @param options the trusted root, whether to stop at the first
 * @param budget what the command may still read
 * @returns the bundles that verified (at least one)
 * @throws {SignatureError} when none did
 */
export async function verifyImageBundlesWithin(
  target: ReadTarget,
  subject: Descriptor,
  policies: BundlePolicy[],
  purpose: BundlePurpose,
  options: ImageBundleOptions,
  budget: VerifyBudget,
): Promise<VerifiedImageBundle[]> {
  const { bundles: refs, problems } = await budget.search(target, subject, {});
  const verified: VerifiedImageBundle[] = [];
  const failures: SignatureError[] = [];
  const otherTypes = new Set<string>();
  const keyPolicies = policies.filter((p) => "key" in p && p.key !== undefined);
  const identityPolicies = policies.filter((p) => !keyPolicies.includes(p));

  for (const ref of refs) {
    const what = `referrer ${ref.digest} in ${target.description}`;
    // the listing's hint saves a fetch; a false hint can only hide a bundle, as an unlisted one is
    const hint = ref.annotations?.[BUNDLE_PREDICATE_TYPE_ANNOTATION];
    if (hint !== undefined && !serves(purpose, "dsseEnvelope", hint)) {
      otherTypes.add(printable(hint).slice(0, 100));
      continue;
    }
    const sigRef: SignatureManifestRef = { manifest: ref, source: "referrer" };
    const reading = budget.manifest(target, sigRef, what);
    if (!reading) break;
    let bundle: SigstoreBundle;
    try {
      const manifest = await reading;
      if (manifest.subject !== subject.digest) {
        throw new SignatureError(
          "other-digest",
          manifest.subject
            ? `${what} refers to ${manifest.subject}, not ${subject.digest}`
            : `${what} has no subject`,
        );
      }
      const layer = manifest.layers[0];
      if (!layer?.mediaType.startsWith(BUNDLE_ARTIFACT_TYPE_PREFIX)) {
        throw new SignatureError(
          "malformed",
          `${what} holds no Sigstore bundle layer${
            layer ? ` (its layer is '${printable(layer.mediaType).slice(0, 100)}')` : ""
          }`,
        );
      }
      const fetching = budget.bundle(target, layer, `bundle ${layer.digest} of ${what}`);
      if (!fetching) break;
      const fetched = await fetching;
      if ("failure" in fetched) {
        const cause = fetched.cause;
        throw new SignatureError(
          fetched.failure === "tampered" ? "tampered" : "malformed",
          fetched.failure === "tampered"
            ? `${what}: bundle ${layer.digest} does not match its digest (tampered)`
            : fetched.failure === "missing" || cause instanceof NotFoundError
            ? `${what}: bundle ${layer.digest} is missing`
            : `${what}: ${oneLine(cause)}`,
          { cause },
        );
      }
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(fetched.bytes);
      } catch {
        throw new SignatureError("malformed", `bundle ${what} is not UTF-8 text`);
      }
      bundle = parseBundle(text, what);
    } catch (e) {
      if (!(e instanceof SignatureError)) throw e;
      failures.push(e);
      continue;
    }
    const predicateType = claimedPredicateType(bundle);
    if (!serves(purpose, bundle.content, predicateType)) {
      otherTypes.add(predicateType ? printable(predicateType).slice(0, 100) : "message-signature");
      continue;
    }
    const candidates = bundle.material === "publicKey" ? keyPolicies : identityPolicies;
    // none of the right kind: verifyBundle says which kind of signer the bundle has
    const tries = candidates.length > 0 ? candidates : policies.slice(0, 1);
    const artifact = bundle.content === "messageSignature"
      ? await budget.subjectBytes(target, subject)
      : { digest: subject.digest };
    const own: SignatureError[] = [];
    for (const policy of tries) {
      try {
        const v = await verifyBundle(bundle, artifact, policy, {
          trustedRoot: options.trustedRoot,
          artifactName: `image ${subject.digest}`,
        });
        verified.push({ ...v, manifest: ref, predicateType: v.dsse?.statement.predicateType });
        own.length = 0;
        break;
      } catch (e) {
        if (!(e instanceof SignatureError)) throw e;
        own.push(e);
      }
    }
    if (own.length > 0) failures.push(worstOf(own)!);
    if (verified.length > 0 && options.first) return verified;
  }
  if (verified.length > 0) return verified;

  const notes = [...problems, ...(budget.stopped ? [budget.stopped] : [])];
  if (otherTypes.size > 0) {
    notes.push(`other bundles hold ${[...otherTypes].slice(0, 5).join(", ")}`);
  }
  const tail = notes.length > 0 ? `; ${notes.join("; ")}` : "";
  const worst = worstOf(failures);
  if (!worst) {
    throw new SignatureError(
      "none",
      `no ${purposeName(purpose)} of ${subject.digest} in ${target.description}${
        notes.length > 0 ? `: ${notes.join("; ")}` : ""
      }`,
    );
  }
  const more = failures.length > 1 ? ` (none of ${failures.length} bundles verified)` : "";
  throw new SignatureError(worst.reason, worst.message + more + tail, { cause: worst });
}
