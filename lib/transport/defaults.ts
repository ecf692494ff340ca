/**
 * The transport's defaults, in one module that imports nothing: how many
 * requests go at once, the network limits, when a download goes in ranges.
 * The copy and the registry client apply them; the CLI's help shows them
 * without loading either.
 *
 * @module
 */

/** Requests in flight at once by default: measured best for many small blobs. */
export const DEFAULT_CONCURRENCY = 8;
/** Transfers of large blobs at once by default (each can hold 8 MiB of blocks and a hash ring). */
export const DEFAULT_LARGE_TRANSFERS = 4;
/** A blob this size or larger counts as large (1 MiB). */
export const LARGE_BLOB = 1 << 20;
/**
 * A blob this size or larger is downloaded (whole or in ranges) by ocipkg's
 * HTTP/1.1 client, its body read straight into the reader's buffers
 * (`http1Fetch`); smaller ones by `fetch` (16 MiB: below it, no gain was
 * measured, and `fetch` may multiplex them over one HTTP/2 connection).
 */
export const HTTP1_MIN = 16 << 20;

/**
 * Default network limits (milliseconds, bytes per second).
 *
 * - `connectTimeoutMs` 30 s: connecting (DNS, TCP, TLS) and waiting for the
 *   response headers. A request with a body gets extra time to send it at
 *   `minBytesPerSecond`.
 * - `idleTimeoutMs` 30 s: a response body that delivers no bytes for this
 *   long fails.
 * - `totalTimeoutMs` 5 min: the whole request (all redirect hops, headers and
 *   body) for manifests, tokens, tag pages, error bodies, uploads (plus the
 *   body's size at `minBytesPerSecond`).
 * - `minBytesPerSecond` 16 KiB/s: blob downloads have no total time limit;
 *   instead, once `totalTimeoutMs` has passed, the average rate of the
 *   download (bytes over the time spent waiting for the network, so a slow
 *   consumer does not count) must be at least this. A 10 GiB blob may thus
 *   take up to ≈ 7.6 days at the floor; any faster link is never cut.
 * - `speedLimit` 1 KiB/s over `speedTimeMs` 30 s: the low-speed limit (curl's
 *   `--speed-limit`/`--speed-time`). A response body — any: blobs,
 *   manifests, tag pages, tokens, error bodies — that delivers fewer than
 *   `speedLimit × speedTimeMs` bytes in any window of `speedTimeMs` (of time
 *   spent waiting for the network: a slow consumer does not count) fails,
 *   naming the host and the rate it measured: a blob served at one byte a
 *   second ends after 30 s, a slow but steady link keeps going. It is not
 *   retried, and a download is not resumed after it. A body silent for the
 *   whole window is a stall, left to `idleTimeoutMs` (resumed, see
 *   `DownloadStalls`) when that is not longer than the window.
 * - `retryBudgetMs` 60 s: the total time one request may spend waiting
 *   between retries (backoff and `Retry-After`). A `Retry-After` beyond what
 *   is left fails at once ("<host> asked to retry after 3600 s").
 *
 * Two deadlines are shared, each `SHARED_DEADLINE_FACTOR` (1.5) times a
 * limit: the attempts of one request share 1.5 × `connectTimeoutMs` (45 s;
 * see `retry.ts`), and the stalls of one blob download, across its resumed
 * and ranged requests, 1.5 × `idleTimeoutMs` (45 s).
 */
export const DEFAULT_TIMEOUTS = {
  connectTimeoutMs: 30_000,
  idleTimeoutMs: 30_000,
  totalTimeoutMs: 300_000,
  minBytesPerSecond: 16 * 1024,
  speedLimit: 1024,
  speedTimeMs: 30_000,
  retryBudgetMs: 60_000,
} as const;

/** Default of `rangeParts`: ranged requests in flight for one large blob. */
export const DEFAULT_RANGE_PARTS = 4;
/** Default of `rangeThreshold`: blobs from this size are fetched in parallel ranges (32 MiB). */
export const DEFAULT_RANGE_THRESHOLD = 32 * 1024 * 1024;
/** Default of `rangeSegmentSize`: bytes per ranged request (8 MiB). */
export const DEFAULT_RANGE_SEGMENT = 8 * 1024 * 1024;
