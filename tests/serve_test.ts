// `ocipkg serve` beyond the conformance flows: Basic auth from an htpasswd file
// (ocipkg login/push/get against it), --read-only, TLS, two clients pushing
// the same blob at once, an abandoned upload leaving nothing, hostile names,
// the CLI's start line, a port in use, and a graceful stop on SIGTERM.
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { CLI, listTree, runCli, samplePackage, tempDir } from "./_helpers.ts";
import { makeTls, PASS, USER } from "./_registry.ts";
import { serve } from "../mod.ts";

const enc = new TextEncoder();
const quiet = { log: () => {} };

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return "sha256:" + [...h].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("serve: htpasswd auth (login, push, get), read-only, TLS", async (t) => {
  const work = await tempDir();
  await samplePackage(`${work}/pkg`);
  const htpasswd = `${work}/htpasswd`;
  const line = await new Deno.Command("htpasswd", { args: ["-Bbn", USER, PASS], stdout: "piped" })
    .output();
  await Deno.writeFile(htpasswd, line.stdout);
  const env = {
    HOME: work,
    OCIPKG_AUTH_FILE: `${work}/auth.json`,
    DOCKER_CONFIG: `${work}/docker`,
  };

  await t.step(
    "Basic auth: anonymous refused with a challenge, login then push and get",
    async () => {
      const s = await serve({ root: `${work}/auth-root`, addr: "127.0.0.1:0", htpasswd, ...quiet });
      try {
        const anon = await fetch(`${s.url}/v2/`);
        await anon.body?.cancel();
        assertEquals(anon.status, 401);
        assertStringIncludes(anon.headers.get("www-authenticate") ?? "", "Basic");
        const image = `${s.addr}/auth/pkg:1`;
        assertEquals((await runCli(["pack", `${work}/pkg`, `${work}/p.tar`, "-t", image])).code, 0);
        const refused = await runCli(["push", `${work}/p.tar`, image], { env });
        assertEquals(refused.code, 1);
        const bad = await runCli(["login", s.addr, "-u", USER, "-p", "wrong"], { env });
        assertEquals(bad.code, 1);
        assertStringIncludes(bad.stderr, "refused the password");
        const ok = await runCli(["login", s.addr, "-u", USER, "--password-stdin"], {
          env,
          stdin: PASS,
        });
        assertEquals(ok.code, 0, ok.stderr);
        assertEquals((await runCli(["push", `${work}/p.tar`, image], { env })).code, 0);
        const g = await runCli(["get", image], { env, dataHome: `${work}/data` });
        assertEquals(g.code, 0, g.stderr);
      } finally {
        await s.close();
      }
    },
  );

  await t.step("--read-only refuses writes with DENIED, serves reads", async () => {
    const root = `${work}/auth-root`; // holds auth/pkg from the step above
    const s = await serve({ root, addr: "127.0.0.1:0", readOnly: true, ...quiet });
    try {
      const post = await fetch(`${s.url}/v2/auth/pkg/blobs/uploads/`, { method: "POST" });
      const body = await post.json();
      assertEquals(post.status, 403);
      assertEquals(body.errors[0].code, "DENIED");
      const tags = await runCli(["tags", `${s.addr}/auth/pkg`]);
      assertEquals(tags.stdout.trim(), "1");
    } finally {
      await s.close();
    }
  });

  await t.step("TLS: https with a private CA, ocipkg with --ca-file", async () => {
    const tls = await makeTls(work);
    const s = await serve({
      root: `${work}/tls-root`,
      addr: "127.0.0.1:0",
      tlsCert: tls.cert,
      tlsKey: tls.key,
      ...quiet,
    });
    try {
      assert(s.url.startsWith("https://"), s.url);
      const image = `${s.addr}/tls/pkg:1`;
      assertEquals((await runCli(["pack", `${work}/pkg`, `${work}/t.tar`, "-t", image])).code, 0);
      const push = await runCli(["push", `${work}/t.tar`, image, "--ca-file", tls.ca]);
      assertEquals(push.code, 0, push.stderr);
      const plain = await runCli(["tags", `${s.addr}/tls/pkg`, "--plain-http"]);
      assertEquals(plain.code, 1);
    } finally {
      await s.close();
    }
  });
});

Deno.test("serve: same blob pushed twice at once, abandoned uploads, hostile names", async () => {
  const root = await tempDir();
  const s = await serve({ root, addr: "127.0.0.1:0", ...quiet });
  try {
    const bytes = new Uint8Array(200_000);
    crypto.getRandomValues(bytes.subarray(0, 65536));
    const digest = await sha256(bytes);
    const push = async () => {
      const post = await fetch(`${s.url}/v2/same/blob/blobs/uploads/`, { method: "POST" });
      await post.body?.cancel();
      const loc = new URL(post.headers.get("location")!, s.url);
      loc.searchParams.set("digest", digest);
      const put = await fetch(loc, { method: "PUT", body: bytes });
      await put.body?.cancel();
      return put.status;
    };
    assertEquals(await Promise.all([push(), push(), push()]), [201, 201, 201]);
    const got = new Uint8Array(
      await (await fetch(`${s.url}/v2/same/blob/blobs/${digest}`)).arrayBuffer(),
    );
    assertEquals(got, bytes);
    // an upload started and abandoned (half a body, never finished) leaves no blob
    const post = await fetch(`${s.url}/v2/same/blob/blobs/uploads/`, { method: "POST" });
    await post.body?.cancel();
    const loc = new URL(post.headers.get("location")!, s.url);
    const patch = await fetch(loc, {
      method: "PATCH",
      body: enc.encode("half"),
      headers: { "content-range": "0-3", "content-type": "application/octet-stream" },
    });
    await patch.body?.cancel();
    const blobs = (await listTree(`${root}/same/blob/blobs/sha256`)).filter((p) =>
      !p.endsWith("/")
    );
    assertEquals(blobs, [digest.slice(7)]);
    // names that are not repository names, or that climb out of the root
    for (const name of ["UPPER/x", "a/../../etc", "a//b", ".uploads/x"]) {
      const r = await fetch(`${s.url}/v2/${name}/tags/list`);
      await r.body?.cancel();
      assert(r.status === 400 || r.status === 404, `${name}: ${r.status}`);
    }
  } finally {
    await s.close();
  }
  // after close, uploads in flight are gone
  const left = (await listTree(`${root}/.uploads`).catch(() => [])).filter((p) => !p.endsWith("/"));
  assertEquals(left, []);
});

Deno.test("serve CLI: prints where it listens, a port in use is one line, SIGTERM stops it", async () => {
  const root = await tempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CLI, "serve", "--root", root, "--addr", "127.0.0.1:0"],
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/listening on (http:\/\/[^\s]+)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const url = /listening on (http:\/\/[^\s]+)/.exec(text)?.[1];
  assert(url, text);
  const ping = await fetch(`${url}/v2/`);
  await ping.body?.cancel();
  assertEquals(ping.status, 200);
  // the same port again: one line, exit 1
  const port = new URL(url).port;
  const taken = await runCli(["serve", "--root", root, "--addr", `127.0.0.1:${port}`]);
  assertEquals(taken.code, 1);
  assertEquals(taken.stderr.trim().split("\n").length, 1, taken.stderr);
  assertStringIncludes(taken.stderr, port);
  // the port is checked before anything is made: no --root directory left behind
  const other = join(await tempDir(), "not-made");
  const taken2 = await runCli(["serve", "--root", other, "--addr", `127.0.0.1:${port}`]);
  assertEquals(taken2.code, 1);
  assertStringIncludes(taken2.stderr, "is already in use");
  await assertRejects(() => Deno.stat(other), Deno.errors.NotFound);
  child.kill("SIGTERM");
  const status = await child.status;
  reader.releaseLock();
  await child.stdout.cancel().catch(() => {});
  await child.stderr.cancel();
  assertEquals(status.code, 0);
});

Deno.test("serve: large uploads (hashed on a worker) with and without a length, a wrong digest refused", async () => {
  const root = await tempDir();
  const s = await serve({ root, addr: "127.0.0.1:0", ...quiet });
  try {
    // 40 MiB, over the 32 MiB from which uploads are hashed off the main thread
    const bytes = new Uint8Array(40 << 20);
    for (let i = 0; i < bytes.length; i += 65536) {
      crypto.getRandomValues(bytes.subarray(i, i + 65536));
    }
    const digest = await sha256(bytes);
    const chunked = () =>
      new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < bytes.length; i += 1 << 20) c.enqueue(bytes.slice(i, i + (1 << 20)));
          c.close();
        },
      });
    const put = async (repo: string, body: BodyInit, claimed: string) => {
      const post = await fetch(`${s.url}/v2/${repo}/blobs/uploads/`, { method: "POST" });
      await post.body?.cancel();
      const loc = new URL(post.headers.get("location")!, s.url);
      loc.searchParams.set("digest", claimed);
      const r = await fetch(loc, { method: "PUT", body });
      const text = await r.text();
      return { status: r.status, text };
    };
    // with a Content-Length: the worker hashes from the first byte
    assertEquals((await put("big/len", bytes, digest)).status, 201);
    // chunked (no length): hashed here first, moved to the worker at 32 MiB
    assertEquals((await put("big/chunked", chunked(), digest)).status, 201);
    for (const repo of ["big/len", "big/chunked"]) {
      const got = await fetch(`${s.url}/v2/${repo}/blobs/${digest}`);
      assertEquals(await sha256(new Uint8Array(await got.arrayBuffer())), digest);
    }
    // the same bytes claimed under another digest: refused both ways, nothing stored
    const wrong = `sha256:${"0".repeat(64)}`;
    for (const body of [bytes, chunked()]) {
      const r = await put("big/wrong", body, wrong);
      assertEquals(r.status, 400);
      assertStringIncludes(r.text, "DIGEST_INVALID");
    }
    const stored = (await listTree(`${root}/big/wrong`).catch(() => [])).filter((p) =>
      p.includes("blobs/sha256/") && !p.endsWith("/")
    );
    assertEquals(stored, []);
  } finally {
    await s.close();
  }
  const left = (await listTree(`${root}/.uploads`).catch(() => [])).filter((p) => !p.endsWith("/"));
  assertEquals(left, []);
});
