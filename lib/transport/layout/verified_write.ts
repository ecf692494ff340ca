/**
 * A blob written to disk through the one verifier: the layouts (`oci_dir.ts`,
 * `oci_archive.ts`) store every blob with {@link writeVerified}, so what lands
 * in a file is exactly the digest and size its descriptor names. It joins the
 * verifier (`oci/digest.ts`) with the block writer (`util/files.ts`).
 *
 * @module
 */
import {
  type Expected,
  type Measured,
  Verifier,
  verifyBytes,
  vouchedFor,
} from "../../oci/digest.ts";
import { BlockWriter, WRITE_BLOCK, writeAll } from "../../util/files.ts";
import { takeBytes } from "../target.ts";

/**
 * Stream `content` into `file` through the verifier, written out (not yet
 * synced: each layout makes its blobs durable together before the index
 * that names them — an oci-dir with one round of fdatasync before
 * `index.json`, an oci-archive with one fdatasync of the whole tar). Chunks
 * are verified before they are buffered, so a stream longer than the
 * expected size fails at the first chunk past it. Content whole in memory
 * already (a `bytesStream`: a small blob a download read whole, a manifest)
 * is checked with one hash — none when its producer vouched for exactly
 * this digest and size — and written in one call. The caller owns `file`
 * (open and close).
 *
 * @param content the bytes
 * @param file open, writable file
 * @param expected expected digest/size (either may be absent)
 * @param what names the content in errors
 * @returns the measured digest and size
 * @throws {VerificationError} when size or digest differ
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VerificationError } from "@ocipkg/cli";
 * import { digestOf } from "@ocipkg/cli/oci";
 * import { bytesStream } from "../target.ts";
 * import { writeVerified } from "./verified_write.ts";
 * const data = new TextEncoder().encode("hello");
 * const path = await Deno.makeTempFile();
 * using file = await Deno.open(path, { write: true });
 * const got = await writeVerified(bytesStream(data), file, { digest: digestOf(data) }, "greeting");
 * assert.deepEqual(got, { digest: digestOf(data), size: 5 });
 * assert.equal(await Deno.readTextFile(path), "hello");
 * // longer than expected: fails before the extra bytes are written
 * await assert.rejects(writeVerified(bytesStream(data), file, { size: 4 }, "greeting"), VerificationError);
 * await Deno.remove(path);
 * ```
 */
export async function writeVerified(
  content: ReadableStream<Uint8Array>,
  file: Deno.FsFile,
  expected: Expected,
  what: string,
): Promise<Measured> {
  const whole = takeBytes(content);
  if (whole) {
    const vouched = vouchedFor(content);
    const got = vouched?.digest !== undefined && vouched.digest === expected.digest &&
        vouched.size === expected.size && whole.byteLength === expected.size
      ? { digest: vouched.digest, size: whole.byteLength }
      : await verifyBytes(whole, expected, what);
    if (whole.byteLength >= WRITE_BLOCK) await writeAll(file, whole);
    else {
      // a small write at once (no round trip through the I/O threads)
      for (let off = 0; off < whole.byteLength;) off += file.writeSync(whole.subarray(off));
    }
    return got;
  }
  // a stream its producer verifies against the same digest is only counted here
  const v = new Verifier(expected, what, { source: content, offThread: true });
  const w = new BlockWriter(file, expected.size);
  // a byte stream is read straight into the write blocks (no garbage chunks:
  // a 1 GiB read is ≈ 2 × faster and ≈ 80 MB smaller than with 64 KiB chunks)
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = content.getReader({ mode: "byob" });
  } catch { /* not a byte stream */ }
  try {
    if (byob) {
      while (true) {
        const { value, done } = await byob.read(w.space());
        if (value) {
          v.update(value); // past the expected size: fails before it is written
          await w.filled(value); // (also when done: the block's memory comes back)
        }
        if (done) break;
      }
    } else {
      for await (const chunk of content) {
        v.update(chunk);
        await w.write(chunk);
      }
    }
    await w.flush();
  } catch (e) {
    v.dispose();
    await byob?.cancel(e).catch(() => {});
    await w.settle();
    throw e;
  }
  return v.finish();
}
