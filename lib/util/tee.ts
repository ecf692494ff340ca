/**
 * A tee with bounded memory: `ReadableStream.tee()` buffers without limit
 * when one branch is slower, this one holds at most `limit` chunks for the
 * slower branch and otherwise waits for it.
 *
 * @module
 */

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
 */
export function teeBounded(source: ReadableStream<Uint8Array>, limit = 4): BoundedTee {
  const reader = source.getReader();
  const queues: Uint8Array[][] = [[], []];
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
    const r = await reader.read();
    if (r.done) done = true;
    else {
      for (const i of [0, 1]) if (!cancelled[i]) queues[i]!.push(r.value);
    }
  };
  const pull = async (i: number, c: ReadableStreamDefaultController<Uint8Array>) => {
    const other = 1 - i;
    for (;;) {
      if (failed) throw failure;
      const q = queues[i]!;
      if (q.length) {
        c.enqueue(q.shift()!);
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
