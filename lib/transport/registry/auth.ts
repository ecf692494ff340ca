/**
 * Authentication for the registry client: `WWW-Authenticate` challenges,
 * Basic credentials, bearer tokens per scope from the token realm a
 * challenge names (with identity tokens as refresh tokens), and the
 * same-origin rules for credentials:
 *
 * - Credentials (Basic, identity token, bearer tokens) go only to the
 *   registry's own origin, and to the token realm that a challenge *from the
 *   registry's own origin* named. A 401 from any other origin (a redirect
 *   target, an upload location elsewhere) is an error naming that host; its
 *   challenge is never answered.
 * - A token realm must be http(s) (https for an https registry) without
 *   embedded credentials; its redirects are not followed; a token must be
 *   printable ASCII of at most {@link MAX_TOKEN} bytes.
 *
 * @module
 */
import { printable } from "../../util/text.ts";
import { type Credential, findCredential } from "./credentials.ts";
import { AuthError } from "./errors.ts";
import {
  checkUrl,
  connectionMessage,
  type FetchLimits,
  MAX_BODY,
  readCapped,
  RegistryTimeoutError,
  timedFetch,
  timeoutOf,
  type Timeouts,
} from "./http.ts";

/** Cap on a bearer token's length (64 KiB). */
export const MAX_TOKEN = 64 * 1024;

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
 * import { parseChallenge } from "./auth.ts";
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

/** What an {@link Authenticator} knows of its registry. */
export interface AuthSettings {
  /** `host[:port]`, canonical: what credentials and messages key on. */
  registry: string;
  /** The registry's origin (`http(s)://host[:port]`): the only one credentials go to. */
  origin: string;
  /** The registry speaks https: a token realm must too. */
  https: boolean;
  /** The HTTP client (a private CA), if any. */
  http: Deno.HttpClient | undefined;
  /** Credentials given by the caller (`null`: anonymous); undefined: looked up in auth files. */
  credential: Credential | null | undefined;
  /** The network limits. */
  timeouts: Timeouts;
}

/**
 * The credentials of one registry client and the `Authorization` values it
 * earned: Basic, or a bearer token per scope.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Authenticator } from "./auth.ts";
 * // a stand-in for a registry asking for Basic credentials
 * const challenge = { "www-authenticate": 'Basic realm="registry"' };
 * const res = new Response(null, { status: 401, headers: challenge });
 * const auth = new Authenticator({
 *   registry: "r.example",
 *   origin: "https://r.example",
 *   https: true,
 *   http: undefined,
 *   credential: { username: "me", password: "secret" },
 *   timeouts: {},
 * });
 * const url = new URL("https://r.example/v2/");
 * assert.ok(await auth.challenged(res, url, { what: "registry" }, true)); // answered: send again
 * assert.equal(auth.header(url), `Basic ${btoa("me:secret")}`);
 * assert.equal(auth.header(new URL("https://cdn.example/blob")), undefined); // never elsewhere
 * ```
 */
export class Authenticator {
  #s: AuthSettings;
  #credential: Promise<Credential | undefined> | undefined;
  #auth = new Map<string, string>(); // scope → Authorization value
  #basic = false;

  /**
   * Create an Authenticator.
   * @param settings the registry, its origin, credentials, limits
   */
  constructor(settings: AuthSettings) {
    this.#s = settings;
  }

  #cred(): Promise<Credential | undefined> {
    if (this.#s.credential !== undefined) {
      return Promise.resolve(this.#s.credential ?? undefined);
    }
    return this.#credential ??= findCredential(this.#s.registry);
  }

  /**
   * The `Authorization` value for a request to `url` in `scope`: only ever
   * for the registry's own origin.
   *
   * @param url where the request goes
   * @param scope its token scope
   * @returns the value, or undefined
   */
  header(url: URL, scope?: string): string | undefined {
    const authz = this.#auth.get(scope ?? "") ?? this.#auth.get("");
    // credentials only ever go to the registry's own origin
    return authz && url.origin === this.#s.origin ? authz : undefined;
  }

  /**
   * A 401 answered a request. From another origin than the registry's, it is
   * an error (credentials for the registry are not sent elsewhere). From the
   * registry, when `answer`, its challenge is answered (Basic credentials
   * set, or a bearer token fetched for the request's scope): the request can
   * be sent again.
   *
   * @param res the 401 response (its body is cancelled when handled here)
   * @param url the URL that answered
   * @param req what the request was for, and its token scope
   * @param answer whether to answer a challenge of the registry (once per request)
   * @param stop stops the token request (the request's own stop): it fails with its reason, as given
   * @returns true when the challenge was answered, false when the 401 is left to the caller
   * @throws {AuthError} naming the host that asked, or why the challenge cannot be answered
   */
  async challenged(
    res: Response,
    url: URL,
    req: { what: string; scope?: string },
    answer: boolean,
    stop?: AbortSignal,
  ): Promise<boolean> {
    const registry = this.#s.registry;
    if (url.origin !== this.#s.origin) {
      // a redirect target or an upload location elsewhere: never send it our credentials
      await res.body?.cancel().catch(() => {});
      throw new AuthError(
        `${req.what}: ${url.host} (not the registry ${registry}) asks for ` +
          `authentication; credentials for ${registry} are not sent to another host`,
        401,
      );
    }
    if (!answer) return false;
    const challenge = parseChallenge(res.headers.get("www-authenticate") ?? "");
    await res.body?.cancel().catch(() => {});
    if (!challenge) {
      throw new AuthError(
        `${req.what}: ${registry} refused access (401 without a challenge)`,
        401,
      );
    }
    await this.#authenticate(challenge, req, stop);
    return true;
  }

  /**
   * What to do about credentials a 401 refused, naming where they came from
   * (credentials not looked up yet are not looked up for this).
   *
   * @returns the advice, to append to the error's message
   */
  async advice(): Promise<string> {
    const cred = this.#s.credential !== undefined
      ? this.#s.credential ?? undefined
      : await this.#credential?.catch(() => undefined);
    return credentialAdvice(cred ?? undefined, this.#s.registry);
  }

  async #authenticate(
    challenge: Challenge,
    req: { what: string; scope?: string },
    stop: AbortSignal | undefined,
  ): Promise<void> {
    const cred = await this.#cred();
    if (challenge.scheme === "basic") {
      if (!cred?.username) {
        throw new AuthError(
          `${req.what}: ${this.#s.registry} requires authentication; run 'ocipkg login ${this.#s.registry}'`,
          401,
        );
      }
      if (this.#basic && this.#auth.has("")) {
        throw new AuthError(
          `${req.what}: ${this.#s.registry} refused the credentials for user '${cred.username}'` +
            credentialAdvice(cred, this.#s.registry),
          401,
        );
      }
      this.#basic = true;
      this.#auth.set("", `Basic ${btoa(`${cred.username}:${cred.password ?? ""}`)}`);
      return;
    }
    if (challenge.scheme !== "bearer" || !challenge.params.realm) {
      throw new AuthError(
        `${req.what}: ${this.#s.registry} asks for unsupported auth '${
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
    const token = await this.#fetchToken(challenge.params, [...scopes], cred, req.what, stop);
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
    stop: AbortSignal | undefined,
  ): Promise<string> {
    let realm: URL;
    try {
      realm = new URL(params.realm!);
    } catch {
      throw new AuthError(`${what}: ${this.#s.registry} named an invalid token realm`, 401);
    }
    try {
      checkUrl(
        realm,
        what,
        `${this.#s.registry} named a token realm at`,
        this.#s.registry,
        this.#s.https,
      );
    } catch (e) {
      throw new AuthError((e as Error).message, 401);
    }
    let res: Response;
    const init: RequestInit & { client?: Deno.HttpClient } = { redirect: "manual" };
    if (this.#s.http) init.client = this.#s.http;
    const totalMs = timeoutOf(this.#s.timeouts, "totalTimeoutMs");
    const limits: FetchLimits = {
      what,
      host: `token service ${realm.host}`,
      headersMs: timeoutOf(this.#s.timeouts, "connectTimeoutMs"),
      deadline: performance.now() + totalMs,
      totalMs,
      idleMs: timeoutOf(this.#s.timeouts, "idleTimeoutMs"),
      minRate: undefined,
      graceMs: 0,
      detail: `(named by ${this.#s.registry})`,
      stop,
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
      if (stop?.aborted) throw stop.reason; // given up: the reason as it was given
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
          ? `${what}: ${this.#s.registry} refused the credentials${
            cred.username ? ` for user '${cred.username}'` : ""
          }${credentialAdvice(cred, this.#s.registry)}`
          : `${what}: ${this.#s.registry} requires authentication; run 'ocipkg login ${this.#s.registry}'`,
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
      if (stop?.aborted) throw stop.reason;
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
