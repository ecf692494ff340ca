/**
 * The fields of a tar header and the records that extend it, as the reader
 * in `tar.ts` decodes them: the entry types, NUL-terminated strings, numbers
 * (octal with spaces and NULs around, or GNU base-256), the header checksum
 * (unsigned or signed byte sum), and pax extended header records; and the
 * metadata of an entry ({@link TarHeader}) that readers and writers share.
 *
 * @module
 */
import { ArchiveError } from "../util/errors.ts";

/** Size of a tar block: a header, and the unit data is padded to. */
export const BLOCK = 512;
const dec = new TextDecoder();

/** Kinds of tar entries. */
export type TarEntryType =
  | "file"
  | "directory"
  | "symlink"
  | "hardlink"
  | "char-device"
  | "block-device"
  | "fifo"
  | "other";

/** Metadata of one tar entry. */
export interface TarHeader {
  /** Path inside the archive, as written. */
  name: string;
  /** Entry kind. */
  type: TarEntryType;
  /** Size of the entry's data in bytes (of a sparse file: its real size). */
  size: number;
  /** Permission bits. */
  mode: number;
  /** Modification time, seconds since the epoch. */
  mtime: number;
  /** Target of a symlink or hardlink. */
  linkname: string;
}

// ---------------------------------------------------------------------------
// Header fields

/** The string of a NUL-terminated field of `len` bytes at `off` (all of it when it has no NUL). */
export function cstr(buf: Uint8Array, off: number, len: number): string {
  const s = buf.subarray(off, off + len);
  const end = s.indexOf(0);
  return dec.decode(end < 0 ? s : s.subarray(0, end));
}

/** Whether every byte is zero (an end-of-archive block). */
export function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Whether the bytes at `off` are the ASCII string `s` (a magic). */
export function bytesAre(h: Uint8Array, off: number, s: string): boolean {
  for (let i = 0; i < s.length; i++) if (h[off + i] !== s.charCodeAt(i)) return false;
  return true;
}

/** An entry name for an error message (long names shortened). */
export function shown(name: string): string {
  return name.length > 200 ? `${name.slice(0, 100)}…${name.slice(-60)}` : name;
}

/** An octal field (spaces and NULs around it ignored, up to a NUL inside); undefined if invalid. */
function octal(h: Uint8Array, off: number, len: number): number | undefined {
  let s = off;
  let e = off + len;
  while (s < e && (h[s] === 0x20 || h[s] === 0)) s++;
  while (e > s && (h[e - 1] === 0x20 || h[e - 1] === 0)) e--;
  let v = 0;
  for (let i = s; i < e; i++) {
    const c = h[i]!;
    if (c === 0) break;
    if (c < 0x30 || c > 0x37) return undefined;
    v = v * 8 + c - 0x30;
  }
  return v;
}

/**
 * A numeric field: octal, or GNU base-256 (two's complement, may be negative).
 *
 * @param h the header block
 * @param off the field's offset
 * @param len the field's length
 * @param field names the field in errors
 * @param what names the archive in errors
 * @param at the header's offset in the archive
 * @returns the number
 * @throws {ArchiveError} for a number that is not octal, or out of JavaScript's safe range
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { numField } from "./tar_header.ts";
 * const h = new TextEncoder().encode(" 0000644\0");
 * assert.equal(numField(h, 0, 9, "mode", "archive", 0), 0o644);
 * ```
 */
export function numField(
  h: Uint8Array,
  off: number,
  len: number,
  field: string,
  what: string,
  at: number,
): number {
  if (h[off]! & 0x80) {
    const inv = h[off]! & 0x40 ? 0xff : 0;
    let v = 0n;
    for (let i = 0; i < len; i++) {
      let c = h[off + i]! ^ inv;
      if (i === 0) c &= 0x7f;
      v = (v << 8n) | BigInt(c);
    }
    if (inv) v = -v - 1n;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new ArchiveError(
        `${what} is corrupt: the ${field} field of the tar header at offset ${at} is too large`,
      );
    }
    return Number(v);
  }
  const v = octal(h, off, len);
  if (v === undefined) {
    throw new ArchiveError(
      `${what} is corrupt: invalid octal number in the ${field} field of the tar header at offset ${at}`,
    );
  }
  return v;
}

/** Whether a header's checksum field holds its unsigned or its signed byte sum. */
export function checksumOk(h: Uint8Array): boolean {
  const stored = octal(h, 148, 8);
  if (stored === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += b;
    signed += b < 0x80 ? b : b - 0x100;
  }
  return stored === unsigned || stored === signed;
}

/** Entry types by typeflag (`7`, contiguous, is a file; so is NUL, or a directory when named `…/`). */
export const TYPES: Record<string, TarEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char-device",
  "4": "block-device",
  "5": "directory",
  "6": "fifo",
};

/** Types that have no data whatever the size field says (as Go's archive/tar). */
export const HEADER_ONLY = new Set<TarEntryType>([
  "hardlink",
  "symlink",
  "char-device",
  "block-device",
  "directory",
  "fifo",
]);

// ---------------------------------------------------------------------------
// pax records

const SPARSE_OFFSET = "GNU.sparse.offset";
const SPARSE_NUMBYTES = "GNU.sparse.numbytes";
/** The pax record of a GNU sparse 0.x map (0.0 offset/numbytes pairs are gathered into it). */
export const SPARSE_MAP = "GNU.sparse.map";
/** pax keys whose value must not contain NUL (as Go). */
const NUL_FREE = new Set(["path", "linkpath", "uname", "gname"]);

/**
 * Parse the records `<length> <key>=<value>\n` of a pax header in one pass.
 * Within a header a later record for a key wins; GNU sparse 0.0
 * offset/numbytes pairs are collected into `GNU.sparse.map` (as Go does).
 *
 * @param data the header's data
 * @param what names the archive in errors
 * @param at the header's offset in the archive
 * @returns the records by key
 * @throws {ArchiveError} for a malformed record
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePax } from "./tar_header.ts";
 * const records = parsePax(new TextEncoder().encode("12 path=a/b\n"), "archive", 0);
 * assert.equal(records.get("path"), "a/b");
 * ```
 */
export function parsePax(data: Uint8Array, what: string, at: number): Map<string, string> {
  const out = new Map<string, string>();
  const sparse: string[] = [];
  const bad = (why: string) =>
    new ArchiveError(`${what} is corrupt: bad pax record in the header at offset ${at}: ${why}`);
  let i = 0;
  while (i < data.length) {
    let j = i;
    let len = 0;
    let digits = 0; // significant ones: leading zeros are allowed (as Go and Python)
    while (j < data.length && data[j]! >= 0x30 && data[j]! <= 0x39) {
      if ((len > 0 || data[j] !== 0x30) && ++digits > 15) {
        throw bad("its length has too many digits");
      }
      len = len * 10 + data[j]! - 0x30;
      j++;
    }
    if (j === i || data[j] !== 0x20) {
      throw bad("it does not start with a decimal length and a space");
    }
    const end = i + len;
    if (end > data.length) throw bad(`its length ${len} runs past the header's data`);
    if (end <= j + 1 || data[end - 1] !== 0x0a) throw bad("it does not end with a newline");
    const eq = data.indexOf(0x3d, j + 1);
    if (eq < 0 || eq >= end - 1) throw bad("it has no '='");
    if (eq === j + 1) throw bad("its keyword is empty");
    const kb = data.subarray(j + 1, eq);
    const vb = data.subarray(eq + 1, end - 1);
    if (kb.includes(0)) throw bad("its keyword contains NUL");
    const key = dec.decode(kb);
    if (NUL_FREE.has(key) && vb.includes(0)) throw bad(`its ${key} contains NUL`);
    const value = dec.decode(vb);
    if (key === SPARSE_OFFSET || key === SPARSE_NUMBYTES) {
      if ((sparse.length % 2 === 0) !== (key === SPARSE_OFFSET) || value.includes(",")) {
        throw bad("GNU.sparse.offset and GNU.sparse.numbytes do not alternate");
      }
      sparse.push(value);
    } else {
      out.set(key, value);
    }
    i = end;
  }
  if (sparse.length) out.set(SPARSE_MAP, sparse.join(","));
  return out;
}

/**
 * A non-negative decimal integer, plain digits, that is safe in JavaScript;
 * leading zeros are allowed, as many as there are (Go's `ParseInt`, GNU tar
 * and Python read `000000000000000000000999` as 999).
 *
 * @param v the text of a pax record
 * @returns the number, or undefined when it is not plain digits or too large
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decimal } from "./tar_header.ts";
 * assert.equal(decimal("000000000000000000000999"), 999);
 * assert.equal(decimal("0"), 0);
 * assert.equal(decimal("+1"), undefined); // plain digits only
 * assert.equal(decimal("99999999999999999999"), undefined); // past 2^53
 * ```
 */
export function decimal(v: string): number | undefined {
  const m = /^0*([0-9]{1,16})$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Whether `v` is a decimal that fits a signed 64-bit integer (Go's
 * `ParseInt`: an optional sign, digits, leading zeros allowed).
 *
 * @param v the text of a pax record
 * @returns true when it is one
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { int64 } from "./tar_header.ts";
 * assert.ok(int64("-00000000000000000000000001000"));
 * assert.ok(!int64("9223372036854775808")); // 2^63
 * assert.ok(!int64("1e3"));
 * ```
 */
export function int64(v: string): boolean {
  const m = /^([+-]?)0*([0-9]{1,19})$/.exec(v);
  if (!m) return false;
  const n = BigInt(`${m[1]}${m[2]}`);
  return n === BigInt.asIntN(64, n);
}
