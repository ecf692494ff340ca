/**
 * A tee with bounded memory: `ReadableStream.tee()` buffers without limit
 * when one branch is slower, this one holds at most `limit` chunks for the
 * slower branch and otherwise waits for it. Optionally it also gives each
 * chunk's memory back as soon as both branches are done with it, instead of
 * leaving that to the garbage collector (see {@link TeeOptions.release}).
 *
 * @module
 */

/** Options of {@link teeBounded}. */
export interface TeeOptions {
  /**
   * Read the source into fresh chunks of this many bytes (straight into
   * them, filled, when it is a byte stream) and detach each chunk
   * ({@link ArrayBuffer.prototype.transfer}) once both branches have been
   * given {@link RELEASE_MARGIN} more: its memory is freed then, not when V8
   * collects garbage (which it does only after tens of MB of chunks have
   * piled up). Only for consumers that are done with a chunk by the time
   * they have read that many more — they copy or consume it at once (a
   * layout's writer, a decompressor fed one chunk at a time); a consumer
   * that keeps chunks (collecting them into one) would find them emptied.
   */
  release?: { chunkSize: number };
}

/** Chunks a branch is given after one before that one is detached ({@link TeeOptions.release}). */
export const RELEASE_MARGIN = 4;

/** Two branches of one stream, and a way to fail both at once. */
export interface BoundedTee {
  /** The branches; each sees every chunk, in order. */
  branches: [ReadableStream<Uint8Array>, ReadableStream<Uint8Array>];
  /** Error both branches and cancel the source (when one consumer failed). */
  abort(reason: unknown): void;
  /**
   * Stop feeding branch `i` (its consumer gave up without cancelling it);
   * the other branch goes on alone.
   */
  detach(i: 0 | 1): void;
}

/**
 * Split a stream in two with bounded buffering. A branch that is cancelled
 * stops receiving chunks (the other goes on); when both are, the source is
 * cancelled. A consumer that fails without cancelling must call `abort`.
 *
 * @param source the stream to split
 * @param limit chunks the faster branch may run ahead (default 4)
 * @param options `release`: fresh chunks of a size, freed once both branches are past them
 * @returns the branches and `abort`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { teeBounded } from "./tee.ts";
 * const src = ReadableStream.from([new Uint8Array([1]), new Uint8Array([2])]);
 * const { branches: [a, b] } = teeBounded(src);
 * const [x, y] = await Promise.all([new Response(a).bytes(), new Response(b).bytes()]);
 * assert.deepEqual([...x], [1, 2]);
 * assert.deepEqual([...y], [1, 2]);
 * ```
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RELEASE_MARGIN, teeBounded } from "./tee.ts";
 * const bytes = new Uint8Array(64).map((_, i) => i);
 * const src = ReadableStream.from([bytes.subarray(0, 10), bytes.subarray(10)]);
 * // 8-byte chunks, each given back once both branches have read RELEASE_MARGIN more
 * const { branches } = teeBounded(src, 4, { release: { chunkSize: 8 } });
 * const sums = await Promise.all(branches.map(async (b) => {
 *   let sum = 0;
 *   const seen: Uint8Array[] = [];
 *   for await (const chunk of b) {
 *     sum += chunk.reduce((a, x) => a + x, 0); // consumed at once, not kept
 *     seen.push(chunk);
 *   }
 *   return { sum, seen };
 * }));
 * for (const { sum, seen } of sums) {
 *   assert.equal(sum, (63 * 64) / 2);
 *   assert.equal(seen.length, 8);
 *   assert.equal(seen[0]!.byteLength, 0); // detached: its memory was freed
 *   assert.equal(seen.at(-1)!.byteLength, 8); // not yet RELEASE_MARGIN behind
 * }
 * assert.equal(RELEASE_MARGIN, 4);
 * ```
 */
export function teeBounded(
  source: ReadableStream<Uint8Array>,
  limit = 4,
  options: TeeOptions = {},
): BoundedTee {
  const chunkSize = options.release?.chunkSize;
  let byob: ReadableStreamBYOBReader | undefined;
  if (chunkSize !== undefined) {
    try {
      byob = source.getReader({ mode: "byob" });
    } catch { /* not a byte stream: its own chunks, copied into fresh ones */ }
  }
  const reader = byob ?? source.getReader();
  const queues: Uint8Array[][] = [[], []];
  // release: the chunks given out and not yet detached, oldest first, and how
  // many chunks each branch has been given
  const held: Uint8Array[] = [];
  let heldFrom = 0; // the number of the oldest held chunk
  const given = [0, 0];
  const cancelled = [false, false];
  const controllers: ReadableStreamDefaultController<Uint8Array>[] = [];
  let waiters: (() => void)[] = [];
  let reading: Promise<void> | undefined;
  let done = false;
  let failed = false;
  let failure: unknown;

  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const abort = (reason: unknown) => {
    if (failed) return;
    failed = true;
    failure = reason;
    for (const c of controllers) {
      try {
        c.error(reason);
      } catch { /* already closed */ }
    }
    reader.cancel(reason).catch(() => {});
    wake();
  };
  const readMore = async () => {
    const chunk = chunkSize === undefined ? await readChunk() : await readFresh(chunkSize);
    if (chunk === undefined) done = true;
    else {
      if (chunkSize !== undefined) held.push(chunk);
      for (const i of [0, 1]) if (!cancelled[i]) queues[i]!.push(chunk);
    }
  };
  const readChunk = async () =>
    (await (reader as ReadableStreamDefaultReader<Uint8Array>).read()).value;
  let ended = false;
  let pending: Uint8Array | undefined; // the rest of a default reader's chunk
  /** A fresh chunk of `size` bytes, filled unless the source ends. */
  const readFresh = async (size: number): Promise<Uint8Array | undefined> => {
    let buf = new ArrayBuffer(size);
    let n = 0;
    while (n < size && !ended) {
      if (byob) {
        const r = await byob.read(new Uint8Array(buf, n));
        if (!r.value) return undefined; // cancelled
        buf = r.value.buffer as ArrayBuffer; // the read transferred it
        n += r.value.byteLength;
        if (r.done) ended = true;
        continue;
      }
      const part = pending ?? await readChunk();
      pending = undefined;
      if (!part) {
        ended = true;
        break;
      }
      const take = Math.min(part.byteLength, size - n);
      new Uint8Array(buf, n, take).set(part.subarray(0, take));
      n += take;
      if (take < part.byteLength) pending = part.subarray(take);
    }
    return n === 0 ? undefined : new Uint8Array(buf, 0, n);
  };
  /** Detach the held chunks every live branch is RELEASE_MARGIN chunks past. */
  const sweep = () => {
    const live = [0, 1].filter((i) => !cancelled[i]);
    if (live.length === 0) return;
    const past = Math.min(...live.map((i) => given[i]!)) - RELEASE_MARGIN;
    while (held.length > 0 && heldFrom < past) {
      try {
        (held.shift()!.buffer as ArrayBuffer).transfer(0);
      } catch { /* not detachable: the collector frees it */ }
      heldFrom++;
    }
  };
  const pull = async (i: number, c: ReadableStreamDefaultController<Uint8Array>) => {
    const other = 1 - i;
    for (;;) {
      if (failed) throw failure;
      const q = queues[i]!;
      if (q.length) {
        c.enqueue(q.shift()!);
        given[i]!++;
        if (chunkSize !== undefined) sweep();
        wake();
        return;
      }
      if (done) {
        c.close();
        return;
      }
      if (!cancelled[other] && queues[other]!.length >= limit) {
        await new Promise<void>((resolve) => waiters.push(resolve));
        continue;
      }
      reading ??= readMore().finally(() => {
        reading = undefined;
      });
      try {
        await reading;
      } catch (e) {
        abort(e);
        throw e;
      }
    }
  };
  const detach = (i: number) => {
    cancelled[i] = true;
    queues[i] = [];
    wake();
  };
  const branch = (i: number) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        controllers[i] = c;
      },
      pull: (c) => pull(i, c),
      cancel(reason) {
        detach(i);
        if (cancelled[1 - i]) reader.cancel(reason).catch(() => {});
      },
    }, { highWaterMark: 0 });
  return { branches: [branch(0), branch(1)], abort, detach };
}
