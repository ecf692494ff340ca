/**
 * When the registry client tries a request again, and how long it waits:
 * which answers are worth another attempt (408, 429, 5xx gateway and
 * unavailable statuses) and which failures are not (TLS trust, unknown
 * hosts, a body too slow), exponential backoff with jitter, the delay a
 * `Retry-After` header asks for, the budget of time one request may spend
 * waiting between its attempts, and the deadline its attempts share.
 *
 * **The attempts of a request share one deadline** ({@link RetryDeadline}):
 * 1.5 × the connect timeout (45 s by default; plus, for a request with a
 * body, the time to send it at the minimum rate), counted from the start of
 * the first attempt and counted again after each answer worth a retry (408,
 * 429, 5xx: the registry is alive; after the wait a `Retry-After` asks for).
 * After a failure without an answer — a refused or broken connection, a
 * connect/headers, idle or total timeout, a body that broke off — another
 * attempt starts only if its backoff ends before the deadline, and it waits
 * for its response headers (and a body read whole, for the body) only until
 * the deadline. So a registry that accepts connections and never answers
 * fails after 45 s and two attempts (not 5 × 30 s), one that sends headers
 * and then stalls a manifest after 45 s, while refused connections are still
 * retried with backoff (0.2, 0.4, 0.8, 1.6 s) well within the deadline —
 * except on a loopback host, where a refusal fails at once (see `client.ts`).
 * `Retry-After` waits are bounded by the retry budget as before.
 *
 * @module
 */
import { causeChain, RegistryTimeoutError, SHARED_DEADLINE_FACTOR } from "./http.ts";
import { sleep } from "../../util/timer.ts";

/** A retry about to happen, as `ClientOptions.onRetry` hears of it. */
export interface RetryInfo {
  /** What the request was for, e.g. `blob sha256:… of ghcr.io/org/x`. */
  what: string;
  /** The attempt that failed (1 = the first). */
  attempt: number;
  /** How long ocipkg waits before the next attempt, in ms. */
  waitMs: number;
  /** Why: `429`, `503`, or the connection error (one line, escaped). */
  reason: string;
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/**
 * Whether an answer with this status is worth another attempt.
 *
 * @param status HTTP status
 * @returns true for 408, 429, 500, 502, 503, 504
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { retryableStatus } from "./retry.ts";
 * assert.ok(retryableStatus(503));
 * assert.ok(!retryableStatus(404));
 * ```
 */
export function retryableStatus(status: number): boolean {
  return RETRY_STATUS.has(status);
}

/**
 * Delay asked by a `Retry-After` header (seconds or HTTP date), in ms.
 *
 * @param value header value
 * @returns milliseconds, or undefined when absent/invalid
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { retryAfterMs } from "./retry.ts";
 * assert.equal(retryAfterMs("3"), 3000);
 * assert.equal(retryAfterMs("soon"), undefined);
 * assert.equal(retryAfterMs(new Date(0).toUTCString()), 0); // a date gone by: at once
 * ```
 */
export function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

/**
 * The wait before the attempt after `attempt`: `firstMs` doubled for each
 * attempt before, at most 10 s, times a random factor between 0.5 and 1.5.
 *
 * @param attempt the attempt that failed (1 = the first)
 * @param firstMs the first backoff (`ClientOptions.backoffMs`)
 * @returns milliseconds
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backoffMs } from "./retry.ts";
 * const wait = backoffMs(3, 200); // 800 ms, with jitter
 * assert.ok(wait >= 400 && wait <= 1200);
 * assert.ok(backoffMs(20, 200) <= 15_000);
 * ```
 */
export function backoffMs(attempt: number, firstMs: number): number {
  const base = firstMs * 2 ** (attempt - 1);
  return Math.round(Math.min(base, 10_000) * (0.5 + Math.random()));
}

/**
 * Failures a retry cannot mend: TLS trust and unknown hosts, and a body too
 * slow (below the low-speed limit, or a download too slow on average).
 *
 * @param e the failure
 * @returns true when asking again is pointless
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPermanent } from "./retry.ts";
 * assert.ok(isPermanent(new TypeError("dns error: failed to lookup address information")));
 * assert.ok(!isPermanent(new TypeError("connection reset by peer")));
 * ```
 */
export function isPermanent(e: unknown): boolean {
  if (e instanceof RegistryTimeoutError) return e.kind === "rate";
  // and a server speaking the other scheme (http to https, https to http) stays so
  return /certificate|UnknownIssuer|handshake|tls|dns error|failed to lookup|Name or service not known|invalid HTTP version parsed|InvalidContentType|received corrupt message/i
    .test(causeChain(e));
}

/**
 * The time one request may spend waiting between its attempts, and what it
 * has spent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RetryBudget } from "./retry.ts";
 * const budget = new RetryBudget(50);
 * assert.ok(budget.allows(30));
 * assert.ok(await budget.pause(30)); // waited 30 ms
 * assert.ok(!budget.allows(30)); // 60 ms in all would be over
 * assert.ok(!(await budget.pause(30))); // so it does not wait
 * ```
 */
export class RetryBudget {
  /** The most time to wait, in ms. */
  readonly budgetMs: number;
  #waitedMs = 0;

  /**
   * Create a RetryBudget.
   * @param budgetMs the most time to wait, in ms (`ClientOptions.retryBudgetMs`)
   */
  constructor(budgetMs: number) {
    this.budgetMs = budgetMs;
  }

  /**
   * Whether waiting `ms` more stays within the budget.
   * @param ms the wait
   * @returns true when it does
   */
  allows(ms: number): boolean {
    return this.#waitedMs + ms <= this.budgetMs;
  }

  /**
   * Wait before the next attempt if the budget allows.
   * @param ms the wait
   * @param signal stops the wait (rejecting with its reason)
   * @returns false (at once) when it does not
   */
  async pause(ms: number, signal?: AbortSignal): Promise<boolean> {
    if (!this.allows(ms)) return false;
    this.#waitedMs += ms;
    await sleep(ms, signal);
    return true;
  }
}

/**
 * The deadline the attempts of one request share (see the module doc):
 * {@link SHARED_DEADLINE_FACTOR} × the connect timeout, plus the time to
 * send the request's body.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RetryDeadline } from "./retry.ts";
 * const deadline = new RetryDeadline(1000, 0, 0); // 1 s connect timeout, no body; started at 0
 * assert.equal(deadline.spanMs, 1500);
 * assert.ok(deadline.allows(200, 1000)); // a backoff of 200 ms after a timeout at 1 s
 * assert.ok(!deadline.allows(200, 1400)); // would start at 1.6 s: no
 * deadline.restart(1400); // the registry answered 503
 * assert.equal(deadline.end, 2900);
 * ```
 */
export class RetryDeadline {
  /** Its length, in ms. */
  readonly spanMs: number;
  #end: number;

  /**
   * Start a deadline.
   * @param connectMs the connect timeout
   * @param sendMs the time to send the request's body at the minimum rate
   * @param now the start of the first attempt (`performance.now()`)
   */
  constructor(connectMs: number, sendMs = 0, now: number = performance.now()) {
    this.spanMs = SHARED_DEADLINE_FACTOR * connectMs + sendMs;
    this.#end = now + this.spanMs;
  }

  /** When it passes (`performance.now()` time). */
  get end(): number {
    return this.#end;
  }

  /**
   * Whether an attempt after a wait of `ms` starts before the deadline.
   * @param ms the wait (backoff)
   * @param now the time now
   * @returns true when it does
   */
  allows(ms: number, now: number = performance.now()): boolean {
    return now + ms < this.#end;
  }

  /**
   * Count the deadline again from now (the registry answered).
   * @param now the time now
   */
  restart(now: number = performance.now()): void {
    this.#end = now + this.spanMs;
  }
}
