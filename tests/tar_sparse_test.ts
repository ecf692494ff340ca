// GNU sparse files through the tar reader: pax sparse 0.0, 0.1 and 1.0 expanded (holes as
// zeros), their maps validated strictly, a 1 TB sparse file read in bounded chunks and
// refused by the extractor's byte cap, readers that serve data in place refusing them, and
// GNU tar's own sparse archives (old 'S' ones refused by name).
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { ArchiveError, bytesStream, extractLayer, OciArchive } from "./_internal.ts";
import { MAX_TAR_SPARSE_SEGMENTS, readTar } from "../lib/archive/tar.ts";
import { StreamSource } from "../lib/archive/tar_source.ts";
import { have, run, withTempDir } from "./_helpers.ts";
import {
  enc,
  entries,
  file,
  pax,
  readAll,
  refused,
  sha,
  sparse1,
  tar,
  withFile,
} from "./_tar_build.ts";

const HAVE_TAR = await have("tar");

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
