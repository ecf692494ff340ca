/**
 * Decompressing a layer (gzip, zstd, or none) as a stream, counting the bytes
 * in and out against a budget's ratio limit, so a decompression bomb is
 * refused as soon as it expands past it.
 *
 * @module
 */
import { nodeZlib } from "../util/lazy_node.ts";
import { ArchiveError, OcipkgError, oneLine, ResourceError, systemReason } from "../util/errors.ts";
import type { ExtractBudget } from "./budget.ts";
import { RATIO_SLACK } from "./defaults.ts";
import { ZstdFrameChecker } from "./zstd_frames.ts";

/**
 * Decompress a stream with `node:zlib` (much faster than
 * DecompressionStream), yielding chunks. The input is fed one chunk at a
 * time: the next chunk is read once the decoder has consumed the last (its
 * write callback), so no input chunk is referenced after that — a consumer
 * may then give its memory back (the install path's tee does, see
 * `teeBounded`). Each output chunk is valid until the next one is asked for
 * (a `StreamSource` copies or consumes it by then): the decoder's output
 * buffer it ends is then detached, its memory freed at once instead of
 * when V8 next collects garbage — left to the collector, the decoder's
 * 256 KiB buffers lifted a 4 GiB `get` from 105 MB to 150 MB once V8 began
 * to let more garbage pile up. Decoder errors become {@link ArchiveError}s naming `what`;
 * errors from the input (e.g. the verifier) pass through unchanged. With a
 * `budget`, the bytes in and out are counted and a stream that expands past
 * the budget's ratio limit is refused as soon as it does.
 *
 * @param stream compressed bytes
 * @param compression the algorithm
 * @param what names the content in errors
 * @param budget optional budget whose ratio limit applies
 * @returns decompressed chunks
 */
export async function* decompress(
  stream: ReadableStream<Uint8Array>,
  compression: "gzip" | "zstd" | "none",
  what = "layer",
  budget?: ExtractBudget,
): AsyncGenerator<Uint8Array> {
  if (compression === "none") {
    yield* stream;
    return;
  }
  const z = compression === "gzip"
    ? nodeZlib().createGunzip({ chunkSize: 256 * 1024 })
    : nodeZlib().createZstdDecompress({ chunkSize: 256 * 1024 });
  // node:zlib's zstd decoder ends quietly on a truncated frame: check the framing alongside
  const frames = compression === "zstd" ? new ZstdFrameChecker(what) : undefined;
  const reader = stream.getReader();
  let inputError: unknown; // the input failed (its error is the one reported)
  let stop = false; // the output side is done (finished, failed or abandoned)
  const feeding = (async () => {
    try {
      while (!stop) {
        const { value, done } = await reader.read();
        if (done) {
          if (stop) return; // cancelled below: the output side is done
          frames?.finish();
          z.end();
          return;
        }
        if (budget) budget.compressedIn += value.byteLength;
        frames?.update(value);
        // resolves once the decoder has consumed all of `value` (it waits while
        // its output is not read, so this is also the backpressure)
        await new Promise<void>((resolve, reject) =>
          z.write(value, (e) => e ? reject(e) : resolve())
        );
      }
    } catch (e) {
      if (!stop) {
        inputError ??= e;
        z.destroy(e instanceof Error ? e : new Error(String(e)));
      }
    }
  })();
  try {
    for await (const chunk of z) {
      if (budget) {
        budget.expandedOut += (chunk as Uint8Array).byteLength;
        if (budget.expandedOut > RATIO_SLACK + budget.maxRatio * budget.compressedIn) {
          throw new ArchiveError(
            `${what} expands more than ${budget.maxRatio}:1 when decompressed ` +
              `(${budget.expandedOut} bytes from ${budget.compressedIn}); refused as a decompression bomb`,
          );
        }
      }
      yield chunk as Uint8Array;
      // asked for the next: done with this one; a chunk that ends its buffer
      // is the buffer's last (the decoder writes the next into a new one)
      if (chunk.byteOffset + chunk.byteLength === chunk.buffer.byteLength) {
        try {
          (chunk.buffer as ArrayBuffer).transfer(0);
        } catch { /* not detachable: the collector frees it */ }
      }
    }
    await feeding;
    if (inputError !== undefined) throw inputError;
  } catch (caught) {
    const e = inputError ?? caught;
    if (e instanceof OcipkgError) throw e;
    const reason = systemReason(e);
    if (reason) throw new ResourceError(`${what}: ${reason}`, { cause: e });
    throw new ArchiveError(`${what} is corrupt: invalid ${compression} data (${oneLine(e)})`);
  } finally {
    stop = true;
    z.destroy();
    await reader.cancel().catch(() => {});
  }
}
