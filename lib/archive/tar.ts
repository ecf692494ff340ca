/**
 * The tar format: one header parser and reader working over any
 * {@link ByteSource}, and header encoding for writers.
 *
 * The reader takes v7, ustar (with its name prefix), STAR, GNU (long names
 * 'L'/'K', base-256 numbers) and pax headers, and expands GNU pax sparse files
 * (formats 0.0, 0.1 and 1.0) to their real content. Where tar readers differ,
 * it follows Go's archive/tar:
 *
 * - Only the last pax 'x' header before an entry applies (an earlier one's
 *   records are dropped); likewise the last GNU long name ('L') and long link
 *   ('K'), which take precedence over a pax `path`/`linkpath`. A pax record
 *   with an empty value keeps the header's field. Global pax headers ('g')
 *   are parsed, checked and counted against the limits, but never applied.
 * - Hardlinks, symlinks, character and block devices, fifos and directories
 *   have no data, whatever their size field says (as POSIX and Python's
 *   tarfile; GNU tar 1.34 instead skips `size` bytes after a symlink). A
 *   typeflag NUL entry whose name ends in `/` is a directory.
 * - The header checksum may be the unsigned or the signed byte sum; numbers
 *   are octal (surrounding spaces and NULs ignored) or GNU base-256.
 * - The archive ends at two zero blocks, at one zero block followed by the
 *   end of input, or (a missing end marker, tolerated) at the end of input on
 *   a header boundary. A zero block followed by anything else, and an end of
 *   input anywhere else (inside a header, an entry's data or its padding),
 *   are errors — through a {@link StreamSource} and a {@link FileSource} alike.
 *
 * Stricter than Go: old GNU sparse files (typeflag 'S'), GNU sparse files of
 * an unknown version and incomplete GNU sparse headers are refused; so is an
 * archive that ends right after an entry's data, without its padding; a pax
 * record's length, a pax `size` and sparse map numbers must be plain decimal
 * digits; a negative size or mode is refused; a sparse map must be sorted,
 * without overlaps, within the real size, and account for exactly the stored
 * data.
 *
 * Limits, each counted again for every entry (parsing is linear in the
 * archive's size):
 * - {@link MAX_TAR_METADATA_BYTES} (1 MiB): all metadata before one entry
 *   together — pax 'x' and 'g' records, GNU 'L'/'K' names, a sparse 1.0 map;
 * - {@link MAX_TAR_METADATA_HEADERS} (64): metadata headers in a row before
 *   one entry;
 * - {@link MAX_TAR_SPARSE_SEGMENTS} (65,536): data segments in one sparse map.
 *
 * @module
 */
import { ArchiveError } from "../util/errors.ts";

const BLOCK = 512;
const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Most bytes of metadata before one tar entry, all headers together: pax 'x'
 * and 'g' records, GNU long names and links, and a GNU sparse 1.0 map.
 */
export const MAX_TAR_METADATA_BYTES: number = 1 << 20;

/** Most metadata headers (pax 'x'/'g', GNU 'L'/'K') in a row before one tar entry. */
export const MAX_TAR_METADATA_HEADERS: number = 64;

/** Most data segments in the map of one GNU sparse file. */
export const MAX_TAR_SPARSE_SEGMENTS: number = 1 << 16;

/** Holes of a sparse file are yielded as fresh zero chunks of at most this size. */
const ZERO_CHUNK = 1 << 16;

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

/** A tar entry as read: header, position of its data, and the data. */
export interface TarEntry extends TarHeader {
  /**
   * Byte offset of the entry's data in the archive. The data is stored there
   * as is, except for a sparse file (see {@link ReadTarOptions.refuseSparse}).
   */
  offset: number;
  /** The data; consume it or leave it (the reader skips what is left). */
  body(): AsyncIterable<Uint8Array>;
}

/** Options of {@link readTar}. */
export interface ReadTarOptions {
  /**
   * Refuse GNU sparse files instead of expanding them: for callers that read
   * an entry's data in place from {@link TarEntry.offset} and
   * {@link TarHeader.size} (a sparse file's data is not stored that way).
   */
  refuseSparse?: boolean;
}

/** Sequential reader of bytes that may skip cheaply (seek) when it can. */
export interface ByteSource {
  /** Bytes consumed so far. */
  readonly position: number;
  /** Read up to `n` bytes; fewer only at the end. */
  readExact(n: number): Promise<Uint8Array>;
  /** Yield exactly the next `n` bytes in chunks; throws when the input ends early. */
  chunks(n: number): AsyncIterable<Uint8Array>;
  /** Skip `n` bytes; throws when the input ends early. */
  skip(n: number): Promise<void>;
}

/**
 * A {@link ByteSource} over an async iterable of chunks (a stream).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StreamSource } from "./tar.ts";
 * const s = new StreamSource([new Uint8Array([1, 2]), new Uint8Array([3, 4])]);
 * assert.deepEqual([...await s.readExact(3)], [1, 2, 3]);
 * assert.equal(s.position, 3);
 * ```
 */
export class StreamSource implements ByteSource {
  #it: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  #pending: Uint8Array | undefined;
  #position = 0;
  #what: string;

  /**
   * Create a StreamSource.
   * @param input chunks
   * @param what names the input in errors
   */
  constructor(input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, what = "archive") {
    this.#it = Symbol.asyncIterator in input
      ? input[Symbol.asyncIterator]()
      : (input as Iterable<Uint8Array>)[Symbol.iterator]();
    this.#what = what;
  }

  get position(): number {
    return this.#position;
  }

  async #next(): Promise<Uint8Array | undefined> {
    if (this.#pending) {
      const p = this.#pending;
      this.#pending = undefined;
      return p;
    }
    while (true) {
      const r = await this.#it.next();
      if (r.done) return undefined;
      if (r.value.byteLength > 0) return r.value;
    }
  }

  async readExact(n: number): Promise<Uint8Array> {
    if (n === 0) return new Uint8Array(0);
    const first = await this.#next();
    if (!first) return new Uint8Array(0);
    if (first.byteLength >= n) {
      if (first.byteLength > n) this.#pending = first.subarray(n);
      this.#position += n;
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    out.set(first);
    let got = first.byteLength;
    while (got < n) {
      const c = await this.#next();
      if (!c) break;
      const take = Math.min(c.byteLength, n - got);
      out.set(c.subarray(0, take), got);
      if (take < c.byteLength) this.#pending = c.subarray(take);
      got += take;
    }
    this.#position += got;
    return got === n ? out : out.subarray(0, got);
  }

  async *chunks(n: number): AsyncIterable<Uint8Array> {
    let left = n;
    while (left > 0) {
      const c = await this.#next();
      if (!c) {
        throw new ArchiveError(
          `${this.#what} is truncated: unexpected end of data at offset ${this.#position}`,
        );
      }
      if (c.byteLength > left) {
        this.#pending = c.subarray(left);
        this.#position += left;
        left = 0;
        yield c.subarray(0, c.byteLength - this.#pending.byteLength);
      } else {
        left -= c.byteLength;
        this.#position += c.byteLength;
        yield c;
      }
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.chunks(n)) { /* discard */ }
  }

  /** Read and discard everything left (so a verifier upstream sees every byte). */
  async drain(): Promise<void> {
    while (await this.#next()) { /* discard */ }
  }
}

/**
 * A {@link ByteSource} over an open file that seeks to skip, so listing a
 * large archive reads only its headers. It knows the file's size, so a skip
 * past the end is an error as it is through a {@link StreamSource}.
 */
export class FileSource implements ByteSource {
  #file: Deno.FsFile;
  #position: number;
  #what: string;
  #size: number | undefined;

  /**
   * Create a FileSource.
   * @param file an open file, positioned at `start`
   * @param what names the file in errors
   * @param start current position of the file
   * @param size the file's size (by default taken from the open file when needed)
   */
  constructor(file: Deno.FsFile, what: string, start = 0, size?: number) {
    this.#file = file;
    this.#what = what;
    this.#position = start;
    this.#size = size;
  }

  get position(): number {
    return this.#position;
  }

  async readExact(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const r = await this.#file.read(out.subarray(got));
      if (r === null) break;
      got += r;
    }
    this.#position += got;
    return got === n ? out : out.subarray(0, got);
  }

  async *chunks(n: number): AsyncIterable<Uint8Array> {
    let left = n;
    while (left > 0) {
      const buf = await this.readExact(Math.min(left, 1 << 20));
      if (buf.byteLength === 0) {
        throw new ArchiveError(
          `${this.#what} is truncated: unexpected end of file at offset ${this.#position}`,
        );
      }
      left -= buf.byteLength;
      yield buf;
    }
  }

  async skip(n: number): Promise<void> {
    if (n <= 0) return;
    this.#size ??= (await this.#file.stat()).size;
    if (this.#position + n > this.#size) {
      throw new ArchiveError(
        `${this.#what} is truncated: unexpected end of file at offset ${this.#size}`,
      );
    }
    await this.#file.seek(n, Deno.SeekMode.Current);
    this.#position += n;
  }
}

// ---------------------------------------------------------------------------
// Header fields

function cstr(buf: Uint8Array, off: number, len: number): string {
  const s = buf.subarray(off, off + len);
  const end = s.indexOf(0);
  return dec.decode(end < 0 ? s : s.subarray(0, end));
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function bytesAre(h: Uint8Array, off: number, s: string): boolean {
  for (let i = 0; i < s.length; i++) if (h[off + i] !== s.charCodeAt(i)) return false;
  return true;
}

/** A name for an error message (long names shortened). */
function shown(name: string): string {
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

/** A numeric field: octal, or GNU base-256 (two's complement, may be negative). */
function numField(
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

function checksumOk(h: Uint8Array): boolean {
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

const TYPES: Record<string, TarEntryType> = {
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
const HEADER_ONLY = new Set<TarEntryType>([
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
const SPARSE_MAP = "GNU.sparse.map";
/** pax keys whose value must not contain NUL (as Go). */
const NUL_FREE = new Set(["path", "linkpath", "uname", "gname"]);

/**
 * Parse the records `<length> <key>=<value>\n` of a pax header in one pass.
 * Within a header a later record for a key wins; GNU sparse 0.0
 * offset/numbytes pairs are collected into `GNU.sparse.map` (as Go does).
 */
function parsePax(data: Uint8Array, what: string, at: number): Map<string, string> {
  const out = new Map<string, string>();
  const sparse: string[] = [];
  const bad = (why: string) =>
    new ArchiveError(`${what} is corrupt: bad pax record in the header at offset ${at}: ${why}`);
  let i = 0;
  while (i < data.length) {
    let j = i;
    let len = 0;
    while (j < data.length && data[j]! >= 0x30 && data[j]! <= 0x39) {
      if (j - i >= 15) throw bad("its length has too many digits");
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

/** A non-negative decimal integer of at most 16 digits that is safe in JS, else undefined. */
function decimal(v: string): number | undefined {
  if (!/^[0-9]{1,16}$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Whether `v` is a decimal that fits a signed 64-bit integer (Go's ParseInt). */
function int64(v: string): boolean {
  if (!/^[+-]?[0-9]{1,19}$/.test(v)) return false;
  const n = BigInt(v);
  return n === BigInt.asIntN(64, n);
}

// ---------------------------------------------------------------------------
// sparse files

type Fail = (why: string) => ArchiveError;

/** Read a GNU sparse 1.0 map (decimal lines, in whole blocks at the start of the data). */
async function readSparseMap1(
  source: ByteSource,
  stored: number,
  spend: (n: number) => void,
  fail: Fail,
  truncated: () => ArchiveError,
): Promise<{ segs: number[]; mapBytes: number }> {
  const segs: number[] = [];
  let count = -1;
  let tok = 0;
  let digits = 0;
  let read = 0;
  while (true) {
    if (read + BLOCK > stored) throw fail("its sparse map runs past its data");
    spend(BLOCK);
    const b = await source.readExact(BLOCK);
    if (b.byteLength < BLOCK) throw truncated();
    read += BLOCK;
    for (let i = 0; i < BLOCK; i++) {
      const c = b[i]!;
      if (c >= 0x30 && c <= 0x39) {
        if (++digits > 16) throw fail("a number in its sparse map is too long");
        tok = tok * 10 + c - 0x30;
        continue;
      }
      if (c !== 0x0a || digits === 0) {
        throw fail("its sparse map is not decimal numbers, one a line");
      }
      if (!Number.isSafeInteger(tok)) throw fail("a number in its sparse map is too large");
      if (count < 0) {
        count = tok;
        if (count > MAX_TAR_SPARSE_SEGMENTS) {
          throw fail(`its sparse map has more than ${MAX_TAR_SPARSE_SEGMENTS} segments`);
        }
      } else {
        segs.push(tok);
      }
      tok = 0;
      digits = 0;
      if (segs.length === 2 * count) return { segs, mapBytes: read };
    }
  }
}

/** The map of a GNU sparse 0.0/0.1 file, from its pax records. */
function sparseMap0(pax: Map<string, string>, fail: Fail): number[] {
  const blocks = decimal(pax.get("GNU.sparse.numblocks") ?? "");
  if (blocks === undefined) throw fail("its GNU.sparse.numblocks is missing or not a number");
  if (blocks > MAX_TAR_SPARSE_SEGMENTS) {
    throw fail(`its sparse map has more than ${MAX_TAR_SPARSE_SEGMENTS} segments`);
  }
  const text = pax.get(SPARSE_MAP) ?? "";
  const parts = text === "" ? [] : text.split(",", 2 * blocks + 1);
  if (parts.length !== 2 * blocks) {
    throw fail(`its sparse map does not hold the ${blocks} segments GNU.sparse.numblocks says`);
  }
  return parts.map((p) => {
    const n = decimal(p);
    if (n === undefined) throw fail("its sparse map is not decimal numbers");
    return n;
  });
}

/** Check a sparse map: sorted, not overlapping, within the real size, accounting for the data. */
function checkSparse(segs: number[], realSize: number, dataSize: number, fail: Fail): void {
  let end = 0;
  let sum = 0;
  for (let i = 0; i < segs.length; i += 2) {
    const off = segs[i]!;
    const len = segs[i + 1]!;
    if (off < end) throw fail("its sparse map is not sorted or has overlapping segments");
    if (off + len > realSize) throw fail(`its sparse map runs past its real size ${realSize}`);
    end = off + len;
    sum += len;
  }
  if (sum !== dataSize) {
    throw fail(`its sparse map accounts for ${sum} bytes of data but ${dataSize} are stored`);
  }
}

/** The content of a sparse file: stored segments, zeros between them, in bounded chunks. */
async function* expandSparse(
  source: ByteSource,
  segs: number[],
  realSize: number,
): AsyncGenerator<Uint8Array> {
  let pos = 0;
  for (let i = 0; i <= segs.length; i += 2) {
    const off = i < segs.length ? segs[i]! : realSize;
    for (let left = off - pos; left > 0; left -= ZERO_CHUNK) {
      yield new Uint8Array(Math.min(left, ZERO_CHUNK));
    }
    if (i === segs.length) return;
    const len = segs[i + 1]!;
    yield* source.chunks(len);
    pos = off + len;
  }
}

// ---------------------------------------------------------------------------
// The reader

/**
 * Read tar entries one by one (see the module documentation for the formats,
 * the rules where readers differ, and the limits); verifies header checksums.
 *
 * @param source where the archive's bytes come from
 * @param what names the archive in errors
 * @param options see {@link ReadTarOptions}
 * @returns an async iterator of entries
 * @throws {ArchiveError} on a corrupt, truncated or unsupported archive
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readTar, StreamSource, TAR_END, tarHeader, tarPadding } from "./tar.ts";
 * const meta = { name: "a.txt", type: "file", size: 2, mode: 0o644, mtime: 0, linkname: "" } as const;
 * const data = new TextEncoder().encode("hi");
 * const source = new StreamSource([tarHeader(meta), data, tarPadding(2), TAR_END]);
 * const seen: string[] = [];
 * for await (const e of readTar(source)) {
 *   let text = "";
 *   for await (const c of e.body()) text += new TextDecoder().decode(c);
 *   seen.push(`${e.name}: ${text}`);
 * }
 * assert.deepEqual(seen, ["a.txt: hi"]);
 * ```
 */
export async function* readTar(
  source: ByteSource,
  what = "archive",
  options: ReadTarOptions = {},
): AsyncGenerator<TarEntry> {
  // metadata for the next entry: only the last of each kind applies
  let pax: Map<string, string> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  let metaBytes = 0;
  let metaHeaders = 0;
  const truncated = (why: string) => () =>
    new ArchiveError(`${what} is truncated: ${why} at offset ${source.position}`);
  const spend = (n: number, at: number) => {
    metaBytes += n;
    if (metaBytes > MAX_TAR_METADATA_BYTES) {
      throw new ArchiveError(
        `${what} is corrupt: more than ${MAX_TAR_METADATA_BYTES} bytes of pax/GNU metadata ` +
          `before one entry (at offset ${at})`,
      );
    }
  };

  while (true) {
    const at = source.position;
    const h = await source.readExact(BLOCK);
    if (h.byteLength === 0) return; // a missing end marker is tolerated
    if (h.byteLength < BLOCK) throw truncated("partial tar header")();
    if (isZero(h)) {
      const next = await source.readExact(BLOCK);
      if (next.byteLength === 0 || (next.byteLength === BLOCK && isZero(next))) return;
      if (next.byteLength < BLOCK) throw truncated("partial tar header")();
      throw new ArchiveError(
        `${what} is corrupt: a zero block at offset ${at} is followed by a header, not by a second zero block`,
      );
    }
    if (!checksumOk(h)) {
      throw new ArchiveError(`${what} is corrupt: bad tar header checksum at offset ${at}`);
    }
    const num = (off: number, len: number, field: string) => numField(h, off, len, field, what, at);
    const magic = bytesAre(h, 257, "ustar\0")
      ? bytesAre(h, 508, "tar\0") ? "star" : "ustar"
      : bytesAre(h, 257, "ustar  \0")
      ? "gnu"
      : "v7";
    const flag = String.fromCharCode(h[156]!);
    let size = num(124, 12, "size");
    if (size < 0) {
      throw new ArchiveError(`${what} is corrupt: negative size in the tar header at offset ${at}`);
    }
    const mode = num(100, 8, "mode");
    if (mode < 0) {
      throw new ArchiveError(`${what} is corrupt: negative mode in the tar header at offset ${at}`);
    }
    let mtime = num(136, 12, "mtime");
    num(108, 8, "uid");
    num(116, 8, "gid");
    if (magic !== "v7") {
      num(329, 8, "devmajor");
      num(337, 8, "devminor");
    }
    if (magic === "star") {
      num(476, 12, "atime");
      num(488, 12, "ctime");
    }

    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      if (++metaHeaders > MAX_TAR_METADATA_HEADERS) {
        throw new ArchiveError(
          `${what} is corrupt: more than ${MAX_TAR_METADATA_HEADERS} pax/GNU metadata headers ` +
            `in a row (at offset ${at})`,
        );
      }
      spend(size, at);
      const data = await source.readExact(size);
      if (data.byteLength < size) throw truncated("unexpected end of data")();
      await source.skip((BLOCK - (size % BLOCK)) % BLOCK);
      if (flag === "x") pax = parsePax(data, what, at);
      else if (flag === "g") parsePax(data, what, at); // checked, never applied
      else if (flag === "L") longName = cstr(data, 0, data.length);
      else longLink = cstr(data, 0, data.length);
      continue;
    }

    let name = cstr(h, 0, 100);
    if (magic === "ustar" || magic === "star") {
      const prefix = cstr(h, 345, magic === "ustar" ? 155 : 131);
      if (prefix) name = `${prefix}/${name}`;
    }
    let linkname = cstr(h, 157, 100);
    const get = (key: string) => {
      const v = pax?.get(key);
      return v === "" ? undefined : v;
    };
    name = longName || get("path") || name;
    linkname = longLink || get("linkpath") || linkname;
    const invalid = (key: string, v: string) =>
      new ArchiveError(
        `${what}: entry '${shown(name)}' has an invalid pax ${key} '${shown(v)}'`,
      );
    const paxSize = get("size");
    if (paxSize !== undefined) {
      const n = decimal(paxSize);
      if (n === undefined) throw invalid("size", paxSize);
      size = n;
    }
    for (const key of ["mtime", "atime", "ctime"]) {
      const v = get(key);
      if (v === undefined) continue;
      const m = /^([+-]?[0-9]{1,19})(\.[0-9]*)?$/.exec(v);
      if (!m || !int64(m[1]!)) throw invalid(key, v);
      if (key === "mtime") mtime = Math.floor(Number(v));
    }
    for (const key of ["uid", "gid"]) {
      const v = get(key);
      if (v !== undefined && !int64(v)) throw invalid(key, v);
    }
    let type = TYPES[flag] ?? "other";
    if (flag === "\0" && name.endsWith("/")) type = "directory";
    if (flag === "S") {
      throw new ArchiveError(
        `${what}: entry '${shown(name)}' is an old GNU sparse file (typeflag 'S'); not supported`,
      );
    }
    const stored = HEADER_ONLY.has(type) ? 0 : size;

    // GNU pax sparse files (as Go, but unknown versions are refused)
    let segs: number[] | undefined;
    let realSize = stored;
    let mapBytes = 0;
    const major = get("GNU.sparse.major");
    const minor = get("GNU.sparse.minor");
    let version: "0.x" | "1.0" | undefined;
    if (major !== undefined || minor !== undefined) {
      if (major === "1" && minor === "0") version = "1.0";
      else if (major === "0" && (minor === "0" || minor === "1")) version = "0.x";
      else {
        throw new ArchiveError(
          `${what}: entry '${shown(name)}' is a GNU sparse file of unknown version ` +
            `'${shown(major ?? "")}.${shown(minor ?? "")}'; not supported`,
        );
      }
    } else if (get(SPARSE_MAP) !== undefined) {
      version = "0.x";
    } else if (pax && [...pax.keys()].some((k) => k.startsWith("GNU.sparse."))) {
      throw new ArchiveError(
        `${what}: entry '${shown(name)}' has GNU sparse pax records of no known sparse format`,
      );
    }
    if (version) {
      name = get("GNU.sparse.name") ?? name;
      const fail: Fail = (why) =>
        new ArchiveError(`${what}: sparse file '${shown(name)}' is corrupt: ${why}`);
      if (options.refuseSparse) {
        throw new ArchiveError(
          `${what}: entry '${shown(name)}' is a GNU sparse file (pax format ${version}); ` +
            `not supported here`,
        );
      }
      if (type !== "file") {
        throw new ArchiveError(
          `${what}: entry '${shown(name)}' of type ${type} has GNU sparse pax records`,
        );
      }
      const real = get("GNU.sparse.size") ?? get("GNU.sparse.realsize");
      if (real !== undefined) {
        const n = decimal(real);
        if (n === undefined) throw fail(`its real size '${shown(real)}' is not a number`);
        realSize = n;
      }
      if (version === "1.0") {
        ({ segs, mapBytes } = await readSparseMap1(
          source,
          stored,
          (n) => spend(n, at),
          fail,
          truncated("unexpected end of data"),
        ));
      } else {
        segs = sparseMap0(pax!, fail);
      }
      checkSparse(segs, realSize, stored - mapBytes, fail);
    }

    pax = longName = longLink = undefined;
    metaBytes = metaHeaders = 0;
    const offset = source.position;
    const dataSize = stored - mapBytes;
    const sparse = segs;
    let consumed = false;
    const entry: TarEntry = {
      name,
      type,
      size: sparse ? realSize : stored,
      mode: mode & 0o7777,
      mtime,
      linkname,
      offset,
      body: () => {
        if (consumed) throw new Error("tar entry body read twice");
        consumed = true;
        return sparse ? expandSparse(source, sparse, realSize) : source.chunks(dataSize);
      },
    };
    yield entry;
    const end = offset + dataSize;
    if (source.position < end) await source.skip(end - source.position);
    await source.skip((BLOCK - (stored % BLOCK)) % BLOCK);
  }
}

/** Two zero blocks that end a tar archive. */
export const TAR_END: Uint8Array = new Uint8Array(BLOCK * 2);

/**
 * Zero bytes that pad an entry's data of `size` bytes to a block boundary.
 *
 * @param size entry data size
 * @returns 0–511 zero bytes
 */
export function tarPadding(size: number): Uint8Array {
  return new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);
}

function writeStr(buf: Uint8Array, off: number, len: number, s: string): void {
  buf.set(enc.encode(s).subarray(0, len), off);
}

function writeOctal(buf: Uint8Array, off: number, len: number, v: number): void {
  writeStr(buf, off, len, v.toString(8).padStart(len - 1, "0"));
}

function block(meta: TarHeader, name: string, flag: string, size: number): Uint8Array {
  const h = new Uint8Array(BLOCK);
  let prefix = "";
  let base = name;
  if (enc.encode(name).length > 100) {
    const cut = name.lastIndexOf("/", name.length - 2);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  writeStr(h, 0, 100, base);
  writeOctal(h, 100, 8, meta.mode & 0o7777);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, Math.max(0, Math.floor(meta.mtime)));
  h.fill(0x20, 148, 156);
  writeStr(h, 156, 1, flag);
  writeStr(h, 157, 100, meta.linkname);
  writeStr(h, 257, 6, "ustar");
  writeStr(h, 263, 2, "00");
  writeStr(h, 345, 155, prefix);
  let sum = 0;
  for (const b of h) sum += b;
  writeStr(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

function fitsUstar(name: string): boolean {
  const b = enc.encode(name);
  if (b.length !== name.length) return false; // non-ASCII → pax
  if (b.length <= 100) return true;
  const cut = name.lastIndexOf("/", name.length - 2);
  return cut > 0 && cut <= 155 && name.length - cut - 1 <= 100;
}

const FLAGS: Partial<Record<TarEntryType, string>> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  directory: "5",
};

/**
 * Encode a tar header (with a pax header in front when the name, link or
 * size does not fit ustar).
 *
 * @param meta the entry's metadata
 * @returns 512 bytes, or more with a pax header
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tarHeader } from "./tar.ts";
 * const meta = { type: "file", size: 10, mode: 0o644, mtime: 0, linkname: "" } as const;
 * assert.equal(tarHeader({ ...meta, name: "lib/libfoo.a" }).length, 512);
 * assert.equal(tarHeader({ ...meta, name: "x".repeat(300) }).length, 3 * 512); // pax in front
 * ```
 */
export function tarHeader(meta: TarHeader): Uint8Array {
  const flag = FLAGS[meta.type];
  if (!flag) throw new ArchiveError(`cannot write tar entry '${meta.name}' of type ${meta.type}`);
  const records: string[] = [];
  const rec = (k: string, v: string) => {
    const body = ` ${k}=${v}\n`;
    const bodyLen = enc.encode(body).length;
    let len = bodyLen + 1;
    while (len !== bodyLen + String(len).length) len = bodyLen + String(len).length;
    records.push(`${len}${body}`);
  };
  const name = fitsUstar(meta.name) ? meta.name : (rec("path", meta.name), "pax-path");
  if (enc.encode(meta.linkname).length !== meta.linkname.length || meta.linkname.length > 100) {
    rec("linkpath", meta.linkname);
  }
  const octalMax = 0o77777777777;
  if (meta.size > octalMax) rec("size", String(meta.size));
  const main = block(
    { ...meta, linkname: meta.linkname.length > 100 ? "" : meta.linkname },
    name,
    flag,
    meta.size > octalMax ? 0 : meta.size,
  );
  if (records.length === 0) return main;
  const data = enc.encode(records.join(""));
  const paxHeader = block(
    { ...meta, linkname: "", mode: 0o644 },
    "PaxHeader",
    "x",
    data.length,
  );
  const out = new Uint8Array(BLOCK + data.length + tarPadding(data.length).length + BLOCK);
  out.set(paxHeader, 0);
  out.set(data, BLOCK);
  out.set(main, out.length - BLOCK);
  return out;
}
