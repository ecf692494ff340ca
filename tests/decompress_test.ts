// decompress: the decoder is fed one chunk at a time — the next input chunk is read only once
// the decoder has consumed the last — so a producer may free a chunk's memory as soon as the
// next one is asked for (the install path's tee does). Checked by a source that detaches every
// chunk when the next is pulled: any read-ahead would decode emptied chunks.
import { assert, assertEquals } from "./_assert.ts";
import { decompress, StreamSource } from "./_internal.ts";
import { gzipSync, zstdCompressSync } from "node:zlib";

/** `bytes` in `size`-byte chunks, each detached (emptied) when the next one is pulled. */
function detachingSource(bytes: Uint8Array, size: number) {
  let off = 0;
  let last: Uint8Array | undefined;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (last) (last.buffer as ArrayBuffer).transfer(0);
      if (off >= bytes.length) return c.close();
      last = bytes.slice(off, off + size); // a fresh buffer
      off += size;
      c.enqueue(last);
    },
  }, { highWaterMark: 0 });
}

for (const compression of ["gzip", "zstd"] as const) {
  Deno.test(`decompress (${compression}): an input chunk is not used once the next is read`, async () => {
    const plain = new Uint8Array(3 << 20);
    for (let i = 0; i < plain.length; i += 65536) {
      crypto.getRandomValues(plain.subarray(i, i + 32768)); // half random, half zeros
    }
    const packed = new Uint8Array(
      compression === "gzip" ? gzipSync(plain) : zstdCompressSync(plain),
    );
    let n = 0;
    const got = new Uint8Array(plain.length);
    for await (const chunk of decompress(detachingSource(packed, 16384), compression, "layer")) {
      got.set(chunk, n);
      n += chunk.byteLength;
    }
    assertEquals(n, plain.length);
    assertEquals(got, plain);
  });
}

// The other side: each output chunk is valid until the next is asked for; a chunk that ends its
// buffer (the decoder goes on in a new one) then has that buffer detached — freed at once, not
// when V8 collects garbage. StreamSource, the one consumer, copies what readExact returns.
Deno.test("decompress: an output buffer is freed once its last chunk is consumed; StreamSource copies", async () => {
  const plain = new Uint8Array(4 << 20).map((_, i) => (i * 7 + (i >> 12)) % 61);
  const packed = new Uint8Array(gzipSync(plain));
  const seen: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of decompress(ReadableStream.from([packed]), "gzip", "layer")) {
    assertEquals(Uint8Array.from(chunk), plain.subarray(n, n + chunk.byteLength)); // intact while current
    n += chunk.byteLength;
    seen.push(chunk);
  }
  assertEquals(n, plain.length);
  const ended = seen.slice(0, -1).filter((c) => c.byteLength === 0);
  assert(ended.length > 0, "no output buffer was freed");
  // a header read through a StreamSource stays whole however far the source goes on
  const source = new StreamSource(
    decompress(ReadableStream.from([packed]), "gzip", "layer"),
    "layer",
  );
  const head = await source.readExact(512);
  await source.drain();
  assertEquals(head, plain.subarray(0, 512));
});
