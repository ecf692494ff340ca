// One shared suite run against every Target implementation: the layouts (memory, oci-dir,
// oci-archive) and RegistryTarget, on `ocipkg serve` (in-process) and on docker-registry.
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import {
  bytesStream,
  copy,
  digestOf,
  fetchBytes,
  MemoryTarget,
  NotFoundError,
  OciArchive,
  OciDir,
  pushBytes,
  RegistryTarget,
  serve,
  type Target,
  VerificationError,
} from "./_internal.ts";
import { sampleGraph, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";

interface Impl {
  name: string;
  /** Create a writable target; `reopen` returns a reader of what was committed. */
  make(): Promise<{ target: Target; reopen: () => Promise<Target> }>;
  /**
   * How this target names the image `name` (`example.com/<repo>:<tag>`): a layout by the
   * whole name; a registry repository by a tag, `<repo>-<tag>`.
   */
  ref(name: string): string;
  /** What `resolve()` without a reference reads: a layout's only image, a registry's `latest`. */
  bare: "only image" | "latest";
  /** The text of the NotFoundError for a reference that names nothing. */
  notFound(ref: string): string;
  /** The registry holding the target, if it is one (its repositories mount each other's blobs). */
  registry?: string;
}

const layout = {
  ref: (name: string) => name,
  bare: "only image",
  notFound: (ref: string) => `no image '${ref}'`,
} as const;

/** A RegistryTarget on a fresh repository of the registry at `host` for each `make()`. */
function registry(name: string, host: string): Impl {
  let repos = 0;
  return {
    name,
    make() {
      const repo = `target/suite-${++repos}`;
      const open = () => new RegistryTarget(host, repo, { credential: null });
      return Promise.resolve({ target: open(), reopen: () => Promise.resolve(open()) });
    },
    ref: (image) => image.slice(image.lastIndexOf("/") + 1).replace(":", "-"),
    bare: "latest",
    notFound: (ref) => `:${ref}' not found on ${host}`,
    registry: host,
  };
}

const served = await serve({ root: await tempDir(), addr: "127.0.0.1:0", log: () => {} });
const reg = await startRegistry();
globalThis.addEventListener("unload", () => reg.kill());

const impls: Impl[] = [
  {
    name: "memory",
    make() {
      const t = new MemoryTarget();
      return Promise.resolve({ target: t, reopen: () => Promise.resolve(t) });
    },
    ...layout,
  },
  {
    name: "oci-dir",
    async make() {
      const p = `${await tempDir()}/layout`;
      return { target: await OciDir.open(p, { create: true }), reopen: () => OciDir.open(p) };
    },
    ...layout,
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
    ...layout,
  },
  registry("registry (ocipkg serve)", served.addr),
  registry("registry (docker-registry)", reg.host),
];

const enc = new TextEncoder();

for (const impl of impls) {
  Deno.test(`target[${impl.name}]: push, exists, fetch, tag, resolve survive reopen`, async () => {
    const { target, reopen } = await impl.make();
    const g = await sampleGraph(target);
    await target.tag(g.idx, impl.ref("example.com/multi:1"));
    if (impl.bare === "latest") await target.tag(g.idx, "latest");
    await target.close();
    const r = await reopen();
    assertEquals((await r.resolve(impl.ref("example.com/multi:1"))).digest, g.idx.digest);
    assertEquals((await r.resolve()).digest, g.idx.digest);
    assertEquals((await r.resolve(g.idx.digest)).digest, g.idx.digest);
    for (const d of [g.cfg, g.l1, g.l2, g.m1, g.m2, g.idx]) assert(await r.exists(d), d.digest);
    assertEquals(new TextDecoder().decode(await fetchBytes(r, g.l2)), "opaque");
    assertEquals(await r.exists({ ...g.l1, digest: digestOf(enc.encode("nope")) }), false);
    const other = impl.ref("example.com/other:1");
    await assertRejects(() => r.resolve(other), NotFoundError, impl.notFound(other));
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
    await target.tag(g.m1, impl.ref("example.com/x:1"));
    await target.tag(g.m2, impl.ref("example.com/x:1"));
    await target.close();
    const r = await reopen();
    assertEquals((await r.resolve(impl.ref("example.com/x:1"))).digest, g.m2.digest);
    await r.close();
  });

  for (const dst of impls) {
    Deno.test(`copy: ${impl.name} → ${dst.name} copies the whole graph and skips what exists`, async () => {
      const a = await impl.make();
      const g = await sampleGraph(a.target);
      await a.target.tag(g.idx, impl.ref("example.com/multi:1"));
      await a.target.close();
      const src = await a.reopen();
      const b = await dst.make();
      const events: string[] = [];
      await copy(src, b.target, {
        srcRef: impl.ref("example.com/multi:1"),
        dstRef: dst.ref("example.com/copied:2"),
        onProgress: (e) => events.push(e.kind),
      });
      // a second copy finds everything present
      const again: string[] = [];
      await copy(src, b.target, {
        srcRef: impl.ref("example.com/multi:1"),
        dstRef: dst.ref("example.com/copied:2"),
        onProgress: (e) => again.push(e.kind),
      });
      assertEquals(again, ["skip"]);
      await b.target.close();
      await src.close();
      const r = await b.reopen();
      assertEquals((await r.resolve(dst.ref("example.com/copied:2"))).digest, g.idx.digest);
      for (const d of [g.cfg, g.l1, g.l2, g.m1, g.m2, g.idx]) assert(await r.exists(d), d.digest);
      // cfg shared: transferred once; within one registry the blobs are mounted, not transferred
      const mounted = impl.registry !== undefined && impl.registry === dst.registry;
      assertEquals(events.filter((e) => e === "done").length, mounted ? 3 : 6);
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
