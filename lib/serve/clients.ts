/**
 * Who a request comes from, and how fast each client may send requests.
 *
 * `serve` gives every client its own share of connections, upload sessions
 * and request rate. A client is its remote address ({@link addressKey}: an
 * IPv4 address, or the /64 network of an IPv6 address, since one host is
 * handed a whole /64) or, once a request is authenticated, its user
 * ({@link userKey}). Requests are metered per client by a token bucket
 * ({@link RateMeter}); the table of buckets holds only clients whose bucket is
 * not full, so it stays small however many addresses knock.
 *
 * @module
 */

/**
 * The client key of a remote address: an IPv4 address as it is (an
 * IPv4-mapped IPv6 address as its IPv4 address), an IPv6 address as its /64
 * network.
 *
 * @param hostname the address (brackets and a `%zone` are ignored)
 * @returns the key, e.g. `192.0.2.7` or `2001:db8:0:1::/64`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addressKey } from "./clients.ts";
 * assert.equal(addressKey("192.0.2.7"), "192.0.2.7");
 * assert.equal(addressKey("::ffff:192.0.2.7"), "192.0.2.7");
 * // every address of a /64 is one client
 * assert.equal(addressKey("2001:db8:0:1:aaaa::1"), "2001:db8:0:1::/64");
 * assert.equal(addressKey("[2001:db8::1%eth0]"), "2001:db8:0:0::/64");
 * assert.equal(addressKey("::1"), "0:0:0:0::/64");
 * ```
 */
export function addressKey(hostname: string): string {
  let h = hostname.toLowerCase().replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (mapped) return mapped[1]!;
  if (!h.includes(":")) return h;
  if (/\d+\.\d+\.\d+\.\d+$/.test(h)) h = h.replace(/:[^:]*$/, ":0:0"); // embedded IPv4: the host part
  const [head, tail] = h.split("::") as [string, string | undefined];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined
    ? left
    : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  const net = groups.slice(0, 4).map((g) => (g.replace(/^0+(?=.)/, "") || "0"));
  while (net.length < 4) net.push("0");
  return `${net.join(":")}::/64`;
}

/**
 * The client key of an authenticated user.
 *
 * @param user the user name
 * @returns the key, `user:<name>` (never an address: `user` is not hexadecimal)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { userKey } from "./clients.ts";
 * assert.equal(userKey("alice"), "user:alice");
 * ```
 */
export function userKey(user: string): string {
  return `user:${user}`;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Most buckets kept; past it the oldest are dropped (as if they had refilled). */
const MAX_BUCKETS = 65_536;

/**
 * Token buckets, one per client: each holds up to `burst` tokens, refills at
 * `rate` tokens per second, and a request takes one. A rate of 0 meters
 * nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RateMeter } from "./clients.ts";
 * const meter = new RateMeter(1, 2); // 1 request/s, bursts of 2
 * assert.equal(meter.take("a", 0), 0);
 * assert.equal(meter.take("a", 0), 0);
 * assert.equal(meter.take("a", 0), 1000); // empty: a token in 1000 ms
 * assert.equal(meter.take("b", 0), 0); // another client has its own bucket
 * assert.equal(meter.take("a", 1000), 0); // refilled
 * assert.equal(meter.wait("a", 1000), 1000); // looks, takes nothing
 * ```
 */
export class RateMeter {
  #rate: number;
  #burst: number;
  #buckets = new Map<string, Bucket>();

  /**
   * @param rate tokens per second (0: no limit)
   * @param burst most tokens a bucket holds (at least 1)
   */
  constructor(rate: number, burst: number) {
    this.#rate = rate;
    this.#burst = Math.max(1, burst);
  }

  /** Clients with a bucket that is not full. */
  get size(): number {
    return this.#buckets.size;
  }

  /**
   * Take a token from a client's bucket.
   *
   * @param key the client
   * @param now the time in ms (default `performance.now()`)
   * @returns 0 when taken, else the ms until the bucket holds a token
   */
  take(key: string, now: number = performance.now()): number {
    const wait = this.wait(key, now);
    if (wait === 0 && this.#rate > 0) this.#buckets.get(key)!.tokens -= 1;
    return wait;
  }

  /**
   * Whether a client's bucket holds a token, without taking it.
   *
   * @param key the client
   * @param now the time in ms (default `performance.now()`)
   * @returns 0 when it does, else the ms until it does
   */
  wait(key: string, now: number = performance.now()): number {
    if (!(this.#rate > 0)) return 0;
    let b = this.#buckets.get(key);
    if (b) {
      b.tokens = Math.min(this.#burst, b.tokens + Math.max(0, now - b.at) * this.#rate / 1000);
      b.at = now;
    } else {
      if (this.#buckets.size >= 4096) this.#sweep(now);
      b = { tokens: this.#burst, at: now };
      this.#buckets.set(key, b);
    }
    return b.tokens >= 1 ? 0 : Math.ceil((1 - b.tokens) * 1000 / this.#rate);
  }

  /** Drop the buckets that have refilled (they hold nothing to remember). */
  #sweep(now: number): void {
    for (const [key, b] of this.#buckets) {
      if (b.tokens + (now - b.at) * this.#rate / 1000 >= this.#burst) this.#buckets.delete(key);
    }
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size < MAX_BUCKETS) break;
      this.#buckets.delete(key);
    }
  }
}
