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
 * @module
 */
import { VerificationError } from "../util/errors.ts";
import { OcipkgError, oneLine, ResourceError, UsageError } from "../util/errors.ts";
import { isFileStream } from "../util/files.ts";
import { Htpasswd, readOptionFile } from "./auth.ts";
import { BlobEndpoints } from "./blobs.ts";
import { errorResponse, ServeError } from "./errors.ts";
import { allow, checkDigest, type Ctx, decode, empty, json, knownRepository } from "./http.ts";
import { ManifestEndpoints } from "./manifests.ts";
import { Storage } from "./storage.ts";
import { Uploads } from "./uploads.ts";

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
  /** Most upload sessions at once (default 32). */
  maxUploads?: number;
  /** An upload idle this long is dropped (default 15 min). */
  uploadIdleMs?: number;
  /** Advertised as `OCI-Chunk-Min-Length` (default 0: any chunk size). */
  chunkMinLength?: number;
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
  /** Stop: no new requests, uploads in flight discarded, in-flight downloads finished. */
  close(): Promise<void>;
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
  #auth: Htpasswd | undefined;
  #options: ServeOptions;
  #manifests: ManifestEndpoints;
  #blobs: BlobEndpoints;

  constructor(storage: Storage, uploads: Uploads, auth: Htpasswd | undefined, o: ServeOptions) {
    this.#storage = storage;
    this.#auth = auth;
    this.#options = o;
    const served = { storage, uploads, options: o };
    this.#manifests = new ManifestEndpoints(served);
    this.#blobs = new BlobEndpoints(served);
  }

  async handle(req: Request, ctx: Ctx): Promise<Response> {
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
    if (this.#auth && !(await this.#auth.check(req.headers.get("authorization")))) {
      await req.body?.cancel().catch(() => {});
      throw new ServeError("UNAUTHORIZED", "authentication required", {
        headers: { "www-authenticate": 'Basic realm="ocipkg"' },
      });
    }
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
      const names = await this.#storage.catalog();
      return this.#page(url, names, "repositories", {}, "/v2/_catalog");
    }
    let m: RegExpExecArray | null;
    if ((m = /^\/v2\/(.+)\/tags\/list$/.exec(path))) {
      allow(req, ["GET"]);
      const name = m[1]!;
      const repo = await knownRepository(this.#storage, name);
      return this.#page(url, await repo.tags(), "tags", { name }, `/v2/${name}/tags/list`);
    }
    if ((m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path))) {
      return await this.#manifests.manifest(req, m[1]!, decode(m[2]!));
    }
    if ((m = /^\/v2\/(.+)\/blobs\/uploads\/?$/.exec(path))) {
      allow(req, ["POST"]);
      return await this.#blobs.startUpload(req, url, m[1]!, ctx);
    }
    if ((m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/.exec(path))) {
      return await this.#blobs.upload(req, url, m[1]!, decode(m[2]!), ctx);
    }
    if ((m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path))) {
      return await this.#blobs.blob(req, m[1]!, checkDigest(decode(m[2]!)));
    }
    if ((m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(path))) {
      allow(req, ["GET"]);
      return await this.#manifests.referrers(url, m[1]!, checkDigest(decode(m[2]!)));
    }
    throw new ServeError("UNSUPPORTED", `no such endpoint '${path.slice(0, 200)}'`, {
      status: 404,
    });
  }

  #page(
    url: URL,
    all: string[],
    key: string,
    extra: Record<string, string>,
    base: string,
  ): Response {
    const nText = url.searchParams.get("n");
    const last = url.searchParams.get("last");
    let n = MAX_LIST;
    if (nText !== null) {
      if (!/^\d{1,9}$/.test(nText)) {
        throw new ServeError("UNSUPPORTED", `invalid n '${nText.slice(0, 20)}'`, {
          status: 400,
        });
      }
      n = Math.min(Number(nText), MAX_LIST);
    }
    const after = last === null ? all : all.filter((t) => t > last);
    const page = after.slice(0, n);
    const headers: Record<string, string> = {};
    if (after.length > page.length && page.length > 0) {
      const next = new URLSearchParams({ n: String(n), last: page[page.length - 1]! });
      headers.link = `<${base}?${next}>; rel="next"`;
    }
    return json({ ...extra, [key]: page }, 200, headers);
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
  let storage: Storage;
  try {
    storage = await Storage.open(options.root);
  } catch (e) {
    throw new OcipkgError(`root '${options.root}': ${(e as Error).message}`, { cause: e });
  }
  await removeStale(storage.uploads, options.uploadIdleMs ?? 15 * 60_000);
  const uploads = new Uploads(storage.uploads, {
    maxUploads: options.maxUploads,
    idleMs: options.uploadIdleMs,
  });
  const registry = new Registry(storage, uploads, auth, options);
  const log = options.log;
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname,
      port,
      ...(tls ?? {}),
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
        res = await registry.handle(req, ctx);
      } catch (e) {
        failure = e;
        res = toResponse(e, req.method === "HEAD");
      }
      return log ? logged(log, req, res, ctx, t0, failure, info.completed) : res;
    });
  } catch (e) {
    await uploads.close();
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
  const real = server.addr.port;
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
    close() {
      return closing ??= (async () => {
        const done = server.shutdown();
        await uploads.close();
        await done;
      })();
    },
  };
}

/**
 * The request's log line, written when the response's body has been sent or
 * broke off: `METHOD /path?query STATUS RECEIVED SENT MSms`, then for a 5xx
 * its reason, for a body that did not finish `(response broke off)`.
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
  const reason = res.status >= 500 && failure !== undefined ? ` error: ${oneLine(failure)}` : "";
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
