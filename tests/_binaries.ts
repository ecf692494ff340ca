// Small binaries with real headers, for platform checks: an ELF header, a
// Mach-O header, and `ar` archives (static libraries) holding such objects.
import { concat } from "./_helpers.ts";

/** ELF machine numbers. */
export const EM = { x86_64: 0x3e, aarch64: 0xb7 } as const;

/** A 64-byte ELF header (64-bit, little-endian unless told) for a machine and OS ABI. */
export function elfHeader(machine: number, opts: { osabi?: number; size?: number } = {}) {
  const b = new Uint8Array(opts.size ?? 64);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, opts.osabi ?? 0]);
  new DataView(b.buffer).setUint16(18, machine, true);
  return b;
}

/** A Mach-O 64-bit header for a CPU type (0x01000007 x86-64, 0x0100000c arm64). */
export function machoHeader(cpu: number): Uint8Array {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0xfeedfacf, true);
  v.setUint32(4, cpu, true);
  return b;
}

/**
 * An `ar` archive of members. `gnu` (default): a `/` symbol table and a `//`
 * long-name table first, as GNU ar writes; `bsd`: a `__.SYMDEF` table and
 * `#1/<n>` names, as macOS ar writes.
 */
export function arArchive(
  members: { name: string; data: Uint8Array }[],
  style: "gnu" | "bsd" = "gnu",
): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [enc.encode("!<arch>\n")];
  const member = (name: string, data: Uint8Array) => {
    const field = (s: string, n: number) => s.padEnd(n, " ").slice(0, n);
    let body = data;
    let id = name;
    if (style === "bsd") {
      // BSD long names: `#1/<length>`, the name leads the data
      const n = enc.encode(name.padEnd(Math.ceil((name.length + 1) / 8) * 8, "\0"));
      body = new Uint8Array(n.length + data.length);
      body.set(n);
      body.set(data, n.length);
      id = `#1/${n.length}`;
    }
    const header = field(id, 16) + field("0", 12) + field("0", 6) + field("0", 6) +
      field("644", 8) + field(String(body.length), 10) + "`\n";
    parts.push(enc.encode(header), body);
    if (body.length % 2) parts.push(enc.encode("\n"));
  };
  if (style === "gnu") {
    member("/", new Uint8Array(5000)); // a symbol table larger than a header read
    member("//", enc.encode("a_rather_long_object_name.o/\n"));
  } else member("__.SYMDEF SORTED", new Uint8Array(8));
  for (const m of members) member(style === "gnu" ? `${m.name}/` : m.name, m.data);
  return concat(parts);
}
