/**
 * The client of the distribution API for one registry host: it composes the
 * HTTP beneath it (`http.ts`: timeouts, capped reads, URLs refused),
 * authentication (`auth.ts`: challenges, Basic, bearer tokens, credentials
 * for the registry's origin only) and retries (`retry.ts`: backoff with
 * jitter, `Retry-After`, a budget of waiting), follows redirects by hand,
 * and turns unexpected answers into errors naming the host.
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
 *   reads, a low-speed limit over a sliding window, and a total timeout (blob
 *   downloads: a minimum average rate instead), see {@link DEFAULT_TIMEOUTS};
 *   the time spent waiting between retries of one request is capped too, and
 *   its attempts share one deadline, 1.5 × the connect timeout (see
 *   `retry.ts`): a registry that never answers fails after two attempts.
 *   A connection refused by a loopback registry is not retried: nothing
 *   listens on that port of this machine, and waiting will not start it
 *   (the error asks "is a registry running on 127.0.0.1:5000?").
 *
 * @module
 */
import { OcipkgError, oneLine } from "../../util/errors.ts";
import { readSmallFileSync } from "../../util/files.ts";
import { canonicalHost, isLoopbackHost } from "../../oci/reference.ts";
import { printable } from "../../util/text.ts";
import type { Credential } from "./credentials.ts";
import { AuthError, RegistryError } from "./errors.ts";
import { firstError } from "./error_codes.ts";
import { Authenticator } from "./auth.ts";
import { Http1Pool, http1Usable } from "./http1.ts";
import {
  causeChain,
  checkUrl,
  connectionMessage,
  type DownloadStalls,
  MAX_ERROR_BODY,
  readCapped,
  RegistryTimeoutError,
  type RetryLimits,
  secs,
  timedFetch,
  timeoutOf,
} from "./http.ts";
import {
  backoffMs,
  isPermanent,
  retryableStatus,
  retryAfterMs,
  RetryBudget,
  RetryDeadline,
  type RetryInfo,
} from "./retry.ts";
import { configFile, type RegistrySettings, registrySettings } from "../config.ts";
import {
  chooseScheme,
  explainConnection,
  type OptionNames,
  type SchemeChoice,
  speaksOther,
} from "./scheme.ts";
import type { DEFAULT_TIMEOUTS } from "../defaults.ts";

/** Largest CA file read (1 MiB; a system CA bundle is about 200 KiB). */
export const MAX_CA_FILE = 1024 * 1024;

/**
 * Longest a cleanup request (see {@link RegistryRequest.cleanup}) waits for
 * its answer (or less: `connectTimeoutMs`): what was stopped is not held up
 * by a registry slow to answer it.
 */
const CLEANUP_ANSWER_MS = 5_000;

/** Options of {@link RegistryClient}. */
export interface ClientOptions {
  /**
   * Use http instead of https. Default: the config file's `registries` entry
   * for the registry, else true for a loopback host given no `caFile`.
   */
  plainHttp?: boolean;
  /**
   * PEM file of a private CA (or a self-signed certificate) to trust.
   * Default: the config file's `registries` entry for the registry.
   */
  caFile?: string;
  /**
   * The config file whose `registries` entry for the registry applies (see
   * `config.ts`); default `$OCIPKG_CONFIG`, else `~/.ocipkg/config.json`;
   * `false` for none. Options given here win over the entry.
   */
  config?: string | false;
  /** How messages name `plainHttp` and `caFile` (the CLI passes its flags). */
  optionNames?: OptionNames;
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
  /**
   * Low-speed limit in bytes/s (default 1024): a response body that delivers
   * less than this on average over any `speedTimeMs` fails, not retried.
   */
  speedLimit?: number;
  /** The window of the low-speed limit, in ms (default 30 000). */
  speedTimeMs?: number;
  /** Most time in ms one request spends waiting between retries (default 60 000). */
  retryBudgetMs?: number;
  /** Debug log (never receives secrets). */
  debug?: (line: string) => void;
  /** Told before each wait for a retry (what failed, and how long ocipkg waits). */
  onRetry?: (retry: RetryInfo) => void;
  /**
   * Stops every request of the client when it aborts: those in flight fail
   * (their bodies too) with its reason, none starts or is retried after it
   * (see {@link RegistryClient.abort}).
   */
  signal?: AbortSignal;
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
  /**
   * A large blob's download (`HTTP1_MIN` or more, whole or a range): sent
   * with `http1Fetch` over the client's kept connections (its body read
   * straight into the reader's buffers), unless a proxy is configured or
   * `OCIPKG_HTTP1=0` (see `http1Usable`).
   */
  download?: boolean;
  /** The stalls of the download this request is part of (see {@link DownloadStalls}). */
  stalls?: DownloadStalls;
  /** Stops this request (and its body), which fails with its reason; no retry follows. */
  signal?: AbortSignal;
  /**
   * Cleanup after a stop (an upload session's `DELETE`): it goes out even
   * when the client's `signal` (the caller's) has aborted — only
   * {@link RegistryClient.abort} stops it — in one attempt, answered within
   * `connectTimeoutMs` but at most 5 s. `signal` is ignored.
   */
  cleanup?: boolean;
}

/**
 * A client for one registry host.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegistryClient } from "@ocipkg/cli/transport";
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
  /** The config file's `registries` entry for the registry, if any (its mirrors, …). */
  readonly settings: RegistrySettings | undefined;
  #scheme: SchemeChoice;
  #origin: string;
  #https: boolean;
  #options: ClientOptions;
  #auth: Authenticator;
  #http: Deno.HttpClient | undefined;
  /** The CA file's certificates, for `http1Fetch`. */
  #caCerts: string[] | undefined;
  /** Connections kept between blob downloads (made at the first). */
  #h1: Http1Pool | undefined;
  /** Whether blob downloads go over `http1Fetch` (asked at the first: see `http1Usable`). */
  #h1Usable: boolean | undefined;
  /** Aborted by {@link abort}. */
  #stop = new AbortController();
  /**
   * Aborts with {@link abort} or the caller's `signal`: every request stops.
   * (`AbortSignal.any`, not a listener on the caller's signal: a listener
   * would keep every client made with one signal for as long as it lives.)
   */
  #signal: AbortSignal;

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
    const file = options.config === false ? undefined : options.config ?? configFile();
    this.settings = file === undefined ? undefined : registrySettings(registry, file);
    const scheme = chooseScheme(registry, options, this.settings, file ?? configFile());
    this.#scheme = scheme;
    this.baseUrl = `${scheme.https ? "https" : "http"}://${registry}`;
    this.#https = scheme.https;
    let origin: string;
    try {
      origin = new URL(this.baseUrl).origin;
    } catch {
      throw new RegistryError(`invalid registry '${printable(registry)}': use host[:port]`, 0);
    }
    this.#origin = origin;
    this.#options = options;
    this.#signal = options.signal
      ? AbortSignal.any([options.signal, this.#stop.signal])
      : this.#stop.signal;
    if (scheme.caFile) {
      const from = scheme.caFrom === "config"
        ? `"caFile" of the ${scheme.settings!.source}`
        : scheme.names.caFile;
      const what = `CA file '${scheme.caFile}' (${from})`;
      let pem: string;
      try {
        // a fifo, a device or a directory is refused unread; a CA bundle is well under the cap
        const read = readSmallFileSync(scheme.caFile, what, MAX_CA_FILE);
        if (read === undefined) throw new Deno.errors.NotFound("no such file");
        pem = new TextDecoder().decode(read.bytes);
      } catch (e) {
        throw new RegistryError(
          e instanceof OcipkgError ? e.message : `${what} is not readable: ${oneLine(e)}`,
          0,
        );
      }
      if (!/-----BEGIN CERTIFICATE-----/.test(pem)) {
        throw new RegistryError(
          `${what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
          0,
        );
      }
      this.#http = Deno.createHttpClient({ caCerts: [pem] });
      this.#caCerts = [pem];
    }
    this.#auth = new Authenticator({
      registry,
      origin,
      https: this.#https,
      http: this.#http,
      credential: options.credential,
      timeouts: options,
    });
  }

  #log(line: string): void {
    this.#options.debug?.(printable(line));
  }

  #limit(k: keyof typeof DEFAULT_TIMEOUTS): number {
    return timeoutOf(this.#options, k);
  }

  /** Release the HTTP client. */
  close(): void {
    this.#http?.close();
    this.#h1?.close();
  }

  /**
   * Stop every request of this client, now and later: those in flight fail
   * (their bodies too) with `reason`, and none starts or is retried after
   * this. What a target that gives up (`RegistryTarget.abort`) calls.
   *
   * @param reason what the requests fail with (default: a {@link RegistryError} saying they were stopped)
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { RegistryClient } from "@ocipkg/cli/transport";
   * // a stand-in for a registry that answers only once the client has gone
   * const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
   * const server = Deno.serve(listen, (req) =>
   *   new Promise<Response>((answer) =>
   *     req.signal.addEventListener("abort", () => answer(new Response(null)))
   *   ));
   * const client = new RegistryClient(`127.0.0.1:${server.addr.port}`, { credential: null });
   * const asking = client.request({ method: "GET", url: "/v2/", what: "registry" });
   * setTimeout(() => client.abort(new Error("no longer wanted")), 50);
   * await assert.rejects(asking, /no longer wanted/);
   * await assert.rejects(client.request({ method: "GET", url: "/v2/", what: "x" }), /no longer wanted/);
   * client.close();
   * await server.shutdown();
   * ```
   */
  abort(reason?: unknown): void {
    this.#stop.abort(
      reason ?? new RegistryError(`requests to ${this.registry} were stopped`, 0),
    );
  }

  /** Aborts when {@link abort} (or the caller's `signal`) stops this client's requests. */
  get signal(): AbortSignal {
    return this.#signal;
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
   * import { RegistryClient } from "@ocipkg/cli/transport";
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
    const max = req.cleanup ? 1 : this.#options.maxAttempts ?? 5;
    const budget = new RetryBudget(this.#limit("retryBudgetMs"));
    // the attempts share one deadline, counted again after each answer (see retry.ts)
    const deadline = new RetryDeadline(this.#limit("connectTimeoutMs"), this.#sendMs(req));
    const replayable = !(req.body instanceof ReadableStream);
    // the client's stop, and this request's own; a cleanup's, abort() alone
    const stop = req.cleanup
      ? this.#stop.signal
      : req.signal
      ? AbortSignal.any([this.#signal, req.signal])
      : this.#signal;
    let authRetried = false;
    let afterFailure = false; // the attempt before failed without an answer
    for (let attempt = 1;; attempt++) {
      let failure: unknown;
      let reading = false; // the failure happened while reading the body
      let sent: { res: Response; url: URL } | undefined;
      const retry: RetryLimits | undefined = afterFailure
        ? { attempt, end: deadline.end, deadlineMs: deadline.spanMs }
        : undefined;
      stop.throwIfAborted();
      try {
        sent = await this.#send(req, retry, stop);
      } catch (e) {
        if (stop.aborted) throw stop.reason;
        if (e instanceof RegistryError && !(e instanceof RegistryTimeoutError)) throw e;
        failure = e;
      }
      if (sent) {
        const { res, url } = sent;
        // a 401 from elsewhere is an error; the registry's own is answered once
        if (
          res.status === 401 &&
          await this.#auth.challenged(res, url, req, !authRetried && replayable, stop)
        ) {
          authRetried = true;
          attempt--;
          afterFailure = false;
          deadline.restart();
          continue;
        }
        if (retryableStatus(res.status) && replayable && attempt < max) {
          const asked = retryAfterMs(res.headers.get("retry-after"));
          if (asked !== undefined && !budget.allows(asked)) {
            await res.body?.cancel().catch(() => {});
            throw new RegistryError(
              `${req.what}: ${url.host} asked to retry after ${Math.ceil(asked / 1000)} s ` +
                `(answered ${res.status}; ocipkg waits at most ${secs(budget.budgetMs)} in all)`,
              res.status,
            );
          }
          const wait = asked ?? this.#backoff(attempt);
          if (budget.allows(wait)) {
            this.#log(`retry ${req.method} ${req.url}: ${res.status}, waiting ${wait} ms`);
            this.#options.onRetry?.({
              what: req.what,
              attempt,
              waitMs: wait,
              reason: `${res.status}${asked !== undefined ? " with Retry-After" : ""}`,
            });
            await res.body?.cancel().catch(() => {});
            await budget.pause(wait, stop);
            afterFailure = false; // an answer: the registry is alive
            deadline.restart();
            continue;
          }
        }
        const ok = req.ok ? req.ok.includes(res.status) : res.status >= 200 && res.status < 300;
        if (!ok) throw await this.errorFrom(res, req, url);
        if (!read) return { res };
        try {
          return { res, bytes: await readCapped(res, read.cap, read.label) };
        } catch (e) {
          if (stop.aborted) throw stop.reason;
          if (e instanceof RegistryError && !(e instanceof RegistryTimeoutError)) throw e;
          failure = e; // the body broke off or stalled: retry like a connection error
          reading = true;
        }
      }
      const backoff = this.#backoff(attempt);
      // nothing listens on this machine's port: waiting will not start a registry
      const refusedHere = !reading && isLoopbackHost(this.registry) &&
        connectionMessage(failure) === "connection refused";
      if (
        replayable && attempt < max && !isPermanent(failure) && !refusedHere &&
        budget.allows(backoff) && deadline.allows(backoff)
      ) {
        // said before the wait: a registry that is down is not a silent pause
        this.#log(`retry ${req.method} ${req.url}: ${causeChain(failure)}`);
        this.#options.onRetry?.({
          what: req.what,
          attempt,
          waitMs: backoff,
          reason: printable(reading ? causeChain(failure) : connectionMessage(failure)),
        });
        await budget.pause(backoff, stop);
        afterFailure = true;
        continue;
      }
      if (failure instanceof RegistryTimeoutError) throw failure;
      const explained = reading ? undefined : await explainConnection(failure, this.#scheme);
      throw new RegistryError(
        reading
          ? `${req.what}: the answer from ${this.registry} broke off: ${causeChain(failure)}`
          : `${req.what}: cannot reach ${this.registry}: ${
            explained ?? connectionMessage(failure)
          }${refusedHere ? ` (is a registry running on ${this.registry}?)` : ""}`,
        0,
        undefined,
        { cause: failure },
      );
    }
  }

  #backoff(attempt: number): number {
    return backoffMs(attempt, this.#options.backoffMs ?? 200);
  }

  /** The time to send a request's body at the minimum rate, in ms. */
  #sendMs(req: RegistryRequest): number {
    const size = req.body instanceof Uint8Array ? req.body.byteLength : req.bodySize ?? 0;
    return (size / this.#limit("minBytesPerSecond")) * 1000;
  }

  /** Refuse URLs ocipkg must never fetch (see `checkUrl`). */
  #checkUrl(url: URL, what: string, how: string): void {
    checkUrl(url, what, how, this.registry, this.#https);
  }

  /**
   * One request with manual redirects (credentials only for the registry's
   * origin); `retry`: an attempt after a failure, within the shared deadline.
   */
  async #send(
    req: RegistryRequest,
    retry: RetryLimits | undefined,
    stop: AbortSignal,
  ): Promise<{ res: Response; url: URL }> {
    let url = new URL(req.url, this.baseUrl);
    if (url.origin !== this.#origin) {
      this.#checkUrl(url, req.what, `${this.registry} gave`);
    }
    let method = req.method;
    let body = req.body;
    const minRate = this.#limit("minBytesPerSecond");
    const sendMs = this.#sendMs(req);
    const speed = {
      bytesPerSecond: this.#limit("speedLimit"),
      windowMs: this.#limit("speedTimeMs"),
    };
    // a cleanup is answered soon, or given up
    const connectMs = req.cleanup
      ? Math.min(this.#limit("connectTimeoutMs"), CLEANUP_ANSWER_MS)
      : this.#limit("connectTimeoutMs");
    const totalMs = req.cleanup ? connectMs : this.#limit("totalTimeoutMs") + sendMs;
    const deadline = req.stream ? undefined : performance.now() + totalMs;
    const seen = new Set<string>();
    for (let hop = 0; hop < 6; hop++) {
      seen.add(url.href);
      const headers = new Headers(req.headers);
      headers.set("accept-encoding", "identity");
      headers.set("user-agent", "ocipkg-deno/0.1");
      // credentials only ever go to the registry's own origin
      const authz = this.#auth.header(url, req.scope);
      if (authz) headers.set("authorization", authz);
      this.#log(`${method} ${url.href}`);
      const init: RequestInit & { client?: Deno.HttpClient; duplex?: string } = {
        method,
        headers,
        body: body as BodyInit | undefined,
        redirect: "manual",
      };
      if (body instanceof ReadableStream) init.duplex = "half";
      if (this.#http) init.client = this.#http;
      const http1 =
        req.download && method === "GET" && body === undefined && (this.#h1Usable ??= http1Usable())
          ? { caCerts: this.#caCerts, pool: this.#h1 ??= new Http1Pool() }
          : undefined;
      const host = url.origin === this.#origin ? this.registry : url.host;
      const res = await timedFetch(url, init, {
        what: req.what,
        host: host === this.registry ? host : `${host} (reached from ${this.registry})`,
        headersMs: connectMs +
          (body instanceof ReadableStream ? this.#limit("totalTimeoutMs") + sendMs : sendMs),
        deadline,
        totalMs,
        idleMs: this.#limit("idleTimeoutMs"),
        minRate: req.stream ? minRate : undefined,
        graceMs: this.#limit("totalTimeoutMs"),
        detail: `(${method} ${url.pathname})`,
        speed,
        stalls: req.stalls,
        retry,
        stop,
        http1,
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
    let bodyText = "";
    try {
      const body = await readCapped(res, MAX_ERROR_BODY, "error body");
      bodyText = new TextDecoder().decode(body);
      const first = firstError(JSON.parse(bodyText));
      if (first.code !== undefined) code = printable(first.code.slice(0, 64));
      if (first.message !== undefined) message = first.message;
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
      // Go's https servers answer a plain http request so
      if (/HTTP request to an HTTPS server/i.test(bodyText)) {
        return new RegistryError(`${req.what}: ${speaksOther(this.#scheme)}`, res.status);
      }
      detail += " (if it speaks TLS, do not use plain http)";
    }
    const text = `${req.what}: ${host} answered ${res.status}${
      detail ? ` ${detail}` : ""
    } (${req.method} ${path})`;
    if (res.status === 401 || res.status === 403) {
      return new AuthError(
        res.status === 401 ? `${text}${await this.#auth.advice()}` : text,
        res.status,
        code,
      );
    }
    return new RegistryError(text, res.status, code);
  }
}
