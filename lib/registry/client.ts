/**
 * HTTP for the distribution API: schemes, authentication (anonymous, Basic,
 * Bearer tokens per scope with re-challenge, identity tokens), manual
 * redirects that never carry `Authorization` to another origin, and bounded
 * retries with exponential backoff + jitter honouring `Retry-After`.
 *
 * @module
 */
import { oneLine } from "../errors.ts";
import { type Credential, findCredential } from "./credentials.ts";
import { AuthError, RegistryError } from "./errors.ts";

/** Cap on bodies read whole: manifests, tokens, error documents (4 MiB). */
export const MAX_BODY = 4 * 1024 * 1024;

/** Options of {@link RegistryClient}. */
export interface ClientOptions {
  /** Use http instead of https (default: true for localhost/127.0.0.1/[::1] without `caFile`). */
  plainHttp?: boolean;
  /** PEM file of a private CA to trust. */
  caFile?: string;
  /** Credentials; default: looked up in auth files for the registry. */
  credential?: Credential | null;
  /** Attempts per request for retryable failures (default 5). */
  maxAttempts?: number;
  /** First backoff delay in ms (default 200); doubles each attempt, with jitter. */
  backoffMs?: number;
  /** Debug log (never receives secrets). */
  debug?: (line: string) => void;
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
  /** Token scope, e.g. `repository:org/x:pull`. */
  scope?: string;
  /** Names the object in errors, e.g. `image 'host/x:1'`. */
  what: string;
  /** Statuses that are not errors (default: 2xx). */
  ok?: number[];
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
 * import { parseChallenge } from "./client.ts";
 * const c = parseChallenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"');
 * console.assert(c?.params.realm === "https://auth.example/token");
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

/**
 * Read at most `cap` bytes of a response body.
 *
 * @param res the response
 * @param cap byte cap
 * @param what names the body in errors
 * @returns the bytes
 * @throws {RegistryError} when longer than the cap
 */
export async function readCapped(res: Response, cap: number, what: string): Promise<Uint8Array> {
  const declared = Number(res.headers.get("content-length") ?? "NaN");
  if (declared > cap) {
    await res.body?.cancel();
    throw new RegistryError(`${what} is ${declared} bytes, over the ${cap}-byte cap`, res.status);
  }
  const parts: Uint8Array[] = [];
  let n = 0;
  if (res.body) {
    for await (const c of res.body) {
      n += c.byteLength;
      if (n > cap) {
        throw new RegistryError(`${what} is larger than the ${cap}-byte cap`, res.status);
      }
      parts.push(c);
    }
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/**
 * A client for one registry host.
 *
 * @example
 * ```ts
 * import { RegistryClient } from "./client.ts";
 * const c = new RegistryClient("localhost:5000", { credential: null });
 * console.assert(c.baseUrl === "http://localhost:5000");
 * ```
 */
export class RegistryClient {
  /** `host[:port]`. */
  readonly registry: string;
  /** `http(s)://host[:port]`. */
  readonly baseUrl: string;
  #options: ClientOptions;
  #credential: Promise<Credential | undefined> | undefined;
  #auth = new Map<string, string>(); // scope → Authorization value
  #basic = false;
  #http: Deno.HttpClient | undefined;

  /**
   * Create a RegistryClient.
   * @param registry `host[:port]`
   * @param options scheme, CA, credentials, retries, debug
   */
  constructor(registry: string, options: ClientOptions = {}) {
    this.registry = registry;
    const host = registry.replace(/:\d+$/, "");
    const loopback = host === "localhost" || host.startsWith("localhost") || host === "127.0.0.1" ||
      host === "[::1]";
    // loopback hosts default to http, unless a CA file says the registry speaks TLS
    const plain = options.plainHttp ?? (loopback && !options.caFile);
    this.baseUrl = `${plain ? "http" : "https"}://${registry}`;
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
    this.#options.debug?.(line);
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
   * Send a request with auth, redirects and retries; returns the response
   * when its status is in `req.ok` (default 2xx), else throws a
   * {@link RegistryError} naming `req.what` and the host.
   *
   * @param req the request
   * @returns the response (body unread)
   */
  async request(req: RegistryRequest): Promise<Response> {
    const max = this.#options.maxAttempts ?? 5;
    const replayable = !(req.body instanceof ReadableStream);
    let authRetried = false;
    for (let attempt = 1;; attempt++) {
      let res: Response;
      try {
        res = await this.#send(req);
      } catch (e) {
        if (e instanceof RegistryError) throw e;
        if (replayable && attempt < max && !isPermanent(e)) {
          this.#log(`retry ${req.method} ${req.url}: ${causeChain(e)}`);
          await sleep(this.#backoff(attempt));
          continue;
        }
        throw new RegistryError(
          `${req.what}: cannot reach ${this.registry}: ${connectionMessage(e)}`,
          0,
          undefined,
          { cause: e },
        );
      }
      if (res.status === 401 && !authRetried && replayable) {
        const challenge = parseChallenge(res.headers.get("www-authenticate") ?? "");
        await res.body?.cancel();
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
        const wait = retryAfterMs(res.headers.get("retry-after")) ?? this.#backoff(attempt);
        this.#log(`retry ${req.method} ${req.url}: ${res.status}, waiting ${wait} ms`);
        await res.body?.cancel();
        await sleep(Math.min(wait, 60_000));
        continue;
      }
      const ok = req.ok ? req.ok.includes(res.status) : res.status >= 200 && res.status < 300;
      if (ok) return res;
      throw await this.errorFrom(res, req);
    }
  }

  #backoff(attempt: number): number {
    const base = (this.#options.backoffMs ?? 200) * 2 ** (attempt - 1);
    return Math.min(base, 10_000) * (0.5 + Math.random());
  }

  async #send(req: RegistryRequest): Promise<Response> {
    let url = new URL(req.url, this.baseUrl);
    const origin = new URL(this.baseUrl).origin;
    let method = req.method;
    let body = req.body;
    for (let hop = 0; hop < 6; hop++) {
      const headers = new Headers(req.headers);
      headers.set("accept-encoding", "identity");
      headers.set("user-agent", "ocipkg-deno/0.1");
      const authz = this.#auth.get(req.scope ?? "") ?? this.#auth.get("");
      // credentials only ever go to the registry's own origin
      if (authz && url.origin === origin) headers.set("authorization", authz);
      this.#log(`${method} ${url.href}`);
      const init: RequestInit & { client?: Deno.HttpClient; duplex?: string } = {
        method,
        headers,
        body: body as BodyInit | undefined,
        redirect: "manual",
      };
      if (body instanceof ReadableStream) init.duplex = "half";
      if (this.#http) init.client = this.#http;
      const res = await fetch(url, init);
      this.#log(`← ${res.status}`);
      const location = res.headers.get("location");
      if ([301, 302, 303, 307, 308].includes(res.status) && location) {
        await res.body?.cancel();
        url = new URL(location, url);
        if (res.status === 303) {
          method = "GET";
          body = undefined;
        }
        continue;
      }
      return res;
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
          `${req.what}: ${this.registry} refused the credentials for user '${cred.username}'`,
          401,
        );
      }
      this.#basic = true;
      this.#auth.set("", `Basic ${btoa(`${cred.username}:${cred.password ?? ""}`)}`);
      return;
    }
    if (challenge.scheme !== "bearer" || !challenge.params.realm) {
      throw new AuthError(
        `${req.what}: ${this.registry} asks for unsupported auth '${challenge.scheme}'`,
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
    let res: Response;
    const init: RequestInit & { client?: Deno.HttpClient } = { redirect: "error" };
    if (this.#http) init.client = this.#http;
    try {
      if (cred?.identityToken) {
        const form = new URLSearchParams({
          grant_type: "refresh_token",
          refresh_token: cred.identityToken,
          client_id: "ocipkg",
        });
        if (params.service) form.set("service", params.service);
        if (scopes.length) form.set("scope", scopes.join(" "));
        res = await fetch(realm, { ...init, method: "POST", body: form });
      } else {
        const url = new URL(realm);
        if (params.service) url.searchParams.set("service", params.service);
        for (const s of scopes) url.searchParams.append("scope", s);
        const headers = new Headers();
        // Basic credentials go to the realm the registry's challenge named, never elsewhere
        if (cred?.username) {
          headers.set("authorization", `Basic ${btoa(`${cred.username}:${cred.password ?? ""}`)}`);
        }
        res = await fetch(url, { ...init, headers });
      }
    } catch (e) {
      throw new AuthError(
        `${what}: cannot reach token service ${realm.host}: ${connectionMessage(e)}`,
        0,
      );
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw new AuthError(
        cred
          ? `${what}: ${this.registry} refused the credentials${
            cred.username ? ` for user '${cred.username}'` : ""
          }`
          : `${what}: ${this.registry} requires authentication; run 'ocipkg login ${this.registry}'`,
        res.status,
      );
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new AuthError(
        `${what}: token service ${realm.host} answered ${res.status}`,
        res.status,
      );
    }
    const body = await readCapped(res, MAX_BODY, `token from ${realm.host}`);
    let token: unknown;
    try {
      const v = JSON.parse(new TextDecoder().decode(body));
      token = v.token ?? v.access_token;
    } catch { /* below */ }
    if (typeof token !== "string" || !token) {
      throw new AuthError(`${what}: token service ${realm.host} answered no token`, res.status);
    }
    return token;
  }

  /**
   * Build the error for an unexpected response (reads a capped body).
   *
   * @param res the response
   * @param req the request
   * @returns a {@link RegistryError} naming the object, host, method, path, status and code
   */
  async errorFrom(res: Response, req: RegistryRequest): Promise<RegistryError> {
    let code: string | undefined;
    let message = "";
    try {
      const body = await readCapped(res, 64 * 1024, "error body");
      const v = JSON.parse(new TextDecoder().decode(body));
      code = v?.errors?.[0]?.code;
      message = v?.errors?.[0]?.message ?? "";
    } catch { /* not a spec error document */ }
    const path = new URL(req.url, this.baseUrl).pathname;
    let detail = code ? `${code}${message ? `: ${message}` : ""}` : res.statusText || "";
    if (res.status === 400 && !code && this.baseUrl.startsWith("http:")) {
      detail += " (if it speaks TLS, pass --ca-file and no --plain-http)";
    }
    const text = `${req.what}: ${this.registry} answered ${res.status}${
      detail ? ` ${detail}` : ""
    } (${req.method} ${path})`;
    if (res.status === 401 || res.status === 403) {
      return new AuthError(
        res.status === 401 ? `${text}; check 'ocipkg login ${this.registry}'` : text,
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
    return `TLS certificate not trusted (use --ca-file): ${m}`;
  }
  return m;
}
