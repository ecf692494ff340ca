// Several writers into one oci-archive at once (copies, pulls or packs into the same .tar, in one
// process or several). An archive is rewritten whole by each writer, into a temp file renamed
// over it: the rename is made under a lock on the archive, after the writer has taken in what
// another put there since it started (its blobs and its tags), so no writer's tag is lost.
import { join } from "node:path";
import { assertEquals } from "./_assert.ts";
import { runCli, samplePackage, tempDir } from "./_helpers.ts";
import { encodeJson, OCI_MANIFEST, OciArchive, pushBytes, type Target } from "./_internal.ts";

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
        assertEquals((await new Response(await ar.fetch(d)).bytes()).byteLength, d.size);
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
