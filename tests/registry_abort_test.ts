// Giving up: a caller's AbortSignal stops a pull or push (its requests in flight end, nothing is
// left), a copy's first failure stops the source's other downloads at once, and a
// RegistryTarget's abort() stops its own. A throttled proxy in front of a real registry shows
// whether each download ran to its end or was cut.
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import {
  MemoryTarget,
  OciArchive,
  OciDir,
  pullImage,
  pushImage,
  type ReadTarget,
  VerificationError,
} from "../mod.ts";
import { encodeJson, OCI_MANIFEST } from "../lib/oci/mod.ts";
import { OCI_EMPTY } from "../lib/oci/media_types.ts";
import { copy, pushBytes } from "../lib/transport/mod.ts";
import { RegistryTarget } from "../lib/transport/registry/target.ts";
import { RegistryError } from "./_internal.ts";
import { tempDir } from "./_helpers.ts";
import { makeRandomImage, pushRandomImage } from "./_images.ts";
import { startRegistry } from "./_registry.ts";
import { type LogEntry, startFaultProxy } from "./_fault_proxy.ts";

const reg = await startRegistry();
const proxy = startFaultProxy(reg.host);
globalThis.addEventListener("unload", () => reg.kill());
const fast = { credential: null, backoffMs: 10 };

const MiB = 1024 * 1024;
let n = 0;

/** An image of these layer sizes (random bytes), pushed to the registry; its name through the proxy. */
async function image(sizes: number[]) {
  const path = `abort/img${n++}`;
  const img = await pushRandomImage(sizes, reg.host, path);
  return { name: `${proxy.host}/${path}:1`, layers: img.layers, dir: img.dir };
}

/** The proxy's GETs of these blobs. */
const getsOf = (digests: string[]) =>
  proxy.log.filter((e) => e.method === "GET" && digests.some((d) => e.path.endsWith(d)));

/** Wait (at most 20 s) until every one of these downloads has ended, one way or the other. */
async function ended(entries: () => LogEntry[]): Promise<LogEntry[]> {
  for (let i = 0; i < 400 && !entries().every((e) => e.ended); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  return entries();
}

Deno.test("abort: a copy's first failure stops the source's other downloads at once", async () => {
  // one small layer with wrong bytes, three large ones that would take 20 s each
  const img = await image([64 * 1024, 2 * MiB, 2 * MiB, 2 * MiB]);
  const [bad, ...large] = img.layers.map((l) => l.digest);
  proxy.reset();
  proxy.rules.wrongBytes = bad;
  proxy.rules.throttle = { bytesPerSecond: 100_000 };
  const out = join(await tempDir(), "out");
  await assertRejects(() => pullImage(img.name, `oci:${out}`, fast), VerificationError, bad!);
  // the large downloads were cut, not waited for
  const gets = await ended(() => getsOf(large));
  assert(gets.length > 0, "no large layer was asked for");
  for (const e of gets) {
    assertEquals(e.ended, "cancelled", `${e.path}: ${e.sent} bytes sent`);
    assert(e.sent! < 2 * MiB, `${e.path}: sent whole`);
  }
  // and nothing is left of the output
  await assertRejects(() => Deno.stat(out), Deno.errors.NotFound);
});

/** The proxy's uploads (PATCH/PUT with a body) of these blobs, by the digest each PUT names. */
const uploadsOf = (digests: string[]) =>
  proxy.log.filter((e) =>
    (e.method === "PUT" || e.method === "PATCH") && e.sent !== undefined &&
    digests.some((d) => decodeURIComponent(e.path).includes(d))
  );

/**
 * A layout of three large layers and a small one, as a source whose small layer fails once
 * `going()` says the large ones are on their way; what the copy failed with.
 */
async function failingSource(sizes: number[], going: (large: string[]) => boolean) {
  const img = await makeRandomImage(sizes);
  const large = img.layers.slice(0, -1).map((l) => l.digest);
  const bad = img.layers.at(-1)!;
  const layout = await OciDir.open(img.dir);
  const why = new Error("the source could not read its last layer");
  const src: ReadTarget = {
    description: layout.description,
    resolve: (r) => layout.resolve(r),
    exists: (d) => layout.exists(d),
    close: () => layout.close(),
    fetch: async (d) => {
      if (d.digest !== bad.digest) return await layout.fetch(d);
      while (!going(large)) await new Promise((r) => setTimeout(r, 20));
      throw why;
    },
  };
  return { img, large, src, why };
}

Deno.test("abort: a copy's first failure stops its other uploads at once (streamed PUTs)", async () => {
  // three large layers that would take 32 s each to go up (each larger than what the sockets
  // between the client and the proxy hold), and one that fails once they are going
  const { img, large, src, why } = await failingSource(
    [32 * MiB, 32 * MiB, 32 * MiB, 1000],
    (large) => uploadsOf(large).filter((e) => (e.sent ?? 0) > 0).length === 3,
  );
  proxy.reset();
  proxy.rules.throttleUploads = { bytesPerSecond: 1_000_000 };
  const dst = new RegistryTarget(proxy.host, "abort/up", fast);
  const t0 = performance.now();
  const e = await assertRejects(() => copy(src, dst, { srcRef: "1", dstRef: "1" }));
  const took = performance.now() - t0;
  assert(e === why, `rejected with ${e}`);
  // each large upload was cut, not waited for
  const ups = await ended(() => uploadsOf(large));
  assertEquals(ups.length, 3, JSON.stringify(proxy.log));
  for (const u of ups) {
    assertEquals(u.ended, "cancelled", `${u.method} ${u.path}: ${u.sent} bytes passed on`);
    assert(u.sent! < 32 * MiB, `${u.path}: sent whole`);
    assertEquals(u.status, 0, `${u.path}: answered`); // the registry never took it
  }
  // it rejected at once (waiting for one upload would have taken 32 s)
  assert(took < 16_000, `the copy waited ${took} ms for the other uploads`);
  // each upload session was cancelled
  assertEquals(proxy.log.filter((e) => e.method === "DELETE").length, 3);
  await dst.close();
  await src.close();
  await noneOf(img.layers.slice(0, -1), "abort/up");
});

Deno.test("abort: a copy's first failure stops its other uploads at once (chunks)", async () => {
  // 8 MiB in 1 MiB PATCHes at 200 KB/s: 40 s each if waited for
  const { img, large, src, why } = await failingSource(
    [8 * MiB, 8 * MiB, 8 * MiB, 1000],
    () => proxy.log.filter((e) => e.method === "PATCH" && (e.sent ?? 0) > 0).length >= 3,
  );
  proxy.reset();
  proxy.rules.throttleUploads = { bytesPerSecond: 200_000 };
  const dst = new RegistryTarget(proxy.host, "abort/chunks", { ...fast, chunkSize: MiB });
  const t0 = performance.now();
  const e = await assertRejects(() => copy(src, dst, { srcRef: "1", dstRef: "1" }));
  const took = performance.now() - t0;
  assert(e === why, `rejected with ${e}`);
  assert(took < 20_000, `the copy waited ${took} ms for the other uploads`);
  // no more chunks after the stop: the PATCHes in flight end, none follows, none finishes
  await ended(() => proxy.log.filter((e) => e.method === "PATCH"));
  const patches = proxy.log.filter((e) => e.method === "PATCH").length;
  assert(patches < 3 * 8, `${patches} chunks sent`);
  assertEquals(uploadsOf(large).filter((e) => e.method === "PUT"), []);
  assertEquals(proxy.log.filter((e) => e.method === "DELETE").length, 3);
  await dst.close();
  await src.close();
  await noneOf(img.layers.slice(0, -1), "abort/chunks");
});

/** The registry has none of these blobs in this repository, and no tag `1`. */
async function noneOf(layers: { digest: string; size: number; mediaType: string }[], repo: string) {
  const check = new RegistryTarget(reg.host, repo, fast);
  for (const l of layers) assert(!(await check.exists(l)), `${l.digest} is there`);
  await assertRejects(() => check.resolve("1"));
  await check.close();
}

Deno.test("abort: a pull given a signal stops when it aborts, rejecting with its reason", async () => {
  const img = await image([2 * MiB, 2 * MiB]);
  proxy.reset();
  proxy.rules.throttle = { bytesPerSecond: 100_000 };
  const out = join(await tempDir(), "out");
  const stop = new AbortController();
  const pulling = pullImage(img.name, `oci:${out}`, { ...fast, signal: stop.signal });
  // once the downloads have begun
  const digests = img.layers.map((l) => l.digest);
  while (!getsOf(digests).some((e) => (e.sent ?? 0) > 0)) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const why = new Error("the user gave up");
  stop.abort(why);
  const e = await assertRejects(() => pulling);
  assert(e === why, `rejected with ${e}`);
  for (const g of await ended(() => getsOf(digests))) assertEquals(g.ended, "cancelled", g.path);
  const asked = proxy.log.length;
  await new Promise((r) => setTimeout(r, 200));
  assertEquals(proxy.log.length, asked, "a request started after the abort");
  await assertRejects(() => Deno.stat(out), Deno.errors.NotFound);
});

Deno.test("abort: a signal aborted before a pull or push starts makes no request", async () => {
  const img = await image([1000]);
  proxy.reset();
  const why = new Error("not now");
  const signal = AbortSignal.abort(why);
  const out = join(await tempDir(), "out");
  assert(
    (await assertRejects(() => pullImage(img.name, `oci:${out}`, { ...fast, signal }))) === why,
  );
  const pushed = pushImage(`oci:${img.dir}:1`, `${proxy.host}/abort/never:1`, { ...fast, signal });
  assert((await assertRejects(() => pushed)) === why);
  assertEquals(proxy.log, []);
  await assertRejects(() => Deno.stat(out), Deno.errors.NotFound);
});

Deno.test("abort: RegistryTarget.abort() stops its downloads in flight", async () => {
  const img = await image([2 * MiB]);
  proxy.reset();
  proxy.rules.throttle = { bytesPerSecond: 100_000 };
  const [path, ref] = img.name.slice(proxy.host.length + 1).split(":");
  const t = new RegistryTarget(proxy.host, path!, fast);
  const desc = (await t.resolve(ref)).digest;
  assert(desc.startsWith("sha256:"));
  const stream = await t.fetch(img.layers[0]!);
  const reading = new Response(stream).bytes();
  while (!getsOf([img.layers[0]!.digest]).some((e) => (e.sent ?? 0) > 0)) {
    await new Promise((r) => setTimeout(r, 20));
  }
  await t.abort();
  const e = await assertRejects(() => reading, RegistryError);
  assert(/requests to .* were stopped/.test(e.message), e.message);
  for (const g of await ended(() => getsOf([img.layers[0]!.digest]))) {
    assertEquals(g.ended, "cancelled");
  }
});

Deno.test("abort: a copy stopped after its last blob, before its tag, tags nothing", async () => {
  const src = new MemoryTarget();
  const layer = await pushBytes(src, "text/plain", new TextEncoder().encode("hi"));
  const config = await pushBytes(src, OCI_EMPTY, encodeJson({}));
  const doc = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] };
  const root = await pushBytes(src, OCI_MANIFEST, encodeJson(doc));
  await src.tag(root, "x");
  const out = join(await tempDir(), "out");
  const dst = await OciDir.open(out, { create: true });
  const stop = new AbortController();
  const why = new Error("too late");
  const copying = copy(src, dst, {
    srcRef: "x",
    dstRef: "1",
    signal: stop.signal,
    // the root manifest is the last thing the graph copies: abort as it is done
    onProgress: (e) => e.kind === "done" && e.desc.digest === root.digest && stop.abort(why),
  });
  const e = await assertRejects(() => copying);
  assert(e === why, `rejected with ${e}`);
  await dst.abort();
  await assertRejects(() => Deno.stat(out), Deno.errors.NotFound);
});

Deno.test("abort: a layout's push stops when its signal aborts, keeping nothing of the blob", async () => {
  const dir = await tempDir();
  const targets = [
    ["oci-dir", await OciDir.open(join(dir, "d"), { create: true })],
    ["oci-archive", await OciArchive.open(join(dir, "a.tar"), { write: true })],
    ["memory", new MemoryTarget()],
  ] as const;
  for (const [kind, t] of targets) {
    const stop = new AbortController();
    const why = new Error(`${kind}: no longer wanted`);
    let sent = 0;
    let cancelled: unknown;
    // an endless source, stopped after 1 MiB of it
    const endless = new ReadableStream<Uint8Array>({
      pull(c) {
        c.enqueue(new Uint8Array(64 * 1024));
        if ((sent += 64 * 1024) === MiB) stop.abort(why);
      },
      cancel(reason) {
        cancelled = reason;
      },
    });
    const e = await assertRejects(() =>
      t.push({ mediaType: "application/octet-stream" }, endless, { signal: stop.signal })
    );
    assert(e === why, `${kind}: rejected with ${e}`);
    assert(cancelled === why, `${kind}: the source was not released (${cancelled})`);
    assert(sent < 2 * MiB, `${kind}: read on after the stop`);
    // aborted before it starts: nothing read
    const never = new ReadableStream<Uint8Array>({ pull: () => assert(false, `${kind}: read`) });
    assert((await assertRejects(() => t.push({ mediaType: "x/y" }, never, stop))) === why);
    await t.close();
  }
  // nothing of the blobs stayed: the oci-dir holds no blob file, the archive none either
  assertEquals([...Deno.readDirSync(join(dir, "d", "blobs", "sha256"))], []);
  assertEquals(await (await OciArchive.open(join(dir, "a.tar"))).list(), []);
});

Deno.test("abort: a tag stopped while the oci-dir makes its blobs durable changes no index and leaves a whole layout", async () => {
  const dir = await tempDir();
  // a layout with one image already, to which a second is being written
  const path = join(dir, "layout");
  const before = await OciDir.open(path, { create: true });
  const kept = await pushBytes(before, OCI_EMPTY, encodeJson({ kept: true }));
  const keptRoot = await pushBytes(
    before,
    OCI_MANIFEST,
    encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: kept, layers: [] }),
  );
  await before.tag(keptRoot, "old");
  await before.close();
  const indexBefore = await Deno.readTextFile(join(path, "index.json"));
  for (const when of ["before", "as it starts"] as const) {
    const t = await OciDir.open(path);
    const layers = [];
    for (let i = 0; i < 40; i++) {
      layers.push(
        await pushBytes(
          t,
          "application/octet-stream",
          crypto.getRandomValues(new Uint8Array(4096)),
        ),
      );
    }
    const config = await pushBytes(t, OCI_EMPTY, encodeJson({ when }));
    const root = await pushBytes(
      t,
      OCI_MANIFEST,
      encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers }),
    );
    const stop = new AbortController();
    const why = new Error(`stopped ${when}`);
    if (when === "before") stop.abort(why);
    const tagging = t.tag(root, "new", { signal: stop.signal });
    if (when === "as it starts") stop.abort(why); // the commit is under way, no sync has ended
    assert((await assertRejects(() => tagging)) === why, `${when}: not the reason`);
    await t.abort();
    // the index is as it was, no temp file is left, and no manifest of the new image is in place
    assertEquals(await Deno.readTextFile(join(path, "index.json")), indexBefore, when);
    const names = [...Deno.readDirSync(join(path, "blobs", "sha256"))].map((e) => e.name);
    assertEquals(names.filter((n) => n.startsWith(".")), [], `${when}: temps left`);
    assert(!names.includes(root.digest.slice(7)), `${when}: the new manifest is in place`);
    // the old image reads whole
    const again = await OciDir.open(path);
    assertEquals((await again.resolve("old")).digest, keptRoot.digest);
    await again.close();
  }
});
