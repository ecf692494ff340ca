// Reading an executable's platform from its ELF / Mach-O / PE header.
import { join } from "node:path";
import { assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import {
  binaryInfo,
  checkBinaryPlatforms,
  filePlatform,
  FormatError,
  hostPlatform,
  NotFoundError,
  OcipkgError,
  readBinaryInfo,
} from "./_internal.ts";
import { tempDir } from "./_helpers.ts";
import { arArchive, elfHeader, EM, machoHeader } from "./_binaries.ts";

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

Deno.test("filePlatform reads executables, shared libraries and static libraries' first object", async () => {
  const dir = await tempDir();
  const file = async (name: string, bytes: Uint8Array) => {
    await Deno.writeFile(join(dir, name), bytes);
    return join(dir, name);
  };
  const linuxAmd64 = { os: "linux", architecture: "amd64" };
  assertEquals(await filePlatform(await file("libfoo.so", elfHeader(EM.x86_64)), "f"), linuxAmd64);
  assertEquals(await filePlatform(Deno.execPath(), "f"), {
    ...hostPlatform(),
    ...(hostPlatform().architecture === "arm64" ? { variant: "v8" } : {}),
  });
  // GNU ar: a symbol table and long names first, then the objects
  const gnu = arArchive([{ name: "a.o", data: elfHeader(EM.aarch64, { size: 301 }) }]);
  assertEquals(await filePlatform(await file("libgnu.a", gnu), "f"), {
    os: "linux",
    architecture: "arm64",
    variant: "v8",
  });
  // BSD ar (macOS): `#1/<n>` names, Mach-O objects
  const bsd = arArchive([{ name: "a.o", data: machoHeader(0x01000007) }], "bsd");
  assertEquals(await filePlatform(await file("libbsd.a", bsd), "f"), {
    os: "darwin",
    architecture: "amd64",
  });
  // what is no binary, or none whose platform is known, names no platform
  const none = [
    ["README", new TextEncoder().encode("text\n")],
    ["run.sh", new TextEncoder().encode("#!/bin/sh\n")],
    ["empty.a", new TextEncoder().encode("!<arch>\n")],
    ["bitcode.a", arArchive([{ name: "a.o", data: new Uint8Array([0x42, 0x43, 0xc0, 0xde]) }])],
    ["sparc.so", elfHeader(0x2b)],
    ["truncated.so", elfHeader(EM.x86_64).subarray(0, 20)],
    ["fat", new Uint8Array([0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2])],
  ] as const;
  for (const [name, bytes] of none) {
    assertEquals(await filePlatform(await file(name, bytes), "f"), undefined, name);
  }
  await assertRejects(() => filePlatform(join(dir, "missing"), "input file"), NotFoundError);
});

Deno.test("checkBinaryPlatforms names the first binary of another platform; arm64 v8 is arm64", async () => {
  const dir = await tempDir();
  await Deno.writeFile(join(dir, "a.so"), elfHeader(EM.aarch64));
  await Deno.writeFile(join(dir, "b.so"), elfHeader(EM.x86_64));
  await Deno.writeTextFile(join(dir, "c.txt"), "docs\n");
  const files = ["a.so", "b.so", "c.txt"].map((n) => ({ path: join(dir, n), name: `lib/${n}` }));
  await checkBinaryPlatforms(files.slice(0, 1), { os: "linux", architecture: "arm64" }, "x");
  await checkBinaryPlatforms(files.slice(2), { os: "windows", architecture: "amd64" }, "x");
  const e = await assertRejects(
    () => checkBinaryPlatforms(files, { os: "linux", architecture: "arm64" }, "image 'x:1'"),
    OcipkgError,
  );
  assertEquals(e.message, "image 'x:1': lib/b.so is linux/amd64, not linux/arm64");
  await assertRejects(
    () => checkBinaryPlatforms(files, { os: "windows", architecture: "arm64" }, "image 'x:1'"),
    OcipkgError,
    "image 'x:1': lib/a.so is linux/arm64/v8, not windows/arm64",
  );
});
