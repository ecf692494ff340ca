// Faults a real registry cannot produce, injected by a proxy in front of one.
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import {
  getImage,
  OciDir,
  packDirectory,
  pullImage,
  pushImage,
  Store,
  VerificationError,
} from "../mod.ts";
import { digestOf } from "../lib/oci/mod.ts";
import { CLI, listTree, runCli, samplePackage, tempDir } from "./_helpers.ts";
import { RegistryError } from "./_internal.ts";
import { RegistryTarget } from "../lib/transport/registry/target.ts";
import { PASS, startRegistry, USER } from "./_registry.ts";
import { startFaultProxy, startRecorder } from "./_fault_proxy.ts";

const reg = await startRegistry({ auth: "htpasswd" });
const proxy = startFaultProxy(reg.host);
const cred = { username: USER, password: PASS };
const fast = { credential: cred, backoffMs: 10 };
globalThis.addEventListener("unload", () => reg.kill());

let n = 0;
/** Push a fresh package through the proxy; returns its name, layer digest and source. */
async function pushed(bytes = 2 * 1024 * 1024, random = false) {
  const name = `${proxy.host}/faults/pkg${n++}:1`;
  const src = await samplePackage(await tempDir(), bytes);
  if (random) {
    // a layer that barely compresses: as large as its file
    const lib = new Uint8Array(bytes);
    for (let o = 0; o < bytes; o += 65536) crypto.getRandomValues(lib.subarray(o, o + 65536));
    await Deno.writeFile(join(src, "lib", "libfoo.a"), lib);
  }
  const dir = join(await tempDir(), "layout");
  const r = await packDirectory(src, `oci:${dir}`, { name });
  const layout = await OciDir.open(dir);
  const m = JSON.parse(await Deno.readTextFile(layout.blobPath(r.digest)));
  await pushImage(`oci:${dir}`, undefined, fast);
  return { name, layer: m.layers[0].digest as string, src };
}

const reset = () => proxy.reset();

Deno.test("fault: a connection dropped mid-blob resumes with Range", async () => {
  const p = await pushed();
  reset();
  proxy.rules.dropBlobOnce = p.layer;
  const r = await getImage(p.name, { ...fast, store: new Store(await tempDir()) });
  assertEquals(await listTree(r.dir), await listTree(p.src));
  const gets = proxy.log.filter((e) => e.path.endsWith(p.layer));
  assertEquals(gets.length, 2);
  assert(gets[1]!.range?.startsWith("bytes="), JSON.stringify(gets));
});

Deno.test("fault: a resumed download copes with a server that answers 200 instead of 206", async () => {
  const p = await pushed();
  reset();
  proxy.rules.dropBlobOnce = p.layer;
  proxy.rules.ignoreRange = true;
  const r = await getImage(p.name, { ...fast, store: new Store(await tempDir()) });
  assertEquals(
    await Deno.readFile(join(r.dir, "lib/libfoo.a")),
    await Deno.readFile(join(p.src, "lib/libfoo.a")),
  );
  assertEquals(proxy.log.filter((e) => e.path.endsWith(p.layer)).map((e) => e.status), [200, 200]);
});

// A dropped connection fails the read in flight, which loses the buffer it was given: were that
// the reader's own (a pull reads into 1 MiB blocks, a block half filled when the drop comes), the
// bytes already in it were lost unseen by the verifier, and the resumed pull wrote a blob file
// that passed its check but was not the blob.
for (const ignoreRange of [false, true]) {
  Deno.test(
    `fault: a pull whose blob connection drops mid-block writes exactly the blob${
      ignoreRange ? " (the server answers the resumption with 200)" : ""
    }`,
    async () => {
      const p = await pushed(8 * 1024 * 1024 + 12_345);
      reset();
      proxy.rules.dropBlobOnce = p.layer;
      proxy.rules.ignoreRange = ignoreRange;
      const out = join(await tempDir(), "pulled");
      await pullImage(p.name, `oci:${out}`, fast);
      assertEquals(proxy.log.filter((e) => e.path.endsWith(p.layer)).length, 2);
      const bytes = await Deno.readFile((await OciDir.open(out)).blobPath(p.layer));
      assertEquals(digestOf(bytes), p.layer);
    },
  );
}

Deno.test("fault: 429 with Retry-After waits the time asked", async () => {
  const p = await pushed();
  reset();
  proxy.rules.tooManyOnce = { match: "/manifests/", retryAfter: "1" };
  const t0 = performance.now();
  await getImage(p.name, { ...fast, store: new Store(await tempDir()) });
  assert(performance.now() - t0 >= 950, "waited for Retry-After");
  assertEquals(
    proxy.log.filter((e) => e.path.includes("/manifests/")).map((e) => e.status).slice(0, 3),
    [429, 401, 200], // waited, then the usual Basic challenge
  );
});

Deno.test("fault: 503 twice is retried with backoff", async () => {
  const p = await pushed();
  reset();
  proxy.rules.unavailable = { match: p.layer, times: 2 };
  await getImage(p.name, { ...fast, store: new Store(await tempDir()) });
  assertEquals(proxy.log.filter((e) => e.path.endsWith(p.layer)).map((e) => e.status), [
    503,
    503,
    200,
  ]);
});

Deno.test("fault: wrong bytes for a digest are rejected and nothing is stored", async () => {
  const p = await pushed();
  reset();
  proxy.rules.wrongBytes = p.layer;
  const store = new Store(await tempDir());
  await assertRejects(
    () => getImage(p.name, { ...fast, store }),
    VerificationError,
    `blob ${p.layer}`,
  );
  assertEquals(await listTree(store.root), []);
});

// a small blob (fetch) and a large one (17 MiB of random bytes: over http1Fetch)
for (const large of [false, true]) {
  Deno.test(`fault: a ${large ? "large " : ""}blob GET redirected to another origin carries no Authorization`, async () => {
    const p = await pushed(large ? 17 * 1024 * 1024 : undefined, large);
    reset();
    const recorder = startRecorder(reg.host);
    try {
      proxy.rules.redirectBlob = { digest: p.layer, to: recorder.url };
      const r = await getImage(p.name, { ...fast, store: new Store(await tempDir()) });
      assertEquals(await listTree(r.dir), await listTree(p.src));
      assertEquals(recorder.seen.length, 1);
      assertEquals(recorder.seen[0]!.get("authorization"), null);
      // a large blob's GET, at the registry and at the other origin, by http1Fetch (Deno's
      // fetch adds `accept-language: *`; http1Fetch sends only the headers given)
      assertEquals(recorder.seen[0]!.has("accept-language"), !large);
      const asked = proxy.log.filter((e) => e.path.endsWith(p.layer));
      assertEquals(asked.map((e) => e.client), [large ? "http1" : "fetch"]);
      // the registry itself did get credentials
      assert(proxy.log.some((e) => e.status === 200 && e.path.includes("/manifests/")));
    } finally {
      await recorder.stop();
    }
  });
}

Deno.test("fault: a manifest larger than 4 MiB and an HTML answer are clear errors", async () => {
  const p = await pushed(1024);
  reset();
  proxy.rules.manifestBody = {
    body: new Uint8Array(5 * 1024 * 1024).fill(32),
    contentType: "application/vnd.oci.image.manifest.v1+json",
  };
  const store = new Store(await tempDir());
  await assertRejects(
    () => getImage(p.name, { ...fast, store }),
    Error,
    "over the 4194304-byte cap",
  );
  proxy.rules.manifestBody = {
    body: new TextEncoder().encode("<html><body>login</body></html>"),
    contentType: "text/html",
  };
  const e = await assertRejects(() => getImage(p.name, { ...fast, store }), Error, "not JSON");
  assertStringIncludes(e.message, p.name.replace(":1", ""));
  assertStringIncludes(e.message, "text/html");
  assertEquals(await listTree(store.root), []);
});

Deno.test("fault: Ctrl-C during a stalled get exits 130 and leaves no temp files", async () => {
  reset();
  const { name, layer } = await pushed(4 * 1024 * 1024);
  proxy.rules.stallBlob = layer;
  const data = await tempDir();
  const env = { OCIPKG_DATA_DIR: data, OCIPKG_AUTH_FILE: join(await tempDir(), "auth.json") };
  assertEquals((await runCli(["login", proxy.host, "-u", USER, "-p", PASS], { env })).code, 0);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CLI, "get", name],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // wait until the install is under way (its temp directory exists), then interrupt
  const started = async () => (await listTree(data)).some((p) => p.includes(".tmp-"));
  for (let i = 0; i < 200 && !(await started()); i++) await new Promise((r) => setTimeout(r, 50));
  assert(await started(), "the install never started");
  await new Promise((r) => setTimeout(r, 200));
  child.kill("SIGINT");
  const r = await child.output();
  assertEquals(r.code, 130);
  assertEquals(new TextDecoder().decode(r.stderr).trim(), "error: interrupted");
  const left = await listTree(data);
  assert(!left.some((p) => p.includes(".tmp") || p.includes("__1")), left.join(" "));
  reset();
});

Deno.test("fault: a PATCH whose reply is lost: the dropped upload starts over and the blob arrives whole", async () => {
  reset();
  proxy.rules.losePatchReply = 2;
  // 20 MiB of random bytes (they do not compress): three 8 MiB PATCH chunks
  const src = await tempDir();
  await Deno.mkdir(join(src, "lib"));
  const data = new Uint8Array(20 * 1024 * 1024);
  for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  await Deno.writeFile(join(src, "lib", "libfoo.a"), data);
  const name = `${proxy.host}/faults/chunked:1`;
  const archive = join(await tempDir(), "p.tar");
  await packDirectory(src, archive, { name });
  await pushImage(archive, undefined, { ...fast, chunkSize: 8 * 1024 * 1024 });
  const patches = proxy.log.filter((e) => e.method === "PATCH").map((e) => e.status);
  assertEquals(patches[1], 502, JSON.stringify(patches));
  // distribution refuses the retried PATCH (its upload state moved on) and drops the session;
  // the blob is uploaded again in a new session (a second POST)
  const posts = proxy.log.filter((e) => e.method === "POST" && e.path.includes("/blobs/uploads/"));
  assertEquals(posts.length, 3, `config, layer, layer again; PATCH statuses ${patches}`);
  reset();
  const store = new Store(await tempDir());
  const got = await getImage(name, { store, ...fast });
  const back = await Deno.readFile(join(got.dir, "lib", "libfoo.a"));
  assertEquals(back.length, data.length);
  assert(data.every((x, i) => x === back[i]), "content differs");
});

Deno.test("fault: a streamed blob PUT whose reply is lost is sent again and arrives whole", async () => {
  reset();
  const src = await tempDir();
  await Deno.mkdir(join(src, "lib"));
  const data = new Uint8Array(12 * 1024 * 1024);
  for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  await Deno.writeFile(join(src, "lib", "libfoo.a"), data);
  const name = `${proxy.host}/faults/streamed:1`;
  const archive = join(await tempDir(), "p.tar");
  await packDirectory(src, archive, { name });
  // the layer's streamed PUT (no Content-Length) loses its reply
  proxy.rules.losePutReply = 1;
  await pushImage(archive, undefined, fast);
  const puts = proxy.log.filter((e) => e.method === "PUT" && e.path.includes("/blobs/uploads/"));
  const digestOf = (path: string) => /digest=([^&]+)/.exec(path)?.[1];
  const lost = puts.filter((e) => e.status === 502).map((e) => digestOf(e.path));
  assertEquals(lost.length, 1, JSON.stringify(puts));
  // the lost blob was sent again (chunked) and committed
  assert(puts.some((e) => e.status === 201 && digestOf(e.path) === lost[0]), JSON.stringify(puts));
  reset();
  const got = await getImage(name, { store: new Store(await tempDir()), ...fast });
  const back = await Deno.readFile(join(got.dir, "lib", "libfoo.a"));
  assert(back.length === data.length && data.every((x, i) => x === back[i]), "content differs");
});

// A resumed download (its connection dropped halfway) asks for the rest with Range: an answer
// that is not the rest of this blob is refused at once (no second resumption), naming the blob
// and the registry, and nothing is written.
const resumeAnswers: [string, (blob: Uint8Array<ArrayBuffer>, from: number) => Response][] = [
  ["no Content-Range", (b, from) => new Response(b.slice(from), { status: 206 })],
  ["a malformed Content-Range", (b, from) =>
    new Response(b.slice(from), {
      status: 206,
      headers: { "content-range": `bytes=${from}-` },
    })],
  ["a range that starts elsewhere", (b, from) =>
    new Response(b.slice(from - 1), {
      status: 206,
      headers: { "content-range": `bytes ${from - 1}-${b.length - 1}/${b.length}` },
    })],
  ["another total", (b, from) =>
    new Response(b.slice(from), {
      status: 206,
      headers: { "content-range": `bytes ${from}-${b.length - 1}/${b.length + 1}` },
    })],
  ["another end", (b, from) =>
    new Response(b.slice(from, -1), {
      status: 206,
      headers: { "content-range": `bytes ${from}-${b.length - 2}/${b.length}` },
    })],
  ["a 200 of another length", (b) => {
    const longer = new Uint8Array(b.length + 1);
    longer.set(b);
    return new Response(longer, { status: 200 });
  }],
];
for (const [name, answer] of resumeAnswers) {
  Deno.test(`fault: a resumed download answered with ${name} is refused at once`, async () => {
    const p = await pushed();
    reset();
    proxy.rules.dropBlobOnce = p.layer;
    proxy.rules.blobAnswer = {
      digest: p.layer,
      answer: (b, range) =>
        range === undefined ? undefined : answer(b, Number(/^bytes=(\d+)-$/.exec(range)![1])),
    };
    const out = join(await tempDir(), "pulled");
    const e = await assertRejects(() => pullImage(p.name, `oci:${out}`, fast));
    // a whole blob of another size is a size mismatch, anything else the registry's fault
    assert(e instanceof RegistryError || e instanceof VerificationError, `${e}`);
    assertStringIncludes(e.message, `blob ${p.layer} of ${proxy.host}/faults/`);
    assertStringIncludes(e.message, "refused");
    assertEquals(e.message.split("\n").length, 1);
    const gets = proxy.log.filter((x) => x.path.endsWith(p.layer));
    assertEquals(gets.length, 2, JSON.stringify(gets)); // not asked a third time
    assert(gets[1]!.range?.startsWith("bytes="));
    assertEquals(await Deno.stat(out).catch(() => undefined), undefined); // nothing written
  });
}

Deno.test("fault: a 206 to a request for a whole blob is used only when it holds all of it", async () => {
  const p = await pushed();
  reset();
  const whole = (b: Uint8Array<ArrayBuffer>) =>
    new Response(b, {
      status: 206,
      headers: { "content-range": `bytes 0-${b.length - 1}/${b.length}` },
    });
  proxy.rules.blobAnswer = { digest: p.layer, answer: (b) => whole(b) };
  const ok = join(await tempDir(), "pulled");
  await pullImage(p.name, `oci:${ok}`, fast);
  assertEquals(digestOf(await Deno.readFile((await OciDir.open(ok)).blobPath(p.layer))), p.layer);
  proxy.rules.blobAnswer = {
    digest: p.layer,
    answer: (b) =>
      new Response(b.slice(1), {
        status: 206,
        headers: { "content-range": `bytes 1-${b.length - 1}/${b.length}` },
      }),
  };
  const out = join(await tempDir(), "refused");
  await assertRejects(
    () => pullImage(p.name, `oci:${out}`, fast),
    RegistryError,
    `answered Content-Range 'bytes 1-`,
  );
  assertEquals(await Deno.stat(out).catch(() => undefined), undefined);
});

Deno.test("requests: a pull asks for its manifest once (resolved by tag, then copied from the cache)", async () => {
  const p = await pushed(64 * 1024);
  reset();
  const out = join(await tempDir(), "out");
  await pullImage(p.name, `oci:${out}`, fast);
  // (the registry's 401 asking for credentials aside)
  const manifests = proxy.log.filter((e) => e.path.includes("/manifests/") && e.status !== 401);
  assertEquals(manifests.map((e) => `${e.method} ${e.path.split("/manifests/")[1]}`), ["GET 1"]);
  // and the layout holds the manifest, verified: the one the tag named
  const layout = await OciDir.open(out);
  assertEquals(
    (await layout.resolve(p.name)).digest,
    await digestOf(
      await Deno.readFile(layout.blobPath((await layout.resolve(p.name)).digest)),
    ),
  );
});

Deno.test("requests: a manifest at hand is resolved by digest without asking a mirror", async () => {
  const p = await pushed(1000);
  const [host, rest] = [reg.host, p.name.slice(proxy.host.length + 1)];
  const [repo, tag] = rest.split(":") as [string, string];
  reset();
  // the proxy as a mirror of the registry, asked for digests (not trusted to resolve tags)
  const t = new RegistryTarget(host, repo, {
    ...fast,
    mirrors: [{ host: proxy.host, resolve: false }],
  });
  try {
    const root = await t.resolve(tag);
    assertEquals((await t.resolve(root.digest)).digest, root.digest);
    assertEquals(proxy.log.filter((e) => e.path.includes(root.digest)), []);
  } finally {
    await t.close();
  }
});

Deno.test("faults: an upload the registry keeps refusing (503 to its every PUT) ends its session", async () => {
  reset();
  const dir = join(await tempDir(), "layout");
  const src = await samplePackage(await tempDir(), 64 * 1024);
  await packDirectory(src, `oci:${dir}`, { name: `${proxy.host}/faults/refused:1` });
  // every blob's closing PUT (`…?digest=`) answers 503, retries included
  proxy.rules.unavailable = { match: "digest=", times: 1000 };
  await assertRejects(() => pushImage(`oci:${dir}`, undefined, fast), RegistryError, "503");
  const posts = proxy.log.filter((e) => e.method === "POST" && e.status === 202).length;
  const deletes = proxy.log.filter((e) => e.method === "DELETE").length;
  assert(posts > 0, "no upload started");
  assertEquals(deletes, posts, "an upload session was left open");
  reset();
});
