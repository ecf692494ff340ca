// The body of a streamed upload that is not a native file: a blob inside an oci-archive is a byte
// range of the tar (openFileRange), read into fresh 1 MiB chunks that are detached — their memory
// freed — once fetch holds them (BodyChunks), so a push from an archive stays as small as one
// from an oci-dir instead of leaving every chunk to the garbage collector.
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { tempDir } from "./_helpers.ts";
import { BodyChunks, openFileRange } from "./_internal.ts";

async function fileWith(bytes: Uint8Array): Promise<string> {
  const path = `${await tempDir()}/f`;
  await Deno.writeFile(path, bytes);
  return path;
}

Deno.test("openFileRange: exactly the range, read straight into a BYOB reader's buffer", async () => {
  const bytes = new Uint8Array(10_000).map((_, i) => i % 253);
  const path = await fileWith(bytes);
  const stream = await openFileRange(path, 1234, 5000, () => new Error("truncated"));
  const reader = stream.getReader({ mode: "byob" });
  const got = new Uint8Array(5000);
  let n = 0;
  for (;;) {
    const r = await reader.read(new Uint8Array(4096));
    if (r.done) break;
    got.set(r.value, n);
    n += r.value.byteLength;
  }
  assertEquals(n, 5000);
  assertEquals(got, bytes.subarray(1234, 6234));
  // a range past the end of the file fails rather than end early
  const past = await openFileRange(path, 9000, 2000, () => new Error("archive truncated"));
  await assertRejects(() => new Response(past).bytes(), Error, "archive truncated");
  // cancelled half way: closed, nothing more read
  const cancelled = await openFileRange(path, 0, 10_000, () => new Error("truncated"));
  const c = cancelled.getReader();
  assert(!(await c.read()).done);
  await c.cancel();
});

Deno.test("BodyChunks: full chunks from a byte stream, each detached two reads later", async () => {
  const bytes = new Uint8Array(5 * 1000 + 17).map((_, i) => (i * 31) % 256);
  const path = await fileWith(bytes);
  const chunks = new BodyChunks(
    await openFileRange(path, 0, bytes.length, () => new Error("x")),
    1000,
  );
  const given: Uint8Array[] = [];
  const copy: number[] = [];
  for (;;) {
    const r = await chunks.read();
    if (r.done) break;
    copy.push(...r.value); // what fetch would take, before the next read
    given.push(r.value);
    // the chunk given two reads ago is detached now; the last two are intact
    assert(given.slice(-2).every((c) => c.byteLength > 0));
    assert(given.slice(0, -2).every((c) => c.byteLength === 0));
  }
  assertEquals(given.length, 6);
  assertEquals(copy, [...bytes]);
  chunks.releaseLock();
});

Deno.test("BodyChunks: a default stream's chunks are joined into full ones", async () => {
  const parts = [3, 900, 250, 1, 2000, 46].map((n, k) => new Uint8Array(n).fill(k));
  const chunks = new BodyChunks(ReadableStream.from(parts), 1024);
  const sizes: number[] = [];
  let total = 0;
  for (;;) {
    const r = await chunks.read();
    if (r.done) break;
    sizes.push(r.value.byteLength);
    total += r.value.reduce((a, x) => a + x, 0);
  }
  assertEquals(sizes, [1024, 1024, 1024, 128]);
  assertEquals(total, parts.reduce((a, p, k) => a + p.length * k, 0));
});
