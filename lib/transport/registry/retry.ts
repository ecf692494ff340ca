/**
 * When the registry client tries a request again, and how long it waits:
 * which answers are worth another attempt (408, 429, 5xx gateway and
 * unavailable statuses) and which failures are not (TLS trust, unknown
 * hosts, a download too slow on average), exponential backoff with jitter,
 * the delay a `Retry-After` header asks for, and the budget of time one
 * request may spend waiting between its attempts.
 *
 * @module
 */
import { causeChain, RegistryTimeoutError } from "./http.ts";

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
 * Failures a retry cannot mend: TLS trust and unknown hosts, and a download
 * too slow on average.
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
  return /certificate|UnknownIssuer|handshake|tls|dns error|failed to lookup|Name or service not known/i
    .test(causeChain(e));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
   * @returns false (at once) when it does not
   */
  async pause(ms: number): Promise<boolean> {
    if (!this.allows(ms)) return false;
    this.#waitedMs += ms;
    await sleep(ms);
    return true;
  }
}
