/**
 * The tar format: one header parser and reader (ustar, pax and GNU long names)
 * working over any {@link ByteSource}, and header encoding for writers.
 *
 * @module
 */
import { ArchiveError } from "./errors.ts";

const BLOCK = 512;
const MAX_META = 1024 * 1024; // cap on pax / GNU long-name records
const enc = new TextEncoder();
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
  /** Size of the entry's data in bytes. */
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
  /** Byte offset of the entry's data in the archive. */
  offset: number;
  /** The data; consume it or leave it (the reader skips what is left). */
  body(): AsyncIterable<Uint8Array>;
}

/** Sequential reader of bytes that may skip cheaply (seek) when it can. */
export interface ByteSource {
  /** Bytes consumed so far. */
  readonly position: number;
  /** Read up to `n` bytes; fewer only at the end. */
  readExact(n: number): Promise<Uint8Array>;
  /** Yield exactly the next `n` bytes in chunks; throws when the input ends early. */
  chunks(n: number): AsyncIterable<Uint8Array>;
  /** Skip `n` bytes. */
  skip(n: number): Promise<void>;
}

/**
 * A {@link ByteSource} over an async iterable of chunks (a stream).
 *
 * @example
 * ```ts
 * import { StreamSource } from "./tar.ts";
 * const s = new StreamSource([new Uint8Array([1, 2, 3])]);
 * console.assert((await s.readExact(2)).length === 2 && s.position === 2);
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
      if (!c) throw new ArchiveError(`${this.#what} is truncated: unexpected end of data`);
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
 * large archive reads only its headers.
 */
export class FileSource implements ByteSource {
  #file: Deno.FsFile;
  #position: number;
  #what: string;

  /**
   * Create a FileSource.
   * @param file an open file, positioned at `start`
   * @param what names the file in errors
   * @param start current position of the file
   */
  constructor(file: Deno.FsFile, what: string, start = 0) {
    this.#file = file;
    this.#what = what;
    this.#position = start;
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
        throw new ArchiveError(`${this.#what} is truncated: unexpected end of file`);
      }
      left -= buf.byteLength;
      yield buf;
    }
  }

  async skip(n: number): Promise<void> {
    await this.#file.seek(n, Deno.SeekMode.Current);
    this.#position += n;
  }
}

function cstr(buf: Uint8Array, off: number, len: number): string {
  const s = buf.subarray(off, off + len);
  const end = s.indexOf(0);
  return dec.decode(end < 0 ? s : s.subarray(0, end));
}

function num(buf: Uint8Array, off: number, len: number, what: string): number {
  const b = buf.subarray(off, off + len);
  if (b[0]! & 0x80) { // base-256 (GNU) for large values
    let v = b[0]! & 0x7f;
    for (let i = 1; i < b.length; i++) v = v * 256 + b[i]!;
    return v;
  }
  const s = cstr(buf, off, len).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) {
    throw new ArchiveError(`${what} is corrupt: invalid number in tar header`);
  }
  return parseInt(s, 8);
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

function parsePax(data: Uint8Array, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(dec.decode(data.subarray(i, sp)), 10);
    if (!(len > 0) || i + len > data.length) throw new ArchiveError(`${what}: bad pax record`);
    const rec = dec.decode(data.subarray(sp + 1, i + len - 1));
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/**
 * Read tar entries one by one. Handles ustar prefixes, pax extended headers
 * (`path`, `linkpath`, `size`) and GNU long names; verifies header checksums.
 *
 * @param source where the archive's bytes come from
 * @param what names the archive in errors
 * @returns an async iterator of entries
 * @throws {ArchiveError} on a corrupt or truncated archive
 * @example
 * ```ts
 * import { readTar, StreamSource, tarHeader, tarPadding, TAR_END } from "./tar.ts";
 * const data = new TextEncoder().encode("hi");
 * const bytes = [tarHeader({ name: "a.txt", type: "file", size: 2, mode: 0o644, mtime: 0, linkname: "" }), data, tarPadding(2), TAR_END];
 * for await (const e of readTar(new StreamSource(bytes))) console.assert(e.name === "a.txt");
 * ```
 */
export async function* readTar(source: ByteSource, what = "archive"): AsyncGenerator<TarEntry> {
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  while (true) {
    const at = source.position;
    const h = await source.readExact(BLOCK);
    if (h.byteLength === 0) return; // tolerate a missing end marker
    if (h.byteLength < BLOCK) throw new ArchiveError(`${what} is truncated: partial tar header`);
    if (h.every((b) => b === 0)) return;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    const declared = num(h, 148, 8, what);
    if (sum !== declared) {
      throw new ArchiveError(`${what} is corrupt: bad tar header checksum at offset ${at}`);
    }
    const flag = String.fromCharCode(h[156]!);
    let size = num(h, 124, 12, what);
    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      if (size > MAX_META) throw new ArchiveError(`${what}: tar metadata record is too large`);
      const data = await source.readExact(size);
      if (data.byteLength < size) throw new ArchiveError(`${what} is truncated`);
      await source.skip((BLOCK - (size % BLOCK)) % BLOCK);
      if (flag === "x") pax = { ...pax, ...parsePax(data, what) };
      else if (flag === "L") longName = cstr(data, 0, data.length);
      else if (flag === "K") longLink = cstr(data, 0, data.length);
      continue;
    }
    let name = cstr(h, 0, 100);
    const magic = cstr(h, 257, 6);
    if (magic === "ustar") {
      const prefix = cstr(h, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    name = pax.path ?? longName ?? name;
    const linkname = pax.linkpath ?? longLink ?? cstr(h, 157, 100);
    if (pax.size !== undefined) size = Number(pax.size);
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new ArchiveError(`${what}: invalid size for entry '${name}'`);
    }
    pax = {};
    longName = longLink = undefined;
    const type = TYPES[flag] ?? "other";
    const dataSize = type === "hardlink" || type === "symlink" || type === "directory" ? 0 : size;
    const offset = source.position;
    let consumed = false;
    const entry: TarEntry = {
      name,
      type,
      size: dataSize,
      mode: num(h, 100, 8, what) & 0o7777,
      mtime: num(h, 136, 12, what),
      linkname,
      offset,
      body: () => {
        if (consumed) throw new Error("tar entry body read twice");
        consumed = true;
        return source.chunks(dataSize);
      },
    };
    yield entry;
    const end = offset + dataSize;
    if (source.position < end) await source.skip(end - source.position);
    await source.skip((BLOCK - (dataSize % BLOCK)) % BLOCK);
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
 * import { tarHeader } from "./tar.ts";
 * const h = tarHeader({ name: "lib/libfoo.a", type: "file", size: 10, mode: 0o644, mtime: 0, linkname: "" });
 * console.assert(h.length === 512);
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
