/**
 * Read the platform of an executable from its header: ELF (Linux, FreeBSD),
 * Mach-O (macOS) and PE (Windows).
 *
 * @module
 */
import { FormatError, fsError } from "./errors.ts";
import type { Platform } from "./manifest.ts";

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
const ELF_OSABI: Record<number, string> = { 0: "linux", 3: "linux", 9: "freebsd" };
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
  const os = ELF_OSABI[b[7]!] ?? fail(where, `unknown ELF OS ABI ${b[7]}`);
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
 * import { FormatError } from "./errors.ts";
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
 * import { hostPlatform, NotFoundError, readBinaryInfo } from "@ocipkg/cli";
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
