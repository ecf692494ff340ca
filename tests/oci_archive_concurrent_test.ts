// Several writers into one oci-archive at once (copies, pulls or packs into the same .tar, in one
// process or several). An archive is rewritten whole by each writer, into a temp file renamed
// over it: the rename is made under a lock on the archive, after the writer has taken in what
// another put there since it started (its blobs and its tags), so no writer's tag is lost.
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { CLI, runCli, samplePackage, tempDir } from "./_helpers.ts";
import {
  ArchiveError,
  digestOf,
  encodeJson,
  OCI_MANIFEST,
  OciArchive,
  packDirectory,
  pushBytes,
  SoleImageError,
  type Target,
  UsageError,
} from "./_internal.ts";

const LAYER = "application/vnd.oci.image.layer.v1.tar";
const enc = new TextEncoder();

async function pushImage(t: Target, text: string) {
  const layer = await pushBytes(t, LAYER, enc.encode(text));
  const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", enc.encode("{}"));
  return await pushBytes(
    t,
    OCI_MANIFEST,
    encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] }),
  );
}

async function refNames(path: string): Promise<string[]> {
  const ar = await OciArchive.open(path);
  try {
    return (await ar.list())
      .map((m) => m.annotations?.["org.opencontainers.image.ref.name"] ?? m.digest)
      .sort();
  } finally {
    await ar.close();
  }
}

/** Every image the archive lists reads back whole (each blob verified by its digest). */
async function readAll(path: string, names: string[]): Promise<void> {
  const ar = await OciArchive.open(path);
  try {
    for (const name of names) {
      const m = await ar.resolve(name);
      const doc = JSON.parse(await new Response(await ar.fetch(m)).text());
      for (const d of [doc.config, ...doc.layers]) {
        assertEquals(digestOf(await new Response(await ar.fetch(d)).bytes()), d.digest);
      }
    }
  } finally {
    await ar.close();
  }
}

Deno.test("oci-archive: two writers opened on one archive both keep their tags and blobs", async () => {
  const path = join(await tempDir(), "x.tar");
  const first = await OciArchive.open(path, { write: true });
  await first.tag(await pushImage(first, "zero"), "t0");
  await first.close();
  // both read the archive before either writes it
  const a = await OciArchive.open(path, { write: true });
  const b = await OciArchive.open(path, { write: true });
  const ma = await pushImage(a, "a");
  const mb = await pushImage(b, "b");
  await a.tag(ma, "a");
  await b.tag(mb, "b");
  await b.tag(mb, "t0"); // b moves t0: its own change wins over what it found
  await a.close();
  await b.close();
  assertEquals(await refNames(path), ["a", "b", "t0"]);
  await readAll(path, ["a", "b", "t0"]);
  const r = await OciArchive.open(path);
  assertEquals((await r.resolve("t0")).digest, mb.digest);
  assertEquals((await r.resolve("a")).digest, ma.digest);
  await r.close();
});

Deno.test("oci-archive: a writer that aborts leaves another's archive as it wrote it", async () => {
  const path = join(await tempDir(), "x.tar");
  const a = await OciArchive.open(path, { write: true });
  const b = await OciArchive.open(path, { write: true });
  await a.tag(await pushImage(a, "a"), "a");
  await pushImage(b, "b");
  await a.close();
  await b.abort();
  assertEquals(await refNames(path), ["a"]);
  assertEquals(
    (await Array.fromAsync(Deno.readDir(join(path, "..")))).map((e) => e.name),
    ["x.tar"],
  );
});

// `pack` without --append checks the output holds no other image before it writes; another pack
// beside it may add one meanwhile, so the writer checks again under the archive's lock as it
// replaces it, and the later of the two fails rather than leaving two images in the output.
Deno.test("oci-archive: a sole-image writer that finds another's image under the lock fails and changes nothing", async () => {
  const path = join(await tempDir(), "x.tar");
  const a = await OciArchive.open(path, { write: true, soleImage: true });
  const b = await OciArchive.open(path, { write: true, soleImage: true });
  await a.tag(await pushImage(a, "a"), "example.com/a:1");
  await b.tag(await pushImage(b, "b"), "example.com/b:1");
  await a.close();
  const e = (await assertRejects(() => b.close(), SoleImageError)) as SoleImageError;
  assertEquals(e.others.map((d) => d.annotations?.["org.opencontainers.image.ref.name"]), [
    "example.com/a:1",
  ]);
  assertEquals(await refNames(path), ["example.com/a:1"]);
  await readAll(path, ["example.com/a:1"]);
  assertEquals((await Array.fromAsync(Deno.readDir(join(path, "..")))).map((d) => d.name), [
    "x.tar",
  ]);
  // the same name again is no second image
  const c = await OciArchive.open(path, { write: true, soleImage: true });
  await c.tag(await pushImage(c, "a2"), "example.com/a:1");
  await c.close();
  assertEquals(await refNames(path), ["example.com/a:1"]);
});

Deno.test("oci-archive: two packs of other names into one new archive at once: one image, the other pack refused", async () => {
  const work = await tempDir();
  const out = join(work, "out.tar");
  const pkgs = await Promise.all([1, 2].map((n) => samplePackage(join(work, `p${n}`), 4096 * n)));
  const runs = await Promise.allSettled(
    pkgs.map((p, i) => packDirectory(p, out, { name: `example.com/p:${i + 1}` })),
  );
  const ok = runs.filter((r) => r.status === "fulfilled");
  const refused = runs.filter((r) => r.status === "rejected");
  assertEquals([ok.length, refused.length], [1, 1]);
  const e = (refused[0] as PromiseRejectedResult).reason;
  assert(e instanceof UsageError, String(e));
  assert(/already holds example\.com\/p:\d: packing example\.com\/p:\d/.test(e.message), e.message);
  assertEquals((await refNames(out)).length, 1);
});

Deno.test("oci-archive: concurrent copies and packs into one archive (CLI) keep every tag", async () => {
  const work = await tempDir();
  const data = join(work, "data");
  const sources: string[] = [];
  for (const n of [1, 2]) {
    const pkg = await samplePackage(join(work, `pkg${n}`), 4096 * n);
    const archive = join(work, `src${n}.tar`);
    const packed = await runCli(["pack", pkg, archive, "-t", `example.com/foo:${n}`], {
      dataHome: data,
    });
    assertEquals(packed.code, 0, packed.stderr);
    sources.push(archive);
  }
  const out = join(work, "out.tar");
  const tags = ["example.com/p:3", "example.com/p:4", "t1", "t2"];
  // two copies and two packs at once
  const runs = await Promise.all([
    runCli(["copy", `oci-archive:${sources[0]}`, `oci-archive:${out}:t1`], { dataHome: data }),
    runCli(["copy", `oci-archive:${sources[1]}`, `oci-archive:${out}:t2`], { dataHome: data }),
    runCli(["pack", join(work, "pkg1"), out, "-t", tags[0]!, "--append"], { dataHome: data }),
    runCli(["pack", join(work, "pkg2"), out, "-t", tags[1]!, "--append"], { dataHome: data }),
  ]);
  for (const r of runs) assertEquals(r.code, 0, r.stderr);
  assertEquals(await refNames(out), tags);
  await readAll(out, tags);
  // nothing but the archives is left beside them (no temp, no lock file)
  assertEquals(
    (await Array.fromAsync(Deno.readDir(work))).map((e) => e.name).filter((n) => n !== "data")
      .sort(),
    ["out.tar", "pkg1", "pkg2", "src1.tar", "src2.tar"],
  );
});

Deno.test("oci-archive: the temp a killed copy left beside the archive goes at a later write once stale", async () => {
  const work = await tempDir();
  const pkg = join(work, "pkg");
  await Deno.mkdir(pkg);
  const big = new Uint8Array(8 << 20);
  for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  await Deno.writeFile(join(pkg, "big.bin"), big);
  const src = join(work, "src.tar");
  const packed = await runCli([
    "pack",
    pkg,
    src,
    "-t",
    "example.com/big:1",
    "--compression",
    "none",
  ]);
  assertEquals(packed.code, 0, packed.stderr);
  const out = join(work, "out.tar");
  const first = await runCli(["copy", `oci-archive:${src}`, `oci-archive:${out}:t1`]);
  assertEquals(first.code, 0, first.stderr);
  const temps = () =>
    [...Deno.readDirSync(work)].filter((e) => e.name.startsWith(".out.tar.tmp-")).map((e) =>
      join(work, e.name)
    );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CLI, "copy", `oci-archive:${src}`, `oci-archive:${out}:t2`],
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  const status = child.status.then(() => exited = true);
  while (!exited && !temps().some((t) => Deno.statSync(t).size > 0)) {
    await new Promise((r) => setTimeout(r, 2));
  }
  if (!exited) child.kill("SIGKILL");
  await status;
  const left = temps();
  assert(left.length === 1, `the killed copy left its temp: ${left}`);
  // a temp of another archive beside it, as old, is not this archive's to remove
  const other = join(work, ".other.tar.tmp-0badf00d");
  await Deno.writeTextFile(other, "x");
  // a write while it is fresh keeps it (it may be a live writer's); once stale it goes
  const keep = await runCli(["copy", `oci-archive:${src}`, `oci-archive:${out}:t3`]);
  assertEquals(keep.code, 0, keep.stderr);
  assertEquals(temps(), left);
  const old = new Date(Date.now() - 2 * 3600 * 1000);
  for (const p of [...left, other]) await Deno.utime(p, old, old);
  const sweep = await runCli(["copy", `oci-archive:${src}`, `oci-archive:${out}:t4`]);
  assertEquals(sweep.code, 0, sweep.stderr);
  assertEquals(temps(), []);
  assert(Deno.statSync(other).isFile);
  assertEquals(await refNames(out), ["t1", "t3", "t4"]);
  // through the library, the age is an option (0: any temp not this process's)
  await Deno.writeTextFile(left[0]!, "x");
  const w = await OciArchive.open(out, { write: true, staleTempAge: 0 });
  await w.close();
  assertEquals(temps(), []);
});

Deno.test("oci-archive: a writer that opens while another replaces the archive copies only what it scanned", async () => {
  // a writer copies the blobs of the archive it opened; another's rename meanwhile puts a new
  // file at the path, whose offsets are not those scanned (a writer read other bytes under a
  // blob's name, and the archive then held a manifest that was not JSON)
  const path = join(await tempDir(), "x.tar");
  const first = await OciArchive.open(path, { write: true });
  for (let i = 0; i < 20; i++) await first.tag(await pushImage(first, `image ${i}`), `t${i}`);
  await first.close();
  const tags = Array.from({ length: 20 }, (_, i) => `t${i}`);
  // a and c start from the same archive; c's images go in first, then a's, which puts its
  // own blobs before c's: the offsets of c's blobs differ between the two files
  const a = await OciArchive.open(path, { write: true });
  const c = await OciArchive.open(path, { write: true });
  await c.tag(await pushImage(c, "c"), "c");
  await c.close();
  await pushBytes(a, LAYER, new Uint8Array(1000).fill(1));
  await a.tag(await pushImage(a, "a"), "a");
  // a's rename lands just after b has opened c's archive to scan it
  const open = Deno.open;
  let fired = false;
  let b: OciArchive;
  try {
    Deno.open = async (p: string | URL, o?: Deno.OpenOptions) => {
      const f = await open(p, o);
      if (!fired && String(p) === path && !o?.write) {
        fired = true;
        await a.close();
      }
      return f;
    };
    b = await OciArchive.open(path, { write: true });
  } finally {
    Deno.open = open;
  }
  assert(fired);
  await b.tag(await pushImage(b, "b"), "b");
  await b.close();
  tags.push("a", "b", "c");
  assertEquals(await refNames(path), tags.sort());
  await readAll(path, tags);
});

Deno.test("oci-archive: a reader whose archive is replaced meanwhile fails naming it, never reads other bytes", async () => {
  const path = join(await tempDir(), "x.tar");
  const w = await OciArchive.open(path, { write: true });
  const m = await pushImage(w, "zero");
  await w.tag(m, "t0");
  await w.close();
  const r = await OciArchive.open(path);
  const w2 = await OciArchive.open(path, { write: true });
  await w2.tag(await pushImage(w2, "one"), "t1");
  await w2.close(); // renamed over what r scanned
  await assertRejects(() => r.fetch(m), ArchiveError, "was replaced while it was read");
  await r.close();
  const again = await OciArchive.open(path);
  assertEquals(JSON.parse(await new Response(await again.fetch(m)).text()).schemaVersion, 2);
  await again.close();
});

Deno.test("oci-archive: a push or tag waiting for the archive gives up the moment its signal aborts", async () => {
  const dir = await tempDir();
  const path = join(dir, "a.tar");
  const ar = await OciArchive.open(path, { write: true });
  // the first push holds the archive: its source gives nothing until released
  let release!: () => void;
  const held = new ReadableStream<Uint8Array>({
    async pull(c) {
      await new Promise<void>((r) => release = r);
      c.enqueue(enc.encode("first"));
      c.close();
    },
  });
  const first = ar.push({ mediaType: LAYER }, held);
  const stop = new AbortController();
  const why = new Error("stopped by the test");
  let cancelled: unknown;
  const waiting = new ReadableStream<Uint8Array>({
    pull(c) {
      c.enqueue(enc.encode("second"));
      c.close();
    },
    cancel(reason) {
      cancelled = reason;
    },
  });
  const second = ar.push({ mediaType: LAYER }, waiting, { signal: stop.signal });
  const tag = ar.tag(
    { mediaType: OCI_MANIFEST, digest: digestOf(enc.encode("x")), size: 1 },
    "never",
    { signal: stop.signal },
  );
  await new Promise((r) => setTimeout(r, 50));
  const t0 = performance.now();
  stop.abort(why);
  // both give up at once with the reason, while the first push still holds the archive
  assert((await assertRejects(() => second)) === why);
  assert((await assertRejects(() => tag)) === why);
  assert(performance.now() - t0 < 1000);
  assert(cancelled === why, "the waiting push's source is released with the reason");
  release();
  const desc = await first;
  await ar.close();
  // the archive holds the first blob, not the second, and no "never" tag
  const back = await OciArchive.open(path);
  try {
    assert(await back.exists(desc));
    const second = enc.encode("second");
    assert(!(await back.exists({ mediaType: LAYER, digest: digestOf(second), size: 6 })));
    assertEquals(await back.list(), []);
  } finally {
    await back.close();
  }
});
