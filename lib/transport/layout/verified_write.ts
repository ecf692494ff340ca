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
import type { DirectWriter } from "../../util/direct_write.ts";
import { cancelOnAbort } from "../../util/stop_read.ts";
import { takeBytes, takeReadsInPlace } from "../target.ts";

/**
 * Smallest blob written past the page cache (64 MiB; see {@link writeVerified}'s `path`):
 * below it a worker's start costs more than the page cache's copy.
 */
export const DIRECT_MIN = 64 << 20;

/**
 * Stream `content` into `file` through the verifier, written out (not yet
 * synced: each layout makes its blobs durable together before the index
 * that names them — an oci-dir with one round of fdatasync before
 * `index.json`, an oci-archive with one fdatasync of the whole tar). Chunks
 * are verified before they are buffered, so a stream longer than the
 * expected size fails at the first chunk past it. Content whole in memory
 * already (a `bytesStream`: a small blob a download read whole, a manifest)
 * is checked with one hash — none when its producer vouched for exactly
 * this digest and size — and written in one call: the bytes written are the
 * bytes hashed, even when their owner changes them meanwhile. The caller owns `file`
 * (open and close).
 *
 * @param content the bytes
 * @param file open, writable file
 * @param expected expected digest/size (either may be absent)
 * @param what names the content in errors
 * @param signal stops the write, also while it waits on the source (it rejects with the
 *   signal's reason, and the source is cancelled with it)
 * @param path the path of `file`, when it is a new, empty file: a stream of a known size of
 *   {@link DIRECT_MIN} or more is then written past the page cache where the system allows it
 *   (`O_DIRECT` from a worker thread: `util/direct_write.ts`)
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
  signal?: AbortSignal,
  path?: string,
): Promise<Measured> {
  signal?.throwIfAborted();
  const whole = takeBytes(content);
  if (whole) {
    const vouched = vouchedFor(content);
    if (
      vouched?.digest !== undefined && vouched.digest === expected.digest &&
      vouched.size === expected.size && whole.byteLength === expected.size
    ) {
      // its producer verified these bytes, and holds them for no one else
      await writeWhole(file, whole);
      return { digest: vouched.digest, size: whole.byteLength };
    }
    // The caller may still hold these bytes and change them while this runs: the file must
    // get the very bytes hashed (else a blob is stored under a digest it does not have). A
    // small write happens in the same turn as the hash takes its copy (WebCrypto copies its
    // input when called); a large one is written from a copy of its own.
    if (whole.byteLength >= WRITE_BLOCK) {
      const own = whole.slice();
      const got = await verifyBytes(own, expected, what);
      await writeAll(file, own);
      return got;
    }
    writeSmall(file, whole);
    return await verifyBytes(whole, expected, what);
  }
  // a stream its producer verifies against the same digest is only counted here
  const v = new Verifier(expected, what, { source: content, offThread: true });
  // a large blob goes past the page cache where it can (else: through it, in blocks)
  const direct = path !== undefined && (expected.size ?? 0) >= DIRECT_MIN
    ? await (await import("../../util/direct_write.ts")).DirectWriter.open(path, file)
    : undefined;
  const w: BlockWriter | DirectWriter = direct ?? new BlockWriter(file, expected.size);
  // a download's bytes land in the direct writer's ring itself (no copy between)
  const inPlace = direct ? takeReadsInPlace(content) : undefined;
  // a byte stream is read straight into the write blocks (no garbage chunks:
  // a 1 GiB read is ≈ 2 × faster and ≈ 80 MB smaller than with 64 KiB chunks)
  let byob: ReadableStreamBYOBReader | undefined;
  if (!inPlace) {
    try {
      byob = content.getReader({ mode: "byob" });
    } catch { /* not a byte stream */ }
  }
  const reader = inPlace ?? byob ?? content.getReader();
  // a read waiting on a source that has nothing yet ends when the signal aborts
  using _stop = cancelOnAbort(reader, signal);
  try {
    if (inPlace && direct) {
      while (true) {
        const into = await direct.spaceInRing();
        const n = await inPlace.read(into);
        signal?.throwIfAborted();
        if (n === null) break;
        v.update(into.subarray(0, n)); // past the expected size: fails before it is written
        direct.wrote(n);
      }
    } else if (byob) {
      while (true) {
        const { value, done } = await byob.read(w.space());
        signal?.throwIfAborted();
        if (value) {
          v.update(value); // past the expected size: fails before it is written
          await w.filled(value); // (also when done: the block's memory comes back)
        }
        if (done) break;
      }
    } else {
      const chunks = reader as ReadableStreamDefaultReader<Uint8Array>;
      while (true) {
        const { value, done } = await chunks.read();
        signal?.throwIfAborted();
        if (done) break;
        v.update(value);
        await w.write(value);
      }
    }
    await w.flush();
  } catch (e) {
    v.dispose();
    // the source released, told why (a stopped copy's reason reaches it as given)
    await reader.cancel(e).catch(() => {});
    await w.settle();
    throw e;
  }
  return v.finish();
}

/** Bytes at hand written out: a large write through the I/O threads, a small one at once. */
async function writeWhole(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  if (bytes.byteLength >= WRITE_BLOCK) await writeAll(file, bytes);
  else writeSmall(file, bytes);
}

/** A small write at once (no round trip through the I/O threads). */
function writeSmall(file: Deno.FsFile, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.byteLength;) off += file.writeSync(bytes.subarray(off));
}
