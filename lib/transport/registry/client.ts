/**
 * HTTP for the distribution API: schemes, authentication (anonymous, Basic,
 * Bearer tokens per scope with re-challenge, identity tokens), manual
 * redirects, network timeouts, and bounded retries with exponential backoff +
 * jitter honouring `Retry-After`.
 *
 * Containment rules (every request, every redirect hop, every token realm):
 *
 * - Only `http:` and `https:` URLs are fetched; `file:`, `data:`, `ftp:` …
 *   redirect targets, realms and upload locations are refused, and so are
 *   URLs with embedded credentials (`http://user:pass@host/`).
 * - An https registry is never downgraded: a redirect, upload location or
 *   token realm on plain http is refused. (A loopback registry on http may
 *   redirect to http or https.)
 * - Credentials (Basic, identity token, bearer tokens) go only to the
 *   registry's own origin, and to the token realm that a challenge *from the
 *   registry's own origin* named. A 401 from any other origin (a redirect
 *   target, an upload location elsewhere) is an error naming that host; its
 *   challenge is never answered.
 * - Every request has a connect/headers timeout, an idle timeout for body
 *   reads, and a total timeout (blob downloads: a minimum average rate
 *   instead), see {@link DEFAULT_TIMEOUTS}; the time spent waiting between
 *   retries of one request is capped too.
 *
 * @module
 */
import { oneLine } from "../../util/errors.ts";
import { readBodyCapped } from "../../util/body.ts";
import { canonicalHost, isLoopbackHost } from "../../oci/reference.ts";
import { printable } from "../../util/text.ts";
import { type Credential, findCredential } from "./credentials.ts";
import { AuthError, RegistryError } from "./errors.ts";

/** Cap on bodies read whole: manifests, tokens, error documents (4 MiB). */
export const MAX_BODY = 4 * 1024 * 1024;
/** Cap on an error body read for its message (64 KiB); longer ones are ignored. */
export const MAX_ERROR_BODY = 64 * 1024;
/** Cap on a bearer token's length (64 KiB). */
export const MAX_TOKEN = 64 * 1024;

/**
 * Default network limits (milliseconds, bytes per second).
 *
 * - `connectTimeoutMs` 30 s: connecting (DNS, TCP, TLS) and waiting for the
 *   response headers. A request with a body gets extra time to send it at
 *   `minBytesPerSecond`.
 * - `idleTimeoutMs` 30 s: a response body that delivers no bytes for this
 *   long fails.
 * - `totalTimeoutMs` 5 min: the whole request (all redirect hops, headers and
 *   body) for manifests, tokens, tag pages, error bodies, uploads (plus the
 *   body's size at `minBytesPerSecond`).
 * - `minBytesPerSecond` 16 KiB/s: blob downloads have no total time limit;
 *   instead, once `totalTimeoutMs` has passed, the average rate of the
 *   download (bytes over the time spent waiting for the network, so a slow
 *   consumer does not count) must be at least this. A 10 GiB blob may thus
 *   take up to ≈ 7.6 days at the floor; any faster link is never cut.
 * - `retryBudgetMs` 60 s: the total time one request may spend waiting
 *   between retries (backoff and `Retry-After`). A `Retry-After` beyond what
 *   is left fails at once ("<host> asked to retry after 3600 s").
 */
export const DEFAULT_TIMEOUTS = {
  connectTimeoutMs: 30_000,
  idleTimeoutMs: 30_000,
  totalTimeoutMs: 300_000,
  minBytesPerSecond: 16 * 1024,
  retryBudgetMs: 60_000,
} as const;

/** Options of {@link RegistryClient}. */
export interface ClientOptions {
  /** Use http instead of https (default: true for loopback hosts, see {@link isLoopbackHost}, without `caFile`). */
  plainHttp?: boolean;
  /** PEM file of a private CA to trust. */
  caFile?: string;
  /** Credentials; default: looked up in auth files for the registry. */
  credential?: Credential | null;
  /** Attempts per request for retryable failures (default 5). */
  maxAttempts?: number;
  /** First backoff delay in ms (default 200); doubles each attempt, with jitter. */
  backoffMs?: number;
  /** Connect + response headers timeout in ms (default 30 000), see {@link DEFAULT_TIMEOUTS}. */
  connectTimeoutMs?: number;
  /** A response body delivering no bytes for this many ms fails (default 30 000). */
  idleTimeoutMs?: number;
  /** Whole-request timeout in ms, except blob downloads (default 300 000). */
  totalTimeoutMs?: number;
  /** Slowest average rate of a blob download once `totalTimeoutMs` has passed (default 16 KiB/s). */
  minBytesPerSecond?: number;
  /** Most time in ms one request spends waiting between retries (default 60 000). */
  retryBudgetMs?: number;
  /** Debug log (never receives secrets). */
  debug?: (line: string) => void;
  /** Told before each wait for a retry (what failed, and how long ocipkg waits). */
  onRetry?: (retry: RetryInfo) => void;
}

/** A retry about to happen, as {@link ClientOptions.onRetry} hears of it. */
export interface RetryInfo {
  /** What the request was for, e.g. `blob sha256:… of ghcr.io/org/x`. */
  what: string;
  /** The attempt that failed (1 = the first). */
  attempt: number;
  /** How long ocipkg waits before the next attempt, in ms. */
  waitMs: number;
  /** Why: `429`, `503`, or the connection error (one line, escaped). */
  reason: string;
}

/** A request to the registry. */
export interface RegistryRequest {
  /** HTTP method. */
  method: string;
  /** Path (`/v2/...`) or absolute URL (upload locations). */
  url: string;
  /** Extra headers. */
  headers?: Record<string, string>;
  /** Body: bytes (replayable) or a stream factory (sent once, not retried). */
  body?: Uint8Array | ReadableStream<Uint8Array>;
  /**
   * Bytes a streamed body will send, when known: the request gets the time to
   * send them at `minBytesPerSecond` on top of its limits, as a byte body does.
   */
  bodySize?: number;
  /** Token scope, e.g. `repository:org/x:pull`. */
  scope?: string;
  /** Names the object in errors, e.g. `image 'host/x:1'`. */
  what: string;
  /** Statuses that are not errors (default: 2xx). */
  ok?: number[];
  /**
   * The body is a blob streamed to a consumer: no total time limit on reading
   * it, but a minimum average rate (see {@link DEFAULT_TIMEOUTS}).
   */
  stream?: boolean;
}

/** What timed out: connecting/headers, a silent body, the whole request, or a too slow blob. */
export type TimeoutKind = "connect" | "idle" | "total" | "rate";

/**
 * A request or response that took too long; retryable where a retry is safe.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegistryClient, RegistryTimeoutError } from "@ocipkg/cli";
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
   */
  constructor(message: string, kind: TimeoutKind) {
    super(message, 0);
    this.kind = kind;
  }
}

/** A parsed `WWW-Authenticate` challenge. */
export interface Challenge {
  /** `basic` or `bearer` (lower case). */
  scheme: string;
  /** Its parameters (`realm`, `service`, `scope`, …). */
  params: Record<string, string>;
}

/**
 * Parse a `WWW-Authenticate` header.
 *
 * @param header the header value
 * @returns scheme and parameters
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseChallenge } from "./client.ts";
 * const c = parseChallenge('Bearer realm="https://auth.example/token",service="reg"');
 * assert.deepEqual(c, {
 *   scheme: "bearer",
 *   params: { realm: "https://auth.example/token", service: "reg" },
 * });
 * ```
 */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]!))) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3]!;
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

/**
 * Delay asked by a `Retry-After` header (seconds or HTTP date), in ms.
 *
 * @param value header value
 * @returns milliseconds, or undefined when absent/invalid
 */
export function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

/** Seconds, for messages: `0.3 s`, `30 s`. */
function secs(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/**
 * Read at most `cap` bytes of a response body.
 *
 * @param res the response
 * @param cap byte cap
 * @param what names the body in errors
 * @returns the bytes
 * @throws {RegistryError} when longer than the cap
 */
export function readCapped(res: Response, cap: number, what: string): Promise<Uint8Array> {
  return readBodyCapped(
    res,
    cap,
    (declared) =>
      new RegistryError(
        declared === undefined
          ? `${what} is larger than the ${cap}-byte cap`
          : `${what} is ${declared} bytes, over the ${cap}-byte cap`,
        res.status,
      ),
  );
}

/** Limits of one fetch (one hop). */
interface FetchLimits {
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
  idleMs: number;
  /** Blob bodies: minimum average rate after `graceMs`. */
  minRate: number | undefined;
  graceMs: number;
  /** `(GET /v2/…)` for messages. */
  detail: string;
}

/**
 * `fetch` with timeouts: headers within `headersMs`, the whole request by
 * `deadline`, body reads never silent for `idleMs`, blob bodies at least
 * `minRate` on average after `graceMs`. The body of the returned response is
 * wrapped; reading it to the end, or cancelling it, clears every timer.
 */
async function timedFetch(url: URL, init: RequestInit, l: FetchLimits): Promise<Response> {
  const ac = new AbortController();
  let reason: RegistryTimeoutError | undefined;
  const fail = (kind: TimeoutKind, msg: string): RegistryTimeoutError => {
    reason ??= new RegistryTimeoutError(`${l.what}: ${l.host} ${msg} ${l.detail}`, kind);
    ac.abort(reason);
    return reason;
  };
  const t0 = performance.now();
  let totalTimer: ReturnType<typeof setTimeout> | undefined;
  if (l.deadline !== undefined) {
    totalTimer = setTimeout(
      () => fail("total", `did not finish answering within ${secs(l.totalMs)}`),
      Math.max(0, l.deadline - t0),
    );
  }
  const headersTimer = setTimeout(
    () => fail("connect", `did not answer within ${secs(l.headersMs)}`),
    l.headersMs,
  );
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: ac.signal });
  } catch (e) {
    clearTimeout(totalTimer);
    throw reason ?? e;
  } finally {
    clearTimeout(headersTimer);
  }
  if (!res.body || NULL_BODY_STATUS.has(res.status)) {
    clearTimeout(totalTimer);
    await res.body?.cancel().catch(() => {});
    return new Response(null, {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    });
  }
  // A byte stream read straight into the consumer's buffers (BYOB): no chunk
  // is allocated per read, which halves the cost of a large download.
  const reader = res.body.getReader({ mode: "byob" });
  let bytes = 0;
  let waited = performance.now() - t0; // time spent waiting for the network
  let finished = false;
  const finish = () => {
    finished = true;
    clearTimeout(totalTimer);
  };
  const body = new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: 256 << 10,
    pull: async (controller: ReadableByteStreamController) => {
      const request = controller.byobRequest!;
      const view = request.view!;
      const start = performance.now();
      let idleTimer: ReturnType<typeof setTimeout> | undefined;
      let onAbort: (() => void) | undefined;
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        // a timer that fired ends the body here, whether or not fetch's own
        // abort reaches a read in flight (it does not always: a body dripping a
        // byte at a time then kept the read going past the total timeout)
        if (reason) throw reason;
        r = await new Promise<ReadableStreamReadResult<Uint8Array>>((resolve, reject) => {
          idleTimer = setTimeout(
            () => reject(fail("idle", `sent no data for ${secs(l.idleMs)}`)),
            l.idleMs,
          );
          onAbort = () => reject(reason ?? ac.signal.reason);
          ac.signal.addEventListener("abort", onAbort, { once: true });
          reader.read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength))
            .then(resolve, (e) => reject(reason ?? e));
        });
      } catch (e) {
        finish();
        reader.cancel(e).catch(() => {});
        throw e;
      } finally {
        clearTimeout(idleTimer);
        if (onAbort) ac.signal.removeEventListener("abort", onAbort);
      }
      if (r.done) {
        finish();
        controller.close();
        if (r.value) request.respondWithNewView(r.value); // the buffer, back and empty
        return;
      }
      bytes += r.value.byteLength;
      waited += performance.now() - start;
      if (l.minRate !== undefined && waited > l.graceMs && bytes / (waited / 1000) < l.minRate) {
        const e = fail(
          "rate",
          `sent ${bytes} bytes in ${secs(waited)}, below the minimum rate of ${l.minRate} bytes/s`,
        );
        finish();
        reader.cancel(e).catch(() => {});
        throw e;
      }
      request.respondWithNewView(r.value);
    },
    cancel: async (why) => {
      if (finished) return;
      finish();
      await reader.cancel(why).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return new Response(body, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
}

/**
 * A client for one registry host.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegistryClient } from "@ocipkg/cli";
 * // a stand-in for a registry: every request answers 200 `{}`
 * const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
 * const server = Deno.serve(listen, () => Response.json({}));
 * const registry = `127.0.0.1:${server.addr.port}`;
 * const client = new RegistryClient(registry, { credential: null }); // null: anonymous
 * assert.equal(client.baseUrl, `http://${registry}`); // a loopback host: plain http
 * const res = await client.request({ method: "GET", url: "/v2/", what: `registry ${registry}` });
 * assert.deepEqual(await res.json(), {});
 * client.close();
 * await server.shutdown();
 * ```
 */
export class RegistryClient {
  /** `host[:port]`, canonical (see `canonicalRegistry`): what credentials and messages key on. */
  readonly registry: string;
  /** `http(s)://host[:port]`. */
  readonly baseUrl: string;
  #origin: string;
  #https: boolean;
  #options: ClientOptions;
  #credential: Promise<Credential | undefined> | undefined;
  #auth = new Map<string, string>(); // scope → Authorization value
  #basic = false;
  #http: Deno.HttpClient | undefined;

  /**
   * Create a RegistryClient.
   * @param registry `host[:port]`, any spelling (`Docker.IO`, `127.1:5000`): it is made canonical
   * @param options scheme, CA, credentials, retries, timeouts, debug
   * @throws {RegistryError} naming the registry when it is not a host[:port]
   */
  constructor(registry: string, options: ClientOptions = {}) {
    try {
      registry = canonicalHost(registry);
    } catch {
      throw new RegistryError(`invalid registry '${printable(registry)}': use host[:port]`, 0);
    }
    this.registry = registry;
    // loopback hosts default to http, unless a CA file says the registry speaks TLS
    const plain = options.plainHttp ?? (isLoopbackHost(registry) && !options.caFile);
    this.baseUrl = `${plain ? "http" : "https"}://${registry}`;
    this.#https = !plain;
    let origin: string;
    try {
      origin = new URL(this.baseUrl).origin;
    } catch {
      throw new RegistryError(`invalid registry '${printable(registry)}': use host[:port]`, 0);
    }
    this.#origin = origin;
    this.#options = options;
    if (options.caFile) {
      let pem: string;
      try {
        pem = Deno.readTextFileSync(options.caFile);
      } catch (e) {
        throw new RegistryError(`CA file '${options.caFile}' is not readable: ${oneLine(e)}`, 0);
      }
      this.#http = Deno.createHttpClient({ caCerts: [pem] });
    }
  }

  #log(line: string): void {
    this.#options.debug?.(printable(line));
  }

  #limit<K extends keyof typeof DEFAULT_TIMEOUTS>(k: K): number {
    const v = this.#options[k];
    return typeof v === "number" && v > 0 ? v : DEFAULT_TIMEOUTS[k];
  }

  #cred(): Promise<Credential | undefined> {
    if (this.#options.credential !== undefined) {
      return Promise.resolve(this.#options.credential ?? undefined);
    }
    return this.#credential ??= findCredential(this.registry);
  }

  /** Release the HTTP client. */
  close(): void {
    this.#http?.close();
  }

  /**
   * Send a request with auth, redirects, timeouts and retries; returns the
   * response when its status is in `req.ok` (default 2xx), else throws a
   * {@link RegistryError} naming `req.what` and the host. The body of the
   * response must be read or cancelled.
   *
   * @param req the request
   * @returns the response (body unread)
   * @throws {RegistryError} naming the host; {@link RegistryTimeoutError} when it timed out
   * @example
   * ```ts ignore
   * import assert from "node:assert/strict";
   * import { RegistryClient } from "@ocipkg/cli";
   * const client = new RegistryClient("ghcr.io"); // credentials from `ocipkg login`, docker, podman
   * const res = await client.request({
   *   method: "GET",
   *   url: "/v2/org/libfoo/tags/list",
   *   scope: "repository:org/libfoo:pull", // the bearer token asked for
   *   what: "tags of ghcr.io/org/libfoo",
   * });
   * assert.ok((await res.json()).tags.includes("1.2"));
   * client.close();
   * ```
   */
  async request(req: RegistryRequest): Promise<Response> {
    return (await this.#request(req)).res;
  }

  /**
   * Like {@link request}, and read the body (at most `cap` bytes) inside the
   * retry loop, so a body that stalls, breaks off or times out is retried
   * like a failed connection.
   *
   * @param req the request
   * @param cap byte cap of the body
   * @param label names the body in cap errors, e.g. `manifest of image 'x'`
   * @returns the response (body consumed) and the body's bytes
   * @throws {RegistryError} naming the host, or when the body is over the cap
   */
  async requestBytes(
    req: RegistryRequest,
    cap: number,
    label: string,
  ): Promise<{ res: Response; bytes: Uint8Array }> {
    const r = await this.#request(req, { cap, label });
    return { res: r.res, bytes: r.bytes ?? new Uint8Array(0) };
  }

  async #request(
    req: RegistryRequest,
    read?: { cap: number; label: string },
  ): Promise<{ res: Response; bytes?: Uint8Array }> {
    const max = this.#options.maxAttempts ?? 5;
    const budget = this.#limit("retryBudgetMs");
    const replayable = !(req.body instanceof ReadableStream);
    let waitedMs = 0;
    let authRetried = false;
    /** Wait before the next attempt if the budget allows; false when it does not. */
    const pause = async (ms: number): Promise<boolean> => {
      if (waitedMs + ms > budget) return false;
      waitedMs += ms;
      await sleep(ms);
      return true;
    };
    for (let attempt = 1;; attempt++) {
      let failure: unknown;
      let reading = false; // the failure happened while reading the body
      let sent: { res: Response; url: URL } | undefined;
      try {
        sent = await this.#send(req);
      } catch (e) {
        if (e instanceof RegistryError && !(e instanceof RegistryTimeoutError)) throw e;
        failure = e;
      }
      if (sent) {
        const { res, url } = sent;
        if (res.status === 401 && url.origin !== this.#origin) {
          // a redirect target or an upload location elsewhere: never send it our credentials
          await res.body?.cancel().catch(() => {});
          throw new AuthError(
            `${req.what}: ${url.host} (not the registry ${this.registry}) asks for ` +
              `authentication; credentials for ${this.registry} are not sent to another host`,
            401,
          );
        }
        if (res.status === 401 && !authRetried && replayable) {
          const challenge = parseChallenge(res.headers.get("www-authenticate") ?? "");
          await res.body?.cancel().catch(() => {});
          if (!challenge) {
            throw new AuthError(
              `${req.what}: ${this.registry} refused access (401 without a challenge)`,
              401,
            );
          }
          await this.#authenticate(challenge, req);
          authRetried = true;
          attempt--;
          continue;
        }
        if (RETRY_STATUS.has(res.status) && replayable && attempt < max) {
          const asked = retryAfterMs(res.headers.get("retry-after"));
          if (asked !== undefined && waitedMs + asked > budget) {
            await res.body?.cancel().catch(() => {});
            throw new RegistryError(
              `${req.what}: ${url.host} asked to retry after ${Math.ceil(asked / 1000)} s ` +
                `(answered ${res.status}; ocipkg waits at most ${secs(budget)} in all)`,
              res.status,
            );
          }
          const wait = asked ?? this.#backoff(attempt);
          if (waitedMs + wait <= budget) {
            this.#log(`retry ${req.method} ${req.url}: ${res.status}, waiting ${wait} ms`);
            this.#options.onRetry?.({
              what: req.what,
              attempt,
              waitMs: wait,
              reason: `${res.status}${asked !== undefined ? " with Retry-After" : ""}`,
            });
            await res.body?.cancel().catch(() => {});
            await pause(wait);
            continue;
          }
        }
        const ok = req.ok ? req.ok.includes(res.status) : res.status >= 200 && res.status < 300;
        if (!ok) throw await this.errorFrom(res, req, url);
        if (!read) return { res };
        try {
          return { res, bytes: await readCapped(res, read.cap, read.label) };
        } catch (e) {
          if (e instanceof RegistryError && !(e instanceof RegistryTimeoutError)) throw e;
          failure = e; // the body broke off or stalled: retry like a connection error
          reading = true;
        }
      }
      const backoff = this.#backoff(attempt);
      if (
        replayable && attempt < max && !isPermanent(failure) && waitedMs + backoff <= budget
      ) {
        // said before the wait: a registry that is down is not a silent pause
        this.#log(`retry ${req.method} ${req.url}: ${causeChain(failure)}`);
        this.#options.onRetry?.({
          what: req.what,
          attempt,
          waitMs: backoff,
          reason: printable(reading ? causeChain(failure) : connectionMessage(failure)),
        });
        await pause(backoff);
        continue;
      }
      if (failure instanceof RegistryTimeoutError) throw failure;
      throw new RegistryError(
        reading
          ? `${req.what}: the answer from ${this.registry} broke off: ${causeChain(failure)}`
          : `${req.what}: cannot reach ${this.registry}: ${connectionMessage(failure)}`,
        0,
        undefined,
        { cause: failure },
      );
    }
  }

  #backoff(attempt: number): number {
    const base = (this.#options.backoffMs ?? 200) * 2 ** (attempt - 1);
    return Math.round(Math.min(base, 10_000) * (0.5 + Math.random()));
  }

  /**
   * Refuse URLs ocipkg must never fetch: other schemes than http(s),
   * embedded credentials, and plain http for an https registry.
   */
  #checkUrl(url: URL, what: string, how: string): void {
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
    if (this.#https && url.protocol === "http:") {
      throw new RegistryError(
        `${what}: ${how} plain http (${url.host}) from the https registry ${this.registry}; refused`,
        0,
      );
    }
  }

  /** One request with manual redirects (credentials only for the registry's origin). */
  async #send(req: RegistryRequest): Promise<{ res: Response; url: URL }> {
    let url = new URL(req.url, this.baseUrl);
    if (url.origin !== this.#origin) {
      this.#checkUrl(url, req.what, `${this.registry} gave`);
    }
    let method = req.method;
    let body = req.body;
    const size = body instanceof Uint8Array ? body.byteLength : req.bodySize ?? 0;
    const minRate = this.#limit("minBytesPerSecond");
    const sendMs = (size / minRate) * 1000;
    const totalMs = this.#limit("totalTimeoutMs") + sendMs;
    const deadline = req.stream ? undefined : performance.now() + totalMs;
    const seen = new Set<string>();
    for (let hop = 0; hop < 6; hop++) {
      seen.add(url.href);
      const headers = new Headers(req.headers);
      headers.set("accept-encoding", "identity");
      headers.set("user-agent", "ocipkg-deno/0.1");
      const authz = this.#auth.get(req.scope ?? "") ?? this.#auth.get("");
      // credentials only ever go to the registry's own origin
      if (authz && url.origin === this.#origin) headers.set("authorization", authz);
      this.#log(`${method} ${url.href}`);
      const init: RequestInit & { client?: Deno.HttpClient; duplex?: string } = {
        method,
        headers,
        body: body as BodyInit | undefined,
        redirect: "manual",
      };
      if (body instanceof ReadableStream) init.duplex = "half";
      if (this.#http) init.client = this.#http;
      const host = url.origin === this.#origin ? this.registry : url.host;
      const res = await timedFetch(url, init, {
        what: req.what,
        host: host === this.registry ? host : `${host} (reached from ${this.registry})`,
        headersMs: this.#limit("connectTimeoutMs") +
          (body instanceof ReadableStream ? this.#limit("totalTimeoutMs") + sendMs : sendMs),
        deadline,
        totalMs,
        idleMs: this.#limit("idleTimeoutMs"),
        minRate: req.stream ? minRate : undefined,
        graceMs: this.#limit("totalTimeoutMs"),
        detail: `(${method} ${url.pathname})`,
      });
      this.#log(`← ${res.status}`);
      const location = res.headers.get("location");
      if ([301, 302, 303, 307, 308].includes(res.status) && location) {
        await res.body?.cancel().catch(() => {});
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          throw new RegistryError(`${req.what}: ${host} redirected to an invalid URL`, res.status);
        }
        this.#checkUrl(next, req.what, `${host} redirected to`);
        if (seen.has(next.href)) {
          throw new RegistryError(
            `${req.what}: redirect loop at ${next.host} (reached from ${this.registry})`,
            res.status,
          );
        }
        url = next;
        if (res.status === 303) {
          method = "GET";
          body = undefined;
        }
        continue;
      }
      return { res, url };
    }
    throw new RegistryError(`${req.what}: too many redirects from ${this.registry}`, 0);
  }

  async #authenticate(challenge: Challenge, req: RegistryRequest): Promise<void> {
    const cred = await this.#cred();
    if (challenge.scheme === "basic") {
      if (!cred?.username) {
        throw new AuthError(
          `${req.what}: ${this.registry} requires authentication; run 'ocipkg login ${this.registry}'`,
          401,
        );
      }
      if (this.#basic && this.#auth.has("")) {
        throw new AuthError(
          `${req.what}: ${this.registry} refused the credentials for user '${cred.username}'` +
            credentialAdvice(cred, this.registry),
          401,
        );
      }
      this.#basic = true;
      this.#auth.set("", `Basic ${btoa(`${cred.username}:${cred.password ?? ""}`)}`);
      return;
    }
    if (challenge.scheme !== "bearer" || !challenge.params.realm) {
      throw new AuthError(
        `${req.what}: ${this.registry} asks for unsupported auth '${
          printable(challenge.scheme.slice(0, 40))
        }'`,
        401,
      );
    }
    const scopes = new Set<string>();
    for (const s of (req.scope ?? "").split(" ")) if (s) scopes.add(s);
    if (challenge.params.scope) {
      for (const s of challenge.params.scope.split(" ")) {
        scopes.add(s);
      }
    }
    const token = await this.#fetchToken(challenge.params, [...scopes], cred, req.what);
    this.#auth.set(req.scope ?? "", `Bearer ${token}`);
  }

  /**
   * Get a bearer token from the realm the registry's own challenge named.
   * The realm must be http(s) (https for an https registry) without embedded
   * credentials; its redirects are not followed.
   */
  async #fetchToken(
    params: Record<string, string>,
    scopes: string[],
    cred: Credential | undefined,
    what: string,
  ): Promise<string> {
    let realm: URL;
    try {
      realm = new URL(params.realm!);
    } catch {
      throw new AuthError(`${what}: ${this.registry} named an invalid token realm`, 401);
    }
    try {
      this.#checkUrl(realm, what, `${this.registry} named a token realm at`);
    } catch (e) {
      throw new AuthError((e as Error).message, 401);
    }
    let res: Response;
    const init: RequestInit & { client?: Deno.HttpClient } = { redirect: "manual" };
    if (this.#http) init.client = this.#http;
    const totalMs = this.#limit("totalTimeoutMs");
    const limits: FetchLimits = {
      what,
      host: `token service ${realm.host}`,
      headersMs: this.#limit("connectTimeoutMs"),
      deadline: performance.now() + totalMs,
      totalMs,
      idleMs: this.#limit("idleTimeoutMs"),
      minRate: undefined,
      graceMs: 0,
      detail: `(named by ${this.registry})`,
    };
    try {
      if (cred?.identityToken) {
        const form = new URLSearchParams({
          grant_type: "refresh_token",
          refresh_token: cred.identityToken,
          client_id: "ocipkg",
        });
        if (params.service) form.set("service", params.service);
        if (scopes.length) form.set("scope", scopes.join(" "));
        res = await timedFetch(realm, { ...init, method: "POST", body: form }, limits);
      } else {
        const url = new URL(realm);
        if (params.service) url.searchParams.set("service", params.service);
        for (const s of scopes) url.searchParams.append("scope", s);
        const headers = new Headers();
        // Basic credentials go to the realm the registry's challenge named, never elsewhere
        if (cred?.username) {
          headers.set("authorization", `Basic ${btoa(`${cred.username}:${cred.password ?? ""}`)}`);
        }
        res = await timedFetch(url, { ...init, headers }, limits);
      }
    } catch (e) {
      if (e instanceof RegistryTimeoutError) throw new AuthError(e.message, 0);
      throw new AuthError(
        `${what}: cannot reach token service ${realm.host}: ${connectionMessage(e)}`,
        0,
      );
    }
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel().catch(() => {});
      throw new AuthError(
        `${what}: token service ${realm.host} answered a redirect (${res.status}); not followed`,
        res.status,
      );
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel().catch(() => {});
      throw new AuthError(
        cred
          ? `${what}: ${this.registry} refused the credentials${
            cred.username ? ` for user '${cred.username}'` : ""
          }${credentialAdvice(cred, this.registry)}`
          : `${what}: ${this.registry} requires authentication; run 'ocipkg login ${this.registry}'`,
        res.status,
      );
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw new AuthError(
        `${what}: token service ${realm.host} answered ${res.status}`,
        res.status,
      );
    }
    let body: Uint8Array;
    try {
      body = await readCapped(res, MAX_BODY, `${what}: token from ${realm.host}`);
    } catch (e) {
      throw new AuthError(e instanceof Error ? e.message : String(e), res.status);
    }
    let token: unknown;
    try {
      const v = JSON.parse(new TextDecoder().decode(body));
      token = v.token ?? v.access_token;
    } catch { /* below */ }
    if (typeof token !== "string" || !token) {
      throw new AuthError(`${what}: token service ${realm.host} answered no token`, res.status);
    }
    // a token is sent back as a header: visible ASCII only, bounded (never shown)
    if (token.length > MAX_TOKEN || !/^[\x21-\x7e]+$/.test(token)) {
      throw new AuthError(
        `${what}: token service ${realm.host} answered an invalid token ` +
          `(${token.length > MAX_TOKEN ? "too long" : "not printable ASCII"})`,
        res.status,
      );
    }
    return token;
  }

  /**
   * Build the error for an unexpected response (reads a capped body).
   *
   * @param res the response
   * @param req the request
   * @param url the URL that answered (default: the request's), to name its host
   * @returns a {@link RegistryError} naming the object, host, method, path, status and code
   */
  async errorFrom(res: Response, req: RegistryRequest, url?: URL): Promise<RegistryError> {
    let code: string | undefined;
    let message = "";
    try {
      const body = await readCapped(res, MAX_ERROR_BODY, "error body");
      const v = JSON.parse(new TextDecoder().decode(body));
      const c = v?.errors?.[0]?.code;
      const m = v?.errors?.[0]?.message;
      if (typeof c === "string") code = printable(c.slice(0, 64));
      if (typeof m === "string") message = m;
    } catch { /* not a spec error document, too long, or broken off */ }
    await res.body?.cancel().catch(() => {});
    const at = url ?? new URL(req.url, this.baseUrl);
    const path = at.pathname;
    const host = at.origin === this.#origin
      ? this.registry
      : `${at.host} (reached from ${this.registry})`;
    let detail = code ? `${code}${message ? `: ${message}` : ""}` : res.statusText || "";
    if (detail.length > 300) detail = `${detail.slice(0, 300)}…`;
    detail = printable(detail.replace(/\s*\n\s*/g, " "));
    if (res.status === 400 && !code && this.baseUrl.startsWith("http:")) {
      detail += " (if it speaks TLS, do not use plain http)";
    }
    const text = `${req.what}: ${host} answered ${res.status}${
      detail ? ` ${detail}` : ""
    } (${req.method} ${path})`;
    if (res.status === 401 || res.status === 403) {
      const cred = this.#options.credential !== undefined
        ? this.#options.credential ?? undefined
        : await this.#credential?.catch(() => undefined);
      return new AuthError(
        res.status === 401 ? `${text}${credentialAdvice(cred ?? undefined, this.registry)}` : text,
        res.status,
        code,
      );
    }
    return new RegistryError(text, res.status, code);
  }
}

function causeChain(e: unknown): string {
  const parts: string[] = [];
  for (let c: unknown = e; c instanceof Error && parts.length < 5; c = c.cause) {
    parts.push(oneLine(c));
  }
  return parts.join(": ") || oneLine(e);
}

/** Failures a retry cannot mend: TLS trust and unknown hosts. */
function isPermanent(e: unknown): boolean {
  if (e instanceof RegistryTimeoutError) return e.kind === "rate";
  return /certificate|UnknownIssuer|handshake|tls|dns error|failed to lookup|Name or service not known/i
    .test(causeChain(e));
}

function connectionMessage(e: unknown): string {
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

/** What to do about refused credentials, naming where they came from. */
function credentialAdvice(cred: Credential | undefined, registry: string): string {
  if (!cred || (!cred.username && !cred.identityToken)) {
    return `; no credentials for ${registry} were found: run 'ocipkg login ${registry}'`;
  }
  if (!cred.source) return " (credentials given by the caller)";
  return `; they came from ${cred.source}: log in again with 'ocipkg login ${registry}' ` +
    `(ocipkg's file is read first) or fix them there`;
}
