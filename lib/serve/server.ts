/**
 * `serve`: a distribution-spec v1.1 registry on `Deno.serve`, storing one OCI
 * image layout per repository under a root (see `storage.ts`). Pull (manifests
 * by tag and digest, blobs with `Range`), push (monolithic, `POST`+`PUT`,
 * chunked `PATCH`, cross-repository mount), tag lists, referrers, deletes,
 * htpasswd Basic auth, TLS, read-only mode.
 *
 * This module starts and stops the server, enforces the request limits, auth
 * and read-only mode, and routes each request to its endpoint: manifests and
 * referrers in `manifests.ts`, blobs and uploads in `blobs.ts` (their shared
 * helpers in `http.ts`); the catalog and tag lists are paged here.
 *
 * **Fair and bounded.** Each client — its address (an IPv6 address by its
 * /64), or its user once authenticated — gets its own share, so that one
 * client cannot lock the others out (defaults in {@link SERVE_DEFAULTS}):
 *
 * - connections: 256 in all, 32 per client address (`front.ts` accepts them
 *   and answers one past a limit `503`/`429` with `Retry-After`); over
 *   HTTP/1.1 a connection carries one request at a time, so these bound the
 *   requests in flight too;
 * - request rate: a token bucket per client, 1,000 requests/s with bursts of
 *   2,000 (a CI host pushing many small blobs in parallel is one client); past it `429` with the `Retry-After` of the next token; wrong
 *   credentials (each a bcrypt check) also draw on a bucket per address, 10
 *   then 1 per second;
 * - upload sessions: 128 in all, 16 per client; when all are taken a client
 *   with fewer gets the idlest session of the client holding the most; a
 *   session that receives no bytes for 60 s is dropped and its file removed
 *   (`uploads.ts`);
 * - stalls: a request body that sends no byte for 30 s while the server
 *   waits for it, a response the client reads nothing of for 30 s, and a
 *   connection with no request for 30 s are cut (their uploads dropped);
 * - memory: bodies are streamed (manifests, the only bodies read whole, are
 *   capped at 4 MiB), and each connection relays through two 64 KiB buffers.
 *
 * **Graceful stop.** `close()` stops accepting connections, answers new
 * requests `503`, drops the upload sessions between requests and gives the
 * requests in flight 5 s (`shutdownGraceMs`) to finish; then it closes every
 * connection: an upload cut off is dropped and its temp file removed (a blob
 * is renamed into its repository whole, after its digest matched, or not at
 * all).
 *
 * @module
 */
import { VerificationError } from "../util/errors.ts";
import { OcipkgError, oneLine, ResourceError, UsageError } from "../util/errors.ts";
import { isFileStream } from "../util/files.ts";
import { Htpasswd, readOptionFile } from "./auth.ts";
import { BlobEndpoints } from "./blobs.ts";
import { RateMeter, userKey } from "./clients.ts";
import { errorResponse, ServeError } from "./errors.ts";
import { type Connection, type ConnectionEnd, Front } from "./front.ts";
import { allow, checkDigest, type Ctx, decode, empty, json, knownRepository } from "./http.ts";
import { ManifestEndpoints } from "./manifests.ts";
import { Storage } from "./storage.ts";
import { Uploads } from "./uploads.ts";
import { SERVE_DEFAULTS } from "./defaults.ts";

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Directory holding one OCI layout per repository (made when missing). */
  root: string;
  /** `host:port` to listen on (default `127.0.0.1:5000`; port 0 picks a free one). */
  addr?: string;
  /**
   * An htpasswd file of bcrypt entries: Basic auth required for everything.
   * Option files must be regular files of at most 1 MiB (`MAX_OPTION_FILE`).
   */
  htpasswd?: string;
  /** PEM certificate (chain) file: serve https (with `tlsKey`). */
  tlsCert?: string;
  /** PEM private key file. */
  tlsKey?: string;
  /** Refuse every write with `DENIED`. */
  readOnly?: boolean;
  /** Allow deleting manifests, tags and blobs. */
  delete?: boolean;
  /**
   * Receives one line per request, once its response body is sent or broke
   * off: method, path and query, status, bytes received (upload bodies),
   * bytes sent (response body), the whole request's duration; a 5xx adds its
   * reason, a response that did not finish says so.
   */
  log?: (line: string) => void;
  /** Most upload sessions at once, all clients together (default 128). */
  maxUploads?: number;
  /** Most upload sessions one client holds at once (default 16). */
  maxClientUploads?: number;
  /** An upload session that receives no bytes this long is dropped (ms, default 60 s). */
  uploadIdleMs?: number;
  /** Most connections open at once (default 256). */
  maxConnections?: number;
  /** Most connections one client address holds open at once (default 32). */
  maxClientConnections?: number;
  /** Requests per second one client may send, on average (default 100; 0: no limit). */
  rate?: number;
  /** Requests one client may send at once beyond the rate (default 200). */
  burst?: number;
  /**
   * A request body or response moving no byte this long, or a connection with no request in
   * flight this long, is cut (ms, default 30 s).
   */
  stallMs?: number;
  /** On `close()`, time the requests in flight get to finish (ms, default 5 s). */
  shutdownGraceMs?: number;
  /** Advertised as `OCI-Chunk-Min-Length` (default 0: any chunk size). */
  chunkMinLength?: number;
  /**
   * A repository's `index.json` is written from its private index this long
   * after its last write (ms, default 2,000), and at the latest 30 s after
   * its first write not yet in it; always on `close()` (see `repo_index.ts`).
   */
  exportIdleMs?: number;
}

/** Wrong credentials one address may send at once (each costs a bcrypt check)... */
export const AUTH_FAILURE_BURST = 10;
/** ...and then per second. */
export const AUTH_FAILURE_RATE = 1;

type Limits = { -readonly [K in keyof typeof SERVE_DEFAULTS]: number };

/** The least value of each limit. */
const LEAST: Limits = {
  maxConnections: 1,
  maxClientConnections: 1,
  rate: 0,
  burst: 1,
  stallMs: 1,
  shutdownGraceMs: 0,
  maxUploads: 1,
  maxClientUploads: 1,
  uploadIdleMs: 1,
};

/** The limits of `options`, checked, with the defaults for those not given. */
function limitsOf(options: ServeOptions): Limits {
  const limits: Limits = { ...SERVE_DEFAULTS };
  for (const name of Object.keys(LEAST) as (keyof Limits)[]) {
    const v: unknown = options[name];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isFinite(v) || v < LEAST[name]) {
      throw new UsageError(
        `invalid ${name} '${String(v)}': use a number of at least ${LEAST[name]}`,
      );
    }
    limits[name] = v;
  }
  return limits;
}

/** A running registry. */
export interface ServeHandle {
  /** e.g. `http://127.0.0.1:5000` */
  readonly url: string;
  /** `host:port` as clients name it, e.g. `127.0.0.1:5000` */
  readonly addr: string;
  /** The port (the real one when 0 was asked). */
  readonly port: number;
  /** The root directory (resolved). */
  readonly root: string;
  /**
   * Stop: no new connection or request; the requests in flight get
   * `shutdownGraceMs` to finish, then every connection is closed (uploads
   * cut off are dropped, their files removed). Called again while stopping,
   * with `graceMs`, it shortens the grace to that (0: close them now).
   */
  close(options?: { graceMs?: number }): Promise<void>;
  /**
   * Write now the `index.json` of every repository written to since its
   * last export (otherwise written {@link ServeOptions.exportIdleMs} after
   * the repository's last write, and on `close()`).
   */
  flush(): Promise<void>;
}

/** Longest request URL accepted (bytes). */
export const MAX_URL_LENGTH = 8192;
/** Most request header bytes accepted. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** Most tags or repositories in one list response. */
export const MAX_LIST = 10_000;

/**
 * Parse `host:port`, `[v6]:port` or `:port`.
 *
 * @param addr the address
 * @returns hostname and port
 * @throws {UsageError} when malformed
 */
export function parseAddr(addr: string): { hostname: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new UsageError(`invalid address '${addr}': expected host:port, e.g. 127.0.0.1:5000`);
  }
  return { hostname: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/** One served root (the request handler and its state). */
class Registry {
  #storage: Storage;
  #uploads: Uploads;
  #auth: Htpasswd | undefined;
  #options: ServeOptions;
  #manifests: ManifestEndpoints;
  #front: Front;
  #rate: RateMeter;
  #limits: Limits;
  #authFailures = new RateMeter(AUTH_FAILURE_RATE, AUTH_FAILURE_BURST);
  /** Requests being answered. */
  readonly inFlight = new Set<Promise<Response>>();
  /** Stopping: new requests are refused, every response closes its connection. */
  closing = false;

  constructor(
    storage: Storage,
    uploads: Uploads,
    auth: Htpasswd | undefined,
    o: ServeOptions,
    front: Front,
    limits: Limits,
  ) {
    this.#storage = storage;
    this.#uploads = uploads;
    this.#auth = auth;
    this.#options = o;
    this.#manifests = new ManifestEndpoints({ storage, uploads, options: o });
    this.#front = front;
    this.#limits = limits;
    this.#rate = new RateMeter(limits.rate, limits.burst);
  }

  /** Answer a request: its connection is counted busy until the response is sent. */
  async handle(
    req: Request,
    ctx: Ctx,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Promise<Response> {
    const conn = this.#front.connection(info.remoteAddr.port);
    if (!conn) {
      // not through the front (a direct connection to the server behind it)
      await req.body?.cancel().catch(() => {});
      return empty(403, { connection: "close" });
    }
    conn.begin();
    info.completed.then(() => conn.end(), () => conn.end());
    const answer = this.#answer(watchBody(req, conn, ctx), ctx, conn);
    this.inFlight.add(answer);
    try {
      const res = await answer;
      if (this.closing) res.headers.set("connection", "close");
      return res;
    } finally {
      this.inFlight.delete(answer);
    }
  }

  async #answer(req: Request, ctx: Ctx, conn: Connection): Promise<Response> {
    try {
      return await this.#gate(req, ctx, conn);
    } catch (e) {
      // a body that broke off because its connection ended: whatever the endpoint made of it
      const cut = ctx.bodyBroke && conn.ended ? new RequestCutOff(conn.ended) : undefined;
      ctx.failure = cut ?? e;
      return cut ? empty(cut.status) : toResponse(e, req.method === "HEAD");
    }
  }

  async #gate(req: Request, ctx: Ctx, conn: Connection): Promise<Response> {
    if (this.closing) {
      await req.body?.cancel().catch(() => {});
      throw new ServeError("UNSUPPORTED", "the registry is shutting down", {
        status: 503,
        headers: { "retry-after": "1" },
      });
    }
    if (req.url.length > MAX_URL_LENGTH) {
      await req.body?.cancel().catch(() => {});
      return empty(414);
    }
    let headerBytes = 0;
    req.headers.forEach((v, k) => headerBytes += k.length + v.length + 4);
    if (headerBytes > MAX_HEADER_BYTES) {
      await req.body?.cancel().catch(() => {});
      return empty(431);
    }
    const url = new URL(req.url);
    const path = url.pathname;
    if (path !== "/v2" && !path.startsWith("/v2/")) {
      throw new ServeError("UNSUPPORTED", `no such endpoint '${path.slice(0, 200)}'`, {
        status: 404,
      });
    }
    let client = conn.client;
    if (this.#auth) client = userKey(await this.#authenticate(req, conn.client));
    const wait = this.#rate.take(client);
    if (wait > 0) {
      await req.body?.cancel().catch(() => {});
      throw new ServeError(
        "TOOMANYREQUESTS",
        `client ${client} sends more than ${this.#limits.rate} requests per second`,
        { headers: { "retry-after": String(Math.ceil(wait / 1000)) } },
      );
    }
    return await this.#route(req, url, ctx, client);
  }

  /** The user of a request, checked; wrong credentials draw on the address's bucket. */
  async #authenticate(req: Request, address: string): Promise<string> {
    const header = req.headers.get("authorization");
    const wait = header ? this.#authFailures.wait(address) : 0;
    if (wait > 0) {
      await req.body?.cancel().catch(() => {});
      throw new ServeError(
        "TOOMANYREQUESTS",
        `too many wrong credentials from ${address}; try again later`,
        { headers: { "retry-after": String(Math.ceil(wait / 1000)) } },
      );
    }
    const user = await this.#auth!.check(header);
    if (user === undefined) {
      if (header) this.#authFailures.take(address);
      await req.body?.cancel().catch(() => {});
      throw new ServeError("UNAUTHORIZED", "authentication required", {
        headers: { "www-authenticate": 'Basic realm="ocipkg"' },
      });
    }
    return user;
  }

  async #route(req: Request, url: URL, ctx: Ctx, client: string): Promise<Response> {
    const path = url.pathname;
    const method = req.method;
    const write = !["GET", "HEAD", "OPTIONS"].includes(method);
    if (write && this.#options.readOnly) {
      await req.body?.cancel().catch(() => {});
      throw new ServeError("DENIED", "the registry is read-only");
    }
    if (path === "/v2/" || path === "/v2") {
      allow(req, ["GET", "HEAD"]);
      return json({}, 200);
    }
    if (path === "/v2/_catalog") {
      allow(req, ["GET"]);
      const { n, last } = pageQuery(url);
      const page = await this.#storage.catalogPage(last, n);
      return json(
        { repositories: page.names },
        200,
        nextLink("/v2/_catalog", n, page.names, page.more),
      );
    }
    let m: RegExpExecArray | null;
    if ((m = /^\/v2\/(.+)\/tags\/list$/.exec(path))) {
      allow(req, ["GET"]);
      const name = m[1]!;
      const repo = await knownRepository(this.#storage, name);
      const { n, last } = pageQuery(url);
      const page = await repo.tagPage(last, n);
      return json(
        { name, tags: page.tags },
        200,
        nextLink(`/v2/${name}/tags/list`, n, page.tags, page.more),
      );
    }
    if ((m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path))) {
      return await this.#manifests.manifest(req, m[1]!, decode(m[2]!));
    }
    if ((m = /^\/v2\/(.+)\/blobs\/uploads\/?$/.exec(path))) {
      allow(req, ["POST"]);
      return await this.#blobs(client).startUpload(req, url, m[1]!, ctx);
    }
    if ((m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/.exec(path))) {
      return await this.#blobs(client).upload(req, url, m[1]!, decode(m[2]!), ctx);
    }
    if ((m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path))) {
      return await this.#blobs(client).blob(req, m[1]!, checkDigest(decode(m[2]!)));
    }
    if ((m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(path))) {
      allow(req, ["GET"]);
      return await this.#manifests.referrers(url, m[1]!, checkDigest(decode(m[2]!)));
    }
    throw new ServeError("UNSUPPORTED", `no such endpoint '${path.slice(0, 200)}'`, {
      status: 404,
    });
  }

  /** The blob endpoints as one client uses them (its upload sessions count against its share). */
  #blobs(client: string): BlobEndpoints {
    const uploads = this.#uploads.owned(client);
    return new BlobEndpoints({ storage: this.#storage, uploads, options: this.#options });
  }
}

/** The `Link` header of a list's next page (none after the last page, or an empty one). */
function nextLink(
  base: string,
  n: number,
  page: string[],
  more: boolean,
): Record<string, string> {
  if (!more || page.length === 0) return {};
  const next = new URLSearchParams({ n: String(n), last: page[page.length - 1]! });
  return { link: `<${base}?${next}>; rel="next"` };
}

/** A list's `n` (at most {@link MAX_LIST}) and `last`. */
function pageQuery(url: URL): { n: number; last: string | undefined } {
  const nText = url.searchParams.get("n");
  let n = MAX_LIST;
  if (nText !== null) {
    if (!/^\d{1,9}$/.test(nText)) {
      throw new ServeError("UNSUPPORTED", `invalid n '${nText.slice(0, 20)}'`, { status: 400 });
    }
    n = Math.min(Number(nText), MAX_LIST);
  }
  return { n, last: url.searchParams.get("last") ?? undefined };
}

/** The status nginx logs for a request the client closed the connection of: not a server error. */
const CLIENT_CLOSED_REQUEST = 499;

/**
 * A request whose body broke off because its connection ended under it:
 * the client closed or reset it (499, {@link CLIENT_CLOSED_REQUEST}), or the
 * front cut it — for a stall (408) or at the end of a stop (503). Its answer
 * reaches no one; its status and reason are for the request log.
 */
class RequestCutOff extends Error {
  /** The status logged. */
  readonly status: number;

  /** @param end why the connection ended */
  constructor(end: ConnectionEnd) {
    // e.g. "the client closed the connection before the request body ended", "cut: the request body stalled"
    super(
      end.by === "stall"
        ? `cut: ${end.reason}`
        : `${end.by === "stop" ? "cut: " : ""}${end.reason} before the request body ended`,
    );
    this.name = "RequestCutOff";
    this.status = end.by === "client" ? CLIENT_CLOSED_REQUEST : end.by === "stall" ? 408 : 503;
  }
}

function toResponse(e: unknown, head: boolean): Response {
  if (e instanceof ServeError) return errorResponse(e, head);
  if (e instanceof VerificationError) {
    return errorResponse(new ServeError("DIGEST_INVALID", e.message), head);
  }
  const message = e instanceof Error ? e.message.split("\n")[0]!.slice(0, 300) : String(e);
  const status = e instanceof ResourceError ? 507 : 500;
  return errorResponse(new ServeError("UNSUPPORTED", message, { status }), head);
}

/**
 * Serve a directory of OCI layouts as a distribution-spec registry, until
 * `close()`.
 *
 * @param options the root, address, auth, TLS and modes
 * @returns the running registry
 * @throws {OcipkgError} when the port is taken, the htpasswd file or the TLS files are unusable
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { packDirectory, pushImage, serve } from "@ocipkg/cli";
 * import { listTags } from "@ocipkg/cli/transport";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "a");
 * const registry = await serve({ root: `${tmp}/root`, addr: "127.0.0.1:0" });
 * assert.ok(registry.port > 0); // port 0: a free one, reported here
 * const name = `${registry.addr}/org/foo:1`;
 * const packed = await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name });
 * assert.equal((await pushImage(`${tmp}/foo.tar`)).digest, packed.digest);
 * assert.deepEqual(await listTags(`${registry.addr}/org/foo`), ["1"]);
 * // the root holds one OCI layout per repository
 * assert.ok((await Deno.stat(`${tmp}/root/org/foo/oci-layout`)).isFile);
 * await registry.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function serve(options: ServeOptions): Promise<ServeHandle> {
  const { hostname, port } = parseAddr(options.addr ?? "127.0.0.1:5000");
  const limits = limitsOf(options);
  const auth = options.htpasswd ? await Htpasswd.read(options.htpasswd) : undefined;
  if (!options.tlsCert !== !options.tlsKey) {
    throw new UsageError("TLS needs both a certificate and a key");
  }
  const tls = options.tlsCert && options.tlsKey
    ? {
      cert: await readOptionFile(options.tlsCert, "TLS certificate", "--tls-cert"),
      key: await readOptionFile(options.tlsKey, "TLS key", "--tls-key"),
    }
    : undefined;
  // the port first: an address in use leaves nothing behind (no root made)
  let front: Front;
  try {
    front = Front.listen({
      hostname,
      port,
      tls,
      maxConnections: limits.maxConnections,
      maxClientConnections: limits.maxClientConnections,
      stallMs: limits.stallMs,
    });
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new OcipkgError(`address ${hostname}:${port} is already in use`, { cause: e });
    }
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.AddrNotAvailable) {
      throw new OcipkgError(`cannot listen on ${hostname}:${port}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (tls) throw new OcipkgError(`TLS certificate or key unusable: ${(e as Error).message}`);
    throw e;
  }
  let storage: Storage;
  try {
    storage = await Storage.open(options.root, {
      exportIdleMs: options.exportIdleMs,
      onError: (line) => options.log?.(line),
      readOnly: options.readOnly,
    });
  } catch (e) {
    await front.stop(0);
    throw new OcipkgError(`root '${options.root}': ${(e as Error).message}`, { cause: e });
  }
  await removeStale(storage.uploads, limits.uploadIdleMs);
  const uploads = new Uploads(storage.uploads, {
    maxUploads: limits.maxUploads,
    maxClientUploads: limits.maxClientUploads,
    idleMs: limits.uploadIdleMs,
  });
  const registry = new Registry(storage, uploads, auth, options, front, limits);
  const log = options.log;
  // the HTTP server, behind the front (which relays every client connection to it)
  const stopServer = new AbortController();
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      signal: stopServer.signal,
      onListen() {},
      onError(e) {
        return toResponse(e, false);
      },
    }, async (req, info) => {
      const t0 = performance.now();
      const ctx: Ctx = { bytesIn: 0 };
      let res: Response;
      let failure: unknown;
      try {
        res = await registry.handle(req, ctx, info);
      } catch (e) {
        failure = e;
        res = toResponse(e, req.method === "HEAD");
      }
      return log ? logged(log, req, res, ctx, t0, failure ?? ctx.failure, info.completed) : res;
    });
  } catch (e) {
    await front.stop(0);
    await uploads.close();
    throw new OcipkgError(`cannot start the HTTP server: ${(e as Error).message}`, { cause: e });
  }
  front.start(server.addr.port);
  const real = front.addr.port;
  const shown = hostname === "0.0.0.0" || hostname === "::"
    ? "127.0.0.1"
    : hostname.includes(":")
    ? `[${hostname}]`
    : hostname;
  let closing: Promise<void> | undefined;
  return {
    url: `${tls ? "https" : "http"}://${shown}:${real}`,
    addr: `${shown}:${real}`,
    port: real,
    root: storage.root,
    flush: () => storage.flush(),
    close(o = {}) {
      if (closing) {
        if (o.graceMs !== undefined) setTimeout(() => front.hurry(), Math.max(0, o.graceMs));
        return closing;
      }
      return closing = (async () => {
        registry.closing = true;
        const dropped = uploads.drain(); // sessions between requests: no request will come
        // no new connection; each closes after its request in flight; at the deadline, all
        await front.stop(o.graceMs ?? limits.shutdownGraceMs);
        stopServer.abort();
        // the requests cut off end at once (their bodies fail); the others finish their commit
        await settle([...registry.inFlight], SETTLE_MS);
        await dropped;
        await uploads.close();
        await settle([server.finished], SETTLE_MS);
        // every index.json that trails its repository's writes is written
        await storage.close();
      })();
    },
  };
}

/**
 * Write the `index.json` of every repository under a root that `serve` keeps
 * a private index for (`<repo>/.ocipkg-index`, see `repo_index.ts`), so that
 * the root reads as plain OCI layouts (skopeo `oci:`, umoci, ocipkg
 * `oci-dir`). A running `serve` does this itself (2 s after a repository's
 * last write, and when it stops); this is for a root whose `serve` was
 * killed (`ocipkg serve --export`). Run it while no `serve` runs on the root.
 *
 * A repository whose export fails (its private index is corrupt) does not
 * stop the others: each failure goes to `options.onError`, or without one,
 * the first is thrown once the others are written.
 *
 * @param root the served root
 * @param options `onError`: receives each repository that could not be written, and why
 * @returns the names of the repositories written
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exportRoot, packDirectory, pushImage, serve } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "a");
 * const registry = await serve({ root: `${tmp}/root`, addr: "127.0.0.1:0" });
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: `${registry.addr}/org/foo:1` });
 * await pushImage(`${tmp}/foo.tar`);
 * await registry.close(); // a stop writes index.json too
 * assert.deepEqual(await exportRoot(`${tmp}/root`), ["org/foo"]);
 * const index = JSON.parse(await Deno.readTextFile(`${tmp}/root/org/foo/index.json`));
 * assert.equal(index.manifests[0].annotations["org.opencontainers.image.ref.name"], "1");
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function exportRoot(
  root: string,
  options: { onError?: (name: string, error: unknown) => void } = {},
): Promise<string[]> {
  try {
    if (!(await Deno.stat(root)).isDirectory) throw new Error("not a directory");
  } catch (e) {
    throw new UsageError(`root '${root}' is not a directory: ${(e as Error).message}`);
  }
  const storage = await Storage.open(root);
  try {
    return await storage.exportAll(options.onError);
  } finally {
    await storage.close(); // and the catalog, rebuilt by the walk, marked clean
  }
}

/** Time a stop waits for the requests it cut off to end (ms). */
const SETTLE_MS = 2000;

/** Wait for promises to settle, at most `ms`. */
async function settle(promises: Promise<unknown>[], ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  await Promise.race([Promise.allSettled(promises), late]);
  clearTimeout(timer);
}

/**
 * The request with its body watched: while the server waits for body bytes,
 * the connection knows it (a body that stalls is cut, see `front.ts`); a body
 * that breaks off is marked in `ctx` (its connection says why).
 */
function watchBody(req: Request, conn: Connection, ctx: Ctx): Request {
  if (!req.body) return req;
  const source = req.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      conn.bodyWait(true);
      try {
        const { value, done } = await source.read();
        if (done) c.close();
        else c.enqueue(value);
      } catch (e) {
        ctx.bodyBroke = true;
        throw e;
      } finally {
        conn.bodyWait(false);
      }
    },
    cancel(reason) {
      return source.cancel(reason);
    },
  }, { highWaterMark: 0 });
  const init: RequestInit & { duplex: "half" } = {
    method: req.method,
    headers: req.headers,
    body,
    duplex: "half",
  };
  return new Request(req.url, init);
}

/**
 * The request's log line, written when the response's body has been sent or
 * broke off: `METHOD /path?query STATUS RECEIVED SENT MSms`, then for a 5xx
 * its reason, for a body that did not finish `(response broke off)`. A
 * request body cut off by its connection's end is no server error: 499 when
 * the client closed or reset the connection (as nginx logs it), 408 when the
 * front cut it for a stall, 503 at the end of a stop, each with `(<why>)`.
 * RECEIVED counts upload bodies, SENT the response body; the duration runs
 * from the request's arrival until Deno says the response is done
 * (`completed`: its body sent, or the client gone). Bodies are relayed to
 * count them, except a whole blob's file stream: Deno sends that from the
 * file itself (a relay through JavaScript doubles serve's CPU per download),
 * so SENT is its length, and a client that breaks it off is not told apart.
 */
function logged(
  log: (line: string) => void,
  req: Request,
  res: Response,
  ctx: Ctx,
  t0: number,
  failure: unknown,
  completed: Promise<void>,
): Response {
  const url = new URL(req.url);
  const reason = failure instanceof RequestCutOff
    ? ` (${failure.message})`
    : res.status >= 500 && failure !== undefined
    ? ` error: ${oneLine(failure)}`
    : "";
  const line = (sent: number, note = "") => {
    const ms = Math.round(performance.now() - t0);
    log(
      `${req.method} ${url.pathname}${url.search} ${res.status} ${ctx.bytesIn} ${sent} ${ms}ms` +
        reason + note,
    );
  };
  const length = Number(res.headers.get("content-length") ?? NaN);
  if (!res.body || isFileStream(res.body, length)) {
    const sent = res.body ? length : 0;
    completed.then(() => line(sent), () => line(sent, " (response broke off)"));
    return res;
  }
  const reader = res.body.getReader();
  let sent = 0;
  let finished = false; // the body's end was read (not a cancel's)
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      try {
        const { value, done } = await reader.read();
        if (done) {
          finished = !cancelled;
          return c.close();
        }
        sent += value.byteLength;
        c.enqueue(value);
      } catch (e) {
        c.error(e);
      }
    },
    cancel: (why) => {
      cancelled = true;
      return reader.cancel(why);
    },
  });
  const end = () => line(sent, finished ? "" : " (response broke off)");
  completed.then(end, end);
  return new Response(body, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
}

/** Remove upload files left by a process that was killed (older than `ageMs`). */
async function removeStale(dir: string, ageMs: number): Promise<void> {
  try {
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      const st = await Deno.lstat(p).catch(() => undefined);
      if (st?.isFile && Date.now() - (st.mtime?.getTime() ?? 0) > ageMs) {
        await Deno.remove(p).catch(() => {});
      }
    }
  } catch { /* nothing to clean */ }
}
