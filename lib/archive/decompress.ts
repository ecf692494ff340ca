/**
 * Decompressing a layer (gzip, zstd, or none) as a stream, counting the bytes
 * in and out against a budget's ratio limit, so a decompression bomb is
 * refused as soon as it expands past it.
 *
 * @module
 */
import { nodeStream, nodeZlib } from "../util/lazy_node.ts";
import { ArchiveError, OcipkgError, oneLine, ResourceError, systemReason } from "../util/errors.ts";
import { type ExtractBudget, RATIO_SLACK } from "./budget.ts";
import { ZstdFrameChecker } from "./zstd_frames.ts";

/**
 * Decompress a stream as a Node-stream pipeline (keeps backpressure; much
 * faster than DecompressionStream), yielding chunks. Decoder errors become
 * {@link ArchiveError}s naming `what`; errors from the input (e.g. the
 * verifier) pass through unchanged. With a `budget`, the bytes in and out are
 * counted and a stream that expands past the budget's ratio limit is refused
 * as soon as it does.
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
  const counted = budget || frames
    ? observe(stream, (c) => {
      if (budget) budget.compressedIn += c.byteLength;
      frames?.update(c);
    }, () => frames?.finish())
    : stream;
  const { pipeline, Readable } = nodeStream();
  const out = pipeline(
    Readable.fromWeb(counted as Parameters<typeof Readable.fromWeb>[0]),
    z,
    () => {},
  );
  try {
    for await (const chunk of out) {
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
    }
  } catch (e) {
    if (e instanceof OcipkgError) throw e;
    const reason = systemReason(e);
    if (reason) throw new ResourceError(`${what}: ${reason}`, { cause: e });
    throw new ArchiveError(`${what} is corrupt: invalid ${compression} data (${oneLine(e)})`);
  } finally {
    out.destroy();
  }
}

function observe(
  stream: ReadableStream<Uint8Array>,
  each: (chunk: Uint8Array) => void,
  end: () => void,
): ReadableStream<Uint8Array> {
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, c) {
        each(chunk);
        c.enqueue(chunk);
      },
      flush: end,
    }),
  );
}
