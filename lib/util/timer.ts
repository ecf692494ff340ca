/**
 * Timers on the runtime's own clock. In Deno 2.9 the global `setTimeout` is
 * `node:timers`' (it returns a `Timeout` object): its first call loads
 * Deno's Node.js timers layer, ≈ 13 ms of a command's start on the machines
 * this was measured on — longer than the request it guards. A
 * {@link Alarm} is made of `AbortSignal.timeout`, the web platform's timer,
 * which costs ≈ 10 µs and loads nothing.
 *
 * @module
 */

/** Longest wait armed at once (a longer one is armed again when it ends): 2^31 − 1 ms. */
const MAX_ARM_MS = 2 ** 31 - 1;

/**
 * A timer that can be set, moved and cleared as often as wanted while at
 * most one runtime timer stands behind it: setting it later than the timer
 * already armed keeps that timer, which on going off arms the rest (so an
 * idle timeout restarted on every read of a long download arms about one
 * timer per timeout, not one per read). Like `setTimeout`, a set alarm keeps
 * the process alive until it rings or is cleared; a cleared one does not.
 * `ms` that is not finite (Infinity, NaN) never rings.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Alarm } from "./timer.ts";
 * const alarm = new Alarm();
 * const rang: string[] = [];
 * alarm.set(20, () => rang.push("first"));
 * alarm.set(30, () => rang.push("second")); // replaces the first
 * await new Promise((r) => new Alarm().set(60, () => r(undefined)));
 * assert.deepEqual(rang, ["second"]);
 * alarm.set(10, () => rang.push("third"));
 * alarm.clear(); // never rings
 * await new Promise((r) => new Alarm().set(30, () => r(undefined)));
 * assert.deepEqual(rang, ["second"]);
 * ```
 */
export class Alarm {
  /** When it rings (`performance.now()`); Infinity when clear. */
  #due = Infinity;
  #ring: (() => void) | undefined;
  /** The runtime timer armed, and when it goes off. */
  #signal: AbortSignal | undefined;
  #signalAt = Infinity;
  #listening = false;
  readonly #onTimer = () => this.#wake();

  /**
   * Ring `fn` once in `ms` milliseconds, replacing what was set before.
   *
   * @param ms delay from now
   * @param fn called when it rings
   */
  set(ms: number, fn: () => void): void {
    this.#ring = fn;
    if (!Number.isFinite(ms)) {
      this.#due = Infinity;
      this.#unlisten();
      return;
    }
    const now = performance.now();
    this.#due = now + Math.max(0, ms);
    const armed = this.#signal !== undefined && !this.#signal.aborted;
    if (armed && this.#signalAt <= this.#due) {
      this.#listen(); // the timer armed goes off first, and arms the rest
    } else {
      this.#arm(this.#due - now);
    }
  }

  /** Do not ring (what was set is dropped). */
  clear(): void {
    this.#ring = undefined;
    this.#due = Infinity;
    this.#unlisten();
  }

  /** Whether it is set and has not rung. */
  get pending(): boolean {
    return this.#ring !== undefined && this.#due !== Infinity;
  }

  #arm(ms: number): void {
    this.#unlisten();
    const wait = Math.min(MAX_ARM_MS, Math.max(0, Math.ceil(ms)));
    this.#signal = AbortSignal.timeout(wait);
    this.#signalAt = performance.now() + wait;
    this.#listen();
  }

  #listen(): void {
    if (this.#listening || this.#signal === undefined) return;
    this.#signal.addEventListener("abort", this.#onTimer, { once: true });
    this.#listening = true;
  }

  #unlisten(): void {
    if (!this.#listening) return;
    this.#signal!.removeEventListener("abort", this.#onTimer);
    this.#listening = false;
  }

  #wake(): void {
    this.#listening = false;
    this.#signal = undefined;
    this.#signalAt = Infinity;
    const ring = this.#ring;
    if (ring === undefined || this.#due === Infinity) return;
    const left = this.#due - performance.now();
    if (left > 0) {
      this.#arm(left);
      return;
    }
    this.#ring = undefined;
    this.#due = Infinity;
    ring();
  }
}

/**
 * Wait `ms` milliseconds on an {@link Alarm} (the process stays alive
 * meanwhile); a `signal` that aborts ends the wait at once, rejecting with
 * its reason.
 *
 * @param ms how long
 * @param signal stops the wait
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sleep } from "./timer.ts";
 * const t0 = performance.now();
 * await sleep(20);
 * assert.ok(performance.now() - t0 >= 19);
 * const stop = new AbortController();
 * const waiting = sleep(60_000, stop.signal);
 * stop.abort(new Error("enough"));
 * await assert.rejects(waiting, /enough/);
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const alarm = new Alarm();
    const stopped = () => {
      alarm.clear();
      reject(signal!.reason);
    };
    alarm.set(ms, () => {
      signal?.removeEventListener("abort", stopped);
      resolve();
    });
    signal?.addEventListener("abort", stopped, { once: true });
  });
}
