/**
 * A sorted file of `key<TAB>value` lines, the base of a {@link SortedTable}
 * (`sorted_table.ts`): looked up by binary search over byte offsets
 * ({@link lowerBound}), read forward from there ({@link linesFrom}), written
 * whole and durably ({@link writeSortedFile}). Nothing of it is held in memory
 * but the lines a lookup touches and a bounded cache of the probes a binary
 * search makes ({@link Probes}), so a lookup costs the same few small reads
 * whatever the file's size (about 17 probes for 100,000 lines, the first
 * dozen levels cached).
 *
 * Keys are ASCII without tabs or newlines (tags, digests), sorted by code
 * unit (the same as byte order); values are one line of JSON.
 *
 * Reads are synchronous (`seekSync`, `readSync` of at most 64 KiB from the
 * page cache): each is microseconds, where an asynchronous file read costs a
 * thread hop.
 *
 * @module
 */
import { releaseTemp, tempPathFor } from "../util/temp.ts";
import { writeAll } from "../util/files.ts";
import { printable } from "../util/text.ts";

const NL = 0x0a;
const TAB = 0x09;

/**
 * The longest line read (8 MiB: a value is one descriptor, a referrer's
 * with the annotations of a manifest of at most 4 MiB). A longer one — a
 * file someone else wrote — is refused, so memory stays bounded whatever
 * the file holds.
 */
export const MAX_LINE = 8 << 20;

/**
 * A sorted file that is not what this module writes: a line without a tab
 * or newline, longer than {@link MAX_LINE}, keys out of order. The table
 * over it names the file (`sorted_table.ts`).
 */
export class SortedFileError extends Error {
  /** @param message what is wrong, and where in the file */
  constructor(message: string) {
    super(message);
    this.name = "SortedFileError";
  }
}
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** One line of a sorted file. */
export interface Line {
  /** Offset of its first byte. */
  start: number;
  /** Offset just past its newline (the next line's start). */
  end: number;
  /** Its key. */
  key: string;
  /** Its value (JSON text). */
  value: string;
}

/** Read `length` bytes at `pos` (fewer at the end of the file). */
function readAt(f: Deno.FsFile, pos: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  f.seekSync(pos, Deno.SeekMode.Start);
  let got = 0;
  while (got < length) {
    const n = f.readSync(buf.subarray(got));
    if (n === null || n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** Split a line's bytes (without its newline) into key and value. */
function parseLine(bytes: Uint8Array, start: number): Line {
  const tab = bytes.indexOf(TAB);
  if (tab < 0) throw new SortedFileError(`the line at byte ${start} has no tab`);
  return {
    start,
    end: start + bytes.byteLength + 1,
    key: decoder.decode(bytes.subarray(0, tab)),
    value: decoder.decode(bytes.subarray(tab + 1)),
  };
}

/**
 * The line starting at `start` (a line start), or undefined at the end.
 *
 * @param f the open file
 * @param start a line's first byte
 * @param size the file's size
 * @returns the line
 */
export function lineAt(f: Deno.FsFile, start: number, size: number): Line | undefined {
  if (start >= size) return undefined;
  let chunk = 512;
  for (;;) {
    const bytes = readAt(f, start, Math.min(chunk, size - start));
    const nl = bytes.indexOf(NL);
    if (nl >= 0) return parseLine(bytes.subarray(0, nl), start);
    if (start + bytes.byteLength >= size) {
      throw new SortedFileError(`the line at byte ${start} has no newline`);
    }
    if (bytes.byteLength > MAX_LINE) throw tooLong(start);
    chunk = Math.min(chunk * 4, MAX_LINE + 1);
  }
}

/** The first line start at or after `pos`. */
function lineStartFrom(f: Deno.FsFile, pos: number, size: number): number {
  if (pos <= 0) return 0;
  let at = pos - 1; // the byte before: a newline there makes `pos` a line start
  while (at < size) {
    const bytes = readAt(f, at, Math.min(4096, size - at));
    const nl = bytes.indexOf(NL);
    if (nl >= 0) return at + nl + 1;
    at += bytes.byteLength;
    if (at - pos > MAX_LINE) throw tooLong(pos);
  }
  return size;
}

function tooLong(at: number): SortedFileError {
  return new SortedFileError(`a line near byte ${at} is longer than ${MAX_LINE} bytes`);
}

/** What a probe keeps of a line: its key and bounds (not its value). */
export type Probe = Omit<Line, "value">;

/**
 * The probes a binary search made in one version of a file (keyed by
 * offset): the upper levels, shared by every search, are read once. Bounded:
 * cleared when full, dropped when the file is replaced.
 */
export class Probes {
  /** The version of the file these are of (`ino:size:mtime`). */
  readonly id: string;
  #lines = new Map<number, Probe>();
  #max: number;

  /**
   * @param id the file's version
   * @param max most probes kept (1,024: the top ten levels of a search)
   */
  constructor(id: string, max = 1024) {
    this.id = id;
    this.#max = max;
  }

  /**
   * The first line starting at or after `pos` (its key and bounds), cached.
   * @param f the open file
   * @param pos an offset
   * @param size the file's size
   * @returns the line's key and bounds, or undefined past the last
   */
  probe(f: Deno.FsFile, pos: number, size: number): Probe | undefined {
    const known = this.#lines.get(pos);
    if (known) return known;
    const line = lineAt(f, lineStartFrom(f, pos, size), size);
    if (!line) return undefined;
    const probe = { start: line.start, end: line.end, key: line.key };
    if (this.#lines.size >= this.#max) this.#lines.clear();
    this.#lines.set(pos, probe);
    return probe;
  }
}

/** Below this many bytes between the bounds a search reads the rest in one go. */
const BLOCK = 8192;
/** Longer than any key (a tag is at most 128 characters, a referrer's key two digests). */
const MAX_KEY = 1024;

/**
 * The offset of the first line whose key is at least `target` (the file's
 * size when there is none).
 *
 * @param f the open file
 * @param size its size
 * @param target the key looked for
 * @param probes the probe cache of this version of the file
 * @returns a line start, or `size`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lineAt, lowerBound, Probes, writeSortedFile } from "./sorted_file.ts";
 * const dir = await Deno.makeTempDir();
 * const keys = Array.from({ length: 1000 }, (_, i) => `t${String(i).padStart(4, "0")}`);
 * await writeSortedFile(`${dir}/base`, keys.map((k) => [k, `{"n":"${k}"}`] as [string, string]));
 * const f = await Deno.open(`${dir}/base`);
 * const { size } = await f.stat();
 * const probes = new Probes("v1");
 * assert.equal(lineAt(f, lowerBound(f, size, "t0500", probes), size)?.value, '{"n":"t0500"}');
 * assert.equal(lineAt(f, lowerBound(f, size, "t05001", probes), size)?.key, "t0501");
 * assert.equal(lowerBound(f, size, "u", probes), size); // past the last key
 * f.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function lowerBound(f: Deno.FsFile, size: number, target: string, probes: Probes): number {
  // every line starting before lo has a key < target; no line starts in [bound, answer);
  // answer is a line start with a key >= target, or the end
  let lo = 0;
  let bound = size;
  let answer = size;
  while (bound - lo > BLOCK) {
    const mid = lo + Math.floor((bound - lo) / 2);
    const line = probes.probe(f, mid, size);
    if (!line || line.start >= bound) bound = mid; // no line starts in [mid, bound)
    else if (line.key < target) lo = line.end;
    else answer = bound = line.start;
  }
  if (lo >= bound) return answer;
  // the rest in one read: the lines starting in [lo, bound), and enough past it for a last key
  const bytes = readAt(f, lo, Math.min(size, bound + MAX_KEY) - lo);
  let at = 0;
  while (lo + at < bound) {
    const nl = bytes.indexOf(NL, at);
    const tab = bytes.indexOf(TAB, at);
    if (tab < 0 || (nl >= 0 && tab > nl)) {
      throw new SortedFileError(`the line at byte ${lo + at} has no tab`);
    }
    if (decoder.decode(bytes.subarray(at, tab)) >= target) return lo + at;
    if (nl < 0) break; // the next line starts past bound
    at = nl + 1;
  }
  return answer;
}

/**
 * The lines from `start` (a line start) on, read forward in 64 KiB chunks.
 *
 * @param f the open file
 * @param start a line start
 * @param size the file's size
 * @yields each line
 */
export function* linesFrom(f: Deno.FsFile, start: number, size: number): Generator<Line> {
  let pos = start;
  let lineStart = start;
  // the start of a line that goes on past the chunk it began in, in parts (joined once whole:
  // a long line costs its length, not its length squared)
  let parts: Uint8Array[] = [];
  let partsLength = 0;
  while (pos < size) {
    const chunk = readAt(f, pos, Math.min(65536, size - pos));
    if (!chunk.byteLength) break;
    const chunkStart = pos;
    pos += chunk.byteLength;
    let at = 0;
    for (;;) {
      const nl = chunk.indexOf(NL, at);
      if (nl < 0) break;
      let bytes = chunk.subarray(at, nl);
      if (parts.length) {
        bytes = concat([...parts, bytes]);
        parts = [];
        partsLength = 0;
      }
      yield parseLine(bytes, lineStart);
      at = nl + 1;
      lineStart = chunkStart + at;
    }
    if (at < chunk.byteLength) {
      parts.push(chunk.subarray(at));
      partsLength += chunk.byteLength - at;
      if (partsLength > MAX_LINE) throw tooLong(lineStart);
    }
  }
  if (partsLength) throw new SortedFileError(`the line at byte ${lineStart} has no newline`);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * Make a directory's entries durable (`fsync` of the directory: a rename or
 * a new file in it survives a power loss). Where a directory cannot be
 * opened (Windows), nothing is done.
 *
 * @param dir the directory
 */
export async function syncDir(dir: string): Promise<void> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(dir, { read: true });
  } catch {
    return;
  }
  try {
    await f.sync();
  } catch {
    /* not supported on this system */
  } finally {
    f.close();
  }
}

/**
 * Write a sorted file whole: to a temp file beside it, `fdatasync`, renamed
 * over `path`, the directory synced. Keys must come in strictly increasing
 * order, without tabs or newlines; values without newlines.
 *
 * @param path the file
 * @param lines the lines, sorted
 * @returns the number of lines written
 * @throws {SortedFileError} when a key is out of order or a key or value is malformed
 */
export async function writeSortedFile(
  path: string,
  lines: Iterable<[string, string]> | AsyncIterable<[string, string]>,
): Promise<number> {
  const tmp = tempPathFor(path);
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  try {
    const f = await Deno.open(tmp, { write: true, createNew: true });
    let count = 0;
    try {
      let text = "";
      let last: string | undefined;
      for await (const [key, value] of lines) {
        if (last !== undefined && key <= last) {
          throw new SortedFileError(
            `key '${printable(key.slice(0, 200))}' is not after '${printable(last.slice(0, 200))}'`,
          );
        }
        if (/[\t\n]/.test(key) || key.length >= MAX_KEY || value.includes("\n")) {
          throw new SortedFileError(
            `the line of key '${printable(key.slice(0, 100))}' is malformed`,
          );
        }
        last = key;
        text += `${key}\t${value}\n`;
        count++;
        if (text.length >= 1 << 20) {
          await writeAll(f, encoder.encode(text));
          text = "";
        }
      }
      if (text) await writeAll(f, encoder.encode(text));
      await f.syncData();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
    await syncDir(dir);
    return count;
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  } finally {
    releaseTemp(tmp);
  }
}
