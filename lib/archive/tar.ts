/**
 * The tar reader: one header parser and reader working over any
 * {@link ByteSource} (`tar_source.ts`). A header's fields and pax records are
 * decoded in `tar_header.ts`; writers encode headers with `tar_writer.ts`.
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
 * - Decimal numbers in metadata (pax record lengths, `size`, `mtime`,
 *   `atime`, `ctime`, `uid`, `gid`, the GNU sparse records and a sparse 1.0
 *   map) may have any number of leading zeros, as Go, GNU tar and Python
 *   read them (`size=000000000000000000000999` is 999); only their
 *   significant digits count against the limits. A pax time that is not a
 *   decimal (`999xxx9324.43`) is refused, as Go does (GNU tar and Python
 *   ignore it).
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
 * digits (no sign, no spaces; leading zeros are fine); a negative size or mode is refused; a sparse map must be sorted,
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
import {
  BLOCK,
  bytesAre,
  checksumOk,
  cstr,
  decimal,
  HEADER_ONLY,
  int64,
  isZero,
  numField,
  parsePax,
  shown,
  SPARSE_MAP,
  type TarHeader,
  TYPES,
} from "./tar_header.ts";
import type { ByteSource } from "./tar_source.ts";

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
  let significant = 0;
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
        // leading zeros are allowed, as many as there are (as Go)
        if (tok > 0 || c !== 0x30) {
          if (++significant > 16) throw fail("a number in its sparse map is too long");
        }
        digits++;
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
      digits = significant = 0;
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
 * import { readTar } from "./tar.ts";
 * import { StreamSource } from "./tar_source.ts";
 * import { TAR_END, tarHeader, tarPadding } from "./tar_writer.ts";
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
      const m = /^([+-]?[0-9]+)(\.[0-9]*)?$/.exec(v);
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
