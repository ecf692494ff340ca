// Parallel ranged pull of one large blob: a real docker-registry behind the
// fault proxy; small blobs with a low threshold keep the suite fast.
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import {
  getImage,
  OciDir,
  packDirectory,
  pullImage,
  pushImage,
  RegistryError,
  RegistryTarget,
  Store,
  VerificationError,
} from "../mod.ts";
import type { Descriptor } from "../lib/oci/mod.ts";
import { listTree, runCli, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";
import { type LogEntry, startFaultProxy } from "./_fault_proxy.ts";

const reg = await startRegistry();
const proxy = startFaultProxy(reg.host);
globalThis.addEventListener("unload", () => reg.kill());

const SEG = 256 * 1024;
const ranged = {
  credential: null,
  backoffMs: 10,
  rangeParts: 4,
  rangeThreshold: 1024 * 1024,
  rangeSegmentSize: SEG,
};

let n = 0;
/** Push a package whose layer is ≈ `bytes` of random data; returns its name and layer. */
async function pushed(bytes = 3 * 1024 * 1024 + 12345) {
  const name = `${proxy.host}/ranged/pkg${n++}:1`;
  const src = await tempDir();
  await Deno.mkdir(join(src, "lib"));
  const lib = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 65536) crypto.getRandomValues(lib.subarray(i, i + 65536));
  await Deno.writeFile(join(src, "lib", "libbig.a"), lib);
  await Deno.writeTextFile(join(src, "README"), "big\n");
  const dir = join(await tempDir(), "layout");
  const r = await packDirectory(src, `oci:${dir}`, { name });
  const layout = await OciDir.open(dir);
  const m = JSON.parse(await Deno.readTextFile(layout.blobPath(r.digest)));
  const layer = m.layers[0] as Descriptor;
  const bytesOf = await Deno.readFile(layout.blobPath(layer.digest));
  await layout.close();
  await pushImage(`oci:${dir}`, undefined, { credential: null });
  proxy.reset();
  return { name, layer, bytes: bytesOf, src, repo: `ranged/pkg${n - 1}` };
}

const blobGets = (layer: Descriptor): LogEntry[] =>
  proxy.log.filter((e) => e.method === "GET" && e.path.endsWith(`/blobs/${layer.digest}`));

/** Fetch a blob straight from the target, read whole. */
async function fetchAll(repo: string, desc: Descriptor, opts = ranged): Promise<Uint8Array> {
  const t = new RegistryTarget(proxy.host, repo, opts);
  try {
    return new Uint8Array(await new Response(await t.fetch(desc)).arrayBuffer());
  } finally {
    await t.close();
  }
}

Deno.test("ranged: a large blob comes in parallel segments, byte-identical and verified", async () => {
  const p = await pushed();
  assert(p.layer.size > 3 * 1024 * 1024, `layer is ${p.layer.size} bytes`);
  const out = join(await tempDir(), "out");
  await pullImage(p.name, `oci:${out}`, ranged);
  const layout = await OciDir.open(out);
  assertEquals(await Deno.readFile(layout.blobPath(p.layer.digest)), p.bytes);
  await layout.close();
  const gets = blobGets(p.layer);
  const segments = Math.ceil(p.layer.size / SEG);
  assertEquals(gets.length, segments);
  assert(gets.every((g) => g.status === 206), JSON.stringify(gets));
  // every segment asked once, together covering the blob exactly
  const ranges = gets.map((g) => g.range!).sort((a, b) =>
    Number(/=(\d+)/.exec(a)![1]) - Number(/=(\d+)/.exec(b)![1])
  );
  assertEquals(new Set(ranges).size, segments);
  assertEquals(
    ranges,
    Array.from(
      { length: segments },
      (_, i) => `bytes=${i * SEG}-${Math.min((i + 1) * SEG, p.layer.size) - 1}`,
    ),
  );
});

Deno.test("ranged: a blob under the threshold, parts 1, or a loopback registry by default: one GET", async () => {
  const p = await pushed(512 * 1024);
  assertEquals(await fetchAll(p.repo, p.layer), p.bytes);
  assertEquals(blobGets(p.layer).map((g) => [g.status, g.range]), [[200, undefined]]);
  proxy.reset();
  const big = await pushed();
  assertEquals(await fetchAll(big.repo, big.layer, { ...ranged, rangeParts: 1 }), big.bytes);
  assertEquals(blobGets(big.layer).map((g) => [g.status, g.range]), [[200, undefined]]);
  // no rangeParts given: a loopback registry is read as one stream
  proxy.reset();
  const { rangeParts: _, ...byDefault } = ranged;
  assertEquals(await fetchAll(big.repo, big.layer, byDefault as typeof ranged), big.bytes);
  assertEquals(blobGets(big.layer).map((g) => [g.status, g.range]), [[200, undefined]]);
});

Deno.test("ranged: a server that ignores Range is read as one stream from its first answer", async () => {
  const p = await pushed();
  proxy.rules.ignoreRange = true;
  assertEquals(await fetchAll(p.repo, p.layer), p.bytes);
  const gets = blobGets(p.layer);
  assertEquals(gets.map((g) => g.status), [200]); // no second request
  assertEquals(gets[0]!.range, `bytes=0-${SEG - 1}`);
});

Deno.test("ranged: wrong bytes in one segment are a VerificationError and nothing is written", async () => {
  const p = await pushed();
  proxy.rules.corruptRange = { digest: p.layer.digest, start: 2 * SEG };
  const out = join(await tempDir(), "out");
  await assertRejects(
    () => pullImage(p.name, `oci:${out}`, ranged),
    VerificationError,
    `blob ${p.layer.digest}`,
  );
  // the pull created the layout: it is gone again
  await assertRejects(() => Deno.stat(out), Deno.errors.NotFound);
});

Deno.test("ranged: a dropped segment is asked again and the blob is intact", async () => {
  const p = await pushed();
  proxy.rules.dropRangeOnce = { digest: p.layer.digest, start: 3 * SEG };
  assertEquals(await fetchAll(p.repo, p.layer), p.bytes);
  const asked = blobGets(p.layer).filter((g) => g.range === `bytes=${3 * SEG}-${4 * SEG - 1}`);
  assertEquals(asked.length, 2, JSON.stringify(blobGets(p.layer)));
});

Deno.test("ranged: a segment dropped after whole blocks resumes from the bytes it lacks", async () => {
  const p = await pushed(5 * 1024 * 1024);
  const MiB = 1024 * 1024;
  // 2 MiB segments are read in 1 MiB blocks; the proxy sends 1 MiB of segment 1, then drops
  proxy.rules.dropRangeOnce = { digest: p.layer.digest, start: 2 * MiB };
  assertEquals(
    await fetchAll(p.repo, p.layer, { ...ranged, rangeSegmentSize: 2 * MiB }),
    p.bytes,
  );
  const ranges = blobGets(p.layer).map((g) => g.range);
  assert(ranges.includes(`bytes=${3 * MiB}-${4 * MiB - 1}`), JSON.stringify(ranges));
});

Deno.test("ranged: drops beyond the resume budget fail naming the blob", async () => {
  const p = await pushed();
  proxy.rules.dropRangeOnce = { digest: p.layer.digest, start: SEG };
  await assertRejects(
    () => fetchAll(p.repo, p.layer, { ...ranged, resumeAttempts: 0 } as typeof ranged),
    RegistryError,
    `blob ${p.layer.digest} of ${proxy.host}/${p.repo}: download from ${proxy.host} interrupted too often`,
  );
});

Deno.test("ranged: a wrong Content-Range is refused, on the first answer or a later one", async () => {
  const p = await pushed();
  for (const start of [0, 2 * SEG]) {
    proxy.reset();
    proxy.rules.wrongContentRange = { digest: p.layer.digest, start };
    await assertRejects(
      () => fetchAll(p.repo, p.layer),
      RegistryError,
      `blob ${p.layer.digest} of ${proxy.host}/${p.repo}: ${proxy.host} answered Content-Range 'bytes ${
        start + 1
      }-${start + SEG}/${p.layer.size}' to a request for bytes ${start}-${
        start + SEG - 1
      }/${p.layer.size}; refused`,
    );
  }
});

Deno.test("ranged: an answer longer than the range asked is refused", async () => {
  const p = await pushed();
  proxy.rules.rangeTooLong = p.layer.digest;
  await assertRejects(
    () => fetchAll(p.repo, p.layer),
    RegistryError,
    `sent more than the ${SEG} bytes asked for`,
  );
});

Deno.test("ranged: get of an image with a large layer extracts it through ranged pull", async () => {
  const p = await pushed(5 * 1024 * 1024);
  const r = await getImage(p.name, { ...ranged, store: new Store(await tempDir()) });
  assertEquals(await listTree(r.dir), await listTree(p.src));
  assertEquals(
    await Deno.readFile(join(r.dir, "lib/libbig.a")),
    await Deno.readFile(join(p.src, "lib/libbig.a")),
  );
  assert(blobGets(p.layer).length > 4 && blobGets(p.layer).every((g) => g.status === 206));
});

Deno.test("ranged: cancelling the stream midway stops every request", async () => {
  const p = await pushed();
  proxy.rules.throttle = { bytesPerSecond: 4 * 1024 * 1024 };
  const t = new RegistryTarget(proxy.host, p.repo, ranged);
  const reader = (await t.fetch(p.layer)).getReader();
  const first = await reader.read();
  assert(!first.done && first.value.byteLength > 0);
  await reader.cancel("enough");
  await t.close();
  assert(blobGets(p.layer).length < Math.ceil(p.layer.size / SEG));
});

Deno.test("ranged: --parallel and OCIPKG_PARALLEL are checked, 0 turns ranged pull off", async () => {
  const p = await pushed(64 * 1024);
  const out = join(await tempDir(), "out");
  const ok = await runCli(["pull", p.name, "-o", out, "--format", "dir", "--parallel", "0"]);
  assertEquals(ok.code, 0, ok.stderr);
  const bad = await runCli(["pull", p.name, "-o", `${out}2`, "--parallel", "many"]);
  assertEquals(bad.code, 2);
  assert(
    bad.stderr.includes("invalid --parallel (or OCIPKG_PARALLEL) 'many': use 0-99"),
    bad.stderr,
  );
  const env = await runCli(["pull", p.name, "-o", `${out}3`], { env: { OCIPKG_PARALLEL: "x" } });
  assertEquals(env.code, 2);
  assert(env.stderr.includes("'x'"), env.stderr);
});

Deno.test({
  name: "ranged: cleanup",
  fn: async () => {
    await proxy.stop();
    await reg.stop();
  },
  sanitizeResources: false,
  sanitizeOps: false,
});
