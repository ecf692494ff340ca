/**
 * A repository on a distribution-spec registry as a {@link Target}: manifests
 * and blobs by digest, HEAD to skip what exists, monolithic uploads for small
 * blobs, one streamed `PUT …?digest=` for large ones of known digest and size
 * (no buffers; the registry checks the digest), and chunked `PATCH` uploads
 * (honouring `OCI-Chunk-Min-Length`, resuming from the server's `Range`) when
 * `chunkSize` is set, the registry demands chunks or refused a streamed
 * upload, or a streamed upload of the blob was lost; cross-repository
 * mounts, resumable blob downloads (`Range`, coping with a 200 answer),
 * large blobs fetched in parallel ranges (see `ranged.ts`), tag
 * listing streamed page by page with bounded `Link` pagination (same origin
 * only, no loops, {@link MAX_TAG_PAGES} pages, {@link MAX_TAGS} tags, each
 * page at most {@link MAX_BODY} bytes).
 *
 * @module
 */
import {
  type Expected,
  isDigest,
  type Measured,
  parseDigest,
  Verifier,
  vouch,
} from "../../oci/digest.ts";
import {
  FormatError,
  NotFoundError,
  oneLine,
  UsageError,
  VerificationError,
} from "../../util/errors.ts";
import { isFileStream } from "../../util/files.ts";
import {
  type Descriptor,
  isManifestType,
  MAX_MANIFEST_SIZE,
  parseManifestDocument,
  stripUndefined,
} from "../../oci/manifest.ts";
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_INDEX,
  OCI_MANIFEST,
} from "../../oci/media_types.ts";
import type { BlobSpec, ReadTarget, Target } from "../target.ts";
import { bytesStream, TransferLostError } from "../target.ts";
import { isLoopbackHost, isRepositoryName, isTag } from "../../oci/reference.ts";
import { printable } from "../../util/text.ts";
import {
  type ClientOptions,
  MAX_BODY,
  readCapped,
  RegistryClient,
  RegistryTimeoutError,
} from "./client.ts";
import { RegistryError } from "./errors.ts";
import { rangedStream } from "./ranged.ts";

const MANIFEST_ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST].join(", ");
/** At most this many referrers of one manifest are read. */
export const MAX_REFERRERS = 10_000;
/** Blobs up to this size are uploaded in one request. */
export const MONOLITHIC_MAX = 4 * 1024 * 1024;
/** Default chunk for chunked uploads. */
export const DEFAULT_CHUNK = 8 * 1024 * 1024;
/** Most pages read when listing tags (default of `maxTagPages`). */
export const MAX_TAG_PAGES = 10_000;
/** Most tags listed (default of `maxTags`); listing more fails. */
export const MAX_TAGS = 1_000_000;
/** Default of `rangeParts`: ranged requests in flight for one large blob. */
export const DEFAULT_RANGE_PARTS = 4;
/** Default of `rangeThreshold`: blobs from this size are fetched in parallel ranges (32 MiB). */
export const DEFAULT_RANGE_THRESHOLD = 32 * 1024 * 1024;
/** Default of `rangeSegmentSize`: bytes per ranged request (8 MiB). */
export const DEFAULT_RANGE_SEGMENT = 8 * 1024 * 1024;
/** Manifests kept in a target's small cache (by digest). */
const MANIFEST_CACHE = 8;

/** Check a whole byte array with the one {@link Verifier}. */
function verifyBytes(bytes: Uint8Array, expected: Expected, what: string): Measured {
  const v = new Verifier(expected, what);
  v.update(bytes);
  return v.finish();
}

/** Options of {@link RegistryTarget}. */
export interface RegistryTargetOptions extends ClientOptions {
  /**
   * The image as the user wrote it (e.g. `ghcr.io/org/x:1.0`): errors about
   * its manifests name it, not only the digest they resolved to.
   */
  image?: string;
  /**
   * Chunk size for uploads of large blobs (default 8 MiB). Setting it uploads
   * large blobs in chunks instead of one streamed `PUT`.
   */
  chunkSize?: number;
  /** Attempts to resume an interrupted download (default 5), across all of a blob's parts. */
  resumeAttempts?: number;
  /**
   * Ranged requests in flight at once for one blob of at least
   * `rangeThreshold` bytes; 0 or 1 downloads every blob as one stream.
   * Default: {@link DEFAULT_RANGE_PARTS}, but 1 for a loopback registry (no
   * per-connection cap to get around, and parts cost CPU a local link lacks).
   */
  rangeParts?: number;
  /** Smallest blob fetched in parallel ranges (default {@link DEFAULT_RANGE_THRESHOLD}). */
  rangeThreshold?: number;
  /** Bytes per ranged request (default {@link DEFAULT_RANGE_SEGMENT}). */
  rangeSegmentSize?: number;
  /**
   * Hash large blobs (32 MiB or more) on a worker thread while the next bytes
   * arrive (default true). `get` turns it off: its extraction is slower than
   * hashing, and the worker costs about 30 MB of memory.
   */
  hashOffThread?: boolean;
  /** Most pages of a tag list read (default {@link MAX_TAG_PAGES}). */
  maxTagPages?: number;
  /** Most tags listed (default {@link MAX_TAGS}); more is an error. */
  maxTags?: number;
}

/**
 * One repository of a registry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegistryTarget } from "@ocipkg/cli";
 * const t = new RegistryTarget("localhost:5000", "org/libfoo", { credential: null });
 * assert.equal(t.description, "localhost:5000/org/libfoo");
 * assert.equal(t.repository, "org/libfoo");
 * assert.equal(t.client.baseUrl, "http://localhost:5000"); // a loopback host: plain http
 * await t.close();
 * ```
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { copy, OciArchive, RegistryTarget, withTarget } from "@ocipkg/cli";
 * const src = await OciArchive.open("libfoo.tar");
 * const root = await withTarget(
 *   new RegistryTarget("ghcr.io", "org/libfoo"), // credentials from `ocipkg login`, docker, podman
 *   (dst) => copy(src, dst, { dstRef: "1.2" }), // the archive's only image, tagged 1.2
 * );
 * await src.close();
 * const again = new RegistryTarget("ghcr.io", "org/libfoo");
 * assert.equal((await again.resolve("1.2")).digest, root.digest);
 * await again.close();
 * ```
 */
export class RegistryTarget implements Target {
  readonly description: string;
  /** The HTTP client (shared by targets of the same registry if passed in). */
  readonly client: RegistryClient;
  /** Repository path, e.g. `org/libfoo`. */
  readonly repository: string;
  #options: RegistryTargetOptions;
  #manifests = new Map<string, Uint8Array>(); // small cache of fetched manifests by digest
  #noStreaming = false; // the registry refused a streamed upload: chunks from now on
  #resumable = new Set<string>(); // blobs whose streamed upload was lost: sent again in chunks

  #cache(digest: string, bytes: Uint8Array): void {
    this.#manifests.delete(digest);
    this.#manifests.set(digest, bytes);
    for (const k of this.#manifests.keys()) {
      if (this.#manifests.size <= MANIFEST_CACHE) break;
      this.#manifests.delete(k);
    }
  }

  /**
   * Create a RegistryTarget.
   * @param registry `host[:port]` (any spelling: made canonical) or an existing client
   * @param repository repository path
   * @param options client and transfer options
   * @throws {UsageError} naming the repository when it is not a valid repository name
   */
  constructor(
    registry: string | RegistryClient,
    repository: string,
    options: RegistryTargetOptions = {},
  ) {
    if (!isRepositoryName(repository)) {
      throw new UsageError(
        `invalid repository name '${
          printable(repository.slice(0, 300))
        }' (lower-case letters, digits, '.', '_', '-', '/')`,
      );
    }
    this.client = typeof registry === "string" ? new RegistryClient(registry, options) : registry;
    this.repository = repository;
    this.description = `${this.client.registry}/${repository}`;
    this.#options = options;
  }

  #scope(push = false): string {
    return `repository:${this.repository}:${push ? "pull,push" : "pull"}`;
  }

  #what(ref: string): string {
    const named = `${this.description}${isDigest(ref) ? "@" : ":"}${ref}`;
    const image = this.#options.image;
    // a digest the user never wrote: name the image as they wrote it
    if (image && isDigest(ref) && !image.endsWith(`@${ref}`)) return `image '${image}' (${ref})`;
    return `image '${named}'`;
  }

  /**
   * Check that the registry speaks the v2 API (and that credentials work).
   *
   * @throws {RegistryError} naming the host
   */
  async ping(): Promise<void> {
    const res = await this.client.request({
      method: "GET",
      url: "/v2/",
      what: `registry ${this.client.registry}`,
    });
    await res.body?.cancel();
  }

  /** A tag or digest, checked before it goes into a URL path. */
  #checkReference(reference: string): void {
    if (!isTag(reference) && !isDigest(reference)) {
      throw new UsageError(
        `invalid reference '${
          printable(reference.slice(0, 300))
        }' for ${this.description}: not a tag or a digest`,
      );
    }
  }

  async resolve(reference = "latest"): Promise<Descriptor> {
    this.#checkReference(reference);
    const what = this.#what(reference);
    const { res, bytes } = await this.client.requestBytes(
      {
        method: "GET",
        url: `/v2/${this.repository}/manifests/${reference}`,
        headers: { accept: MANIFEST_ACCEPT },
        scope: this.#scope(),
        what,
        ok: [200, 404],
      },
      MAX_MANIFEST_SIZE,
      `manifest of ${what}`,
    );
    if (res.status === 404) {
      throw new NotFoundError(
        `${what} not found on ${this.client.registry}${
          isDigest(reference) ? "" : " (no such tag or repository)"
        }`,
      );
    }
    // content first: bytes that do not match the digest asked for (or the one
    // the registry answered) are a verification failure, whatever they hold
    const { digest, size } = verifyBytes(
      bytes,
      { digest: isDigest(reference) ? reference : undefined },
      `manifest of ${what}`,
    );
    this.#checkAnswered(res, digest, `manifest of ${what}`, bytes);
    const contentType = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
    let declared: string | undefined;
    try {
      declared = JSON.parse(new TextDecoder().decode(bytes)).mediaType;
    } catch {
      throw new FormatError(
        `${what}: ${this.client.registry} answered a manifest that is not JSON (content-type '${
          contentType || "none"
        }')`,
      );
    }
    const mediaType = isManifestType(contentType) ? contentType : declared ?? contentType;
    if (!isManifestType(mediaType)) {
      throw new FormatError(
        `${what}: ${this.client.registry} answered an unknown manifest type '${
          printable(mediaType.slice(0, 200))
        }'`,
      );
    }
    this.#cache(digest, bytes);
    return { mediaType, digest, size };
  }

  /**
   * Check the `Docker-Content-Digest` a registry answered against the digest
   * of the content. One of another algorithm is checked on `bytes` when given
   * (manifests), and otherwise skipped; one of an algorithm ocipkg does not
   * know is ignored.
   *
   * @throws {VerificationError} naming `what`, both digests and the registry
   */
  #checkAnswered(res: Response, digest: string, what: string, bytes?: Uint8Array): void {
    const answered = res.headers.get("docker-content-digest")?.trim();
    if (!answered || answered === digest || !/^sha(256|512):/.test(answered)) return;
    const label = `${what} (Docker-Content-Digest from ${this.client.registry})`;
    if (isDigest(answered)) {
      if (bytes) {
        verifyBytes(bytes, { digest: answered }, label);
        return;
      }
      if (parseDigest(answered).algorithm !== parseDigest(digest).algorithm) return;
    }
    throw new VerificationError(
      `${label}: digest mismatch, expected ${printable(answered.slice(0, 200))} but got ${digest}`,
    );
  }

  /**
   * Stream a manifest or blob, verified against `desc` (size and digest): a
   * mismatch is a {@link VerificationError} naming the digest and the
   * repository (a blob's stream errors with it, as soon as too many bytes
   * arrive or at its end).
   */
  async fetch(desc: Descriptor): Promise<ReadableStream<Uint8Array>> {
    if (isManifestType(desc.mediaType)) {
      const what = `manifest ${desc.digest} of ${this.description}`;
      const cached = this.#manifests.get(desc.digest);
      if (cached) {
        verifyBytes(cached, desc, what);
        return bytesStream(cached);
      }
      const { bytes } = await this.client.requestBytes(
        {
          method: "GET",
          url: `/v2/${this.repository}/manifests/${desc.digest}`,
          headers: { accept: desc.mediaType },
          scope: this.#scope(),
          what: this.#what(desc.digest),
        },
        MAX_MANIFEST_SIZE,
        what,
      );
      verifyBytes(bytes, desc, what);
      return bytesStream(bytes);
    }
    // verified here, before it closes: a layout writing it need not hash it again
    const parts = this.#options.rangeParts ??
      (isLoopbackHost(this.client.registry) ? 1 : DEFAULT_RANGE_PARTS);
    if (parts > 1 && desc.size >= (this.#options.rangeThreshold ?? DEFAULT_RANGE_THRESHOLD)) {
      return vouch(this.#rangedStream(desc, parts), desc);
    }
    return vouch(this.#blobStream(desc), desc);
  }

  /** GET a blob (a range of it), 404 as {@link NotFoundError}. */
  async #getBlob(desc: Descriptor, what: string, range?: string): Promise<Response> {
    const res = await this.client.request({
      method: "GET",
      url: `/v2/${this.repository}/blobs/${desc.digest}`,
      headers: range ? { range } : {},
      scope: this.#scope(),
      what,
      ok: [200, 206, 404],
      stream: true,
    });
    if (res.status === 404) {
      await res.body?.cancel();
      throw new NotFoundError(`${what} not found on ${this.client.registry}`);
    }
    return res;
  }

  /**
   * A large blob in `parts` parallel ranged requests, emitted in order and
   * verified by one {@link Verifier}; a registry that ignores `Range` is read
   * as one stream ({@link #blobStream}) from its first answer.
   */
  #rangedStream(desc: Descriptor, parts: number): ReadableStream<Uint8Array> {
    const what = `blob ${desc.digest} of ${this.description}`;
    return rangedStream({
      size: desc.size,
      what,
      host: this.client.registry,
      parts,
      segmentSize: this.#options.rangeSegmentSize ?? DEFAULT_RANGE_SEGMENT,
      maxResume: this.#options.resumeAttempts ?? 5,
      verifier: new Verifier(desc, what, { offThread: this.#options.hashOffThread ?? true }),
      request: (start, end) => this.#getBlob(desc, what, `bytes=${start}-${end}`),
      fallback: (first) => this.#blobStream(desc, first),
    });
  }

  /**
   * A blob download that resumes with `Range` after a dropped or stalled
   * connection (not after one too slow on average: that is final), verified
   * by the one {@link Verifier} across resumptions. `first`: a `200` answer
   * already at hand, read from its start.
   */
  #blobStream(desc: Descriptor, first?: Response): ReadableStream<Uint8Array> {
    const what = `blob ${desc.digest} of ${this.description}`;
    // large blobs are hashed in a worker while the next bytes arrive
    const verifier = new Verifier(desc, what, { offThread: this.#options.hashOffThread ?? true });
    const maxResume = this.#options.resumeAttempts ?? 5;
    let received = 0;
    let resumes = 0;
    let reader: ReadableStreamBYOBReader | undefined;
    let skip = 0; // bytes to drop when a server ignores Range (200)
    const open = async () => {
      let res = first;
      first = undefined;
      res ??= await this.#getBlob(desc, what, received > 0 ? `bytes=${received}-` : undefined);
      skip = received > 0 && res.status === 200 ? received : 0;
      reader = res.body!.getReader({ mode: "byob" });
    };
    // every way out of the stream but its end stops the verifier's worker
    const guard = async (fn: () => Promise<void>): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        verifier.dispose();
        throw e;
      }
    };
    // A byte stream: each read goes straight into the consumer's buffer (BYOB),
    // is verified there, and is handed back without a copy.
    const pull = async (controller: ReadableByteStreamController): Promise<void> => {
      const request = controller.byobRequest!;
      const given = request.view!;
      // the consumer's buffer, as offset and length: a read transfers it (and a
      // failed read loses it: then a buffer of the same shape stands in)
      const shape = [given.buffer.byteLength, given.byteOffset, given.byteLength] as const;
      const fresh = () => new Uint8Array(new ArrayBuffer(shape[0]), shape[1], shape[2]);
      let view: Uint8Array = new Uint8Array(given.buffer, shape[1], shape[2]);
      while (true) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader!.read(view);
        } catch (e) {
          // too slow on average is not mended by asking again
          if (e instanceof RegistryTimeoutError && e.kind === "rate") throw e;
          if (resumes++ >= maxResume) {
            if (e instanceof RegistryError) {
              throw new RegistryError(
                `${e.message}; gave up after ${maxResume} resumed downloads`,
                e.status,
                e.code,
                { cause: e },
              );
            }
            throw new RegistryError(
              `${what}: download from ${this.client.registry} interrupted too often (${
                oneLine(e)
              })`,
              0,
              undefined,
              { cause: e },
            );
          }
          view = fresh();
          await open();
          continue;
        }
        // the read transferred the buffer: this is its new owner
        view = r.value ? new Uint8Array(r.value.buffer, shape[1], shape[2]) : fresh();
        if (r.done) {
          if (received < desc.size && resumes++ < maxResume) {
            await open(); // closed early: resume
            continue;
          }
          verifier.finish();
          controller.close();
          request.respondWithNewView(view.subarray(0, 0));
          return;
        }
        let n = r.value.byteLength;
        if (skip > 0) {
          const drop = Math.min(skip, n);
          skip -= drop;
          view.copyWithin(0, drop, n);
          n -= drop;
          if (n === 0) continue;
        }
        const chunk = view.subarray(0, n);
        try {
          verifier.update(chunk); // more than desc.size fails here, before it is passed on
        } catch (e) {
          await reader!.cancel(e).catch(() => {});
          throw e;
        }
        received += n;
        request.respondWithNewView(chunk);
        return;
      }
    };
    return new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: 256 << 10,
      start: () => guard(open),
      pull: (controller: ReadableByteStreamController) => guard(() => pull(controller)),
      cancel: async (reason) => {
        verifier.dispose();
        await reader?.cancel(reason);
      },
    }, { highWaterMark: 0 });
  }

  async exists(desc: Descriptor): Promise<boolean> {
    const kind = isManifestType(desc.mediaType) ? "manifests" : "blobs";
    const res = await this.client.request({
      method: "HEAD",
      url: `/v2/${this.repository}/${kind}/${desc.digest}`,
      headers: kind === "manifests" ? { accept: MANIFEST_ACCEPT } : {},
      scope: this.#scope(),
      what: this.#what(desc.digest),
      ok: [200, 404],
    });
    await res.body?.cancel();
    return res.status === 200;
  }

  /**
   * Cross-repository mount: when `src` is another repository of the same
   * registry, ask the registry to link the blob instead of uploading it.
   *
   * @param desc the blob
   * @param src the copy's source
   * @returns true when the registry mounted it
   */
  async mount(desc: Descriptor, src: ReadTarget): Promise<boolean> {
    if (
      !(src instanceof RegistryTarget) || src.client.registry !== this.client.registry ||
      src.repository === this.repository
    ) return false;
    const res = await this.client.request({
      method: "POST",
      url: `/v2/${this.repository}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${
        encodeURIComponent(src.repository)
      }`,
      scope: `${this.#scope(true)} repository:${src.repository}:pull`,
      what: `blob ${desc.digest} of ${this.description}`,
      ok: [201, 202],
    });
    await res.body?.cancel();
    if (res.status === 201) return true;
    // 202: the registry opened an upload session instead; cancel it
    const loc = res.headers.get("location");
    if (loc) await this.#cancelUpload(loc);
    return false;
  }

  /** Best effort: end an upload session that will not be completed. */
  async #cancelUpload(location: string): Promise<void> {
    await this.client.request({
      method: "DELETE",
      url: location,
      scope: this.#scope(true),
      what: "upload",
      ok: [200, 204, 404, 405],
    })
      .then((r) => r.body?.cancel()).catch(() => {});
  }

  push(spec: BlobSpec, content: ReadableStream<Uint8Array>): Promise<Descriptor> {
    if (isManifestType(spec.mediaType)) return this.#pushManifest(spec, content);
    return this.#pushBlob(spec, content).catch((e) => {
      // the registry dropped the upload session (distribution does when a
      // PATCH is retried after a lost reply): only a fresh upload can go on
      if (
        e instanceof RegistryError &&
        (e.code === "BLOB_UPLOAD_INVALID" || e.code === "BLOB_UPLOAD_UNKNOWN")
      ) {
        throw new TransferLostError(e.message, { cause: e });
      }
      throw e;
    });
  }

  async #pushManifest(spec: BlobSpec, content: ReadableStream<Uint8Array>): Promise<Descriptor> {
    const what = `manifest ${spec.digest ?? "(new)"} for ${this.description}`;
    const bytes = await readCapped(new Response(content), MAX_MANIFEST_SIZE, what);
    const { digest, size } = verifyBytes(bytes, spec, what);
    await this.#putManifest(bytes, spec.mediaType, digest, digest);
    this.#cache(digest, bytes);
    return stripUndefined({ ...spec, digest, size });
  }

  /** PUT a manifest by digest or tag; the registry's answered digest must be `digest`. */
  async #putManifest(
    bytes: Uint8Array,
    mediaType: string,
    reference: string,
    digest: string,
  ): Promise<void> {
    this.#checkReference(reference);
    const res = await this.client.request({
      method: "PUT",
      url: `/v2/${this.repository}/manifests/${reference}`,
      headers: { "content-type": mediaType },
      body: bytes,
      scope: this.#scope(true),
      what: this.#what(reference),
      ok: [200, 201, 202],
    });
    await res.body?.cancel();
    this.#checkAnswered(res, digest, `manifest ${digest} for ${this.description}`, bytes);
  }

  async #startUpload(what: string): Promise<{ location: string; minChunk: number }> {
    const res = await this.client.request({
      method: "POST",
      url: `/v2/${this.repository}/blobs/uploads/`,
      scope: this.#scope(true),
      what,
      ok: [202],
    });
    await res.body?.cancel();
    const location = res.headers.get("location");
    if (!location) {
      throw new RegistryError(
        `${what}: ${this.client.registry} gave no upload location`,
        res.status,
      );
    }
    const minChunk = Number(res.headers.get("oci-chunk-min-length") ?? "0") || 0;
    return { location: new URL(location, this.client.baseUrl + "/").href, minChunk };
  }

  async #pushBlob(spec: BlobSpec, content: ReadableStream<Uint8Array>): Promise<Descriptor> {
    const what = `blob ${spec.digest ?? "(new)"} for ${this.description}`;
    let { location, minChunk } = await this.#startUpload(what);
    if (
      spec.digest && spec.size !== undefined && spec.size > MONOLITHIC_MAX && minChunk === 0 &&
      this.#options.chunkSize === undefined && !this.#noStreaming &&
      !this.#resumable.has(spec.digest)
    ) {
      return await this.#pushStreamed(
        { ...spec, digest: spec.digest, size: spec.size },
        content,
        location,
        what,
      );
    }
    const verifier = new Verifier(spec, what);
    const chunkSize = Math.max(this.#options.chunkSize ?? DEFAULT_CHUNK, minChunk);
    // Read the source into chunks; each chunk is replayable, so a failed PATCH resumes
    // from the offset the server reports. Two buffers take turns (the chunk being
    // sent and the next one, read ahead to know which chunk is the last).
    const reader = content.getReader();
    let offset = 0;
    let pending: Uint8Array | undefined;
    const buffers: Uint8Array[] = [];
    let turn = 0;
    let ended = false; // the source is read to its end
    const nextChunk = async (): Promise<Uint8Array | undefined> => {
      const buf = buffers[turn] ??= new Uint8Array(
        spec.size !== undefined ? Math.min(chunkSize, spec.size + 1) : chunkSize,
      );
      const cap = buf.byteLength;
      let n = 0;
      if (pending) {
        const take = Math.min(pending.byteLength, cap);
        buf.set(pending.subarray(0, take));
        n = take;
        pending = take < pending.byteLength ? pending.subarray(take) : undefined;
      }
      while (n < cap) {
        const r = await reader.read();
        if (r.done) {
          ended = true;
          break;
        }
        const take = Math.min(r.value.byteLength, cap - n);
        buf.set(r.value.subarray(0, take), n);
        n += take;
        if (take < r.value.byteLength) pending = r.value.subarray(take);
      }
      if (n === 0) return undefined;
      const chunk = buf.subarray(0, n);
      verifier.update(chunk); // more than spec.size fails here, before it is sent
      turn ^= 1;
      return chunk;
    };
    const upload = async () => {
      let chunk = await nextChunk();
      // Small blobs: one PUT with the whole body.
      if (chunk && ended && chunk.byteLength <= MONOLITHIC_MAX) {
        return await this.#finishUpload(location, spec, verifier, chunk, what);
      }
      while (chunk) {
        const next = await nextChunk();
        if (!next) return await this.#finishUpload(location, spec, verifier, chunk, what, offset);
        location = await this.#patch(location, chunk, offset, what);
        offset += chunk.byteLength;
        chunk = next;
      }
      return await this.#finishUpload(location, spec, verifier, undefined, what, offset);
    };
    let done: { desc: Descriptor; res: Response };
    try {
      done = await upload();
    } catch (e) {
      await reader.cancel(e).catch(() => {}); // release the source (e.g. an open blob file)
      // content that does not match its descriptor is never committed: end
      // the session so the registry keeps nothing of it
      if (e instanceof VerificationError) await this.#cancelUpload(location);
      throw e;
    } finally {
      reader.releaseLock();
    }
    this.#checkAnswered(done.res, done.desc.digest, what);
    this.#resumable.delete(done.desc.digest);
    return done.desc;
  }

  /**
   * Upload a blob whose digest and size are known in one streamed
   * `PUT …?digest=`: no buffers, no hashing on the way (the registry checks
   * the digest it is given and refuses a mismatch: a {@link VerificationError}).
   * Bytes are counted, and the body fails before its end when they go past
   * `spec.size` or stop short of it, so the registry commits nothing. A PUT
   * that fails otherwise cannot be resumed: it is a {@link TransferLostError}
   * (the caller sends the blob again, then in chunks), and one the registry
   * refuses outright turns streamed uploads off for this target.
   */
  async #pushStreamed(
    spec: BlobSpec & { digest: string; size: number },
    content: ReadableStream<Uint8Array>,
    location: string,
    what: string,
  ): Promise<Descriptor> {
    const { digest, size } = spec;
    // A layout's blob file whose size the layout checked goes up as it is: Deno
    // then reads the file itself, no chunk passes through JavaScript (a 1 GiB
    // push peaks at ≈ 45 MB instead of ≈ 115 MB); the registry checks the digest.
    const native = isFileStream(content, size);
    const reader = native ? undefined : content.getReader();
    let sent = 0;
    let failed: unknown; // why the body failed (the source, or a size mismatch)
    const fail = (c: ReadableStreamDefaultController<Uint8Array>, e: unknown) => {
      failed ??= e;
      c.error(e);
      reader!.cancel(e).catch(() => {});
    };
    const body = native ? content : new ReadableStream<Uint8Array>({
      pull: async (c) => {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader!.read();
        } catch (e) {
          return fail(c, e);
        }
        if (r.done) {
          if (sent === size) return c.close();
          return fail(
            c,
            new VerificationError(
              `${what}: size mismatch, expected ${size} bytes but got ${sent}`,
            ),
          );
        }
        sent += r.value.byteLength;
        if (sent > size) {
          return fail(
            c,
            new VerificationError(`${what}: size exceeds the expected ${size} bytes`),
          );
        }
        c.enqueue(r.value);
      },
      cancel: (reason) => reader!.cancel(reason),
    });
    const url = new URL(location);
    url.searchParams.set("digest", digest);
    let res: Response;
    try {
      res = await this.client.request({
        method: "PUT",
        url: url.href,
        headers: { "content-type": "application/octet-stream" },
        body,
        bodySize: size,
        scope: this.#scope(true),
        what,
        ok: [201, 204],
      });
      await res.body?.cancel();
    } catch (e) {
      // release the source (e.g. an open blob file)
      await (reader ?? content).cancel(e).catch(() => {});
      if (failed === undefined && e instanceof RegistryError && e.code === "DIGEST_INVALID") {
        failed = new VerificationError(
          `${what}: digest mismatch, ${this.client.registry} found that the ${size} bytes sent ` +
            `are not ${digest}`,
          { cause: e },
        );
      }
      await this.#cancelUpload(location); // nothing of it is kept
      if (failed !== undefined) throw failed;
      this.#resumable.add(digest); // sent again, it goes up in chunks
      if (
        e instanceof RegistryError && [400, 405, 411, 413, 415, 501].includes(e.status)
      ) this.#noStreaming = true; // the registry refuses streamed uploads
      throw new TransferLostError(
        `${oneLine(e)}; the streamed upload is lost (it can be sent again, in chunks)`,
        { cause: e },
      );
    } finally {
      reader?.releaseLock();
    }
    this.#checkAnswered(res, digest, what);
    return stripUndefined({ ...spec, digest, size });
  }

  /** PATCH one chunk; on failure ask the server what it has and send the rest. */
  async #patch(location: string, chunk: Uint8Array, offset: number, what: string): Promise<string> {
    for (let attempt = 0;; attempt++) {
      try {
        const res = await this.client.request({
          method: "PATCH",
          url: location,
          headers: {
            "content-type": "application/octet-stream",
            "content-range": `${offset}-${offset + chunk.byteLength - 1}`,
          },
          body: chunk,
          scope: this.#scope(true),
          what,
          ok: [202],
        });
        await res.body?.cancel();
        return new URL(res.headers.get("location") ?? location, this.client.baseUrl + "/").href;
      } catch (e) {
        if (
          attempt >= 3 ||
          (e instanceof RegistryError && e.status >= 400 && e.status < 500 && e.status !== 416)
        ) throw e;
        // ask where the upload stands and continue from there
        const st = await this.client.request({
          method: "GET",
          url: location,
          scope: this.#scope(true),
          what,
          ok: [204],
        });
        await st.body?.cancel();
        const range = /^(?:bytes=)?0-(\d+)$/.exec(st.headers.get("range") ?? "");
        const have = range ? Number(range[1]) + 1 : 0;
        location = new URL(st.headers.get("location") ?? location, this.client.baseUrl + "/").href;
        if (have < offset || have > offset + chunk.byteLength) throw e;
        chunk = chunk.subarray(have - offset);
        offset = have;
        if (chunk.byteLength === 0) return location;
      }
    }
  }

  async #finishUpload(
    location: string,
    spec: BlobSpec,
    verifier: Verifier,
    last: Uint8Array | undefined,
    what: string,
    offset = 0,
  ): Promise<{ desc: Descriptor; res: Response }> {
    const { digest, size } = verifier.finish(); // before the PUT that commits it
    const url = new URL(location);
    url.searchParams.set("digest", digest);
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    if (last && offset > 0) headers["content-range"] = `${offset}-${offset + last.byteLength - 1}`;
    const res = await this.client.request({
      method: "PUT",
      url: url.href,
      headers,
      body: last ?? new Uint8Array(0),
      scope: this.#scope(true),
      what,
      ok: [201, 204],
    });
    await res.body?.cancel();
    return { desc: stripUndefined({ ...spec, digest, size }), res };
  }

  async tag(desc: Descriptor, reference: string): Promise<void> {
    if (isDigest(reference)) return;
    this.#checkReference(reference);
    // fetch answers from the cache when it can, verified against desc either way
    const bytes = await readCapped(
      new Response(await this.fetch(desc)),
      MAX_MANIFEST_SIZE,
      `manifest ${desc.digest} of ${this.description}`,
    );
    await this.#putManifest(bytes, desc.mediaType, reference, desc.digest);
  }

  /**
   * Stream a repository's tags page by page (see {@link pages} for the caps).
   *
   * @returns an async iterator of pages of tags (each tag made printable)
   */
  async *tagPages(): AsyncGenerator<string[], void, undefined> {
    const what = `repository '${this.description}'`;
    const maxTags = this.#options.maxTags ?? MAX_TAGS;
    let count = 0;
    const first = `/v2/${this.repository}/tags/list?n=1000`;
    for await (const { res, bytes } of this.#pages(first, what, "tags")) {
      if (res.status === 404) {
        throw new NotFoundError(`${what} not found on ${this.client.registry}`);
      }
      let tags: unknown;
      try {
        tags = JSON.parse(new TextDecoder().decode(bytes)).tags ?? [];
      } catch {
        throw new FormatError(
          `${what}: ${this.client.registry} answered a tag list that is not JSON`,
        );
      }
      if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string")) {
        throw new FormatError(
          `${what}: ${this.client.registry} answered a tag list whose 'tags' is not a list of strings`,
        );
      }
      count += tags.length;
      if (count > maxTags) {
        throw new RegistryError(
          `${what}: ${this.client.registry} lists more than ${maxTags} tags; stopped`,
          0,
        );
      }
      yield (tags as string[]).map((t) => printable(t));
    }
  }

  /**
   * GET a paginated list: each page (at most {@link MAX_BODY} bytes), then
   * the next one its `Link: <…>; rel="next"` names — same origin only, no
   * loops, at most {@link MAX_TAG_PAGES} pages (`maxTagPages`). A 404 page
   * is yielded for the caller to judge, and ends the list.
   */
  async *#pages(
    first: string,
    what: string,
    of: string,
  ): AsyncGenerator<{ res: Response; bytes: Uint8Array }, void, undefined> {
    const maxPages = this.#options.maxTagPages ?? MAX_TAG_PAGES;
    const origin = new URL(this.client.baseUrl).origin;
    const seen = new Set<string>();
    let url: URL | undefined = new URL(first, this.client.baseUrl);
    for (let page = 0; url; page++) {
      if (page >= maxPages) {
        throw new RegistryError(
          `${what}: ${this.client.registry} has more than ${maxPages} pages of ${of}; stopped`,
          0,
        );
      }
      seen.add(url.href);
      const { res, bytes }: { res: Response; bytes: Uint8Array } = await this.client
        .requestBytes(
          { method: "GET", url: url.href, scope: this.#scope(), what, ok: [200, 404] },
          MAX_BODY,
          `${what}: page of ${of} from ${this.client.registry}`,
        );
      yield { res, bytes };
      if (res.status !== 200) return;
      const link = /<([^>]*)>\s*;\s*rel="?next"?/.exec(res.headers.get("link") ?? "");
      if (!link) return;
      let next: URL;
      try {
        next = new URL(link[1]!, url);
      } catch {
        throw new RegistryError(
          `${what}: ${this.client.registry} sent an invalid next-page link`,
          0,
        );
      }
      if (next.origin !== origin) {
        throw new RegistryError(
          `${what}: ${this.client.registry} linked the next page of ${of} to another origin (${
            printable(next.origin)
          }); refused`,
          0,
        );
      }
      if (seen.has(next.href)) {
        throw new RegistryError(
          `${what}: ${this.client.registry} linked back to a page of ${of} already read (a loop)`,
          0,
        );
      }
      url = next;
    }
  }

  /**
   * The manifests that name `digest` as their `subject`, from the registry's
   * referrers API (`GET /v2/<name>/referrers/<digest>`, every page), or
   * `undefined` when the registry has no such API (it answers 404, as
   * `distribution` 2.x does): then the tag-schema fallback index holds them
   * (see `listReferrers`).
   *
   * @param digest the subject's digest
   * @param artifactType only referrers of this type (asked of the registry
   *   and checked here: a registry may ignore the filter)
   * @returns descriptors (with `artifactType`, `annotations`), or undefined
   * @throws {FormatError} when a page is not an image index
   */
  async referrers(digest: string, artifactType?: string): Promise<Descriptor[] | undefined> {
    parseDigest(digest);
    const what = `referrers of ${this.description}@${digest}`;
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : "";
    const out: Descriptor[] = [];
    const url = `/v2/${this.repository}/referrers/${digest}${query}`;
    for await (const { res, bytes } of this.#pages(url, what, "referrers")) {
      if (res.status === 404) return out.length === 0 ? undefined : out;
      const doc = parseManifestDocument(
        bytes,
        OCI_INDEX,
        `${what} (from ${this.client.registry})`,
      );
      if (doc.kind !== "index") {
        throw new FormatError(`${what}: ${this.client.registry} answered a manifest, not an index`);
      }
      for (const d of doc.index.manifests) {
        if (artifactType && d.artifactType !== artifactType) continue;
        out.push(d);
        if (out.length > MAX_REFERRERS) {
          throw new RegistryError(
            `${what}: ${this.client.registry} lists more than ${MAX_REFERRERS} referrers; stopped`,
            0,
          );
        }
      }
    }
    return out;
  }

  /**
   * List the repository's tags (all pages, see {@link tagPages} for the caps).
   *
   * @returns tags
   */
  async tags(): Promise<string[]> {
    const out: string[] = [];
    for await (const page of this.tagPages()) for (const t of page) out.push(t);
    return out;
  }

  close(): Promise<void> {
    this.client.close();
    return Promise.resolve();
  }

  abort(): Promise<void> {
    return this.close();
  }
}
