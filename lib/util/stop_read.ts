/**
 * A read that a signal ends: how a push stops while it waits on its source.
 * A push's signal ends its requests, but a read from a source that has
 * nothing yet (a slow pipe, a producer that waits on someone else) waits
 * for the source's next chunk, however long that takes; a reader tied to
 * the signal with {@link cancelOnAbort} is cancelled the moment it aborts.
 *
 * @module
 */

/**
 * Cancel `reader` with the signal's reason the moment `signal` aborts: a
 * read waiting on the source ends at once (it answers `done`, so the caller
 * checks the signal after each read, never taking that for the source's
 * end), and the source is told why. Dispose of the result when the reading
 * is over: the listener goes, and a long-lived signal keeps nothing.
 *
 * @param reader the source's reader (default or BYOB, or reads in place)
 * @param signal the signal (none: nothing to do)
 * @returns what removes the listener when disposed of
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cancelOnAbort } from "./stop_read.ts";
 * let told: unknown;
 * // a source that gives one chunk, then waits for ever
 * const source = new ReadableStream<Uint8Array>({
 *   start: (c) => c.enqueue(new Uint8Array(1)),
 *   pull: () => new Promise(() => {}),
 *   cancel: (reason) => { told = reason; },
 * });
 * const stop = new AbortController();
 * const reader = source.getReader();
 * {
 *   using _stop = cancelOnAbort(reader, stop.signal);
 *   assert.equal((await reader.read()).value?.byteLength, 1);
 *   const waiting = reader.read();
 *   stop.abort(new Error("no longer wanted"));
 *   assert.equal((await waiting).done, true); // the read ended: the caller checks the signal
 *   assert.throws(() => stop.signal.throwIfAborted(), /no longer wanted/);
 * }
 * assert.equal((told as Error).message, "no longer wanted");
 * ```
 */
export function cancelOnAbort(
  reader: { cancel(reason?: unknown): Promise<void> },
  signal: AbortSignal | undefined,
): Disposable {
  if (!signal) return { [Symbol.dispose]() {} };
  const onAbort = () => {
    reader.cancel(signal.reason).catch(() => {}); // (released already: nothing to end)
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  return { [Symbol.dispose]: () => signal.removeEventListener("abort", onAbort) };
}
