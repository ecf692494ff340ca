/**
 * The words and numbers of transfer progress: sizes, durations, plurals, a
 * smoothed rate that gives an ETA only once it has seen enough, the tally of
 * a transfer and its closing line (`pushed 300.5 MiB in 6.9 s (43.6 MiB/s),
 * 2 blobs, 1 already there`). No I/O: `progress.ts` draws with these.
 *
 * @module
 */
import type { Descriptor } from "../oci/mod.ts";
import { OCI_INDEX, OCI_MANIFEST } from "../oci/media_types.ts";

/**
 * A size in bytes, binary units.
 * @param n bytes
 * @returns e.g. `512 B`, `1.5 MiB`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatBytes } from "./progress_text.ts";
 * assert.equal(formatBytes(512), "512 B");
 * assert.equal(formatBytes(3 << 19), "1.5 MiB");
 * ```
 */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) n /= 1024, i++;
  return i === 0 ? `${Math.round(n)} B` : `${n.toFixed(1)} ${units[i]}`;
}

/**
 * A duration.
 * @param s seconds
 * @returns e.g. `6.9 s`, `42 s`, `4m05s`, `1h12m`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDuration } from "./progress_text.ts";
 * assert.equal(formatDuration(6.94), "6.9 s");
 * assert.equal(formatDuration(245), "4m05s");
 * ```
 */
export function formatDuration(s: number): string {
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return m < 60
    ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s`
    : `${Math.floor(m / 60)}h${m % 60}m`;
}

/**
 * A count and its noun, singular for one.
 * @param n the count
 * @param noun the singular noun
 * @returns e.g. `1 blob`, `2 blobs`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { plural } from "./progress_text.ts";
 * assert.equal(plural(1, "blob"), "1 blob");
 * assert.equal(plural(0, "blob"), "0 blobs");
 * ```
 */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/**
 * The rate of a transfer, from samples of its byte count taken at regular
 * ticks, smoothed (an exponential moving average), and the ETA it gives —
 * only after {@link RateMeter.SAMPLES_FOR_ETA} samples with bytes moving, so
 * a slow first request does not promise hours.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RateMeter } from "./progress_text.ts";
 * const m = new RateMeter();
 * m.sample(0, 0);
 * m.sample(100, 1000); // 10 000 B/s
 * assert.equal(m.rate, 10_000);
 * assert.equal(m.eta(50_000), undefined); // too few samples yet
 * for (let t = 200; t <= 600; t += 100) m.sample(t, t * 10);
 * assert.equal(m.eta(10_000), 1); // 10 000 B left at 10 000 B/s
 * ```
 */
export class RateMeter {
  /** Samples with bytes moving before an ETA is given. */
  static readonly SAMPLES_FOR_ETA = 5;
  /** The weight of the newest sample. */
  static readonly ALPHA = 0.3;
  #last: { ms: number; bytes: number } | undefined;
  #rate: number | undefined;
  #moving = 0;

  /**
   * Take a sample.
   * @param ms the time, in ms
   * @param bytes the bytes moved so far
   */
  sample(ms: number, bytes: number): void {
    const last = this.#last;
    this.#last = { ms, bytes };
    if (!last || ms <= last.ms) return;
    const now = ((bytes - last.bytes) * 1000) / (ms - last.ms);
    if (bytes > last.bytes || this.#moving > 0) this.#moving++;
    if (this.#moving === 0) return; // nothing has moved yet: no rate to speak of
    this.#rate = this.#rate === undefined
      ? now
      : RateMeter.ALPHA * now + (1 - RateMeter.ALPHA) * this.#rate;
  }

  /** The smoothed rate, in bytes per second; undefined before bytes moved. */
  get rate(): number | undefined {
    return this.#rate;
  }

  /**
   * Seconds left for `left` bytes at the smoothed rate.
   * @param left bytes still to move
   * @returns seconds, or undefined before enough samples (or with nothing moving)
   */
  eta(left: number): number | undefined {
    if (this.#moving < RateMeter.SAMPLES_FOR_ETA || !this.#rate || left <= 0) return undefined;
    return left / this.#rate;
  }
}

/** An OCI or Docker manifest or index (a document, not a blob). */
const isManifest = (d: Descriptor) =>
  d.mediaType === OCI_MANIFEST || d.mediaType === OCI_INDEX ||
  d.mediaType.startsWith("application/vnd.docker.distribution.manifest.");

/**
 * What a transfer did: blobs moved and their bytes, blobs the destination
 * already had. Manifests and indexes are not counted as blobs (their bytes
 * are).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Tally } from "./progress_text.ts";
 * const t = new Tally();
 * t.done({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: "sha256:a", size: 2048 });
 * t.skipped({ mediaType: "application/vnd.oci.image.config.v1+json", digest: "sha256:b", size: 2 });
 * assert.deepEqual([t.blobs, t.bytes, t.there], [1, 2048, 1]);
 * ```
 */
export class Tally {
  /** Blobs moved. */
  blobs = 0;
  /** Bytes moved (blobs, manifests and indexes). */
  bytes = 0;
  /** Blobs the destination already had. */
  there = 0;

  /**
   * Count a moved blob or manifest.
   * @param d what moved
   */
  done(d: Descriptor): void {
    this.bytes += d.size;
    if (!isManifest(d)) this.blobs++;
  }

  /**
   * Count a blob the destination had.
   * @param d what it had
   */
  skipped(d: Descriptor): void {
    if (!isManifest(d)) this.there++;
  }
}

/**
 * The one line that closes a transfer.
 *
 * @param verb what was done, e.g. `pushed`, `got example.com/foo:1,`
 * @param t the tally
 * @param secs how long it took
 * @returns e.g. `pushed 300.5 MiB in 6.9 s (43.6 MiB/s), 2 blobs, 1 already there`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closingLine, Tally } from "./progress_text.ts";
 * const t = Object.assign(new Tally(), { blobs: 2, bytes: 315_097_088, there: 1 });
 * assert.equal(
 *   closingLine("pushed", t, 6.9),
 *   "pushed 300.5 MiB in 6.9 s (43.6 MiB/s), 2 blobs, 1 already there",
 * );
 * const none = Object.assign(new Tally(), { bytes: 420, there: 2 });
 * assert.equal(closingLine("pushed", none, 0.08), "pushed nothing new in 0.1 s: 2 blobs already there");
 * assert.equal(closingLine("copied", new Tally(), 0.3), "copied nothing new in 0.3 s"); // the manifest was there
 * ```
 */
export function closingLine(verb: string, t: Tally, secs: number): string {
  const took = formatDuration(secs);
  if (t.blobs === 0) {
    // every blob there already, or the whole image (then its manifest was all there was to see)
    const there = t.there > 0 ? `: ${plural(t.there, "blob")} already there` : "";
    return `${verb} nothing new in ${took}${there}`;
  }
  const rate = formatBytes(t.bytes / Math.max(secs, 0.001));
  const there = t.there > 0 ? `, ${t.there} already there` : "";
  return `${verb} ${formatBytes(t.bytes)} in ${took} (${rate}/s), ${
    plural(t.blobs, "blob")
  }${there}`;
}
