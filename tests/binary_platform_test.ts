// Reading an executable's platform from its ELF / Mach-O / PE header.
import { assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { binaryInfo, FormatError, readBinaryInfo } from "./_internal.ts";
import { tempDir } from "./_helpers.ts";

function elf(machine: number, opts: { bits?: 32 | 64; little?: boolean; osabi?: number } = {}) {
  const b = new Uint8Array(128);
  const v = new DataView(b.buffer);
  const little = opts.little ?? true;
  b.set([0x7f, 0x45, 0x4c, 0x46, opts.bits === 32 ? 1 : 2, little ? 1 : 2, 1, opts.osabi ?? 0]);
  v.setUint16(18, machine, little);
  return b;
}

Deno.test("binaryInfo reads ELF machines and OS ABI", () => {
  assertEquals(binaryInfo(elf(0x3e), "x").platform, { os: "linux", architecture: "amd64" });
  assertEquals(binaryInfo(elf(0xb7), "x").platform, {
    os: "linux",
    architecture: "arm64",
    variant: "v8",
  });
  assertEquals(binaryInfo(elf(0x03, { bits: 32 }), "x").platform.architecture, "386");
  assertEquals(binaryInfo(elf(0x15, { little: true }), "x").platform.architecture, "ppc64le");
  assertEquals(binaryInfo(elf(0x16, { little: false }), "x").platform.architecture, "s390x");
  assertEquals(binaryInfo(elf(0x3e, { osabi: 9 }), "x").platform.os, "freebsd");
  assertThrows(() => binaryInfo(elf(0x9999), "x"), FormatError, "unknown ELF machine");
});

Deno.test("binaryInfo reads Mach-O and PE headers; rejects fat binaries and junk", () => {
  const macho = new Uint8Array(32);
  new DataView(macho.buffer).setUint32(0, 0xfeedfacf, true);
  new DataView(macho.buffer).setUint32(4, 0x0100000c, true);
  assertEquals(binaryInfo(macho, "m").platform, { os: "darwin", architecture: "arm64" });
  const fat = new Uint8Array(32);
  fat.set([0xca, 0xfe, 0xba, 0xbe]);
  assertThrows(() => binaryInfo(fat, "'u'"), FormatError, "universal");
  const pe = new Uint8Array(256);
  pe.set([0x4d, 0x5a]);
  new DataView(pe.buffer).setUint32(0x3c, 0x80, true);
  pe.set([0x50, 0x45, 0, 0], 0x80);
  new DataView(pe.buffer).setUint16(0x84, 0xaa64, true);
  assertEquals(binaryInfo(pe, "p").platform, { os: "windows", architecture: "arm64" });
  assertThrows(
    () => binaryInfo(new TextEncoder().encode("#!/bin/sh\necho hi\n"), "'run.sh'"),
    FormatError,
    "'run.sh' is not a supported executable",
  );
});

Deno.test("readBinaryInfo on this Deno executable gives the host platform, dynamic", async () => {
  const info = await readBinaryInfo(Deno.execPath());
  if (Deno.build.os === "linux") {
    assertEquals(info.format, "elf");
    assertEquals(info.platform.architecture, Deno.build.arch === "x86_64" ? "amd64" : "arm64");
    assertEquals(info.dynamic, true);
  }
  const dir = await tempDir();
  await assertRejects(() => readBinaryInfo(`${dir}/missing`), Error, "missing");
});
