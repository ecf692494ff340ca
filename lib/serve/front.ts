/**
 * The front door of `serve`: it accepts every client connection itself (TCP,
 * or TLS with `http/1.1`) and relays its bytes to the HTTP server behind it
 * (`Deno.serve` on a loopback port), so that a connection can be counted,
 * timed and closed one by one — which `Deno.serve` alone cannot do: it has no
 * connection limit, no timeout, and its graceful stop waits forever for a
 * client that stops reading.
 *
 * - **Connections**: at most `maxConnections` in all and `maxClientConnections`
 *   per client (its address, see `clients.ts`); one past either is answered
 *   `503`/`429` with `Retry-After` and closed. With HTTP/1.1 a connection
 *   carries one request at a time, so these also bound the requests in flight
 *   (an HTTP/2 preface is refused).
 * - **Stalls**: a connection is closed when, for `stallMs`, the client sends
 *   nothing while the server waits for its request body ({@link Connection.bodyWait}),
 *   or reads nothing of a response, or has no request in flight (idle
 *   keep-alive, slowly trickled headers).
 * - **Memory**: two 64 KiB relay buffers per connection; bytes are relayed
 *   only as fast as the other side takes them.
 * - **Stop** ({@link Front.stop}): no new connection; each one closes after
 *   the request in flight (idle ones at once); whatever is left at the
 *   deadline is closed.
 *
 * The server behind learns which connection a request came on from the port
 * it sees it come from ({@link Front.connection}); a request that did not come
 * through the front has none and is refused. A connection remembers why it
 * ended ({@link Connection.ended}: the client closed or reset it, or the front
 * cut it), so that a request whose body broke off is told apart from a
 * failure of the server.
 *
 * @module
 */
import { errorDocument } from "../transport/registry/error_codes.ts";
import { addressKey } from "./clients.ts";

/** Options of {@link Front.listen}. */
export interface FrontOptions {
  /** The address to listen on. */
  hostname: string;
  /** The port (0: a free one). */
  port: number;
  /** Serve TLS with this PEM certificate (chain) and key. */
  tls?: { cert: string; key: string };
  /** Most connections open at once. */
  maxConnections: number;
  /** Most connections one client holds open at once. */
  maxClientConnections: number;
  /** A connection stalled (or idle) this long is closed (ms). */
  stallMs: number;
}

const BUFFER = 64 * 1024;
/** How an HTTP/2 connection begins: `PRI `. */
const PREFACE = [0x50, 0x52, 0x49, 0x20];
/** Most refused connections being answered at once (past it they are closed unanswered). */
const MAX_REFUSING = 64;
/** Time a refused connection gets to take its answer (ms). */
const REFUSE_MS = 1000;

async function writeAll(to: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) done += await to.write(bytes.subarray(done));
}

/**
 * Why a connection ended while it was open: `client` — the client closed its
 * side or reset it; `stall` — the front cut it for a stall; `stop` — the front
 * closed it at the end of a stop's grace.
 */
export interface ConnectionEnd {
  /** Who ended it. */
  by: "client" | "stall" | "stop";
  /** In words, e.g. `the client closed the connection`, `the request body stalled`. */
  reason: string;
}

function closeQuietly(c: Deno.Conn | undefined): void {
  try {
    c?.close();
  } catch { /* closed */ }
}

/**
 * One client connection and its relay to the server behind: what the server
 * tells it (a request began or ended, the request's body is awaited) and
 * what the front checks (stalls).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Connection } from "./front.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const conn = new Connection(await listener.accept(), () => {});
 * assert.equal(conn.client, "127.0.0.1");
 * const now = performance.now();
 * assert.equal(conn.stalled(now, 1000), undefined);
 * assert.equal(conn.stalled(now + 5000, 1000), "idle"); // no request for 1 s
 * conn.begin(); // a request in flight...
 * assert.equal(conn.stalled(now + 5000, 1000), undefined);
 * conn.bodyWait(true); // ...waits for its body
 * assert.equal(conn.stalled(performance.now() + 5000, 1000), "the request body stalled");
 * conn.close();
 * await conn.closed;
 * client.close();
 * listener.close();
 * ```
 */
export class Connection {
  /** The client's key (its address, see `addressKey`). */
  readonly client: string;
  /** The client's address. */
  readonly remote: Deno.NetAddr;
  /** Settles when the connection is closed. */
  readonly closed: Promise<void>;
  #conn: Deno.Conn;
  #backend: Deno.Conn | undefined;
  #onClose: (c: Connection) => void;
  #done: () => void;
  #active = 0;
  #idleSince = performance.now();
  #bodyWaitSince = 0;
  #writeSince = 0;
  #draining = false;
  #backendShut = false;
  #isClosed = false;
  #ended: ConnectionEnd | undefined;

  /**
   * @param conn the client's connection
   * @param onClose called once, when it closes
   */
  constructor(conn: Deno.Conn, onClose: (c: Connection) => void) {
    this.#conn = conn;
    this.remote = conn.remoteAddr as Deno.NetAddr;
    this.client = addressKey(this.remote.hostname);
    this.#onClose = onClose;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.closed = promise;
    this.#done = resolve;
  }

  /** Requests in flight on it. */
  get active(): number {
    return this.#active;
  }

  /** A request began (the server calls this). */
  begin(): void {
    this.#active++;
  }

  /** A request's response was sent (the server calls this). */
  end(): void {
    this.#active = Math.max(0, this.#active - 1);
    if (this.#active > 0) return;
    this.#idleSince = performance.now();
    if (this.#draining) this.#shutBackend();
  }

  /**
   * The server waits for the request body (`true`) or got bytes of it (`false`).
   * @param waiting whether it waits
   */
  bodyWait(waiting: boolean): void {
    this.#bodyWaitSince = waiting ? performance.now() : 0;
  }

  /** No new request: close after the one in flight (at once when there is none). */
  drain(): void {
    this.#draining = true;
    if (this.#active === 0) this.#shutBackend();
  }

  /** Why it ended, once the client closed or reset it or the front cut it (the first of these). */
  get ended(): ConnectionEnd | undefined {
    return this.#ended;
  }

  /**
   * Close it now, saying why (see {@link Connection.ended}).
   * @param by `stall` or `stop`
   * @param reason in words
   */
  cut(by: "stall" | "stop", reason: string): void {
    if (!this.#isClosed) this.#ended ??= { by, reason };
    this.close();
  }

  /** Close it now (idempotent). */
  close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    closeQuietly(this.#conn);
    closeQuietly(this.#backend);
    this.#onClose(this);
    this.#done();
  }

  /**
   * Why it should be closed now, if it should.
   * @param now `performance.now()`
   * @param stallMs the stall limit
   * @returns the reason, or undefined
   */
  stalled(now: number, stallMs: number): string | undefined {
    if (this.#writeSince && now - this.#writeSince > stallMs) return "the client reads nothing";
    if (this.#bodyWaitSince && now - this.#bodyWaitSince > stallMs) {
      return "the request body stalled";
    }
    if (this.#active === 0 && now - this.#idleSince > stallMs) return "idle";
    return undefined;
  }

  /**
   * Relay until either side closes.
   * @param backendPort the server behind (on 127.0.0.1)
   * @param register called with the port the server will see this connection come from
   */
  async relay(backendPort: number, register: (port: number) => void): Promise<void> {
    try {
      this.#backend = await Deno.connect({ hostname: "127.0.0.1", port: backendPort });
    } catch {
      this.close();
      return;
    }
    if (this.#isClosed) {
      closeQuietly(this.#backend);
      return;
    }
    register((this.#backend.localAddr as Deno.NetAddr).port);
    if (this.#draining) this.#shutBackend();
    await Promise.all([this.#up(this.#backend), this.#down(this.#backend)]);
  }

  /** Client → server. */
  async #up(backend: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(BUFFER);
    // HTTP/2 with prior knowledge (`PRI * HTTP/2.0…`) would carry many requests on one connection
    let seen = 0;
    let preface = true;
    try {
      while (true) {
        let n: number | null;
        try {
          n = await this.#conn.read(buf);
        } catch (e) {
          // a read fails on its own when the client resets the connection; after close() it is ours
          if (!this.#isClosed) {
            this.#ended ??= { by: "client", reason: "the client reset the connection" };
          }
          throw e;
        }
        if (n === null) {
          this.#ended ??= { by: "client", reason: "the client closed the connection" };
          this.#shutBackend(); // the client sends no more
          return;
        }
        for (let i = 0; seen < PREFACE.length && i < n; i++, seen++) {
          if (buf[i] !== PREFACE[seen]) preface = false;
        }
        if (preface && seen === PREFACE.length) break;
        if (this.#backendShut) continue; // draining: no new request is passed on
        await writeAll(backend, buf.subarray(0, n));
      }
    } catch { /* either side went away */ }
    this.close();
  }

  /** Server → client. */
  async #down(backend: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(BUFFER);
    try {
      while (true) {
        const n = await backend.read(buf);
        if (n === null) break;
        this.#writeSince = performance.now();
        await writeAll(this.#conn, buf.subarray(0, n));
        this.#writeSince = 0;
      }
    } catch { /* either side went away */ }
    this.close();
  }

  /** Tell the server no request follows: it closes the connection after the response in flight. */
  #shutBackend(): void {
    if (this.#backendShut) return;
    this.#backendShut = true;
    if (!this.#backend) return; // relay() shuts it once connected
    this.#backend.closeWrite().catch(() => this.close());
  }
}

/**
 * The listening front of `serve`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Front } from "./front.ts";
 * const front = Front.listen({
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   maxConnections: 8,
 *   maxClientConnections: 2,
 *   stallMs: 30_000,
 * });
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (_req, info) => {
 *   const conn = front.connection(info.remoteAddr.port); // undefined: not through the front
 *   return new Response(conn ? `hello ${conn.client}` : "who?", { status: conn ? 200 : 403 });
 * });
 * front.start(server.addr.port);
 * const res = await fetch(`http://127.0.0.1:${front.addr.port}/`);
 * assert.equal(await res.text(), "hello 127.0.0.1");
 * await front.stop(1000); // nothing in flight: at once
 * await server.shutdown();
 * ```
 */
export class Front {
  #listener: Deno.Listener;
  #options: FrontOptions;
  #conns = new Set<Connection>();
  #byPort = new Map<number, Connection>();
  #ports = new Map<Connection, number>();
  #perClient = new Map<string, number>();
  #refusing = 0;
  #stopping = false;
  #empty = Promise.withResolvers<void>();
  #hurry = Promise.withResolvers<void>();
  #sweeper: ReturnType<typeof setInterval> | undefined;

  private constructor(listener: Deno.Listener, options: FrontOptions) {
    this.#listener = listener;
    this.#options = options;
  }

  /**
   * Listen (connections wait until {@link Front.start}).
   * @param options address, TLS and limits
   * @returns the front
   * @throws what `Deno.listen`/`Deno.listenTls` throw (the address is in use, …)
   */
  static listen(options: FrontOptions): Front {
    const { hostname, port, tls } = options;
    const listener = tls
      ? Deno.listenTls({
        hostname,
        port,
        cert: tls.cert,
        key: tls.key,
        alpnProtocols: ["http/1.1"],
      })
      : Deno.listen({ hostname, port });
    return new Front(listener, options);
  }

  /** Where it listens. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr as Deno.NetAddr;
  }

  /** Connections open. */
  get count(): number {
    return this.#conns.size;
  }

  /**
   * Start accepting connections and relaying them to the server behind.
   * @param backendPort the server's port on 127.0.0.1
   */
  start(backendPort: number): void {
    const every = Math.max(10, Math.min(1000, this.#options.stallMs / 4));
    this.#sweeper = setInterval(() => this.#sweep(), every);
    Deno.unrefTimer(this.#sweeper);
    this.#accept(backendPort);
  }

  /**
   * The connection a request came on.
   * @param port the request's remote port, as the server behind sees it
   * @returns the connection, or undefined when the request did not come through the front
   */
  connection(port: number): Connection | undefined {
    return this.#byPort.get(port);
  }

  /**
   * Stop: accept no more connections, close each one after the request in
   * flight, and at the deadline close whatever is left.
   * @param graceMs time given to the requests in flight
   */
  async stop(graceMs: number): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      try {
        this.#listener.close();
      } catch { /* closed */ }
      for (const c of this.#conns) c.drain();
      if (this.#conns.size === 0) this.#empty.resolve();
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
    await Promise.race([this.#empty.promise, deadline, this.#hurry.promise]);
    clearTimeout(timer);
    for (const c of this.#conns) c.cut("stop", "the registry stopped");
    clearInterval(this.#sweeper);
  }

  /** End the grace of a {@link Front.stop} in progress now. */
  hurry(): void {
    this.#hurry.resolve();
  }

  async #accept(backendPort: number): Promise<void> {
    while (!this.#stopping) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#stopping || e instanceof Deno.errors.BadResource) return;
        // out of file descriptors and the like: let connections close, then accept again
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      this.#admit(conn, backendPort);
    }
  }

  #admit(conn: Deno.Conn, backendPort: number): void {
    const { maxConnections, maxClientConnections } = this.#options;
    const c = new Connection(conn, (closed) => this.#closed(closed));
    const mine = this.#perClient.get(c.client) ?? 0;
    if (this.#stopping) {
      this.#refuse(conn, 503, "the registry is shutting down");
      return;
    }
    if (this.#conns.size >= maxConnections) {
      this.#refuse(conn, 503, `the registry has ${maxConnections} connections open, its most`);
      return;
    }
    if (mine >= maxClientConnections) {
      this.#refuse(
        conn,
        429,
        `client ${c.client} has ${mine} connections open, the most one client may`,
      );
      return;
    }
    this.#conns.add(c);
    this.#perClient.set(c.client, mine + 1);
    c.relay(backendPort, (port) => {
      this.#byPort.set(port, c);
      this.#ports.set(c, port);
    }).catch(() => c.close());
  }

  #closed(c: Connection): void {
    if (!this.#conns.delete(c)) return;
    const port = this.#ports.get(c);
    if (port !== undefined) this.#byPort.delete(port);
    this.#ports.delete(c);
    const left = (this.#perClient.get(c.client) ?? 1) - 1;
    if (left > 0) this.#perClient.set(c.client, left);
    else this.#perClient.delete(c.client);
    if (this.#stopping && this.#conns.size === 0) this.#empty.resolve();
  }

  /** Answer a connection that is not served (briefly, in the background), then close it. */
  #refuse(conn: Deno.Conn, status: 429 | 503, message: string): void {
    if (this.#refusing >= MAX_REFUSING) {
      closeQuietly(conn);
      return;
    }
    this.#refusing++;
    const body = errorDocument("TOOMANYREQUESTS", message);
    const length = new TextEncoder().encode(body).byteLength;
    const text =
      `HTTP/1.1 ${status} ${status === 429 ? "Too Many Requests" : "Service Unavailable"}\r\n` +
      `content-type: application/json\r\ncontent-length: ${length}\r\nretry-after: 1\r\n` +
      `connection: close\r\n\r\n${body}`;
    const timer = setTimeout(() => closeQuietly(conn), REFUSE_MS);
    (async () => {
      try {
        await writeAll(conn, new TextEncoder().encode(text));
        await conn.closeWrite();
        // read what the client sent until it closes: closing with unread bytes would reset the
        // connection before the client reads the answer
        const sink = new Uint8Array(4096);
        while (await conn.read(sink) !== null) { /* discard */ }
      } catch { /* gone */ }
    })().finally(() => {
      clearTimeout(timer);
      closeQuietly(conn);
      this.#refusing--;
    });
  }

  #sweep(): void {
    const now = performance.now();
    for (const c of this.#conns) {
      const why = c.stalled(now, this.#options.stallMs);
      if (why) c.cut("stall", why);
    }
  }
}
