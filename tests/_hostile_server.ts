// Hostile servers for registry containment tests: a recording HTTP server
// (Deno.serve on loopback) that can play a small distribution registry with
// overridable routes, a token service, and a raw TCP listener for servers that
// never answer or drip bytes. Every server counts requests in flight and
// records the Authorization header of each request.
import { concat, sha256 } from "./_helpers.ts";

export interface Recorded {
  method: string;
  /** Path and query. */
  path: string;
  authorization: string | null;
}

export interface HttpServer {
  /** `http(s)://host:port` */
  origin: string;
  /** `host:port` */
  host: string;
  port: number;
  requests: Recorded[];
  /** Most requests in flight at once (until each response body ended). */
  maxInFlight: number;
  /** Aborted when the server stops: handlers that stall must end on it. */
  signal: AbortSignal;
  stop(): Promise<void>;
}

export type Handler = (req: Request, url: URL) => Response | Promise<Response>;

/** Start a recording HTTP server on a loopback address. */
export function startHttp(
  handler: Handler,
  opts: { hostname?: string; tls?: { cert: string; key: string } } = {},
): HttpServer {
  const hostname = opts.hostname ?? "127.0.0.1";
  const ac = new AbortController();
  let inFlight = 0;
  const self: HttpServer = {
    origin: "",
    host: "",
    port: 0,
    requests: [],
    maxInFlight: 0,
    signal: ac.signal,
    async stop() {
      ac.abort();
      await server.finished;
    },
  };
  const done = () => {
    inFlight--;
  };
  const server = Deno.serve(
    // port 0: the kernel picks a free one as it binds (a port probed free beforehand can be
    // taken by a parallel test before the bind); its ephemeral range holds no port fetch blocks
    { hostname, port: 0, signal: ac.signal, onListen() {}, ...(opts.tls ?? {}) },
    async (req) => {
      const url = new URL(req.url);
      self.requests.push({
        method: req.method,
        path: url.pathname + url.search,
        authorization: req.headers.get("authorization"),
      });
      inFlight++;
      self.maxInFlight = Math.max(self.maxInFlight, inFlight);
      let res: Response;
      try {
        res = await handler(req, url);
      } catch (e) {
        done();
        throw e;
      }
      if (!res.body) {
        done();
        return res;
      }
      // count the request as in flight until its body has been sent (with a
      // Content-Length: until its last byte is handed over)
      const reader = res.body.getReader();
      const length = Number(res.headers.get("content-length") ?? "NaN");
      let sent = 0;
      let ended = false;
      const end = () => {
        if (!ended) {
          ended = true;
          done();
        }
      };
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          try {
            const r = await reader.read();
            if (r.done) {
              end();
              c.close();
              return;
            }
            sent += r.value.byteLength;
            if (sent >= length) end();
            c.enqueue(r.value);
          } catch (e) {
            end();
            c.error(e);
          }
        },
        async cancel(why) {
          end();
          await reader.cancel(why).catch(() => {});
        },
      });
      return new Response(body, {
        status: res.status,
        statusText: res.statusText,
        headers: res.headers,
      });
    },
  );
  self.port = server.addr.port;
  const hostPart = hostname.includes(":") ? `[${hostname}]` : hostname;
  self.host = `${hostPart}:${self.port}`;
  self.origin = `${opts.tls ? "https" : "http"}://${self.host}`;
  return self;
}

export interface Blob {
  bytes: Uint8Array<ArrayBuffer>;
  mediaType: string;
}

export interface FakeRegistryOptions {
  /** Authentication the registry asks for. */
  auth?:
    | { basic: { user: string; pass: string } }
    | { bearer: { realm: string | (() => string); token: string } };
  /** Routes tried first; `undefined` falls through to the registry. */
  route?: (req: Request, url: URL) => Response | Promise<Response> | undefined;
  hostname?: string;
  tls?: { cert: string; key: string };
}

export interface FakeRegistry extends HttpServer {
  /** Content by digest: manifests and blobs. */
  blobs: Map<string, Blob>;
  /** `name:tag` → digest. */
  tags: Map<string, string>;
}

const json = (v: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(v), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });

/** A small distribution registry in memory (enough for get, pull, push, tags). */
export function startFakeRegistry(opts: FakeRegistryOptions = {}): FakeRegistry {
  const blobs = new Map<string, Blob>();
  const tags = new Map<string, string>();
  const uploads = new Map<string, Uint8Array[]>();
  let uploadId = 0;
  const authorized = (req: Request): boolean => {
    const a = req.headers.get("authorization");
    if (!opts.auth) return true;
    if ("basic" in opts.auth) {
      return a === `Basic ${btoa(`${opts.auth.basic.user}:${opts.auth.basic.pass}`)}`;
    }
    return a === `Bearer ${opts.auth.bearer.token}`;
  };
  const challenge = (name: string): Response => {
    if (opts.auth && "basic" in opts.auth) {
      return json({ errors: [{ code: "UNAUTHORIZED" }] }, 401, {
        "www-authenticate": 'Basic realm="fake"',
      });
    }
    const b = (opts.auth as { bearer: { realm: string | (() => string) } }).bearer;
    const realm = typeof b.realm === "string" ? b.realm : b.realm();
    return json({ errors: [{ code: "UNAUTHORIZED" }] }, 401, {
      "www-authenticate": `Bearer realm="${realm}",service="fake",scope="repository:${name}:pull"`,
    });
  };
  const handler: Handler = async (req, url) => {
    const routed = await opts.route?.(req, url);
    if (routed) return routed;
    const path = url.pathname;
    if (!path.startsWith("/v2/")) return new Response("not found", { status: 404 });
    const m = /^\/v2\/(.+?)\/(manifests|blobs|tags)\/(.*)$/.exec(path);
    const name = m?.[1] ?? "";
    if (!authorized(req)) {
      await req.body?.cancel();
      return challenge(name);
    }
    if (path === "/v2/") return json({});
    if (!m) return new Response("not found", { status: 404 });
    const [, , kind, rest] = m;
    if (kind === "tags" && rest === "list") {
      return json({
        name,
        tags: [...tags.keys()].filter((k) => k.startsWith(`${name}:`)).map((k) =>
          k.slice(name.length + 1)
        ),
      });
    }
    if (kind === "manifests") {
      if (req.method === "PUT") {
        const bytes = new Uint8Array(await req.arrayBuffer());
        const digest = await sha256(bytes);
        blobs.set(digest, { bytes, mediaType: req.headers.get("content-type") ?? "" });
        if (!rest!.startsWith("sha256:")) tags.set(`${name}:${rest}`, digest);
        return new Response(null, { status: 201, headers: { "docker-content-digest": digest } });
      }
      const digest = rest!.startsWith("sha256:") ? rest! : tags.get(`${name}:${rest}`);
      const b = digest ? blobs.get(digest) : undefined;
      if (!b) return json({ errors: [{ code: "MANIFEST_UNKNOWN" }] }, 404);
      return new Response(req.method === "HEAD" ? null : b.bytes, {
        headers: {
          "content-type": b.mediaType,
          "docker-content-digest": digest!,
          "content-length": String(b.bytes.byteLength),
        },
      });
    }
    if (kind === "blobs" && rest!.startsWith("uploads/")) {
      const id = rest!.slice("uploads/".length);
      if (req.method === "POST") {
        const next = String(++uploadId);
        uploads.set(next, []);
        return new Response(null, {
          status: 202,
          headers: { location: `/v2/${name}/blobs/uploads/${next}`, range: "0-0" },
        });
      }
      const parts = uploads.get(id);
      if (!parts) return json({ errors: [{ code: "BLOB_UPLOAD_UNKNOWN" }] }, 404);
      parts.push(new Uint8Array(await req.arrayBuffer()));
      if (req.method === "PATCH") {
        return new Response(null, {
          status: 202,
          headers: { location: `/v2/${name}/blobs/uploads/${id}` },
        });
      }
      const all = concat(parts);
      const digest = await sha256(all);
      if (digest !== url.searchParams.get("digest")) {
        return json({ errors: [{ code: "DIGEST_INVALID" }] }, 400);
      }
      blobs.set(digest, { bytes: all, mediaType: "application/octet-stream" });
      uploads.delete(id);
      return new Response(null, { status: 201, headers: { "docker-content-digest": digest } });
    }
    if (kind === "blobs") {
      const b = blobs.get(rest!);
      if (!b) return json({ errors: [{ code: "BLOB_UNKNOWN" }] }, 404);
      return new Response(req.method === "HEAD" ? null : b.bytes, {
        headers: {
          "content-type": "application/octet-stream",
          "content-length": String(b.bytes.byteLength),
          "docker-content-digest": rest!,
        },
      });
    }
    return new Response("not found", { status: 404 });
  };
  const server = startHttp(handler, { hostname: opts.hostname, tls: opts.tls });
  return Object.assign(server, { blobs, tags });
}

/** A token service: Basic `user:pass` (or an identity token POSTed) gets `token`. */
export function startTokenService(
  opts: { user: string; pass: string; token: string; identityToken?: string },
): HttpServer {
  return startHttp(async (req) => {
    if (req.method === "POST") {
      const form = new URLSearchParams(await req.text());
      if (opts.identityToken && form.get("refresh_token") === opts.identityToken) {
        return json({ access_token: opts.token });
      }
      return new Response("denied", { status: 401 });
    }
    if (req.headers.get("authorization") === `Basic ${btoa(`${opts.user}:${opts.pass}`)}`) {
      return json({ token: opts.token });
    }
    return new Response("denied", { status: 401 });
  });
}

export interface RawServer {
  host: string;
  port: number;
  /** Connections accepted. */
  connections: number;
  stop(): Promise<void>;
}

/**
 * A raw TCP server: reads each request's head, then hands the connection to
 * `serve` (which must return once `signal` aborts). The connection is closed
 * after `serve` returns.
 */
export function startRaw(
  serve: (conn: Deno.Conn, head: string, signal: AbortSignal) => Promise<void>,
): RawServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const ac = new AbortController();
  const conns = new Set<Deno.Conn>();
  const tasks: Promise<void>[] = [];
  const self: RawServer = {
    host: `127.0.0.1:${port}`,
    port,
    connections: 0,
    async stop() {
      ac.abort();
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accepting;
      await Promise.allSettled(tasks);
    },
  };
  const handle = async (conn: Deno.Conn) => {
    conns.add(conn);
    try {
      let head = "";
      const buf = new Uint8Array(4096);
      while (!head.includes("\r\n\r\n")) {
        const n = await conn.read(buf);
        if (n === null) return;
        head += new TextDecoder().decode(buf.subarray(0, n));
      }
      await serve(conn, head, ac.signal);
    } catch {
      /* the client went away, or the server stopped */
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        self.connections++;
        tasks.push(handle(conn));
      }
    } catch { /* listener closed */ }
  })();
  return self;
}

/** Resolve after `ms`, or at once when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}
