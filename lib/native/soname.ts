/**
 * The name a shared library asks to be loaded by: an ELF library's
 * `DT_SONAME` (`libfoo.so.1` for `libfoo.so -> libfoo.so.1.2.3`), the last
 * part of a Mach-O library's install name (`libfoo.1.dylib` for
 * `@rpath/libfoo.1.dylib`). A binary linked against the library records this
 * name, and the dynamic loader looks for a file of that name at run time.
 *
 * Only the headers are read, at their offsets (never the whole library), and
 * every offset and size is bounded, so a damaged or hostile file yields
 * `undefined`, not an error. The name is the image's: whoever uses it checks
 * it (see `link_stage.ts`).
 *
 * @module
 */

/** At most this many bytes are read for one table (program headers, dynamic section, load commands). */
const TABLE_MAX = 1 << 20;
/** The longest name read. */
const NAME_MAX = 256;

type ReadAt = (offset: number, length: number) => Promise<Uint8Array>;

function cString(b: Uint8Array): string | undefined {
  const end = b.indexOf(0);
  if (end <= 0) return undefined;
  return new TextDecoder().decode(b.subarray(0, end));
}

async function elfSoname(at: ReadAt, head: Uint8Array): Promise<string | undefined> {
  const is64 = head[4] === 2;
  const little = head[5] === 1;
  if (head.length < (is64 ? 64 : 52)) return undefined;
  const h = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const phoff = is64 ? Number(h.getBigUint64(32, little)) : h.getUint32(28, little);
  const phentsize = h.getUint16(is64 ? 54 : 42, little);
  const phnum = h.getUint16(is64 ? 56 : 44, little);
  if (phentsize < (is64 ? 56 : 32) || phnum * phentsize > TABLE_MAX) return undefined;
  const ph = await at(phoff, phnum * phentsize);
  const p = new DataView(ph.buffer, ph.byteOffset, ph.byteLength);
  const word = (v: DataView, off: number) =>
    is64 ? Number(v.getBigUint64(off, little)) : v.getUint32(off, little);
  const loads: { vaddr: number; offset: number; size: number }[] = [];
  let dynamic: { offset: number; size: number } | undefined;
  for (let i = 0; (i + 1) * phentsize <= ph.length; i++) {
    const o = i * phentsize;
    const type = p.getUint32(o, little);
    const offset = word(p, o + (is64 ? 8 : 4));
    const vaddr = word(p, o + (is64 ? 16 : 8));
    const size = word(p, o + (is64 ? 32 : 16));
    if (type === 1) loads.push({ vaddr, offset, size }); // PT_LOAD
    if (type === 2) dynamic = { offset, size }; // PT_DYNAMIC
  }
  if (!dynamic || dynamic.size > TABLE_MAX) return undefined;
  const dyn = await at(dynamic.offset, dynamic.size);
  const d = new DataView(dyn.buffer, dyn.byteOffset, dyn.byteLength);
  const entry = is64 ? 16 : 8;
  let soname: number | undefined;
  let strtab: number | undefined;
  for (let o = 0; o + entry <= dyn.length; o += entry) {
    const tag = word(d, o);
    const value = word(d, o + entry / 2);
    if (tag === 0) break; // DT_NULL
    if (tag === 14) soname = value; // DT_SONAME: an offset into the string table
    if (tag === 5) strtab = value; // DT_STRTAB: the table's address
  }
  if (soname === undefined || strtab === undefined) return undefined;
  const addr = strtab + soname;
  const seg = loads.find((l) => l.vaddr <= addr && addr < l.vaddr + l.size);
  if (!seg) return undefined;
  return cString(await at(seg.offset + (addr - seg.vaddr), NAME_MAX));
}

async function machoSoname(at: ReadAt, head: Uint8Array): Promise<string | undefined> {
  const h = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const magic = h.getUint32(0, true);
  const little = magic === 0xfeedfacf || magic === 0xfeedface;
  const is64 = magic === 0xfeedfacf || magic === 0xcffaedfe;
  const ncmds = h.getUint32(16, little);
  const size = h.getUint32(20, little);
  if (size > TABLE_MAX) return undefined;
  const cmds = await at(is64 ? 32 : 28, size);
  const c = new DataView(cmds.buffer, cmds.byteOffset, cmds.byteLength);
  for (let i = 0, o = 0; i < ncmds && o + 12 <= cmds.length; i++) {
    const cmd = c.getUint32(o, little);
    const cmdsize = c.getUint32(o + 4, little);
    if (cmdsize < 8 || o + cmdsize > cmds.length) return undefined;
    if (cmd === 0xd) { // LC_ID_DYLIB: the library's install name
      const name = c.getUint32(o + 8, little);
      if (name >= cmdsize) return undefined;
      const full = cString(cmds.subarray(o + name, o + cmdsize));
      return full?.slice(full.lastIndexOf("/") + 1) || undefined;
    }
    o += cmdsize;
  }
  return undefined;
}

/**
 * The name a shared library asks to be loaded by, read from its header:
 * ELF `DT_SONAME`, or the last part of a (thin) Mach-O library's install
 * name. `undefined` for a library without one (built without `-soname`), a
 * universal (fat) Mach-O file, a PE DLL (loaded by its file name), or a file
 * that is no library or is damaged.
 *
 * @param path the library file
 * @returns the name, unchecked (it comes from the file)
 * @throws {Deno.errors.NotFound} and other errors opening the file
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSoname } from "./soname.ts";
 * // a Mach-O library (arm64) whose only load command is its install name
 * const b = new Uint8Array(32 + 48);
 * const v = new DataView(b.buffer);
 * v.setUint32(0, 0xfeedfacf, true); // 64-bit, little-endian
 * v.setUint32(4, 0x0100000c, true); // arm64
 * v.setUint32(12, 6, true); // a dynamic library
 * v.setUint32(16, 1, true); // one load command,
 * v.setUint32(20, 48, true); // 48 bytes of them
 * v.setUint32(32, 0xd, true); // LC_ID_DYLIB
 * v.setUint32(36, 48, true);
 * v.setUint32(40, 24, true); // the name starts 24 bytes into the command
 * b.set(new TextEncoder().encode("@rpath/libfoo.1.dylib"), 32 + 24);
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/libfoo.dylib`, b);
 * assert.equal(await readSoname(`${dir}/libfoo.dylib`), "libfoo.1.dylib");
 * await Deno.writeTextFile(`${dir}/libbar.so`, "INPUT(-lbaz)\n"); // a linker script
 * assert.equal(await readSoname(`${dir}/libbar.so`), undefined);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readSoname(path: string): Promise<string | undefined> {
  using f = await Deno.open(path);
  const at: ReadAt = async (offset, length) => {
    const buf = new Uint8Array(length);
    if (!Number.isSafeInteger(offset) || offset < 0) return buf.subarray(0, 0);
    await f.seek(offset, Deno.SeekMode.Start);
    let n = 0;
    while (n < length) {
      const r = await f.read(buf.subarray(n));
      if (r === null) break;
      n += r;
    }
    return buf.subarray(0, n);
  };
  const head = await at(0, 64);
  if (head.length < 32) return undefined;
  try {
    if (head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) {
      return await elfSoname(at, head);
    }
    const m = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(0, true);
    if ([0xfeedfacf, 0xcffaedfe, 0xfeedface, 0xcefaedfe].includes(m)) {
      return await machoSoname(at, head);
    }
  } catch (e) {
    if (e instanceof RangeError) return undefined; // a table shorter than it claims
    throw e;
  }
  return undefined;
}
