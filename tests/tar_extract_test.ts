import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import {
  ArchiveError,
  bytesStream,
  ExtractBudget,
  extractLayer,
  readTar,
  StreamSource,
  TAR_END,
  type TarEntryType,
  tarHeader,
  tarPadding,
} from "./_internal.ts";
import { concat, listTree, tempDir, withTempDir } from "./_helpers.ts";

interface E {
  name: string;
  type?: TarEntryType;
  data?: string;
  linkname?: string;
  mode?: number;
}

/** Build a tar archive from entries (raw header for odd types). */
function tar(entries: E[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    const data = new TextEncoder().encode(e.data ?? "");
    const type = e.type ?? "file";
    if (type === "char-device" || type === "fifo") {
      const h = tarHeader({
        name: e.name,
        type: "file",
        size: 0,
        mode: 0o644,
        mtime: 0,
        linkname: "",
      });
      h[156] = type === "fifo" ? 0x36 : 0x33;
      h.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of h) sum += b;
      h.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
      parts.push(h);
      continue;
    }
    const size = type === "file" ? data.length : 0;
    parts.push(
      tarHeader({
        name: e.name,
        type,
        size,
        mode: e.mode ?? 0o644,
        mtime: 0,
        linkname: e.linkname ?? "",
      }),
    );
    if (size) parts.push(data, tarPadding(size));
  }
  parts.push(TAR_END);
  return concat(parts);
}

async function extract(entries: E[], dest: string, budget?: ExtractBudget, gzip = false) {
  const bytes = gzip ? new Uint8Array(gzipSync(tar(entries))) : tar(entries);
  return await extractLayer(bytesStream(bytes), dest, {
    compression: gzip ? "gzip" : "none",
    what: "layer L",
    reserved: [".oci-dir"],
    budget,
  });
}

Deno.test("tar: long names, non-ASCII names and long link targets round-trip (pax/ustar)", async () => {
  const long = "d/".repeat(80) + "file.txt";
  const uni = "ünïcode/ファイル.txt";
  const link = "x/".repeat(60) + "target";
  const bytes = tar([{ name: long, data: "a" }, { name: uni, data: "b" }, {
    name: "l",
    type: "symlink",
    linkname: link,
  }]);
  const names: string[] = [];
  for await (const e of readTar(new StreamSource([bytes]))) {
    names.push(e.name);
    if (e.type === "symlink") assertEquals(e.linkname, link);
  }
  assertEquals(names, [long, uni, "l"]);
});

Deno.test("tar: a corrupted header is reported with its offset", async () => {
  const bytes = tar([{ name: "a", data: "x" }]);
  bytes[10] = 0x41;
  await assertRejects(
    async () => {
      for await (const _ of readTar(new StreamSource([bytes]), "archive A")) { /* */ }
    },
    ArchiveError,
    "archive A is corrupt: bad tar header checksum at offset 0",
  );
});

Deno.test("extract: files, dirs, modes, in-root symlinks and hardlinks (gzip)", async () => {
  const dest = await tempDir();
  const r = await extract(
    [
      { name: "./lib/", type: "directory" },
      { name: "lib/libfoo.so.1", data: "ELF", mode: 0o755 },
      { name: "lib/libfoo.so", type: "symlink", linkname: "libfoo.so.1" },
      { name: "include/foo.h", data: "int foo();" },
      { name: "hard.h", type: "hardlink", linkname: "include/foo.h" },
    ],
    dest,
    undefined,
    true,
  );
  assertEquals(r.files.sort(), ["hard.h", "include/foo.h", "lib/libfoo.so.1"]);
  assertEquals(await Deno.readTextFile(join(dest, "lib/libfoo.so")), "ELF");
  assertEquals((await Deno.stat(join(dest, "lib/libfoo.so.1"))).mode! & 0o777, 0o755);
  assertEquals(await Deno.readTextFile(join(dest, "hard.h")), "int foo();");
});

Deno.test("extract: unsafe archives are rejected", async () => {
  const cases: [string, E[], string][] = [
    ["absolute path", [{ name: "/etc/passwd", data: "x" }], "absolute path"],
    ["dot-dot", [{ name: "a/../../x", data: "x" }], "escapes"],
    ["backslash", [{ name: "a\\..\\x", data: "x" }], "backslash"],
    ["symlink escape", [{ name: "l", type: "symlink", linkname: "../../etc" }], "points outside"],
    [
      "absolute symlink",
      [{ name: "l", type: "symlink", linkname: "/etc/passwd" }],
      "points outside",
    ],
    ["write through symlink", [{ name: "l", type: "symlink", linkname: "sub" }, {
      name: "sub/",
      type: "directory",
    }, { name: "l/x", data: "x" }], "through symlink 'l'"],
    [
      "hardlink escape",
      [{ name: "h", type: "hardlink", linkname: "../outside" }],
      "points outside",
    ],
    ["hardlink to symlink", [{ name: "s", type: "symlink", linkname: "x" }, {
      name: "h",
      type: "hardlink",
      linkname: "s",
    }], "not a file"],
    ["device", [{ name: "dev", type: "char-device" }], "char-device; refused"],
    ["fifo", [{ name: "p", type: "fifo" }], "fifo; refused"],
    ["reserved name", [{ name: ".oci-dir/index.json", data: "{}" }], "reserved"],
  ];
  for (const [label, entries, msg] of cases) {
    const dest = await tempDir();
    await assertRejects(() => extract(entries, dest), ArchiveError, msg).catch((e) => {
      throw new Error(`${label}: ${e.message}`);
    });
    assert(!(await Deno.lstat(join(dest, "..", "outside")).catch(() => null)), label);
  }
});

Deno.test("extract: a symlink planted by an earlier layer cannot be written through", async () => {
  const dest = await tempDir();
  const outside = await tempDir();
  const budget = new ExtractBudget();
  // layer 1: an in-root symlink dir -> sub; then layer 2 replaces sub by a symlink to .. and writes through 'l'
  await extract(
    [{ name: "sub/", type: "directory" }, { name: "l", type: "symlink", linkname: "sub" }],
    dest,
    budget,
  );
  await assertRejects(
    () => extract([{ name: "l/evil", data: "x" }], dest, budget),
    ArchiveError,
    "through symlink",
  );
  assertEquals(await listTree(outside), []);
});

Deno.test("extract: caps on bytes and entries", async () => {
  await assertRejects(
    async () =>
      extract(
        [{ name: "a", data: "0123456789" }],
        await tempDir(),
        new ExtractBudget({ maxBytes: 5 }),
      ),
    ArchiveError,
    "exceeds the cap",
  );
  await assertRejects(
    async () =>
      extract(
        [{ name: "a" }, { name: "b" }, { name: "c" }],
        await tempDir(),
        new ExtractBudget({ maxBytes: 100, maxEntries: 2 }),
      ),
    ArchiveError,
    "entry cap",
  );
});

Deno.test("extract: truncated gzip and truncated tar are errors", async () => {
  const gz = new Uint8Array(gzipSync(tar([{ name: "a", data: "x".repeat(5000) }])));
  await assertRejects(
    async () =>
      extractLayer(bytesStream(gz.subarray(0, gz.length - 20)), await tempDir(), {
        compression: "gzip",
        what: "layer L",
      }),
    Error,
    "unexpected end of file",
  );
  const t = tar([{ name: "a", data: "x".repeat(5000) }]);
  await assertRejects(
    async () =>
      extractLayer(bytesStream(t.subarray(0, 1500)), await tempDir(), {
        compression: "none",
        what: "layer L",
      }),
    ArchiveError,
    "layer L is truncated",
  );
});

/** A scratch tree `<root>/dest` beside `<root>/outside/secret`, removed afterwards. */
async function scratch(fn: (dest: string, outside: string) => Promise<void>): Promise<void> {
  await withTempDir(async (root) => {
    const dest = join(root, "dest");
    const outside = join(root, "outside");
    await Deno.mkdir(dest);
    await Deno.mkdir(outside);
    await Deno.writeTextFile(join(outside, "secret"), "keep");
    await fn(dest, outside);
    assertEquals(await listTree(outside), ["secret"]);
    assertEquals(await Deno.readTextFile(join(outside, "secret")), "keep");
  });
}

async function extractAll(dest: string, layers: E[][], whiteouts = false) {
  const budget = new ExtractBudget();
  for (const entries of layers) {
    await extractLayer(bytesStream(tar(entries)), dest, {
      compression: "none",
      what: "layer L",
      reserved: [".oci-dir"],
      budget,
      whiteouts,
    });
  }
  const { checkLinks } = await import("../lib/archive/extract.ts");
  checkLinks(dest, budget, "image I", [".oci-dir"]);
}

Deno.test("extract: links are resolved against the disk, not as text", async (t) => {
  const chain = ["c0", "c0/c1", "c0/c1/c2", "c0/c1/c2/c3", "c0/c1/c2/c3/c4", "c0/c1/c2/c3/c4/c5"];
  const cases: Record<string, E[][]> = {
    "a -> . then b -> a/..": [[
      { name: "a", type: "symlink", linkname: "." },
      { name: "b", type: "symlink", linkname: "a/.." },
    ]],
    "symlink chain up then out": [[
      ...chain.map((name): E => ({ name, type: "directory" })),
      { name: "c0/c1/c2/c3/c4/c5/up", type: "symlink", linkname: "../../../../../.." },
      {
        name: "esc",
        type: "symlink",
        linkname: "c0/c1/c2/c3/c4/c5/up/../../../../../../outside",
      },
    ]],
    "target made a link to outside by a later layer": [
      [{ name: "d", type: "directory" }, { name: "l", type: "symlink", linkname: "d/x" }],
      [{ name: "d", type: "symlink", linkname: ".." }],
    ],
    "link into .oci-dir": [[{ name: "o", type: "symlink", linkname: "./.oci-dir/index.json" }]],
    "loop": [[
      { name: "x", type: "symlink", linkname: "y" },
      { name: "y", type: "symlink", linkname: "x" },
    ]],
  };
  for (const [name, layers] of Object.entries(cases)) {
    await t.step(name, () =>
      scratch(async (dest) => {
        await Deno.mkdir(join(dest, ".oci-dir"));
        await assertRejects(() => extractAll(dest, layers), ArchiveError, "symlink");
      }));
  }
  await t.step("links that stay inside are kept", () =>
    scratch(async (dest) => {
      await extractAll(dest, [[
        { name: "lib/libz.so.1", data: "z" },
        { name: "lib/libz.so", type: "symlink", linkname: "libz.so.1" },
        { name: "up", type: "symlink", linkname: "lib/../lib/./libz.so" },
      ]]);
      assertEquals(await Deno.readTextFile(join(dest, "up")), "z");
    }));
});

Deno.test("extract: whiteouts name one entry and never reach .oci-dir", async (t) => {
  await t.step(
    "w/.wh.. cannot leave a stale checked directory",
    () =>
      scratch(async (dest, outside) => {
        await assertRejects(
          () =>
            extractAll(dest, [[
              { name: "w/", type: "directory" },
              { name: "w/.wh..", data: "" },
              { name: "w", type: "symlink", linkname: outside },
              { name: "w/pwned", data: "x" },
            ]], true),
          ArchiveError,
        );
      }),
  );
  await t.step(
    "opaque whiteout at the root keeps .oci-dir; .wh..oci-dir refused",
    () =>
      scratch(async (dest) => {
        await Deno.mkdir(join(dest, ".oci-dir"));
        await Deno.writeTextFile(join(dest, ".oci-dir", "index.json"), "{}");
        await extractAll(
          dest,
          [[{ name: "a", data: "1" }], [{ name: ".wh..wh..opq", data: "" }]],
          true,
        );
        assertEquals(await listTree(dest), []);
        assertEquals(await Deno.readTextFile(join(dest, ".oci-dir", "index.json")), "{}");
        await assertRejects(
          () => extractAll(dest, [[{ name: ".wh..oci-dir", data: "" }]], true),
          ArchiveError,
          "reserved",
        );
        assert((await Deno.stat(join(dest, ".oci-dir"))).isDirectory);
      }),
  );
});

Deno.test("extract: whiteouts hide lower layers only, never their own layer", () =>
  scratch(async (dest) => {
    await extractAll(dest, [
      [
        { name: "d/old", data: "lower" },
        { name: "d/sub/old", data: "lower" },
        { name: "x", data: "lower" },
        { name: "y", data: "lower" },
      ],
      [
        { name: "d/new", data: "upper" },
        { name: "d/sub/new", data: "upper" },
        { name: "d/.wh..wh..opq", data: "" },
        { name: "x", data: "upper" },
        { name: ".wh.x", data: "" },
        { name: ".wh.y", data: "" },
      ],
    ], true);
    assertEquals(await listTree(dest), ["d/", "d/new", "d/sub/", "d/sub/new", "x"]);
    assertEquals(await Deno.readTextFile(join(dest, "x")), "upper");
  }));

Deno.test("extract: modes lose group/other write and setuid/setgid/sticky", () =>
  scratch(async (dest) => {
    await extractAll(dest, [[
      { name: "d", type: "directory", mode: 0o1777 },
      { name: "d/f", data: "x", mode: 0o6777 },
      { name: "ro", data: "x", mode: 0o444 },
    ]]);
    assertEquals((await Deno.stat(join(dest, "d"))).mode! & 0o7777, 0o755);
    assertEquals((await Deno.stat(join(dest, "d/f"))).mode! & 0o7777, 0o755);
    assertEquals((await Deno.stat(join(dest, "ro"))).mode! & 0o7777, 0o444);
  }));

Deno.test("extract: a gzip bomb is refused by the ratio limit, long names by name", () =>
  scratch(async (dest) => {
    const zeros = new Uint8Array(200 * 1024 * 1024);
    const h = tarHeader({
      name: "z",
      type: "file",
      size: zeros.length,
      mode: 0o644,
      mtime: 0,
      linkname: "",
    });
    const gz = gzipSync(new Uint8Array([...h, ...new Uint8Array(0)]));
    // header + 200 MiB of zeros as one gzip member, built without holding twice the memory
    const { createGzip } = await import("node:zlib");
    const z = createGzip({ level: 9 });
    const chunks: Uint8Array[] = [];
    z.on("data", (c: Uint8Array) => chunks.push(c));
    const done = new Promise((r) => z.on("end", r));
    z.write(h);
    z.write(zeros);
    z.end();
    await done;
    assert(gz.length > 0);
    await assertRejects(
      () =>
        extractLayer(ReadableStream.from(chunks), dest, {
          compression: "gzip",
          what: "layer B",
          budget: new ExtractBudget(),
        }),
      ArchiveError,
      "decompression bomb",
    );
    await assertRejects(
      () => extractAll(dest, [[{ name: `${"n".repeat(300)}/f`, data: "x" }]]),
      ArchiveError,
      "longer than",
    );
  }));
