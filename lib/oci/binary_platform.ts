/**
 * Read the platform of an executable from its header: ELF (Linux, FreeBSD),
 * Mach-O (macOS) and PE (Windows) — and of a static library from its first
 * ELF or Mach-O object; check a package's files against the platform they
 * are installed or packed for.
 *
 * @module
 */
import { FormatError, fsError, OcipkgError } from "../util/errors.ts";
import type { Platform } from "./manifest.ts";
import { formatPlatform, platformMatches } from "./platform.ts";
import { printable } from "../util/text.ts";

/** What an executable's header says. */
export interface BinaryInfo {
  /** `elf`, `mach-o` or `pe`. */
  format: "elf" | "mach-o" | "pe";
  /** Its platform. */
  platform: Platform;
  /** ELF only: it asks for a program interpreter (dynamically linked). */
  dynamic?: boolean;
}

const ELF_MACHINE: Record<number, string> = {
  0x03: "386",
  0x28: "arm",
  0x3e: "amd64",
  0xb7: "arm64",
  0xf3: "riscv64",
  0x15: "ppc64",
  0x16: "s390x",
  0x08: "mips",
};
/** ELF OS ABI bytes: 0 (System V) is what Linux toolchains write; others name their system. */
const ELF_OSABI: Record<number, string> = {
  0: "linux",
  1: "hpux",
  2: "netbsd",
  3: "linux",
  6: "solaris",
  7: "aix",
  8: "irix",
  9: "freebsd",
  12: "openbsd",
};
const MACHO_CPU: Record<number, string> = { 0x01000007: "amd64", 0x0100000c: "arm64", 7: "386" };
const PE_MACHINE: Record<number, string> = {
  0x8664: "amd64",
  0xaa64: "arm64",
  0x014c: "386",
  0x01c4: "arm",
};

function fail(where: string, why: string): never {
  throw new FormatError(`${where} is not a supported executable: ${why}`);
}

function elf(b: Uint8Array, where: string): BinaryInfo {
  const is64 = b[4] === 2;
  const little = b[5] === 1;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < (is64 ? 64 : 52)) fail(where, "truncated ELF header");
  const machine = v.getUint16(18, little);
  let arch = ELF_MACHINE[machine];
  if (!arch) fail(where, `unknown ELF machine 0x${machine.toString(16)}`);
  if (arch === "ppc64" && little) arch = "ppc64le";
  if (arch === "mips" && is64) arch = little ? "mips64le" : "mips64";
  else if (arch === "mips" && little) arch = "mipsle";
  // an unknown OS ABI still names the machine: the file is no binary for any known system
  const os = ELF_OSABI[b[7]!] ?? `unknown-osabi-${b[7]}`;
  const platform: Platform = { os, architecture: arch };
  if (arch === "arm64") platform.variant = "v8";
  // program headers: PT_INTERP (3) means a dynamic loader is needed
  const phoff = is64 ? Number(v.getBigUint64(32, little)) : v.getUint32(28, little);
  const phentsize = v.getUint16(is64 ? 54 : 42, little);
  const phnum = v.getUint16(is64 ? 56 : 44, little);
  let dynamic = false;
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > b.length) break;
    if (v.getUint32(off, little) === 3) dynamic = true;
  }
  return { format: "elf", platform, dynamic };
}

function macho(b: Uint8Array, where: string): BinaryInfo {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const magic = v.getUint32(0, true);
  if (magic === 0xbebafeca || magic === 0xcafebabe) {
    fail(where, "a universal (fat) Mach-O binary holds several platforms");
  }
  const little = magic === 0xfeedfacf || magic === 0xfeedface;
  const cpu = v.getUint32(4, little);
  const arch = MACHO_CPU[cpu] ?? fail(where, `unknown Mach-O CPU type 0x${cpu.toString(16)}`);
  return { format: "mach-o", platform: { os: "darwin", architecture: arch } };
}

function pe(b: Uint8Array, where: string): BinaryInfo {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 0x40) fail(where, "truncated MZ header");
  const off = v.getUint32(0x3c, true);
  if (off + 6 > b.length || v.getUint32(off, true) !== 0x00004550) {
    fail(where, "MZ file without a PE header");
  }
  const machine = v.getUint16(off + 4, true);
  const arch = PE_MACHINE[machine] ?? fail(where, `unknown PE machine 0x${machine.toString(16)}`);
  return { format: "pe", platform: { os: "windows", architecture: arch } };
}

/**
 * Read an executable's format and platform from its first bytes.
 *
 * @param head the file's first bytes (64 KiB is plenty)
 * @param where names the file in errors
 * @returns format, platform, and for ELF whether it is dynamically linked
 * @throws {FormatError} when it is not an ELF, Mach-O or PE executable
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { binaryInfo } from "./binary_platform.ts";
 * import { FormatError } from "../util/errors.ts";
 * const elf = new Uint8Array(64);
 * elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
 * elf[18] = 0x3e; // x86-64
 * assert.deepEqual(binaryInfo(elf, "a.out"), {
 *   format: "elf",
 *   platform: { os: "linux", architecture: "amd64" },
 *   dynamic: false,
 * });
 * assert.throws(() => binaryInfo(new TextEncoder().encode("#!/bin/sh\n"), "run.sh"), FormatError);
 * ```
 */
export function binaryInfo(head: Uint8Array, where: string): BinaryInfo {
  if (head.length < 8) fail(where, "too short");
  if (head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) {
    return elf(head, where);
  }
  const m = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(0, true);
  if ([0xfeedfacf, 0xcffaedfe, 0xfeedface, 0xcefaedfe, 0xbebafeca, 0xcafebabe].includes(m)) {
    return macho(head, where);
  }
  if (head[0] === 0x4d && head[1] === 0x5a) return pe(head, where);
  fail(where, "no ELF, Mach-O or PE header");
}

/**
 * Read the format and platform of an executable file.
 *
 * @param path the file
 * @returns what {@link binaryInfo} returns
 * @throws {OcipkgError} naming the path when it cannot be read or is not an executable
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NotFoundError } from "@ocipkg/cli";
 * import { hostPlatform, readBinaryInfo } from "@ocipkg/cli/oci";
 * const info = await readBinaryInfo(Deno.execPath()); // this deno (or ocipkg) executable
 * const formats: Record<string, string> = { linux: "elf", darwin: "mach-o", windows: "pe" };
 * assert.equal(info.format, formats[Deno.build.os]);
 * assert.equal(info.platform.os, hostPlatform().os);
 * assert.equal(info.platform.architecture, hostPlatform().architecture);
 * await assert.rejects(readBinaryInfo("no-such-executable"), NotFoundError);
 * ```
 */
export async function readBinaryInfo(path: string): Promise<BinaryInfo> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    throw fsError(e, "executable", path);
  }
  try {
    const buf = new Uint8Array(64 * 1024);
    let n = 0;
    while (n < buf.length) {
      const r = await file.read(buf.subarray(n));
      if (r === null) break;
      n += r;
    }
    return binaryInfo(buf.subarray(0, n), `'${path}'`);
  } finally {
    file.close();
  }
}

/** Bytes of a file read to find its header (an ELF or Mach-O header, PE's is within its first KiB). */
const HEAD = 4096;
/** Bytes of an archive member read to find an object's header. */
const MEMBER_HEAD = 1024;
/** Members of an `ar` archive looked at, at most (a guard against a hostile member table). */
const AR_MEMBERS = 1_000_000;
const AR_MAGIC = "!<arch>\n";

/** Read up to `n` bytes at `offset` (fewer at the end of the file). */
async function readAt(file: Deno.FsFile, offset: number, n: number): Promise<Uint8Array> {
  await file.seek(offset, Deno.SeekMode.Start);
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await file.read(buf.subarray(got));
    if (r === null) break;
    got += r;
  }
  return buf.subarray(0, got);
}

/** The platform a header names, or undefined when it is no binary whose platform can be read. */
function headPlatform(head: Uint8Array): Platform | undefined {
  try {
    return binaryInfo(head, "file").platform;
  } catch (e) {
    if (e instanceof FormatError) return undefined;
    throw e;
  }
}

/** One binary platform found in a file, and the archive member it is in, if any. */
export interface FoundPlatform {
  /** The platform its header names. */
  platform: Platform;
  /** The archive member (static libraries), if the file is an archive. */
  member?: string;
}

/** The platforms of every object in an `ar` archive (symbol and name tables skipped). */
async function archivePlatforms(file: Deno.FsFile, size: number): Promise<FoundPlatform[]> {
  let offset = AR_MAGIC.length;
  const dec = new TextDecoder("latin1");
  const out: FoundPlatform[] = [];
  for (let i = 0; i < AR_MEMBERS && offset + 60 <= size; i++) {
    const header = await readAt(file, offset, 60);
    if (header.length < 60 || header[58] !== 0x60 || header[59] !== 0x0a) break;
    let name = dec.decode(header.subarray(0, 16)).trimEnd();
    const length = Number(dec.decode(header.subarray(48, 58)).trim());
    if (!Number.isSafeInteger(length) || length < 0) break;
    let data = offset + 60;
    const bsd = /^#1\/(\d+)$/.exec(name);
    if (bsd) {
      // BSD long name: the name is the member's first bytes
      const n = Number(bsd[1]);
      name = dec.decode(await readAt(file, data, n)).replace(/\0+$/, "");
      data += n;
    }
    const table = name === "/" || name === "//" || name === "/SYM64/" ||
      name.startsWith("__.SYMDEF");
    if (!table) {
      const found = headPlatform(await readAt(file, data, MEMBER_HEAD));
      if (found) out.push({ platform: found, member: name.replace(/\/$/, "") });
    }
    offset += 60 + length + (length % 2);
  }
  return out;
}

/** The slices of a universal (fat) Mach-O file; undefined when the bytes are not one. */
function fatSlices(head: Uint8Array): Platform[] | undefined {
  if (head.length < 8) return undefined;
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const magic = v.getUint32(0, false);
  if (magic !== 0xcafebabe && magic !== 0xcafebabf) return undefined;
  const count = v.getUint32(4, false);
  // Java class files share the magic; their next word is a version of 45 or more
  if (count === 0 || count >= 45) return undefined;
  const entry = magic === 0xcafebabf ? 32 : 20;
  const out: Platform[] = [];
  for (let i = 0; i < count && 8 + (i + 1) * entry <= head.length; i++) {
    const arch = MACHO_CPU[v.getUint32(8 + i * entry, false)];
    if (arch) out.push({ os: "darwin", architecture: arch });
  }
  return out;
}

/**
 * Every platform a file's headers name: one for an executable or shared
 * library; one per object for a static library; one per slice for a
 * universal Mach-O (`anyOf`: the loader picks the slice that fits, so one
 * match suffices). Empty when the file is no binary whose platform can be read.
 *
 * @param path the file
 * @param what names the file in errors
 * @returns the platforms found, and whether one of them suffices
 * @throws {OcipkgError} naming the path when it cannot be read
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { filePlatforms } from "./binary_platform.ts";
 * import { hostPlatform } from "./platform.ts";
 * const { platforms, anyOf } = await filePlatforms(Deno.execPath(), "executable");
 * assert.equal(platforms[0]?.platform.architecture, hostPlatform().architecture);
 * assert.equal(anyOf, false);
 * ```
 */
export async function filePlatforms(
  path: string,
  what: string,
): Promise<{ platforms: FoundPlatform[]; anyOf: boolean }> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    throw fsError(e, what, path);
  }
  try {
    const head = await readAt(file, 0, HEAD);
    if (new TextDecoder("latin1").decode(head.subarray(0, AR_MAGIC.length)) === AR_MAGIC) {
      return { platforms: await archivePlatforms(file, (await file.stat()).size), anyOf: false };
    }
    const slices = fatSlices(head);
    if (slices) return { platforms: slices.map((platform) => ({ platform })), anyOf: true };
    const one = headPlatform(head);
    return { platforms: one ? [{ platform: one }] : [], anyOf: false };
  } catch (e) {
    throw fsError(e, what, path);
  } finally {
    file.close();
  }
}

/**
 * The platform a file is built for, from its header: an ELF, Mach-O or PE
 * file, or a static library (`ar` archive) of ELF or Mach-O objects. Only
 * the headers are read.
 *
 * @param path the file
 * @param what names the file in errors, e.g. "input file"
 * @returns its platform; undefined when it is not such a binary (text, data,
 *   a universal Mach-O, an unknown machine, an archive of other objects)
 * @throws {OcipkgError} naming the path when it cannot be read
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { filePlatform } from "./binary_platform.ts";
 * import { hostPlatform } from "./platform.ts";
 * const p = await filePlatform(Deno.execPath(), "executable"); // this deno
 * assert.equal(p?.architecture, hostPlatform().architecture);
 * const tmp = await Deno.makeTempFile();
 * await Deno.writeTextFile(tmp, "#!/bin/sh\n");
 * assert.equal(await filePlatform(tmp, "script"), undefined);
 * await Deno.remove(tmp);
 * ```
 */
export async function filePlatform(path: string, what: string): Promise<Platform | undefined> {
  const { platforms, anyOf } = await filePlatforms(path, what);
  return anyOf ? undefined : platforms[0]?.platform;
}

/**
 * Check that the binaries among files are built for a platform: the first
 * (in the order given) whose header names another platform is refused —
 * every object of a static library must fit, a universal Mach-O needs one
 * slice that fits, an ELF whose OS ABI names another system does not fit.
 * Files that are no binaries (see {@link filePlatform}) pass.
 *
 * @param files each file's path on disk and its name in the package
 * @param want the platform the files are meant for
 * @param where names the package in errors, e.g. `image 'x:1'`
 * @throws {OcipkgError} `<where>: <name> is <its platform>, not <want>`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkBinaryPlatforms } from "./binary_platform.ts";
 * import { OcipkgError } from "../util/errors.ts";
 * import { hostPlatform } from "./platform.ts";
 * const deno = [{ path: Deno.execPath(), name: "bin/deno" }];
 * await checkBinaryPlatforms(deno, hostPlatform(), "image 'x:1'"); // fits
 * const other = { os: "plan9", architecture: hostPlatform().architecture };
 * await assert.rejects(checkBinaryPlatforms(deno, other, "image 'x:1'"), OcipkgError);
 * ```
 */
export async function checkBinaryPlatforms(
  files: Iterable<{ path: string; name: string }>,
  want: Platform,
  where: string,
): Promise<void> {
  for (const f of files) {
    const { platforms, anyOf } = await filePlatforms(f.path, `${where}: file`);
    if (platforms.length === 0) continue;
    const fits = platforms.filter((p) => platformMatches(p.platform, want));
    // a universal binary needs one slice that fits; everything else needs all of them
    const bad = anyOf
      ? (fits.length ? undefined : platforms[0])
      : platforms.find((p) => !platformMatches(p.platform, want));
    if (bad) {
      const what = anyOf
        ? `a universal binary of ${platforms.map((p) => formatPlatform(p.platform)).join(", ")}`
        : formatPlatform(bad.platform);
      const member = bad.member ? ` (member ${printable(bad.member)})` : "";
      throw new OcipkgError(
        `${where}: ${printable(f.name)}${member} is ${what}, not ${formatPlatform(want)}`,
      );
    }
  }
}
