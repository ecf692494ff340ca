/**
 * A parallel ranged download of one large blob: a sliding window of `parts`
 * ranged `GET`s (each its own connection, since requests on one HTTP/1.1
 * connection are sequential) over consecutive segments, emitted strictly in
 * order into one byte stream and verified in that order by one
 * {@link Verifier}. Memory stays flat whatever the blob's size: at most
 * `2 × parts` segments are held (the one being emitted, freed block by
 * block, and those after it). The next segment is asked for while one ends
 * (about one request's wait before), so waiting for an answer overlaps the
 * transfer instead of adding to it.
 *
 * Every answer must be a `206` whose `Content-Range` is exactly the range
 * asked for (and the blob's size); a server that answers the first request
 * with `200` ignores `Range`: that answer is read as one stream instead
 * (`fallback`). A segment whose body breaks off or stalls is asked again from
 * where it stopped, within the blob's budget of resumptions.
 *
 * @module
 */
import type { Verifier } from "../../oci/digest.ts";
import { oneLine } from "../../util/errors.ts";
import { printable } from "../../util/text.ts";
import { RegistryTimeoutError } from "./http.ts";
import { RegistryError } from "./errors.ts";

/** Bytes of one buffer block a segment is read into (BYOB). */
const BLOCK = 1 << 20;
/** Segments held at most, per part: the one being emitted and those after it. */
const HELD = 2;

/** What {@link rangedStream} needs. */
export interface RangedSource {
  /** Size of the blob (from its descriptor). */
  size: number;
  /** Names the blob in errors, e.g. `blob sha256:… of host/repo`. */
  what: string;
  /** Names the registry in errors. */
  host: string;
  /** Requests in flight at once (≥ 2). */
  parts: number;
  /** Bytes per ranged request. */
  segmentSize: number;
  /** Resumptions allowed across the whole blob. */
  maxResume: number;
  /** The verifier the bytes pass, in order (the caller finishes and disposes of it). */
  verifier: Verifier;
  /**
   * Send `GET` with `Range: bytes=start-end` (inclusive); answer the response
   * (200 or 206, anything else thrown).
   */
  request(start: number, end: number): Promise<Response>;
  /** The blob as one stream, reading on from a `200` answer to the first request. */
  fallback(first: Response): ReadableStream<Uint8Array>;
  /**
   * Throw the reason the download was stopped for (its caller gave up), if
   * it was: a body cut by that is not resumed, and fails with it as given.
   */
  throwIfStopped?(): void;
}

/** A failure of one segment's body that asking again may mend. */
class Broken extends Error {}

interface Segment {
  start: number;
  /** Bytes of the segment. */
  length: number;
  /** Bytes received into blocks handed to the emitter. */
  received: number;
  /** Filled blocks, in order, not yet emitted. */
  ready: Uint8Array[];
  /** Ending: the next request is sent (no longer counts against `parts`). */
  tail: boolean;
  reader?: ReadableStreamBYOBReader;
}

/**
 * Parse `bytes a-b/total`.
 * @param v the header
 * @returns start, end (inclusive) and total (undefined for `*`)
 */
function parseContentRange(
  v: string | null,
): { start: number; end: number; total?: number } | undefined {
  const m = /^\s*bytes\s+(\d{1,16})-(\d{1,16})\/(\d{1,16}|\*)\s*$/i.exec(v ?? "");
  if (!m) return undefined;
  return {
    start: Number(m[1]),
    end: Number(m[2]),
    total: m[3] === "*" ? undefined : Number(m[3]),
  };
}

/**
 * Check that a `206` answer's `Content-Range` is exactly the range asked for
 * of a blob of `size` bytes (a total of `*` passes: it states none).
 *
 * @param res the answer (a `206`)
 * @param asked the range asked for (`end` inclusive), the blob's size, and
 *   how to name the blob and the registry
 * @throws {RegistryError} naming the blob, the registry, what it sent and
 *   what was asked, when the header is missing, malformed, or another range
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkContentRange } from "./ranged.ts";
 * const asked = { start: 10, end: 99, size: 100, what: "blob sha256:… of r/x", host: "r" };
 * const answer = (range: string) => new Response("", { headers: { "content-range": range } });
 * checkContentRange(answer("bytes 10-99/100"), asked);
 * checkContentRange(answer("bytes 10-99/*"), asked);
 * for (const wrong of ["bytes 0-99/100", "bytes 10-99/101", "bytes 10-98/100", "10-99/100"]) {
 *   assert.throws(() => checkContentRange(answer(wrong), asked), /answered Content-Range/);
 * }
 * assert.throws(() => checkContentRange(new Response(""), asked), /'none'/);
 * ```
 */
export function checkContentRange(
  res: Response,
  asked: { start: number; end: number; size: number; what: string; host: string },
): void {
  const { start, end, size, what, host } = asked;
  const raw = res.headers.get("content-range");
  const got = parseContentRange(raw);
  if (
    !got || got.start !== start || got.end !== end ||
    (got.total !== undefined && got.total !== size)
  ) {
    throw new RegistryError(
      `${what}: ${host} answered Content-Range '${
        printable((raw ?? "none").slice(0, 100))
      }' to a request for bytes ${start}-${end}/${size}; refused`,
      res.status,
    );
  }
}

/**
 * A byte stream of the blob fetched in parallel ranges, verified in order.
 * The stream errors with the first failure: a {@link RegistryError} naming
 * the blob and the host when an answer is not the range asked for or a
 * segment breaks off too often, the verifier's error when the bytes differ.
 *
 * @param src the blob, its size and how to ask for ranges
 * @returns the blob's bytes, in order
 */
export function rangedStream(src: RangedSource): ReadableStream<Uint8Array> {
  const { size, what, host, verifier } = src;
  const segSize = Math.max(1, src.segmentSize);
  const count = Math.ceil(size / segSize);
  const blockSize = Math.min(BLOCK, segSize);
  let latency: number | undefined; // ms from request to response headers (moving average)
  const measured = (ms: number) => latency = latency === undefined ? ms : 0.7 * latency + 0.3 * ms;
  const segments = new Map<number, Segment>();
  const free: ArrayBuffer[] = [];
  let head = 0; // the segment being emitted
  let offset = 0; // bytes emitted of head's first ready block
  let launched = 0; // segments started
  let resumes = 0;
  let failed: unknown;
  let closed = false;
  let wakeup: (() => void) | undefined;
  let fallback: ReadableStreamBYOBReader | undefined;

  const notify = () => {
    const w = wakeup;
    wakeup = undefined;
    w?.();
  };
  const stop = (reason: unknown) => {
    closed = true;
    verifier.dispose();
    for (const s of segments.values()) s.reader?.cancel(reason).catch(() => {});
    segments.clear();
    notify();
  };
  const fail = (e: unknown) => {
    if (closed) return;
    failed ??= e;
    stop(e);
  };
  const block = (): ArrayBuffer => free.pop() ?? new ArrayBuffer(blockSize);

  /** Check a ranged answer is exactly `start-end` of this blob. */
  const check = (res: Response, start: number, end: number): void => {
    if (res.status !== 206) {
      throw new RegistryError(
        `${what}: ${host} answered ${res.status} to a request for bytes ${start}-${end} after ` +
          `honouring Range before; refused`,
        res.status,
      );
    }
    checkContentRange(res, { start, end, size, what, host });
  };

  /**
   * Read a ranged body into the segment's blocks, then make sure it ends
   * there. A block is handed to the emitter once full (or the segment's
   * last); the bytes of a block still being filled when the body breaks off
   * are asked again.
   */
  const readBody = async (seg: Segment, res: Response): Promise<void> => {
    const reader = res.body!.getReader({ mode: "byob" });
    seg.reader = reader;
    const t0 = performance.now();
    const from = seg.received;
    let buf: ArrayBuffer | undefined;
    let fill = 0;
    try {
      while (seg.received + fill < seg.length) {
        buf ??= block();
        const want = Math.min(blockSize - fill, seg.length - seg.received - fill);
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read(new Uint8Array(buf, fill, want));
        } catch (e) {
          buf = undefined; // gone with the failed read
          if (e instanceof RegistryTimeoutError && e.kind === "rate") throw e;
          throw new Broken(oneLine(e), { cause: e });
        }
        if (r.value) buf = r.value.buffer as ArrayBuffer; // the read's buffer is the block now
        if (closed) return;
        if (r.done) {
          throw new Broken(
            `the answer for bytes ${seg.start + seg.received + fill}-${
              seg.start + seg.length - 1
            } ended early`,
          );
        }
        fill += r.value.byteLength;
        if (fill === blockSize || seg.received + fill === seg.length) {
          seg.ready.push(new Uint8Array(buf!, 0, fill));
          seg.received += fill;
          buf = undefined;
          fill = 0;
          notify();
          // ending within about one request's wait: ask for the next segment now
          const rate = (seg.received - from) / Math.max(1, performance.now() - t0); // bytes/ms
          const left = seg.length - seg.received;
          if (!seg.tail && (left === 0 || left <= rate * (latency ?? 0) * 1.5)) {
            seg.tail = true;
            launch();
          }
        }
      }
      // all asked for arrived: the body must end here
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read(new Uint8Array(1));
      } catch {
        return; // broken off after the last byte: nothing is missing
      }
      if (!r.done && !closed) {
        await reader.cancel().catch(() => {});
        throw new RegistryError(
          `${what}: ${host} sent more than the ${seg.length} bytes asked for (bytes ${seg.start}-${
            seg.start + seg.length - 1
          }); refused`,
          206,
        );
      }
    } finally {
      if (buf?.byteLength === blockSize && free.length < src.parts * 2) free.push(buf);
      if (seg.reader === reader) seg.reader = undefined;
    }
  };

  /** Fetch one segment, resuming within it after a drop. */
  const run = async (seg: Segment, first?: Response): Promise<void> => {
    let res = first;
    while (!closed) {
      const start = seg.start + seg.received;
      const end = seg.start + seg.length - 1;
      if (!res) {
        const t0 = performance.now();
        res = await src.request(start, end);
        measured(performance.now() - t0);
      }
      if (closed) {
        await res.body?.cancel().catch(() => {});
        return;
      }
      try {
        check(res, start, end);
      } catch (e) {
        await res.body?.cancel().catch(() => {});
        throw e;
      }
      try {
        await readBody(seg, res);
        return;
      } catch (e) {
        if (!(e instanceof Broken) || closed) throw e;
        src.throwIfStopped?.();
        seg.tail = false;
        if (resumes++ >= src.maxResume) {
          throw new RegistryError(
            `${what}: download from ${host} interrupted too often (${e.message}); gave up after ${src.maxResume} resumed downloads`,
            0,
            undefined,
            { cause: e.cause },
          );
        }
        res = undefined;
      }
    }
  };

  /**
   * Start segments while fewer than `parts` are busy and at most `2 × parts`
   * are held (the one being emitted and those after it). A segment that will
   * end within about one request's wait (the measured time to an answer's
   * headers, at its own rate) is no longer busy: the next request is sent
   * while it ends, so that wait overlaps the transfer instead of adding to it.
   */
  const launch = (first?: Response) => {
    while (!closed && launched < count && launched - head < HELD * src.parts) {
      let busy = 0;
      for (const s of segments.values()) if (!s.tail) busy++;
      if (busy >= src.parts) return;
      const index = launched++;
      const start = index * segSize;
      const seg: Segment = {
        start,
        length: Math.min(segSize, size - start),
        received: 0,
        ready: [],
        tail: false,
      };
      segments.set(index, seg);
      run(seg, index === 0 ? first : undefined).catch(fail);
    }
  };

  /** Copy what is ready, in order, into `view` (waiting for at least one byte). */
  const fill = async (view: Uint8Array): Promise<number> => {
    let n = 0;
    while (n < view.byteLength) {
      if (failed !== undefined) throw failed;
      if (closed || head >= count) break;
      const seg = segments.get(head)!;
      const chunk = seg.ready[0];
      if (!chunk) {
        if (seg.received === seg.length) {
          // emitted to its end: the window slides on
          segments.delete(head++);
          offset = 0;
          launch();
          continue;
        }
        if (n > 0) break;
        await new Promise<void>((r) => wakeup = r);
        continue;
      }
      const take = Math.min(chunk.byteLength - offset, view.byteLength - n);
      view.set(chunk.subarray(offset, offset + take), n);
      n += take;
      offset += take;
      if (offset === chunk.byteLength) {
        seg.ready.shift();
        offset = 0;
        if (chunk.buffer.byteLength === blockSize && free.length < src.parts * 2) {
          free.push(chunk.buffer as ArrayBuffer);
        }
      }
    }
    return n;
  };

  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: 256 << 10,
    start: async () => {
      // the first request tells whether the server honours Range
      let first: Response;
      try {
        const t0 = performance.now();
        first = await src.request(0, Math.min(segSize, size) - 1);
        measured(performance.now() - t0);
      } catch (e) {
        verifier.dispose();
        throw e;
      }
      if (first.status === 200) {
        verifier.dispose(); // the single stream verifies
        fallback = src.fallback(first).getReader({ mode: "byob" });
        return;
      }
      launch(first);
    },
    pull: async (controller: ReadableByteStreamController) => {
      const request = controller.byobRequest!;
      const view = request.view!;
      const target = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
      if (fallback) {
        const r = await fallback.read(target);
        if (r.done) {
          controller.close();
          if (r.value) request.respondWithNewView(r.value);
          return;
        }
        request.respondWithNewView(r.value);
        return;
      }
      try {
        const n = await fill(target);
        if (n > 0) {
          verifier.update(target.subarray(0, n)); // more than the size fails here
          request.respond(n);
          return;
        }
        verifier.finish();
      } catch (e) {
        fail(e);
        throw e;
      }
      closed = true;
      controller.close();
      request.respond(0);
    },
    cancel: async (reason) => {
      stop(reason);
      await fallback?.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
