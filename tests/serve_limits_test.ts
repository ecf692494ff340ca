// `ocipkg serve` under attack and load: per-client shares of upload sessions (one client at its
// share does not stop another's push; when all are taken the greediest client gives one up),
// idle sessions dropped, the request rate (429 + Retry-After, per address and per user),
// connections per client, stalled bodies (both ways) and idle connections cut, and the graceful
// stop with a deadline — in process and as `ocipkg serve` receiving SIGTERM while one client
// stalls a PATCH and another a download. Distinct clients are distinct loopback source
// addresses (127.0.0.2, 127.0.0.3: node:net's localAddress) speaking raw HTTP/1.1.
import net from "node:net";
import { Buffer } from "node:buffer";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { CLI, listTree, runCli, samplePackage, sha256, tempDir } from "./_helpers.ts";
import { packDirectory, pushImage, serve } from "../mod.ts";
import bcrypt from "../lib/vendor/bcryptjs/index.js";

const quiet = { log: () => {} };

/** A raw HTTP/1.1 connection from a chosen loopback address. */
class Raw {
  #sock: net.Socket;
  #buf = Buffer.alloc(0);
  #wake: (() => void) | undefined;
  /** bytes received in all */
  received = 0;
  /** settles when the server closes the connection */
  readonly closed: Promise<void>;

  private constructor(sock: net.Socket) {
    this.#sock = sock;
    sock.on("data", (d: Buffer) => {
      this.received += d.byteLength;
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#wake?.();
    });
    this.closed = new Promise((resolve) => sock.on("close", () => resolve()));
    this.closed.then(() => this.#wake?.());
    sock.on("error", () => {});
  }

  static open(port: number, from = "127.0.0.1"): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: "127.0.0.1", port, localAddress: from }, () => {
        sock.off("error", reject);
        resolve(new Raw(sock));
      });
      sock.once("error", reject);
    });
  }

  send(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve) => this.#sock.write(data, () => resolve()));
  }

  /** Stop reading (the server's writes back up). */
  pause(): void {
    this.#sock.pause();
  }

  resume(): void {
    this.#sock.resume();
  }

  destroy(): void {
    this.#sock.destroy();
  }

  /** One response (with a Content-Length body), or undefined when the connection closed first. */
  async response(): Promise<{ status: number; headers: Headers; body: string } | undefined> {
    let closed = false;
    this.closed.then(() => closed = true);
    while (true) {
      const end = this.#buf.indexOf("\r\n\r\n");
      if (end >= 0) {
        const [first, ...lines] = this.#buf.subarray(0, end).toString("latin1").split("\r\n");
        const headers = new Headers();
        for (const l of lines) {
          headers.append(l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim());
        }
        const length = Number(headers.get("content-length") ?? 0);
        if (this.#buf.byteLength >= end + 4 + length) {
          const body = this.#buf.subarray(end + 4, end + 4 + length).toString("utf8");
          this.#buf = this.#buf.subarray(end + 4 + length);
          return { status: Number(first!.split(" ")[1]), headers, body };
        }
      }
      if (closed) return undefined;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  /** Send a request and read its response. */
  async request(method: string, path: string, headers: Record<string, string> = {}, body = "") {
    const lines = Object.entries({ host: "x", "content-length": String(body.length), ...headers })
      .map(([k, v]) => `${k}: ${v}\r\n`).join("");
    await this.send(`${method} ${path} HTTP/1.1\r\n${lines}\r\n${body}`);
    return await this.response();
  }
}

/** Poll `check` until it holds (at most `ms`). */
async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether an upload is receiving its body (its temp file holds bytes). */
async function receiving(root: string): Promise<boolean> {
  for (const f of await uploadsLeft(root)) {
    if ((await Deno.stat(`${root}/.uploads/${f}`).catch(() => undefined))?.size) return true;
  }
  return false;
}

/** Files left in the root's upload directory. */
async function uploadsLeft(root: string): Promise<string[]> {
  return (await listTree(`${root}/.uploads`).catch(() => [])).filter((p) => !p.endsWith("/"));
}

function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
}

/** Store a blob in `repo` with one monolithic POST. */
async function putBlob(url: string, repo: string, bytes: Uint8Array<ArrayBuffer>) {
  const digest = await sha256(bytes);
  const r = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    method: "POST",
    body: bytes,
  });
  await r.body?.cancel();
  assertEquals(r.status, 201);
  return digest;
}

Deno.test("serve limits: one client at its upload share does not stop another's push; all taken, the greediest gives one up", async () => {
  const work = await tempDir();
  const root = `${work}/root`;
  const s = await serve({
    root,
    addr: "127.0.0.1:0",
    maxUploads: 4,
    maxClientUploads: 2,
    ...quiet,
  });
  const a = await Raw.open(s.port, "127.0.0.2");
  const c = await Raw.open(s.port, "127.0.0.3");
  try {
    // client A opens body-less sessions up to its share; one more is refused, with Retry-After
    const sessions: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await a.request("POST", "/v2/x/blobs/uploads/");
      assertEquals(r?.status, 202);
      sessions.push(r!.headers.get("location")!);
    }
    const over = await a.request("POST", "/v2/x/blobs/uploads/");
    assertEquals(over?.status, 429);
    assert(Number(over!.headers.get("retry-after")) >= 1, over!.headers.get("retry-after") ?? "");
    assertStringIncludes(over!.body, "TOOMANYREQUESTS");
    assertStringIncludes(over!.body, "127.0.0.2");
    // another client pushes an image meanwhile
    await samplePackage(`${work}/pkg`);
    const image = `${s.addr}/org/app:1`;
    const packed = await packDirectory(`${work}/pkg`, `${work}/app.tar`, { name: image });
    assertEquals((await pushImage(`${work}/app.tar`)).digest, packed.digest);
    // client C takes the other two: all four are taken
    for (let i = 0; i < 2; i++) {
      const r = await c.request("POST", "/v2/y/blobs/uploads/");
      assertEquals(r?.status, 202);
      sessions.push(r!.headers.get("location")!);
    }
    // a client holding none still gets one: the idlest session of a client holding two goes
    const blob = randomBytes(100_000);
    assertEquals((await putBlob(s.url, "z", blob)).length, 71);
    const alive = [];
    for (const loc of sessions) {
      const r = await fetch(`${s.url}${loc}`);
      await r.body?.cancel();
      alive.push(r.status);
    }
    assertEquals(alive.sort(), [204, 204, 204, 404]);
  } finally {
    a.destroy();
    c.destroy();
    await s.close();
  }
  assertEquals(await uploadsLeft(root), []);
});

Deno.test("serve limits: an idle upload session is dropped and its file removed", async () => {
  const root = await tempDir();
  const s = await serve({ root, addr: "127.0.0.1:0", uploadIdleMs: 200, ...quiet });
  try {
    const post = await fetch(`${s.url}/v2/idle/blobs/uploads/`, { method: "POST" });
    await post.body?.cancel();
    const loc = new URL(post.headers.get("location")!, s.url);
    const patch = await fetch(loc, { method: "PATCH", body: "some bytes" });
    await patch.body?.cancel();
    assertEquals(patch.status, 202);
    assertEquals((await uploadsLeft(root)).length, 1);
    await until("the idle session is dropped", async () => {
      const r = await fetch(loc);
      await r.body?.cancel();
      return r.status === 404;
    });
    const late = await fetch(loc, { method: "PATCH", body: "more" });
    assertStringIncludes(await late.text(), "BLOB_UPLOAD_UNKNOWN");
    await until("its file is removed", async () => (await uploadsLeft(root)).length === 0);
  } finally {
    await s.close();
  }
});

Deno.test("serve limits: the request rate answers 429 with Retry-After, per address and per user", async (t) => {
  const work = await tempDir();
  await t.step("per address", async () => {
    const s = await serve({
      root: `${work}/r1`,
      addr: "127.0.0.1:0",
      rate: 0.1,
      burst: 3,
      ...quiet,
    });
    const a = await Raw.open(s.port, "127.0.0.2");
    const b = await Raw.open(s.port, "127.0.0.3");
    try {
      for (let i = 0; i < 3; i++) assertEquals((await a.request("GET", "/v2/"))?.status, 200);
      const over = await a.request("GET", "/v2/");
      assertEquals(over?.status, 429);
      assert(Number(over!.headers.get("retry-after")) >= 1, over!.headers.get("retry-after") ?? "");
      assertStringIncludes(over!.body, "TOOMANYREQUESTS");
      // the other client has its own bucket
      assertEquals((await b.request("GET", "/v2/"))?.status, 200);
    } finally {
      a.destroy();
      b.destroy();
      await s.close();
    }
  });
  await t.step("per user when authenticated; wrong passwords metered per address", async () => {
    const htpasswd = `${work}/htpasswd`;
    await Deno.writeTextFile(
      htpasswd,
      `alice:${bcrypt.hashSync("a-pass", 4)}\nbob:${bcrypt.hashSync("b-pass", 4)}\n`,
    );
    const s = await serve({
      root: `${work}/r2`,
      addr: "127.0.0.1:0",
      htpasswd,
      rate: 0.1,
      burst: 3,
      ...quiet,
    });
    const basic = (user: string, pass: string) => ({
      authorization: `Basic ${btoa(`${user}:${pass}`)}`,
    });
    const a = await Raw.open(s.port, "127.0.0.2");
    try {
      for (let i = 0; i < 3; i++) {
        assertEquals((await a.request("GET", "/v2/", basic("alice", "a-pass")))?.status, 200);
      }
      assertEquals((await a.request("GET", "/v2/", basic("alice", "a-pass")))?.status, 429);
      // bob, from the same address, is another client
      assertEquals((await a.request("GET", "/v2/", basic("bob", "b-pass")))?.status, 200);
      // wrong passwords: 10, then refused before they are checked
      for (let i = 0; i < 10; i++) {
        assertEquals((await a.request("GET", "/v2/", basic("bob", `guess${i}`)))?.status, 401);
      }
      const refused = await a.request("GET", "/v2/", basic("bob", "guess"));
      assertEquals(refused?.status, 429);
      assert(Number(refused!.headers.get("retry-after")) >= 1);
    } finally {
      a.destroy();
      await s.close();
    }
  });
});

Deno.test("serve limits: connections per client; stalled bodies, idle connections and HTTP/2 cut", async (t) => {
  const work = await tempDir();
  await t.step("one client holds at most its connections, another is served", async () => {
    const s = await serve({
      root: `${work}/r1`,
      addr: "127.0.0.1:0",
      maxClientConnections: 2,
      ...quiet,
    });
    const held = [await Raw.open(s.port, "127.0.0.2"), await Raw.open(s.port, "127.0.0.2")];
    const extra = await Raw.open(s.port, "127.0.0.2");
    const b = await Raw.open(s.port, "127.0.0.3");
    try {
      const refused = await extra.response();
      assertEquals(refused?.status, 429);
      assertEquals(refused!.headers.get("retry-after"), "1");
      await extra.closed;
      assertEquals((await b.request("GET", "/v2/"))?.status, 200);
      held[0]!.destroy();
      await until("a closed connection frees its place", async () => {
        const again = await Raw.open(s.port, "127.0.0.2");
        const r = await again.request("GET", "/v2/");
        again.destroy();
        return r?.status === 200;
      });
    } finally {
      for (const r of [...held, extra, b]) r.destroy();
      await s.close();
    }
  });

  await t.step("stalled PATCH, stalled download, trickled headers, HTTP/2 preface", async () => {
    const root = `${work}/r2`;
    const s = await serve({
      root,
      addr: "127.0.0.1:0",
      stallMs: 300,
      maxClientConnections: 1,
      ...quiet,
    });
    const opened: Raw[] = [];
    const open = async (from: string) => {
      const r = await Raw.open(s.port, from);
      opened.push(r);
      return r;
    };
    try {
      // a PATCH declaring 64 MiB that stops after 1 KiB: cut, its session dropped
      const p = await open("127.0.0.2");
      const post = await p.request("POST", "/v2/x/blobs/uploads/");
      const loc = post!.headers.get("location")!;
      await p.send(`PATCH ${loc} HTTP/1.1\r\nhost: x\r\ncontent-length: ${64 << 20}\r\n\r\n`);
      await p.send("x".repeat(1024));
      await p.closed;
      await until("the stalled upload is dropped", async () => {
        const r = await fetch(`${s.url}${loc}`);
        await r.body?.cancel();
        return r.status === 404 && (await uploadsLeft(root)).length === 0;
      });
      // a download the client stops reading: cut (the client's next connection is then served)
      const size = 16 << 20;
      const digest = await putBlob(s.url, "x", randomBytes(size));
      const d = await open("127.0.0.3");
      d.pause();
      await d.send(`GET /v2/x/blobs/${digest} HTTP/1.1\r\nhost: x\r\n\r\n`);
      await until("the stalled download is cut", async () => {
        const again = await Raw.open(s.port, "127.0.0.3");
        const r = await again.request("GET", "/v2/");
        again.destroy();
        return r?.status === 200;
      });
      d.resume();
      await d.closed;
      assert(d.received < size, `${d.received} bytes received`);
      // headers trickled and never finished, nothing sent at all: closed
      const h = await open("127.0.0.4");
      await h.send("GET /v2/ HTTP/1.1\r\nhost: x\r\n");
      await h.closed;
      await (await open("127.0.0.5")).closed;
      // HTTP/2 with prior knowledge (many requests on one connection): refused
      const h2 = await open("127.0.0.6");
      await h2.send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
      await h2.closed;
      assertEquals(h2.received, 0); // not even the server's HTTP/2 SETTINGS
      const trickled = await open("127.0.0.7");
      for (const part of ["P", "RI", " * HTTP/2.0\r\n\r\nSM\r\n\r\n"]) {
        await trickled.send(part);
        await new Promise((r) => setTimeout(r, 20));
      }
      await trickled.closed;
      assertEquals(trickled.received, 0);
    } finally {
      for (const r of opened) r.destroy();
      await s.close();
    }
    assertEquals(await uploadsLeft(root), []);
  });
});

Deno.test("serve limits: close() lets transfers in flight finish, refuses new ones, cuts at the deadline", async (t) => {
  const work = await tempDir();
  await t.step("a download in flight finishes within the grace", async () => {
    const s = await serve({ root: `${work}/r1`, addr: "127.0.0.1:0", ...quiet });
    const bytes = randomBytes(8 << 20);
    const digest = await putBlob(s.url, "x", bytes);
    const res = await fetch(`${s.url}/v2/x/blobs/${digest}`);
    const reader = res.body!.getReader();
    const first = await reader.read();
    const closed = s.close();
    // no new connection
    const refused = await fetch(`${s.url}/v2/`).then((r) => r.body?.cancel(), (e) => e);
    assert(refused instanceof Error, "a new connection is refused");
    const chunks = [first.value!];
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
    const got = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
    let off = 0;
    for (const c of chunks) {
      got.set(c, off);
      off += c.byteLength;
    }
    assertEquals(await sha256(got), digest);
    await closed;
  });

  await t.step("an upload stalled past the grace is cut and leaves nothing", async () => {
    const root = `${work}/r2`;
    const s = await serve({ root, addr: "127.0.0.1:0", shutdownGraceMs: 200, ...quiet });
    const p = await Raw.open(s.port, "127.0.0.2");
    try {
      const post = await p.request("POST", "/v2/x/blobs/uploads/");
      const loc = post!.headers.get("location")!;
      const digest = `sha256:${"0".repeat(64)}`;
      await p.send(
        `PUT ${loc}?digest=${digest} HTTP/1.1\r\nhost: x\r\ncontent-length: ${64 << 20}\r\n\r\n`,
      );
      await p.send(new Uint8Array(6 << 20));
      await until("the upload receives its body", () => receiving(root));
      await s.close();
      await p.closed;
    } finally {
      p.destroy();
    }
    assertEquals(await uploadsLeft(root), []);
    const blobs = (await listTree(root)).filter((f) =>
      f.includes("blobs/sha256/") && !f.endsWith("/")
    );
    assertEquals(blobs, []);
  });
});

Deno.test("serve limits: SIGTERM with a stalled PATCH and a stalled download exits 0 within the grace", async () => {
  const root = await tempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      CLI,
      "serve",
      "--root",
      root,
      "--addr",
      "127.0.0.1:0",
      "--shutdown-grace",
      "1",
      "--quiet",
    ],
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const errText = (async () => {
    let text = "";
    while (true) {
      const { value, done } = await stderr.read();
      if (done) return text;
      text += value;
    }
  })();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/listening on http:\/\/[^\s]+/.test(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const url = /listening on (http:\/\/[^\s]+)/.exec(text)?.[1];
  assert(url, text);
  const port = Number(new URL(url).port);
  const bytes = randomBytes(16 << 20);
  const digest = await putBlob(url, "x", bytes);
  // one client stalls a PATCH declared 64 MiB after 6 MiB (past a 4 MiB write block), another stops reading a 16 MiB download
  const p = await Raw.open(port, "127.0.0.2");
  const post = await p.request("POST", "/v2/x/blobs/uploads/");
  const loc = post!.headers.get("location")!;
  await p.send(`PATCH ${loc} HTTP/1.1\r\nhost: x\r\ncontent-length: ${64 << 20}\r\n\r\n`);
  await p.send(new Uint8Array(6 << 20));
  const d = await Raw.open(port, "127.0.0.3");
  d.pause();
  await d.send(`GET /v2/x/blobs/${digest} HTTP/1.1\r\nhost: x\r\n\r\n`);
  await until("the upload receives its body", () => receiving(root));
  child.kill("SIGTERM");
  // the grace is 1 s: a generous margin on a busy machine, then it counts as hung
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<"hung">((r) => timer = setTimeout(() => r("hung"), 15_000));
  const status = await Promise.race([child.status, hung]);
  clearTimeout(timer);
  if (status === "hung") child.kill("SIGKILL");
  p.destroy();
  d.destroy();
  reader.releaseLock();
  await child.stdout.cancel().catch(() => {});
  const err = await errText;
  await child.status;
  assert(status !== "hung", "serve still running 15 s after SIGTERM");
  assertEquals(status.code, 0, err);
  // no partial file: the upload's temp file is gone, the one blob is whole
  assertEquals(await uploadsLeft(root), []);
  const blobs = (await listTree(root)).filter((f) =>
    f.includes("blobs/sha256/") && !f.endsWith("/")
  );
  assertEquals(blobs, [`x/blobs/sha256/${digest.slice(7)}`]);
  assertEquals(
    await sha256(await Deno.readFile(`${root}/x/blobs/sha256/${digest.slice(7)}`)),
    digest,
  );
});

Deno.test("serve limits: bad limits are one-line errors naming the option", async () => {
  const root = await tempDir();
  let e: unknown;
  try {
    await serve({ root, addr: "127.0.0.1:0", maxClientUploads: 0 });
  } catch (err) {
    e = err;
  }
  assert(e instanceof Error);
  assertStringIncludes(e.message, "maxClientUploads");
  const r = await runCli(["serve", "--root", root, "--max-connections", "0"]);
  assertEquals(r.code, 2);
  assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
  assertStringIncludes(r.stderr, "--max-connections");
  const g = await runCli(["serve", "--root", root, "--shutdown-grace", "soon"]);
  assertEquals(g.code, 2);
  assertStringIncludes(g.stderr, "--shutdown-grace");
});
