// Attacks on giving up (AbortSignals through the registry client, its targets and the copy), the
// caches and reads beside it: a signal aborted at each wait of a request (headers, body, retry
// wait, token), the reason as given from every entry point, nothing left on disk, nothing kept
// on long-lived signals, a shared client left alone, a layout consistent after a failed commit,
// the manifest cache after a delete, downloads whose answers each end early.
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import { copyImage, getImage, NotFoundError, OciDir, pullImage, pushImage, Store } from "../mod.ts";
import { copy } from "../lib/transport/mod.ts";
import { RegistryTarget } from "../lib/transport/registry/target.ts";
import { RegistryClient, RegistryError } from "./_internal.ts";
import { listTree, ROOT, tempDir } from "./_helpers.ts";
import { pushRandomImage } from "./_images.ts";
import { PASS, startRegistry, USER } from "./_registry.ts";
import { type LogEntry, startFaultProxy } from "./_fault_proxy.ts";

const reg = await startRegistry();
const proxy = startFaultProxy(reg.host);
globalThis.addEventListener("unload", () => reg.kill());
const fast = { credential: null, backoffMs: 10 };
const MiB = 1024 * 1024;
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
let n = 0;

/** An image of these layer sizes (random bytes), pushed to the registry; its name through the proxy. */
async function image(sizes: number[]) {
  const repo = `redteam/img${n++}`;
  const img = await pushRandomImage(sizes, reg.host, repo);
  return { name: `${proxy.host}/${repo}:1`, repo, ...img };
}

/** The proxy's GETs of these blobs. */
const getsOf = (digests: string[]) =>
  proxy.log.filter((e) => e.method === "GET" && digests.some((d) => e.path.endsWith(d)));

/** Wait until one of these downloads has sent some bytes. */
async function begun(digests: string[]): Promise<void> {
  while (!getsOf(digests).some((e) => (e.sent ?? 0) > 0)) await pause(10);
}

/** Wait (at most 20 s) until every one of these downloads has ended, one way or the other. */
async function ended(entries: () => LogEntry[]): Promise<LogEntry[]> {
  for (let i = 0; i < 400 && !entries().every((e) => e.ended); i++) await pause(50);
  return entries();
}

/** The abort listeners on a signal that are still there (counted from now on). */
function listeners(signal: AbortSignal): () => number {
  const live = new Set<unknown>();
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  type Listener = EventListenerOrEventListenerObject;
  signal.addEventListener = (type: string, fn: Listener, o?: boolean | AddEventListenerOptions) => {
    if (type === "abort") live.add(fn);
    add(type, fn, o);
  };
  signal.removeEventListener = (type: string, fn: Listener, o?: boolean | EventListenerOptions) => {
    live.delete(fn);
    remove(type, fn, o);
  };
  return () => live.size;
}

Deno.test("redteam: a signal aborted while a request waits for headers: its reason, no listener left", async () => {
  // a stand-in that does not answer (a real registry always does) until the test ends
  let release: () => void;
  const released = new Promise<Response>((r) => release = () => r(new Response(null)));
  const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
  const server = Deno.serve(listen, () => released);
  const stop = new AbortController();
  const client = new RegistryClient(`127.0.0.1:${server.addr.port}`, {
    ...fast,
    signal: stop.signal,
  });
  const left = listeners(client.signal);
  try {
    const asking = client.request({ method: "GET", url: "/v2/", what: "registry" });
    await pause(50);
    assertEquals(left(), 1, "the request listens to its client");
    const why = new Error("gave up waiting");
    stop.abort(why);
    assert((await assertRejects(() => asking)) === why);
    assertEquals(left(), 0);
  } finally {
    client.close();
    release!();
    await server.shutdown();
  }
});

Deno.test("redteam: a fetch's signal aborted while its body is read: its reason, whole-read and streamed", async () => {
  const img = await image([512 * 1024, 2 * MiB]);
  const [small, large] = img.layers;
  proxy.reset();
  proxy.rules.throttle = { bytesPerSecond: 100_000 };
  const t = new RegistryTarget(proxy.host, img.repo, fast);
  const left = listeners(t.client.signal);
  try {
    // a small blob is read whole before fetch returns
    const stopSmall = new AbortController();
    const whole = t.fetch(small!, { signal: stopSmall.signal });
    await begun([small!.digest]);
    const why = new Error("not this one");
    stopSmall.abort(why);
    assert((await assertRejects(() => whole)) === why);
    // a large one streams
    const stopLarge = new AbortController();
    const stream = await t.fetch(large!, { signal: stopLarge.signal });
    const reading = new Response(stream).bytes();
    await begun([large!.digest]);
    const why2 = new Error("nor this one");
    stopLarge.abort(why2);
    assert((await assertRejects(() => reading)) === why2);
    for (const g of await ended(() => getsOf([small!.digest, large!.digest]))) {
      assertEquals(g.ended, "cancelled", g.path);
    }
    assertEquals(left(), 0);
  } finally {
    await t.close();
  }
});

Deno.test("redteam: a signal aborted during a retry's wait ends the wait; no retry follows", async () => {
  const img = await image([1000]);
  proxy.reset();
  proxy.rules.unavailable = { match: img.layers[0]!.digest, times: 1 };
  const stop = new AbortController();
  const why = new Error("no more waiting");
  let waits = 0;
  const t = new RegistryTarget(proxy.host, img.repo, {
    credential: null,
    backoffMs: 60_000, // would wait up to a minute
    signal: stop.signal,
    onRetry: () => {
      waits++;
      setTimeout(() => stop.abort(why), 20);
    },
  });
  try {
    assert((await assertRejects(() => t.fetch(img.layers[0]!))) === why);
    assertEquals(waits, 1);
    await pause(100);
    assertEquals(getsOf([img.layers[0]!.digest]).length, 1, "retried after the abort");
  } finally {
    await t.close();
  }
});

Deno.test("redteam: a pull, a get, a copy and a push stopped mid-way reject with the reason as given, leaving nothing", async () => {
  const img = await image([2 * MiB, 2 * MiB]);
  const digests = img.layers.map((l) => l.digest);
  const stopped = async (
    start: (signal: AbortSignal) => Promise<unknown>,
    when: () => Promise<void>,
  ) => {
    const stop = new AbortController();
    const going = start(stop.signal);
    await when();
    const why = new Error(`stopped ${n++}`);
    stop.abort(why);
    const e = await assertRejects(() => going);
    assert(e === why, `rejected with ${e}`);
  };
  const throttled = () => {
    proxy.reset();
    proxy.rules.throttle = { bytesPerSecond: 100_000 };
  };
  const base = await tempDir();
  throttled();
  await stopped(
    (signal) => pullImage(img.name, `oci:${base}/pulled`, { ...fast, signal }),
    () => begun(digests),
  );
  throttled();
  await stopped(
    (signal) => copyImage(img.name, `${base}/copied.tar`, { ...fast, signal }),
    () => begun(digests),
  );
  throttled();
  const store = new Store(join(base, "store"));
  await stopped((signal) => getImage(img.name, { ...fast, store, signal }), () => begun(digests));
  // a push stopped while it waits to retry an upload the registry refused
  proxy.reset();
  proxy.rules.unavailable = { match: "/blobs/uploads/", times: 1 };
  let waiting: () => void;
  const retrying = new Promise<void>((r) => waiting = r);
  await stopped(
    (signal) =>
      pushImage(`oci:${img.dir}:1`, `${proxy.host}/redteam/pushed:1`, {
        credential: null,
        backoffMs: 60_000,
        signal,
        onRetry: () => waiting(),
      }),
    () => retrying,
  );
  for (const g of await ended(() => getsOf(digests))) assertEquals(g.ended, "cancelled", g.path);
  // nothing half-made: no output, no temp, no lock; the store as empty as a fresh one
  const tree = await listTree(base);
  assertEquals(tree.filter((p) => !p.startsWith("store/")), []);
  assertEquals(tree, ["store/"]);
});

Deno.test("redteam: a signal aborted while a token is fetched: its reason, not a token failure", async () => {
  const tokenReg = await startRegistry({ auth: "token" });
  const credential = { username: USER, password: PASS };
  const name = `${tokenReg.host}/redteam/token:1`;
  // token requests are held (until the test ends) once this is set
  let asked: (() => void) | undefined;
  let release: () => void;
  const released = new Promise<void>((r) => release = r);
  try {
    const img = await image([1000]);
    await pushImage(`oci:${img.dir}:1`, name, { credential });
    tokenReg.tokens!.gate = () => {
      asked?.();
      return released;
    };
    const out = join(await tempDir(), "out");
    const cases: [string, (signal: AbortSignal) => Promise<unknown>][] = [
      // the client's signal: the pull's first request is challenged
      ["pull", (signal) => pullImage(name, `oci:${out}`, { credential, signal })],
      // a fetch's own signal: a fresh target's first request is challenged
      ["fetch", async (signal) => {
        // (a token request the signal does not reach fails by this timeout instead)
        const t = new RegistryTarget(tokenReg.host, "redteam/token", {
          credential,
          connectTimeoutMs: 3000,
        });
        try {
          return await t.fetch(img.manifest, { signal });
        } finally {
          await t.close();
        }
      }],
    ];
    for (const [what, start] of cases) {
      const held = new Promise<void>((r) => asked = r);
      const stop = new AbortController();
      const going = start(stop.signal);
      await held;
      const why = new Error(`stopped at the token (${what})`);
      stop.abort(why);
      const e = await assertRejects(() => going);
      assert(e === why, `${what}: rejected with ${e}`);
    }
    await assertRejects(() => Deno.stat(out), Deno.errors.NotFound);
  } finally {
    release!();
    await tokenReg.stop();
  }
});

Deno.test("redteam: 1000 requests leave no listener on the client's signal, the caller's, or a fetch's", async () => {
  const img = await image([100, 1.5 * MiB]);
  const [small, large] = img.layers;
  const callers = new AbortController();
  const fetches = new AbortController(); // long-lived, like a copy's
  const onCaller = listeners(callers.signal);
  const onFetches = listeners(fetches.signal);
  const t = new RegistryTarget(reg.host, img.repo, { ...fast, signal: callers.signal });
  const onClient = listeners(t.client.signal);
  const signal = fetches.signal;
  const missing = { ...small!, digest: `sha256:${"0".repeat(64)}` };
  try {
    for (let i = 0; i < 200; i++) {
      await t.resolve("1"); // a manifest read whole
      await (await t.fetch(small!, { signal })).cancel(); // read whole, then dropped
      const body = (await t.fetch(large!, { signal })).getReader(); // streamed, cut after a read
      await body.read();
      await body.cancel();
      await assertRejects(() => t.fetch(missing, { signal }), NotFoundError); // 404
      assert(await t.exists(small!)); // HEAD
    }
    assertEquals([onClient(), onFetches()], [0, 0]);
    assert(onCaller() <= 1, `${onCaller()} listeners on the caller's signal`);
  } finally {
    await t.close();
  }
  assertEquals(onCaller(), 0, "the closed client still listens to the caller's signal");
  // challenged, a token fetched, asked again: 100 times (a new scope each time)
  const tokenReg = await startRegistry({ auth: "token" });
  const client = new RegistryClient(tokenReg.host, {
    credential: { username: USER, password: PASS },
    signal: callers.signal,
  });
  const onTokenClient = listeners(client.signal);
  try {
    for (let i = 0; i < 100; i++) {
      const res = await client.request({
        method: "GET",
        url: `/v2/redteam/none${i}/tags/list`,
        scope: `repository:redteam/none${i}:pull`,
        what: "tags",
        ok: [200, 404],
        signal,
      });
      assertEquals(res.status, 404);
      await res.body?.cancel();
    }
    assertEquals(tokenReg.tokens!.requests.length, 100);
    assertEquals([onTokenClient(), onFetches()], [0, 0]);
  } finally {
    client.close();
    await tokenReg.stop();
  }
  assertEquals(onCaller(), 0);
});

Deno.test("redteam: a long-lived target keeps none of the signals its fetches were given; a closed client is not kept by the caller's", async () => {
  const img = await image([100]);
  // a child with a garbage collector to call: what is still reachable once the requests are done
  const code = `
    import { RegistryTarget } from "./lib/transport/registry/target.ts";
    import { RegistryClient } from "./lib/transport/registry/client.ts";
    const [host, repo, layer] = Deno.args;
    const desc = JSON.parse(layer);
    const kept = { signals: 0, clients: 0 };
    const freed = new FinalizationRegistry((k) => kept[k]--);
    const caller = new AbortController(); // lives as long as the process
    const t = new RegistryTarget(host, repo, { credential: null, signal: caller.signal });
    // (each round in a frame of its own: a suspended one may hold its last values)
    const round = async () => {
      const mine = new AbortController();
      await (await t.fetch(desc, { signal: mine.signal })).cancel();
      freed.register(mine.signal, "signals");
      kept.signals++;
      const c = new RegistryClient(host, { credential: null, signal: caller.signal });
      c.close();
      freed.register(c, "clients");
      kept.clients++;
    };
    for (let i = 0; i < 200; i++) await round();
    for (let i = 0; i < 20 && (kept.signals > 0 || kept.clients > 0); i++) {
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    console.log(JSON.stringify(kept));
    await t.close();
  `;
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--quiet",
      "--v8-flags=--expose-gc",
      code,
      reg.host,
      img.repo,
      JSON.stringify(img.layers[0]),
    ],
    cwd: ROOT,
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(r.success, new TextDecoder().decode(r.stderr));
  assertEquals(JSON.parse(new TextDecoder().decode(r.stdout)), { signals: 0, clients: 0 });
});

Deno.test("redteam: abort() of a target on a shared client leaves the other targets' requests alone", async () => {
  const img = await image([1.5 * MiB]);
  const [layer] = img.layers;
  proxy.reset();
  proxy.rules.throttle = { bytesPerSecond: 2 * MiB };
  const client = new RegistryClient(proxy.host, fast);
  const a = new RegistryTarget(client, img.repo, fast);
  const b = new RegistryTarget(client, img.repo, fast);
  try {
    const reading = new Response(await b.fetch(layer!)).bytes();
    await begun([layer!.digest]);
    await a.abort();
    assertEquals((await reading).byteLength, layer!.size);
    assert(!client.signal.aborted);
    assertEquals((await b.resolve("1")).digest, img.manifest.digest);
    await b.close();
  } finally {
    client.close();
  }
});

Deno.test("redteam: a signal aborted between the resolve and the copy: its reason, no blob asked for, no output", async () => {
  const img = await image([1000, 2000]);
  proxy.reset();
  const src = new RegistryTarget(proxy.host, img.repo, fast);
  const stop = new AbortController();
  const why = new Error("changed my mind");
  const resolve = src.resolve.bind(src);
  src.resolve = async (reference?: string) => {
    const d = await resolve(reference);
    stop.abort(why);
    return d;
  };
  const out = join(await tempDir(), "out");
  const copying = (async () => {
    const dst = await OciDir.open(out, { create: true });
    try {
      await copy(src, dst, { srcRef: "1", dstRef: "1", signal: stop.signal });
      await dst.close();
    } catch (e) {
      await dst.abort();
      throw e;
    }
  })();
  try {
    assert((await assertRejects(() => copying)) === why);
    assertEquals(proxy.log.filter((e) => e.path.includes("/blobs/")), []);
    await assertRejects(() => Deno.stat(out), Deno.errors.NotFound);
  } finally {
    await src.close();
  }
});

Deno.test("redteam: a commit into an oci-dir that fails after some blobs are in place leaves a consistent layout", async () => {
  const a = await image([1000]);
  const b = await image([3000, 4000, 5000, 6000]);
  const out = join(await tempDir(), "layout");
  await pullImage(a.name, `oci:${out}:a`, fast);
  const before = await Deno.readTextFile(join(out, "index.json"));
  const blobs = join(out, "blobs", "sha256");
  const temps = () =>
    [...Deno.readDirSync(blobs)].map((e) => e.name).filter((n) => n.includes(".tmp-"));
  // as the manifest goes in, one of the layers waiting to be put in place goes missing
  let removed = false;
  const pulling = pullImage(b.name, `oci:${out}:b`, {
    ...fast,
    onProgress: (e) => {
      if (e.kind !== "start" || e.desc.digest !== b.manifest.digest || removed) return;
      removed = true;
      // a layer's (3000 bytes or more; the config is 2)
      const layer = temps().find((t) => Deno.statSync(join(blobs, t)).size >= 3000);
      Deno.removeSync(join(blobs, layer!));
    },
  });
  const e = await assertRejects(() => pulling);
  assert(removed, `failed before the commit: ${e}`);
  assertStringIncludes(e.message, "was removed before it was put in place");
  // the index is as it was, every blob it names is there, nothing is left half-made
  assertEquals(await Deno.readTextFile(join(out, "index.json")), before);
  const layout = await OciDir.open(out);
  for (const m of await layout.list()) {
    const doc = JSON.parse(await Deno.readTextFile(layout.blobPath(m.digest)));
    for (const d of [doc.config, ...doc.layers]) {
      assert((await Deno.stat(layout.blobPath(d.digest))).isFile);
    }
  }
  await layout.close();
  assertEquals(temps(), []);
  // (some of b's blobs were put in place before the commit failed: left, named by nothing)
  const placed = [...b.layers.map((l) => l.digest)].filter((d) => {
    try {
      return Deno.statSync(layout.blobPath(d)).isFile;
    } catch {
      return false;
    }
  });
  assert(placed.length > 0 && placed.length < b.layers.length, `${placed.length} placed`);
  await assertRejects(() => Deno.stat(join(out, ".ocipkg-lock")), Deno.errors.NotFound);
  await assertRejects(() => Deno.stat(layout.blobPath(b.manifest.digest)), Deno.errors.NotFound);
});

Deno.test("redteam: a manifest resolved by digest is not answered from the cache once deleted, or once found gone", async () => {
  const img = await image([1000]);
  const repo = `${img.repo}-del`;
  await pushImage(`oci:${img.dir}:1`, `${reg.host}/${repo}:1`, fast);
  const digest = img.manifest.digest;
  const t = new RegistryTarget(reg.host, repo, fast);
  const other = new RegistryTarget(reg.host, repo, fast);
  try {
    assertEquals((await t.resolve("1")).digest, digest);
    assertEquals((await t.resolve(digest)).digest, digest); // from the cache
    // another client deletes it: this one, told so by its own delete's 404, must not answer it
    await other.delete(digest);
    await assertRejects(() => t.delete(digest), NotFoundError);
    await assertRejects(() => t.resolve(digest), NotFoundError);
    // the same, told by a HEAD
    await pushImage(`oci:${img.dir}:1`, `${reg.host}/${repo}:1`, fast);
    assertEquals((await t.resolve(digest)).digest, digest);
    await other.delete(digest);
    assertEquals(await t.digestOf(digest), undefined);
    await assertRejects(() => t.resolve(digest), NotFoundError);
    // pushed again and deleted by this one
    await pushImage(`oci:${img.dir}:1`, `${reg.host}/${repo}:1`, fast);
    assertEquals((await t.resolve(digest)).digest, digest);
    await t.delete(digest);
    await assertRejects(() => t.resolve(digest), NotFoundError);
    // another manifest pushed under the tag: the tag is asked, the old digest is not answered
    await pushImage(`oci:${img.dir}:1`, `${reg.host}/${repo}:1`, fast);
    assertEquals((await t.resolve("1")).digest, digest);
    const b = await image([2000]);
    await pushImage(`oci:${b.dir}:1`, `${reg.host}/${repo}:1`, fast);
    assertEquals((await t.resolve("1")).digest, b.manifest.digest);
  } finally {
    await t.close();
    await other.close();
  }
});

Deno.test("redteam: a download whose answers each end early, resumed with 416 or with the whole blob ending early again", async () => {
  const img = await image([300 * 1024, 1.5 * MiB]); // read whole, and streamed
  for (const layer of img.layers) {
    // every answer: a clean (chunked) end after half the blob; a resumption: 416, or 200 again
    for (const resumed of [416, 200]) {
      proxy.reset();
      proxy.rules.blobAnswer = {
        digest: layer.digest,
        answer: (blob, range) => {
          if (range && resumed === 416) {
            return new Response("no", {
              status: 416,
              headers: { "content-range": `bytes */${blob.length}` },
            });
          }
          const half = blob.slice(0, blob.length >> 1);
          return new Response(new ReadableStream({ start: (c) => (c.enqueue(half), c.close()) }));
        },
      };
      const t = new RegistryTarget(proxy.host, img.repo, { ...fast, resumeAttempts: 3 });
      try {
        const e = await assertRejects(async () => await new Response(await t.fetch(layer)).bytes());
        assert(e instanceof RegistryError, `${layer.size} ${resumed}: ${e}`);
        if (resumed === 416) assertStringIncludes(e.message, "answered 416");
        else {
          assertStringIncludes(
            e.message,
            `sent ${
              layer.size >> 1
            } of ${layer.size} bytes, each answer ending early; gave up after 3 resumed downloads`,
          );
        }
        assertEquals(getsOf([layer.digest]).length, resumed === 416 ? 2 : 4);
      } finally {
        await t.close();
      }
    }
  }
});

Deno.test("redteam: stopped while the manifest's body is read, with any reason (an Error, a string, none)", async () => {
  const img = await image([1000]);
  const out = join(await tempDir(), "out");
  for (const reason of [new Error("an error"), "a string", undefined]) {
    proxy.reset();
    proxy.rules.throttle = { bytesPerSecond: 50 }; // a manifest's first bytes come after seconds
    const stop = new AbortController();
    const pulling = pullImage(img.name, `oci:${out}`, { ...fast, signal: stop.signal });
    const manifestGet = () =>
      proxy.log.filter((e) => e.method === "GET" && e.path.includes("/manifests/"));
    while (!manifestGet().some((e) => e.status === 200)) await pause(10);
    stop.abort(reason);
    const e = await pulling.then(() => "resolved", (e) => e);
    assert(e === stop.signal.reason, `${String(reason)}: rejected with ${e}`);
    for (const g of await ended(manifestGet)) assertEquals(g.ended, "cancelled");
    assertEquals(proxy.log.filter((e) => e.path.includes("/blobs/")), []);
    await assertRejects(() => Deno.stat(out), Deno.errors.NotFound);
  }
});

Deno.test("redteam: a ranged download stopped mid-way: the reason as given, resumptions left or not", async () => {
  const img = await image([2 * MiB]);
  const [layer] = img.layers;
  for (const resumeAttempts of [5, 0]) {
    proxy.reset();
    proxy.rules.throttle = { bytesPerSecond: 200_000 };
    const t = new RegistryTarget(proxy.host, img.repo, {
      ...fast,
      rangeParts: 4,
      rangeThreshold: MiB,
      rangeSegmentSize: 512 * 1024,
      resumeAttempts,
    });
    try {
      const stop = new AbortController();
      const reading = new Response(await t.fetch(layer!, { signal: stop.signal })).bytes();
      await begun([layer!.digest]);
      const why = new Error(`stopped (${resumeAttempts} resumptions allowed)`);
      stop.abort(why);
      const e = await reading.then(() => "read whole", (e) => e);
      assert(e === why, `rejected with ${e}`);
      for (const g of await ended(() => getsOf([layer!.digest]))) {
        assertEquals(g.ended, "cancelled", g.path);
      }
    } finally {
      await t.close();
    }
  }
});
