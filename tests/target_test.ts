// One shared suite run against every Target implementation.
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import {
  MemoryTarget,
  NotFoundError,
  OciArchive,
  OciDir,
  type Target,
  VerificationError,
} from "../mod.ts";
import { digestOf } from "../lib/oci/mod.ts";
import { copy, fetchBytes, pushBytes } from "../lib/transport/mod.ts";
import { bytesStream } from "./_internal.ts";
import { sampleGraph, tempDir } from "./_helpers.ts";

interface Impl {
  name: string;
  /** Create a writable target; `reopen` returns a reader of what was committed. */
  make(): Promise<{ target: Target; reopen: () => Promise<Target> }>;
}

const impls: Impl[] = [
  {
    name: "memory",
    make() {
      const t = new MemoryTarget();
      return Promise.resolve({ target: t, reopen: () => Promise.resolve(t) });
    },
  },
  {
    name: "oci-dir",
    async make() {
      const p = `${await tempDir()}/layout`;
      return { target: await OciDir.open(p, { create: true }), reopen: () => OciDir.open(p) };
    },
  },
  {
    name: "oci-archive",
    async make() {
      const p = `${await tempDir()}/layout.tar`;
      return {
        target: await OciArchive.open(p, { write: true }),
        reopen: () => OciArchive.open(p),
      };
    },
  },
];

const enc = new TextEncoder();

for (const impl of impls) {
  Deno.test(`target[${impl.name}]: push, exists, fetch, tag, resolve survive reopen`, async () => {
    const { target, reopen } = await impl.make();
    const g = await sampleGraph(target);
    await target.tag(g.idx, "example.com/multi:1");
    await target.close();
    const r = await reopen();
    assertEquals((await r.resolve("example.com/multi:1")).digest, g.idx.digest);
    assertEquals((await r.resolve()).digest, g.idx.digest);
    assertEquals((await r.resolve(g.idx.digest)).digest, g.idx.digest);
    for (const d of [g.cfg, g.l1, g.l2, g.m1, g.m2, g.idx]) assert(await r.exists(d), d.digest);
    assertEquals(new TextDecoder().decode(await fetchBytes(r, g.l2)), "opaque");
    assertEquals(await r.exists({ ...g.l1, digest: digestOf(enc.encode("nope")) }), false);
    await assertRejects(
      () => r.resolve("example.com/other:1"),
      NotFoundError,
      "no image 'example.com/other:1'",
    );
    await r.close();
  });

  Deno.test(`target[${impl.name}]: a push that fails verification leaves nothing`, async () => {
    const { target, reopen } = await impl.make();
    const data = enc.encode("payload");
    const wrong = { mediaType: "x/y", digest: digestOf(enc.encode("other")), size: data.length };
    await assertRejects(
      () => target.push(wrong, bytesStream(data)),
      VerificationError,
      "digest mismatch",
    );
    assertEquals(await target.exists(wrong), false);
    const good = await pushBytes(target, "x/y", data);
    await target.close();
    const r = await reopen();
    assert(await r.exists(good));
    assertEquals(await r.exists(wrong), false);
    await r.close();
  });

  Deno.test(`target[${impl.name}]: retagging replaces the ref name`, async () => {
    const { target, reopen } = await impl.make();
    const g = await sampleGraph(target);
    await target.tag(g.m1, "example.com/x:1");
    await target.tag(g.m2, "example.com/x:1");
    await target.close();
    const r = await reopen();
    assertEquals((await r.resolve("example.com/x:1")).digest, g.m2.digest);
    await r.close();
  });

  for (const dst of impls) {
    Deno.test(`copy: ${impl.name} → ${dst.name} copies the whole graph and skips what exists`, async () => {
      const a = await impl.make();
      const g = await sampleGraph(a.target);
      await a.target.tag(g.idx, "example.com/multi:1");
      await a.target.close();
      const src = await a.reopen();
      const b = await dst.make();
      const events: string[] = [];
      await copy(src, b.target, {
        srcRef: "example.com/multi:1",
        dstRef: "example.com/copied:2",
        onProgress: (e) => events.push(e.kind),
      });
      // a second copy finds everything present
      const again: string[] = [];
      await copy(src, b.target, {
        srcRef: "example.com/multi:1",
        dstRef: "example.com/copied:2",
        onProgress: (e) => again.push(e.kind),
      });
      assertEquals(again, ["skip"]);
      await b.target.close();
      await src.close();
      const r = await b.reopen();
      assertEquals((await r.resolve("example.com/copied:2")).digest, g.idx.digest);
      for (const d of [g.cfg, g.l1, g.l2, g.m1, g.m2, g.idx]) assert(await r.exists(d), d.digest);
      assertEquals(events.filter((e) => e === "done").length, 6); // cfg shared: transferred once
      await r.close();
    });
  }
}

Deno.test("oci-archive: writing over an existing archive keeps its blobs; abort keeps the original", async () => {
  const p = `${await tempDir()}/a.tar`;
  const w = await OciArchive.open(p, { write: true });
  const g = await sampleGraph(w);
  await w.tag(g.m1, "example.com/one:1");
  await w.close();
  const before = await Deno.readFile(p);
  const w2 = await OciArchive.open(p, { write: true });
  const extra = await pushBytes(w2, "x/y", enc.encode("more"));
  await w2.tag(g.m2, "example.com/two:1");
  await w2.abort();
  assertEquals(await Deno.readFile(p), before);
  const w3 = await OciArchive.open(p, { write: true });
  await pushBytes(w3, "x/y", enc.encode("more"));
  await w3.tag(g.m2, "example.com/two:1");
  await w3.close();
  const r = await OciArchive.open(p);
  assert(await r.exists(g.l1));
  assert(await r.exists(extra));
  assertEquals((await r.resolve("example.com/one:1")).digest, g.m1.digest);
  assertEquals((await r.resolve("example.com/two:1")).digest, g.m2.digest);
  assertEquals((await r.list()).length, 2);
  await r.close();
});
