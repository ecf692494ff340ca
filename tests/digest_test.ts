import { assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import {
  BackgroundDigester,
  bytesStream,
  digestOf,
  FormatError,
  OFF_THREAD_MIN,
  parseDigest,
  VerificationError,
  Verifier,
  VerifyingStream,
  vouch,
} from "./_internal.ts";

const data = new TextEncoder().encode("hello world");
const consume = (s: ReadableStream<Uint8Array>) => s.pipeTo(new WritableStream());

Deno.test("digest: sha256 and sha512 of known input", () => {
  assertEquals(
    digestOf(data),
    "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
  );
  assertEquals(digestOf(data, "sha512").length, "sha512:".length + 128);
  assertEquals(parseDigest(digestOf(data, "sha512")).algorithm, "sha512");
});

Deno.test("digest: invalid digests are rejected", () => {
  for (const d of ["sha256:abc", "md5:" + "0".repeat(32), "sha256:" + "G".repeat(64), "nocolon"]) {
    assertThrows(() => parseDigest(d), FormatError);
  }
});

Deno.test("verifier: passes good content and reports what it measured", async () => {
  for (const alg of ["sha256", "sha512"] as const) {
    const v = new VerifyingStream({ digest: digestOf(data, alg), size: data.length }, "blob");
    await consume(bytesStream(data).pipeThrough(v));
    assertEquals(v.result, { digest: digestOf(data, alg), size: data.length });
  }
});

Deno.test("verifier: rejects wrong digest, short and long content", async () => {
  const good = digestOf(data);
  await assertRejects(
    () =>
      consume(
        bytesStream(data).pipeThrough(
          new VerifyingStream({ digest: digestOf(new Uint8Array(1)), size: data.length }, "blob X"),
        ),
      ),
    VerificationError,
    "blob X: digest mismatch",
  );
  await assertRejects(
    () =>
      consume(
        bytesStream(data).pipeThrough(
          new VerifyingStream({ digest: good, size: data.length + 1 }, "b"),
        ),
      ),
    VerificationError,
    "size mismatch",
  );
  await assertRejects(
    () =>
      consume(bytesStream(data).pipeThrough(new VerifyingStream({ digest: good, size: 3 }, "b"))),
    VerificationError,
    "exceeds",
  );
});

Deno.test("digest: the background digester matches the synchronous one across slot edges", () => {
  const big = new Uint8Array((9 << 20) + 12345);
  for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  for (const algorithm of ["sha256", "sha512"] as const) {
    const bg = new BackgroundDigester(algorithm);
    // uneven chunks: some span two slots, one is larger than a slot
    let off = 0;
    for (const n of [1, 65535, 3 << 20, 5 << 20, 7, big.length]) {
      const end = Math.min(big.length, off + n);
      bg.update(big.subarray(off, end));
      off = end;
    }
    assertEquals(bg.size, big.length);
    assertEquals(bg.digest(), digestOf(big, algorithm));
  }
});

Deno.test("digest: an off-thread Verifier refuses wrong bytes and leaves no worker behind", () => {
  const size = OFF_THREAD_MIN + 1;
  const good = new Uint8Array(size);
  const expected = { digest: digestOf(good), size };
  const v = new Verifier(expected, "big blob", { offThread: true });
  const bad = new Uint8Array(size);
  bad[size - 1] = 1;
  v.update(bad);
  assertThrows(() => v.finish(), VerificationError, "digest mismatch");
  // too many bytes: refused at once, the worker stopped
  const w = new Verifier(expected, "big blob", { offThread: true });
  assertThrows(() => w.update(new Uint8Array(size + 1)), VerificationError, "exceeds");
  // abandoned on an error path: dispose stops it (a live worker would keep the process up)
  const x = new Verifier(expected, "big blob", { offThread: true });
  x.update(good.subarray(0, 1000));
  x.dispose();
  const ok = new Verifier(expected, "big blob", { offThread: true });
  ok.update(good);
  assertEquals(ok.finish(), expected);
});

Deno.test("digest: a vouched stream is counted, not hashed again, and still size-checked", () => {
  const d = { digest: digestOf(data), size: data.length };
  const s = vouch(bytesStream(data), d);
  const v = new Verifier(d, "vouched", { source: s });
  v.update(data);
  assertEquals(v.finish(), d);
  // the size is still enforced
  const w = new Verifier(d, "vouched", { source: s });
  assertThrows(() => w.update(new Uint8Array(data.length + 1)), VerificationError, "exceeds");
  // vouched for another digest: hashed as usual
  const other = vouch(bytesStream(data), {
    digest: digestOf(new Uint8Array(1)),
    size: data.length,
  });
  const u = new Verifier(d, "other", { source: other });
  u.update(new Uint8Array(data.length));
  assertThrows(() => u.finish(), VerificationError, "digest mismatch");
});
