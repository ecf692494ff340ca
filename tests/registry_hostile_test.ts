// Hostile registries: redirects and token realms that try to steal
// credentials or read local files, servers that never answer or drip bytes,
// Retry-After abuse, huge or poisoned bodies, endless tag lists, huge indexes.
// Each case checks the outcome (error class and a one-line message naming the
// host), that no credential reached another origin, that nothing was read
// from disk, that it ended in bounded time, and that the store stayed empty.
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import {
  AuthError,
  buildArtifact,
  copy,
  copyGraph,
  type Credential,
  type Descriptor,
  encodeJson,
  fetchBytes,
  FormatError,
  getImage,
  ImageName,
  isLoopbackHost,
  MemoryTarget,
  OCI_INDEX,
  OCI_MANIFEST,
  pushBytes,
  RegistryClient,
  RegistryError,
  RegistryTarget,
  type RegistryTargetOptions,
  RegistryTimeoutError,
  Store,
  walkDirectory,
} from "./_internal.ts";
import { printable } from "../lib/util/text.ts";
import { listTree, runCli, sha256 } from "./_helpers.ts";
import { makeTls } from "./_registry.ts";
import {
  type FakeRegistry,
  type FakeRegistryOptions,
  type Handler,
  type HttpServer,
  pause,
  type RawServer,
  startFakeRegistry,
  startHttp,
  startRaw,
  startTokenService,
} from "./_hostile_server.ts";

const USER = "hostile-user";
const PASS = "hostile-pass";
const CRED: Credential = { username: USER, password: PASS };
const enc = new TextEncoder();
const dec = new TextDecoder();
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** Small limits so every hostile case ends quickly. */
const FAST: RegistryTargetOptions = {
  backoffMs: 1,
  maxAttempts: 2,
  connectTimeoutMs: 400,
  idleTimeoutMs: 400,
  totalTimeoutMs: 2000,
  retryBudgetMs: 2000,
  resumeAttempts: 1,
};

/** Servers, temp dirs and the like of one test, all released at its end. */
class Scope {
  #cleanups: (() => Promise<unknown> | unknown)[] = [];
  defer(f: () => Promise<unknown> | unknown): void {
    this.#cleanups.push(f);
  }
  async tempDir(): Promise<string> {
    const d = await Deno.makeTempDir({ prefix: "ocipkg-hostile-" });
    this.defer(() => Deno.remove(d, { recursive: true }));
    return d;
  }
  async store(): Promise<Store> {
    return new Store(await this.tempDir());
  }
  http(handler: Handler, opts: Parameters<typeof startHttp>[1] = {}): HttpServer {
    const s = startHttp(handler, opts);
    this.defer(() => s.stop());
    return s;
  }
  fake(opts: FakeRegistryOptions = {}): FakeRegistry {
    const s = startFakeRegistry(opts);
    this.defer(() => s.stop());
    return s;
  }
  raw(serve: Parameters<typeof startRaw>[0]): RawServer {
    const s = startRaw(serve);
    this.defer(() => s.stop());
    return s;
  }
  target(host: string, repo: string, opts: RegistryTargetOptions): RegistryTarget {
    const t = new RegistryTarget(host, repo, opts);
    this.defer(() => t.close());
    return t;
  }
  async close(): Promise<void> {
    for (const f of this.#cleanups.reverse()) await f();
  }
}

function scoped(fn: (s: Scope) => Promise<void>): () => Promise<void> {
  return async () => {
    const s = new Scope();
    try {
      await fn(s);
    } finally {
      await s.close();
    }
  };
}

/** An ocipkg artifact `org/pkg:1` served by `reg`; returns its descriptors and layer bytes. */
async function sampleImage(s: Scope, reg: FakeRegistry, name = "org/pkg", tag = "1") {
  const dir = await s.tempDir();
  await Deno.mkdir(join(dir, "lib"));
  const lib = new Uint8Array(48 * 1024);
  crypto.getRandomValues(lib);
  await Deno.writeFile(join(dir, "lib", "libfoo.a"), lib);
  const mem = new MemoryTarget();
  const manifest = await buildArtifact(
    mem,
    [await walkDirectory(dir)],
    ImageName.parse(`${reg.host}/${name}:${tag}`),
  );
  const bytes = await fetchBytes(mem, manifest);
  const m = JSON.parse(dec.decode(bytes));
  const layer: Descriptor = m.layers[0];
  const config: Descriptor = m.config;
  for (const d of [manifest, config, layer]) {
    reg.blobs.set(d.digest, {
      bytes: new Uint8Array(await fetchBytes(mem, d)),
      mediaType: d.mediaType,
    });
  }
  reg.tags.set(`${name}:${tag}`, manifest.digest);
  return {
    image: `${reg.host}/${name}:${tag}`,
    manifest,
    layer,
    config,
    layerBytes: reg.blobs.get(layer.digest)!.bytes,
  };
}

/** Expect `fn` to fail with `cls`, one printable line naming every culprit, in bounded time. */
async function fails(
  fn: () => Promise<unknown>,
  cls: abstract new (...args: never[]) => Error,
  ...culprits: string[]
): Promise<Error> {
  const t0 = performance.now();
  // a hang fails the test (with this message) instead of stalling the suite
  let timer: ReturnType<typeof setTimeout> | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("hung: no outcome within 60 s")), 60_000);
  });
  const e = await assertRejects(() => Promise.race([fn(), watchdog]), cls).finally(() =>
    clearTimeout(timer)
  );
  for (const c of culprits) assertStringIncludes(e.message, c);
  assert(!CONTROL.test(e.message), `not one printable line: ${JSON.stringify(e.message)}`);
  assert(performance.now() - t0 < 30_000, "took too long");
  return e;
}

const isBlobGet = (req: Request, url: URL, digest: string) =>
  req.method === "GET" && url.pathname.endsWith(`/blobs/${digest}`);
const isManifestGet = (req: Request, url: URL) =>
  req.method === "GET" && url.pathname.includes("/manifests/");
const authorizedBasic = (req: Request) =>
  req.headers.get("authorization") === `Basic ${btoa(`${USER}:${PASS}`)}`;
const noAuthorization = (srv: HttpServer) =>
  assertEquals(srv.requests.map((r) => r.authorization).filter((a) => a !== null), []);
const redirect = (to: string, status = 307) =>
  new Response(null, { status, headers: { location: to } });

/** A server on another origin that asks for credentials (Bearer at `realm`, or Basic). */
function evilServer(s: Scope, realm?: string): HttpServer {
  return s.http((req) => {
    req.body?.cancel();
    return new Response("who are you", {
      status: 401,
      headers: {
        "www-authenticate": realm ? `Bearer realm="${realm}",service="evil"` : 'Basic realm="evil"',
      },
    });
  });
}

/** A token realm on another origin that records what reaches it. */
function evilRealm(s: Scope): HttpServer {
  return s.http(() => Response.json({ token: "evil-token" }));
}

// ---------------------------------------------------------------------------
// 1. Redirects and token realms
// ---------------------------------------------------------------------------

Deno.test(
  "hostile: blob redirected to another origin answering 401 Bearer realm=<evil> gets no Basic credentials",
  scoped(async (s) => {
    const realm = evilRealm(s);
    const evil = evilServer(s, `${realm.origin}/token`);
    let layer = "";
    const reg = s.fake({
      auth: { basic: { user: USER, pass: PASS } },
      route: (req, url) =>
        isBlobGet(req, url, layer) && authorizedBasic(req)
          ? redirect(`${evil.origin}/cdn${url.pathname}`)
          : undefined,
    });
    const img = await sampleImage(s, reg);
    layer = img.layer.digest;
    const store = await s.store();
    await fails(
      () => getImage(img.image, { ...FAST, credential: CRED, store }),
      AuthError,
      evil.host,
      `not the registry ${reg.host}`,
    );
    assert(evil.requests.length >= 1);
    noAuthorization(evil);
    assertEquals(realm.requests.length, 0);
    assertEquals(await listTree(store.root), []);
  }),
);

Deno.test(
  "hostile: manifest of a Bearer registry redirected to an evil origin: neither the bearer token nor the identity token leaves",
  scoped(async (s) => {
    const realm = evilRealm(s);
    const evil = evilServer(s, `${realm.origin}/token`);
    const tokens = startTokenService({
      user: USER,
      pass: PASS,
      token: "good-token",
      identityToken: "id-token",
    });
    s.defer(() => tokens.stop());
    const reg = s.fake({
      auth: { bearer: { realm: `${tokens.origin}/token`, token: "good-token" } },
      route: (req, url) =>
        isManifestGet(req, url) && req.headers.get("authorization") === "Bearer good-token"
          ? redirect(`${evil.origin}${url.pathname}`, 302)
          : undefined,
    });
    const img = await sampleImage(s, reg);
    for (const credential of [CRED, { identityToken: "id-token" }]) {
      const store = await s.store();
      await fails(
        () => getImage(img.image, { ...FAST, credential, store }),
        AuthError,
        evil.host,
      );
      assertEquals(await listTree(store.root), []);
    }
    // the registry's token service was asked (Basic once, identity token once), nobody else
    assertEquals(tokens.requests.map((r) => r.method).sort(), ["GET", "POST"]);
    noAuthorization(evil);
    assertEquals(realm.requests.length, 0);
  }),
);

Deno.test(
  "hostile: a redirect target answering 401 Basic gets no Basic credentials",
  scoped(async (s) => {
    const evil = evilServer(s);
    const reg = s.fake({
      auth: { basic: { user: USER, pass: PASS } },
      route: (req, url) =>
        isManifestGet(req, url) && authorizedBasic(req)
          ? redirect(`${evil.origin}/elsewhere`, 301)
          : undefined,
    });
    const img = await sampleImage(s, reg);
    const store = await s.store();
    await fails(
      () => getImage(img.image, { ...FAST, credential: CRED, store }),
      AuthError,
      evil.host,
      "credentials for",
    );
    assertEquals(evil.requests.length, 1, "no second try with credentials");
    noAuthorization(evil);
    assertEquals(await listTree(store.root), []);
  }),
);

Deno.test(
  "hostile: token realms with file:, data: and ftp: schemes are refused (no local file is read)",
  scoped(async (s) => {
    const dir = await s.tempDir();
    const tokenFile = join(dir, "token.json");
    await Deno.writeTextFile(tokenFile, JSON.stringify({ token: "file-token" }));
    const realms: [string, string, string][] = [
      [`file://${tokenFile}`, "file-token", "'file:'"],
      [
        `data:application/json,${encodeURIComponent('{"token":"data-token"}')}`,
        "data-token",
        "'data:'",
      ],
      ["ftp://127.0.0.1:2121/token", "ftp-token", "'ftp:'"],
    ];
    for (const [realm, token, scheme] of realms) {
      // the registry would accept the token the realm holds: reading it would let the get succeed
      const reg = s.fake({ auth: { bearer: { realm, token } } });
      const img = await sampleImage(s, reg);
      const store = await s.store();
      await fails(
        () => getImage(img.image, { ...FAST, credential: CRED, store }),
        AuthError,
        reg.host,
        scheme,
        "only http and https",
      );
      assert(!reg.requests.some((r) => r.authorization?.includes(token)), realm);
      assertEquals(await listTree(store.root), []);
    }
  }),
);

Deno.test(
  "hostile: a token realm on another origin named by the registry itself gets the credentials (allowed)",
  scoped(async (s) => {
    const tokens = startTokenService({ user: USER, pass: PASS, token: "good-token" });
    s.defer(() => tokens.stop());
    const reg = s.fake({
      auth: { bearer: { realm: `${tokens.origin}/token`, token: "good-token" } },
    });
    const img = await sampleImage(s, reg);
    const store = await s.store();
    const r = await getImage(img.image, { ...FAST, credential: CRED, store });
    assertEquals(r.status, "installed");
    assertEquals(tokens.requests.length, 1);
    assertEquals(tokens.requests[0]!.authorization, `Basic ${btoa(`${USER}:${PASS}`)}`);
    // the registry got the bearer token, never the Basic credentials
    assert(
      reg.requests.every((q) =>
        q.authorization === null || q.authorization === "Bearer good-token"
      ),
    );
  }),
);

Deno.test(
  "hostile: a blob redirected to file:// is not read from disk",
  scoped(async (s) => {
    const dir = await s.tempDir();
    let layer = "";
    let file = "";
    const reg = s.fake({
      route: (req, url) => isBlobGet(req, url, layer) ? redirect(`file://${file}`, 302) : undefined,
    });
    const img = await sampleImage(s, reg);
    layer = img.layer.digest;
    // the exact bytes: a client that read the file would install the image
    file = join(dir, "layer.tar.gz");
    await Deno.writeFile(file, img.layerBytes);
    const store = await s.store();
    await fails(
      () => getImage(img.image, { ...FAST, credential: null, store }),
      RegistryError,
      reg.host,
      "'file:' URL",
    );
    assertEquals(await listTree(store.root), []);
  }),
);

Deno.test(
  "hostile: redirect loops and endless redirect chains end with a clear error",
  scoped(async (s) => {
    let layer = "";
    const reg = s.fake({
      route: (req, url) => {
        if (isBlobGet(req, url, layer)) return redirect("/loop/a");
        if (url.pathname === "/loop/a") return redirect("/loop/b");
        if (url.pathname === "/loop/b") return redirect(`/v2/org/pkg/blobs/${layer}`);
        const n = /^\/chain\/(\d+)$/.exec(url.pathname);
        if (n) return redirect(`/chain/${Number(n[1]) + 1}`);
        return undefined;
      },
    });
    const img = await sampleImage(s, reg);
    layer = img.layer.digest;
    const store = await s.store();
    await fails(
      () => getImage(img.image, { ...FAST, credential: null, store }),
      RegistryError,
      "redirect loop",
      reg.host,
    );
    const t = s.target(reg.host, "org/pkg", { ...FAST, credential: null });
    await fails(
      () => t.client.request({ method: "GET", url: "/chain/0", what: "test" }),
      RegistryError,
      "too many redirects",
      reg.host,
    );
    assert(reg.requests.filter((r) => r.path.startsWith("/chain/")).length <= 6);
    assertEquals(await listTree(store.root), []);
  }),
);

Deno.test(
  "hostile: an https registry redirected to plain http, or naming a plain-http realm, is refused",
  scoped(async (s) => {
    const dir = await s.tempDir();
    const tls = await makeTls(dir);
    const certs = {
      cert: await Deno.readTextFile(tls.cert),
      key: await Deno.readTextFile(tls.key),
    };
    const evil = s.http(() => new Response("plain"));
    const realm = evilRealm(s);
    const reg = s.fake({
      tls: certs,
      route: (req, url) =>
        isManifestGet(req, url) && url.pathname.includes("/redirected/")
          ? redirect(`${evil.origin}${url.pathname}`)
          : undefined,
    });
    const img = await sampleImage(s, reg, "redirected/pkg");
    const store = await s.store();
    await fails(
      () => getImage(img.image, { ...FAST, caFile: tls.ca, credential: CRED, store }),
      RegistryError,
      "plain http",
      evil.host,
      reg.host,
    );
    assertEquals(evil.requests.length, 0);
    const tokenReg = s.fake({
      tls: certs,
      auth: { bearer: { realm: `${realm.origin}/token`, token: "evil-token" } },
    });
    const img2 = await sampleImage(s, tokenReg);
    await fails(
      () => getImage(img2.image, { ...FAST, caFile: tls.ca, credential: CRED, store }),
      AuthError,
      "plain http",
      realm.host,
    );
    assertEquals(realm.requests.length, 0);
    assertEquals(await listTree(store.root), []);
  }),
);

Deno.test(
  "hostile: a Location with credentials in its userinfo is refused",
  scoped(async (s) => {
    const evil = s.http(() => new Response("x"));
    let layer = "";
    const reg = s.fake({
      route: (req, url) =>
        isBlobGet(req, url, layer)
          ? redirect(`http://attacker:secret@${evil.host}${url.pathname}`)
          : undefined,
    });
    const img = await sampleImage(s, reg);
    layer = img.layer.digest;
    const store = await s.store();
    await fails(
      () => getImage(img.image, { ...FAST, credential: null, store }),
      RegistryError,
      "embedded credentials",
      evil.host,
    );
    assertEquals(evil.requests.length, 0);
    assertEquals(await listTree(store.root), []);
  }),
);

Deno.test(
  "hostile: an upload Location on another origin never gets Authorization (and its 401 is not answered)",
  scoped(async (s) => {
    const realm = evilRealm(s);
    let evilAsks = true;
    const stored: string[] = [];
    const evil = s.http(async (req, url) => {
      const body = new Uint8Array(await req.arrayBuffer());
      if (evilAsks) {
        return new Response(null, {
          status: 401,
          headers: { "www-authenticate": `Bearer realm="${realm.origin}/token"` },
        });
      }
      if (req.method === "PUT") stored.push(await sha256(body));
      return new Response(null, {
        status: req.method === "PUT" ? 201 : 202,
        headers: { location: url.pathname },
      });
    });
    const reg = s.fake({
      auth: { basic: { user: USER, pass: PASS } },
      route: (req, url) =>
        req.method === "POST" && url.pathname.endsWith("/blobs/uploads/") && authorizedBasic(req)
          ? new Response(null, { status: 202, headers: { location: `${evil.origin}/upload/1` } })
          : undefined,
    });
    const mem = new MemoryTarget();
    const cfg = await pushBytes(mem, "application/vnd.oci.empty.v1+json", enc.encode("{}"));
    const m = await pushBytes(
      mem,
      OCI_MANIFEST,
      encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: cfg, layers: [] }),
    );
    await mem.tag(m, "x:1");
    const dst = s.target(reg.host, "org/up", { ...FAST, credential: CRED });
    await fails(
      () => copy(mem, dst, { srcRef: "x:1", dstRef: "1" }),
      AuthError,
      evil.host,
      "not the registry",
    );
    // the bytes' PUT (refused), then the failed upload's session ended: neither with credentials
    assertEquals(evil.requests.map((r) => r.method), ["PUT", "DELETE"]);
    noAuthorization(evil);
    // an upload location elsewhere that needs no auth receives the bytes, not our credentials
    evilAsks = false;
    const dst2 = s.target(reg.host, "org/up", { ...FAST, credential: CRED });
    await copy(mem, dst2, { srcRef: "x:1", dstRef: "1" });
    assertEquals(stored, [cfg.digest]);
    noAuthorization(evil);
    assertEquals(realm.requests.length, 0);
    assert(reg.requests.some((r) => r.method === "POST" && r.authorization !== null));
  }),
);

Deno.test(
  "hostile: an upload Location with a file: URL is refused",
  scoped(async (s) => {
    const dir = await s.tempDir();
    const reg = s.fake({
      route: (req, url) =>
        req.method === "POST" && url.pathname.endsWith("/blobs/uploads/")
          ? new Response(null, { status: 202, headers: { location: `file://${dir}/upload` } })
          : undefined,
    });
    const mem = new MemoryTarget();
    const d = await pushBytes(mem, "application/octet-stream", enc.encode("data"));
    const dst = s.target(reg.host, "org/up", { ...FAST, credential: null });
    await fails(() => copyGraph(mem, dst, d), RegistryError, "'file:' URL", reg.host);
    assertEquals([...Deno.readDirSync(dir)], []);
  }),
);

// ---------------------------------------------------------------------------
// 2. Loopback means exactly localhost, 127.0.0.0/8 and [::1]
// ---------------------------------------------------------------------------

Deno.test("hostile: only localhost, 127.0.0.0/8 and [::1] are loopback (plain http)", () => {
  for (
    const h of [
      "localhost",
      "LOCALHOST:5000",
      "127.0.0.1",
      "127.0.0.2:80",
      "127.255.255.254",
      "[::1]",
      "[::1]:5000",
      "[0:0::1]",
    ]
  ) {
    assert(isLoopbackHost(h), h);
  }
  for (
    const h of [
      "localhost.example.invalid",
      "localhost.example.invalid:5000",
      "localhostx",
      "localhost.",
      "128.0.0.1",
      "10.0.0.1",
      "1127.0.0.1",
      "[::2]",
      "evil@localhost",
      "localhost/x",
    ]
  ) {
    assert(!isLoopbackHost(h), h);
  }
  assert(!ImageName.parse("localhost.example.invalid/x:1").isLoopback);
  assert(ImageName.parse("127.0.0.2:5000/x:1").isLoopback);
  assert(ImageName.parse("[::1]:5000/x:1").isLoopback);
  assert(ImageName.parse("localhost/x:1").isLoopback);
  const base = (r: string) => new RegistryClient(r, { credential: null }).baseUrl;
  assertEquals(base("localhost.example.invalid:5000"), "https://localhost.example.invalid:5000");
  assertEquals(base("localhost-evil.com"), "https://localhost-evil.com");
  assertEquals(base("127.0.0.2:5000"), "http://127.0.0.2:5000");
  assertEquals(base("[::1]:5000"), "http://[::1]:5000");
  assertEquals(base("localhost:5000"), "http://localhost:5000");
});

Deno.test(
  "hostile: registries on 127.0.0.2 and [::1] are reached over plain http by default",
  scoped(async (s) => {
    const hosts = ["127.0.0.2"];
    try {
      Deno.listen({ hostname: "::1", port: 0 }).close();
      hosts.push("::1");
    } catch { /* no IPv6 loopback here */ }
    for (const hostname of hosts) {
      const reg = s.fake({ hostname });
      const img = await sampleImage(s, reg);
      const r = await getImage(img.image, { ...FAST, credential: null, store: await s.store() });
      assertEquals(r.status, "installed");
    }
  }),
);

// ---------------------------------------------------------------------------
// 3. Timeouts and Retry-After
// ---------------------------------------------------------------------------

Deno.test(
  "hostile: a server that accepts and never answers times out (connect/headers), retried, bounded",
  scoped(async (s) => {
    const raw = s.raw((_conn, _head, signal) => pause(60_000, signal));
    const store = await s.store();
    const e = await fails(
      () => getImage(`${raw.host}/org/pkg:1`, { ...FAST, credential: null, store }),
      RegistryTimeoutError,
      raw.host,
      "did not answer within 0.4 s",
    );
    assertEquals((e as RegistryTimeoutError).kind, "connect");
    assertEquals(raw.connections, 2, "retried once (maxAttempts 2)");
    assertEquals(await listTree(store.root), []);
  }),
);

Deno.test(
  "hostile: headers then a body dripping within the idle timeout hits the total timeout",
  scoped(async (s) => {
    const raw = s.raw(async (conn, _head, signal) => {
      await conn.write(enc.encode(
        "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\n" +
          "content-length: 100000\r\n\r\n",
      ));
      while (!signal.aborted) {
        await conn.write(enc.encode(" "));
        await pause(100, signal);
      }
    });
    const store = await s.store();
    const e = await fails(
      () =>
        getImage(`${raw.host}/org/pkg:1`, {
          ...FAST,
          totalTimeoutMs: 1000,
          credential: null,
          store,
        }),
      RegistryTimeoutError,
      raw.host,
      "did not finish answering within 1 s",
    );
    assertEquals((e as RegistryTimeoutError).kind, "total");
    assertEquals(await listTree(store.root), []);
  }),
);

Deno.test(
  "hostile: a blob body that stalls mid-way hits the idle timeout; the resumed download stalls too",
  scoped(async (s) => {
    let layer = "";
    const payload = { half: new Uint8Array(0) };
    const reg = s.fake({
      route: (req, url) => {
        if (!isBlobGet(req, url, layer)) return undefined;
        let sent = false;
        return new Response(
          new ReadableStream({
            async pull(c) {
              if (!sent) {
                sent = true;
                c.enqueue(payload.half);
                return;
              }
              await pause(60_000, reg.signal);
              c.close();
            },
          }),
        );
      },
    });
    const img = await sampleImage(s, reg);
    layer = img.layer.digest;
    payload.half = img.layerBytes.slice(0, img.layerBytes.length >> 1);
    const store = await s.store();
    await fails(
      () => getImage(img.image, { ...FAST, credential: null, store }),
      RegistryError,
      reg.host,
      "sent no data for 0.4 s",
      "gave up after 1 resumed downloads",
    );
    const gets = reg.requests.filter((r) => r.method === "GET" && r.path.endsWith(layer));
    assertEquals(gets.length, 2, "one resume");
    assertEquals(await listTree(store.root), []);
  }),
);

Deno.test(
  "hostile: a blob dripping one byte at a time (never idle) fails the minimum rate, not resumed",
  scoped(async (s) => {
    let layer = "";
    let bytes = new Uint8Array(0);
    const reg = s.fake({
      route: (req, url) => {
        if (!isBlobGet(req, url, layer)) return undefined;
        let i = 0;
        return new Response(
          new ReadableStream({
            async pull(c) {
              await pause(50, reg.signal);
              if (reg.signal.aborted || i >= bytes.length) c.close();
              else c.enqueue(bytes.slice(i, ++i)); // the right bytes, one at a time
            },
          }),
        );
      },
    });
    const img = await sampleImage(s, reg);
    layer = img.layer.digest;
    bytes = img.layerBytes;
    const store = await s.store();
    const e = await fails(
      () =>
        getImage(img.image, {
          ...FAST,
          totalTimeoutMs: 800,
          minBytesPerSecond: 1000,
          credential: null,
          store,
        }),
      RegistryTimeoutError,
      reg.host,
      "below the minimum rate of 1000 bytes/s",
    );
    assertEquals((e as RegistryTimeoutError).kind, "rate");
    assertEquals(reg.requests.filter((r) => r.path.endsWith(layer)).length, 1);
    assertEquals(await listTree(store.root), []);
  }),
);

Deno.test(
  "hostile: a token service that never answers times out with an auth error naming it",
  scoped(async (s) => {
    const raw = s.raw((_conn, _head, signal) => pause(60_000, signal));
    const reg = s.fake({ auth: { bearer: { realm: `http://${raw.host}/token`, token: "t" } } });
    const img = await sampleImage(s, reg);
    const store = await s.store();
    await fails(
      () => getImage(img.image, { ...FAST, credential: CRED, store }),
      AuthError,
      `token service ${raw.host}`,
      "did not answer within",
    );
    assertEquals(await listTree(store.root), []);
  }),
);

Deno.test(
  "hostile: Retry-After: 3600 and an HTTP date far in the future fail at once",
  scoped(async (s) => {
    for (const retryAfter of ["3600", "Fri, 31 Dec 2099 23:59:59 GMT"]) {
      const reg = s.fake({
        route: (req, url) =>
          isManifestGet(req, url)
            ? new Response("busy", { status: 429, headers: { "retry-after": retryAfter } })
            : undefined,
      });
      const store = await s.store();
      const t0 = performance.now();
      await fails(
        () => getImage(`${reg.host}/org/pkg:1`, { ...FAST, credential: null, store }),
        RegistryError,
        `${reg.host} asked to retry after`,
      );
      assert(performance.now() - t0 < 5000, "did not wait");
      assertEquals(reg.requests.length, 1);
      assertEquals(await listTree(store.root), []);
    }
    const reg = s.fake({
      route: () => new Response("busy", { status: 429, headers: { "retry-after": "3600" } }),
    });
    const e = await fails(
      async () =>
        getImage(`${reg.host}/org/pkg:1`, { ...FAST, credential: null, store: await s.store() }),
      RegistryError,
      "asked to retry after 3600 s",
    );
    assertEquals((e as RegistryError).status, 429);
  }),
);

Deno.test(
  "hostile: 429 forever is bounded by the attempts; Retry-After is bounded by the retry budget",
  scoped(async (s) => {
    const reg = s.fake({
      route: (_req, url) =>
        url.pathname.includes("/forever/")
          ? new Response("busy", { status: 429 })
          : url.pathname.includes("/budget/")
          ? new Response("busy", { status: 503, headers: { "retry-after": "1" } })
          : undefined,
    });
    const store = await s.store();
    await fails(
      () =>
        getImage(`${reg.host}/forever/pkg:1`, { ...FAST, maxAttempts: 4, credential: null, store }),
      RegistryError,
      `${reg.host} answered 429`,
    );
    assertEquals(reg.requests.filter((r) => r.path.includes("/forever/")).length, 4);
    // 1 s fits in a 1.5 s budget once, not twice
    const t0 = performance.now();
    await fails(
      () =>
        getImage(`${reg.host}/budget/pkg:1`, {
          ...FAST,
          maxAttempts: 10,
          retryBudgetMs: 1500,
          credential: null,
          store,
        }),
      RegistryError,
      "asked to retry after 1 s",
    );
    assert(performance.now() - t0 >= 900);
    assertEquals(reg.requests.filter((r) => r.path.includes("/budget/")).length, 2);
    assertEquals(await listTree(store.root), []);
  }),
);

// ---------------------------------------------------------------------------
// 4./5. Bounded, printable bodies
// ---------------------------------------------------------------------------

/** A body of `total` bytes made on demand; `sent()` tells how much was produced. */
function hugeBody(total: number, fill = 0x61) {
  let produced = 0;
  const chunk = new Uint8Array(64 * 1024).fill(fill);
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (produced >= total) return c.close();
      produced += chunk.byteLength;
      c.enqueue(chunk);
    },
  });
  return { stream, sent: () => produced };
}

Deno.test(
  "hostile: a huge error body is not read whole; the error is one line",
  scoped(async (s) => {
    let body: ReturnType<typeof hugeBody> | undefined;
    const reg = s.fake({
      route: (req, url) => {
        if (!isManifestGet(req, url)) return undefined;
        body = hugeBody(200 * 1024 * 1024);
        return new Response(body.stream, {
          status: 400,
          headers: { "content-type": "application/json" },
        });
      },
    });
    const store = await s.store();
    const e = await fails(
      () => getImage(`${reg.host}/org/pkg:1`, { ...FAST, credential: null, store }),
      RegistryError,
      `${reg.host} answered 400`,
    );
    assert(e.message.length < 600, e.message);
    assert(body!.sent() < 32 * 1024 * 1024, `server produced ${body!.sent()} bytes`);
    assertEquals(await listTree(store.root), []);
  }),
);

const POISON = "evil\u001b[2J\u001b]0;pwned\u0007\r\nforged line \u009b31m\u202eesrever";

Deno.test(
  "hostile: an error body with terminal escapes is escaped (library and CLI)",
  scoped(async (s) => {
    const reg = s.fake({
      route: (req, url) =>
        isManifestGet(req, url)
          ? Response.json({ errors: [{ code: "DENIED\u001b[31m", message: POISON }] }, {
            status: 403,
          })
          : undefined,
    });
    const store = await s.store();
    const e = await fails(
      () => getImage(`${reg.host}/org/pkg:1`, { ...FAST, credential: null, store }),
      RegistryError,
      reg.host,
      printable("\u001b[2J"),
      printable("DENIED\u001b[31m"),
    );
    assertStringIncludes(e.message, printable("\u202e"));
    const home = await s.tempDir();
    const r = await runCli(["get", `${reg.host}/org/pkg:1`], {
      dataHome: join(home, "data"),
      env: { HOME: home, OCIPKG_AUTH_FILE: join(home, "auth.json"), DOCKER_CONFIG: home },
    });
    assertEquals(r.code, 1);
    assertEquals(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert(!CONTROL.test(r.stderr.trimEnd()), JSON.stringify(r.stderr));
    assertStringIncludes(r.stderr, printable("\u001b]0;pwned\u0007"));
    assertEquals(await listTree(store.root), []);
  }),
);

Deno.test(
  "hostile: tags with terminal escapes come out escaped (library, CLI, --json)",
  scoped(async (s) => {
    const reg = s.fake({
      route: (_req, url) =>
        url.pathname.endsWith("/tags/list")
          ? Response.json({ name: "org/pkg", tags: ["v1", POISON, "\u009b2J"] })
          : undefined,
    });
    const t = s.target(reg.host, "org/pkg", { ...FAST, credential: null });
    const tags = await t.tags();
    assertEquals(tags.length, 3);
    assertEquals(tags[0], "v1");
    for (const tag of tags) assert(!CONTROL.test(tag), JSON.stringify(tag));
    assertEquals(tags[1], printable(POISON));
    const home = await s.tempDir();
    const env = { HOME: home, OCIPKG_AUTH_FILE: join(home, "auth.json"), DOCKER_CONFIG: home };
    for (
      const args of [["tags", `${reg.host}/org/pkg`], ["tags", `${reg.host}/org/pkg`, "--json"]]
    ) {
      const r = await runCli(args, { env });
      assertEquals(r.code, 0, r.stderr);
      assert(!CONTROL.test(r.stdout.replaceAll("\n", "")), JSON.stringify(r.stdout));
      assertStringIncludes(r.stdout, "v1");
    }
  }),
);

Deno.test(
  "hostile: a tag list of 12 million entries in one page stops at the 4 MiB page cap",
  scoped(async (s) => {
    let produced = 0;
    const reg = s.fake({
      route: (_req, url) => {
        if (!url.pathname.endsWith("/tags/list")) return undefined;
        let i = 0;
        const stream = new ReadableStream<Uint8Array>({
          pull(c) {
            if (i === 0) c.enqueue(enc.encode('{"name":"org/pkg","tags":['));
            if (i >= 12_000_000) {
              c.enqueue(enc.encode("]}"));
              return c.close();
            }
            const part: string[] = [];
            for (let k = 0; k < 10_000; k++, i++) part.push(`${i ? "," : ""}"t${i}"`);
            const b = enc.encode(part.join(""));
            produced += b.byteLength;
            c.enqueue(b);
          },
        });
        return new Response(stream, { headers: { "content-type": "application/json" } });
      },
    });
    const t = s.target(reg.host, "org/pkg", { ...FAST, credential: null });
    await fails(() => t.tags(), RegistryError, reg.host, "4194304-byte cap");
    assert(produced < 64 * 1024 * 1024, `server produced ${produced} bytes`);
  }),
);

Deno.test(
  "hostile: 12 million tags over pages stream page by page and stop at the 1,000,000-tag cap",
  scoped(async (s) => {
    const per = 100_000;
    const reg = s.fake({
      route: (_req, url) => {
        if (!url.pathname.endsWith("/tags/list")) return undefined;
        const page = Number(url.searchParams.get("page") ?? "0");
        const tags = Array.from({ length: per }, (_, k) => `t${page * per + k}`);
        const headers: Record<string, string> = {};
        if ((page + 1) * per < 12_000_000) {
          headers.link = `</v2/org/pkg/tags/list?n=${per}&page=${page + 1}>; rel="next"`;
        }
        return Response.json({ name: "org/pkg", tags }, { headers });
      },
    });
    // each page is 100,000 tags made on the spot: slow on a loaded machine, not hostile
    const t = s.target(reg.host, "org/pkg", {
      ...FAST,
      connectTimeoutMs: 10_000,
      idleTimeoutMs: 10_000,
      totalTimeoutMs: 120_000,
      credential: null,
    });
    const rss0 = Deno.memoryUsage().rss;
    let peak = rss0;
    let count = 0;
    const e = await assertRejects(
      async () => {
        for await (const page of t.tagPages()) {
          count += page.length;
          peak = Math.max(peak, Deno.memoryUsage().rss);
        }
      },
      RegistryError,
      "more than 1000000 tags",
    );
    assertStringIncludes(e.message, reg.host);
    assertEquals(count, 1_000_000);
    assertEquals(reg.requests.length, 11);
    assert(peak - rss0 < 400 * 1024 * 1024, `RSS grew by ${(peak - rss0) >> 20} MiB`);
  }),
);

Deno.test(
  "hostile: tag pagination that loops, or links to another origin, is refused",
  scoped(async (s) => {
    const evil = s.http(() => Response.json({ tags: ["stolen"] }));
    const reg = s.fake({
      auth: { basic: { user: USER, pass: PASS } },
      route: (req, url) => {
        if (!url.pathname.endsWith("/tags/list") || !authorizedBasic(req)) return undefined;
        const link = url.pathname.includes("/loop/")
          ? `<${url.pathname}?n=1000>; rel="next"`
          : `<${evil.origin}/v2/org/pkg/tags/list?last=x>; rel="next"`;
        return Response.json({ tags: ["a"] }, { headers: { link } });
      },
    });
    const loop = s.target(reg.host, "loop/pkg", { ...FAST, credential: CRED });
    await fails(() => loop.tags(), RegistryError, reg.host, "loop");
    const away = s.target(reg.host, "org/pkg", { ...FAST, credential: CRED });
    await fails(() => away.tags(), RegistryError, reg.host, "another origin", evil.host);
    assertEquals(evil.requests.length, 0);
  }),
);

Deno.test(
  "hostile: a manifest whose Content-Length lies fails naming the host (retried, bounded)",
  scoped(async (s) => {
    const raw = s.raw(async (conn) => {
      const body = '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"';
      await conn.write(enc.encode(
        "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\n" +
          `content-length: 5000\r\n\r\n${body}`,
      ));
    });
    const store = await s.store();
    await fails(
      () => getImage(`${raw.host}/org/pkg:1`, { ...FAST, credential: null, store }),
      RegistryError,
      `image '${raw.host}/org/pkg:1'`,
      raw.host,
    );
    assertEquals(raw.connections, 2);
    assertEquals(await listTree(store.root), []);
  }),
);

/** An index of `n` distinct manifests sharing one config and one layer. */
async function bigIndex(reg: FakeRegistry, n: number): Promise<void> {
  const put = async (bytes: Uint8Array<ArrayBuffer>, mediaType: string): Promise<Descriptor> => {
    const digest = await sha256(bytes);
    reg.blobs.set(digest, { bytes, mediaType });
    return { mediaType, digest, size: bytes.byteLength };
  };
  const config = await put(enc.encode("{}"), "application/vnd.oci.empty.v1+json");
  const layer = await put(enc.encode("layer"), "application/vnd.oci.image.layer.v1.tar");
  const manifests: Descriptor[] = [];
  for (let i = 0; i < n; i++) {
    manifests.push(
      await put(
        new Uint8Array(encodeJson({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config,
          layers: [layer],
          annotations: { n: String(i) },
        })),
        OCI_MANIFEST,
      ),
    );
  }
  const index = await put(
    new Uint8Array(encodeJson({ schemaVersion: 2, mediaType: OCI_INDEX, manifests })),
    OCI_INDEX,
  );
  reg.tags.set("org/many:1", index.digest);
}

Deno.test(
  "hostile: an index of 10,000 manifests is copied with at most --concurrency requests in flight",
  scoped(async (s) => {
    const reg = s.fake();
    await bigIndex(reg, 10_000);
    const src = s.target(reg.host, "org/many", { ...FAST, credential: null });
    const dst = new MemoryTarget();
    await copy(src, dst, { srcRef: "1", dstRef: "many:1", concurrency: 4 });
    assert(reg.maxInFlight <= 4, `max in flight ${reg.maxInFlight}`);
    assertEquals(reg.requests.filter((r) => r.path.includes("/manifests/sha256:")).length, 10_000);
    assertEquals((await dst.list()).length, 1);
  }),
);

Deno.test(
  "hostile: an index listing more than 16384 manifests is refused before any is fetched",
  scoped(async (s) => {
    const reg = s.fake();
    await bigIndex(reg, 20_000);
    const src = s.target(reg.host, "org/many", { ...FAST, credential: null });
    await fails(
      () => copy(src, new MemoryTarget(), { srcRef: "1", concurrency: 4 }),
      FormatError,
      "20000 descriptors, over the cap of 16384",
      reg.host,
    );
    assertEquals(reg.requests.filter((r) => r.path.includes("/manifests/sha256:")).length, 0);
  }),
);

Deno.test(
  "hostile: a token service answering a huge body, or a token with control characters, is refused",
  scoped(async (s) => {
    let produced = 0;
    const tokens = s.http((_req, url) => {
      if (url.pathname === "/huge") {
        const b = hugeBody(100 * 1024 * 1024);
        const reader = b.stream.getReader();
        return new Response(
          new ReadableStream({
            async pull(c) {
              const r = await reader.read();
              produced = b.sent();
              if (r.done) c.close();
              else c.enqueue(r.value);
            },
          }),
          { headers: { "content-type": "application/json" } },
        );
      }
      return Response.json({ token: "abc\r\nx-injected: 1" });
    });
    const cases: [string, string][] = [["/huge", "4194304-byte cap"], ["/ctl", "invalid token"]];
    for (const [path, why] of cases) {
      const reg = s.fake({ auth: { bearer: { realm: `${tokens.origin}${path}`, token: "t" } } });
      const img = await sampleImage(s, reg);
      const store = await s.store();
      await fails(
        () => getImage(img.image, { ...FAST, credential: CRED, store }),
        AuthError,
        tokens.host,
        why,
      );
      assert(reg.requests.every((r) => r.authorization === null), "no token was sent");
      assertEquals(await listTree(store.root), []);
    }
    assert(produced < 32 * 1024 * 1024, `token service produced ${produced} bytes`);
  }),
);
