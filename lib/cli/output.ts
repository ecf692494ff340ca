/**
 * Everything the CLI prints goes through here: each line is escaped with
 * `printable`, since any of it may hold registry or archive data. Once a
 * command has written data to stdout (`-o -`), result lines go to stderr:
 * stdout carries nothing else.
 *
 * @module
 */
import { printable } from "../util/text.ts";
import { stdoutCarriesData } from "../util/stdio.ts";

/**
 * Escape control characters line by line, keeping the newlines.
 * @param s text
 * @returns text safe for a terminal
 */
export const safe = (s: string): string => s.split("\n").map(printable).join("\n");

/**
 * Print a result line (stdout; stderr when stdout carries data).
 * @param s text
 */
export const out = (s: string): void =>
  stdoutCarriesData() ? console.error(safe(s)) : console.log(safe(s));

/**
 * Print result lines, as {@link out} prints each, a few hundred to a write:
 * `list` of 10,000 images is some 20 writes, not 10,000.
 * @param lines the lines
 */
export function outLines(lines: Iterable<string>): void {
  let batch: string[] = [];
  for (const line of lines) {
    batch.push(line);
    if (batch.length === 512) {
      out(batch.join("\n"));
      batch = [];
    }
  }
  if (batch.length > 0) out(batch.join("\n"));
}

/**
 * Print a message for the user (stderr).
 * @param s text
 */
export const info = (s: string): void => console.error(safe(s));

/**
 * A number of bytes for people: `512 B`, `4.0 KiB`, `12.3 MiB`, `1.5 GiB`.
 * @param n bytes
 * @returns the text
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { humanBytes } from "./output.ts";
 * assert.equal(humanBytes(512), "512 B");
 * assert.equal(humanBytes(4096), "4.0 KiB");
 * assert.equal(humanBytes(12.3 * 1024 * 1024), "12.3 MiB");
 * ```
 */
export function humanBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

const encoder = new TextEncoder();

/**
 * Write to stdout without a newline, escaped like {@link out}.
 * @param s text
 */
export async function write(s: string): Promise<void> {
  const bytes = encoder.encode(safe(s));
  for (let off = 0; off < bytes.length;) off += await Deno.stdout.write(bytes.subarray(off));
}

let debugSink: ((line: string) => void) | undefined;

/**
 * Turn `--debug` output (request lines, never secrets) on or off.
 * @param on whether `--debug` was given
 */
export function setDebug(on: boolean): void {
  debugSink = on ? (line) => info(`debug: ${line}`) : undefined;
}

/**
 * The `--debug` sink for library options, when on.
 * @returns the sink, or undefined
 */
export function debugLog(): ((line: string) => void) | undefined {
  return debugSink;
}
