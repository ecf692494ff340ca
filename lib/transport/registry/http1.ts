/**
 * A minimal HTTP/1.1 client for blob downloads: a GET whose body is read
 * from the socket straight into the reader's buffer, over connections a
 * client keeps open between its downloads ({@link Http1Pool}). Deno's
 * `fetch` reads a body on the JS thread into buffers of its own and hands
 * it over in chunks of at most 512 KiB through a stream: for a gigabyte
 * that machinery cost about as much CPU as hashing it. Everything but large
 * blob downloads (`HTTP1_MIN`) goes through `fetch`: for small blobs this
 * client saved CPU per request but no time in a pull of 200.
 *
 * Every byte of the answer is hostile: the head is capped, its lines parsed
 * strictly (no folded lines, no control bytes, one length), and the body
 * framed by exactly one of `Content-Length`, `Transfer-Encoding: chunked` or
 * the connection's end; anything else is refused with a message naming the
 * host.
 *
 * @module
 */
import { RegistryError } from "./errors.ts";
import { streamOfReads } from "../target.ts";

/** Cap on a response's head (status line and headers) and on a chunked body's trailers: 64 KiB. */
export const MAX_HEAD = 64 * 1024;
/** Cap on 1xx answers before the real one. */
const MAX_INTERIM = 8;

/** The reads of a body {@link http1Fetch} answered, without its stream. */
export interface Http1Body {
  /** Read into `into`; the bytes come back as a view of it (no transfer). */
  read(into: Uint8Array): Promise<ReadableStreamReadResult<Uint8Array>>;
  /** Stop reading: the connection is closed. */
  cancel(reason?: unknown): Promise<void>;
}

const bodies = new WeakMap<Response, Http1Body>();

/**
 * The body reads behind a response {@link http1Fetch} made (undefined for
 * any other response): a reader that fills buffers of its own uses them
 * instead of the body's stream. Use one or the other, not both.
 *
 * @param res a response
 * @returns its reads, or undefined
 */
export function http1Body(res: Response): Http1Body | undefined {
  return bodies.get(res);
}

/** Options of {@link http1Fetch}. */
export interface Http1Options {
  /** CA certificates (PEM) trusted beside the defaults, for https. */
  caCerts?: string[];
  /** Keep connections open for the next request (else: one connection per request). */
  pool?: Http1Pool;
}

/** Idle connections a pool keeps per origin. */
const MAX_IDLE = 16;

/**
 * Open connections kept between requests of one client (keep-alive), per
 * origin: a connection goes back only after an answer read to its end
 * (framed by its length or chunked, nothing after it, no `Connection:
 * close`), and one that the server closed meanwhile is replaced once, when
 * it fails before the answer's first byte. {@link Http1Pool.close} closes
 * them; a pool must be closed (open sockets are resources).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { http1Fetch, Http1Pool } from "./http1.ts";
 * const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
 * const server = Deno.serve(listen, () => new Response("hello"));
 * const pool = new Http1Pool();
 * const url = new URL(`http://127.0.0.1:${server.addr.port}/x`);
 * for (let i = 0; i < 3; i++) {
 *   assert.equal(await (await http1Fetch(url, {}, { pool })).text(), "hello");
 * }
 * assert.equal(pool.idle, 1); // the three went over one connection
 * pool.close();
 * await server.shutdown();
 * ```
 */
export class Http1Pool {
  #idle = new Map<string, Conn[]>();
  #closed = false;

  /** Idle connections kept, all origins. */
  get idle(): number {
    let n = 0;
    for (const list of this.#idle.values()) n += list.length;
    return n;
  }

  /** An idle connection to `origin`, if one is kept. */
  take(origin: string): Conn | undefined {
    return this.#idle.get(origin)?.pop();
  }

  /** Keep `conn` for the next request to `origin` (closed instead when the pool is closed or full). */
  give(origin: string, conn: Conn): void {
    const list = this.#idle.get(origin) ?? [];
    if (this.#closed || list.length >= MAX_IDLE) return conn.close();
    list.push(conn);
    this.#idle.set(origin, list);
  }

  /** Close every idle connection; those in use close when their answer ends. */
  close(): void {
    this.#closed = true;
    for (const list of this.#idle.values()) for (const c of list) c.close();
    this.#idle.clear();
  }
}

/**
 * Whether {@link http1Fetch} may carry requests in this process: not when a
 * proxy is configured (`fetch` honours `HTTP_PROXY`, `HTTPS_PROXY`,
 * `ALL_PROXY`, any case), nor when `OCIPKG_HTTP1=0`, nor without permission
 * to read the environment.
 *
 * @param env the environment (default: the process's)
 * @returns true when it may
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { http1Usable } from "./http1.ts";
 * assert.equal(http1Usable({ HTTPS_PROXY: "http://proxy:3128" }), false);
 * assert.equal(http1Usable({ OCIPKG_HTTP1: "0" }), false);
 * assert.equal(http1Usable({}), true);
 * ```
 */
export function http1Usable(env?: Record<string, string>): boolean {
  try {
    env ??= Deno.env.toObject();
  } catch {
    return false; // no permission to read the environment: fetch's proxy is unknown
  }
  if (env.OCIPKG_HTTP1 === "0") return false;
  for (const k of Object.keys(env)) {
    if (/^(https?|all)_proxy$/i.test(k) && env[k] !== "") return false;
  }
  return true;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const enc = new TextEncoder();

/**
 * Bytes as ISO-8859-1 text, one character per byte: a head's obs-text
 * (0x80–0xff) stays a byte string `Headers` takes. (`TextDecoder("latin1")`
 * is windows-1252: 0x80 became `€`, which `Headers` refused.)
 */
function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.byteLength; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

/** A connection read through a small buffer for heads and chunk lines. */
class Conn {
  #conn: Deno.Conn;
  /** Bytes read from the socket since the request was sent ({@link Conn.sent}). */
  received = 0;
  #buf = new Uint8Array(16 * 1024);
  #start = 0;
  #end = 0;
  #closed = false;
  readonly host: string;

  constructor(conn: Deno.Conn, host: string) {
    this.#conn = conn;
    this.host = host;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* closed already */ }
  }

  async write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.byteLength) off += await this.#conn.write(bytes.subarray(off));
  }

  /** Send a request: what is received is counted from here. */
  async sent(bytes: Uint8Array): Promise<void> {
    this.received = 0;
    await this.write(bytes);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes buffered and not yet taken. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Read once into `into`: from the buffer when it holds bytes, else from the socket. */
  async readInto(into: Uint8Array): Promise<number | null> {
    if (this.#end > this.#start) {
      const n = Math.min(into.byteLength, this.#end - this.#start);
      into.set(this.#buf.subarray(this.#start, this.#start + n));
      this.#start += n;
      return n;
    }
    const n = await this.#conn.read(into);
    if (n !== null) this.received += n;
    return n;
  }

  /** Refill the buffer (keeping what is left): false at the connection's end. */
  async #fill(): Promise<boolean> {
    if (this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buf.byteLength) {
      const bigger = new Uint8Array(this.#buf.byteLength * 2);
      bigger.set(this.#buf.subarray(0, this.#end));
      this.#buf = bigger;
    }
    const n = await this.#conn.read(this.#buf.subarray(this.#end));
    if (n === null) return false;
    this.received += n;
    this.#end += n;
    return true;
  }

  /**
   * One line ending in CRLF (bare LF refused), without it, as latin1 text;
   * `budget` counts the bytes a head may still take.
   */
  async line(budget: { left: number }, what: string): Promise<string> {
    let scanned = 0; // bytes after #start known to hold no LF (a refill may move them)
    while (true) {
      const nl = this.#buf.subarray(this.#start + scanned, this.#end).indexOf(10);
      if (nl >= 0) {
        const at = this.#start + scanned + nl;
        const length = at + 1 - this.#start;
        budget.left -= length;
        if (budget.left < 0) throw this.#bad(`${what} over ${MAX_HEAD} bytes`);
        if (at === this.#start || this.#buf[at - 1] !== 13) {
          throw this.#bad(`${what} has a line not ended by CRLF`);
        }
        const text = latin1(this.#buf.subarray(this.#start, at - 1));
        this.#start = at + 1;
        return text;
      }
      scanned = this.#end - this.#start;
      if (scanned > budget.left) throw this.#bad(`${what} over ${MAX_HEAD} bytes`);
      if (!await this.#fill()) throw this.#bad(`closed the connection in the ${what}`);
    }
  }

  #bad(msg: string): RegistryError {
    return new RegistryError(`${this.host} ${msg}`, 0);
  }
}

interface Head {
  /** `1.0` or `1.1` */
  version: string;
  status: number;
  statusText: string;
  headers: Headers;
}

/** Read one response head; `budget` caps its bytes. */
async function readHead(c: Conn, budget: { left: number }): Promise<Head> {
  const status = await c.line(budget, "response head");
  const m = /^HTTP\/(1\.[01]) ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/.exec(status);
  if (!m) {
    throw new RegistryError(
      `${c.host} answered a malformed HTTP status line '${printableHead(status)}'`,
      0,
    );
  }
  const headers = new Headers();
  while (true) {
    const line = await c.line(budget, "response head");
    if (line === "") break;
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    const value = line.slice(colon + 1).replace(/^[\t ]+|[\t ]+$/g, "");
    if (!TOKEN.test(name) || hasControl(value)) {
      throw new RegistryError(
        `${c.host} answered a malformed header line '${printableHead(line)}'`,
        0,
      );
    }
    headers.append(name, value);
  }
  return { version: m[1]!, status: Number(m[2]), statusText: m[3] ?? "", headers };
}

/** A control byte other than a tab (a header value may hold none). */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

function printableHead(s: string): string {
  return s.slice(0, 60).replace(/[^\x20-\x7e]/g, "?");
}

/**
 * A new connection, TLS on it for https. The signal stops the connect too: a host that drops
 * packets holds a connect for minutes (`connectTls` takes no signal: TLS starts on the
 * connection made).
 */
async function connect(
  hostname: string,
  port: number,
  https: boolean,
  caCerts: string[] | undefined,
  signal: AbortSignal | undefined,
): Promise<Deno.Conn> {
  const tcp = await Deno.connect({ hostname, port, signal });
  if (!https) return tcp;
  try {
    return await Deno.startTls(tcp, { hostname, caCerts, alpnProtocols: ["http/1.1"] });
  } catch (e) {
    try {
      tcp.close();
    } catch { /* taken by startTls */ }
    throw e;
  }
}

/**
 * The answer's head after any interim (1xx) ones: a final status of 200–599,
 * no `Content-Encoding` (ocipkg asks for `identity`).
 */
async function readAnswer(c: Conn, url: URL, budget: { left: number }): Promise<Head> {
  let head: Head;
  for (let interim = 0;; interim++) {
    head = await readHead(c, budget);
    if (head.status >= 200) break;
    if (head.status === 101 || interim >= MAX_INTERIM) {
      throw new RegistryError(`${url.host} answered ${head.status} to a GET`, head.status);
    }
  }
  if (head.status > 599) {
    throw new RegistryError(`${url.host} answered status ${head.status}`, head.status);
  }
  const coding = head.headers.get("content-encoding");
  if (coding !== null && !/^identity$/i.test(coding.trim())) {
    throw new RegistryError(
      `${url.host} answered Content-Encoding '${printableHead(coding)}' to a request for identity`,
      head.status,
    );
  }
  return head;
}

/**
 * How the body is framed: its length, chunked, or to the connection's end.
 * Throws for framing that is ambiguous or unknown.
 */
function framing(c: Conn, head: Head, method: string): "none" | "chunked" | "close" | number {
  if (method === "HEAD" || head.status === 204 || head.status === 304) return "none";
  const te = head.headers.get("transfer-encoding");
  if (te !== null) {
    if (!/^chunked$/i.test(te.trim())) {
      throw new RegistryError(`${c.host} answered Transfer-Encoding '${printableHead(te)}'`, 0);
    }
    head.headers.delete("content-length"); // chunked framing wins (RFC 9112 6.3)
    return "chunked";
  }
  const cl = head.headers.get("content-length");
  if (cl === null) return "close";
  // repeated headers arrive joined by ", ": each must be the same length
  const values = cl.split(/\s*,\s*/);
  if (!values.every((v) => /^\d{1,16}$/.test(v)) || new Set(values.map(Number)).size !== 1) {
    throw new RegistryError(
      `${c.host} answered an invalid Content-Length '${printableHead(cl)}'`,
      0,
    );
  }
  const length = Number(values[0]);
  if (!Number.isSafeInteger(length)) {
    throw new RegistryError(`${c.host} answered a Content-Length too large '${values[0]}'`, 0);
  }
  if (values.length > 1) head.headers.set("content-length", String(length));
  return length;
}

/**
 * GET `url` over a connection of its own and answer a `Response` whose body
 * reads straight from the socket ({@link http1Body} gives those reads
 * without the stream). `init.signal` closes the connection: the request and
 * the body then fail with its reason. Only `GET` without a body; the
 * headers as given, `Host` and `Connection: close` added. An answer with a
 * `Content-Encoding` is not decoded: refused, as ocipkg asks for `identity`.
 *
 * @param url an http or https URL
 * @param init `headers` and `signal`
 * @param options CA certificates for https
 * @returns the answer, its body unread
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { http1Fetch } from "./http1.ts";
 * const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
 * const server = Deno.serve(listen, () => new Response("hello"));
 * const res = await http1Fetch(new URL(`http://127.0.0.1:${server.addr.port}/x`), {});
 * assert.equal(await res.text(), "hello");
 * await server.shutdown();
 * ```
 */
export async function http1Fetch(
  url: URL,
  init: { headers?: HeadersInit; signal?: AbortSignal | null; method?: string },
  options: Http1Options = {},
): Promise<Response> {
  const method = init.method ?? "GET";
  if (method !== "GET" && method !== "HEAD") throw new TypeError(`http1Fetch: ${method}`);
  const signal = init.signal ?? undefined;
  signal?.throwIfAborted();
  const https = url.protocol === "https:";
  if (!https && url.protocol !== "http:") throw new TypeError(`http1Fetch: ${url.protocol}`);
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port ? Number(url.port) : https ? 443 : 80;
  const pool = options.pool;
  const origin = `${url.protocol}//${url.host}`;
  let c: Conn | undefined;
  const onAbort = () => c?.close();
  signal?.addEventListener("abort", onAbort, { once: true });
  const unlisten = () => signal?.removeEventListener("abort", onAbort);
  const headers = new Headers(init.headers);
  let text = `${method} ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  for (const [k, v] of headers) {
    if (k === "host" || k === "connection") continue;
    text += `${k}: ${v}\r\n`;
  }
  text += pool ? "\r\n" : "connection: close\r\n\r\n";
  const request = enc.encode(text);
  let head: Head;
  let frame: ReturnType<typeof framing>;
  try {
    for (let fresh = false;; fresh = true) {
      // a kept connection first; a fresh one when there is none, or the kept one was dead
      c = fresh ? undefined : pool?.take(origin);
      const reused = c !== undefined;
      c ??= new Conn(await connect(hostname, port, https, options.caCerts, signal), url.host);
      if (signal?.aborted) c.close();
      try {
        await c.sent(request);
        head = await readAnswer(c, url, { left: MAX_HEAD });
        break;
      } catch (e) {
        // the server had closed the kept connection before it saw this request: once more
        if (reused && !signal?.aborted && c.received === 0) {
          c.close();
          continue;
        }
        throw e;
      }
    }
    frame = framing(c, head, method);
  } catch (e) {
    c?.close();
    unlisten();
    if (signal?.aborted) throw signal.reason;
    throw e;
  }
  // kept for the next request only after an answer read to its end, framed by its length or
  // chunked, with nothing after it, from an HTTP/1.1 server that did not say it closes
  const keep = pool !== undefined && frame !== "close" && head.version === "1.1" &&
    !/(^|,)\s*close\s*(,|$)/i.test(head.headers.get("connection") ?? "");
  const conn = c;
  const failed = (e: unknown): unknown => signal?.aborted ? signal.reason : e;
  let left = typeof frame === "number" ? frame : 0; // bytes of the body (or chunk) left
  let done = frame === "none" || frame === 0;
  let chunkEnded = frame === "chunked"; // a chunk's size line comes next
  const budget = { left: MAX_HEAD };
  // the body's end (`ok`: read to its end): the connection kept, or closed
  // once: a cancel after the end must not close a connection kept (another request's by then)
  let ended = false;
  const end = (ok: boolean) => {
    if (ended) return;
    ended = done = true;
    unlisten();
    if (ok && keep && conn.buffered === 0 && !conn.closed) pool!.give(origin, conn);
    else conn.close();
  };
  if (done) end(true);
  const nextChunk = async (): Promise<void> => {
    if (left === 0 && !chunkEnded) {
      // the CRLF after a chunk's data
      if (await conn.line(budget, "chunked body") !== "") {
        throw new RegistryError(`${url.host} answered a chunk longer than its size`, 0);
      }
    }
    const line = await conn.line(budget, "chunked body");
    budget.left = MAX_HEAD; // a size line's budget is its own
    const m = /^([0-9a-fA-F]{1,13})(?:[\t ]*;.*)?$/.exec(line);
    if (!m) {
      throw new RegistryError(
        `${url.host} answered a malformed chunk size '${printableHead(line)}'`,
        0,
      );
    }
    left = parseInt(m[1]!, 16);
    chunkEnded = false;
    if (left === 0) {
      // trailers, up to the empty line
      while (await conn.line(budget, "chunked body's trailers") !== "");
      end(true);
    }
  };
  const read = async (into: Uint8Array): Promise<ReadableStreamReadResult<Uint8Array>> => {
    try {
      if (!done && frame === "chunked" && (left === 0)) await nextChunk();
      if (done) return { done: true, value: into.subarray(0, 0) };
      const want = frame === "close" ? into.byteLength : Math.min(into.byteLength, left);
      const n = await conn.readInto(into.subarray(0, want));
      if (n === null) {
        if (frame === "close") {
          end(true);
          return { done: true, value: into.subarray(0, 0) };
        }
        throw new RegistryError(
          `${url.host} closed the connection ${left} bytes before the body's end`,
          0,
        );
      }
      if (frame !== "close") left -= n;
      if (typeof frame === "number" && left === 0) end(true);
      return { done: false, value: into.subarray(0, n) };
    } catch (e) {
      end(false);
      throw failed(e);
    }
  };
  const cancel = (_reason?: unknown): Promise<void> => {
    end(false);
    return Promise.resolve();
  };
  // only an answer that has no body by its framing gets none: an empty one is an empty
  // stream, as `fetch` gives (a reader of a blob then sees it end, not a missing body)
  const body = frame === "none" ? null : streamOfReads({
    read: async (into) => {
      const r = await read(into);
      return r.done ? null : r.value.byteLength;
    },
    cancel,
  }, { chunk: 64 * 1024 });
  const statusText = /^[\t\x20-\x7e]*$/.test(head.statusText) ? head.statusText : "";
  const res = new Response(body, { status: head.status, statusText, headers: head.headers });
  if (body) bodies.set(res, { read, cancel });
  return res;
}
