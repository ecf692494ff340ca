// teeBounded: two branches of one stream with bounded buffering (the install
// path streams each layer into the layout and the extractor at once).
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { teeBounded } from "./_internal.ts";

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
