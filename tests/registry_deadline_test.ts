// A registry that holds ocipkg too long: the deadline a request's attempts
// share (a registry that accepts and never answers, a manifest whose body
// stalls, refused connections, Retry-After), the low-speed limit over a
// sliding window (a blob that trickles is cut, a slow but steady one is not),
// and the deadline the stalls of one download share across its resumptions.
// The registry is real (`ocipkg serve`, in-process) behind a pacing proxy;
// only a server that never answers is a fake. Tests assert on what the
// servers saw (connections, requests), never on wall time.
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import {
  buildArtifact,
  copy,
  type Descriptor,
  fetchBytes,
  getImage,
  ImageName,
  MemoryTarget,
  RegistryClient,
  RegistryError,
  RegistryTarget,
  type RegistryTargetOptions,
  RegistryTimeoutError,
  type RetryInfo,
  serve,
  Store,
  walkDirectory,
  withTarget,
} from "./_internal.ts";
import { runCli, tempDir } from "./_helpers.ts";
import { pause, startHttp, startRaw } from "./_hostile_server.ts";

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Cleanups of one test, run in reverse at its end. */
type Defer = (f: () => unknown) => void;

function scoped(fn: (defer: Defer) => Promise<void>): () => Promise<void> {
  return async () => {
    const cleanups: (() => unknown)[] = [];
    try {
      await fn((f) => cleanups.push(f));
    } finally {
      for (const f of cleanups.reverse()) await f();
    }
  };
}

/** Expect `fn` to fail with `cls`, in one printable line naming every culprit. */
async function fails<E extends Error>(
  fn: () => Promise<unknown>,
  cls: new (...args: never[]) => E,
  ...culprits: string[]
): Promise<E> {
  const e = await assertRejects(fn, cls) as E;
  for (const c of culprits) assertStringIncludes(e.message, c);
  assert(!CONTROL.test(e.message), `not one printable line: ${JSON.stringify(e.message)}`);
  return e;
}

// ---------------------------------------------------------------------------
// A real registry, and a proxy in front of it that paces blob bodies

async function startServe(defer: Defer) {
  const root = await tempDir();
  const s = await serve({ root, addr: "127.0.0.1:0", log: () => {} });
  defer(async () => {
    await s.close();
    await Deno.remove(root, { recursive: true });
  });
  return s;
}

/** An ocipkg artifact `org/pkg:1` with one incompressible file of `size` bytes, pushed to `host`. */
async function pushImage(host: string, size: number) {
  const dir = await tempDir();
  try {
    await Deno.mkdir(join(dir, "lib"));
    await Deno.writeFile(
      join(dir, "lib", "libfoo.a"),
      crypto.getRandomValues(new Uint8Array(size)),
    );
    const mem = new MemoryTarget();
    const manifest = await buildArtifact(
      mem,
      [await walkDirectory(dir)],
      ImageName.parse(`${host}/org/pkg:1`),
    );
    await withTarget(
      new RegistryTarget(host, "org/pkg", { credential: null }),
      (dst) => copy(mem, dst, { dstRef: "1" }),
    );
    const m = JSON.parse(new TextDecoder().decode(await fetchBytes(mem, manifest)));
    return { manifest, layer: m.layers[0] as Descriptor };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** How the proxy sends a blob body: `drip` bytes every `everyMs`, or the first `share` of it, then nothing. */
type Pacing = { drip: number; everyMs: number } | { stallAfter: number };

interface Pacer {
  host: string;
  /** Requests seen: method, path, Range. */
  log: { method: string; path: string; range: string | null }[];
  stop(): Promise<void>;
}

/** A proxy in front of `upstream` that paces the bodies `pace` picks (the others pass as they are). */
function startPacer(upstream: string, pace: (req: Request, url: URL) => Pacing | undefined): Pacer {
  const ac = new AbortController();
  const log: Pacer["log"] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      const url = new URL(req.url);
      log.push({ method: req.method, path: url.pathname, range: req.headers.get("range") });
      const headers = new Headers(req.headers);
      headers.delete("host");
      const up = await fetch(`http://${upstream}${url.pathname}${url.search}`, {
        method: req.method,
        headers,
        body: req.body,
        redirect: "manual",
      });
      const rule = pace(req, url);
      if (!rule || !up.body) {
        return new Response(up.body, { status: up.status, headers: up.headers });
      }
      const all = new Uint8Array(await up.arrayBuffer());
      const out = new Headers(up.headers);
      out.delete("content-length"); // chunked: a body cut off is seen as broken
      const gone = new AbortController(); // the client went away
      const until = AbortSignal.any([ac.signal, gone.signal]);
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          try {
            if ("drip" in rule) {
              await pause(rule.everyMs, until);
              if (until.aborted || sent >= all.length) return c.close();
              c.enqueue(all.slice(sent, sent + rule.drip));
              sent += rule.drip;
              return;
            }
            const share = Math.floor(all.length * rule.stallAfter);
            if (sent < share) {
              c.enqueue(all.slice(0, share));
              sent = share;
              return;
            }
            await pause(60_000, until); // nothing more, until the client or the proxy goes
            c.close();
          } catch { /* cancelled meanwhile */ }
        },
        cancel() {
          gone.abort();
        },
      }, { highWaterMark: 0 });
      return new Response(body, { status: up.status, headers: out });
    },
  );
  return {
    host: `127.0.0.1:${server.addr.port}`,
    log,
    async stop() {
      ac.abort();
      await server.finished;
    },
  };
}

const blobGets = (p: Pacer, layer: Descriptor) =>
  p.log.filter((r) => r.method === "GET" && r.path.endsWith(`/blobs/${layer.digest}`));

async function store(defer: Defer): Promise<Store> {
  const dir = await tempDir();
  defer(() => Deno.remove(dir, { recursive: true }));
  return new Store(dir);
}

// ---------------------------------------------------------------------------
// 1. The attempts of a request share one deadline

Deno.test(
  "deadline: a registry that accepts and never answers gets two connections, not five",
  scoped(async (defer) => {
    // a fault a real registry cannot produce: the TCP connection is accepted, then silence
    const raw = startRaw((_conn, _head, signal) => pause(60_000, signal));
    defer(() => raw.stop());
    const retries: RetryInfo[] = [];
    const client = new RegistryClient(raw.host, {
      credential: null,
      connectTimeoutMs: 1000, // the attempts share 1.5 s
      backoffMs: 1,
      maxAttempts: 5,
      onRetry: (r) => retries.push(r),
    });
    defer(() => client.close());
    const e = await fails(
      () => client.request({ method: "GET", url: "/v2/", what: "registry" }),
      RegistryTimeoutError,
      raw.host,
      "did not answer within 1 s, nor by the 1.5 s deadline the attempts of a request share",
      "(attempt 2)",
    );
    assertEquals(e.kind, "connect");
    assertEquals(raw.connections, 2);
    assertEquals(retries.length, 1);

    // `get` (five attempts by default) connects twice too, and leaves the store empty
    const before = raw.connections;
    const s = await store(defer);
    await fails(
      () =>
        getImage(`${raw.host}/org/pkg:1`, {
          credential: null,
          connectTimeoutMs: 1000,
          backoffMs: 1,
          store: s,
        }),
      RegistryTimeoutError,
      raw.host,
      "did not answer within 1 s",
    );
    assertEquals(raw.connections - before, 2);
  }),
);

Deno.test(
  "deadline: a manifest whose body stalls after the headers is asked for twice, the second time until the deadline",
  scoped(async (defer) => {
    let manifestGets = 0;
    const srv = startHttp((_req, url) => {
      if (!url.pathname.includes("/manifests/")) return new Response(null, { status: 404 });
      manifestGets++;
      // headers, then nothing (until the server stops)
      const body = new ReadableStream<Uint8Array>({
        pull: () => pause(60_000, srv.signal),
      });
      return new Response(body, {
        headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
      });
    });
    defer(() => srv.stop());
    const client = new RegistryClient(srv.host, {
      credential: null,
      connectTimeoutMs: 1000, // the attempts share 1.5 s
      idleTimeoutMs: 1000,
      backoffMs: 1,
      maxAttempts: 5,
    });
    defer(() => client.close());
    const e = await fails(
      () =>
        client.requestBytes(
          { method: "GET", url: "/v2/org/pkg/manifests/1", what: "manifest" },
          1 << 20,
          "manifest",
        ),
      RegistryTimeoutError,
      srv.host,
      "did not finish answering by the 1.5 s deadline the attempts of a request share (attempt 2)",
    );
    assertEquals(e.kind, "total");
    assertEquals(manifestGets, 2);
  }),
);

Deno.test(
  "deadline: a connection refused by a loopback registry fails at once, asking whether one runs",
  scoped(async (defer) => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const host = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
    listener.close(); // nothing listens there now: connections are refused
    const retries: RetryInfo[] = [];
    const client = new RegistryClient(host, {
      credential: null,
      connectTimeoutMs: 1000,
      backoffMs: 20,
      maxAttempts: 4,
      onRetry: (r) => retries.push(r),
    });
    defer(() => client.close());
    await fails(
      () => client.request({ method: "GET", url: "/v2/", what: "registry" }),
      RegistryError,
      `cannot reach ${host}: connection refused (is a registry running on ${host}?)`,
    );
    // nothing listens on this machine's port: no retry would start a registry
    assertEquals(retries, []);
  }),
);

Deno.test(
  "deadline: an answer counts it again — Retry-After waits longer than the deadline are honoured as before",
  scoped(async (defer) => {
    let gets = 0;
    const srv = startHttp(() =>
      ++gets <= 2
        ? new Response("busy", { status: 503, headers: { "retry-after": "1" } })
        : Response.json({})
    );
    defer(() => srv.stop());
    const client = new RegistryClient(srv.host, {
      credential: null,
      connectTimeoutMs: 200, // a 0.3 s deadline, shorter than each wait asked for
      backoffMs: 1,
      retryBudgetMs: 5000,
    });
    defer(() => client.close());
    const res = await client.request({ method: "GET", url: "/v2/", what: "registry" });
    assertEquals(await res.json(), {});
    assertEquals(gets, 3);
  }),
);

// ---------------------------------------------------------------------------
// 2. The low-speed limit

/** Small limits: the low-speed window is 2 s. */
const SLOW: RegistryTargetOptions = {
  credential: null,
  speedLimit: 1024,
  speedTimeMs: 2000,
  backoffMs: 1,
};

Deno.test(
  "speed limit: a blob that trickles is cut once a window passes below the limit, naming the host and the rate; not resumed",
  scoped(async (defer) => {
    const reg = await startServe(defer);
    const { layer } = await pushImage(reg.addr, 64 * 1024);
    // 16 bytes every 50 ms: ~320 bytes/s, never silent long enough for the idle timeout
    const proxy = startPacer(
      reg.addr,
      (req, url) =>
        req.method === "GET" && url.pathname.endsWith(layer.digest)
          ? { drip: 16, everyMs: 50 }
          : undefined,
    );
    defer(() => proxy.stop());
    const s = await store(defer);
    const e = await fails(
      () => getImage(`${proxy.host}/org/pkg:1`, { ...SLOW, store: s }),
      RegistryTimeoutError,
      proxy.host,
      "bytes/s), below the speed limit of 1024 bytes/s over 2 s",
    );
    assertEquals(e.kind, "rate");
    const rate = Number(/\((\d+(?:\.\d+)?) bytes\/s\)/.exec(e.message)?.[1]);
    assert(rate > 0 && rate < 1024, `measured rate in ${e.message}`);
    assertEquals(blobGets(proxy, layer).length, 1, "neither retried nor resumed");
  }),
);

Deno.test(
  "speed limit: a slow but steady blob keeps going to the end",
  scoped(async (defer) => {
    const reg = await startServe(defer);
    const { layer } = await pushImage(reg.addr, 32 * 1024);
    // 512 bytes every 50 ms: ~10 KiB/s, ten times the limit, for about 3 s (more than a window)
    const proxy = startPacer(
      reg.addr,
      (req, url) =>
        req.method === "GET" && url.pathname.endsWith(layer.digest)
          ? { drip: 512, everyMs: 50 }
          : undefined,
    );
    defer(() => proxy.stop());
    const s = await store(defer);
    const r = await getImage(`${proxy.host}/org/pkg:1`, { ...SLOW, store: s });
    assertEquals(r.status, "installed");
    assertEquals((await Deno.stat(join(r.dir, "lib", "libfoo.a"))).size, 32 * 1024);
    assertEquals(blobGets(proxy, layer).length, 1);
  }),
);

Deno.test(
  "speed limit: --speed-limit and --speed-time (and OCIPKG_SPEED_*) reach the client; bad values are usage errors",
  scoped(async (defer) => {
    const reg = await startServe(defer);
    const { layer } = await pushImage(reg.addr, 64 * 1024);
    const proxy = startPacer(
      reg.addr,
      (req, url) =>
        req.method === "GET" && url.pathname.endsWith(layer.digest)
          ? { drip: 16, everyMs: 50 }
          : undefined,
    );
    defer(() => proxy.stop());
    const dataHome = await tempDir();
    defer(() => Deno.remove(dataHome, { recursive: true }));
    const r = await runCli(["get", `${proxy.host}/org/pkg:1`, "--speed-limit", "1K"], {
      dataHome,
      env: { OCIPKG_SPEED_TIME: "1" },
    });
    assert(r.code !== 0, r.stdout);
    assertStringIncludes(r.stderr, proxy.host);
    assertStringIncludes(r.stderr, "below the speed limit of 1024 bytes/s over 1 s");
    for (const [flag, value] of [["--speed-time", "0"], ["--speed-limit", "fast"]]) {
      const bad = await runCli(["get", `${proxy.host}/org/pkg:1`, flag!, value!], { dataHome });
      assertEquals(bad.code, 2, bad.stderr);
      assertStringIncludes(bad.stderr, `invalid ${flag} `);
      assertStringIncludes(bad.stderr, `'${value}'`);
    }
  }),
);

// ---------------------------------------------------------------------------
// 3. The stalls of one download share a deadline

Deno.test(
  "stalls: a blob that stalls on every connection is resumed once, then given up (1.5 × the idle timeout in all)",
  scoped(async (defer) => {
    const reg = await startServe(defer);
    const { layer } = await pushImage(reg.addr, 64 * 1024);
    // every answer (the resumed ones with Range too) sends a quarter of its bytes, then nothing
    const proxy = startPacer(
      reg.addr,
      (req, url) =>
        req.method === "GET" && url.pathname.endsWith(layer.digest)
          ? { stallAfter: 0.25 }
          : undefined,
    );
    defer(() => proxy.stop());
    const s = await store(defer);
    const e = await fails(
      () =>
        getImage(`${proxy.host}/org/pkg:1`, {
          credential: null,
          idleTimeoutMs: 500, // the stalls of one download share 0.75 s
          resumeAttempts: 5,
          store: s,
        }),
      RegistryTimeoutError,
      proxy.host,
      "sent no data for 0.5 s; the download has stalled",
      "in all, over the 0.75 s one download may",
      "gave up after 1 resumed downloads",
    );
    assertEquals(e.kind, "rate");
    const gets = blobGets(proxy, layer);
    assertEquals(gets.length, 2, "resumed once, not five times");
    assert(gets[1]!.range?.startsWith("bytes="), "the resumption asks for the rest");
  }),
);
