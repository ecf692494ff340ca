/**
 * Progress of transfers (`get`, `push`, `pull`, `copy`, `load`), from the
 * copy's events and the registry client's retries:
 *
 * - on a terminal (stderr is a TTY, `TERM` is not `dumb`): live lines, one per
 *   blob in flight (at most {@link MAX_LINES}, the rest counted) and a total
 *   line with bytes, rate and ETA; retries and waits print a line of their own;
 * - `--progress json`: NDJSON events on stderr, one object per line with a
 *   `type` of `start`, `progress`, `skip`, `retry`, `done` or `error`;
 * - off a terminal: nothing, or with `--verbose` one line per finished blob;
 * - `--quiet`: only errors and the result.
 *
 * The redraw timer is unref'd: it never keeps the process alive.
 *
 * @module
 */
import type { InstallResult } from "../../mod.ts";
import { ANNOTATION_TITLE, type Descriptor } from "../oci/mod.ts";
import type { CopyEvent, CopyOptions, RetryInfo } from "../transport/mod.ts";
import { UsageError } from "../../mod.ts";
import { optionGroup, type OptionValues } from "./options.ts";
import { out, safe } from "./output.ts";

/** Options every transferring command takes. */
export const progressOptions = optionGroup({
  progress: {
    type: "string",
    value: "auto|tty|json|none",
    default: "auto",
    description: "how to show progress on stderr (auto: live lines on a terminal, else none)",
  },
  quiet: { type: "boolean", short: "q", description: "print only errors and the result" },
  verbose: {
    type: "boolean",
    description: "off a terminal, one line per blob transferred or skipped",
  },
  json: { type: "boolean", description: "print the result as one JSON document on stdout" },
});

/** Blob lines shown at once on a terminal. */
export const MAX_LINES = 4;

/** What a transfer gets from {@link reporter}: library options, and `end()`. */
export interface Reporter {
  /** For the library call: events in. */
  options: Pick<CopyOptions, "onProgress" | "progressBytes"> & {
    onRetry?: (r: RetryInfo) => void;
  };
  /** Stop the display; `error` adds an `error` event in JSON mode. */
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

/**
 * The reporter for a command's `--progress`/`--quiet`/`--verbose`.
 *
 * @param opts the parsed options
 * @param image the image as the user wrote it (named in JSON events)
 * @returns library options and an `end`
 */
export function reporter(opts: OptionValues<typeof progressOptions>, image: string): Reporter {
  const mode = opts.progress ?? "auto";
  if (!["auto", "tty", "json", "none"].includes(mode)) {
    throw new UsageError(`invalid --progress '${mode}': use auto, tty, json or none`);
  }
  if (mode === "json") return jsonReporter(image);
  if (opts.quiet || mode === "none") return { options: {}, end() {} };
  const tty = mode === "tty" ||
    (Deno.stderr.isTerminal() && Deno.env.get("TERM") !== "dumb");
  if (tty) return ttyReporter();
  if (opts.verbose) {
    return {
      options: {
        onProgress: (e) => {
          if (e.kind === "done" || e.kind === "skip") {
            writeErr(safe(`${e.kind === "done" ? "copied" : "skipped"} ${label(e.desc)}`) + "\n");
          }
        },
        onRetry: (r) => writeErr(safe(retryLine(r)) + "\n"),
      },
      end() {},
    };
  }
  return { options: {}, end() {} };
}

function jsonReporter(image: string): Reporter {
  const emit = (o: Record<string, unknown>) => writeErr(JSON.stringify(o) + "\n");
  const blob = (d: Descriptor) => ({ digest: d.digest, size: d.size, mediaType: d.mediaType });
  return {
    options: {
      progressBytes: true,
      onProgress: (e) => {
        const base = { type: e.kind, ...blob(e.desc), image };
        emit(e.bytes === undefined ? base : { ...base, bytes: e.bytes });
      },
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

function ttyReporter(): Reporter {
  const flights = new Map<string, Flight>();
  const t0 = Date.now();
  let doneBytes = 0;
  let done = 0;
  let skipped = 0;
  let knownBytes = 0;
  let drawn = 0; // lines drawn last time (to move back over them)
  const draw = () => {
    const now = Date.now();
    const inFlight = [...flights.values()];
    const moving = inFlight.reduce((n, f) => n + f.bytes, 0);
    const total = doneBytes + moving;
    const secs = Math.max((now - t0) / 1000, 0.001);
    const rate = total / secs;
    const left = knownBytes - total;
    const eta = rate > 0 && left > 0 ? ` ETA ${duration(left / rate)}` : "";
    const lines = inFlight.slice(0, MAX_LINES).map((f) => {
      const pct = f.desc.size > 0 ? Math.floor((100 * f.bytes) / f.desc.size) : 100;
      const r = f.bytes / Math.max((now - f.started) / 1000, 0.001);
      return `  ${label(f.desc).padEnd(24)} ${bytes(f.bytes).padStart(10)} / ${
        bytes(f.desc.size).padEnd(10)
      } ${String(pct).padStart(3)}% ${bytes(r)}/s`;
    });
    if (inFlight.length > MAX_LINES) lines.push(`  … and ${inFlight.length - MAX_LINES} more`);
    lines.push(
      `${bytes(total)} of ${bytes(knownBytes)} at ${
        bytes(rate)
      }/s${eta} — ${done} blobs done, ${skipped} already there`,
    );
    let s = drawn > 0 ? `\x1b[${drawn}F` : ""; // back to the first line drawn
    for (const l of lines) s += `\x1b[2K${safe(l)}\n`;
    for (let i = lines.length; i < drawn; i++) s += "\x1b[2K\n"; // clear what is left
    if (drawn > lines.length) s += `\x1b[${drawn - lines.length}F`;
    drawn = lines.length;
    writeErr(s);
  };
  const timer = setInterval(draw, 100);
  Deno.unrefTimer(timer);
  const clear = () => {
    if (drawn > 0) writeErr(`\x1b[${drawn}F\x1b[J`);
    drawn = 0;
  };
  return {
    options: {
      progressBytes: true,
      onProgress: (e: CopyEvent) => {
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
          done++;
        } else if (e.kind === "skip") skipped++;
      },
      onRetry: (r) => {
        clear();
        writeErr(safe(retryLine(r)) + "\n");
        draw();
      },
    },
    end() {
      clearInterval(timer);
      clear();
    },
  };
}

function retryLine(r: RetryInfo): string {
  return `retrying ${r.what} in ${
    duration(r.waitMs / 1000)
  } (attempt ${r.attempt} failed: ${r.reason})`;
}

/** A blob's name on a progress line: its file title, else its short digest. */
function label(d: Descriptor): string {
  const title = d.annotations?.[ANNOTATION_TITLE];
  if (title) return title.length > 24 ? `…${title.slice(-23)}` : title;
  return d.digest.replace(/^(sha\d+:)([0-9a-f]{12}).*$/, "$1$2");
}

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) n /= 1024, i++;
  return i === 0 ? `${Math.round(n)} B` : `${n.toFixed(1)} ${units[i]}`;
}

function duration(s: number): string {
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return m < 60
    ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s`
    : `${Math.floor(m / 60)}h${m % 60}m`;
}

/**
 * Run a transfer with the reporter its options ask for; the display ends
 * (and JSON mode reports the `error`) however the transfer ends.
 *
 * @param opts the command's parsed options
 * @param image the image as the user wrote it
 * @param fn the library call, given the progress options
 * @returns what `fn` returns
 */
export async function withProgress<T>(
  opts: OptionValues<typeof progressOptions>,
  image: string,
  fn: (options: Reporter["options"]) => Promise<T>,
): Promise<T> {
  const r = reporter(opts, image);
  try {
    const result = await fn(r.options);
    r.end();
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
