/**
 * Blob uploads to a repository on a registry: monolithic uploads for small
 * blobs, one streamed `PUT …?digest=` for large ones of known digest and size
 * (no buffers; the registry checks the digest), and chunked `PATCH` uploads
 * (honouring `OCI-Chunk-Min-Length`, resuming from the server's `Range`) when
 * `chunkSize` is set, the registry demands chunks or refused a streamed
 * upload, or a streamed upload of the blob was lost; and cross-repository
 * mounts.
 *
 * @module
 */
import { Verifier } from "../../oci/digest.ts";
import { oneLine, VerificationError } from "../../util/errors.ts";
import { isFileStream } from "../../util/files.ts";
import { BodyChunks } from "../../util/body_chunks.ts";
import { cancelOnAbort } from "../../util/stop_read.ts";
import { type Descriptor, stripUndefined } from "../../oci/manifest.ts";
import { type BlobSpec, TransferLostError } from "../target.ts";
import { hasCode, RegistryError } from "./errors.ts";
import { DEFAULT_CHUNK, type Repository } from "./repository.ts";

/** Blobs up to this size are uploaded in one request. */
export const MONOLITHIC_MAX = 4 * 1024 * 1024;

/**
 * The blob uploads of one repository.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestOf } from "@ocipkg/cli/oci";
 * import { RegistryClient } from "./client.ts";
 * import { Repository } from "./repository.ts";
 * import { BlobUploads } from "./upload.ts";
 * // a stand-in for a registry that takes any upload in one PUT
 * const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
 * const server = Deno.serve(listen, async (req) => {
 *   await req.body?.cancel();
 *   if (req.method === "POST") {
 *     return new Response(null, { status: 202, headers: { location: "/v2/org/x/blobs/uploads/1" } });
 *   }
 *   return new Response(null, { status: 201 });
 * });
 * const client = new RegistryClient(`127.0.0.1:${server.addr.port}`, { credential: null });
 * const uploads = new BlobUploads(new Repository(client, "org/x", {}));
 * const blob = new TextEncoder().encode("hello");
 * const desc = await uploads.push({ mediaType: "text/plain" }, new Response(blob).body!);
 * assert.equal(desc.digest, await digestOf(blob));
 * client.close();
 * await server.shutdown();
 * ```
 */
export class BlobUploads {
  #repo: Repository;
  #noStreaming = false; // the registry refused a streamed upload: chunks from now on
  #resumable = new Set<string>(); // blobs whose streamed upload was lost: sent again in chunks

  /**
   * Create the BlobUploads of a repository.
   * @param repo the repository
   */
  constructor(repo: Repository) {
    this.#repo = repo;
  }

  /**
   * Cross-repository mount: ask the registry to link a blob of another of its
   * repositories instead of uploading it.
   *
   * @param desc the blob
   * @param from the repository that has it
   * @param signal stops the request (it rejects with the signal's reason)
   * @returns true when the registry mounted it
   */
  async mount(desc: Descriptor, from: string, signal?: AbortSignal): Promise<boolean> {
    const res = await this.#repo.client.request({
      method: "POST",
      url: `/v2/${this.#repo.repository}/blobs/uploads/?mount=${
        encodeURIComponent(desc.digest)
      }&from=${encodeURIComponent(from)}`,
      scope: `${this.#repo.scope(true)} repository:${from}:pull`,
      what: `blob ${desc.digest} of ${this.#repo.description}`,
      ok: [201, 202],
      signal,
    });
    await res.body?.cancel();
    if (res.status === 201) return true;
    // 202: the registry opened an upload session instead; cancel it
    const loc = res.headers.get("location");
    if (loc) await this.#cancelUpload(loc);
    return false;
  }

  /**
   * Best effort: end an upload session that will not be completed. A
   * cleanup: it goes out even when the caller's signal stopped the client's
   * requests (see `RegistryRequest.cleanup`).
   */
  async #cancelUpload(location: string): Promise<void> {
    await this.#repo.client.request({
      method: "DELETE",
      url: location,
      scope: this.#repo.scope(true),
      what: "upload",
      ok: [200, 204, 404, 405],
      cleanup: true,
    })
      .then((r) => r.body?.cancel()).catch(() => {});
  }

  /**
   * Upload a blob, verified against `spec` on the way (a streamed upload:
   * by the registry).
   *
   * @param spec what it is expected to be
   * @param content its bytes
   * @param signal stops the upload: its requests end, its session is
   *   cancelled, and it rejects with the signal's reason
   * @returns its descriptor
   * @throws {TransferLostError} when the registry dropped the upload session,
   *   or a streamed upload failed: a fresh upload can go on
   */
  push(
    spec: BlobSpec,
    content: ReadableStream<Uint8Array>,
    signal?: AbortSignal,
  ): Promise<Descriptor> {
    return this.#pushBlob(spec, content, signal).catch((e) => {
      if (signal?.aborted) throw signal.reason;
      // the registry dropped the upload session (distribution does when a
      // PATCH is retried after a lost reply): only a fresh upload can go on
      if (hasCode(e, "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN")) {
        throw new TransferLostError(e.message, { cause: e });
      }
      throw e;
    });
  }

  async #startUpload(
    what: string,
    signal: AbortSignal | undefined,
  ): Promise<{ location: string; minChunk: number }> {
    const res = await this.#repo.client.request({
      method: "POST",
      url: `/v2/${this.#repo.repository}/blobs/uploads/`,
      scope: this.#repo.scope(true),
      what,
      ok: [202],
      signal,
    });
    await res.body?.cancel();
    const location = res.headers.get("location");
    if (!location) {
      throw new RegistryError(
        `${what}: ${this.#repo.client.registry} gave no upload location`,
        res.status,
      );
    }
    const minChunk = Number(res.headers.get("oci-chunk-min-length") ?? "0") || 0;
    return { location: new URL(location, this.#repo.client.baseUrl + "/").href, minChunk };
  }

  async #pushBlob(
    spec: BlobSpec,
    content: ReadableStream<Uint8Array>,
    signal: AbortSignal | undefined,
  ): Promise<Descriptor> {
    const what = `blob ${spec.digest ?? "(new)"} for ${this.#repo.description}`;
    let started: { location: string; minChunk: number };
    try {
      started = await this.#startUpload(what, signal);
    } catch (e) {
      await content.cancel(e).catch(() => {}); // release the source (e.g. an open blob file)
      throw e;
    }
    let { location, minChunk } = started;
    if (
      spec.digest && spec.size !== undefined && spec.size > MONOLITHIC_MAX && minChunk === 0 &&
      this.#repo.options.chunkSize === undefined && !this.#noStreaming &&
      !this.#resumable.has(spec.digest)
    ) {
      return await this.#pushStreamed(
        { ...spec, digest: spec.digest, size: spec.size },
        content,
        location,
        what,
        signal,
      );
    }
    const verifier = new Verifier(spec, what);
    const chunkSize = Math.max(this.#repo.options.chunkSize ?? DEFAULT_CHUNK, minChunk);
    // Read the source into chunks; each chunk is replayable, so a failed PATCH resumes
    // from the offset the server reports. Two buffers take turns (the chunk being
    // sent and the next one, read ahead to know which chunk is the last).
    const reader = content.getReader();
    // a read waiting on a source that has nothing yet ends when the signal aborts
    using _stop = cancelOnAbort(reader, signal);
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
        signal?.throwIfAborted(); // (a stopped read ends as done: not the source's end)
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
        return await this.#finishUpload(location, spec, verifier, chunk, what, 0, signal);
      }
      while (chunk) {
        const next = await nextChunk();
        if (!next) {
          return await this.#finishUpload(location, spec, verifier, chunk, what, offset, signal);
        }
        location = await this.#patch(location, chunk, offset, what, signal);
        offset += chunk.byteLength;
        chunk = next;
      }
      return await this.#finishUpload(location, spec, verifier, undefined, what, offset, signal);
    };
    let done: { desc: Descriptor; res: Response };
    try {
      done = await upload();
    } catch (e) {
      // release the source (e.g. an open blob file), told why: when stopped, the reason as given
      await reader.cancel(signal?.aborted ? signal.reason : e).catch(() => {});
      // an upload that failed — content that does not match its descriptor, a caller that
      // stopped it, a registry that kept refusing it — is not finished later (a new one starts):
      // end the session so the registry keeps nothing of it
      await this.#cancelUpload(location);
      if (signal?.aborted) throw signal.reason;
      throw e;
    } finally {
      reader.releaseLock();
    }
    await this.#repo.checkAnswered(done.res, done.desc.digest, what);
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
    signal: AbortSignal | undefined,
  ): Promise<Descriptor> {
    const { digest, size } = spec;
    // A layout's blob file whose size the layout checked goes up as it is: Deno
    // then reads the file itself, no chunk passes through JavaScript (a 1 GiB
    // push peaks at ≈ 45 MB instead of ≈ 115 MB); the registry checks the digest.
    // Anything else (a blob inside an oci-archive, a download) is counted on its
    // way in 1 MiB chunks whose memory goes back once sent (see BodyChunks).
    const native = isFileStream(content, size);
    const reader = native ? undefined : new BodyChunks(content);
    let sent = 0;
    let failed: unknown; // why the body failed (the source, or a size mismatch)
    // the body was cancelled (fetch stops sending when the registry answers
    // early, or the request failed): the source's end after that is no mismatch
    let stopped = false;
    let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
    const fail = (c: ReadableStreamDefaultController<Uint8Array>, e: unknown) => {
      if (stopped) return;
      failed ??= e;
      c.error(e);
      reader!.cancel(e).catch(() => {});
    };
    const body = native ? content : new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c;
      },
      pull: async (c) => {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader!.read();
        } catch (e) {
          return fail(c, e);
        }
        if (stopped) return;
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
      cancel: (reason) => {
        stopped = true;
        return reader!.cancel(reason);
      },
    });
    const url = new URL(location);
    url.searchParams.set("digest", digest);
    let res: Response;
    try {
      res = await this.#repo.client.request({
        method: "PUT",
        url: url.href,
        headers: { "content-type": "application/octet-stream" },
        body,
        bodySize: size,
        scope: this.#repo.scope(true),
        what,
        ok: [201, 204],
        signal,
      });
      await res.body?.cancel();
    } catch (e) {
      // why the body failed, if it did: taken before the source is released
      // below (which ends it early, and is no mismatch)
      let cause = failed;
      stopped = true;
      // a body fetch may still be sending ends here (else the connection would wait on it)
      try {
        controller?.error(e);
      } catch { /* closed or cancelled already */ }
      // release the source (e.g. an open blob file)
      await (reader ?? content).cancel(e).catch(() => {});
      if (cause === undefined && hasCode(e, "DIGEST_INVALID")) {
        cause = new VerificationError(
          `${what}: digest mismatch, ${this.#repo.client.registry} found that the ${size} bytes sent ` +
            `are not ${digest}`,
          { cause: e },
        );
      }
      await this.#cancelUpload(location); // nothing of it is kept
      // stopped by the caller: its reason (the upload is not lost: it is not wanted)
      if (signal?.aborted) throw signal.reason;
      if (cause !== undefined) throw cause;
      // the registry's own answer that it has no room: sending again cannot help
      if (e instanceof RegistryError && e.status === 507) throw e;
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
    await this.#repo.checkAnswered(res, digest, what);
    return stripUndefined({ ...spec, digest, size });
  }

  /** PATCH one chunk; on failure ask the server what it has and send the rest. */
  async #patch(
    location: string,
    chunk: Uint8Array,
    offset: number,
    what: string,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    for (let attempt = 0;; attempt++) {
      try {
        const res = await this.#repo.client.request({
          method: "PATCH",
          url: location,
          headers: {
            "content-type": "application/octet-stream",
            "content-range": `${offset}-${offset + chunk.byteLength - 1}`,
          },
          body: chunk,
          scope: this.#repo.scope(true),
          what,
          ok: [202],
          signal,
        });
        await res.body?.cancel();
        return new URL(res.headers.get("location") ?? location, this.#repo.client.baseUrl + "/")
          .href;
      } catch (e) {
        if (
          signal?.aborted || attempt >= 3 ||
          (e instanceof RegistryError &&
            ((e.status >= 400 && e.status < 500 && e.status !== 416) || e.status === 507))
        ) throw e;
        // ask where the upload stands and continue from there; when the
        // registry answered the PATCH with a failure of its own and then no
        // longer knows the upload, that answer is the error
        const st = await this.#repo.client.request({
          method: "GET",
          url: location,
          scope: this.#repo.scope(true),
          what,
          ok: [204],
          signal,
        }).catch((lost) => {
          throw e instanceof RegistryError && e.status >= 500 ? e : lost;
        });
        await st.body?.cancel();
        const range = /^(?:bytes=)?0-(\d+)$/.exec(st.headers.get("range") ?? "");
        const have = range ? Number(range[1]) + 1 : 0;
        location =
          new URL(st.headers.get("location") ?? location, this.#repo.client.baseUrl + "/").href;
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
    offset: number,
    signal: AbortSignal | undefined,
  ): Promise<{ desc: Descriptor; res: Response }> {
    const { digest, size } = verifier.finish(); // before the PUT that commits it
    const url = new URL(location);
    url.searchParams.set("digest", digest);
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    if (last && offset > 0) headers["content-range"] = `${offset}-${offset + last.byteLength - 1}`;
    const res = await this.#repo.client.request({
      method: "PUT",
      url: url.href,
      headers,
      body: last ?? new Uint8Array(0),
      scope: this.#repo.scope(true),
      what,
      ok: [201, 204],
      signal,
    });
    await res.body?.cancel();
    return { desc: stripUndefined({ ...spec, digest, size }), res };
  }
}
