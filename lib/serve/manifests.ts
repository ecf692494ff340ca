/**
 * The manifest endpoints of `serve`: `GET`/`HEAD`, `PUT` (checked: a
 * manifest or index media type, its digest, every blob and child manifest it
 * names present) and `DELETE` of `/v2/<name>/manifests/<tag|digest>`, and the
 * referrers API (`GET /v2/<name>/referrers/<digest>`, filtered by
 * `artifactType`). A tag moved away leaves its old manifest listed, untagged.
 *
 * The referrers API answers in pages ordered by digest, each small enough for
 * any client (the distribution spec lets a registry paginate it with
 * `Link: <…>; rel="next"`):
 *
 * | limit                                        | default                                                                        |
 * | -------------------------------------------- | ------------------------------------------------------------------------------ |
 * | descriptors per answer (and the largest `n`) | {@link REFERRERS_PAGE_ENTRIES}: 1,000                                          |
 * | annotation bytes (JSON) per answer           | {@link REFERRERS_PAGE_ANNOTATION_BYTES}: 1 MiB                                 |
 * | annotation bytes of one referrer             | {@link REFERRER_ANNOTATION_BYTES}: 64 KiB; over it, listed without annotations |
 * | bytes of one descriptor without annotations  | {@link REFERRER_DESCRIPTOR_BYTES}: 1 KiB; over it, not listed                  |
 *
 * so an answer stays under about 2 MiB whatever was pushed; the next page is
 * `?n=<n>&last=<digest of the last referrer considered>`.
 *
 * @module
 */
import { digestOf, isDigest, parseDigest } from "../oci/digest.ts";
import { readBodyCapped } from "../util/body.ts";
import { type Descriptor, MAX_MANIFEST_SIZE, parseManifestDocument } from "../oci/manifest.ts";
import { INDEX_TYPES, MANIFEST_TYPES, OCI_INDEX } from "../oci/media_types.ts";
import { isTag } from "../oci/reference.ts";
import { ServeError } from "./errors.ts";
import { allow, checkDigest, empty, json, knownRepository, type Served } from "./http.ts";
import { checkName, type Repository, type Storage } from "./storage.ts";

/** Most descriptors in one answer of the referrers API, and the largest `n` it takes. */
export const REFERRERS_PAGE_ENTRIES = 1000;
/** Most bytes of annotations (their JSON) in one answer of the referrers API. */
export const REFERRERS_PAGE_ANNOTATION_BYTES = 1024 * 1024;
/** A referrer whose annotations (their JSON) are larger is listed without them. */
export const REFERRER_ANNOTATION_BYTES = 64 * 1024;
/**
 * A referrer whose descriptor without annotations (its JSON) is larger is not
 * listed: only an `artifactType` far longer than any media type makes it so.
 */
export const REFERRER_DESCRIPTOR_BYTES = 1024;

/**
 * The manifest and referrers endpoints of one served root.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { ManifestEndpoints } from "./manifests.ts";
 * import { Storage } from "./storage.ts";
 * import { Uploads } from "./uploads.ts";
 * const root = await Deno.makeTempDir();
 * const storage = await Storage.open(root);
 * const uploads = new Uploads(storage.uploads);
 * const manifests = new ManifestEndpoints({ storage, uploads, options: {} });
 * // a manifest naming a blob the repository does not have is refused
 * const config = { mediaType: "application/json", digest: "sha256:" + "0".repeat(64), size: 2 };
 * const body = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] });
 * const put = new Request("http://x/v2/app/manifests/1", {
 *   method: "PUT",
 *   headers: { "content-type": OCI_MANIFEST },
 *   body,
 * });
 * await assert.rejects(manifests.manifest(put, "app", "1"), { code: "MANIFEST_BLOB_UNKNOWN" });
 * await uploads.close();
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export class ManifestEndpoints {
  #storage: Storage;
  #options: Served["options"];

  /** @param served the root and the modes */
  constructor(served: Served) {
    this.#storage = served.storage;
    this.#options = served.options;
  }

  // ---- manifests

  /**
   * `GET`, `HEAD`, `PUT` or `DELETE` a manifest.
   * @param req the request
   * @param name the repository
   * @param ref a tag or digest (decoded)
   * @returns the response
   */
  async manifest(req: Request, name: string, ref: string): Promise<Response> {
    if (req.method === "GET" || req.method === "HEAD") {
      return await this.#getManifest(req, name, ref);
    }
    if (req.method === "PUT") return await this.#putManifest(req, name, ref);
    if (req.method === "DELETE") return await this.#deleteManifest(name, ref);
    allow(req, ["GET", "HEAD", "PUT", "DELETE"]);
    throw new Error("unreachable");
  }

  /** A reference a manifest is PUT under: a bad one is a bad upload (400). */
  #checkRef(ref: string): void {
    if (ref.includes(":")) checkDigest(ref);
    else if (!isTag(ref)) {
      throw new ServeError("MANIFEST_INVALID", `invalid tag '${ref.slice(0, 200)}'`);
    }
  }

  /**
   * A reference to read or delete: one that is neither a tag nor a digest
   * names no manifest, so it is not found (404 `MANIFEST_UNKNOWN`, as the
   * distribution spec and its conformance suite want), not a bad request.
   */
  #checkLookup(name: string, ref: string): void {
    if (!isTag(ref) && !isDigest(ref)) {
      throw new ServeError(
        "MANIFEST_UNKNOWN",
        `manifest '${ref.slice(0, 200)}' is not in '${name.slice(0, 200)}': not a tag or a digest`,
      );
    }
  }

  async #findManifest(
    repo: Repository,
    ref: string,
  ): Promise<{ digest: string; mediaType: string; bytes: Uint8Array } | undefined> {
    const entry = isDigest(ref) ? await repo.entry(ref) : await repo.tagged(ref);
    const digest = entry?.digest ?? (isDigest(ref) ? ref : undefined);
    if (!digest) return undefined;
    const info = await repo.info(digest, entry?.mediaType);
    const bytes = info && await repo.readManifest(digest);
    if (!info || !bytes) return undefined;
    return { digest, mediaType: entry?.mediaType ?? info.mediaType, bytes };
  }

  async #getManifest(req: Request, name: string, ref: string): Promise<Response> {
    this.#checkLookup(name, ref);
    const repo = await knownRepository(this.#storage, name);
    const found = await this.#findManifest(repo, ref);
    if (!found) {
      throw new ServeError("MANIFEST_UNKNOWN", `manifest '${ref}' is not in '${name}'`);
    }
    const headers = {
      "content-type": found.mediaType,
      "content-length": String(found.bytes.byteLength),
      "docker-content-digest": found.digest,
      etag: `"${found.digest}"`,
    };
    return new Response(req.method === "HEAD" ? null : found.bytes as Uint8Array<ArrayBuffer>, {
      status: 200,
      headers,
    });
  }

  async #putManifest(req: Request, name: string, ref: string): Promise<Response> {
    checkName(name);
    this.#checkRef(ref);
    const mediaType = (req.headers.get("content-type") ?? "").split(";")[0]!.trim();
    const bytes = await readBodyCapped(
      req,
      MAX_MANIFEST_SIZE,
      () =>
        new ServeError("SIZE_INVALID", `manifest is over the ${MAX_MANIFEST_SIZE}-byte cap`, {
          status: 413,
        }),
    );
    if (![...MANIFEST_TYPES, ...INDEX_TYPES].includes(mediaType)) {
      throw new ServeError(
        "MANIFEST_INVALID",
        `Content-Type '${mediaType.slice(0, 100)}' is not a manifest or index media type`,
      );
    }
    let doc;
    try {
      doc = parseManifestDocument(bytes, mediaType, "manifest");
    } catch (e) {
      throw new ServeError("MANIFEST_INVALID", (e as Error).message.slice(0, 300));
    }
    const algorithm = isDigest(ref) ? parseDigest(ref).algorithm : "sha256";
    const digest = digestOf(bytes, algorithm);
    if (isDigest(ref) && ref !== digest) {
      throw new ServeError("DIGEST_INVALID", `manifest has digest ${digest}, not ${ref}`);
    }
    const repo = await this.#storage.repository(name, true);
    if (!repo) throw new Error("unreachable");
    // every blob (and child manifest) it names must be in the repository
    const needs: Descriptor[] = doc.kind === "manifest"
      ? [doc.manifest.config, ...doc.manifest.layers]
      : doc.index.manifests;
    for (const d of needs) {
      if (d.urls?.length) continue; // a foreign layer, served elsewhere
      if ((await repo.blobSize(d.digest)) !== d.size) {
        throw new ServeError(
          "MANIFEST_BLOB_UNKNOWN",
          `manifest references ${d.digest} (${d.size} bytes), which '${name}' does not have`,
        );
      }
    }
    const subject = doc.kind === "manifest" ? doc.manifest.subject : doc.index.subject;
    const artifactType = doc.kind === "manifest"
      ? doc.manifest.artifactType
      : doc.index.artifactType;
    const desc: Descriptor = {
      mediaType,
      digest,
      size: bytes.byteLength,
      ...(artifactType ? { artifactType } : {}),
    };
    await repo.storeManifest(desc, ref, bytes);
    const headers: Record<string, string> = {
      location: `/v2/${name}/manifests/${digest}`,
      "docker-content-digest": digest,
    };
    if (subject) headers["oci-subject"] = subject.digest;
    return empty(201, headers);
  }

  async #deleteManifest(name: string, ref: string): Promise<Response> {
    if (!this.#options.delete) {
      throw new ServeError("UNSUPPORTED", "deleting is not enabled on this registry");
    }
    this.#checkLookup(name, ref);
    const repo = await knownRepository(this.#storage, name);
    if (isDigest(ref)) {
      if (!(await repo.deleteManifest(ref))) {
        throw new ServeError("MANIFEST_UNKNOWN", `manifest '${ref}' is not in '${name}'`);
      }
    } else if (!(await repo.deleteTag(ref))) {
      throw new ServeError("MANIFEST_UNKNOWN", `tag '${ref}' is not in '${name}'`);
    }
    return empty(202);
  }

  // ---- referrers

  /**
   * `GET` the referrers of a manifest: an image index (empty when none),
   * ordered by digest and paginated — at most `n` (default and most
   * {@link REFERRERS_PAGE_ENTRIES}) descriptors and
   * {@link REFERRERS_PAGE_ANNOTATION_BYTES} of annotations per answer, the
   * rest behind `Link: <…?n=…&last=<digest>>; rel="next"`. A referrer whose
   * annotations are over {@link REFERRER_ANNOTATION_BYTES} is listed without
   * them; one whose descriptor is still over {@link REFERRER_DESCRIPTOR_BYTES}
   * (an `artifactType` no media type is that long) is not listed.
   * @param url the request's URL (`?artifactType=` filters; `n`, `last` page)
   * @param name the repository
   * @param digest the subject's digest (checked)
   * @returns the response
   */
  async referrers(url: URL, name: string, digest: string): Promise<Response> {
    checkName(name);
    const want = url.searchParams.get("artifactType");
    const nText = url.searchParams.get("n");
    const last = url.searchParams.get("last");
    let n = REFERRERS_PAGE_ENTRIES;
    if (nText !== null) {
      if (!/^\d{1,9}$/.test(nText)) {
        throw new ServeError("UNSUPPORTED", `invalid n '${nText.slice(0, 20)}'`, { status: 400 });
      }
      n = Math.min(Number(nText), REFERRERS_PAGE_ENTRIES);
    }
    if (last !== null && !isDigest(last)) {
      throw new ServeError("UNSUPPORTED", `invalid last '${last.slice(0, 80)}': not a digest`, {
        status: 400,
      });
    }
    const repo = await this.#storage.repository(name);
    // the referrers after `last`, in digest order: one more than a page can hold tells of a next
    const all: Descriptor[] = [];
    let listable = 0;
    for await (const d of repo ? repo.referrersOf(digest, last ?? undefined) : []) {
      if (want !== null && d.artifactType !== want) continue;
      all.push(d);
      const { annotations: _, ...plain } = d;
      if (byteLength(plain) <= REFERRER_DESCRIPTOR_BYTES && ++listable > n) break;
    }
    const manifests: Descriptor[] = [];
    let annotationBytes = 0;
    let considered = 0;
    for (const d of all) {
      if (manifests.length >= n) break;
      const { annotations, ...plain } = d;
      if (byteLength(plain) > REFERRER_DESCRIPTOR_BYTES) {
        considered++;
        continue;
      }
      const size = annotations ? byteLength(annotations) : 0;
      if (size > REFERRER_ANNOTATION_BYTES) {
        manifests.push(plain);
      } else {
        if (annotationBytes + size > REFERRERS_PAGE_ANNOTATION_BYTES) break;
        annotationBytes += size;
        manifests.push(d);
      }
      considered++;
    }
    const headers: Record<string, string> = { "content-type": OCI_INDEX };
    if (want !== null) headers["oci-filters-applied"] = "artifactType";
    if (considered < all.length && considered > 0) {
      const next = new URLSearchParams({
        ...(want !== null ? { artifactType: want } : {}),
        n: String(n),
        last: all[considered - 1]!.digest,
      });
      headers.link = `</v2/${name}/referrers/${digest}?${next}>; rel="next"`;
    }
    return json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }, 200, headers);
  }
}

/** Bytes of a value's JSON. */
function byteLength(v: unknown): number {
  return new TextEncoder().encode(JSON.stringify(v)).byteLength;
}
