// Giving up: a caller's AbortSignal stops a pull or push (its requests in flight end, nothing is
// left), a copy's first failure stops the source's other downloads at once, and a
// RegistryTarget's abort() stops its own. A throttled proxy in front of a real registry shows
// whether each download ran to its end or was cut.
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { MemoryTarget, OciDir, pullImage, pushImage, VerificationError } from "../mod.ts";
import { encodeJson, OCI_MANIFEST } from "../lib/oci/mod.ts";
import { OCI_EMPTY } from "../lib/oci/media_types.ts";
import { copy, pushBytes } from "../lib/transport/mod.ts";
import { RegistryTarget } from "../lib/transport/registry/target.ts";
import { RegistryError } from "./_internal.ts";
import { tempDir } from "./_helpers.ts";
import { pushRandomImage } from "./_images.ts";
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
