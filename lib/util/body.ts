/**
 * The one capped body reader: a whole HTTP request or response body into
 * memory, never more than a cap (for manifests, tokens and error bodies,
 * which are small by nature and must not be made to fill memory).
 *
 * @module
 */

/**
 * Read a whole body of a request or response, at most `cap` bytes: one
 * `Content-Length` over the cap, or more bytes than it, fails with
 * `tooLarge()` (the body is cancelled). The registry client reads manifests,
 * tokens and error bodies with it, `serve` the manifests pushed to it; each
 * passes the error its callers expect.
 *
 * @param message a `Request` or `Response`
 * @param cap most bytes accepted
 * @param tooLarge the error to throw, given the declared length when that was over the cap
 * @returns the bytes
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readBodyCapped } from "./body.ts";
 * const tooLarge = (declared?: number) => new RangeError(`too large (${declared ?? "streamed"})`);
 * const ok = await readBodyCapped(new Response("hello"), 5, tooLarge);
 * assert.equal(new TextDecoder().decode(ok), "hello");
 * // a declared length over the cap fails before a byte is read…
 * const declared = new Response("hello", { headers: { "content-length": "5" } });
 * await assert.rejects(readBodyCapped(declared, 4, tooLarge), /too large \(5\)/);
 * // …and a body without one fails once it passes the cap
 * const streamed = new Response(ReadableStream.from([new Uint8Array(3), new Uint8Array(3)]));
 * await assert.rejects(readBodyCapped(streamed, 4, tooLarge), /too large \(streamed\)/);
 * ```
 */
export async function readBodyCapped(
  message: Request | Response,
  cap: number,
  tooLarge: (declared?: number) => Error,
): Promise<Uint8Array> {
  const declared = Number(message.headers.get("content-length") ?? NaN);
  if (declared > cap) {
    await message.body?.cancel().catch(() => {});
    throw tooLarge(declared);
  }
  const parts: Uint8Array[] = [];
  let n = 0;
  if (message.body) {
    for await (const chunk of message.body) {
      n += chunk.byteLength;
      if (n > cap) throw tooLarge();
      parts.push(chunk);
    }
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}
