/**
 * The HTTP beneath the registry client: caps on bodies read whole, the
 * network limits ({@link DEFAULT_TIMEOUTS}), one `fetch` with a connect/headers
 * timeout, an idle timeout for body reads, a low-speed limit over a sliding
 * window and a total timeout (blob downloads: a minimum average rate
 * instead), the stalls one download may have in all ({@link DownloadStalls}),
 * the {@link RegistryTimeoutError} it fails with, capped body reads, the URLs
 * ocipkg refuses to fetch, and how a failed connection is named in messages.
 *
 * @module
 */
import { oneLine } from "../../util/errors.ts";
import { readBodyCapped } from "../../util/body.ts";
import { Alarm } from "../../util/timer.ts";
import { RegistryError } from "./errors.ts";
import { DEFAULT_TIMEOUTS } from "../defaults.ts";
import { type Http1Body, http1Body, http1Fetch, type Http1Options } from "./http1.ts";

/** Cap on bodies read whole: manifests, tokens, error documents (4 MiB). */
export const MAX_BODY = 4 * 1024 * 1024;
/** Cap on an error body read for its message (64 KiB); longer ones are ignored. */
export const MAX_ERROR_BODY = 64 * 1024;

/**
 * A shared deadline is this many times the limit it extends: the attempts
 * of one request share 1.5 × the connect timeout, the stalls of one download
 * 1.5 × the idle timeout.
 */
export const SHARED_DEADLINE_FACTOR = 1.5;

/** The network limits a client may set (see {@link DEFAULT_TIMEOUTS}). */
export type Timeouts = { [K in keyof typeof DEFAULT_TIMEOUTS]?: number };

/**
 * One network limit: the one set when it is a positive number, else the default.
 *
 * @param options the limits set
 * @param k which limit
 * @returns the limit
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { timeoutOf } from "./http.ts";
 * assert.equal(timeoutOf({ idleTimeoutMs: 5 }, "idleTimeoutMs"), 5);
 * assert.equal(timeoutOf({ idleTimeoutMs: 0 }, "idleTimeoutMs"), 30_000);
 * ```
 */
export function timeoutOf<K extends keyof typeof DEFAULT_TIMEOUTS>(
  options: Timeouts,
  k: K,
): number {
  const v = options[k];
  return typeof v === "number" && v > 0 ? v : DEFAULT_TIMEOUTS[k];
}

/**
 * What timed out: connecting/headers, a silent body, the whole request, or a
 * body too slow (`rate`: below the low-speed limit over its window, below the
 * minimum average rate of a blob, or a download whose stalls used up their
 * shared deadline) — the one kind that is neither retried nor resumed.
 */
export type TimeoutKind = "connect" | "idle" | "total" | "rate";

/**
 * A request or response that took too long; retryable where a retry is safe.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegistryTimeoutError } from "@ocipkg/cli";
 * import { RegistryClient } from "@ocipkg/cli/transport";
 * // a stand-in for a registry that answers after 300 ms
 * const slow = () => new Promise<Response>((r) => setTimeout(() => r(Response.json({})), 300));
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, slow);
 * const client = new RegistryClient(`127.0.0.1:${server.addr.port}`, {
 *   credential: null,
 *   connectTimeoutMs: 50,
 *   maxAttempts: 1,
 * });
 * const ping = client.request({ method: "GET", url: "/v2/", what: "registry" });
 * await assert.rejects(ping, (e) => e instanceof RegistryTimeoutError && e.kind === "connect");
 * client.close();
 * await server.shutdown();
 * ```
 */
export class RegistryTimeoutError extends RegistryError {
  /** What timed out. */
  readonly kind: TimeoutKind;
  /**
   * Create a RegistryTimeoutError.
   * @param message one line naming the host and what timed out
   * @param kind what timed out
   * @param options the cause
   */
  constructor(message: string, kind: TimeoutKind, options?: ErrorOptions) {
    super(message, 0, undefined, options);
    this.kind = kind;
  }
}

const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

/**
 * Seconds, for messages: `0.3 s`, `30 s`.
 *
 * @param ms milliseconds
 * @returns the seconds, with at most three decimals
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { secs } from "./http.ts";
 * assert.equal(secs(300), "0.3 s");
 * assert.equal(secs(30_000), "30 s");
 * ```
 */
export function secs(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/**
 * Read at most `cap` bytes of a response body. A body {@link timedFetch}
 * wrapped is read without its stream, straight into one buffer of its
 * declared length (a manifest's first read through the stream cost ≈ 5 ms
 * of a command's start; this, a read or two).
 *
 * @param res the response
 * @param cap byte cap
 * @param what names the body in errors
 * @returns the bytes
 * @throws {RegistryError} when longer than the cap
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readCapped } from "./http.ts";
 * assert.deepEqual(await readCapped(new Response("abc"), 3, "body"), new TextEncoder().encode("abc"));
 * await assert.rejects(readCapped(new Response("abcd"), 3, "token"), /token is larger than the 3-byte cap/);
 * ```
 */
export async function readCapped(res: Response, cap: number, what: string): Promise<Uint8Array> {
  const tooLarge = (declared?: number) =>
    new RegistryError(
      declared === undefined
        ? `${what} is larger than the ${cap}-byte cap`
        : `${what} is ${declared} bytes, over the ${cap}-byte cap`,
      res.status,
    );
  const reads = timedRead(res);
  if (!reads) return await readBodyCapped(res, cap, tooLarge);
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > cap) {
    await reads.cancel();
    throw tooLarge(declared);
  }
  // one byte more than declared: the read that finds the end needs room to be asked
  let buf = new ArrayBuffer(
    Number.isSafeInteger(declared) && declared >= 0 ? declared + 1 : MIN_AUTO_CHUNK * 16,
  );
  let n = 0;
  while (true) {
    if (n === buf.byteLength) {
      // more than declared (or none declared): grow, up to one byte over the cap
      const grown = new Uint8Array(Math.min(cap + 1, buf.byteLength * 2));
      grown.set(new Uint8Array(buf));
      buf = grown.buffer;
    }
    const r = await reads.read(new Uint8Array(buf, n));
    if (r.value === undefined) {
      throw new RegistryError(`${what}: the body was cancelled while it was read`, res.status);
    }
    buf = r.value.buffer as ArrayBuffer; // the read transferred it
    if (r.done) break;
    n += r.value.byteLength;
    if (n > cap) {
      await reads.cancel();
      throw tooLarge();
    }
  }
  return new Uint8Array(buf, 0, n);
}

/**
 * The stalls of one blob download, across its resumed and ranged requests:
 * a body that sent no data for the idle timeout is a stall, and the
 * download resumes after it; but its stalls share one deadline,
 * {@link SHARED_DEADLINE_FACTOR} × the idle timeout in all (overlapping
 * stalls of parallel ranges counted once). The stall that passes it is
 * final (a `rate` timeout): a registry that sends headers and then nothing,
 * again and again, holds a download for two idle timeouts (60 s by
 * default), not the idle timeout times the resume attempts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DownloadStalls } from "./http.ts";
 * const stalls = new DownloadStalls();
 * assert.equal(stalls.add(30, 100), 30); // a stall of 30 ms ended at 100
 * assert.equal(stalls.add(30, 110), 40); // an overlapping one adds 10 ms
 * assert.equal(stalls.spentMs, 40);
 * ```
 */
export class DownloadStalls {
  #spent = 0;
  #until = -Infinity;

  /** Time stalled so far, in ms. */
  get spentMs(): number {
    return this.#spent;
  }

  /**
   * Count a stall.
   * @param ms how long it lasted
   * @param now when it ended (`performance.now()`)
   * @returns the time stalled in all
   */
  add(ms: number, now: number = performance.now()): number {
    const from = Math.max(now - ms, this.#until);
    if (now > from) this.#spent += now - from;
    this.#until = Math.max(this.#until, now);
    return this.#spent;
  }
}

/**
 * Bytes over a sliding window of network time, for the low-speed limit: one
 * sample per 1/32 of the window (later bytes of a sample's slot move it).
 */
class SpeedWindow {
  readonly #windowMs: number;
  readonly #slotMs: number;
  readonly #need: number;
  #bytes = 0;
  // [slot start, time of its last bytes, bytes in all by then]; the first is the body's start
  #samples: [number, number, number][] = [[-Infinity, 0, 0]];

  constructor(bytesPerSecond: number, windowMs: number) {
    this.#windowMs = windowMs;
    this.#slotMs = windowMs / 32;
    this.#need = (bytesPerSecond * windowMs) / 1000;
  }

  #prune(now: number): void {
    while (this.#samples.length > 1 && this.#samples[1]![1] <= now - this.#windowMs) {
      this.#samples.shift();
    }
  }

  /** `n` bytes arrived at network time `now`. */
  add(now: number, n: number): void {
    this.#bytes += n;
    const last = this.#samples[this.#samples.length - 1]!;
    if (now - last[0] < this.#slotMs) {
      last[1] = now;
      last[2] = this.#bytes;
    } else this.#samples.push([now, now, this.#bytes]);
    this.#prune(now);
  }

  /** Bytes in the window that ends at `now` (none before a window has passed). */
  inWindow(now: number): number {
    this.#prune(now);
    const base = this.#samples[0]![1] <= now - this.#windowMs ? this.#samples[0]![2] : 0;
    return this.#bytes - base;
  }

  /** The network time at which the window is below the limit if no more bytes arrive. */
  failsAt(): number {
    for (const [, t, bytes] of this.#samples) {
      if (this.#bytes - bytes < this.#need) return t + this.#windowMs;
    }
    return Infinity; // unreachable: the last sample holds every byte
  }

  /** Whether the window ending at `now` is below the limit. */
  below(now: number): boolean {
    return now >= this.#windowMs && this.inWindow(now) < this.#need;
  }
}

/** A request's attempt after a failure, under the deadline its attempts share (see `retry.ts`). */
export interface RetryLimits {
  /** The attempt (2 or more). */
  attempt: number;
  /** When the deadline passes (`performance.now()`). */
  end: number;
  /** The deadline's length, for messages. */
  deadlineMs: number;
}

/** Limits of one fetch (one hop). */
export interface FetchLimits {
  /** Names the object in errors. */
  what: string;
  /** How to name the host in errors. */
  host: string;
  /** Time to the response headers. */
  headersMs: number;
  /** Absolute deadline (performance.now()) for the whole request, or none (blob bodies). */
  deadline: number | undefined;
  /** The total budget, for the message. */
  totalMs: number;
  /** Longest silence of the body. */
  idleMs: number;
  /** Blob bodies: minimum average rate after `graceMs`. */
  minRate: number | undefined;
  /** Time before the minimum rate applies. */
  graceMs: number;
  /** `(GET /v2/…)` for messages. */
  detail: string;
  /** The low-speed limit (default: {@link DEFAULT_TIMEOUTS}' `speedLimit` over `speedTimeMs`). */
  speed?: { bytesPerSecond: number; windowMs: number };
  /** The stalls of the download the body belongs to; each stall alone when absent. */
  stalls?: DownloadStalls;
  /** An attempt after a failure: the wait for headers, and `deadline`, end by the shared deadline. */
  retry?: RetryLimits;
  /** Stops the request and its body, which fail with its reason (the caller gave up). */
  stop?: AbortSignal;
  /**
   * Send this GET with {@link http1Fetch} (a large blob's download), not
   * `fetch`: its CA certificates and kept connections.
   */
  http1?: Http1Options;
}

/** The chunks a body's reader without buffers of its own is given: at most 256 KiB… */
const MAX_AUTO_CHUNK = 256 << 10;
/** …and for a small body, its declared length, but at least 1 KiB. */
const MIN_AUTO_CHUNK = 1024;

/**
 * `fetch` with timeouts: headers within `headersMs`, the whole request by
 * `deadline`, body reads never silent for `idleMs`, bodies above the
 * low-speed limit over its window, blob bodies at least `minRate` on average
 * after `graceMs`; an attempt after a failure (`retry`) within the deadline
 * its request's attempts share. The body of the returned response is
 * wrapped; reading it to the end, or cancelling it, clears every timer.
 *
 * @param url where to
 * @param init the request (its `signal` is replaced)
 * @param l the limits
 * @returns the response, its body wrapped
 * @throws {RegistryTimeoutError} when a limit is passed (the body errors with it later)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegistryTimeoutError, timedFetch } from "./http.ts";
 * // a stand-in for a registry that sends one byte, then nothing
 * const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
 * const server = Deno.serve(listen, () => {
 *   const body = new ReadableStream({ start: (c) => c.enqueue(new Uint8Array([1])) });
 *   return new Response(body);
 * });
 * const url = new URL(`http://127.0.0.1:${server.addr.port}/v2/`);
 * const limits = { what: "registry", host: url.host, headersMs: 5000, deadline: undefined,
 *   totalMs: 5000, idleMs: 100, minRate: undefined, graceMs: 0, detail: "(GET /v2/)" };
 * const res = await timedFetch(url, {}, limits);
 * await assert.rejects(res.bytes(), (e) => e instanceof RegistryTimeoutError && e.kind === "idle");
 * await server.shutdown();
 * ```
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegistryTimeoutError, timedFetch } from "./http.ts";
 * // a stand-in for a registry that sends a byte every 20 ms, for ever
 * const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
 * const server = Deno.serve(listen, () => {
 *   const drip = (c: ReadableStreamDefaultController<Uint8Array>) =>
 *     new Promise((r) => setTimeout(r, 20)).then(() => c.enqueue(new Uint8Array([1])));
 *   return new Response(new ReadableStream({ pull: drip }));
 * });
 * const url = new URL(`http://127.0.0.1:${server.addr.port}/v2/blob`);
 * const limits = { what: "blob", host: url.host, headersMs: 5000, deadline: undefined,
 *   totalMs: 5000, idleMs: 5000, minRate: undefined, graceMs: 0, detail: "(GET /v2/blob)",
 *   speed: { bytesPerSecond: 1024, windowMs: 300 } }; // at least 307 bytes in any 0.3 s
 * const res = await timedFetch(url, {}, limits);
 * await assert.rejects(res.bytes(), (e) =>
 *   e instanceof RegistryTimeoutError && e.kind === "rate" && /below the speed limit/.test(e.message));
 * await server.shutdown();
 * ```
 */
export async function timedFetch(url: URL, init: RequestInit, l: FetchLimits): Promise<Response> {
  l.stop?.throwIfAborted();
  const ac = new AbortController();
  // the caller giving up aborts the request (and its body) with the caller's reason
  const stop = l.stop;
  const onStop = () => ac.abort(stop!.reason);
  stop?.addEventListener("abort", onStop, { once: true });
  const unstop = () => stop?.removeEventListener("abort", onStop);
  let reason: RegistryTimeoutError | undefined;
  const fail = (kind: TimeoutKind, msg: string): RegistryTimeoutError => {
    reason ??= new RegistryTimeoutError(`${l.what}: ${l.host} ${msg} ${l.detail}`, kind);
    ac.abort(reason);
    return reason;
  };
  const t0 = performance.now();
  // an attempt after a failure waits no longer than the deadline its request's attempts share
  const retry = l.retry;
  const shared = retry
    ? `the ${
      secs(retry.deadlineMs)
    } deadline the attempts of a request share (attempt ${retry.attempt})`
    : "";
  const headersCut = retry !== undefined && retry.end - t0 < l.headersMs;
  const headersMs = headersCut ? Math.max(0, retry!.end - t0) : l.headersMs;
  const totalCut = l.deadline !== undefined && retry !== undefined && retry.end < l.deadline;
  const deadline = totalCut ? retry!.end : l.deadline;
  const noAnswer = () =>
    fail(
      "connect",
      `did not answer within ${secs(l.headersMs)}${headersCut ? `, nor by ${shared}` : ""}`,
    );
  let answered = false;
  // (Alarms, not setTimeout: see timer.ts)
  const totalTimer = new Alarm();
  if (deadline !== undefined) {
    totalTimer.set(
      Math.max(0, deadline - t0),
      () =>
        totalCut
          // the shared deadline ends the wait for headers and for the body alike
          ? (answered ? fail("total", `did not finish answering by ${shared}`) : noAnswer())
          : fail("total", `did not finish answering within ${secs(l.totalMs)}`),
    );
  }
  const headersTimer = new Alarm();
  headersTimer.set(headersMs, noAnswer);
  let res: Response;
  try {
    res = l.http1
      ? await http1Fetch(url, { ...init, signal: ac.signal }, l.http1)
      : await fetch(url, { ...init, signal: ac.signal });
    answered = true;
  } catch (e) {
    totalTimer.clear();
    unstop();
    throw reason ?? (stop?.aborted ? stop.reason : e);
  } finally {
    headersTimer.clear();
  }
  if (!res.body || NULL_BODY_STATUS.has(res.status)) {
    totalTimer.clear();
    unstop();
    await res.body?.cancel().catch(() => {});
    return new Response(null, {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    });
  }
  // A byte stream read straight into the consumer's buffers (BYOB): no chunk
  // is allocated per read, which halves the cost of a large download.
  // http1Fetch's reads fill the buffer given without a stream between
  const h1 = http1Body(res);
  const reader: Http1Body = h1 ?? byobReads(res.body);
  let bytes = 0;
  let waited = performance.now() - t0; // time spent waiting for the network
  const bodyStart = waited; // the low-speed window's clock starts with the body
  // every body has a low-speed limit (a token service's too)
  const speed = l.speed ?? {
    bytesPerSecond: DEFAULT_TIMEOUTS.speedLimit,
    windowMs: DEFAULT_TIMEOUTS.speedTimeMs,
  };
  const meter = new SpeedWindow(speed.bytesPerSecond, speed.windowMs);
  const slow = (clock: number): RegistryTimeoutError => {
    const n = meter.inWindow(clock);
    const rate = Number(((n * 1000) / speed.windowMs).toFixed(1));
    return fail(
      "rate",
      `sent ${n} bytes in the last ${
        secs(speed.windowMs)
      } (${rate} bytes/s), below the speed limit of ` +
        `${speed.bytesPerSecond} bytes/s over ${secs(speed.windowMs)}`,
    );
  };
  const stalled = (): RegistryTimeoutError => {
    const silent = `sent no data for ${secs(l.idleMs)}`;
    if (!l.stalls) return fail("idle", silent);
    const most = SHARED_DEADLINE_FACTOR * l.idleMs;
    const total = l.stalls.add(l.idleMs);
    if (total < most) return fail("idle", silent);
    return fail(
      "rate",
      `${silent}; the download has stalled ${secs(total)} in all, over the ${
        secs(most)
      } one download may (1.5 × the idle timeout)`,
    );
  };
  let finished = false;
  const finish = () => {
    finished = true;
    totalTimer.clear();
    unstop();
  };
  // a reader without its own buffers (a manifest's, a token's) gets chunks of this size: no
  // larger than a small body's declared length (zeroing 256 KiB for a 500-byte manifest, twice
  // with the read that finds its end, was most of the CPU of `lock --check` of 10,000 tags)
  const declared = Number(res.headers.get("content-length") ?? NaN);
  const chunk = Number.isSafeInteger(declared) && declared < MAX_AUTO_CHUNK
    ? Math.max(MIN_AUTO_CHUNK, declared)
    : MAX_AUTO_CHUNK;
  // one alarm for every read (set as each read starts, cleared as it ends)
  const readTimer = new Alarm();
  // one read into `into`, under every limit: the wrapped body's and timedRead's reads
  const read = async (into: Uint8Array): Promise<ReadableStreamReadResult<Uint8Array>> => {
    const start = performance.now();
    const clock = waited - bodyStart; // the low-speed window's time at this read's start
    // this read waits the idle timeout, or less when the low-speed limit comes first
    // (a body silent for the whole window is a stall: the idle timeout's)
    const speedIn = meter.failsAt() - clock;
    const bySpeed = speedIn < l.idleMs;
    let onAbort: (() => void) | undefined;
    let r: ReadableStreamReadResult<Uint8Array>;
    try {
      // a timer that fired ends the body here, whether or not fetch's own
      // abort reaches a read in flight (it does not always: a body dripping a
      // byte at a time then kept the read going past the total timeout)
      if (reason) throw reason;
      if (ac.signal.aborted) throw ac.signal.reason; // stopped between reads
      r = await new Promise<ReadableStreamReadResult<Uint8Array>>((resolve, reject) => {
        readTimer.set(
          bySpeed ? Math.max(0, speedIn) : l.idleMs,
          () => reject(bySpeed ? slow(clock + Math.max(0, speedIn)) : stalled()),
        );
        onAbort = () => reject(reason ?? ac.signal.reason);
        ac.signal.addEventListener("abort", onAbort, { once: true });
        reader.read(into).then(resolve, (e) => reject(reason ?? e));
      });
    } catch (e) {
      finish();
      reader.cancel(e).catch(() => {});
      throw e;
    } finally {
      readTimer.clear();
      if (onAbort) ac.signal.removeEventListener("abort", onAbort);
    }
    if (r.done) {
      finish();
      return r;
    }
    bytes += r.value.byteLength;
    waited += performance.now() - start;
    let e: RegistryTimeoutError | undefined;
    const now = waited - bodyStart;
    meter.add(now, r.value.byteLength);
    if (meter.below(now)) e = slow(now);
    if (
      !e && l.minRate !== undefined && waited > l.graceMs && bytes / (waited / 1000) < l.minRate
    ) {
      e = fail(
        "rate",
        `sent ${bytes} bytes in ${secs(waited)}, below the minimum rate of ${l.minRate} bytes/s`,
      );
    }
    if (e) {
      finish();
      reader.cancel(e).catch(() => {});
      throw e;
    }
    return r;
  };
  const cancel = async (why?: unknown) => {
    if (finished) return;
    finish();
    await reader.cancel(why).catch(() => {});
  };
  const body = new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: chunk,
    pull: async (controller: ReadableByteStreamController) => {
      const request = controller.byobRequest!;
      const view = request.view!;
      const r = await read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
      if (r.done) {
        controller.close();
        if (r.value) request.respondWithNewView(r.value); // the buffer, back and empty
        return;
      }
      request.respondWithNewView(r.value);
    },
    cancel,
  }, { highWaterMark: 0 });
  const wrapped = new Response(body, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
  timedBodies.set(wrapped, { read, cancel, inPlace: h1 !== undefined });
  return wrapped;
}

/**
 * A byte stream's BYOB reads, in the shape of {@link TimedBody} (each read takes its buffer).
 *
 * @param body a byte stream (a response's body)
 * @returns its reads
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { byobReads } from "./http.ts";
 * const body = new ReadableStream({
 *   type: "bytes",
 *   start(c) {
 *     c.enqueue(new TextEncoder().encode("hi"));
 *     c.close();
 *   },
 * });
 * const reads = byobReads(body);
 * const r = await reads.read(new Uint8Array(8));
 * assert.equal(new TextDecoder().decode(r.value), "hi");
 * assert.equal(reads.inPlace, false);
 * ```
 */
export function byobReads(body: ReadableStream<Uint8Array>): TimedBody {
  const reader = body.getReader({ mode: "byob" });
  return {
    read: (into) => reader.read(into),
    cancel: (why) => reader.cancel(why),
    inPlace: false,
  };
}

/** The reads behind each body {@link timedFetch} wrapped, for {@link timedRead}. */
const timedBodies = new WeakMap<Response, TimedBody>();

/** A body's reads under its limits (see {@link timedFetch}). */
export interface TimedBody {
  /**
   * Read into `into` (a BYOB read: it transfers the buffer, unless
   * {@link TimedBody.inPlace}; the bytes come back in the result's `value`),
   * under the request's limits.
   */
  read(into: Uint8Array): Promise<ReadableStreamReadResult<Uint8Array>>;
  /**
   * The reads fill `into` in place and leave it to the caller, who may pass
   * any memory, shared memory too (an `http1Fetch` body); else each read
   * takes the buffer, which then comes back in `value` — or is lost with a
   * read that fails.
   */
  readonly inPlace: boolean;
  /** Stop reading: the connection is released, the timers cleared. */
  cancel(reason?: unknown): Promise<void>;
}

/**
 * The reads of a response's body without its stream: the same reads under
 * the same limits as the body's (idle, low speed, minimum rate, the total
 * deadline), for a reader that fills a buffer of its own whole (a small
 * blob), where a stream's machinery per read cost more than the read. Use
 * either these reads or the body, not both.
 *
 * @param res a response {@link timedFetch} returned (else, or for one
 *   without a body: undefined)
 * @returns its body's reads, or undefined
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { timedFetch, timedRead } from "./http.ts";
 * const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
 * const server = Deno.serve(listen, () => new Response("hello"));
 * const url = new URL(`http://127.0.0.1:${server.addr.port}/v2/`);
 * const limits = { what: "registry", host: url.host, headersMs: 5000, deadline: undefined,
 *   totalMs: 5000, idleMs: 5000, minRate: undefined, graceMs: 0, detail: "(GET /v2/)" };
 * const body = timedRead(await timedFetch(url, {}, limits))!;
 * let buf: Uint8Array = new Uint8Array(16);
 * let got = 0;
 * while (true) {
 *   const r = await body.read(buf.subarray(got));
 *   buf = new Uint8Array(r.value!.buffer); // the read transferred it
 *   if (r.done) break;
 *   got += r.value.byteLength;
 * }
 * assert.equal(new TextDecoder().decode(buf.subarray(0, got)), "hello");
 * assert.equal(timedRead(new Response("x")), undefined); // not timedFetch's
 * await server.shutdown();
 * ```
 */
export function timedRead(res: Response): TimedBody | undefined {
  return timedBodies.get(res);
}

/**
 * Refuse URLs ocipkg must never fetch: other schemes than http(s),
 * embedded credentials, and plain http for an https registry.
 *
 * @param url the URL a registry gave (redirect, upload location, token realm)
 * @param what names the object in errors
 * @param how how the URL came, e.g. `ghcr.io redirected to`
 * @param registry the registry, for messages
 * @param https whether the registry speaks https
 * @throws {RegistryError} naming the URL's scheme or host
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkUrl } from "./http.ts";
 * const url = new URL("http://cdn.example/blob");
 * checkUrl(url, "blob", "r.example redirected to", "r.example", false); // http from http: fine
 * assert.throws(() => checkUrl(url, "blob", "r.example redirected to", "r.example", true), /plain http/);
 * ```
 */
export function checkUrl(
  url: URL,
  what: string,
  how: string,
  registry: string,
  https: boolean,
): void {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new RegistryError(
      `${what}: ${how} a '${url.protocol}' URL; only http and https URLs are fetched`,
      0,
    );
  }
  if (url.username || url.password) {
    throw new RegistryError(
      `${what}: ${how} a URL with embedded credentials (${url.host}); refused`,
      0,
    );
  }
  if (https && url.protocol === "http:") {
    throw new RegistryError(
      `${what}: ${how} plain http (${url.host}) from the https registry ${registry}; refused`,
      0,
    );
  }
}

/**
 * An error and its causes, one line each, joined (at most five).
 *
 * @param e the thrown value
 * @returns one line
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { causeChain } from "./http.ts";
 * const e = new TypeError("error sending request", { cause: new Error("connection reset") });
 * assert.equal(causeChain(e), "error sending request: connection reset");
 * ```
 */
export function causeChain(e: unknown): string {
  const parts: string[] = [];
  for (let c: unknown = e; c instanceof Error && parts.length < 5; c = c.cause) {
    parts.push(oneLine(c));
  }
  return parts.join(": ") || oneLine(e);
}

/**
 * A failed connection, in words: `unknown host`, `connection refused`, an
 * untrusted certificate, or else its {@link causeChain}.
 *
 * @param e the thrown value
 * @returns one line
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectionMessage } from "./http.ts";
 * const e = new TypeError("client error", { cause: new Error("Connection refused (os error 111)") });
 * assert.equal(connectionMessage(e), "connection refused");
 * ```
 */
export function connectionMessage(e: unknown): string {
  const m = causeChain(e);
  if (/dns error|failed to lookup|Name or service not known|No address/i.test(m)) {
    return "unknown host";
  }
  if (/Connection refused/i.test(m)) return "connection refused";
  if (/certificate|UnknownIssuer|InvalidCertificate/i.test(m)) {
    return `TLS certificate not trusted: ${m}`;
  }
  return m;
}
