/**
 * Sign an image and verify its signatures, over any {@link Target}: a
 * registry or a layout (so a package can be signed before it is pushed).
 *
 * Two places hold signatures, as with cosign:
 * - the tag scheme: a signature manifest under `sha256-<hex>.sig` with one
 *   simple-signing layer per signature (signing again appends a layer);
 * - OCI 1.1 referrers: a manifest whose `subject` is the signed manifest,
 *   `artifactType` `application/vnd.dev.cosign.artifact.sig.v1+json`. A
 *   registry with the referrers API lists it by itself; elsewhere the
 *   distribution-spec fallback index under the tag `sha256-<hex>` lists it.
 *
 * Verifying reads what a registry (perhaps a hostile one, or one anyone can
 * push a referrer to) hands it, so it is bounded, per command
 * ({@link VerifyBudget}, shared by every key and rule):
 *
 * | limit                                   | default                                            |
 * | --------------------------------------- | -------------------------------------------------- |
 * | signature manifests read                | 64 ({@link DEFAULT_VERIFY_LIMITS})                 |
 * | signature layers checked                | 256 ({@link DEFAULT_VERIFY_LIMITS})                |
 * | payloads fetched (each digest once)     | 256 ({@link DEFAULT_VERIFY_LIMITS})                |
 * | bytes of one payload                    | 64 KiB (`MAX_PAYLOAD_SIZE`; signing refuses more)  |
 * | layers of one signature manifest        | 1,000 (`MAX_SIGNATURE_LAYERS`)                     |
 * | cosign referrers considered             | {@link MAX_REFERRERS} (1,000)                      |
 *
 * Reaching a budget stops the looking; when nothing verified, the error says
 * so. A place that cannot be read — a referrers page over its 4 MiB cap or
 * malformed, a broken fallback index, a `.sig` tag the registry fails on —
 * gives no signatures, and the others are still checked (see
 * {@link searchSignatures}): a referrer cannot hide a signature stored
 * elsewhere, and a refusal names each place it could not read.
 *
 * @module
 */
import type { KeyObject } from "node:crypto";
import {
  FormatError,
  NotFoundError,
  OcipkgError,
  oneLine,
  UsageError,
  VerificationError,
} from "../util/errors.ts";
import { type Descriptor, type Manifest, parseManifestDocument } from "../oci/manifest.ts";
import { OCI_MANIFEST } from "../oci/media_types.ts";
import { listReferrers, pushReferrer } from "../transport/referrers.ts";
import {
  fetchBytes,
  pushBytes,
  type ReadTarget,
  resolveOptional,
  type Target,
} from "../transport/target.ts";
import { buildPayload, MAX_PAYLOAD_SIZE, parsePayload } from "./payload.ts";
import {
  COSIGN_SIGNATURE_ARTIFACT_TYPE,
  decodeSignature,
  MAX_SIGNATURE_LAYERS,
  parseSignatureConfig,
  SIGNATURE_ANNOTATION,
  SIGNATURE_CONFIG_MEDIA_TYPE,
  signatureConfig,
  signatureLayer,
  signatureManifest,
  signatureTag,
  signPayload,
  SIMPLE_SIGNING_MEDIA_TYPE,
  verifyPayload,
} from "./signature.ts";

/** At most this many referrers of each kind (signatures, bundles) are examined for one image. */
export const MAX_REFERRERS = 1000;

/**
 * What the artifact type of a Sigstore bundle referrer starts with (as
 * cosign reads it): `application/vnd.dev.sigstore.bundle.v0.3+json`, and the
 * older `application/vnd.dev.sigstore.bundle+json;version=0.x`.
 */
export const BUNDLE_ARTIFACT_TYPE_PREFIX = "application/vnd.dev.sigstore.bundle";

/** Options of {@link signImage}. */
export interface SignImageOptions {
  /** The payload's `docker-reference`: the repository (see `dockerReference()`). */
  dockerReference: string;
  /** Annotations for the payload's `optional` section (`--annotation k=v`). */
  annotations?: Record<string, string>;
  /** Store the signature as an OCI 1.1 referrer instead of under the `.sig` tag. */
  referrers?: boolean;
  /**
   * The reference the tag-scheme signature manifest goes under; default
   * `sha256-<hex>.sig`. A layout that names images `host/repo:tag` may pass
   * `host/repo:sha256-<hex>.sig`.
   */
  tag?: string;
  /**
   * With `referrers`: whether the target has the referrers API (then the
   * fallback index `sha256-<hex>` is not written). Default: asked of a
   * registry; false for layouts.
   */
  referrersApi?: boolean;
  /** The fallback index's reference; default `sha256-<hex>`. */
  fallbackTag?: string;
}

/** What {@link signImage} wrote. */
export interface SignResult {
  /** The signature manifest (tag scheme) or referrer manifest. */
  manifest: Descriptor;
  /** Where it is stored: `tag` (the `.sig` tag) or `referrer`. */
  mode: "tag" | "referrer";
  /** The tag written: the `.sig` tag, or the fallback index's tag (absent with the referrers API). */
  tag?: string;
  /** The payload blob. */
  payload: Descriptor;
  /** The base64 signature. */
  signature: string;
  /** Signatures the manifest now holds (more than 1 when appended to an existing `.sig`). */
  layers: number;
  /** The same signature was already stored: nothing was written. */
  existed: boolean;
}

/**
 * Sign the manifest `subject` in `target` with `key`, as `cosign sign --key`
 * does: push the simple-signing payload, then either append a signature
 * layer to the manifest under `sha256-<hex>.sig` (creating it when absent)
 * and tag it, or (`referrers`) push a referrer manifest and record it in the
 * fallback index `sha256-<hex>`.
 *
 * @param target where the image is (a registry repository or a layout)
 * @param subject the signed manifest or index
 * @param key the private key
 * @param options payload identity, annotations, where to store
 * @returns what was written
 * @throws {UsageError} when the annotations make the payload larger than
 *   `MAX_PAYLOAD_SIZE` (64 KiB), before anything is written
 * @throws {FormatError} when an existing `.sig` manifest or fallback index is malformed
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * import { generateSigningKeyPair, signImage, verifySignatures } from "@ocipkg/cli/sign";
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const image = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * const { privateKey, publicKey } = generateSigningKeyPair();
 * const r = await signImage(t, image, privateKey, { dockerReference: "example.com/foo" });
 * assert.equal(r.tag, `sha256-${image.digest.slice(7)}.sig`);
 * const [ok] = await verifySignatures(t, image, publicKey);
 * assert.equal(ok?.dockerReference, "example.com/foo");
 * ```
 */
export async function signImage(
  target: Target,
  subject: Descriptor,
  key: KeyObject,
  options: SignImageOptions,
): Promise<SignResult> {
  const payloadBytes = buildPayload(options.dockerReference, subject.digest, options.annotations);
  if (payloadBytes.byteLength > MAX_PAYLOAD_SIZE) {
    // a signature no verifier here would read
    throw new UsageError(
      `the signature payload would be ${payloadBytes.byteLength} bytes, over the ` +
        `${MAX_PAYLOAD_SIZE}-byte cap: give fewer or shorter annotations`,
    );
  }
  const signature = signPayload(key, payloadBytes);
  const payload = await pushBytes(target, SIMPLE_SIGNING_MEDIA_TYPE, payloadBytes);
  const layer = signatureLayer(payload, signature);

  if (options.referrers) {
    const config = await pushBytes(
      target,
      COSIGN_SIGNATURE_ARTIFACT_TYPE,
      signatureConfig([payload.digest]),
    );
    const manifest = JSON.parse(
      new TextDecoder().decode(
        signatureManifest(config, [layer], {
          subject,
          artifactType: COSIGN_SIGNATURE_ARTIFACT_TYPE,
        }),
      ),
    );
    const pushed = await pushReferrer(target, manifest, {
      fallbackTag: options.fallbackTag,
      referrersApi: options.referrersApi,
    });
    return {
      manifest: pushed.manifest,
      mode: "referrer",
      ...(pushed.fallbackTag ? { tag: pushed.fallbackTag } : {}),
      payload,
      signature,
      layers: 1,
      existed: pushed.existed,
    };
  }

  const tag = options.tag ?? signatureTag(subject.digest);
  const existing = await resolveOptional(target, tag);
  let layers = [layer];
  let diffIds = [payload.digest];
  let configDoc: Record<string, unknown> | undefined;
  let history: unknown[] = [];
  let mediaType = OCI_MANIFEST;
  let configMediaType = SIGNATURE_CONFIG_MEDIA_TYPE;
  let annotations: Record<string, string> | undefined;
  if (existing) {
    const where = `signature manifest ${tag} (${existing.digest}) in ${target.description}`;
    const doc = parseManifestDocument(
      await fetchBytes(target, existing, where),
      existing.mediaType,
      where,
    );
    if (doc.kind !== "manifest") throw new FormatError(`${where} is an index, not a manifest`);
    const m = doc.manifest;
    // the same signature of the same payload is already there (cosign's dupe detector)
    if (
      m.layers.some((l) =>
        l.digest === payload.digest && l.annotations?.[SIGNATURE_ANNOTATION] === signature
      )
    ) {
      return {
        manifest: existing,
        mode: "tag",
        tag,
        payload,
        signature,
        layers: m.layers.length,
        existed: true,
      };
    }
    if (m.layers.length + 1 > MAX_SIGNATURE_LAYERS) {
      throw new FormatError(`${where} already holds ${m.layers.length} signatures`);
    }
    const parsed = parseSignatureConfig(
      await fetchBytes(target, m.config, `${where} config`),
      where,
    );
    configDoc = parsed.config;
    layers = [...m.layers, layer];
    diffIds = [...parsed.diffIds, payload.digest];
    history = parsed.history;
    mediaType = doc.mediaType;
    configMediaType = m.config.mediaType;
    annotations = m.annotations;
  }
  let configBytes: Uint8Array;
  if (configDoc) {
    // keep what the existing config holds (a creation time, say); append one layer
    const rootfs = { ...(configDoc.rootfs as Record<string, unknown> ?? { type: "layers" }) };
    rootfs.diff_ids = diffIds;
    configBytes = new TextEncoder().encode(JSON.stringify({
      ...configDoc,
      history: [...history, { created: "0001-01-01T00:00:00Z" }],
      rootfs,
    }));
  } else configBytes = signatureConfig(diffIds);
  const config = await pushBytes(target, configMediaType, configBytes);
  const bytes = signatureManifest(config, layers, { annotations });
  const withType = mediaType === OCI_MANIFEST ? bytes : retype(bytes, mediaType);
  const manifest = await pushBytes(target, mediaType, withType);
  await target.tag(manifest, tag);
  return { manifest, mode: "tag", tag, payload, signature, layers: layers.length, existed: false };
}

/** The same manifest with another `mediaType` (a Docker schema 2 `.sig` being appended to). */
function retype(bytes: Uint8Array, mediaType: string): Uint8Array {
  const m = JSON.parse(new TextDecoder().decode(bytes));
  m.mediaType = mediaType;
  return new TextEncoder().encode(JSON.stringify(m));
}

/** Where a signature manifest was found. */
export interface SignatureManifestRef {
  /** The signature manifest. */
  manifest: Descriptor;
  /** `tag` (under `sha256-<hex>.sig`) or `referrer`. */
  source: "tag" | "referrer";
}

/** Options of {@link findSignatureManifests} and {@link verifySignatures}. */
export interface FindSignaturesOptions {
  /** The `.sig` reference; default `sha256-<hex>.sig`. */
  tag?: string;
  /**
   * The subject's referrers, when the caller listed them already. Default:
   * listed by `listReferrers` (the registry's referrers API, else the
   * fallback index).
   */
  referrers?: Descriptor[];
  /**
   * The fallback index's reference (default `sha256-<hex>`), read when
   * `referrers` is not given and there is no referrers API; `false` not to look.
   */
  fallbackTag?: string | false;
}

/** The signature manifests of an image, and why sources could not be read. */
export interface SignatureSearch {
  /** The signature manifests found: the `.sig` tag's first, then the referrers. */
  found: SignatureManifestRef[];
  /**
   * The referrers whose artifact type is a Sigstore bundle's (cosign v3
   * signatures, attestations), as listed: unread, unverified.
   */
  bundles: Descriptor[];
  /**
   * One line per source (the `.sig` tag, a page of the referrers API, the
   * fallback index) that could not be read: no signature from it was seen.
   */
  problems: string[];
}

/**
 * Look for the signature manifests of `subject` in every place they live —
 * the `.sig` tag, the referrers API (each page), the fallback index — and
 * keep looking when one of them cannot be read (too large, malformed,
 * unreachable): it gives no signatures and a line in `problems`, so a
 * referrer someone pushed cannot hide a signature stored elsewhere. When
 * the referrers API's list is incomplete, the fallback index is read too.
 *
 * @param target where the image is
 * @param subject the signed manifest
 * @param options where to look
 * @returns the signature manifests found, and why places could not be read
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget } from "@ocipkg/cli";
 * import { encodeJson, OCI_INDEX, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * import { generateSigningKeyPair, signImage } from "@ocipkg/cli/sign";
 * import { searchSignatures } from "./image.ts";
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const image = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * await signImage(t, image, generateSigningKeyPair().privateKey, { dockerReference: "example.com/foo" });
 * // the fallback index is not an index: no referrers from it, and the `.sig` tag still counts
 * await t.tag(await pushBytes(t, OCI_INDEX, encodeJson({ schemaVersion: 2, layers: [] })), `sha256-${image.digest.slice(7)}`);
 * const { found, problems } = await searchSignatures(t, image);
 * assert.deepEqual(found.map((f) => f.source), ["tag"]);
 * assert.match(problems[0]!, /^referrers index sha256-[0-9a-f]{64} in memory/);
 * ```
 */
export async function searchSignatures(
  target: ReadTarget,
  subject: Descriptor,
  options: FindSignaturesOptions = {},
): Promise<SignatureSearch> {
  const found: SignatureManifestRef[] = [];
  const problems: string[] = [];
  const tag = options.tag ?? signatureTag(subject.digest);
  try {
    const tagged = await resolveOptional(target, tag);
    if (tagged) found.push({ manifest: tagged, source: "tag" });
  } catch (e) {
    if (!(e instanceof OcipkgError)) throw e;
    problems.push(`signature tag ${tag}: ${oneLine(e)}`);
  }
  let referrers = options.referrers;
  if (!referrers) {
    // every artifact type at once: legacy signatures and Sigstore bundles, one listing
    const listed = await listReferrers(target, subject.digest, {
      fallbackTag: options.fallbackTag,
      partial: true,
    });
    referrers = listed.referrers;
    problems.push(...listed.problems ?? []);
  }
  const signatures = referrers.filter((r) => r.artifactType === COSIGN_SIGNATURE_ARTIFACT_TYPE);
  for (const r of signatures.slice(0, MAX_REFERRERS)) {
    if (found.some((f) => f.manifest.digest === r.digest)) continue;
    found.push({ manifest: r, source: "referrer" });
  }
  const bundles: Descriptor[] = [];
  for (const r of referrers) {
    if (bundles.length >= MAX_REFERRERS) break;
    if (!r.artifactType?.startsWith(BUNDLE_ARTIFACT_TYPE_PREFIX)) continue;
    if (bundles.some((b) => b.digest === r.digest)) continue;
    bundles.push(r);
  }
  return { found, bundles, problems };
}

/**
 * Find the signature manifests of `subject`: the one under the `.sig` tag,
 * and the cosign signature referrers (from `options.referrers`, or else from
 * the referrers API or the tag-schema fallback index). A place that cannot
 * be read (a referrers page over its cap, a malformed fallback index) gives
 * none; {@link verifySignatures} says why when nothing verifies.
 *
 * @param target where the image is
 * @param subject the signed manifest
 * @param options where to look
 * @returns the signature manifests found (none is not an error here)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * import { findSignatureManifests, generateSigningKeyPair, signImage } from "@ocipkg/cli/sign";
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const image = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * assert.deepEqual(await findSignatureManifests(t, image), []);
 * const { privateKey } = generateSigningKeyPair();
 * await signImage(t, image, privateKey, { dockerReference: "example.com/foo" });
 * await signImage(t, image, privateKey, { dockerReference: "example.com/foo", referrers: true });
 * const found = await findSignatureManifests(t, image);
 * assert.deepEqual(found.map((f) => f.source), ["tag", "referrer"]);
 * ```
 */
export async function findSignatureManifests(
  target: ReadTarget,
  subject: Descriptor,
  options: FindSignaturesOptions = {},
): Promise<SignatureManifestRef[]> {
  return (await searchSignatures(target, subject, options)).found;
}

/** Why a signature did not verify. */
export type SignatureFailure =
  | "none"
  | "wrong-key"
  | "tampered"
  | "other-digest"
  | "untrusted"
  | "malformed";

/**
 * No signature of an image verified: `reason` says why — `none` (no
 * signature found), `wrong-key`, `tampered` (a payload or manifest does not
 * match its digest), `other-digest` (a valid signature for another image),
 * `untrusted` (a Sigstore bundle whose certificate, log entry or timestamp the
 * trusted root does not vouch for, or that was not valid when it signed),
 * `malformed` (a signature manifest that is not one, or one or its payload
 * that the registry would not give).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SignatureError, VerificationError } from "@ocipkg/cli";
 * const e = new SignatureError("none", "no signature of sha256:… in memory");
 * assert.ok(e instanceof VerificationError);
 * assert.equal(e.reason, "none");
 * ```
 */
export class SignatureError extends VerificationError {
  /** Why. */
  readonly reason: SignatureFailure;
  /**
   * Create a SignatureError.
   * @param reason why
   * @param message one line naming the signature and image
   * @param options standard error options
   */
  constructor(reason: SignatureFailure, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

/** A signature that verified. */
export interface VerifiedSignature {
  /** The signature manifest that holds it. */
  manifest: Descriptor;
  /** Found under the `.sig` tag or as a referrer. */
  source: "tag" | "referrer";
  /** Its layer index in the signature manifest. */
  layer: number;
  /** The payload's digest. */
  payloadDigest: string;
  /** The base64 signature. */
  signature: string;
  /** The payload's `docker-reference` (what the signer named the image). */
  dockerReference: string;
  /** The signed manifest digest (equal to the subject's). */
  digest: string;
  /** The payload's `optional` annotations. */
  annotations: Record<string, unknown> | null;
}

/** Options of {@link verifySignatures}. */
export interface VerifySignaturesOptions extends FindSignaturesOptions {
  /** Names the key in messages (its path); default `the key`. */
  keyName?: string;
  /** Signature manifests to check instead of looking them up. */
  signatures?: SignatureManifestRef[];
}

/** What one verification (one command) reads at most; see {@link VerifyBudget}. */
export interface VerifyLimits {
  /** Signature manifests fetched. */
  manifests: number;
  /** Signature layers checked, over all signature manifests. */
  layers: number;
  /** Payloads fetched (each distinct payload digest once). */
  payloads: number;
}

/**
 * The budget of one verification — one command, whatever the number of
 * keys and rules: 64 signature manifests, 256 signature layers, 256 payload
 * fetches. Reaching one stops the looking; the error then says so.
 */
export const DEFAULT_VERIFY_LIMITS: Readonly<VerifyLimits> = Object.freeze({
  manifests: 64,
  layers: 256,
  payloads: 256,
});

/** A signature manifest as read for verification: its first layers (as many as the budget allowed). */
interface ReadSignatureManifest {
  layers: Descriptor[];
  subject?: string;
}

/** A payload as fetched: its bytes, or why it could not be. */
type FetchedPayload =
  | { bytes: Uint8Array }
  | { failure: "tampered" | "missing" | "unreadable"; cause: Error };

/**
 * What one verification (one command) may still read from a source, and
 * what it already read: the search for signature manifests (once), each
 * signature manifest and each payload by digest (once, whatever the number
 * of keys, layers or rules naming it). Spending is counted against
 * {@link VerifyLimits}; once one is reached, nothing more is fetched and
 * `stopped` says why.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VerifyBudget } from "./image.ts";
 * const budget = new VerifyBudget({ manifests: 1, layers: 2, payloads: 2 });
 * assert.equal(budget.stopped, undefined);
 * assert.deepEqual(budget.spent, { manifests: 0, layers: 0, payloads: 0 });
 * ```
 */
export class VerifyBudget {
  /** The limits. */
  readonly limits: Readonly<VerifyLimits>;
  /** What was read so far. */
  readonly spent: VerifyLimits = { manifests: 0, layers: 0, payloads: 0 };
  /** Why looking stopped early, once a limit was reached. */
  stopped: string | undefined;
  /** Bytes of Sigstore bundles fetched so far (at most {@link MAX_BUNDLE_BYTES}). */
  bundleBytes = 0;
  #search: Promise<SignatureSearch> | undefined;
  #manifests = new Map<string, Promise<ReadSignatureManifest>>();
  #payloads = new Map<string, Promise<FetchedPayload>>();
  #subject = new Map<string, Promise<Uint8Array>>();

  /** @param limits the limits; default {@link DEFAULT_VERIFY_LIMITS} */
  constructor(limits: Readonly<VerifyLimits> = DEFAULT_VERIFY_LIMITS) {
    this.limits = limits;
  }

  /**
   * The signature manifests of `subject`, looked up once.
   * @param target where the image is
   * @param subject the image
   * @param options where to look
   * @returns the search
   */
  search(
    target: ReadTarget,
    subject: Descriptor,
    options: VerifySignaturesOptions,
  ): Promise<SignatureSearch> {
    if (options.signatures) {
      return Promise.resolve({ found: options.signatures, bundles: [], problems: [] });
    }
    return this.#search ??= searchSignatures(target, subject, options);
  }

  #stop(why: string): undefined {
    this.stopped ??= `stopped looking after ${why} (the most one verification reads)`;
    return undefined;
  }

  /**
   * A signature manifest, read once; undefined when the budget is spent.
   * @param target where it is
   * @param ref which
   * @param where names it in messages
   * @returns its layers (those the budget allows) and subject
   * @throws {SignatureError} when it is not a signature manifest
   */
  manifest(
    target: ReadTarget,
    ref: SignatureManifestRef,
    where: string,
  ): Promise<ReadSignatureManifest> | undefined {
    const known = this.#manifests.get(ref.manifest.digest);
    if (known) return known;
    if (this.spent.manifests >= this.limits.manifests) {
      return this.#stop(`${this.limits.manifests} signature manifests`);
    }
    if (this.spent.layers >= this.limits.layers) {
      return this.#stop(`${this.limits.layers} signature layers`);
    }
    this.spent.manifests++;
    const read = readSignatureManifest(target, ref.manifest, where).then((m) => {
      const room = this.limits.layers - this.spent.layers;
      if (m.layers.length > room) this.#stop(`${this.limits.layers} signature layers`);
      const layers = m.layers.slice(0, room);
      this.spent.layers += layers.length;
      return { layers, subject: m.subject?.digest };
    });
    this.#manifests.set(ref.manifest.digest, read);
    return read;
  }

  /**
   * A payload, fetched once per digest; undefined when the budget is spent.
   * @param target where it is
   * @param layer its descriptor
   * @param where names it in messages
   * @returns its bytes, or why they could not be read
   */
  payload(
    target: ReadTarget,
    layer: Descriptor,
    where: string,
  ): Promise<FetchedPayload> | undefined {
    // a descriptor is its digest and size: a layer naming the right digest with a wrong size
    // must not make the right one look tampered
    const key = `${layer.digest} ${layer.size}`;
    const known = this.#payloads.get(key);
    if (known) return known;
    if (this.spent.payloads >= this.limits.payloads) {
      return this.#stop(`${this.limits.payloads} payload fetches`);
    }
    this.spent.payloads++;
    const fetched = fetchBytes(target, layer, where).then(
      (bytes): FetchedPayload => ({ bytes }),
      (e): FetchedPayload => {
        if (e instanceof VerificationError) return { failure: "tampered", cause: e };
        if (e instanceof NotFoundError) return { failure: "missing", cause: e };
        // refused, timed out, over a cap: that payload is not read, the others still are
        if (e instanceof OcipkgError) return { failure: "unreadable", cause: e };
        throw e;
      },
    );
    this.#payloads.set(key, fetched);
    return fetched;
  }

  /**
   * A Sigstore bundle blob, fetched once per digest and counted as a payload;
   * undefined when the budget (payloads, or {@link MAX_BUNDLE_BYTES}) is spent.
   * @param target where it is
   * @param layer its descriptor (at most 4 MiB: `fetchBytes` refuses more)
   * @param where names it in messages
   * @returns its bytes, or why they could not be read
   */
  bundle(
    target: ReadTarget,
    layer: Descriptor,
    where: string,
  ): Promise<FetchedPayload> | undefined {
    const known = this.#payloads.get(`${layer.digest} ${layer.size}`);
    if (known) return known;
    if (this.bundleBytes + layer.size > MAX_BUNDLE_BYTES) {
      return this.#stop(`${MAX_BUNDLE_BYTES >> 20} MiB of Sigstore bundles`);
    }
    const fetching = this.payload(target, layer, where);
    if (fetching) this.bundleBytes += layer.size;
    return fetching;
  }

  /**
   * The signed manifest's own bytes (what a message-signature bundle signs), fetched once.
   * @param target where it is
   * @param subject the manifest
   * @returns its bytes (checked against its digest)
   */
  subjectBytes(target: ReadTarget, subject: Descriptor): Promise<Uint8Array> {
    let known = this.#subject.get(subject.digest);
    if (!known) {
      known = fetchBytes(target, subject, `image ${subject.digest} in ${target.description}`);
      this.#subject.set(subject.digest, known);
    }
    return known;
  }
}

/** The bytes of Sigstore bundles one verification (one command) fetches at most. */
export const MAX_BUNDLE_BYTES = 64 << 20;

/** Why a failure is worse than another, worst first (for the one reason a refusal gives). */
export const PRIORITY: SignatureFailure[] = [
  "other-digest",
  "tampered",
  "untrusted",
  "wrong-key",
  "malformed",
];

/**
 * Verify the cosign signatures of `subject` with `publicKey`: each signature
 * manifest (tag scheme and referrers) is read and checked — a manifest of
 * simple-signing layers each carrying a signature annotation; the payload
 * matches its digest; the signature verifies with the key; the payload names
 * `subject`'s digest. Succeeds when at least one signature verifies, as
 * `cosign verify` does.
 *
 * What is read is bounded ({@link DEFAULT_VERIFY_LIMITS}: 64 signature
 * manifests, 256 layers, 256 payload fetches, each payload digest fetched
 * once); a place that cannot be read (a referrers page over its cap, a
 * malformed fallback index) gives no signatures, and the others are still
 * checked. When none verifies, the error names the worst failure and every
 * place that could not be read, and says when the budget stopped the looking.
 *
 * @param target where the image is (registry or layout)
 * @param subject the signed manifest
 * @param publicKey the public key
 * @param options where to look, the key's name for messages
 * @returns every signature that verified (at least one)
 * @throws {SignatureError} when none did, with the reason
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget, SignatureError } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * import { generateSigningKeyPair, signImage, verifySignatures } from "@ocipkg/cli/sign";
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const image = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * await assert.rejects(verifySignatures(t, image, generateSigningKeyPair().publicKey),
 *   (e) => e instanceof SignatureError && e.reason === "none");
 * const signer = generateSigningKeyPair();
 * await signImage(t, image, signer.privateKey, { dockerReference: "example.com/foo", referrers: true });
 * assert.equal((await verifySignatures(t, image, signer.publicKey))[0]?.source, "referrer");
 * await assert.rejects(
 *   verifySignatures(t, image, generateSigningKeyPair().publicKey, { keyName: "other.pub" }),
 *   (e) => e instanceof SignatureError && e.reason === "wrong-key" && /other\.pub/.test(e.message),
 * );
 * ```
 */
export async function verifySignatures(
  target: ReadTarget,
  subject: Descriptor,
  publicKey: KeyObject,
  options: VerifySignaturesOptions = {},
): Promise<VerifiedSignature[]> {
  return await verifyWithin(target, subject, publicKey, options, new VerifyBudget());
}

/**
 * {@link verifySignatures} within a budget that the caller shares between
 * keys and requirements (one per command): what it already read is not
 * read again.
 *
 * @param target where the image is
 * @param subject the signed manifest
 * @param publicKey the public key
 * @param options where to look, the key's name for messages
 * @param budget what may still be read, and what was
 * @returns every signature that verified (at least one)
 * @throws {SignatureError} when none did
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * import { generateSigningKeyPair, signImage } from "@ocipkg/cli/sign";
 * import { VerifyBudget, verifyWithin } from "./image.ts";
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const image = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * const signer = generateSigningKeyPair();
 * await signImage(t, image, signer.privateKey, { dockerReference: "example.com/foo" });
 * const budget = new VerifyBudget();
 * await assert.rejects(verifyWithin(t, image, generateSigningKeyPair().publicKey, {}, budget));
 * assert.equal((await verifyWithin(t, image, signer.publicKey, {}, budget)).length, 1);
 * assert.deepEqual(budget.spent, { manifests: 1, layers: 1, payloads: 1 }); // read once for both keys
 * ```
 */
export async function verifyWithin(
  target: ReadTarget,
  subject: Descriptor,
  publicKey: KeyObject,
  options: VerifySignaturesOptions,
  budget: VerifyBudget,
): Promise<VerifiedSignature[]> {
  const keyName = options.keyName ?? "the key";
  const { found: refs, problems } = await budget.search(target, subject, options);
  const verified: VerifiedSignature[] = [];
  const failures: SignatureError[] = [];
  const sourceOf = new Map<SignatureError, SignatureManifestRef["source"]>();
  const fail = (e: SignatureError, ref: SignatureManifestRef) => {
    failures.push(e);
    sourceOf.set(e, ref.source);
  };
  let layersSeen = 0;
  let manifestsRead = 0;
  look: for (const ref of refs) {
    const where = `signature manifest ${ref.manifest.digest} in ${target.description}`;
    const reading = budget.manifest(target, ref, where);
    if (!reading) break;
    let manifest: ReadSignatureManifest;
    try {
      manifest = await reading;
    } catch (e) {
      if (e instanceof SignatureError) {
        fail(e, ref);
        continue;
      }
      throw e;
    }
    manifestsRead++;
    if (ref.source === "referrer" && manifest.subject && manifest.subject !== subject.digest) {
      fail(
        new SignatureError(
          "other-digest",
          `${where} refers to ${manifest.subject}, not ${subject.digest}`,
        ),
        ref,
      );
      continue;
    }
    for (const [i, layer] of manifest.layers.entries()) {
      const what = `signature ${i + 1} of ${where}`;
      try {
        const ok = await verifyLayer(target, layer, subject, publicKey, budget, {
          what,
          keyName,
          ref,
          index: i,
        });
        if (!ok) break look; // the budget is spent
        verified.push(ok);
      } catch (e) {
        if (e instanceof SignatureError) fail(e, ref);
        else throw e;
      }
      layersSeen++;
    }
  }
  if (verified.length > 0) return verified;
  const notes = [...problems, ...(budget.stopped ? [budget.stopped] : [])];
  const tail = notes.length > 0 ? `; ${notes.join("; ")}` : "";
  if (failures.length === 0) {
    const none = `no signature of ${subject.digest} in ${target.description}`;
    throw new SignatureError(
      "none",
      refs.length === 0 || manifestsRead === 0
        ? `${none}${notes.length > 0 ? `: ${notes.join("; ")}` : ""}`
        : `${none}: its signature manifests hold no layers${tail}`,
    );
  }
  const worstOf = (list: SignatureError[]) =>
    PRIORITY.map((p) => list.find((f) => f.reason === p)).find((f) => f);
  const worst = worstOf(failures)!;
  // the worst failure of each other place too: a refusal names why each gave nothing
  const others = (["tag", "referrer"] as const)
    .map((source) => worstOf(failures.filter((f) => sourceOf.get(f) === source)))
    .filter((f): f is SignatureError => f !== undefined && f.message !== worst.message)
    .map((f) => `; ${f.message}`)
    .join("");
  const more = failures.length > 1
    ? ` (none of ${Math.max(layersSeen, failures.length)} signatures verified)`
    : "";
  throw new SignatureError(worst.reason, worst.message + more + others + tail, { cause: worst });
}

async function readSignatureManifest(
  target: ReadTarget,
  desc: Descriptor,
  where: string,
): Promise<Manifest> {
  let bytes: Uint8Array;
  try {
    bytes = await fetchBytes(target, desc, where);
  } catch (e) {
    if (e instanceof FormatError) throw new SignatureError("malformed", e.message, { cause: e });
    if (e instanceof VerificationError) {
      throw new SignatureError("tampered", `${where} does not match its digest`, { cause: e });
    }
    if (e instanceof NotFoundError) {
      throw new SignatureError("malformed", `${where} is missing`, { cause: e });
    }
    // refused, timed out: this one is not read, the others still are
    if (e instanceof OcipkgError) {
      throw new SignatureError("malformed", `${where}: ${oneLine(e)}`, { cause: e });
    }
    throw e;
  }
  let doc;
  try {
    doc = parseManifestDocument(bytes, desc.mediaType, where);
  } catch (e) {
    if (e instanceof FormatError) throw new SignatureError("malformed", e.message, { cause: e });
    throw e;
  }
  if (doc.kind !== "manifest") {
    throw new SignatureError("malformed", `${where} is an index, not a signature manifest`);
  }
  if (doc.manifest.layers.length > MAX_SIGNATURE_LAYERS) {
    throw new SignatureError(
      "malformed",
      `${where} has ${doc.manifest.layers.length} layers, over the ${MAX_SIGNATURE_LAYERS} cap`,
    );
  }
  return doc.manifest;
}

/** One signature layer checked; undefined when its payload is past the budget. */
async function verifyLayer(
  target: ReadTarget,
  layer: Descriptor,
  subject: Descriptor,
  publicKey: KeyObject,
  budget: VerifyBudget,
  ctx: { what: string; keyName: string; ref: SignatureManifestRef; index: number },
): Promise<VerifiedSignature | undefined> {
  const { what } = ctx;
  if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) {
    throw new SignatureError(
      "malformed",
      `${what} is a '${layer.mediaType}' layer, not a signature`,
    );
  }
  const signature = layer.annotations?.[SIGNATURE_ANNOTATION];
  if (signature === undefined) {
    throw new SignatureError("malformed", `${what} has no ${SIGNATURE_ANNOTATION} annotation`);
  }
  if (!decodeSignature(signature)) {
    throw new SignatureError("malformed", `${what}: the signature is not base64`);
  }
  if (layer.size > MAX_PAYLOAD_SIZE) {
    throw new SignatureError(
      "malformed",
      `${what}: payload of ${layer.size} bytes is over the ${MAX_PAYLOAD_SIZE}-byte cap`,
    );
  }
  const fetching = budget.payload(target, layer, `payload ${layer.digest} of ${what}`);
  if (!fetching) return undefined;
  const fetched = await fetching;
  if ("failure" in fetched) {
    if (fetched.failure === "tampered") {
      throw new SignatureError(
        "tampered",
        `${what}: payload ${layer.digest} does not match its digest (tampered)`,
        { cause: fetched.cause },
      );
    }
    throw new SignatureError(
      "malformed",
      fetched.failure === "missing"
        ? `${what}: payload ${layer.digest} is missing`
        : `${what}: ${oneLine(fetched.cause)}`,
      { cause: fetched.cause },
    );
  }
  const payload = fetched.bytes;
  if (!verifyPayload(publicKey, payload, signature)) {
    throw new SignatureError(
      "wrong-key",
      `${what} does not verify with ${ctx.keyName} (signed with another key, or its payload was altered)`,
    );
  }
  let parsed;
  try {
    parsed = parsePayload(payload, `payload of ${what}`);
  } catch (e) {
    if (e instanceof OcipkgError) throw new SignatureError("malformed", e.message, { cause: e });
    throw e;
  }
  const digest = parsed.critical.image["docker-manifest-digest"];
  if (digest !== subject.digest) {
    throw new SignatureError(
      "other-digest",
      `${what} was made for ${digest}, not ${subject.digest}`,
    );
  }
  return {
    manifest: ctx.ref.manifest,
    source: ctx.ref.source,
    layer: ctx.index,
    payloadDigest: layer.digest,
    signature,
    dockerReference: parsed.critical.identity["docker-reference"],
    digest,
    annotations: parsed.optional,
  };
}
