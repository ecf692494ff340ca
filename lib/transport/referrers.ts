/**
 * OCI 1.1 referrers over any {@link Target}: manifests whose `subject` names
 * another manifest (signatures, SBOMs, licence texts, provenance).
 *
 * A registry with the referrers API (`GET /v2/<name>/referrers/<digest>`,
 * e.g. `ocipkg serve`) lists them by itself. Everywhere else — `distribution`
 * 2.x, layouts — the distribution-spec tag-schema fallback is used: an image
 * index under the tag `sha256-<hex>` of the subject lists them, and whoever
 * pushes a referrer adds it there.
 *
 * The API's list is read page by page (see the registry client's
 * `listing.ts`: 4 MiB per page, 100 pages, 10,000 referrers); a fallback
 * index lists at most {@link MAX_FALLBACK_REFERRERS}. A page that cannot be
 * read makes the list an {@link IncompleteReferrersError}, or, with
 * `partial` (what the verifier asks), a list of what could be read and why
 * the rest could not, the fallback index read as well.
 *
 * @module
 */
import { Digester, parseDigest } from "../oci/digest.ts";
import { FormatError, fsError, OcipkgError, oneLine, UsageError } from "../util/errors.ts";
import { openFileStream } from "../util/files.ts";
import { basename } from "../util/path.ts";
import {
  type Descriptor,
  type Index,
  type Manifest,
  parseManifestDocument,
  stripUndefined,
} from "../oci/manifest.ts";
import { ANNOTATION_TITLE, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST } from "../oci/media_types.ts";
import { copyGraph, type CopyOptions } from "./copy.ts";
import { fetchBytes, pushBytes, type ReadTarget, resolveOptional, type Target } from "./target.ts";
import { printable } from "../util/text.ts";

/** At most this many referrers of one manifest are read from a fallback index. */
export const MAX_FALLBACK_REFERRERS = 1000;

/**
 * Some pages of a referrers listing could not be read (over the size cap,
 * broken off, malformed, linking elsewhere): `referrers` holds what was read,
 * `problems` why each of the others was not, one line each.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OcipkgError } from "@ocipkg/cli";
 * import { IncompleteReferrersError } from "./referrers.ts";
 * const e = new IncompleteReferrersError([], [
 *   "referrers of example.com/x@sha256:… (page 2): the answer is 5000000 bytes, over the 4194304-byte cap",
 * ]);
 * assert.ok(e instanceof OcipkgError);
 * assert.match(e.message, /\(page 2\): .* over the 4194304-byte cap$/);
 * ```
 */
export class IncompleteReferrersError extends OcipkgError {
  /** The referrers that were read. */
  readonly referrers: Descriptor[];
  /** Why each page that was not read was not. */
  readonly problems: string[];
  /**
   * Create an IncompleteReferrersError.
   * @param referrers what was read
   * @param problems one line per page that was not, each naming the listing and the page
   */
  constructor(referrers: Descriptor[], problems: string[]) {
    super(problems.join("; "));
    this.referrers = referrers;
    this.problems = problems;
  }
}

/** A target that can ask a registry's referrers API (a `RegistryTarget`). */
export interface ReferrersApi {
  /**
   * The referrers of `digest`, or `undefined` when there is no referrers API.
   * @param digest the subject
   * @param artifactType only this type
   */
  referrers(digest: string, artifactType?: string): Promise<Descriptor[] | undefined>;
}

function hasApi(t: ReadTarget): t is ReadTarget & ReferrersApi {
  return typeof (t as Partial<ReferrersApi>).referrers === "function";
}

/**
 * The distribution-spec referrers tag-schema fallback for `digest`:
 * `sha256-<hex>`, an index listing the referrers.
 *
 * @param digest the subject's digest
 * @returns the tag
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { referrersTag } from "@ocipkg/cli/transport";
 * assert.equal(referrersTag("sha256:" + "ab".repeat(32)), `sha256-${"ab".repeat(32)}`);
 * ```
 */
export function referrersTag(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `${algorithm}-${hex}`;
}

/** Options of {@link listReferrers}. */
export interface ListReferrersOptions {
  /** Only referrers of this artifact type. */
  artifactType?: string;
  /** The fallback index's tag (default `sha256-<hex>`); `false` not to read it. */
  fallbackTag?: string | false;
  /**
   * Keep what can be read instead of failing: a page of the referrers API,
   * or the fallback index, that cannot be read (over its cap, broken,
   * malformed) is left out and said in `problems`; and when the API's list is
   * incomplete the fallback index is read too. What a verifier wants: a
   * broken listing then hides no signature stored elsewhere.
   */
  partial?: boolean;
}

/** The referrers of a manifest and where the list came from. */
export interface ReferrerList {
  /** Their descriptors (`artifactType`, `annotations` as listed). */
  referrers: Descriptor[];
  /** `api` (the registry's referrers API), `fallback` (the `sha256-<hex>` index) or `none`. */
  source: "api" | "fallback" | "none";
  /** With `partial`: why pages or the fallback index were left out, one line each. */
  problems?: string[];
}

/**
 * List the referrers of `subject`: from the referrers API when `target` is
 * a registry that has one, else from the tag-schema fallback index.
 *
 * @param target a registry repository or a layout
 * @param subject the subject's digest
 * @param options artifact type filter, fallback tag
 * @returns the referrers and their source
 * @throws {FormatError} when the fallback index is not an index
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { attachArtifact, listReferrers, pushBytes } from "@ocipkg/cli/transport";
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const image = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * assert.deepEqual(await listReferrers(t, image.digest), { referrers: [], source: "none" });
 * const sbom = new TextEncoder().encode('{"spdxVersion":"SPDX-2.3"}');
 * await attachArtifact(t, image, [{ name: "sbom.spdx.json", bytes: sbom }], { artifactType: "application/spdx+json" });
 * const { referrers, source } = await listReferrers(t, image.digest);
 * assert.equal(source, "fallback"); // a layout has no referrers API: the sha256-<hex> index
 * assert.equal(referrers[0]?.artifactType, "application/spdx+json");
 * ```
 */
export async function listReferrers(
  target: ReadTarget,
  subject: string,
  options: ListReferrersOptions = {},
): Promise<ReferrerList> {
  const { artifactType } = options;
  const problems: string[] = [];
  let api: Descriptor[] | undefined;
  if (hasApi(target)) {
    try {
      api = await target.referrers(subject, artifactType);
    } catch (e) {
      if (!options.partial || !(e instanceof OcipkgError)) throw e;
      if (e instanceof IncompleteReferrersError) {
        api = e.referrers;
        problems.push(...e.problems);
      } else problems.push(oneLine(e));
    }
    if (api && problems.length === 0) return { referrers: api, source: "api" };
  }
  const result = (referrers: Descriptor[], source: ReferrerList["source"]): ReferrerList => ({
    referrers,
    source,
    ...(options.partial ? { problems } : {}),
  });
  if (options.fallbackTag === false) return result(api ?? [], api ? "api" : "none");
  let fallback: Descriptor[] | undefined;
  try {
    fallback = await readFallbackIndex(target, subject, options);
  } catch (e) {
    if (!options.partial || !(e instanceof OcipkgError)) throw e;
    problems.push(oneLine(e));
  }
  if (!api) return result(fallback ?? [], fallback ? "fallback" : "none");
  const listed = new Set(api.map((d) => d.digest));
  return result([...api, ...(fallback ?? []).filter((d) => !listed.has(d.digest))], "api");
}

/** The referrers the fallback index lists (at most {@link MAX_FALLBACK_REFERRERS}), or undefined when there is none. */
async function readFallbackIndex(
  target: ReadTarget,
  subject: string,
  options: ListReferrersOptions,
): Promise<Descriptor[] | undefined> {
  const tag = options.fallbackTag || referrersTag(subject);
  const index = await resolveOptional(target, tag);
  if (!index) return undefined;
  const where = `referrers index ${tag} in ${target.description}`;
  const doc = parseManifestDocument(await fetchBytes(target, index, where), index.mediaType, where);
  if (doc.kind !== "index") throw new FormatError(`${where} is not an index`);
  return doc.index.manifests
    .slice(0, MAX_FALLBACK_REFERRERS)
    .filter((d) => !options.artifactType || d.artifactType === options.artifactType);
}

/** Options of {@link pushReferrer}. */
export interface PushReferrerOptions {
  /** The fallback index's tag; default `sha256-<hex>` of the subject. */
  fallbackTag?: string;
  /**
   * Whether the target has the referrers API; default: asked (a registry's
   * `GET /v2/<name>/referrers/<digest>`), false for layouts.
   */
  referrersApi?: boolean;
}

/** What {@link pushReferrer} did. */
export interface PushedReferrer {
  /** The referrer manifest. */
  manifest: Descriptor;
  /** The fallback index's tag, when it was used (no referrers API). */
  fallbackTag?: string;
  /** The fallback index already listed it: it was not written again. */
  existed: boolean;
}

/**
 * Push a manifest that has a `subject`, and make it findable as a referrer:
 * a registry with the referrers API lists it by itself; elsewhere it is
 * added to the fallback index `sha256-<hex>` (created when absent), with
 * its `artifactType` and annotations, as the distribution spec says.
 *
 * @param target a registry repository or a layout
 * @param manifest the manifest (its `subject` is required)
 * @param options fallback tag, whether the referrers API exists
 * @returns the manifest's descriptor and the index used
 * @throws {UsageError} when the manifest has no subject
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget } from "@ocipkg/cli";
 * import { encodeJson, type Manifest, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { listReferrers, pushBytes, pushReferrer } from "@ocipkg/cli/transport";
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const subject = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * const note: Manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: "text/plain", config, layers: [], subject };
 * const r = await pushReferrer(t, note);
 * assert.equal(r.fallbackTag, `sha256-${subject.digest.slice(7)}`);
 * assert.equal((await listReferrers(t, subject.digest)).referrers[0]?.digest, r.manifest.digest);
 * ```
 */
export async function pushReferrer(
  target: Target,
  manifest: Manifest,
  options: PushReferrerOptions = {},
): Promise<PushedReferrer> {
  const subject = manifest.subject;
  if (!subject) throw new UsageError("a referrer manifest needs a subject");
  const mediaType = manifest.mediaType ?? OCI_MANIFEST;
  const desc = await pushBytes(
    target,
    mediaType,
    new TextEncoder().encode(JSON.stringify(manifest)),
  );
  return await indexReferrer(target, desc, manifest, options);
}

/**
 * List a referrer already stored in `target` where readers find it: nothing
 * to do with the referrers API, else an entry in the fallback index.
 */
async function indexReferrer(
  target: Target,
  desc: Descriptor,
  manifest: Manifest | Index,
  options: PushReferrerOptions,
): Promise<PushedReferrer> {
  const subject = manifest.subject!;
  const api = options.referrersApi ??
    (hasApi(target) && await target.referrers(subject.digest) !== undefined);
  if (api) return { manifest: desc, existed: false };
  const fallbackTag = options.fallbackTag ?? referrersTag(subject.digest);
  const entry: Descriptor = stripUndefined({
    mediaType: desc.mediaType,
    digest: desc.digest,
    size: desc.size,
    artifactType: manifest.artifactType ??
      ("config" in manifest ? manifest.config.mediaType : undefined),
    annotations: manifest.annotations,
  });
  const added = await addToFallbackIndex(target, fallbackTag, entry);
  return { manifest: desc, fallbackTag, existed: !added };
}

/** Add a referrer to the tag-schema fallback index, creating it when absent; false when listed. */
async function addToFallbackIndex(
  target: Target,
  tag: string,
  entry: Descriptor,
): Promise<boolean> {
  const existing = await resolveOptional(target, tag);
  let manifests: Descriptor[] = [];
  if (existing) {
    const where = `referrers index ${tag} in ${target.description}`;
    const doc = parseManifestDocument(
      await fetchBytes(target, existing, where),
      existing.mediaType,
      where,
    );
    if (doc.kind !== "index") throw new FormatError(`${where} is not an index`);
    manifests = doc.index.manifests;
    if (manifests.some((d) => d.digest === entry.digest)) return false;
    if (manifests.length >= MAX_FALLBACK_REFERRERS) {
      throw new FormatError(`${where} already lists ${manifests.length} referrers`);
    }
  }
  const index: Index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...manifests, entry] };
  const desc = await pushBytes(target, OCI_INDEX, new TextEncoder().encode(JSON.stringify(index)));
  await target.tag(desc, tag);
  return true;
}

/** A file to attach: a path, or a name and its bytes. */
export type AttachedFile = string | { name: string; bytes: Uint8Array };

/** Options of {@link attachArtifact}. */
export interface AttachOptions extends PushReferrerOptions {
  /** The artifact's type, e.g. `application/spdx+json` (required). */
  artifactType: string;
  /** The files' media type; default `application/octet-stream`. */
  mediaType?: string;
  /** The manifest's annotations. */
  annotations?: Record<string, string>;
}

/** The empty config descriptor of an artifact (`{}`). */
const EMPTY_CONFIG = {
  mediaType: OCI_EMPTY,
  digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  size: 2,
  data: "e30=",
} as const;

/**
 * Attach files to an image as an OCI 1.1 artifact (`oras attach`): each
 * file is a layer titled with its base name, the config is the empty
 * descriptor, `subject` is the image; see {@link pushReferrer} for where it
 * is listed.
 *
 * @param target where the image is (a registry repository or a layout)
 * @param subject the image's manifest
 * @param files paths, or names with bytes
 * @param options artifact type, media type, annotations
 * @returns the pushed referrer
 * @throws {UsageError} for a missing artifact type or no file
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { attachArtifact, listReferrers, pushBytes } from "@ocipkg/cli/transport";
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const image = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * const licence = { name: "LICENSE", bytes: new TextEncoder().encode("MIT") };
 * const r = await attachArtifact(t, image, [licence], { artifactType: "text/plain", annotations: { kind: "licence" } });
 * const [found] = (await listReferrers(t, image.digest, { artifactType: "text/plain" })).referrers;
 * assert.equal(found?.digest, r.manifest.digest);
 * assert.equal(found?.annotations?.kind, "licence");
 * ```
 */
export async function attachArtifact(
  target: Target,
  subject: Descriptor,
  files: AttachedFile[],
  options: AttachOptions,
): Promise<PushedReferrer> {
  if (!options.artifactType) throw new UsageError("an artifact needs an artifact type");
  if (files.length === 0) throw new UsageError("attach at least one file");
  const layers: Descriptor[] = [];
  const mediaType = options.mediaType ?? "application/octet-stream";
  for (const f of files) {
    const title = typeof f === "string" ? basename(f) : f.name;
    const annotations = { [ANNOTATION_TITLE]: printable(title) };
    if (typeof f !== "string") {
      layers.push({ ...(await pushBytes(target, mediaType, f.bytes)), annotations });
      continue;
    }
    layers.push({ ...(await pushFile(target, f, mediaType)), annotations });
  }
  await pushBytes(target, OCI_EMPTY, new TextEncoder().encode("{}"));
  const manifest: Manifest = stripUndefined({
    schemaVersion: 2 as const,
    mediaType: OCI_MANIFEST,
    artifactType: options.artifactType,
    config: { ...EMPTY_CONFIG },
    layers,
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: options.annotations && Object.keys(options.annotations).length > 0
      ? options.annotations
      : undefined,
  });
  return await pushReferrer(target, manifest, options);
}

/**
 * Push a regular file (not a device, fifo or directory: their size is not
 * known or not bounded) by digest and size, hashed first.
 */
async function pushFile(target: Target, path: string, mediaType: string): Promise<Descriptor> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UsageError(`file '${path}' does not exist`);
    throw fsError(e, "file", path);
  }
  if (!st.isFile) throw new UsageError(`'${path}' is not a regular file`);
  const hash = new Digester();
  let size = 0;
  const file = await Deno.open(path);
  try {
    const buf = new Uint8Array(1 << 20);
    for (;;) {
      const n = await file.read(buf);
      if (n === null) break;
      hash.update(buf.subarray(0, n));
      size += n;
    }
  } finally {
    file.close();
  }
  const digest = hash.digest();
  const { stream, found } = await openFileStream(path, size);
  if (found !== size) throw new OcipkgError(`file '${path}' changed while it was read`);
  return await target.push({ mediaType, digest, size }, stream);
}

/** One referrer and, below it, its own referrers (a signature of an SBOM, say). */
export interface ReferrerNode {
  /** The referrer. */
  descriptor: Descriptor;
  /** Where it was listed. */
  source: "api" | "fallback";
  /** Its referrers. */
  referrers: ReferrerNode[];
}

/** Options of {@link discoverReferrers}. */
export interface DiscoverOptions {
  /** Only referrers of this type (at the first level; below, all are shown). */
  artifactType?: string;
  /** How deep to follow referrers of referrers; default 4. */
  depth?: number;
  /** Stop after this many nodes; default 1000. */
  maxNodes?: number;
}

/**
 * The referrers of `subject` as a tree (`oras discover`): each referrer
 * with its own referrers, to `depth` levels, at most `maxNodes` nodes.
 *
 * @param target where the image is
 * @param subject the image's digest
 * @param options type filter, depth, node cap
 * @returns the first level of referrers
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { attachArtifact, discoverReferrers, pushBytes } from "@ocipkg/cli/transport";
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const image = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * const file = (name: string) => ({ name, bytes: new TextEncoder().encode(name) });
 * const sbom = await attachArtifact(t, image, [file("sbom.json")], { artifactType: "application/spdx+json" });
 * await attachArtifact(t, sbom.manifest, [file("sbom.sig")], { artifactType: "text/plain" });
 * const tree = await discoverReferrers(t, image.digest);
 * assert.equal(tree[0]?.descriptor.artifactType, "application/spdx+json");
 * assert.equal(tree[0]?.referrers[0]?.descriptor.artifactType, "text/plain");
 * ```
 */
export async function discoverReferrers(
  target: ReadTarget,
  subject: string,
  options: DiscoverOptions = {},
): Promise<ReferrerNode[]> {
  const maxNodes = options.maxNodes ?? 1000;
  let nodes = 0;
  const seen = new Set<string>([subject]);
  const walk = async (digest: string, level: number, type?: string): Promise<ReferrerNode[]> => {
    const { referrers, source } = await listReferrers(target, digest, { artifactType: type });
    const out: ReferrerNode[] = [];
    for (const d of referrers) {
      if (seen.has(d.digest) || nodes >= maxNodes) continue; // a loop, or enough
      seen.add(d.digest);
      nodes++;
      out.push({
        descriptor: d,
        source: source === "api" ? "api" : "fallback",
        referrers: level + 1 < (options.depth ?? 4) ? await walk(d.digest, level + 1) : [],
      });
    }
    return out;
  };
  return await walk(subject, 0, options.artifactType);
}

/** cosign's tag-scheme suffixes: signatures, attestations, SBOMs. */
const COSIGN_SUFFIXES = ["sig", "att", "sbom"] as const;

/** Options of {@link copyReferrers}. */
export interface CopyReferrersOptions extends CopyOptions {
  /** Follow referrers of referrers this deep; default 4. */
  depth?: number;
}

/**
 * Copy what is attached to `subject` from `src` to `dst`: cosign's
 * tag-scheme manifests (`sha256-<hex>.sig`, `.att`, `.sbom`) under the same
 * tags, and every referrer (and theirs, to `depth`), listed at `dst` as
 * `dst` lists referrers (its API, or the fallback index).
 *
 * @param src where the image and its attachments are
 * @param dst where the image was copied
 * @param subject the image
 * @param options copy options, depth
 * @returns how many manifests were copied
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { copyGraph, copyReferrers, pushBytes } from "@ocipkg/cli/transport";
 * import { generateSigningKeyPair, signImage, verifySignatures } from "@ocipkg/cli/sign";
 * const src = new MemoryTarget();
 * const config = await pushBytes(src, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const image = await pushBytes(src, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * const { privateKey, publicKey } = generateSigningKeyPair();
 * await signImage(src, image, privateKey, { dockerReference: "example.com/foo" });
 * await signImage(src, image, privateKey, { dockerReference: "example.com/foo", referrers: true });
 * const dst = new MemoryTarget();
 * await copyGraph(src, dst, image);
 * assert.equal(await copyReferrers(src, dst, image), 2);
 * assert.equal((await verifySignatures(dst, image, publicKey)).length, 2);
 * ```
 */
export async function copyReferrers(
  src: ReadTarget,
  dst: Target,
  subject: Descriptor,
  options: CopyReferrersOptions = {},
): Promise<number> {
  let copied = 0;
  const seen = new Set<string>([subject.digest]);
  const walk = async (d: Descriptor, level: number): Promise<void> => {
    for (const suffix of COSIGN_SUFFIXES) {
      const { algorithm, hex } = parseDigest(d.digest);
      const tag = `${algorithm}-${hex}.${suffix}`;
      const attached = await resolveOptional(src, tag);
      if (!attached || seen.has(attached.digest)) continue;
      seen.add(attached.digest);
      await copyGraph(src, dst, attached, options);
      await dst.tag(attached, tag);
      copied++;
    }
    const { referrers } = await listReferrers(src, d.digest);
    for (const r of referrers) {
      if (seen.has(r.digest) || seen.size > MAX_FALLBACK_REFERRERS) continue;
      seen.add(r.digest);
      await copyGraph(src, dst, r, options);
      const where = `referrer ${r.digest} of ${d.digest} in ${src.description}`;
      const doc = parseManifestDocument(await fetchBytes(src, r, where), r.mediaType, where);
      const m = doc.kind === "manifest" ? doc.manifest : doc.index;
      if (m.subject?.digest !== d.digest) {
        throw new FormatError(`${where} names another subject (${m.subject?.digest ?? "none"})`);
      }
      await indexReferrer(dst, r, m, {});
      copied++;
      if (level + 1 < (options.depth ?? 4)) await walk(r, level + 1);
    }
  };
  await walk(subject, 0);
  return copied;
}
