/**
 * The manifests of a repository on a registry: resolving a tag or digest
 * (`GET`, verified, of a known manifest type), the digest a tag points at
 * (`HEAD`), fetching one by digest (verified), pushing one (`PUT` by digest
 * or tag, the registry's answered digest checked), deleting one (`DELETE` by
 * digest, or a tag alone where the registry allows it), and a small cache of
 * the manifests seen, by digest.
 *
 * @module
 */
import { isDigest, verifyBytes } from "../../oci/digest.ts";
import { FormatError, NotFoundError } from "../../util/errors.ts";
import { RegistryError } from "./errors.ts";
import {
  type Descriptor,
  isManifestType,
  MAX_MANIFEST_SIZE,
  stripUndefined,
} from "../../oci/manifest.ts";
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_INDEX,
  OCI_MANIFEST,
} from "../../oci/media_types.ts";
import { type BlobSpec, bytesStream, type FetchOptions } from "../target.ts";
import { printable } from "../../util/text.ts";
import { readCapped } from "./http.ts";
import type { Repository } from "./repository.ts";

/** The manifest types asked for (`Accept`). */
export const MANIFEST_ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST]
  .join(", ");
/** Manifests kept in a target's small cache (by digest). */
const MANIFEST_CACHE = 8;

/**
 * The manifests of one repository.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegistryClient } from "./client.ts";
 * import { Manifests } from "./manifests.ts";
 * import { Repository } from "./repository.ts";
 * // a stand-in for a registry that knows no manifest
 * const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
 * const server = Deno.serve(listen, () => new Response(null, { status: 404 }));
 * const client = new RegistryClient(`127.0.0.1:${server.addr.port}`, { credential: null });
 * const manifests = new Manifests(new Repository(client, "org/x", {}));
 * await assert.rejects(manifests.resolve("1"), /not found .*no such tag or repository/);
 * client.close();
 * await server.shutdown();
 * ```
 */
export class Manifests {
  #repo: Repository;
  /** A small cache of the manifests fetched or pushed, by digest (verified when stored). */
  #manifests = new Map<string, { bytes: Uint8Array; mediaType: string; size: number }>();

  /**
   * Create the Manifests of a repository.
   * @param repo the repository
   */
  constructor(repo: Repository) {
    this.#repo = repo;
  }

  #cache(digest: string, bytes: Uint8Array, mediaType: string): void {
    this.#manifests.delete(digest);
    this.#manifests.set(digest, { bytes, mediaType, size: bytes.byteLength });
    for (const k of this.#manifests.keys()) {
      if (this.#manifests.size <= MANIFEST_CACHE) break;
      this.#manifests.delete(k);
    }
  }

  /**
   * Whether the cache holds a manifest.
   * @param digest its digest
   * @returns true when {@link fetch} answers it without a request
   */
  has(digest: string): boolean {
    return this.#manifests.has(digest);
  }

  /**
   * Resolve a tag or digest to the descriptor of its manifest (verified,
   * kept in the cache). A digest whose manifest is in the cache is answered
   * from it, without a request (a copy resolves by digest the manifest it
   * resolved by tag a moment before) — unless this object has deleted it, or
   * been told it is gone ({@link Manifests.delete}, {@link Manifests.digestOf}).
   *
   * @param reference a tag or digest
   * @returns the descriptor
   * @throws {NotFoundError} when the registry has no such manifest
   */
  async resolve(reference: string): Promise<Descriptor> {
    this.#repo.checkReference(reference);
    const known = this.#manifests.get(reference);
    if (known) return { mediaType: known.mediaType, digest: reference, size: known.size };
    const what = this.#repo.what(reference);
    const { res, bytes } = await this.#repo.client.requestBytes(
      {
        method: "GET",
        url: `/v2/${this.#repo.repository}/manifests/${reference}`,
        headers: { accept: MANIFEST_ACCEPT },
        scope: this.#repo.scope(),
        what,
        ok: [200, 404],
      },
      MAX_MANIFEST_SIZE,
      `manifest of ${what}`,
    );
    if (res.status === 404) {
      throw new NotFoundError(
        `${what} not found on ${this.#repo.client.registry}${
          isDigest(reference) ? "" : " (no such tag or repository)"
        }`,
      );
    }
    // content first: bytes that do not match the digest asked for (or the one
    // the registry answered) are a verification failure, whatever they hold
    const { digest, size } = await verifyBytes(
      bytes,
      { digest: isDigest(reference) ? reference : undefined },
      `manifest of ${what}`,
    );
    await this.#repo.checkAnswered(res, digest, `manifest of ${what}`, bytes);
    const contentType = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
    let declared: string | undefined;
    try {
      declared = JSON.parse(new TextDecoder().decode(bytes)).mediaType;
    } catch {
      throw new FormatError(
        `${what}: ${this.#repo.client.registry} answered a manifest that is not JSON (content-type '${
          contentType || "none"
        }')`,
      );
    }
    const mediaType = isManifestType(contentType) ? contentType : declared ?? contentType;
    if (!isManifestType(mediaType)) {
      throw new FormatError(
        `${what}: ${this.#repo.client.registry} answered an unknown manifest type '${
          printable(mediaType.slice(0, 200))
        }'`,
      );
    }
    this.#cache(digest, bytes, mediaType);
    return { mediaType, digest, size };
  }

  /**
   * Stream a manifest, verified against `desc` (size and digest), from the
   * cache when it is there.
   *
   * @param desc the manifest's descriptor
   * @param options `signal`: stops its request
   * @returns its bytes as a stream
   * @throws {VerificationError} naming the digest and the repository
   */
  async fetch(desc: Descriptor, options: FetchOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const what = `manifest ${desc.digest} of ${this.#repo.description}`;
    const cached = this.#manifests.get(desc.digest)?.bytes;
    if (cached) {
      await verifyBytes(cached, desc, what);
      return bytesStream(cached);
    }
    const { bytes } = await this.#repo.client.requestBytes(
      {
        method: "GET",
        url: `/v2/${this.#repo.repository}/manifests/${desc.digest}`,
        headers: { accept: desc.mediaType },
        scope: this.#repo.scope(),
        what: this.#repo.what(desc.digest),
        signal: options.signal,
      },
      MAX_MANIFEST_SIZE,
      what,
    );
    await verifyBytes(bytes, desc, what);
    return bytesStream(bytes);
  }

  /**
   * Push a manifest by its digest (verified against `spec`), and keep it.
   *
   * @param spec what it is expected to be
   * @param content its bytes
   * @param signal stops its request
   * @returns its descriptor
   */
  async push(
    spec: BlobSpec,
    content: ReadableStream<Uint8Array>,
    signal?: AbortSignal,
  ): Promise<Descriptor> {
    const what = `manifest ${spec.digest ?? "(new)"} for ${this.#repo.description}`;
    const bytes = await readCapped(new Response(content), MAX_MANIFEST_SIZE, what);
    const { digest, size } = await verifyBytes(bytes, spec, what);
    await this.put(bytes, spec.mediaType, digest, digest, signal);
    this.#cache(digest, bytes, spec.mediaType);
    return stripUndefined({ ...spec, digest, size });
  }

  /**
   * PUT a manifest by digest or tag; the registry's answered digest must be `digest`.
   *
   * @param bytes the manifest
   * @param mediaType its media type
   * @param reference the digest or tag to put it under
   * @param digest its digest
   * @param signal stops the request
   */
  async put(
    bytes: Uint8Array,
    mediaType: string,
    reference: string,
    digest: string,
    signal?: AbortSignal,
  ): Promise<void> {
    this.#repo.checkReference(reference);
    const res = await this.#repo.client.request({
      method: "PUT",
      url: `/v2/${this.#repo.repository}/manifests/${reference}`,
      headers: { "content-type": mediaType },
      body: bytes,
      scope: this.#repo.scope(true),
      what: this.#repo.what(reference),
      ok: [200, 201, 202],
      signal,
    });
    await res.body?.cancel();
    await this.#repo.checkAnswered(
      res,
      digest,
      `manifest ${digest} for ${this.#repo.description}`,
      bytes,
    );
  }

  /**
   * The digest a tag (or digest) points at, from a `HEAD` request: the
   * `Docker-Content-Digest` the registry answered when it is a digest, else
   * the verified digest of the manifest itself (a `GET`).
   *
   * @param reference a tag or digest
   * @returns the digest, or undefined when the registry has no such manifest
   */
  async digestOf(reference: string): Promise<string | undefined> {
    this.#repo.checkReference(reference);
    const res = await this.#repo.client.request({
      method: "HEAD",
      url: `/v2/${this.#repo.repository}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT },
      scope: this.#repo.scope(),
      what: this.#repo.what(reference),
      ok: [200, 404],
    });
    await res.body?.cancel();
    if (res.status === 404) {
      this.#manifests.delete(reference); // gone: no longer answered from the cache
      return undefined;
    }
    const answered = res.headers.get("docker-content-digest")?.trim() ?? "";
    if (isDigest(answered)) return answered;
    return (await this.resolve(reference)).digest;
  }

  /**
   * Delete a manifest by digest (every tag pointing to it goes with it), or
   * a tag alone — which the OCI distribution spec allows, but distribution
   * 2.x (`docker-registry`, Docker Hub) does not: it answers
   * `DIGEST_INVALID`.
   *
   * @param reference a digest, or a tag
   * @throws {NotFoundError} when the registry has no such manifest or tag
   * @throws {RegistryError} naming the registry when it does not delete (this)
   */
  async delete(reference: string): Promise<void> {
    this.#repo.checkReference(reference);
    // no longer answered from the cache, whatever the registry answers (a 404: gone already)
    this.#manifests.delete(reference);
    const what = this.#repo.what(reference);
    const registry = this.#repo.client.registry;
    let res: Response;
    try {
      res = await this.#repo.client.request({
        method: "DELETE",
        url: `/v2/${this.#repo.repository}/manifests/${reference}`,
        scope: `repository:${this.#repo.repository}:delete`,
        what,
        ok: [200, 202, 204, 404],
      });
    } catch (e) {
      if (!(e instanceof RegistryError)) throw e;
      const tag = !isDigest(reference);
      if (e.status !== 405 && !(tag && e.status === 400)) throw e;
      const answered = `answered ${e.status}${e.code ? ` ${printable(e.code.slice(0, 40))}` : ""}`;
      const why = e.status === 400
        ? "does not delete a tag alone"
        : tag
        ? "does not allow deleting this tag (deleting is disabled, or a tag cannot go alone)"
        : "does not allow deleting";
      const hint = e.status === 400
        ? "distribution 2.x, docker-registry and Docker Hub delete manifests by digest only"
        : "docker-registry needs storage.delete.enabled, ocipkg serve needs --delete";
      throw new RegistryError(
        `${what}: ${registry} ${why} (${answered}; ${hint})`,
        e.status,
        e.code,
      );
    }
    await res.body?.cancel();
    if (res.status === 404) {
      throw new NotFoundError(
        `${what} not found on ${registry}${
          isDigest(reference) ? "" : " (no such tag or repository)"
        }`,
      );
    }
  }
}
