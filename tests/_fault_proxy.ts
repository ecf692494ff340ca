// A proxy in front of a real registry that injects faults a real one cannot
// produce: dropped connections, 429/503, wrong bytes, cross-origin redirects.

export interface FaultRules {
  /** First GET of this blob digest sends half of the bytes, then the connection dies. */
  dropBlobOnce?: string;
  /** Answer Range requests with 200 and the full body. */
  ignoreRange?: boolean;
  /** First request whose path contains this answers 429 with `Retry-After`. */
  tooManyOnce?: { match: string; retryAfter: string };
  /** Requests whose path contains `match` answer 503 this many times. */
  unavailable?: { match: string; times: number };
  /** Serve these bytes (same length, flipped) for this blob digest. */
  wrongBytes?: string;
  /** Redirect GETs of this blob to another origin. */
  redirectBlob?: { digest: string; to: string };
  /** The n-th PATCH (1-based) reaches the registry, but its answer is lost: the client gets 502. */
  losePatchReply?: number;
  /** The n-th streamed blob-upload PUT (no Content-Length; 1-based) reaches the registry, but its answer is lost: 502. */
  losePutReply?: number;
  /** GETs of this blob send half of the bytes, then stall (until the client goes away). */
  stallBlob?: string;
  /** Answer manifest GETs with this body and content type. */
  manifestBody?: { body: Uint8Array<ArrayBuffer>; contentType: string };
  /**
   * Pace every response body to this rate (per request, hence per
   * connection: requests on one keep-alive connection are sequential).
   */
  throttle?: { bytesPerSecond: number };
  /**
   * Pace every request body (an upload's PATCH or PUT) passed on to the
   * registry to this rate; the log entry's `sent`/`ended` then tell how much
   * of it was passed on and whether the client went away first.
   */
  throttleUploads?: { bytesPerSecond: number };
  /**
   * Requests of this method whose path contains `match` (only the `nth` such, 1-based, when
   * given) are held: `onHeld` is told, and they are answered 503 once the client goes away (seen
   * only for requests without a body; the entry then ends `cancelled`), after `ms` (default
   * 10 s; the entry then ends `done`), or at `release()`, `reset()` or `stop()` (the entry ends
   * `released`).
   * With `after`, the request is passed on first (the registry takes it) and its answer held.
   */
  hold?: {
    method: string;
    match: string;
    nth?: number;
    ms?: number;
    after?: boolean;
    onHeld?: (entry: LogEntry) => void;
  };
  /** The first GET of this blob whose Range starts at `start` sends half of its bytes, then dies. */
  dropRangeOnce?: { digest: string; start: number };
  /** GETs of this blob whose Range starts at `start` get these bytes flipped (same length). */
  corruptRange?: { digest: string; start: number };
  /**
   * Ranged answers (206) for this blob carry a Content-Range shifted by one
   * byte (only for the Range starting at `start`, when given).
   */
  wrongContentRange?: { digest: string; start?: number };
  /** Ranged answers for this blob are one byte longer than asked (an extra byte at the end). */
  rangeTooLong?: string;
  /**
   * Manifest HEADs answer this `Docker-Content-Digest` instead of the registry's; `null`: none
   * (a registry that does not send it).
   */
  headDigest?: string | null;
  /**
   * GETs of this blob (after a `dropBlobOnce`) are answered by `answer`, given
   * the whole blob and the request's Range header (undefined: none); it
   * returns undefined to pass the registry's answer on.
   */
  blobAnswer?: {
    digest: string;
    answer: (blob: Uint8Array<ArrayBuffer>, range: string | undefined) => Response | undefined;
  };
}

export interface LogEntry {
  method: string;
  path: string;
  status: number;
  range?: string;
  /** Which client sent the request: Deno's `fetch`, or ocipkg's `http1Fetch` (blob downloads). */
  client?: "fetch" | "http1";
  /**
   * With `throttle`: bytes of the answer's body sent, and how it ended
   * (`cancelled`: the client went away). With `throttleUploads`: the same of
   * the request's body, passed on to the registry.
   */
  sent?: number;
  ended?: "done" | "cancelled" | "released";
}

export interface Proxy {
  host: string;
  rules: FaultRules;
  log: LogEntry[];
  /** Let the held requests go (answered 503). */
  release(): void;
  /** Clear rules, log and one-shot state; let the held requests go. */
  reset(): void;
  stop(): Promise<void>;
}

export function startFaultProxy(upstream: string): Proxy {
  const rules: FaultRules = {};
  const log: LogEntry[] = [];
  let port = 0; // the kernel picks it as the server binds (no race with parallel tests)
  const ac = new AbortController();
  let dropped = false;
  let tooMany = false;
  let unavailable = 0;
  let patches = 0;
  let puts = 0;
  let droppedRange = false;
  let held = 0;
  const releases = new Set<() => void>();
  /** Hold a request as `rules.hold` says: until the client goes away, or its time is up. */
  const holdOn = async (req: Request, entry: LogEntry): Promise<Response> => {
    const h = rules.hold!;
    h.onHeld?.(entry);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let release = () => {};
    await new Promise<void>((done) => {
      timer = setTimeout(() => {
        entry.ended ??= "done";
        done();
      }, h.ms ?? 10_000);
      release = () => {
        entry.ended ??= "released";
        done();
      };
      releases.add(release);
      const gone = () => {
        entry.ended ??= "cancelled";
        done();
      };
      if (req.signal.aborted) gone();
      req.signal.addEventListener("abort", gone, { once: true });
    });
    clearTimeout(timer);
    releases.delete(release);
    await req.body?.cancel().catch(() => {});
    entry.status = 503;
    return new Response("held", { status: 503 });
  };
  const holds = (req: Request, path: string): boolean => {
    const h = rules.hold;
    return !!h && req.method === h.method && path.includes(h.match) &&
      (++held === h.nth || h.nth === undefined);
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      const url = new URL(req.url);
      const path = url.pathname + url.search;
      const entry: LogEntry = {
        method: req.method,
        path,
        status: 0,
        range: req.headers.get("range") ?? undefined,
        // Deno's fetch adds `accept-language: *` to every request; http1Fetch sends only the
        // headers it is given
        client: req.headers.has("accept-language") ? "fetch" : "http1",
      };
      log.push(entry);
      const answer = (r: Response) => {
        entry.status = r.status;
        return rules.throttle && r.body
          ? new Response(paced(r.body, rules.throttle.bytesPerSecond, entry), {
            status: r.status,
            headers: r.headers,
          })
          : r;
      };
      if (rules.tooManyOnce && !tooMany && path.includes(rules.tooManyOnce.match)) {
        tooMany = true;
        return answer(
          new Response("slow down", {
            status: 429,
            headers: { "retry-after": rules.tooManyOnce.retryAfter },
          }),
        );
      }
      if (
        rules.unavailable && unavailable < rules.unavailable.times &&
        path.includes(rules.unavailable.match)
      ) {
        unavailable++;
        return answer(new Response("unavailable", { status: 503 }));
      }
      const blob = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url.pathname)?.[1];
      if (req.method === "GET" && blob && rules.redirectBlob?.digest === blob) {
        return answer(
          new Response(null, {
            status: 307,
            headers: { location: `${rules.redirectBlob.to}${url.pathname}` },
          }),
        );
      }
      if (req.method === "GET" && url.pathname.includes("/manifests/") && rules.manifestBody) {
        return answer(
          new Response(rules.manifestBody.body, {
            headers: { "content-type": rules.manifestBody.contentType },
          }),
        );
      }
      const holding = holds(req, decodeURIComponent(path));
      if (holding && !rules.hold!.after) return await holdOn(req, entry);
      const headers = new Headers(req.headers);
      headers.delete("host");
      if (rules.ignoreRange) headers.delete("range");
      const up = await fetch(`http://${upstream}${path}`, {
        method: req.method,
        headers,
        body: rules.throttleUploads && req.body
          ? paced(req.body, rules.throttleUploads.bytesPerSecond, entry)
          : req.body,
        redirect: "manual",
      }).catch((e) => {
        // the client went away while its body was passed on: no one to answer
        if (entry.sent === undefined && !req.body) throw e;
        entry.ended ??= "cancelled";
        return undefined;
      });
      if (!up) return new Response(null, { status: 499 });
      if (holding) {
        await up.body?.cancel();
        return await holdOn(req, entry);
      }
      const lostPut = req.method === "PUT" && path.includes("/blobs/uploads/") &&
        !req.headers.has("content-length") && ++puts === rules.losePutReply;
      if ((req.method === "PATCH" && ++patches === rules.losePatchReply) || lostPut) {
        await up.body?.cancel();
        return answer(new Response("bad gateway", { status: 502 }));
      }
      const outHeaders = new Headers(up.headers);
      if (
        req.method === "HEAD" && url.pathname.includes("/manifests/") &&
        rules.headDigest !== undefined
      ) {
        if (rules.headDigest === null) outHeaders.delete("docker-content-digest");
        else outHeaders.set("docker-content-digest", rules.headDigest);
      }
      if (up.headers.get("location")) {
        outHeaders.set(
          "location",
          up.headers.get("location")!.replace(upstream, `127.0.0.1:${port}`),
        );
      }
      if (req.method === "GET" && blob && up.body && (rules.dropBlobOnce === blob && !dropped)) {
        dropped = true;
        const all = new Uint8Array(await up.arrayBuffer());
        // chunked encoding, so the aborted body ends without its last chunk
        outHeaders.delete("content-length");
        let first = true;
        const body = new ReadableStream<Uint8Array>({
          pull(c) {
            if (first) {
              first = false;
              c.enqueue(all.slice(0, all.length >> 1));
              return;
            }
            c.error(new Error("connection dropped by the fault proxy"));
          },
        });
        return answer(new Response(body, { status: up.status, headers: outHeaders }));
      }
      if (req.method === "GET" && blob && rules.blobAnswer?.digest === blob) {
        await up.body?.cancel();
        const plain = new Headers(headers);
        plain.delete("range");
        const whole = await fetch(`http://${upstream}${path}`, { headers: plain });
        const made = rules.blobAnswer.answer(
          new Uint8Array(await whole.arrayBuffer()),
          req.headers.get("range") ?? undefined,
        );
        if (made) return answer(made);
        const again = await fetch(`http://${upstream}${path}`, { headers });
        return answer(new Response(again.body, { status: again.status, headers: again.headers }));
      }
      const rangeStart = Number(/^bytes=(\d+)-/.exec(req.headers.get("range") ?? "")?.[1] ?? NaN);
      if (
        req.method === "GET" && blob && up.status === 206 && up.body &&
        rules.dropRangeOnce?.digest === blob && rules.dropRangeOnce.start === rangeStart &&
        !droppedRange
      ) {
        droppedRange = true;
        const all = new Uint8Array(await up.arrayBuffer());
        outHeaders.delete("content-length");
        let first = true;
        const body = new ReadableStream<Uint8Array>({
          pull(c) {
            if (first) {
              first = false;
              c.enqueue(all.slice(0, all.length >> 1));
              return;
            }
            c.error(new Error("connection dropped by the fault proxy"));
          },
        });
        return answer(new Response(body, { status: up.status, headers: outHeaders }));
      }
      if (
        req.method === "GET" && blob && up.status === 206 && up.body &&
        rules.corruptRange?.digest === blob && rules.corruptRange.start === rangeStart
      ) {
        const bytes = new Uint8Array(await up.arrayBuffer());
        for (let i = 0; i < bytes.length; i += 97) bytes[i] = bytes[i]! ^ 0x5a;
        return answer(new Response(bytes, { status: up.status, headers: outHeaders }));
      }
      if (
        req.method === "GET" && blob && up.status === 206 &&
        rules.wrongContentRange?.digest === blob &&
        (rules.wrongContentRange.start === undefined ||
          rules.wrongContentRange.start === rangeStart)
      ) {
        const m = /^bytes (\d+)-(\d+)\/(.*)$/.exec(up.headers.get("content-range") ?? "");
        if (m) {
          outHeaders.set(
            "content-range",
            `bytes ${Number(m[1]) + 1}-${Number(m[2]) + 1}/${m[3]}`,
          );
        }
        return answer(new Response(up.body, { status: up.status, headers: outHeaders }));
      }
      if (req.method === "GET" && blob && up.status === 206 && rules.rangeTooLong === blob) {
        const bytes = new Uint8Array(await up.arrayBuffer());
        const longer = new Uint8Array(bytes.length + 1);
        longer.set(bytes);
        outHeaders.delete("content-length");
        return answer(new Response(longer, { status: up.status, headers: outHeaders }));
      }
      if (req.method === "GET" && blob && rules.stallBlob === blob && up.body) {
        const all = new Uint8Array(await up.arrayBuffer());
        outHeaders.delete("content-length");
        let sent = false;
        const body = new ReadableStream<Uint8Array>({
          async pull(c) {
            if (!sent) {
              sent = true;
              c.enqueue(all.slice(0, all.length >> 1));
              return;
            }
            await new Promise(() => {}); // never more
          },
        });
        return answer(new Response(body, { status: up.status, headers: outHeaders }));
      }
      if (req.method === "GET" && blob && rules.wrongBytes === blob && up.body) {
        const bytes = new Uint8Array(await up.arrayBuffer());
        for (let i = 0; i < bytes.length; i += 97) bytes[i] = bytes[i]! ^ 0x5a;
        return answer(new Response(bytes, { status: up.status, headers: outHeaders }));
      }
      return answer(new Response(up.body, { status: up.status, headers: outHeaders }));
    },
  );
  port = server.addr.port;
  return {
    host: `127.0.0.1:${port}`,
    rules,
    log,
    release() {
      for (const release of releases) release();
    },
    reset() {
      patches = 0;
      puts = 0;
      for (const k of Object.keys(rules)) delete (rules as Record<string, unknown>)[k];
      log.length = 0;
      dropped = tooMany = droppedRange = false;
      unavailable = held = 0;
      for (const release of releases) release();
    },
    async stop() {
      for (const release of releases) release();
      ac.abort();
      await server.finished;
    },
  };
}

/**
 * Pass `body` on at most `bytesPerSecond`, in pieces of at most 64 KiB, each
 * sent when the rate allows it. (A request body's sender that goes away is
 * seen only once what it left in the sockets' buffers has been passed on.)
 */
function paced(
  body: ReadableStream<Uint8Array>,
  bytesPerSecond: number,
  entry: LogEntry,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let pending: Uint8Array | undefined;
  let sent = 0;
  let t0 = 0;
  entry.sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      if (!pending || pending.byteLength === 0) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } catch (e) {
          entry.ended = "cancelled"; // the body's sender went away
          throw e;
        }
        if (r.done) {
          entry.ended = "done";
          return c.close();
        }
        pending = r.value;
      }
      if (t0 === 0) t0 = performance.now();
      const piece = pending.subarray(0, 64 * 1024);
      pending = pending.subarray(piece.byteLength);
      const due = t0 + ((sent + piece.byteLength) / bytesPerSecond) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      sent += piece.byteLength;
      entry.sent = sent;
      c.enqueue(piece);
    },
    cancel: (reason) => {
      entry.ended = "cancelled";
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** A server on another origin that records request headers and serves blobs from `upstream`. */
export function startRecorder(
  upstream: string,
): { url: string; seen: Headers[]; stop(): Promise<void> } {
  let port = 0;
  const seen: Headers[] = [];
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      seen.push(req.headers);
      const url = new URL(req.url);
      // serve from the registry with the recorder's own access (test registries allow the test user)
      const up = await fetch(`http://${upstream}${url.pathname}`, {
        headers: { authorization: "Basic " + btoa("ocitest:s3cret-pass") },
      });
      return new Response(up.body, {
        status: up.status,
        headers: { "content-length": up.headers.get("content-length") ?? "" },
      });
    },
  );
  port = server.addr.port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    async stop() {
      ac.abort();
      await server.finished;
    },
  };
}
