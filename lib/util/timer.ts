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

/** Longest runtime timer armed at once: 2^30 ms (a longer wait is armed again when it ends). */
const MAX_ARM_MS = 2 ** 30;

/**
 * A timer that can be set, moved and cleared as often as wanted. A runtime
 * timer (`AbortSignal.timeout`) cannot be cancelled: one armed for an alarm
 * later cleared runs out unheard, holding its memory until then (300 s for
 * a request's total timeout). So every alarm shares one: it is armed for
 * the earliest alarm set, or before it, and on going off rings those due
 * and arms the rest. An alarm moved later (an idle timeout restarted on
 * every read) or a fresh one set no earlier than it arms nothing; one moved
 * earlier arms a timer for the largest power of two of ms within its wait
 * (woken early, it arms the rest), so that moving it earlier ms by ms arms
 * one per halving, not one per move. Like `setTimeout`, a set alarm keeps
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
  /** The alarms set (not yet rung). */
  static #set = new Set<Alarm>();
  /** The one runtime timer armed, when it goes off, and whether it is listened to. */
  static #signal: AbortSignal | undefined;
  static #signalAt = Infinity;
  static #listening = false;
  /** When it rings (`performance.now()`); Infinity when clear. */
  #due = Infinity;
  #ring: (() => void) | undefined;

  /**
   * Ring `fn` once in `ms` milliseconds, replacing what was set before.
   *
   * @param ms delay from now
   * @param fn called when it rings
   */
  set(ms: number, fn: () => void): void {
    this.#ring = fn;
    if (!Number.isFinite(ms)) {
      this.#unset();
      return;
    }
    this.#due = performance.now() + Math.max(0, ms);
    Alarm.#set.add(this);
    const armed = Alarm.#signal !== undefined && !Alarm.#signal.aborted;
    if (armed && Alarm.#signalAt <= this.#due) Alarm.#listen(); // it goes off first
    else Alarm.#arm(this.#due - performance.now());
  }

  /** Do not ring (what was set is dropped). */
  clear(): void {
    this.#ring = undefined;
    this.#unset();
  }

  /** Whether it is set and has not rung. */
  get pending(): boolean {
    return this.#ring !== undefined && this.#due !== Infinity;
  }

  #unset(): void {
    this.#due = Infinity;
    Alarm.#set.delete(this);
    if (Alarm.#set.size === 0) Alarm.#unlisten(); // nothing set: the process may end
  }

  static #arm(ms: number): void {
    Alarm.#unlisten();
    const wait = ms < 1
      ? Math.max(0, Math.ceil(ms))
      : Math.min(MAX_ARM_MS, 2 ** Math.floor(Math.log2(ms)));
    Alarm.#signal = AbortSignal.timeout(wait);
    Alarm.#signalAt = performance.now() + wait;
    Alarm.#listen();
  }

  /** Listened to, the runtime timer keeps the process alive (Deno refs it while it has listeners). */
  static #listen(): void {
    if (Alarm.#listening || Alarm.#signal === undefined) return;
    Alarm.#signal.addEventListener("abort", Alarm.#wake, { once: true });
    Alarm.#listening = true;
  }

  static #unlisten(): void {
    if (!Alarm.#listening) return;
    Alarm.#signal!.removeEventListener("abort", Alarm.#wake);
    Alarm.#listening = false;
  }

  /** The runtime timer went off: ring the alarms due, arm one for the rest. */
  static #wake = (): void => {
    Alarm.#listening = false;
    Alarm.#signal = undefined;
    Alarm.#signalAt = Infinity;
    const now = performance.now();
    const due: Alarm[] = [];
    let next = Infinity;
    for (const alarm of Alarm.#set) {
      if (alarm.#due <= now) due.push(alarm);
      else next = Math.min(next, alarm.#due);
    }
    if (next !== Infinity) Alarm.#arm(next - now);
    for (const alarm of due) {
      const ring = alarm.#ring;
      // a ring before this one cleared it, or set it again
      if (ring === undefined || alarm.#due > now) continue;
      alarm.clear();
      try {
        ring();
      } catch (e) {
        reportError(e); // as a timer's callback that throws is reported; the others still ring
      }
    }
  };
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
