/**
 * Progress of transfers (`get`, `push`, `pull`, `copy`, `load`), from the
 * copy's events and the registry client's retries:
 *
 * - on a terminal (stderr is a TTY, `TERM` is not `dumb`): live lines, one per
 *   blob in flight (at most {@link MAX_LINES}, the rest counted) and a total
 *   line with bytes, rate and ETA; retries and waits print a line of their own;
 *   the lines are cleared when the transfer ends, fails or is interrupted;
 * - `--progress json`: NDJSON events on stderr, one object per line with a
 *   `type` of `start`, `progress`, `skip`, `retry`, `done` or `error`;
 * - off a terminal: nothing, or with `--verbose` one line per finished blob;
 * - `--quiet`: only errors and the result.
 *
 * After a success one closing line on stderr says what moved (`pushed 3.0 MiB
 * in 1.2 s (2.5 MiB/s), 2 blobs, 1 already there`), except with `--quiet`,
 * `--json` or `--progress json`.
 *
 * The redraw timer is unref'd: it never keeps the process alive.
 *
 * @module
 */
import type { InstallResult } from "../../mod.ts";
import type { Descriptor } from "../oci/mod.ts";
import { ANNOTATION_TITLE } from "../oci/media_types.ts";
import type { CopyEvent, CopyOptions, RetryInfo } from "../transport/mod.ts";
import type { OptionValues } from "./options.ts";
import type { progressOptions } from "./shared.ts";
import { info, out, safe } from "./output.ts";
import {
  closingLine,
  formatBytes,
  formatDuration,
  plural,
  RateMeter,
  Tally,
} from "./progress_text.ts";
import { progressGone, progressShown } from "./signals.ts";

/** Blob lines shown at once on a terminal. */
export const MAX_LINES = 4;

/** What a transfer gets from {@link reporter}: library options, the tally, and `end()`. */
export interface Reporter {
  /** For the library call: events in. */
  options: Pick<CopyOptions, "onProgress" | "progressBytes"> & {
    onRetry?: (r: RetryInfo) => void;
  };
  /** What moved so far. */
  tally: Tally;
  /** Stop the display (its lines cleared); `error` adds an `error` event in JSON mode. */
  end(error?: unknown): void;
}

interface Flight {
  desc: Descriptor;
  bytes: number;
  started: number;
}

const enc = new TextEncoder();
const writeErr = (s: string) => {
  const b = enc.encode(s);
  for (let off = 0; off < b.length;) off += Deno.stderr.writeSync(b.subarray(off));
};

/** Count each event in `tally`, then pass it on. */
function tallying(
  tally: Tally,
  next?: (e: CopyEvent) => void,
): (e: CopyEvent) => void {
  return (e) => {
    if (e.kind === "done") tally.done(e.desc);
    else if (e.kind === "skip") tally.skipped(e.desc);
    next?.(e);
  };
}

/**
 * The reporter for a command's `--progress`/`--quiet`/`--verbose`.
 *
 * @param opts the parsed options
 * @param image the image as the user wrote it (named in JSON events)
 * @returns library options, the tally and an `end`
 */
export function reporter(opts: OptionValues<typeof progressOptions>, image: string): Reporter {
  const mode = opts.progress ?? "auto";
  const tally = new Tally();
  const quiet = (next?: (e: CopyEvent) => void, onRetry?: (r: RetryInfo) => void): Reporter => ({
    options: { onProgress: tallying(tally, next), ...(onRetry ? { onRetry } : {}) },
    tally,
    end() {},
  });
  if (mode === "json") return jsonReporter(image, tally);
  if (opts.quiet || mode === "none") return quiet();
  const tty = mode === "tty" ||
    (Deno.stderr.isTerminal() && Deno.env.get("TERM") !== "dumb");
  if (tty) return ttyReporter(tally);
  if (opts.verbose) {
    return quiet((e) => {
      if (e.kind === "done" || e.kind === "skip") {
        writeErr(safe(`${e.kind === "done" ? "copied" : "skipped"} ${label(e.desc)}`) + "\n");
      }
    }, (r) => writeErr(safe(retryLine(r)) + "\n"));
  }
  return quiet();
}

function jsonReporter(image: string, tally: Tally): Reporter {
  const emit = (o: Record<string, unknown>) => writeErr(JSON.stringify(o) + "\n");
  const blob = (d: Descriptor) => ({ digest: d.digest, size: d.size, mediaType: d.mediaType });
  return {
    options: {
      progressBytes: true,
      onProgress: tallying(tally, (e) => {
        const base = { type: e.kind, ...blob(e.desc), image };
        emit(e.bytes === undefined ? base : { ...base, bytes: e.bytes });
      }),
      onRetry: (r) =>
        emit({
          type: "retry",
          image,
          what: r.what,
          attempt: r.attempt,
          waitMs: r.waitMs,
          reason: r.reason,
        }),
    },
    tally,
    end(error?: unknown) {
      if (error !== undefined) {
        emit({
          type: "error",
          image,
          message: error instanceof Error ? error.message : String(error),
        });
      }
    },
  };
}

/** Redraws per second of the live lines (each one a sample of the rate). */
const TICK_MS = 100;

/**
 * Live lines on a terminal: one per blob in flight and a total line. Nothing
 * is drawn before a blob's size is known; the rate is smoothed and the ETA
 * waits for a few samples ({@link RateMeter}); the lines are cleared when
 * the transfer ends, fails or is interrupted ({@link clearProgress}).
 */
function ttyReporter(tally: Tally): Reporter {
  const flights = new Map<string, Flight>();
  const meter = new RateMeter();
  let doneBytes = 0;
  let knownBytes = 0;
  let drawn = 0; // lines drawn last time (to move back over them)
  const tick = () => {
    const now = Date.now();
    const inFlight = [...flights.values()];
    const total = doneBytes + inFlight.reduce((n, f) => n + f.bytes, 0);
    meter.sample(now, total);
    if (knownBytes === 0) return; // no size known yet: nothing worth a frame
    const lines = inFlight.slice(0, MAX_LINES).map((f) => {
      const pct = f.desc.size > 0 ? Math.floor((100 * f.bytes) / f.desc.size) : 100;
      const r = f.bytes / Math.max((now - f.started) / 1000, 0.001);
      return `  ${label(f.desc).padEnd(24)} ${formatBytes(f.bytes).padStart(10)} / ${
        formatBytes(f.desc.size).padEnd(10)
      } ${String(pct).padStart(3)}% ${formatBytes(r)}/s`;
    });
    if (inFlight.length > MAX_LINES) lines.push(`  … and ${inFlight.length - MAX_LINES} more`);
    const rate = meter.rate === undefined ? "" : ` at ${formatBytes(meter.rate)}/s`;
    const eta = meter.eta(knownBytes - total);
    const there = tally.there > 0 ? `, ${tally.there} already there` : "";
    lines.push(
      `${formatBytes(total)} of ${formatBytes(knownBytes)}${rate}${
        eta === undefined ? "" : `, ETA ${formatDuration(eta)}`
      } — ${plural(tally.blobs, "blob")} done${there}`,
    );
    let s = drawn > 0 ? `\x1b[${drawn}F` : ""; // back to the first line drawn
    for (const l of lines) s += `\x1b[2K${safe(l)}\n`;
    for (let i = lines.length; i < drawn; i++) s += "\x1b[2K\n"; // clear what is left
    if (drawn > lines.length) s += `\x1b[${drawn - lines.length}F`;
    drawn = lines.length;
    writeErr(s);
  };
  const timer = setInterval(tick, TICK_MS);
  Deno.unrefTimer(timer);
  const clear = () => {
    if (drawn > 0) writeErr(`\x1b[${drawn}F\x1b[J`);
    drawn = 0;
  };
  const stop = () => {
    clearInterval(timer);
    clear();
    progressGone(stop);
  };
  progressShown(stop);
  return {
    options: {
      progressBytes: true,
      onProgress: tallying(tally, (e: CopyEvent) => {
        const d = e.desc;
        if (e.kind === "start") {
          flights.set(d.digest, { desc: d, bytes: 0, started: Date.now() });
          knownBytes += d.size;
        } else if (e.kind === "progress") {
          const f = flights.get(d.digest);
          if (f) f.bytes = e.bytes ?? f.bytes;
        } else if (e.kind === "done") {
          flights.delete(d.digest);
          doneBytes += d.size;
        }
      }),
      onRetry: (r) => {
        clear();
        writeErr(safe(retryLine(r)) + "\n");
      },
    },
    tally,
    end: stop,
  };
}

function retryLine(r: RetryInfo): string {
  return `retrying ${r.what} in ${
    formatDuration(r.waitMs / 1000)
  } (attempt ${r.attempt} failed: ${r.reason})`;
}

/** A blob's name on a progress line: its file title, else its short digest. */
function label(d: Descriptor): string {
  const title = d.annotations?.[ANNOTATION_TITLE];
  if (title) return title.length > 24 ? `…${title.slice(-23)}` : title;
  return d.digest.replace(/^(sha\d+:)([0-9a-f]{12}).*$/, "$1$2");
}

/**
 * Run a transfer with the reporter its options ask for; the display ends
 * (and JSON mode reports the `error`) however the transfer ends. After a
 * success, `closing` names what was done, and one line on stderr says how
 * much moved, how fast ({@link closingLine}) — not with `--quiet`, `--json`
 * or `--progress json` (see {@link chatty}).
 *
 * @param opts the command's parsed options
 * @param image the image as the user wrote it
 * @param fn the library call, given the progress options
 * @param closing the verb of the closing line (`pushed`), from the result;
 *   undefined for none
 * @returns what `fn` returns
 */
export async function withProgress<T>(
  opts: OptionValues<typeof progressOptions>,
  image: string,
  fn: (options: Reporter["options"]) => Promise<T>,
  closing?: (result: T) => string | undefined,
): Promise<T> {
  const r = reporter(opts, image);
  const t0 = performance.now();
  try {
    const result = await fn(r.options);
    r.end();
    const verb = closing?.(result);
    if (verb !== undefined && chatty(opts)) {
      info(closingLine(verb, r.tally, (performance.now() - t0) / 1000));
    }
    return result;
  } catch (e) {
    r.end(e);
    throw e;
  }
}

/**
 * Whether human messages (`got …`, `loaded …`) go to stderr: not with
 * `--quiet`, nor with `--progress json` (stderr then carries only events).
 *
 * @param opts the command's parsed options
 * @returns true when they do
 */
export function chatty(opts: OptionValues<typeof progressOptions>): boolean {
  return !opts.quiet && !opts.json && opts.progress !== "json";
}

/**
 * The result of `get`/`load`: the directory, or with `--json` the whole result.
 *
 * @param r what the store did
 * @param opts the command's parsed options
 */
export function reportInstalled(
  r: InstallResult,
  opts: OptionValues<typeof progressOptions>,
): void {
  const { name, digest, dir, status } = r;
  out(opts.json ? JSON.stringify({ name: name.toString(), digest, dir, status }) : dir);
}
