import { assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import {
  bytesStream,
  digestOf,
  FormatError,
  parseDigest,
  VerificationError,
  VerifyingStream,
} from "../mod.ts";

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
