// teeBounded: two branches of one stream with bounded buffering (the install
// path streams each layer into the layout and the extractor at once).
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { RELEASE_MARGIN, teeBounded } from "./_internal.ts";

/** A source of `n` one-byte chunks that counts how many were pulled. */
function counting(n: number) {
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (pulled === n) return c.close();
      c.enqueue(new Uint8Array([pulled++ % 256]));
    },
  }, { highWaterMark: 0 });
  return { stream, pulled: () => pulled };
}

Deno.test("teeBounded: both branches see every chunk in order", async () => {
  const src = counting(1000);
  const { branches: [a, b] } = teeBounded(src.stream);
  const [x, y] = await Promise.all([new Response(a).bytes(), new Response(b).bytes()]);
  assertEquals(x.length, 1000);
  assertEquals(x, y);
});

Deno.test("teeBounded: a fast branch runs at most `limit` chunks ahead of a stalled one", async () => {
  const src = counting(1000);
  const { branches: [a, b] } = teeBounded(src.stream, 4);
  const ra = a.getReader();
  const got: number[] = [];
  const reading = (async () => {
    for (;;) {
      const r = await ra.read();
      if (r.done) return;
      got.push(r.value[0]!);
    }
  })();
  await new Promise((r) => setTimeout(r, 50));
  assert(src.pulled() <= 5, `pulled ${src.pulled()} with the other branch stalled`);
  // once the slow branch reads, both finish
  const rest = await new Response(b).bytes();
  await reading;
  assertEquals(rest.length, 1000);
  assertEquals(got.length, 1000);
});

Deno.test("teeBounded: a cancelled or detached branch stops holding the other back", async () => {
  const one = teeBounded(counting(100).stream, 2);
  await one.branches[1].cancel();
  assertEquals((await new Response(one.branches[0]).bytes()).length, 100);
  const two = teeBounded(counting(100).stream, 2);
  two.branches[1].getReader(); // locked, never read
  two.detach(1);
  assertEquals((await new Response(two.branches[0]).bytes()).length, 100);
});

Deno.test("teeBounded: abort and source errors fail both branches", async () => {
  const { branches: [a, b], abort } = teeBounded(counting(1_000_000).stream, 2);
  const pa = new Response(a).bytes();
  const pb = new Response(b).bytes();
  abort(new Error("disk full"));
  await assertRejects(() => pa, Error, "disk full");
  await assertRejects(() => pb, Error, "disk full");
  const broken = new ReadableStream<Uint8Array>({
    pull(c) {
      c.error(new Error("connection reset"));
    },
  });
  const t = teeBounded(broken);
  await assertRejects(() => new Response(t.branches[0]).bytes(), Error, "connection reset");
  await assertRejects(() => new Response(t.branches[1]).bytes(), Error, "connection reset");
});

// release: fresh chunks of a size, each detached (its memory freed) once both branches are
// RELEASE_MARGIN chunks past it — never while one branch may still be using it.
Deno.test("teeBounded release: full chunks read straight from a byte source, the same bytes on both branches", async () => {
  const data = new Uint8Array(1000).map((_, i) => (i * 7) % 251);
  let off = 0;
  const src = new ReadableStream({
    type: "bytes",
    pull(c: ReadableByteStreamController) {
      const view = c.byobRequest!.view!;
      const n = Math.min(view.byteLength, 37, data.length - off); // short reads
      if (n === 0) {
        c.close();
        c.byobRequest!.respond(0);
        return;
      }
      new Uint8Array(view.buffer, view.byteOffset, n).set(data.subarray(off, off + n));
      off += n;
      c.byobRequest!.respond(n);
    },
  });
  const { branches } = teeBounded(src, 4, { release: { chunkSize: 100 } });
  const read = async (b: ReadableStream<Uint8Array>) => {
    const sizes: number[] = [];
    const bytes: number[] = [];
    for await (const chunk of b) {
      sizes.push(chunk.byteLength);
      bytes.push(...chunk); // consumed at once
    }
    return { sizes, bytes };
  };
  const [a, b] = await Promise.all(branches.map(read));
  assertEquals(a!.sizes, Array(10).fill(100)); // filled, though the source reads 37 at a time
  assertEquals(a!.bytes, [...data]);
  assertEquals(b!.bytes, [...data]);
});

Deno.test("teeBounded release: a chunk is detached only once both branches are RELEASE_MARGIN past it", async () => {
  const src = counting(40);
  const { branches: [fast, slow] } = teeBounded(src.stream, 64, { release: { chunkSize: 1 } });
  const f = fast.getReader();
  const s = slow.getReader();
  const seen: Uint8Array[] = [];
  for (let i = 0; i < 20; i++) seen.push((await f.read()).value!);
  // the slow branch has read nothing: nothing may be freed
  assert(seen.every((c) => c.byteLength === 1), "detached while a branch had not read it");
  for (let i = 0; i < 10; i++) await s.read();
  // both are at least 10 chunks in: chunks 0..5 (10 - RELEASE_MARGIN) are freed, 6.. are not
  assertEquals(RELEASE_MARGIN, 4);
  assertEquals(seen.map((c) => c.byteLength), [...Array(6).fill(0), ...Array(14).fill(1)]);
  const drain = async (r: ReadableStreamDefaultReader<Uint8Array>) => {
    while (!(await r.read()).done) { /* the rest */ }
  };
  await Promise.all([drain(f), drain(s)]);
});
