/**
 * Writing tar archives: the header of an entry (ustar, with a pax header in
 * front when the name, the link target or the size does not fit ustar), the
 * padding after its data, and the two zero blocks that end the archive.
 *
 * @module
 */
import { ArchiveError } from "../util/errors.ts";
import { BLOCK, type TarEntryType, type TarHeader } from "./tar_header.ts";

const enc = new TextEncoder();

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
 * import { tarHeader } from "./tar_writer.ts";
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
