// lib/transport/registry/http.ts: readCapped over a body timedFetch wrapped (read without its
// stream, into one buffer): declared or not, grown past its first buffer, at and over the cap.
import { assertEquals, assertRejects } from "./_assert.ts";
import { readCapped, timedFetch } from "../lib/transport/registry/http.ts";
import { RegistryError } from "./_internal.ts";

/** A server answering `/n/<bytes>` with that many bytes, in 1000-byte chunks when `chunked`. */
function server() {
  const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
  return Deno.serve(listen, (req) => {
    const [, kind, n] = new URL(req.url).pathname.split("/");
    const bytes = new Uint8Array(Number(n)).map((_, i) => i % 251);
    if (kind !== "chunked") return new Response(bytes);
    let off = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (off >= bytes.length) return c.close();
        c.enqueue(bytes.slice(off, off + 1000));
        off += 1000;
      },
    });
    return new Response(body); // no Content-Length: chunked
  });
}

const limits = () => ({
  what: "test",
  host: "h",
  headersMs: 10_000,
  deadline: performance.now() + 10_000,
  totalMs: 10_000,
  idleMs: 10_000,
  minRate: undefined,
  graceMs: 0,
  detail: "",
});

Deno.test("http: readCapped reads a timed body whole, declared or chunked, up to its cap", async () => {
  const s = server();
  const at = (path: string) => new URL(`http://127.0.0.1:${s.addr.port}${path}`);
  const expect = (n: number) => new Uint8Array(n).map((_, i) => i % 251);
  try {
    for (const kind of ["declared", "chunked"]) {
      // 0 bytes, a few, one 16 KiB first buffer exactly, and grown twice past it
      for (const n of [0, 5, 16_384, 70_000]) {
        const res = await timedFetch(at(`/${kind}/${n}`), {}, limits());
        assertEquals(await readCapped(res, 70_000, "body"), expect(n), `${kind} ${n}`);
      }
      const over = await timedFetch(at(`/${kind}/70001`), {}, limits());
      const e = await assertRejects(() => readCapped(over, 70_000, "the body"), RegistryError);
      assertEquals(
        e.message,
        kind === "declared"
          ? "the body is 70001 bytes, over the 70000-byte cap"
          : "the body is larger than the 70000-byte cap",
      );
    }
  } finally {
    await s.shutdown();
  }
});

/** A stand-in answering every connection with these raw bytes, then closing (HTTP a server would not send). */
function rawServer(answer: Uint8Array) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(4096);
        await conn.read(buf).catch(() => null); // the request (small)
        await conn.write(answer).catch(() => {});
        conn.close();
      })();
    }
  })().catch(() => {});
  return {
    url: new URL(`http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/x`),
    async close() {
      listener.close();
      await served;
    },
  };
}

const enc = (s: string) => new TextEncoder().encode(s);
const gzip = async (b: Uint8Array<ArrayBuffer>) =>
  await new Response(new Blob([b]).stream().pipeThrough(new CompressionStream("gzip"))).bytes();

Deno.test("http: readCapped and a Content-Length that lies: fewer bytes than declared fail, more are not read", async () => {
  const head = (extra: string) => `HTTP/1.1 200 OK\r\nconnection: close\r\n${extra}\r\n`;
  // declares 10, sends 3 and closes: never 3 bytes passed off as the body
  let s = rawServer(enc(head("content-length: 10\r\n") + "abc"));
  try {
    const res = await timedFetch(s.url, {}, limits());
    await assertRejects(() => readCapped(res, 100, "body"));
  } finally {
    await s.close();
  }
  // declares 5, sends 10: the 5 declared, nothing past them
  s = rawServer(enc(head("content-length: 5\r\n") + "abcdefghij"));
  try {
    const res = await timedFetch(s.url, {}, limits());
    assertEquals(new TextDecoder().decode(await readCapped(res, 8, "body")), "abcde");
  } finally {
    await s.close();
  }
  // declares its compressed length, decoded longer (a server that compressed though asked not to)
  const plain = new Uint8Array(100_000).map((_, i) => i % 7);
  const packed = await gzip(plain);
  const answer = (length: number) =>
    new Uint8Array([
      ...enc(head(`content-encoding: gzip\r\ncontent-length: ${length}\r\n`)),
      ...packed,
    ]);
  s = rawServer(answer(packed.length));
  try {
    const res = await timedFetch(s.url, {}, limits());
    assertEquals(await readCapped(res, 100_000, "body"), plain);
    const again = await timedFetch(s.url, {}, limits());
    const e = await assertRejects(() => readCapped(again, 99_999, "the body"), RegistryError);
    assertEquals(e.message, "the body is larger than the 99999-byte cap");
  } finally {
    await s.close();
  }
});
