// http1Fetch, the HTTP/1.1 client of large blob downloads: every byte of an
// answer is hostile. Raw servers send exact bytes; a TLS server checks the CA
// path; the bytes of good answers come back whole, in place.
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import {
  http1Body,
  http1Fetch,
  Http1Pool,
  http1Usable,
  MAX_HEAD,
} from "../lib/transport/registry/http1.ts";
import { RegistryError } from "./_internal.ts";
import { startRaw } from "./_hostile_server.ts";
import { makeTls, type Registry, startRegistry } from "./_registry.ts";
import { runCli, tempDir } from "./_helpers.ts";
import { type Proxy, startFaultProxy } from "./_fault_proxy.ts";
import {
  getImage,
  OciArchive,
  OciDir,
  packDirectory,
  pullImage,
  pushImage,
  Store,
  VerificationError,
} from "../mod.ts";
import type { Descriptor } from "./_internal.ts";
import { DirectWriter, fileSystemOf } from "../lib/util/direct_write.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";

const enc = new TextEncoder();

/** A server that answers every request with `answer` (bytes or text), then closes. */
async function answering(
  answer: string | Uint8Array,
  fn: (url: URL) => Promise<void>,
): Promise<string[]> {
  const heads: string[] = [];
  const server = startRaw(async (conn, head) => {
    heads.push(head);
    const bytes = typeof answer === "string" ? enc.encode(answer) : answer;
    for (let off = 0; off < bytes.byteLength;) off += await conn.write(bytes.subarray(off));
  });
  try {
    await fn(new URL(`http://${server.host}/v2/x/blobs/sha256:00`));
  } finally {
    await server.stop();
  }
  return heads;
}

const OK_CASES: [string, string, string][] = [
  ["Content-Length", "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", "hello"],
  [
    "chunked, with extensions and trailers",
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" +
    "3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nx-trailer: y\r\n\r\n",
    "hello",
  ],
  [
    "chunked wins over a Content-Length",
    "HTTP/1.1 200 OK\r\ncontent-length: 99\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "hello",
  ],
  ["to the connection's end", "HTTP/1.1 200 OK\r\n\r\nhello", "hello"],
  [
    "after a 100 Continue",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
    "hello",
  ],
  [
    "repeated equal lengths",
    "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\nhello",
    "hello",
  ],
  ["HTTP/1.0, no reason phrase", "HTTP/1.0 200\r\ncontent-length: 5\r\n\r\nhello", "hello"],
  ["an empty body", "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", ""],
];

for (const [name, answer, body] of OK_CASES) {
  Deno.test(`http1: reads a body framed by ${name}`, async () => {
    const heads = await answering(answer, async (url) => {
      const res = await http1Fetch(url, { headers: { authorization: "Bearer t" } });
      assertEquals(res.status, 200);
      assertEquals(await res.text(), body);
    });
    // the request: the path, the headers given, Host, and a connection of its own
    assert(heads[0]!.startsWith("GET /v2/x/blobs/sha256:00 HTTP/1.1\r\n"), heads[0]);
    assertStringIncludes(heads[0]!, "authorization: Bearer t\r\n");
    assertStringIncludes(heads[0]!, "connection: close\r\n");
    assertStringIncludes(heads[0]!, "host: 127.0.0.1:");
  });
}

const BAD_CASES: [string, string | Uint8Array, RegExp][] = [
  [
    "a malformed status line",
    "HTTP/2 200 OK\r\n\r\n",
    /malformed HTTP status line 'HTTP\/2 200 OK'/,
  ],
  ["a status of 600", "HTTP/1.1 600 No\r\ncontent-length: 0\r\n\r\n", /status 600/],
  ["101 Switching Protocols", "HTTP/1.1 101 Switching\r\n\r\n", /answered 101/],
  [
    "a header line without a colon",
    "HTTP/1.1 200 OK\r\nbogus\r\n\r\n",
    /malformed header line 'bogus'/,
  ],
  [
    "a folded header line",
    "HTTP/1.1 200 OK\r\nx-a: 1\r\n  continued\r\n\r\n",
    /malformed header line/,
  ],
  [
    "a control byte in a header",
    "HTTP/1.1 200 OK\r\nx-a: 1\x002\r\n\r\n",
    /malformed header line 'x-a: 1\?2'/,
  ],
  [
    "a space before the colon",
    "HTTP/1.1 200 OK\r\ncontent-length : 5\r\n\r\nhello",
    /malformed header line/,
  ],
  ["bare LF line ends", "HTTP/1.1 200 OK\ncontent-length: 5\n\nhello", /not ended by CRLF/],
  [
    "a Content-Length with a sign",
    "HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\nhello",
    /invalid Content-Length '\+5'/,
  ],
  [
    "two different lengths",
    "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello",
    /invalid Content-Length '5, 6'/,
  ],
  [
    "a length past 2^53",
    "HTTP/1.1 200 OK\r\ncontent-length: 9999999999999999\r\n\r\n",
    /too large/,
  ],
  [
    "Transfer-Encoding gzip",
    "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
    /Transfer-Encoding 'gzip, chunked'/,
  ],
  [
    "a Content-Encoding",
    "HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 5\r\n\r\nhello",
    /Content-Encoding 'gzip' to a request for identity/,
  ],
  ["an empty answer", "", /closed the connection in the response head/],
  [
    "a head cut short",
    "HTTP/1.1 200 OK\r\ncontent-le",
    /closed the connection in the response head/,
  ],
  [
    "a head over 64 KiB",
    "HTTP/1.1 200 OK\r\n" + `x-pad: ${"a".repeat(MAX_HEAD)}\r\n\r\n`,
    /response head over 65536 bytes/,
  ],
  [
    "a head of many short lines over 64 KiB",
    "HTTP/1.1 200 OK\r\n" + "x-a: 1\r\n".repeat(MAX_HEAD / 8 + 1) + "\r\n",
    /response head over 65536 bytes/,
  ],
  ["9 interim answers", "HTTP/1.1 100 Continue\r\n\r\n".repeat(9), /answered 100 to a GET/],
];

for (const [name, answer, error] of BAD_CASES) {
  Deno.test(`http1: refuses ${name}, naming the host`, async () => {
    await answering(answer, async (url) => {
      const e = await assertRejects(() => http1Fetch(url, {}), RegistryError);
      assert(error.test(e.message), e.message);
      assertStringIncludes(e.message, url.host);
      assert(!e.message.includes("\n"), "one line");
    });
  });
}

const BAD_BODIES: [string, string, RegExp][] = [
  [
    "a body shorter than its length",
    "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello",
    /closed the connection 5 bytes before the body's end/,
  ],
  [
    "a malformed chunk size",
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello",
    /malformed chunk size 'zz'/,
  ],
  [
    "a chunk longer than its size",
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
    /chunk longer than its size/,
  ],
  [
    "a chunked body cut short",
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
    /closed the connection 2 bytes before/,
  ],
  [
    "a chunk size of 14 hex digits",
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10000000000000\r\n",
    /malformed chunk size/,
  ],
  [
    "trailers that never end",
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nx: 1\r\n",
    /closed the connection in the chunked body's trailers/,
  ],
];

for (const [name, answer, error] of BAD_BODIES) {
  Deno.test(`http1: a body fails on ${name}`, async () => {
    await answering(answer, async (url) => {
      const res = await http1Fetch(url, {});
      const e = await assertRejects(() => res.text(), RegistryError);
      assert(error.test(e.message), e.message);
      assertStringIncludes(e.message, url.host);
    });
  });
}

Deno.test("http1: reads fill the buffer given in place, shared memory too", async () => {
  const data = crypto.getRandomValues(new Uint8Array(60_000));
  const head = enc.encode(`HTTP/1.1 200 OK\r\ncontent-length: ${data.byteLength}\r\n\r\n`);
  const answer = new Uint8Array(head.byteLength + data.byteLength);
  answer.set(head);
  answer.set(data, head.byteLength);
  await answering(answer, async (url) => {
    const res = await http1Fetch(url, {});
    const reads = http1Body(res)!;
    const into = new Uint8Array(new SharedArrayBuffer(data.byteLength + 10));
    let got = 0;
    while (true) {
      const r = await reads.read(into.subarray(got));
      if (r.done) break;
      assertEquals(r.value.buffer, into.buffer); // a view of the memory given, not a copy
      got += r.value.byteLength;
    }
    assertEquals(got, data.byteLength);
    assertEquals(into.slice(0, got), data);
  });
});

Deno.test("http1: a signal stops the request and the body with its reason, and closes the connection", async () => {
  let closed!: () => void;
  const gone = new Promise<void>((r) => closed = r);
  const server = startRaw(async (conn) => {
    await conn.write(enc.encode("HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\nabc"));
    // the client going away ends this read
    while (await conn.read(new Uint8Array(100)).catch(() => null) !== null);
    closed();
  });
  try {
    const url = new URL(`http://${server.host}/x`);
    const ac = new AbortController();
    const res = await http1Fetch(url, { signal: ac.signal });
    const reader = res.body!.getReader();
    assertEquals((await reader.read()).value?.byteLength, 3);
    const pending = reader.read();
    const why = new Error("no longer wanted");
    ac.abort(why);
    await assertRejects(() => pending, Error, "no longer wanted");
    await gone;
    // aborted before it starts: nothing is sent
    const before = server.connections;
    await assertRejects(() => http1Fetch(url, { signal: ac.signal }), Error, "no longer wanted");
    assertEquals(server.connections, before);
  } finally {
    await server.stop();
  }
});

Deno.test("http1: a server that never answers is stopped by the signal", async () => {
  const server = startRaw((_conn, _head, signal) =>
    new Promise<void>((r) => signal.addEventListener("abort", () => r()))
  );
  try {
    const ac = new AbortController();
    const p = http1Fetch(new URL(`http://${server.host}/x`), { signal: ac.signal });
    setTimeout(() => ac.abort(new Error("timed out")), 50);
    await assertRejects(() => p, Error, "timed out");
  } finally {
    await server.stop();
  }
});

Deno.test("http1: https with a private CA given, refused without it", async () => {
  const dir = await tempDir();
  try {
    const tls = await makeTls(dir);
    const ac = new AbortController();
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      signal: ac.signal,
      onListen() {},
      cert: await Deno.readTextFile(tls.cert),
      key: await Deno.readTextFile(tls.key),
    }, () => new Response("over tls"));
    const url = new URL(`https://127.0.0.1:${server.addr.port}/v2/`);
    const res = await http1Fetch(url, {}, { caCerts: [await Deno.readTextFile(tls.ca)] });
    assertEquals(await res.text(), "over tls");
    await assertRejects(() => http1Fetch(url, {}), Error); // unknown issuer
    ac.abort();
    await server.finished;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("http1: not used with a proxy configured, nor with OCIPKG_HTTP1=0", () => {
  // (the environment given: test modules share the process's)
  assertEquals(http1Usable({ PATH: "/bin" }), true);
  for (const k of ["HTTPS_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]) {
    assertEquals(http1Usable({ [k]: "http://127.0.0.1:1" }), false, k);
  }
  assertEquals(http1Usable({ HTTPS_PROXY: "" }), true);
  assertEquals(http1Usable({ OCIPKG_HTTP1: "0" }), false);
  assertEquals(http1Usable({ OCIPKG_HTTP1: "1" }), true);
});

Deno.test("http1: only GET and HEAD over http and https", async () => {
  await assertRejects(
    () => http1Fetch(new URL("http://127.0.0.1:1/"), { method: "PUT" }),
    TypeError,
  );
  await assertRejects(() => http1Fetch(new URL("ftp://127.0.0.1/"), {}), TypeError);
  // HEAD: no body, whatever the length says
  await answering("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", async (url) => {
    const res = await http1Fetch(url, { method: "HEAD" });
    assertEquals(res.body, null);
    assertEquals(res.headers.get("content-length"), "5");
  });
});

// ---- large blobs from a real registry (docker-registry), faults from a proxy in front of it ----

const MiB = 1 << 20;
let regs: { plain: Registry; tls: Registry; proxy: Proxy } | undefined;
async function registries() {
  if (!regs) {
    const plain = await startRegistry();
    const tls = await startRegistry({ tls: true });
    globalThis.addEventListener("unload", () => {
      plain.kill();
      tls.kill();
    });
    regs = { plain, tls, proxy: startFaultProxy(plain.host) };
  }
  return regs;
}

/** A package of `bytes` random bytes (its layer barely compresses) pushed to `host`. */
async function pushedRandom(host: string, bytes: number, caFile?: string) {
  const src = await tempDir();
  await Deno.mkdir(join(src, "lib"));
  using f = await Deno.open(join(src, "lib", "libbig.a"), { write: true, createNew: true });
  const block = new Uint8Array(MiB);
  for (let left = bytes; left > 0; left -= MiB) {
    for (let o = 0; o < MiB; o += 65536) crypto.getRandomValues(block.subarray(o, o + 65536));
    await f.write(block.subarray(0, Math.min(MiB, left)));
  }
  const name = `${host}/http1/big${crypto.randomUUID().slice(0, 8)}:1`;
  const dir = join(await tempDir(), "layout");
  const r = await packDirectory(src, `oci:${dir}`, { name });
  const m = JSON.parse(await Deno.readTextFile((await OciDir.open(dir)).blobPath(r.digest)));
  const layer = m.layers[0] as { digest: string; size: number };
  await pushImage(`oci:${dir}`, undefined, caFile ? { caFile } : {});
  return { name, layer, src };
}

/** Pull into a fresh oci-dir; the layer's file must be the blob, nothing else left beside it. */
async function pullChecked(name: string, layer: { digest: string; size: number }, caFile?: string) {
  const out = join(await tempDir(), "pulled");
  await pullImage(name, `oci:${out}`, { backoffMs: 10, ...(caFile ? { caFile } : {}) });
  const path = (await OciDir.open(out)).blobPath(layer.digest);
  assertEquals((await Deno.stat(path)).size, layer.size);
  assertEquals(await digestOfFile(path), layer.digest);
  const names = [...Deno.readDirSync(join(out, "blobs", "sha256"))].map((e) => e.name);
  assert(names.every((n) => /^[0-9a-f]{64}$/.test(n)), names.join(" ")); // no temp file
}

async function digestOfFile(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of (await Deno.open(path)).readable) h.update(chunk);
  return `sha256:${h.digest("hex")}`;
}

// 17 MiB: read over http1 through the download's byte stream; 65 MiB: straight into the ring
// of the direct writer (an oci-dir on a disk). A connection dropped mid-way is resumed with
// Range (or from the start, by a server that ignores it): the bytes before the drop stay, the
// file is exactly the blob.
for (const size of [17 * MiB + 12_345, 65 * MiB + 12_345]) {
  for (const ignoreRange of [false, true]) {
    Deno.test(
      `http1: a ${size >> 20} MiB blob dropped mid-way is resumed${
        ignoreRange ? " (answered 200 from the start)" : ""
      } and lands byte for byte`,
      async () => {
        const { proxy } = await registries();
        const p = await pushedRandom(proxy.host, size);
        proxy.reset();
        proxy.rules.dropBlobOnce = p.layer.digest;
        proxy.rules.ignoreRange = ignoreRange;
        await pullChecked(p.name, p.layer);
        const gets = proxy.log.filter((e) => e.path.endsWith(p.layer.digest));
        assertEquals(gets.length, 2, JSON.stringify(gets));
        // both by http1Fetch; the manifest by fetch
        assert(gets.every((e) => e.client === "http1"), JSON.stringify(gets));
        assert(proxy.log.some((e) => e.path.includes("/manifests/") && e.client === "fetch"));
        assert(gets[1]!.range?.startsWith("bytes="), JSON.stringify(gets));
      },
    );
  }
}

Deno.test("http1: wrong bytes for a large blob are refused and nothing is left", async () => {
  const { proxy } = await registries();
  const p = await pushedRandom(proxy.host, 17 * MiB);
  proxy.reset();
  proxy.rules.wrongBytes = p.layer.digest;
  const out = join(await tempDir(), "pulled");
  await assertRejects(
    () => pullImage(p.name, `oci:${out}`, { backoffMs: 10 }),
    VerificationError,
    `blob ${p.layer.digest}`,
  );
  const left = await Array.fromAsync(Deno.readDir(join(out, "blobs", "sha256"))).catch(() => []);
  assert(!left.some((e) => e.name.startsWith(".") || e.name === p.layer.digest.slice(7)));
});

Deno.test("http1: a large blob from an https registry with a private CA (--ca-file)", async () => {
  const { tls } = await registries();
  const p = await pushedRandom(tls.host, 17 * MiB, tls.caFile);
  await pullChecked(p.name, p.layer, tls.caFile);
  // without the CA: refused, nothing pulled
  const no = join(await tempDir(), "no");
  await assertRejects(() => pullImage(p.name, `oci:${no}`, {}));
});

Deno.test("http1: a large blob through the CLI: `get` and `pull` give the same bytes as with fetch", async () => {
  const { plain } = await registries();
  const p = await pushedRandom(plain.host, 17 * MiB);
  const env = { DENO_NO_UPDATE_CHECK: "1" };
  for (const h1 of ["1", "0"]) {
    const out = join(await tempDir(), `pulled-${h1}`);
    const r = await runCli(["pull", p.name, "-o", out, "--format", "dir"], {
      env: { ...env, OCIPKG_HTTP1: h1 },
    });
    assertEquals(r.code, 0, r.stderr);
    const path = (await OciDir.open(out)).blobPath(p.layer.digest);
    assertEquals(await digestOfFile(path), p.layer.digest);
    // get: the store's copy of the layer and the file extracted from it
    const data = await tempDir();
    const got = await runCli(["get", p.name], { dataHome: data, env: { OCIPKG_HTTP1: h1 } });
    assertEquals(got.code, 0, got.stderr);
    const dir = got.stdout.trim().split("\n").at(-1)!;
    assertEquals(
      await digestOfFile(join(dir, "lib", "libbig.a")),
      await digestOfFile(join(p.src, "lib", "libbig.a")),
    );
  }
});

Deno.test("http1: a large blob pulled with byte progress lands whole, its progress counted", async () => {
  const { plain } = await registries();
  const p = await pushedRandom(plain.host, 65 * MiB);
  const out = join(await tempDir(), "pulled");
  const seen: number[] = [];
  await pullImage(p.name, `oci:${out}`, {
    progressBytes: true,
    onProgress: (e) => {
      if (e.desc.digest === p.layer.digest && e.kind !== "start" && e.kind !== "skip") {
        seen.push(e.bytes ?? -1);
      }
    },
  });
  const path = (await OciDir.open(out)).blobPath(p.layer.digest);
  assertEquals(await digestOfFile(path), p.layer.digest);
  assertEquals(seen.at(-1), p.layer.size); // done, with every byte
  assert(seen.every((b, i) => i === 0 || b >= seen[i - 1]!), "progress only grows");
});

// ---- kept connections (Http1Pool) ----

/**
 * A keep-alive server of exact bytes: each request on a connection is answered by
 * `answer(n)` (n: the request's number on its connection, from 0); `close` after it
 * closes the connection. Counts connections.
 */
function keepAliveServer(answer: (n: number) => { bytes: string; close?: boolean }) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const self = {
    host: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    connections: 0,
    requests: [] as string[],
    /** Close every open connection (as a server's idle timeout does). */
    dropAll() {
      for (const c of conns) c.close();
      conns.clear();
    },
    async stop() {
      listener.close();
      self.dropAll();
      await accepting;
    },
  };
  const serve = async (conn: Deno.Conn) => {
    conns.add(conn);
    let buf = "";
    const chunk = new Uint8Array(4096);
    try {
      for (let n = 0;; n++) {
        while (!buf.includes("\r\n\r\n")) {
          const k = await conn.read(chunk);
          if (k === null) return;
          buf += new TextDecoder().decode(chunk.subarray(0, k));
        }
        const at = buf.indexOf("\r\n\r\n") + 4;
        self.requests.push(buf.slice(0, at));
        buf = buf.slice(at);
        const a = answer(n);
        await conn.write(enc.encode(a.bytes));
        if (a.close) return;
      }
    } catch {
      /* closed */
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };
  const accepting = (async () => {
    const tasks: Promise<void>[] = [];
    try {
      for await (const conn of listener) {
        self.connections++;
        tasks.push(serve(conn));
      }
    } catch { /* closed */ }
    await Promise.allSettled(tasks);
  })();
  return self;
}

const hello = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";

Deno.test("http1: a pool sends many requests over one kept connection, and closes it", async () => {
  const server = keepAliveServer(() => ({ bytes: hello }));
  const pool = new Http1Pool();
  try {
    const url = new URL(`http://${server.host}/v2/x/blobs/sha256:00`);
    for (let i = 0; i < 20; i++) {
      assertEquals(await (await http1Fetch(url, {}, { pool })).text(), "hello");
    }
    assertEquals(server.connections, 1);
    assertEquals(server.requests.length, 20);
    assert(!server.requests[0]!.includes("connection: close"), server.requests[0]);
    // chunked answers are kept too; 8 at once: 8 connections, kept for the next 8
    const chunked = keepAliveServer(() => ({
      bytes: "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    }));
    const url2 = new URL(`http://${chunked.host}/b`);
    for (let round = 0; round < 3; round++) {
      const texts = await Promise.all(
        Array.from({ length: 8 }, async () => await (await http1Fetch(url2, {}, { pool })).text()),
      );
      assertEquals(texts, Array(8).fill("hello"));
    }
    assertEquals(chunked.connections, 8);
    assertEquals(pool.idle, 9);
    pool.close();
    assertEquals(pool.idle, 0);
    await chunked.stop();
  } finally {
    pool.close();
    await server.stop();
  }
});

Deno.test("http1: a kept connection the server closed meanwhile is replaced, the request not lost", async () => {
  const server = keepAliveServer(() => ({ bytes: hello }));
  const pool = new Http1Pool();
  try {
    const url = new URL(`http://${server.host}/x`);
    assertEquals(await (await http1Fetch(url, {}, { pool })).text(), "hello");
    server.dropAll(); // the server's idle timeout
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(await (await http1Fetch(url, {}, { pool })).text(), "hello");
    assertEquals(server.connections, 2);
  } finally {
    pool.close();
    await server.stop();
  }
});

const NOT_KEPT: [string, (n: number) => { bytes: string; close?: boolean }, boolean][] = [
  ["the answer says Connection: close", () => ({
    bytes: "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello",
    close: true,
  }), false],
  [
    "an HTTP/1.0 answer",
    () => ({ bytes: "HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nhello" }),
    false,
  ],
  [
    "a body to the connection's end",
    () => ({ bytes: "HTTP/1.1 200 OK\r\n\r\nhello", close: true }),
    false,
  ],
  ["bytes after the body", () => ({ bytes: hello + "HTTP/1.1 200 OK\r\n" }), false],
  [
    "a body not read to its end",
    () => ({ bytes: "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + "a".repeat(100000) }),
    true,
  ],
];

for (const [name, answer, cancel] of NOT_KEPT) {
  Deno.test(`http1: a connection is not kept after ${name}`, async () => {
    const server = keepAliveServer(answer);
    const pool = new Http1Pool();
    try {
      const url = new URL(`http://${server.host}/x`);
      for (let i = 0; i < 3; i++) {
        const res = await http1Fetch(url, {}, { pool });
        if (cancel) {
          const reader = res.body!.getReader();
          await reader.read();
          await reader.cancel();
        } else {
          assertEquals(await res.text(), "hello");
        }
      }
      assertEquals(server.connections, 3);
      assertEquals(pool.idle, 0);
    } finally {
      pool.close();
      await server.stop();
    }
  });
}

Deno.test("http1: a pull's small blobs and manifest go over fetch, its large blob over http1Fetch (a real registry)", async () => {
  const { proxy } = await registries();
  const p = await pushedRandom(proxy.host, 17 * MiB);
  proxy.reset();
  const out = join(await tempDir(), "pulled");
  await pullImage(p.name, `oci:${out}`, {});
  const blobs = proxy.log.filter((e) => e.method === "GET" && e.path.includes("/blobs/"));
  assertEquals(blobs.length, 2, JSON.stringify(proxy.log)); // the config and the layer
  for (const e of blobs) {
    assertEquals(e.client, e.path.endsWith(p.layer.digest) ? "http1" : "fetch", e.path);
  }
  assert(proxy.log.some((e) => e.path.includes("/manifests/") && e.client === "fetch"));
});

// Drops at awkward moments of a 65 MiB blob read in place into the direct writer's ring (4 MiB
// slots): before the first byte, exactly at a slot's end, one past it, one before the blob's
// end; resumed by Range (206) or answered whole again (200, the bytes had skipped in the
// ring). The file is the blob, byte for byte; the resumption asks from exactly the byte dropped.
Deno.test("http1: drops at slot boundaries of the direct writer's ring are resumed byte for byte", async () => {
  const { proxy } = await registries();
  const p = await pushedRandom(proxy.host, 65 * MiB + 4321);
  const size = p.layer.size;
  const direct = fileSystemOf(join(await tempDir(), "x")) !== undefined;
  const cases: [number, 206 | 200][] = [
    [0, 206],
    [4 * MiB, 206],
    [4 * MiB + 1, 200],
    [size - 1, 200],
  ];
  const ring = DirectWriter.prototype.spaceInRing;
  let inRing = 0;
  DirectWriter.prototype.spaceInRing = function () {
    inRing++;
    return ring.call(this);
  };
  try {
    for (const [at, resumed] of cases) {
      proxy.reset();
      let first = true;
      proxy.rules.blobAnswer = {
        digest: p.layer.digest,
        answer: (blob, range) => {
          if (first) {
            first = false;
            return droppedAt(blob, at);
          }
          return resumed === 200 && range ? new Response(blob) : undefined;
        },
      };
      inRing = 0;
      await pullChecked(p.name, p.layer);
      const gets = proxy.log.filter((e) => e.path.endsWith(p.layer.digest));
      const again = at > 0 ? `bytes=${at}-` : undefined; // nothing had: asked whole again
      assertEquals(gets.map((e) => e.range), [undefined, again], `drop at ${at}`);
      if (direct) assert(inRing > 0, "read in place into the ring");
    }
  } finally {
    DirectWriter.prototype.spaceInRing = ring;
  }
});

/** A whole blob's answer (its length stated) whose connection dies after `at` bytes. */
function droppedAt(blob: Uint8Array<ArrayBuffer>, at: number): Response {
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (!sent && at > 0) {
        sent = true;
        c.enqueue(blob.slice(0, at));
        return;
      }
      c.close(); // short of its length: the server drops the connection
    },
  });
  return new Response(body, { headers: { "content-length": String(blob.byteLength) } });
}

Deno.test("http1: a 65 MiB blob dropped mid-slot lands whole through `get` (the store) and `pull --format archive`", async () => {
  const { proxy } = await registries();
  const p = await pushedRandom(proxy.host, 65 * MiB + 99);
  const dropAt = 6 * MiB + 12_345;
  const arm = () => {
    proxy.reset();
    let first = true;
    proxy.rules.blobAnswer = {
      digest: p.layer.digest,
      answer: (blob) => {
        if (!first) return undefined;
        first = false;
        return droppedAt(blob, dropAt);
      },
    };
  };
  const want = await digestOfFile(join(p.src, "lib", "libbig.a"));
  // get: into a store, the layer teed into its cache and its extraction
  arm();
  const store = new Store(join(await tempDir(), "store"));
  const got = await getImage(p.name, { store, backoffMs: 10 });
  assertEquals(await digestOfFile(join(got.dir, "lib", "libbig.a")), want);
  assertEquals(
    proxy.log.filter((e) => e.path.endsWith(p.layer.digest)).map((e) => e.range),
    [undefined, `bytes=${dropAt}-`],
  );
  // pull into an oci-archive
  arm();
  const tar = join(await tempDir(), "out.tar");
  await pullImage(p.name, tar, { backoffMs: 10, format: "archive" });
  const archive = await OciArchive.open(tar);
  const stream = await archive.fetch(p.layer as Descriptor);
  const h = createHash("sha256");
  for await (const chunk of stream) h.update(chunk);
  assertEquals(`sha256:${h.digest("hex")}`, p.layer.digest);
  assertEquals(
    proxy.log.filter((e) => e.path.endsWith(p.layer.digest)).map((e) => e.range),
    [undefined, `bytes=${dropAt}-`],
  );
});

// A proxy configured (fetch honours it): a large blob's download goes through it too, not
// around it over a connection of its own. The variables are given to a child (test modules share
// this process's environment).
Deno.test("http1: with HTTP_PROXY (or http_proxy) set, a large blob goes through the proxy", async () => {
  const { plain } = await registries();
  const p = await pushedRandom(plain.host, 17 * MiB);
  const seen: { url: string; client: string }[] = [];
  const ac = new AbortController();
  const proxy = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      // Deno's fetch adds `accept-language: *`; http1Fetch sends only the headers given
      seen.push({ url: req.url, client: req.headers.has("accept-language") ? "fetch" : "http1" });
      const headers = new Headers(req.headers);
      headers.delete("host");
      const up = await fetch(req.url, { method: req.method, headers, redirect: "manual" });
      return new Response(up.body, { status: up.status, headers: up.headers });
    },
  );
  try {
    for (const k of ["HTTP_PROXY", "http_proxy"]) {
      seen.length = 0;
      const out = join(await tempDir(), "pulled");
      const r = await runCli(["pull", p.name, "-o", out, "--format", "dir"], {
        env: { [k]: `http://127.0.0.1:${proxy.addr.port}` },
      });
      assertEquals(r.code, 0, r.stderr);
      const path = (await OciDir.open(out)).blobPath(p.layer.digest);
      assertEquals(await digestOfFile(path), p.layer.digest);
      const blob = seen.filter((e) => e.url.endsWith(`/blobs/${p.layer.digest}`));
      assertEquals(blob.length, 1, `${k}: ${JSON.stringify(seen)}`);
      assertEquals(blob[0]!.client, "fetch", "through fetch, not http1Fetch");
    }
  } finally {
    ac.abort();
    await proxy.finished;
  }
});

Deno.test("http1: a body cancelled after its end leaves the kept connection to the next request", async () => {
  // (a body larger than what comes with the head: the second answer is still on the socket)
  const big = "a".repeat(200_000);
  const server = keepAliveServer(() => ({
    bytes: `HTTP/1.1 200 OK\r\ncontent-length: ${big.length}\r\n\r\n${big}`,
  }));
  const pool = new Http1Pool();
  try {
    const url = new URL(`http://${server.host}/x`);
    const first = await http1Fetch(url, {}, { pool });
    const reader = first.body!.getReader();
    while (!(await reader.read()).done);
    assertEquals(pool.idle, 1);
    const second = await http1Fetch(url, {}, { pool }); // takes the kept connection
    await reader.cancel(); // the first body, done already: nothing to close
    await first.body?.cancel().catch(() => {});
    http1Body(first)?.cancel();
    assertEquals(await second.text(), big);
    assertEquals(server.connections, 1);
  } finally {
    pool.close();
    await server.stop();
  }
});
