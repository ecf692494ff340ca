/**
 * Concurrency primitives, one of each: {@link Limiter} (a counting semaphore:
 * at most `n` tasks at once), {@link Mutex} (one at a time, in order) and
 * {@link forEachBounded} (a bounded map over a list that stops starting new
 * items after a failure).
 *
 * @module
 */

/**
 * A counting semaphore limiting concurrent work.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Limiter } from "./concurrency.ts";
 * const l = new Limiter(2);
 * let running = 0, most = 0;
 * const task = async (n: number) => {
 *   most = Math.max(most, ++running);
 *   await new Promise((r) => setTimeout(r, 1));
 *   running--;
 *   return n * 2;
 * };
 * assert.deepEqual(await Promise.all([1, 2, 3, 4].map((n) => l.run(() => task(n)))), [2, 4, 6, 8]);
 * assert.equal(most, 2);
 * ```
 */
export class Limiter {
  #free: number;
  #waiting: (() => void)[] = [];
  /**
   * Create a Limiter.
   * @param n maximum concurrent tasks
   */
  constructor(n: number) {
    this.#free = Math.max(1, n);
  }
  /**
   * Run a task when a slot is free.
   * @param fn the task
   * @returns its result
   */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/**
 * A simple mutex: run tasks one at a time, in order. A task that fails does
 * not stop the ones queued after it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Mutex } from "./concurrency.ts";
 * const m = new Mutex();
 * const order: string[] = [];
 * const step = (name: string, ms: number) =>
 *   m.run(async () => {
 *     order.push(`${name}+`);
 *     await new Promise((r) => setTimeout(r, ms));
 *     order.push(`${name}-`);
 *     return name;
 *   });
 * const failing = m.run(() => Promise.reject(new Error("boom")));
 * assert.deepEqual(await Promise.all([step("a", 5), step("b", 1)]), ["a", "b"]);
 * await assert.rejects(failing, /boom/);
 * assert.deepEqual(order, ["a+", "a-", "b+", "b-"]);
 * ```
 */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  /**
   * Run `fn` when the tasks queued before it are done. With a `signal`, a
   * task still waiting for its turn is given up the moment the signal aborts
   * (it rejects with the signal's reason, and `fn` never runs); once `fn`
   * has started it runs to its own end (pass it the signal to stop it).
   *
   * @param fn the critical section
   * @param signal gives up the wait for the turn
   * @returns its result
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Mutex } from "./concurrency.ts";
   * const m = new Mutex();
   * let release = () => {};
   * const first = m.run(() => new Promise<string>((r) => release = () => r("first")));
   * const stop = new AbortController();
   * let ran = false;
   * const second = m.run(async () => {
   *   ran = true;
   * }, stop.signal);
   * stop.abort(new Error("no longer wanted"));
   * await assert.rejects(second, /no longer wanted/); // at once: the first still holds it
   * release();
   * assert.equal(await first, "first");
   * assert.equal(await m.run(() => Promise.resolve(ran)), false); // never ran
   * ```
   */
  run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (!signal) {
      const p = this.#tail.then(fn, fn);
      this.#tail = p.catch(() => {});
      return p;
    }
    if (signal.aborted) return Promise.reject(signal.reason);
    let started = false;
    const turn = () => {
      if (signal.aborted) return Promise.reject(signal.reason);
      started = true;
      return fn();
    };
    const p = this.#tail.then(turn, turn);
    this.#tail = p.catch(() => {});
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        if (!started) reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }
}

/**
 * Run `fn` over `items`, at most `n` at once; after a failure no new item is
 * started, and the first failure is thrown once the running ones settled.
 *
 * @param items the items, started in order
 * @param n most running at once
 * @param fn the work for one item
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { forEachBounded } from "./concurrency.ts";
 * const seen: number[] = [];
 * await forEachBounded([1, 2, 3, 4, 5], 2, async (n) => {
 *   await new Promise((r) => setTimeout(r, 1));
 *   seen.push(n);
 * });
 * assert.deepEqual(seen.sort(), [1, 2, 3, 4, 5]);
 * // one at a time: the failure of item 2 means item 3 never starts
 * const started: number[] = [];
 * await assert.rejects(
 *   forEachBounded([1, 2, 3], 1, async (n) => {
 *     started.push(n);
 *     if (n === 2) throw new Error("no");
 *   }),
 *   /no/,
 * );
 * assert.deepEqual(started, [1, 2]);
 * ```
 */
export async function forEachBounded<T>(
  items: readonly T[],
  n: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { reason: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failure ??= { reason: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failure) throw failure.reason;
}
