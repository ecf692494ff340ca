/**
 * Blob downloads from a repository on a registry, verified by the one
 * {@link Verifier}: one stream that resumes with `Range` after a dropped or
 * stalled connection (coping with a registry that answers `200` from the
 * start), or, for a large blob from a registry that is not on loopback,
 * parallel ranged requests (see `ranged.ts`, loaded with the first answer to a
 * `Range` request: a pull of small blobs never needs it).
 *
 * Limits of one download, beyond those of each request (`http.ts`): at most
 * `resumeAttempts` (5) resumptions; its stalls (no data for the idle
 * timeout, 30 s) share one deadline, 1.5 × the idle timeout in all, across
 * its resumed and ranged requests ({@link DownloadStalls}): the stall that
 * passes it ends the download; and a body below the low-speed limit (1 KiB/s
 * over 30 s) or the minimum average rate ends it at once, not resumed.
 *
 * @module
 */
import { Verifier, verifyBytes, vouch } from "../../oci/digest.ts";
import { FormatError, NotFoundError, oneLine, VerificationError } from "../../util/errors.ts";
import { printable } from "../../util/text.ts";
import type { Descriptor } from "../../oci/manifest.ts";
import { isLoopbackHost } from "../../oci/reference.ts";
import { RegistryError } from "./errors.ts";
import {
  byobReads,
  DownloadStalls,
  RegistryTimeoutError,
  type TimedBody,
  timedRead,
} from "./http.ts";
import type { Repository } from "./repository.ts";
import { bytesStream, type FetchOptions, streamOfReads } from "../target.ts";
import {
  DEFAULT_RANGE_PARTS,
  DEFAULT_RANGE_SEGMENT,
  DEFAULT_RANGE_THRESHOLD,
  HTTP1_MIN,
  LARGE_BLOB,
} from "../defaults.ts";

/**
 * Bytes per network read of a streamed download (its own buffer, copied into
 * the consumer's; small blobs are read whole, {@link SMALL_READ} at a time).
 */
const READ_BUFFER = 512 << 10;

/**
 * Read buffers of {@link BlobDownloads.read}, kept for the next small blob:
 * a fresh 64 KiB buffer per blob cost page faults and garbage collection
 * that showed in a pull of 200 small blobs.
 */
const spareReads: ArrayBuffer[] = [];
/** Bytes per network read of a small blob, and the spare buffers kept. */
const SMALL_READ = 64 << 10;
const MAX_SPARE_READS = 16;

/**
 * The blob downloads of one repository.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestOf } from "@ocipkg/cli/oci";
 * import { RegistryClient } from "./client.ts";
 * import { BlobDownloads } from "./download.ts";
 * import { Repository } from "./repository.ts";
 * // a stand-in for a registry serving one blob
 * const blob = new TextEncoder().encode("hello");
 * const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
 * const server = Deno.serve(listen, () => new Response(blob));
 * const client = new RegistryClient(`127.0.0.1:${server.addr.port}`, { credential: null });
 * const downloads = new BlobDownloads(new Repository(client, "org/x", {}));
 * const desc = { mediaType: "text/plain", digest: await digestOf(blob), size: blob.byteLength };
 * assert.equal(await new Response(await downloads.fetch(desc)).text(), "hello");
 * client.close();
 * await server.shutdown();
 * ```
 */
export class BlobDownloads {
  #repo: Repository;

  /**
   * Create the BlobDownloads of a repository.
   * @param repo the repository
   */
  constructor(repo: Repository) {
    this.#repo = repo;
  }

  /**
   * Stream a blob, verified against `desc` (size and digest): the stream
   * errors with a `VerificationError` naming the digest and the
   * repository as soon as too many bytes arrive, or at its end. Large blobs
   * come in parallel ranges; a small one (under {@link LARGE_BLOB}) is read
   * whole and verified before this returns ({@link BlobDownloads.read}), its
   * stream one chunk that a layout takes without reading (`takeBytes`).
   *
   * @param desc the blob
   * @param options `signal`: stops its requests and its stream
   * @returns its bytes, vouched for
   */
  async fetch(desc: Descriptor, options: FetchOptions = {}): Promise<ReadableStream<Uint8Array>> {
    this.#checkSize(desc);
    const signal = options.signal;
    if (desc.size < LARGE_BLOB) {
      return vouch(
        bytesStream(await this.#read(desc, undefined, new DownloadStalls(), signal)),
        desc,
      );
    }
    // verified here, before it closes: a layout writing it need not hash it again
    const parts = this.#repo.options.rangeParts ??
      (isLoopbackHost(this.#repo.client.registry) ? 1 : DEFAULT_RANGE_PARTS);
    // the stalls of all of this blob's requests share one deadline
    const stalls = new DownloadStalls();
    if (parts > 1 && desc.size >= (this.#repo.options.rangeThreshold ?? DEFAULT_RANGE_THRESHOLD)) {
      return vouch(await this.#rangedStream(desc, parts, stalls, signal), desc);
    }
    return vouch(this.#blobStream(desc, stalls, signal), desc);
  }

  /**
   * A small blob read whole into memory and verified (size and digest, one
   * WebCrypto hash): the network's reads copied into one buffer of its size,
   * with no stream in between — a stream costs a verifier, two buffers and a
   * stream of its own per blob, most of the CPU of a pull of many small
   * blobs. Resumed with `Range` after a dropped or stalled connection, as
   * {@link BlobDownloads.fetch}'s streams are; a body longer than the
   * descriptor fails at its first extra byte.
   *
   * @param desc the blob (meant for sizes under {@link LARGE_BLOB}: it is held whole)
   * @param first an answer already at hand (a mirror's), read first
   * @param options `signal`: stops its requests
   * @returns its bytes
   * @throws {VerificationError} when they are not the descriptor's
   */
  async read(desc: Descriptor, first?: Response, options: FetchOptions = {}): Promise<Uint8Array> {
    this.#checkSize(desc);
    return await this.#read(desc, first, new DownloadStalls(), options.signal);
  }

  /**
   * {@link BlobDownloads.read}, its stalls counted in `stalls`: those of the
   * request that gave `first` too (a mirror's first stall and the stalls of
   * its resumptions share one deadline, as a stream's do).
   */
  async #read(
    desc: Descriptor,
    first: Response | undefined,
    stalls: DownloadStalls,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array> {
    const what = `blob ${desc.digest} of ${this.#repo.description}`;
    const maxResume = this.#repo.options.resumeAttempts ?? 5;
    const bytes = new Uint8Array(desc.size);
    let got = 0;
    // reads land in a buffer of their own, copied over: a read that fails loses the buffer it
    // was given, and the bytes had before it must stay (the resumption asks for the rest)
    let own: ArrayBuffer | undefined;
    for (let resumes = 0;; resumes++) {
      const res = first ??
        await this.#getBlob(desc, what, stalls, signal, got > 0 ? `bytes=${got}-` : undefined);
      first = undefined;
      try {
        await this.#checkResumed(res, desc, what, got);
      } catch (e) {
        await res.body?.cancel().catch(() => {});
        throw e;
      }
      // a 200 to a Range request sends the blob from its start: the bytes had already are skipped
      let skip = got > 0 && res.status === 200 ? got : 0;
      // the body's reads under its limits, without its stream (one per read cost more than it)
      const reader = timedRead(res) ?? res.body!.getReader({ mode: "byob" });
      try {
        while (true) {
          own ??= spareReads.pop() ?? new ArrayBuffer(SMALL_READ);
          const r = await reader.read(new Uint8Array(own));
          own = r.value?.buffer as ArrayBuffer | undefined; // the read transferred it
          if (r.done) break;
          let chunk = r.value;
          if (skip > 0) {
            const drop = Math.min(skip, chunk.byteLength);
            skip -= drop;
            chunk = chunk.subarray(drop);
          }
          if (got + chunk.byteLength > desc.size) {
            await reader.cancel().catch(() => {});
            throw new VerificationError(`${what}: size exceeds the expected ${desc.size} bytes`);
          }
          bytes.set(chunk, got);
          got += chunk.byteLength;
        }
      } catch (e) {
        if (e instanceof VerificationError) throw e;
        own = undefined; // lost with the failed read
        // broken off after the blob's last byte: nothing is missing, the digest decides (a
        // Range from the blob's end would only be refused, 416)
        if (got < desc.size) {
          this.#resumeOrThrow(e, resumes, maxResume, what, signal);
          continue;
        }
        this.#throwIfStopped(signal);
      }
      if (got < desc.size) {
        if (resumes < maxResume) continue; // closed early: the rest
        throw this.#endedEarly(what, got, desc.size, maxResume);
      }
      if (own?.byteLength === SMALL_READ && spareReads.length < MAX_SPARE_READS) {
        spareReads.push(own);
      }
      await verifyBytes(bytes.subarray(0, got), desc, what);
      return bytes;
    }
  }

  /**
   * A download whose answers each ended (cleanly) before the blob did, as
   * often as resuming is allowed: the registry's failure, not a blob's.
   */
  #endedEarly(what: string, got: number, size: number, maxResume: number): RegistryError {
    const registry = this.#repo.client.registry;
    return new RegistryError(
      maxResume === 0
        ? `${what}: ${registry} ended its answer after ${got} of ${size} bytes`
        : `${what}: ${registry} sent ${got} of ${size} bytes, each answer ending early; ` +
          `gave up after ${maxResume} resumed downloads`,
      0,
    );
  }

  /** Stopped (the caller's signal, or the client's): no resumption, the reason as it is. */
  #throwIfStopped(signal: AbortSignal | undefined): void {
    signal?.throwIfAborted();
    this.#repo.client.signal.throwIfAborted();
  }

  /**
   * After a read of a download failed: return to ask again, or throw when
   * that would not help (too slow is final) or it was asked too often.
   */
  #resumeOrThrow(
    e: unknown,
    resumes: number,
    maxResume: number,
    what: string,
    signal: AbortSignal | undefined,
  ): void {
    this.#throwIfStopped(signal);
    // too slow, or stalled too long in all, is not mended by asking again
    if (e instanceof RegistryTimeoutError && e.kind === "rate") {
      if (resumes === 0) throw e;
      throw new RegistryTimeoutError(
        `${e.message}; gave up after ${resumes} resumed downloads`,
        "rate",
        { cause: e },
      );
    }
    if (resumes < maxResume) return;
    if (e instanceof RegistryError) {
      throw new RegistryError(
        `${e.message}; gave up after ${maxResume} resumed downloads`,
        e.status,
        e.code,
        { cause: e },
      );
    }
    throw new RegistryError(
      `${what}: download from ${this.#repo.client.registry} interrupted too often (${oneLine(e)})`,
      0,
      undefined,
      { cause: e },
    );
  }

  /**
   * Like {@link fetch}, as one stream, but the registry has answered before
   * this returns: a blob it does not have ({@link NotFoundError}) or a
   * registry it cannot reach throws here, not from the stream (how a mirror
   * is asked before its registry).
   *
   * @param desc the blob
   * @param options `signal`: stops its requests and its stream
   * @returns its bytes, vouched for
   */
  async fetchAnswered(
    desc: Descriptor,
    options: FetchOptions = {},
  ): Promise<ReadableStream<Uint8Array>> {
    this.#checkSize(desc);
    const signal = options.signal;
    const stalls = new DownloadStalls();
    const what = `blob ${desc.digest} of ${this.#repo.description}`;
    const first = await this.#getBlob(desc, what, stalls, signal);
    // an answer that says it is other bytes fails here, before a byte is used (a mirror is
    // then skipped for the registry): another length, another digest
    const length = first.status === 200 ? first.headers.get("content-length") : null;
    try {
      if (length !== null && /^\d+$/.test(length) && Number(length) !== desc.size) {
        throw new VerificationError(
          `${what}: ${this.#repo.client.registry} answered ${length} bytes, expected ${desc.size}`,
        );
      }
      await this.#repo.checkAnswered(first, desc.digest, what);
    } catch (e) {
      await first.body?.cancel().catch(() => {});
      throw e;
    }
    if (desc.size < LARGE_BLOB) {
      return vouch(bytesStream(await this.#read(desc, first, stalls, signal)), desc);
    }
    return vouch(this.#blobStream(desc, stalls, signal, first), desc);
  }

  /**
   * A descriptor's size must be a byte count before a buffer of it is made or
   * a byte is asked for (a manifest's descriptors are validated as they are
   * parsed; a library's caller may pass any).
   */
  #checkSize(desc: Descriptor): void {
    if (Number.isSafeInteger(desc.size) && desc.size >= 0) return;
    throw new FormatError(
      `blob ${desc.digest} of ${this.#repo.description}: descriptor has an invalid size (${
        printable(String(desc.size).slice(0, 30))
      })`,
    );
  }

  /** GET a blob (a range of it), 404 as {@link NotFoundError}. */
  async #getBlob(
    desc: Descriptor,
    what: string,
    stalls: DownloadStalls,
    signal: AbortSignal | undefined,
    range?: string,
  ): Promise<Response> {
    const res = await this.#repo.client.request({
      method: "GET",
      url: `/v2/${this.#repo.repository}/blobs/${desc.digest}`,
      headers: range ? { range } : {},
      scope: this.#repo.scope(),
      what,
      ok: [200, 206, 404],
      stream: true,
      download: desc.size >= HTTP1_MIN,
      stalls,
      signal,
    });
    if (res.status === 404) {
      await res.body?.cancel();
      throw new NotFoundError(`${what} not found on ${this.#repo.client.registry}`);
    }
    return res;
  }

  /**
   * Check an answer to a request from byte `from` of a blob (0: all of it, no
   * `Range` sent) before a byte of it is used: a `206` must say it holds
   * exactly the rest of the blob (`Content-Range: bytes <from>-<size-1>/<size>`);
   * a `200` to a `Range` request that states a length must state the blob's.
   * Anything else is refused at once, not asked again (a server that sends
   * another range than asked would do so again).
   */
  async #checkResumed(
    res: Response,
    desc: Descriptor,
    what: string,
    from: number,
  ): Promise<void> {
    const host = this.#repo.client.registry;
    if (res.status === 206) {
      // ranged.ts loads with the first answer to a Range request (a resumption, a large blob)
      const { checkContentRange } = await import("./ranged.ts");
      checkContentRange(res, { start: from, end: desc.size - 1, size: desc.size, what, host });
      return;
    }
    const length = res.headers.get("content-length");
    if (from > 0 && length !== null && Number(length) !== desc.size) {
      if (/^\d{1,16}$/.test(length)) {
        // the whole blob again, of another size than the descriptor's: the blob is not it
        throw new VerificationError(
          `${what}: size mismatch, expected ${desc.size} bytes but ${host} sent the whole blob as ${
            Number(length)
          } (a 200 to a request for bytes ${from}-${desc.size - 1}); refused`,
        );
      }
      throw new RegistryError(
        `${what}: ${host} answered 200 with Content-Length '${
          printable(length.slice(0, 20))
        }' to a request for bytes ${from}-${desc.size - 1}/${desc.size}; refused`,
        res.status,
      );
    }
  }

  /**
   * A large blob in `parts` parallel ranged requests, emitted in order and
   * verified by one {@link Verifier}; a registry that ignores `Range` is read
   * as one stream ({@link #blobStream}) from its first answer.
   */
  async #rangedStream(
    desc: Descriptor,
    parts: number,
    stalls: DownloadStalls,
    signal: AbortSignal | undefined,
  ): Promise<ReadableStream<Uint8Array>> {
    const what = `blob ${desc.digest} of ${this.#repo.description}`;
    // loaded on first use: only blobs over the range threshold come in ranges
    const { rangedStream } = await import("./ranged.ts");
    return rangedStream({
      size: desc.size,
      what,
      host: this.#repo.client.registry,
      parts,
      segmentSize: this.#repo.options.rangeSegmentSize ?? DEFAULT_RANGE_SEGMENT,
      maxResume: this.#repo.options.resumeAttempts ?? 5,
      verifier: new Verifier(desc, what, { offThread: this.#repo.options.hashOffThread ?? false }),
      request: (start, end) => this.#getBlob(desc, what, stalls, signal, `bytes=${start}-${end}`),
      fallback: (first) => this.#blobStream(desc, stalls, signal, first),
      throwIfStopped: () => this.#throwIfStopped(signal),
    });
  }

  /**
   * A blob download that resumes with `Range` after a dropped or stalled
   * connection (not after one too slow, or a stall past the deadline its
   * stalls share: that is final), verified by the one {@link Verifier}
   * across resumptions. `first`: a `200` answer already at hand, read from
   * its start.
   */
  #blobStream(
    desc: Descriptor,
    stalls: DownloadStalls,
    signal: AbortSignal | undefined,
    first?: Response,
  ): ReadableStream<Uint8Array> {
    const what = `blob ${desc.digest} of ${this.#repo.description}`;
    // large blobs are hashed in a worker while the next bytes arrive
    const verifier = new Verifier(desc, what, {
      offThread: this.#repo.options.hashOffThread ?? false,
    });
    const maxResume = this.#repo.options.resumeAttempts ?? 5;
    let received = 0;
    let resumes = 0;
    let reads: TimedBody | undefined;
    let skip = 0; // bytes to drop when a server ignores Range (200)
    const open = async () => {
      let res = first;
      first = undefined;
      res ??= await this.#getBlob(
        desc,
        what,
        stalls,
        signal,
        received > 0 ? `bytes=${received}-` : undefined,
      );
      try {
        await this.#checkResumed(res, desc, what, received);
      } catch (e) {
        await res.body?.cancel().catch(() => {});
        throw e;
      }
      // a 200 to a Range request sends the blob from its start: the bytes passed on already
      // are dropped, and the verifier goes on over the rest (its digest covers every byte passed)
      skip = received > 0 && res.status === 200 ? received : 0;
      reads = timedRead(res) ?? byobReads(res.body!);
    };
    // every way out of the stream but its end stops the verifier's worker
    const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (e) {
        verifier.dispose();
        throw e;
      }
    };
    const opened = guard(open);
    opened.catch(() => {}); // (the reads see it fail)
    // Reads that fill the buffer given from its start, the one loop of the stream's reads and
    // of its reads in place. An answer whose reads take the buffer (fetch's) is read into a
    // buffer of its own, copied over: a network read that fails loses the buffer it was
    // given, and were that the consumer's, the bytes it held already (a block partly
    // filled) would be lost with it, unseen by the verifier — a resumed download then wrote
    // a corrupt blob that passed. One whose reads leave it (http1Fetch's) fills `into` itself.
    let own: ArrayBuffer | undefined;
    const readInto = async (into: Uint8Array): Promise<number | null> => {
      await opened;
      while (true) {
        let r: ReadableStreamReadResult<Uint8Array>;
        const inPlace = reads!.inPlace;
        try {
          if (inPlace) {
            r = await reads!.read(into);
          } else {
            own ??= new ArrayBuffer(Math.max(1, Math.min(READ_BUFFER, desc.size)));
            r = await reads!.read(
              new Uint8Array(own, 0, Math.min(own.byteLength, into.byteLength)),
            );
            own = r.value?.buffer as ArrayBuffer | undefined; // the read transferred it
          }
        } catch (e) {
          if (!inPlace) own = undefined; // lost with the failed read
          if (received === desc.size) {
            // broken off after the blob's last byte (a length longer than the blob, a chunked
            // body without its last chunk): nothing is missing, the digest decides; a Range
            // from the blob's end would only be refused (416)
            this.#throwIfStopped(signal);
            verifier.finish();
            return null;
          }
          this.#resumeOrThrow(e, resumes++, maxResume, what, signal);
          await open();
          continue;
        }
        if (r.done) {
          if (received < desc.size) {
            if (resumes++ >= maxResume) {
              throw this.#endedEarly(what, received, desc.size, maxResume);
            }
            await open(); // closed early: resume
            continue;
          }
          verifier.finish();
          return null;
        }
        let chunk = r.value;
        if (skip > 0) {
          const drop = Math.min(skip, chunk.byteLength);
          skip -= drop;
          chunk = chunk.subarray(drop);
          if (chunk.byteLength === 0) continue;
        }
        try {
          verifier.update(chunk); // more than desc.size fails here, before it is passed on
        } catch (e) {
          await reads!.cancel(e).catch(() => {});
          throw e;
        }
        received += chunk.byteLength;
        if (chunk.buffer !== into.buffer || chunk.byteOffset !== into.byteOffset) into.set(chunk);
        return chunk.byteLength;
      }
    };
    const cancel = async (reason: unknown) => {
      verifier.dispose();
      await opened.catch(() => {});
      await reads?.cancel(reason);
    };
    return streamOfReads({ read: (into) => guard(() => readInto(into)), cancel }, {
      start: () => opened,
    });
  }
}
