// The tar reader (lib/archive/tar.ts) against GNU tar, python3's tarfile and the rules
// of Go's archive/tar. Every archive is read through a StreamSource (in odd
// chunk sizes) and a FileSource (which seeks to skip), with and without
// reading the entries' data, and the readers must agree.
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { ArchiveError, bytesStream, extractLayer, OciArchive } from "../mod.ts";
import {
  MAX_TAR_METADATA_BYTES,
  MAX_TAR_METADATA_HEADERS,
  MAX_TAR_SPARSE_SEGMENTS,
  readTar,
  type ReadTarOptions,
  type TarEntry,
} from "../lib/archive/tar.ts";
import { FileSource, StreamSource } from "../lib/archive/tar_source.ts";
import { TAR_END } from "../lib/archive/tar_writer.ts";
import { concat, have, run, withTempDir } from "./_helpers.ts";

const enc = new TextEncoder();
const BLOCK = 512;
const HAVE_TAR = await have("tar");
const HAVE_PYTHON = await have("python3");

// ---------------------------------------------------------------------------
// Building archives by hand

type Num = number | { b256: bigint } | { text: string };

interface H {
  name?: string;
  flag?: string;
  size?: Num;
  mode?: Num;
  mtime?: Num;
  uid?: Num;
  linkname?: string;
  magic?: "ustar" | "gnu" | "v7" | "star";
  prefix?: string;
  checksum?: "unsigned" | "signed" | "bad" | { text: string };
}

function header(o: H): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const put = (off: number, len: number, v: string) => {
    const b = enc.encode(v);
    if (b.length > len) throw new Error(`test builder: '${v}' does not fit ${len} bytes`);
    h.set(b, off);
  };
  const num = (off: number, len: number, v: Num) => {
    if (typeof v === "number") put(off, len, v.toString(8).padStart(len - 1, "0") + "\0");
    else if ("text" in v) put(off, len, v.text);
    else {
      let x = v.b256 < 0n ? (1n << BigInt(8 * len)) + v.b256 : v.b256;
      for (let i = len - 1; i >= 0; i--) {
        h[off + i] = Number(x & 0xffn);
        x >>= 8n;
      }
      h[off] = h[off]! | 0x80;
    }
  };
  put(0, 100, o.name ?? "f");
  num(100, 8, o.mode ?? 0o644);
  num(108, 8, o.uid ?? 0);
  num(116, 8, 0);
  num(124, 12, o.size ?? 0);
  num(136, 12, o.mtime ?? 0);
  put(156, 1, o.flag ?? "0");
  put(157, 100, o.linkname ?? "");
  const magic = o.magic ?? "ustar";
  if (magic === "ustar" || magic === "star") put(257, 8, "ustar\x0000");
  if (magic === "gnu") put(257, 8, "ustar  \0");
  if (magic === "star") put(508, 4, "tar\0");
  if (o.prefix) put(345, magic === "star" ? 131 : 155, o.prefix);
  h.fill(0x20, 148, 156);
  let unsigned = 0;
  let signed = 0;
  for (const b of h) {
    unsigned += b;
    signed += b < 0x80 ? b : b - 0x100;
  }
  const ck = o.checksum ?? "unsigned";
  if (typeof ck === "object") put(148, 8, ck.text);
  else {
    const v = ck === "signed" ? signed : ck === "bad" ? unsigned + 1 : unsigned;
    put(148, 8, v.toString(8).padStart(6, "0") + "\0 ");
  }
  return h;
}

const pad = (n: number) => new Uint8Array((BLOCK - (n % BLOCK)) % BLOCK);
const bytes = (d: string | Uint8Array) => typeof d === "string" ? enc.encode(d) : d;

/** A regular file (or any type, with `extra`). */
function file(name: string, data: string | Uint8Array = "", extra: H = {}): Uint8Array[] {
  const b = bytes(data);
  return [header({ name, size: b.length, ...extra }), b, pad(b.length)];
}

/** One pax record, its length counting itself. */
function rec(k: string, v: string): string {
  const body = ` ${k}=${v}\n`;
  const n = enc.encode(body).length;
  let len = n + 1;
  while (len !== n + String(len).length) len = n + String(len).length;
  return `${len}${body}`;
}

/** A pax header ('x', or 'g') from records, or raw record text. */
function pax(records: [string, string][] | string, flag = "x"): Uint8Array[] {
  const data = enc.encode(
    typeof records === "string" ? records : records.map(([k, v]) => rec(k, v)).join(""),
  );
  return [header({ name: "PaxHeader", flag, size: data.length }), data, pad(data.length)];
}

/** A GNU long name ('L') or long link ('K'). */
function gnuLong(flag: "L" | "K", value: string | Uint8Array): Uint8Array[] {
  const data = bytes(value);
  return [
    header({ name: "././@LongLink", flag, size: data.length, magic: "gnu" }),
    data,
    pad(data.length),
  ];
}

/** A GNU pax sparse 1.0 file: `map` is the raw map text (or built from `segments`). */
function sparse1(o: {
  name: string;
  realSize: number;
  segments?: [number, string][];
  map?: string;
  data?: string;
  records?: [string, string][];
  flag?: string;
}): Uint8Array[] {
  const segs = o.segments ?? [];
  const map = enc.encode(
    o.map ?? [String(segs.length), ...segs.flatMap(([off, s]) => [off, s.length])].join("\n") +
        "\n",
  );
  const data = enc.encode(o.data ?? segs.map(([, s]) => s).join(""));
  const size = map.length + pad(map.length).length + data.length;
  return [
    ...pax(
      o.records ?? [
        ["GNU.sparse.major", "1"],
        ["GNU.sparse.minor", "0"],
        ["GNU.sparse.name", o.name],
        ["GNU.sparse.realsize", String(o.realSize)],
      ],
    ),
    header({ name: `GNUSparseFile.0/${o.name}`, size, flag: o.flag ?? "0" }),
    map,
    pad(map.length),
    data,
    pad(size),
  ];
}

const tar = (...parts: (Uint8Array | Uint8Array[])[]) => concat([...parts, TAR_END]);

// ---------------------------------------------------------------------------
// Reading through both sources

interface Got {
  name: string;
  type: string;
  size: number;
  linkname: string;
  mode: number;
  mtime: number;
  data?: string;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function collect(entries: AsyncIterable<TarEntry>, read: boolean): Promise<Got[]> {
  const out: Got[] = [];
  for await (const e of entries) {
    const g: Got = {
      name: e.name,
      type: e.type,
      size: e.size,
      linkname: e.linkname,
      mode: e.mode,
      mtime: e.mtime,
    };
    if (read) {
      const h = createHash("sha256");
      let n = 0;
      let small = "";
      for await (const c of e.body()) {
        h.update(c);
        n += c.length;
        if (n <= 64) small += new TextDecoder().decode(c);
      }
      assertEquals(n, e.size, `body of '${e.name}' holds its size`);
      g.data = n <= 64 ? small : `sha256:${h.digest("hex")}`;
    }
    out.push(g);
  }
  return out;
}

function* chunked(b: Uint8Array, n: number): Generator<Uint8Array> {
  for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n);
}

/** Run `fn` over the archive as a file, removed afterwards. */
async function withFile<T>(b: Uint8Array, fn: (path: string) => Promise<T>): Promise<T> {
  return await withTempDir(async (dir) => {
    const path = join(dir, "a.tar");
    await Deno.writeFile(path, b);
    return await fn(path);
  });
}

type Outcome = { ok: Got[] } | { error: string };

async function outcome(fn: () => Promise<Got[]>): Promise<Outcome> {
  try {
    return { ok: await fn() };
  } catch (e) {
    if (!(e instanceof ArchiveError)) throw e;
    assert(!e.message.includes("\n"), "one-line error");
    return { error: e.message };
  }
}

/**
 * Read `b` six ways (stream in one chunk, stream in 333-byte chunks, file;
 * each reading the data or not) and check that they agree. Returns what the
 * readers saw (entries read with data) or the error.
 */
async function readAll(b: Uint8Array, options: ReadTarOptions = {}): Promise<Outcome> {
  const results: Outcome[] = [];
  for (const read of [true, false]) {
    results.push(
      await outcome(() => collect(readTar(new StreamSource([b], "A"), "A", options), read)),
    );
    results.push(
      await outcome(() =>
        collect(readTar(new StreamSource(chunked(b, 333), "A"), "A", options), read)
      ),
    );
    results.push(
      await withFile(b, async (path) => {
        const f = await Deno.open(path);
        try {
          return await outcome(() => collect(readTar(new FileSource(f, "A"), "A", options), read));
        } finally {
          f.close();
        }
      }),
    );
  }
  const [first] = results;
  const strip = (o: Outcome): Outcome =>
    "ok" in o ? { ok: o.ok.map(({ data: _, ...g }) => g) } : {
      // the file source says "end of file" where a stream says "end of data"
      error: o.error.replace("end of file", "end of data"),
    };
  for (const r of results) {
    assertEquals("ok" in r, "ok" in first!, `readers agree: ${JSON.stringify(results)}`);
    assertEquals(strip(r), strip(first!), "readers agree");
  }
  return first!;
}

async function entries(b: Uint8Array, options?: ReadTarOptions): Promise<Got[]> {
  const r = await readAll(b, options);
  if ("error" in r) throw new Error(`expected success, got: ${r.error}`);
  return r.ok;
}

async function refused(b: Uint8Array, ...includes: string[]): Promise<string> {
  const r = await readAll(b);
  if ("ok" in r) throw new Error(`expected an error, got ${JSON.stringify(r.ok)}`);
  for (const s of includes) {
    assert(
      r.error.includes(s),
      `expected ${JSON.stringify(r.error)} to include ${JSON.stringify(s)}`,
    );
  }
  return r.error;
}

const names = (g: Got[]) => g.map((e) => e.name);

// ---------------------------------------------------------------------------
// 1. Floods and caps

/** `count` pax headers with distinct keys, then one file (≈ 1 KiB a header). */
function paxFlood(count: number, flag = "x"): Uint8Array {
  const one = (i: number) => pax([[`ocipkg.flood.k${i}`, "v".repeat(64)]], flag);
  return tar(...Array.from({ length: count }, (_, i) => one(i)), file("after-flood", "x"));
}

Deno.test("tar reader: a flood of 40,000 pax headers fails at the header cap, in a layer and in an oci-archive", async () => {
  const flood = paxFlood(40_000);
  const msg = `more than ${MAX_TAR_METADATA_HEADERS} pax/GNU metadata headers in a row`;
  await assertRejects(
    () => collect(readTar(new StreamSource(chunked(flood, 4096)), "A"), false),
    ArchiveError,
    msg,
  );
  const gz = new Uint8Array(gzipSync(flood));
  assert(gz.length < 1024 * 1024, "the flood compresses well");
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "out"));
    await assertRejects(
      () => extractLayer(bytesStream(gz), join(dir, "out"), { compression: "gzip", what: "L" }),
      ArchiveError,
      `L is corrupt: ${msg}`,
    );
    await Deno.writeFile(join(dir, "flood.tar"), flood);
    await assertRejects(() => OciArchive.open(join(dir, "flood.tar")), ArchiveError, msg);
  });
});

Deno.test("tar reader: metadata caps count headers and bytes before one entry, and reset after it", async () => {
  const n = MAX_TAR_METADATA_HEADERS;
  // exactly the cap of headers passes; one more fails; 'g' and 'L' count too
  assertEquals(names(await entries(paxFlood(n))), ["after-flood"]);
  await refused(paxFlood(n + 1), `more than ${n} pax/GNU metadata headers`);
  await refused(paxFlood(n + 1, "g"), `more than ${n} pax/GNU metadata headers`);
  const longs = Array.from({ length: n + 1 }, (_, i) => gnuLong("L", `n${i}`));
  await refused(tar(...longs, file("x")), `more than ${n}`);
  // the counts are per entry: three entries behind n headers each
  const three = tar(
    ...[0, 1, 2].flatMap((k) => [
      ...Array.from({ length: n - 1 }, (_, i) => pax([[`k${i}`, "v"]])),
      pax([["path", `entry-${k}`]]),
      file("ustar"),
    ]),
  );
  assertEquals(names(await entries(three)), ["entry-0", "entry-1", "entry-2"]);
  // bytes: all metadata before one entry together, exactly the cap passes
  const half = MAX_TAR_METADATA_BYTES / 2;
  const big = (c: string, len: number) => gnuLong("L", c.repeat(len));
  const atCap = await entries(tar(big("a", half), big("b", half), file("x", "1")));
  assertEquals(atCap.map((e) => e.name.length), [half]);
  assert(atCap[0]!.name.startsWith("b"), "the last long name applies");
  await refused(
    tar(big("a", half), big("b", half + 1), file("x")),
    `more than ${MAX_TAR_METADATA_BYTES} bytes of pax/GNU metadata`,
  );
  // a single header claiming 8 GiB is refused before anything is read
  await refused(
    concat([header({ name: "PaxHeader", flag: "x", size: 0o77777777777 })]),
    "bytes of pax/GNU metadata",
  );
  // 'g' records count against the bytes
  await refused(
    tar(pax([["comment", "g".repeat(half)]], "g"), pax([["comment", "x".repeat(half)]]), file("x")),
    "bytes of pax/GNU metadata",
  );
});

Deno.test("tar reader: one pax header of 80,000 records is parsed in one pass", async () => {
  const records = Array.from({ length: 80_000 }, (_, i) => rec(`k${i}`, "v")).join("");
  assert(records.length < MAX_TAR_METADATA_BYTES);
  const got = await entries(tar(pax(records + rec("path", "named")), file("x", "1")));
  assertEquals(names(got), ["named"]);
});

// ---------------------------------------------------------------------------
// 2. Which metadata applies

Deno.test("tar reader: only the last pax header, long name and long link apply; global headers never", async () => {
  const cases: [string, Uint8Array, Partial<Got>[]][] = [
    [
      "a later pax header replaces an earlier one's records",
      tar(pax([["path", "first"], ["linkpath", "first-target"]]), pax([["comment", "c"]]), [
        header({ name: "ustar", flag: "2", linkname: "ustar-target" }),
      ]),
      [{ name: "ustar", linkname: "ustar-target" }],
    ],
    [
      "two pax paths: the later one",
      tar(pax([["path", "first"]]), pax([["path", "second"]]), file("ustar", "p")),
      [{ name: "second", data: "p" }],
    ],
    [
      "an earlier pax size does not leak into the entry",
      tar(pax([["size", "1024"]]), pax([["mtime", "7"]]), file("a", "abc"), file("b", "d")),
      [{ name: "a", size: 3, data: "abc", mtime: 7 }, { name: "b", data: "d" }],
    ],
    [
      "records apply to one entry only",
      tar(pax([["path", "once"]]), file("a", "1"), file("b", "2")),
      [{ name: "once" }, { name: "b" }],
    ],
    [
      "a global header's path is not applied",
      tar(pax([["path", "../../global"]], "g"), file("benign", "x")),
      [{ name: "benign" }],
    ],
    [
      "an empty pax value keeps the header's field",
      tar(pax([["path", ""], ["size", ""]]), file("ustar", "xy")),
      [{ name: "ustar", size: 2 }],
    ],
    [
      "two long names: the later one",
      tar(gnuLong("L", "long-1"), gnuLong("L", "long-2"), file("short", "x")),
      [{ name: "long-2" }],
    ],
    [
      "two long links: the later one",
      tar(gnuLong("K", "t-1"), gnuLong("K", "t-2"), [header({ name: "s", flag: "2" })]),
      [{ name: "s", linkname: "t-2" }],
    ],
    [
      "a GNU long name wins over a pax path (as Go)",
      tar(pax([["path", "pax-name"]]), gnuLong("L", "gnu-name"), file("short", "x")),
      [{ name: "gnu-name" }],
    ],
    [
      "a long name with a NUL ends there",
      tar(gnuLong("L", "cut\0rest"), file("short", "x")),
      [{ name: "cut" }],
    ],
    [
      "a dangling pax header at the end is ignored (as Go)",
      concat([file("a", "1"), pax([["path", "nothing"]]), TAR_END]),
      [{ name: "a" }],
    ],
  ];
  for (const [title, archive, want] of cases) {
    const got = await entries(archive);
    assertEquals(got.length, want.length, title);
    want.forEach((w, i) => {
      for (const [k, v] of Object.entries(w)) {
        assertEquals(got[i]![k as keyof Got], v, `${title}: ${k}`);
      }
    });
  }
});

// ---------------------------------------------------------------------------
// 3. Sparse files

Deno.test("tar reader: pax sparse 1.0 is expanded (holes as zeros, name and real size from the records)", async () => {
  const got = await entries(
    tar(
      sparse1({ name: "dir/sp", realSize: 15, segments: [[0, "ab"], [10, "cd"]] }),
      file("n", "x"),
    ),
  );
  assertEquals(got.map(({ name, size, data }) => ({ name, size, data })), [
    { name: "dir/sp", size: 15, data: "ab" + "\0".repeat(8) + "cd" + "\0".repeat(3) },
    { name: "n", size: 1, data: "x" },
  ]);
  // a file that is all hole, and a map that ends with the usual empty segment
  const holes = await entries(tar(sparse1({ name: "z", realSize: 2000, segments: [] })));
  assertEquals(holes[0]!.data, `sha256:${sha(new Uint8Array(2000))}`);
  const tail = await entries(
    tar(sparse1({ name: "t", realSize: 5, segments: [[1, "b"], [5, ""]] })),
  );
  assertEquals(tail[0]!.data, "\0b\0\0\0");
  // a map of more than one block
  const many = Array.from({ length: 200 }, (_, i) => [i * 1000, "x"] as [number, string]);
  const big = await entries(tar(sparse1({ name: "m", realSize: 200_000, segments: many })));
  const want = new Uint8Array(200_000);
  for (let i = 0; i < 200; i++) want[i * 1000] = 0x78;
  assertEquals(big[0]!.data, `sha256:${sha(want)}`);
});

Deno.test("tar reader: a 1 TB sparse file is read in bounded chunks and refused by the extractor's byte cap", async () => {
  const TB = 1_000_000_000_000;
  const archive = tar(
    sparse1({ name: "huge", realSize: TB, segments: [[TB - 512, "t".repeat(512)]] }),
    file("after", "a"),
  );
  const seen: string[] = [];
  for await (const e of readTar(new StreamSource([archive]), "A")) {
    seen.push(e.name);
    if (e.name !== "huge") continue;
    assertEquals(e.size, TB);
    for await (const c of e.body()) {
      assert(c.length <= 1 << 16 && c.every((b) => b === 0), "a small chunk of zeros");
      break; // leave the rest: the reader skips the stored data
    }
  }
  assertEquals(seen, ["huge", "after"]);
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "out"));
    await assertRejects(
      () =>
        extractLayer(bytesStream(archive), join(dir, "out"), { compression: "none", what: "L" }),
      ArchiveError,
      "huge",
    );
  });
});

Deno.test("tar reader: sparse maps and headers are validated strictly", async () => {
  const v = (records: [string, string][]) => records;
  const cases: [string, Uint8Array[], string][] = [
    [
      "not sorted",
      sparse1({ name: "s", realSize: 100, map: "2\n50\n1\n10\n1\n", data: "ab" }),
      "A: sparse file 's' is corrupt: its sparse map is not sorted or has overlapping",
    ],
    [
      "overlapping",
      sparse1({ name: "s", realSize: 100, map: "2\n10\n5\n12\n1\n", data: "abcdef" }),
      "A: sparse file 's' is corrupt: its sparse map is not sorted or has overlapping",
    ],
    [
      "past the real size",
      sparse1({ name: "s", realSize: 10, segments: [[8, "abc"]] }),
      "A: sparse file 's' is corrupt: its sparse map runs past its real size 10",
    ],
    [
      "less data than stored",
      sparse1({ name: "s", realSize: 10, map: "1\n0\n2\n", data: "abc" }),
      "A: sparse file 's' is corrupt: its sparse map accounts for 2 bytes of data but 3 are stored",
    ],
    [
      "more data than stored",
      sparse1({ name: "s", realSize: 10, map: "1\n0\n4\n", data: "abc" }),
      "A: sparse file 's' is corrupt: its sparse map accounts for 4 bytes of data but 3 are stored",
    ],
    [
      "too many segments",
      sparse1({ name: "s", realSize: 10, map: `${MAX_TAR_SPARSE_SEGMENTS + 1}\n` }),
      `A: sparse file 's' is corrupt: its sparse map has more than ${MAX_TAR_SPARSE_SEGMENTS} segments`,
    ],
    [
      "a sign in the map",
      sparse1({ name: "s", realSize: 10, map: "1\n+0\n1\n", data: "a" }),
      "A: sparse file 's' is corrupt: its sparse map is not decimal numbers",
    ],
    [
      "an empty line in the map",
      sparse1({ name: "s", realSize: 10, map: "1\n\n1\n", data: "a" }),
      "A: sparse file 's' is corrupt: its sparse map is not decimal numbers",
    ],
    [
      "a huge number in the map",
      sparse1({ name: "s", realSize: 10, map: "1\n99999999999999999\n1\n", data: "a" }),
      "A: sparse file 's' is corrupt: a number in its sparse map is too long",
    ],
    [
      "a map that runs past the data",
      sparse1({ name: "s", realSize: 10, map: "300\n" + "0\n".repeat(254), data: "" }),
      "A: sparse file 's' is corrupt: its sparse map runs past its data",
    ],
    [
      "a real size that is not a number",
      sparse1({
        name: "s",
        realSize: 0,
        records: v([
          ["GNU.sparse.major", "1"],
          ["GNU.sparse.minor", "0"],
          ["GNU.sparse.name", "s"],
          ["GNU.sparse.realsize", "-1"],
        ]),
      }),
      "A: sparse file 's' is corrupt: its real size '-1' is not a number",
    ],
    [
      "an unknown version",
      sparse1({
        name: "s",
        realSize: 1,
        records: v([["GNU.sparse.major", "2"], ["GNU.sparse.minor", "0"]]),
      }),
      "A: entry 'GNUSparseFile.0/s' is a GNU sparse file of unknown version '2.0'",
    ],
    [
      "a major version without a minor",
      sparse1({ name: "s", realSize: 1, records: v([["GNU.sparse.major", "1"]]) }),
      "A: entry 'GNUSparseFile.0/s' is a GNU sparse file of unknown version '1.'",
    ],
    [
      "sparse records without a format",
      sparse1({ name: "s", realSize: 1, records: v([["GNU.sparse.name", "s"]]) }),
      "A: entry 'GNUSparseFile.0/s' has GNU sparse pax records of no known sparse format",
    ],
    [
      "sparse records on a symlink",
      sparse1({ name: "s", realSize: 1, flag: "2" }),
      "A: entry 's' of type symlink has GNU sparse pax records",
    ],
    [
      "0.1: fewer map numbers than numblocks says",
      [
        ...pax([
          ["GNU.sparse.size", "10"],
          ["GNU.sparse.numblocks", "2"],
          ["GNU.sparse.map", "0,1"],
        ]),
        ...file("s", "a"),
      ],
      "A: sparse file 's' is corrupt: its sparse map does not hold the 2 segments",
    ],
    [
      "0.1: numblocks missing",
      [...pax([["GNU.sparse.size", "10"], ["GNU.sparse.map", "0,1"]]), ...file("s", "a")],
      "A: sparse file 's' is corrupt: its GNU.sparse.numblocks is missing",
    ],
    [
      "0.0: numbytes before offset",
      [
        ...pax([["GNU.sparse.numblocks", "1"], ["GNU.sparse.numbytes", "1"], [
          "GNU.sparse.offset",
          "0",
        ]]),
        ...file("s", "a"),
      ],
      "A is corrupt: bad pax record in the header at offset 0: GNU.sparse.offset and GNU.sparse.numbytes do not alternate",
    ],
  ];
  for (const [title, parts, msg] of cases) {
    const err = await refused(tar(parts));
    assert(
      err.includes(msg),
      `${title}: expected ${JSON.stringify(msg)} in ${JSON.stringify(err)}`,
    );
  }
});

Deno.test("tar reader: pax sparse 0.0 and 0.1 records are expanded", async () => {
  const v01 = tar(
    pax([
      ["GNU.sparse.size", "8"],
      ["GNU.sparse.numblocks", "2"],
      ["GNU.sparse.name", "real-name"],
      ["GNU.sparse.map", "1,2,6,1"],
    ]),
    file("GNUSparseFile.1/real-name", "abc"),
  );
  const v00 = tar(
    pax([
      ["GNU.sparse.size", "8"],
      ["GNU.sparse.numblocks", "2"],
      ["GNU.sparse.offset", "1"],
      ["GNU.sparse.numbytes", "2"],
      ["GNU.sparse.offset", "6"],
      ["GNU.sparse.numbytes", "1"],
    ]),
    file("plain-name", "abc"),
  );
  for (const [archive, name] of [[v01, "real-name"], [v00, "plain-name"]] as const) {
    const got = await entries(archive);
    assertEquals(got.map(({ name, size, data }) => ({ name, size, data })), [
      { name, size: 8, data: "\0ab\0\0\0c\0" },
    ]);
  }
});

Deno.test("tar reader: readers that serve data in place refuse sparse files (refuseSparse, oci-archive)", async () => {
  const sp = sparse1({ name: "blobs/sha256/aa", realSize: 4, segments: [[0, "ab"]] });
  const r = await readAll(tar(sp), { refuseSparse: true });
  assert(
    "error" in r && r.error.includes("'blobs/sha256/aa' is a GNU sparse file (pax format 1.0)"),
  );
  const archive = tar(
    file("oci-layout", '{"imageLayoutVersion":"1.0.0"}'),
    file("index.json", '{"schemaVersion":2,"manifests":[]}'),
    sp,
  );
  await withFile(archive, async (path) => {
    await assertRejects(() => OciArchive.open(path), ArchiveError, "GNU sparse file");
  });
});

/** A 10 MiB + 3 file with data at its start, in its middle and at its end; holes between. */
async function sparseOriginal(path: string): Promise<Uint8Array> {
  const size = 10 * 1024 * 1024 + 3;
  const f = await Deno.open(path, { create: true, write: true, truncate: true });
  try {
    await f.truncate(size);
    for (const [off, s] of [[0, "head"], [5_000_000, "x"], [size - 3, "abc"]] as const) {
      await f.seek(off, Deno.SeekMode.Start);
      await f.write(enc.encode(s));
    }
  } finally {
    f.close();
  }
  return await Deno.readFile(path);
}

Deno.test({
  name:
    "tar reader: GNU tar's pax sparse files (1.0, 0.1, 0.0) read and extract to the original bytes",
  ignore: !HAVE_TAR,
  fn: async () => {
    await withTempDir(async (dir) => {
      await Deno.mkdir(join(dir, "in"));
      const original = await sparseOriginal(join(dir, "in", "f"));
      for (const version of ["1.0", "0.1", "0.0"]) {
        const out = join(dir, `p${version}.tar`);
        const r = await run("tar", [
          "--format=pax",
          "--sparse",
          `--sparse-version=${version}`,
          "-cf",
          out,
          "-C",
          join(dir, "in"),
          "f",
        ]);
        assertEquals(r.code, 0, r.stderr);
        const archive = await Deno.readFile(out);
        assert(archive.length < 1024 * 1024, `GNU tar wrote a sparse ${version} archive`);
        const got = await entries(archive);
        assertEquals(got.map(({ name, type, size, data }) => ({ name, type, size, data })), [
          { name: "f", type: "file", size: original.length, data: `sha256:${sha(original)}` },
        ], `sparse ${version}`);
        const dest = join(dir, `x${version}`);
        await Deno.mkdir(dest);
        await extractLayer(bytesStream(archive), dest, { compression: "none", what: "L" });
        assertEquals(sha(await Deno.readFile(join(dest, "f"))), sha(original), version);
      }
    });
  },
});

Deno.test({
  name:
    "tar reader: GNU tar's old sparse files (typeflag 'S', with and without extension blocks) are refused by name",
  ignore: !HAVE_TAR,
  fn: async () => {
    await withTempDir(async (dir) => {
      await Deno.mkdir(join(dir, "in"));
      await sparseOriginal(join(dir, "in", "few"));
      // 12 data segments: more than the header's 4, so extension blocks follow it
      const f = await Deno.open(join(dir, "in", "many"), { create: true, write: true });
      try {
        await f.truncate(12 * 1024 * 1024);
        for (let i = 0; i < 12; i++) {
          await f.seek(i * 1024 * 1024, Deno.SeekMode.Start);
          await f.write(enc.encode("data"));
        }
      } finally {
        f.close();
      }
      for (const name of ["few", "many"]) {
        const out = join(dir, `${name}.tar`);
        const r = await run("tar", [
          "--format=gnu",
          "--sparse",
          "-cf",
          out,
          "-C",
          join(dir, "in"),
          name,
        ]);
        assertEquals(r.code, 0, r.stderr);
        const archive = await Deno.readFile(out);
        assertEquals(String.fromCharCode(archive[156]!), "S");
        if (name === "many") assert(archive[482] !== 0, "the header is extended");
        const err = await refused(
          archive,
          `A: entry '${name}' is an old GNU sparse file (typeflag 'S')`,
        );
        assert(!err.includes("checksum"), err);
      }
    });
  },
});

// ---------------------------------------------------------------------------
// 4. Truncation and the end of the archive

Deno.test("tar reader: truncation is an error through both sources; a missing end marker at a header boundary is not", async () => {
  const a = "a".repeat(1000);
  const full = tar(file("a", a), file("b", "0123456789"));
  // offsets: a's header 0, data 512..1512, padding to 1536; b's header 1536, data 2048, end 2560
  const cut = (n: number) => full.subarray(0, n);
  const ok: [string, Uint8Array, string[]][] = [
    ["the whole archive", full, ["a", "b"]],
    ["no end marker", cut(2560), ["a", "b"]],
    ["one zero block of the end marker", cut(2560 + 512), ["a", "b"]],
    ["cut at a header boundary", cut(1536), ["a"]],
    ["empty input", new Uint8Array(0), []],
    ["only one zero block", new Uint8Array(512), []],
    [
      "anything after the end marker",
      concat([full, file("../after-end", "x"), enc.encode("garbage")]),
      ["a", "b"],
    ],
  ];
  for (const [title, archive, want] of ok) {
    assertEquals(names(await entries(archive)), want, title);
  }
  const bad: [string, Uint8Array, string][] = [
    ["cut inside a's data", cut(1000), "A is truncated: unexpected end of data"],
    ["cut at the end of a's data (no padding)", cut(1512), "A is truncated"],
    ["cut inside a's padding", cut(1520), "A is truncated"],
    ["cut inside b's header", cut(1536 + 300), "A is truncated: partial tar header at offset 1836"],
    ["a partial zero block", concat([cut(2560), new Uint8Array(200)]), "partial tar header"],
    ["one and a half zero blocks", cut(2560 + 768), "A is truncated: partial tar header"],
    [
      "a zero block, then a header",
      concat([cut(1536), new Uint8Array(512), cut(2560).subarray(1536), TAR_END]),
      "A is corrupt: a zero block at offset 1536 is followed by a header",
    ],
    [
      "a pax header's data cut short",
      concat(pax([["path", "p".repeat(600)]])).subarray(0, 900),
      "A is truncated",
    ],
    [
      "a sparse map cut short",
      concat(sparse1({ name: "s", realSize: 10, segments: [[0, "ab"]] })).subarray(0, 1536 + 100),
      "A is truncated",
    ],
    [
      "sparse data cut short",
      concat(sparse1({ name: "s", realSize: 10, segments: [[0, "abcdef"]] })).subarray(0, 2048 + 3),
      "A is truncated",
    ],
  ];
  for (const [title, archive, msg] of bad) {
    const r = await readAll(archive);
    assert("error" in r && r.error.includes(msg), `${title}: ${JSON.stringify(r)}`);
  }
});

Deno.test("tar reader: FileSource refuses to skip past the end of the file", async () => {
  await withFile(new Uint8Array(1000), async (path) => {
    for (const size of [undefined, 1000]) {
      const f = await Deno.open(path);
      try {
        const s = new FileSource(f, "file F", 0, size);
        await s.skip(600);
        await assertRejects(
          () => s.skip(401),
          ArchiveError,
          "file F is truncated: unexpected end of file at offset 1000",
        );
        await s.skip(400);
        assertEquals(s.position, 1000);
      } finally {
        f.close();
      }
    }
  });
});

// ---------------------------------------------------------------------------
// 5. Header fields

Deno.test("tar reader: header fields are read as Go reads them", async () => {
  const one = async (h: H, data = "", extra: Uint8Array[] = []) =>
    (await entries(tar(file(h.name ?? "f", data, h), ...extra)))[0]!;
  // checksums: unsigned or signed sum, spaces/NULs around the octal digits
  const high = "üx"; // bytes >= 0x80 make the two sums differ
  assertEquals((await one({ name: high, checksum: "signed" })).name, high);
  assertEquals((await one({ name: high, checksum: "unsigned" })).name, high);
  const sum = (h: Uint8Array) => h.reduce((n, b, i) => n + (i >= 148 && i < 156 ? 0x20 : b), 0);
  const spaced = header({ name: "sp" });
  const text = ` ${sum(spaced).toString(8)}\0`.padEnd(8, " ");
  assertEquals(text.length, 8);
  spaced.set(enc.encode(text), 148);
  assertEquals(names(await entries(tar([spaced]))), ["sp"]);
  // numbers: base-256 (positive, negative mtime), octal with spaces, octal cut at a NUL
  assertEquals((await one({ size: { b256: 5n }, magic: "gnu" }, "12345")).size, 5);
  assertEquals((await one({ mtime: { b256: -1000n }, magic: "gnu" })).mtime, -1000);
  assertEquals((await one({ mode: { text: " 755 \0\0\0" } })).mode, 0o755);
  assertEquals((await one({ mode: { text: "644\0junk" } })).mode, 0o644);
  assertEquals((await one({ uid: { b256: 1n << 40n }, magic: "gnu" })).name, "f");
  // names: ustar prefix, STAR prefix, GNU's prefix area is not a prefix
  assertEquals((await one({ name: "base", prefix: "pre/fix" })).name, "pre/fix/base");
  assertEquals((await one({ name: "base", prefix: "star", magic: "star" })).name, "star/base");
  assertEquals((await one({ name: "base", prefix: "gnu", magic: "gnu" })).name, "base");
  assertEquals((await one({ name: "base", prefix: "v7", magic: "v7" })).name, "base");
  // types: '7' and NUL are files; NUL with a trailing slash is a directory without data
  assertEquals((await one({ name: "c", flag: "7" }, "x")).type, "file");
  assertEquals((await one({ name: "n", flag: "\0" }, "x")).type, "file");
  const legacyDir = await entries(
    tar([header({ name: "d/", flag: "\0", size: 512 })], file("next", "n")),
  );
  assertEquals(legacyDir.map((e) => [e.name, e.type, e.size]), [["d/", "directory", 0], [
    "next",
    "file",
    1,
  ]]);
  // pax values that Go accepts
  const benign = await entries(
    tar(
      pax([
        ["size", "5"],
        ["uid", "4294967296"],
        ["gid", "-1"],
        ["mtime", "1.5"],
        ["atime", "-3.25"],
        ["ctime", "12."],
        ["comment", "binary\0ok"],
        ["VENDOR.unknown", "= x ="],
      ]),
      [header({ name: "sized", size: 0 }), enc.encode("hello"), pad(5)],
    ),
  );
  assertEquals(benign.map(({ name, size, data, mtime }) => ({ name, size, data, mtime })), [
    { name: "sized", size: 5, data: "hello", mtime: 1 },
  ]);
  assertEquals((await entries(tar(pax([["mtime", "-3.25"]]), file("m"))))[0]!.mtime, -4);
});

Deno.test("tar reader: header-only types have no data whatever their size says (as Go and Python)", async () => {
  for (
    const [flag, type] of [
      ["1", "hardlink"],
      ["2", "symlink"],
      ["3", "char-device"],
      ["4", "block-device"],
      ["5", "directory"],
      ["6", "fifo"],
    ]
  ) {
    const got = await entries(
      tar([header({ name: "h", flag, size: 512, linkname: "t" })], file("next", "ok")),
    );
    assertEquals(got.map((e) => [e.name, e.type, e.size]), [["h", type, 0], ["next", "file", 2]]);
    // a pax size does not give them data either
    const viaPax = await entries(
      tar(pax([["size", "1024"]]), [header({ name: "h", flag, linkname: "t" })], file("next")),
    );
    assertEquals(names(viaPax), ["h", "next"]);
  }
});

Deno.test("tar reader: malformed headers and pax records are refused with the offset or the entry", async () => {
  const cases: [string, Uint8Array, string][] = [
    [
      "checksum off by one",
      tar(file("a", "x", { checksum: "bad" })),
      "A is corrupt: bad tar header checksum at offset 0",
    ],
    [
      "checksum not octal",
      tar(file("a", "x", { checksum: { text: "abcdef\0 " } })),
      "bad tar header checksum at offset 0",
    ],
    ["text that is not tar", enc.encode("not a tar\n".repeat(100)), "bad tar header checksum"],
    [
      "size not octal",
      tar(file("a", "x", { size: { text: "0000000009a\0" } })),
      "invalid octal number in the size field of the tar header at offset 0",
    ],
    [
      "size with a sign",
      tar(file("a", "x", { size: { text: "+1\0" } })),
      "invalid octal number in the size field",
    ],
    [
      "mode not octal",
      tar(file("a", "x", { mode: { text: "0000ABC\0" } })),
      "invalid octal number in the mode field",
    ],
    [
      "mtime not octal",
      tar(file("a", "x", { mtime: { text: "1 2\0" } })),
      "invalid octal number in the mtime field",
    ],
    [
      "uid not octal",
      tar(file("a", "x", { uid: { text: "x\0" } })),
      "invalid octal number in the uid field",
    ],
    [
      "a negative base-256 size",
      tar(file("a", "", { size: { b256: -512n }, magic: "gnu" }), file("b")),
      "A is corrupt: negative size in the tar header at offset 0",
    ],
    [
      "a negative base-256 mode",
      tar(file("a", "", { mode: { b256: -1n }, magic: "gnu" })),
      "negative mode",
    ],
    [
      "a base-256 size beyond 2^53",
      tar(file("a", "", { size: { b256: 1n << 60n }, magic: "gnu" })),
      "the size field of the tar header at offset 0 is too large",
    ],
    [
      "pax size with a plus",
      tar(pax([["size", "+1"]]), file("a", "x")),
      "A: entry 'a' has an invalid pax size '+1'",
    ],
    ["pax size negative", tar(pax([["size", "-1"]]), file("a", "x")), "invalid pax size '-1'"],
    ["pax size with a space", tar(pax([["size", " 1"]]), file("a", "x")), "invalid pax size ' 1'"],
    [
      "pax size too large",
      tar(pax([["size", "99999999999999999999"]]), file("a", "x")),
      "invalid pax size",
    ],
    ["pax size not a number", tar(pax([["size", "1x"]]), file("a", "x")), "invalid pax size '1x'"],
    [
      "pax mtime not a number",
      tar(pax([["mtime", "yesterday"]]), file("a", "x")),
      "invalid pax mtime 'yesterday'",
    ],
    [
      "pax mtime with two dots",
      tar(pax([["mtime", "1.2.3"]]), file("a", "x")),
      "invalid pax mtime",
    ],
    [
      "pax uid beyond 64 bits",
      tar(pax([["uid", "99999999999999999999"]]), file("a", "x")),
      "invalid pax uid",
    ],
    [
      "pax path with NUL",
      tar(pax([["path", "a\0b"]]), file("a", "x")),
      "A is corrupt: bad pax record in the header at offset 0: its path contains NUL",
    ],
    [
      "pax linkpath with NUL",
      tar(pax([["linkpath", "a\0b"]]), file("a", "x")),
      "its linkpath contains NUL",
    ],
    ["pax key with NUL", tar(pax([["a\0b", "v"]]), file("a", "x")), "its keyword contains NUL"],
    [
      "record length with a plus",
      tar(pax("+12 path=abc\n"), file("a")),
      "does not start with a decimal length",
    ],
    [
      "record length with a space first",
      tar(pax(" 12 path=ab\n"), file("a")),
      "does not start with a decimal length",
    ],
    [
      "record length overflowing",
      tar(pax("18446744073709551628 path=x\n"), file("a")),
      "too many digits",
    ],
    [
      "record length past the data",
      tar(pax("99999999999999 path=x\n"), file("a")),
      "runs past the header's data",
    ],
    [
      "record length too short",
      tar(pax("9 path=../../x\n"), file("a")),
      "does not end with a newline",
    ],
    ["record without a newline", tar(pax("11 path=abc"), file("a")), "does not end with a newline"],
    ["record without '='", tar(pax("11 pathxyz\n"), file("a")), "has no '='"],
    ["record with an empty key", tar(pax("7 =abc\n"), file("a")), "keyword is empty"],
    [
      "NUL padding after the records",
      tar(pax(rec("path", "p") + "\0\0\0\0"), file("a")),
      "does not start with a decimal length",
    ],
    ["a bad global header", tar(pax("5 x=\n\0", "g"), file("a")), "bad pax record"],
  ];
  for (const [title, archive, msg] of cases) {
    const err = await refused(archive);
    assert(
      err.includes(msg),
      `${title}: expected ${JSON.stringify(msg)} in ${JSON.stringify(err)}`,
    );
  }
});

// ---------------------------------------------------------------------------
// Agreement with real writers: python3 tarfile and GNU tar

const PYTHON_FIXTURES = String.raw`
import hashlib, io, json, math, sys, tarfile
out = sys.argv[1]
def add(tf, name, data=b"", **kw):
    ti = tarfile.TarInfo(name)
    for k, v in kw.items(): setattr(ti, k, v)
    if ti.type in (tarfile.REGTYPE, tarfile.AREGTYPE): ti.size = len(data)
    tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
specs = {
  "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT, "ustar": tarfile.USTAR_FORMAT,
}
for fmt, f in specs.items():
    kw = {"pax_headers": {"comment": "a global header"}} if fmt == "pax" else {}
    with tarfile.open(f"{out}/{fmt}.tar", "w", format=f, **kw) as tf:
        add(tf, "dir", type=tarfile.DIRTYPE, mode=0o755)
        add(tf, "dir/plain.txt", b"plain", mtime=1700000000)
        add(tf, "p" * 120 + "/" + "f" * 60, b"prefixed")
        add(tf, "hard", type=tarfile.LNKTYPE, linkname="dir/plain.txt")
        if fmt != "ustar":
            add(tf, "d/" + "n" * 150 + "/file", b"long name")
            add(tf, "s", type=tarfile.SYMTYPE, linkname="t/" * 70 + "target")
            add(tf, "neg-mtime", b"old", mtime=-1000)
            add(tf, "big-uid", b"uid", uid=2 ** 40)
        if fmt == "pax":
            add(tf, "\u00fcn\u00ef/\u30d5\u30a1\u30a4\u30eb.txt", b"unicode", mtime=1.5)
            add(tf, "x" * 300, b"pax path")
listing = {}
for fmt in specs:
    with tarfile.open(f"{out}/{fmt}.tar") as tf:
        rows = []
        for m in tf:
            data = tf.extractfile(m).read() if m.isreg() else b""
            rows.append({"name": m.name, "type": m.type.decode(), "size": m.size if m.isreg() else 0,
                         "linkname": m.linkname, "mtime": math.floor(m.mtime),
                         "sha": hashlib.sha256(data).hexdigest()})
        listing[fmt] = rows
print(json.dumps(listing))
`;

Deno.test({
  name: "tar reader: agrees with python3 tarfile on GNU, pax and ustar archives it writes",
  ignore: !HAVE_PYTHON,
  fn: async () => {
    await withTempDir(async (dir) => {
      const script = join(dir, "make.py");
      await Deno.writeTextFile(script, PYTHON_FIXTURES);
      const r = await run("python3", [script, dir]);
      assertEquals(r.code, 0, r.stderr);
      const listing = JSON.parse(r.stdout) as Record<string, Record<string, unknown>[]>;
      const TYPE: Record<string, string> = {
        file: "0",
        hardlink: "1",
        symlink: "2",
        directory: "5",
      };
      for (const [fmt, rows] of Object.entries(listing)) {
        const archive = await Deno.readFile(join(dir, `${fmt}.tar`));
        const got = await entries(archive);
        const ours = got.map((e) => ({
          name: e.type === "directory" ? e.name.replace(/\/$/, "") : e.name,
          type: TYPE[e.type],
          size: e.size,
          linkname: e.linkname,
          mtime: e.mtime,
          sha: e.data!.startsWith("sha256:") ? e.data!.slice(7) : sha(enc.encode(e.data!)),
        }));
        assertEquals(ours, rows, fmt);
      }
    });
  },
});

Deno.test({
  name: "tar reader: lists what GNU tar lists for its gnu, pax and ustar archives",
  ignore: !HAVE_TAR,
  fn: async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, "src");
      const long = join("d", "n".repeat(120), "m".repeat(90));
      await Deno.mkdir(join(src, long), { recursive: true });
      await Deno.writeTextFile(join(src, long, "file.txt"), "deep");
      await Deno.writeTextFile(join(src, "top.txt"), "top");
      await Deno.symlink("t/".repeat(60) + "x", join(src, "long-link"));
      await Deno.link(join(src, "top.txt"), join(src, "hard"));
      for (const format of ["gnu", "pax", "ustar"]) {
        const out = join(dir, `${format}.tar`);
        const members = format === "ustar" ? ["top.txt", "hard"] : ["."];
        const c = await run("tar", [`--format=${format}`, "-cf", out, "-C", src, ...members]);
        assertEquals(c.code, 0, c.stderr);
        const t = await run("tar", ["-tf", out]);
        assertEquals(t.code, 0, t.stderr);
        const got = await entries(await Deno.readFile(out));
        assertEquals(names(got), t.stdout.split("\n").filter((l) => l !== ""), format);
        if (format !== "ustar") {
          assertEquals(got.find((e) => e.name === "./long-link")?.linkname, "t/".repeat(60) + "x");
          assertEquals(got.find((e) => e.name.endsWith("file.txt"))?.data, "deep");
        }
      }
    });
  },
});
