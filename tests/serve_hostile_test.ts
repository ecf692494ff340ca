// `ocipkg serve` under a hostile local user and a full disk: directories under
// the root (a repository's, its blobs', the uploads') swapped for symlinks after
// start are refused — nothing is read or written at their targets and other
// repositories are still served; option files that are not regular files or
// are too large are refused in one line before anything listens; a push to a
// full disk reports the registry's error and leaves nothing behind; the request
// log's fields (bytes received and sent, the whole request's duration), and a
// request body cut off by its connection's end logged as a client abort (499),
// a stall (408) or a stop (503), never as a server error.
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import { CLI, listTree, sha256, tempDir } from "./_helpers.ts";
import { packDirectory, pushImage, serve, type ServeHandle, UsageError } from "../mod.ts";
import { OCI_MANIFEST } from "../lib/oci/mod.ts";

const enc = new TextEncoder();

function random(size: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
}

/** Wait (polling) until `pred` holds; fails after 15 s. */
async function until(pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 750; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface Answer {
  status: number;
  code?: string;
  message?: string;
}

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  try {
    const e = JSON.parse(text).errors?.[0];
    return { status: res.status, code: e?.code, message: e?.message };
  } catch {
    return { status: res.status };
  }
}

/** Push a blob monolithically (`POST ?digest=`). */
async function pushBlob(s: ServeHandle, name: string, bytes: Uint8Array<ArrayBuffer>) {
  const digest = await sha256(bytes);
  const res = await fetch(`${s.url}/v2/${name}/blobs/uploads/?digest=${digest}`, {
    method: "POST",
    body: bytes,
  });
  return { digest, ...(await answer(res)) };
}

/** Push an image (config, one layer, manifest): the statuses of each step. */
async function pushRaw(s: ServeHandle, name: string, tag: string) {
  const configBytes = enc.encode(`{"tag":"${tag}"}`);
  const config = await pushBlob(s, name, configBytes);
  const layer = await pushBlob(s, name, random(1000));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: config.digest,
      size: configBytes.byteLength,
    },
    layers: [{
      mediaType: "application/vnd.oci.image.layer.v1.tar",
      digest: layer.digest,
      size: 1000,
    }],
  });
  const put = await fetch(`${s.url}/v2/${name}/manifests/${tag}`, {
    method: "PUT",
    headers: { "content-type": OCI_MANIFEST },
    body: manifest,
  });
  return { config, layer, manifest: await answer(put) };
}

/** Every file under a directory with its digest (symlinks by their target). */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const rel of await listTree(dir)) {
    const abs = `${dir}/${rel}`;
    const st = await Deno.lstat(abs);
    if (st.isSymlink) out.push(`${rel} -> ${await Deno.readLink(abs)}`);
    else if (st.isFile) out.push(`${rel} ${await sha256(await Deno.readFile(abs))}`);
    else out.push(rel);
  }
  return out;
}

async function cp(from: string, to: string): Promise<void> {
  const r = await new Deno.Command("cp", { args: ["-a", from, to] }).output();
  assert(r.success, `cp ${from} ${to}`);
}

Deno.test("serve: a repository's directories swapped for symlinks after start are refused", async () => {
  const work = await tempDir();
  const root = `${work}/root`;
  const lines: string[] = [];
  const s = await serve({ root, addr: "127.0.0.1:0", log: (l) => lines.push(l) });
  try {
    // each place a directory (or the index) belongs, under a repository pushed and cached
    const cases = [
      { name: "c0/app", swap: "c0" },
      { name: "c1/app", swap: "c1/app" },
      { name: "c2/app", swap: "c2/app/blobs" },
      { name: "c3/app", swap: "c3/app/blobs/sha256" },
      { name: "c4/app", swap: "c4/app/index.json" },
    ];
    for (const [i, c] of cases.entries()) {
      const first = await pushRaw(s, c.name, "1");
      assertEquals(first.manifest.status, 201, c.name);
      // the local user: a copy elsewhere (a real layout there), a symlink to it in its place
      const outside = `${work}/outside-${i}`;
      await Deno.mkdir(outside);
      await cp(`${root}/${c.swap}`, `${outside}/copy`);
      await Deno.rename(`${root}/${c.swap}`, `${work}/moved-${i}`);
      await Deno.symlink(`${outside}/copy`, `${root}/${c.swap}`);
      const before = await snapshot(outside);

      const second = await pushRaw(s, c.name, "2");
      assertEquals(second.manifest.status, 500, `${c.swap}: ${JSON.stringify(second)}`);
      assertEquals(second.manifest.code, "UNKNOWN");
      assertEquals(
        second.manifest.message,
        `refused: '${c.swap}' under the registry's root is a symlink, not ${
          c.swap.endsWith(".json") ? "a regular file" : "a directory"
        }`,
      );
      if (!c.swap.endsWith(".json")) {
        assertEquals([second.config.status, second.layer.status], [500, 500], c.swap);
        // reading through it is refused too
        const blob = await fetch(`${s.url}/v2/${c.name}/blobs/${first.layer.digest}`);
        assertEquals((await answer(blob)).status, 500, c.swap);
      }
      const tags = await fetch(`${s.url}/v2/${c.name}/tags/list`);
      assertEquals((await answer(tags)).status, 500, c.swap);
      // nothing written at the target
      assertEquals(await snapshot(outside), before, c.swap);
      // and the refusal is logged with its reason
      assert(
        lines.some((l) =>
          l.startsWith(`PUT /v2/${c.name}/manifests/2 500 `) &&
          l.includes(`error: refused: '${c.swap}' under the registry's root is a symlink`)
        ),
        lines.join("\n"),
      );
    }
    // a blob replaced by a symlink to a file elsewhere: not served, not followed when pushed again
    const pushed = await pushRaw(s, "blob/link", "1");
    const secret = `${work}/secret`;
    await Deno.writeTextFile(secret, "not for clients");
    const blobPath = `${root}/blob/link/blobs/sha256/${pushed.layer.digest.slice(7)}`;
    await Deno.remove(blobPath);
    await Deno.symlink(secret, blobPath);
    const got = await fetch(`${s.url}/v2/blob/link/blobs/${pushed.layer.digest}`);
    assertEquals((await answer(got)).status, 404);

    // other repositories are served as before; the catalog skips what is refused
    const ok = await pushRaw(s, "ok/app", "1");
    assertEquals(ok.manifest.status, 201);
    const tags = await fetch(`${s.url}/v2/ok/app/tags/list`);
    assertEquals(await tags.json(), { name: "ok/app", tags: ["1"] });
    const catalog = await (await fetch(`${s.url}/v2/_catalog`)).json();
    // (c0 and c1/app are symlinks; c2/app and c3/app are real, only their blobs are not)
    assertEquals(catalog.repositories, ["blob/link", "c2/app", "c3/app", "c4/app", "ok/app"]);
  } finally {
    await s.close();
  }
});

Deno.test("serve: parts of a repository's private index swapped for symlinks are refused", async () => {
  const work = await tempDir();
  const root = `${work}/root`;
  const lines: string[] = [];
  // index.json written only on the stop (so every repository still has its export to do then)
  const s = await serve({
    root,
    addr: "127.0.0.1:0",
    log: (l) => lines.push(l),
    exportIdleMs: 600_000,
  });
  try {
    // each place of the private index (`<repo>/.ocipkg-index`, see lib/serve/repo_index.ts)
    const cases = [
      { name: "p0/app", swap: "p0/app/.ocipkg-index", want: "a directory", get: "1", put: true },
      {
        name: "p1/app",
        swap: "p1/app/.ocipkg-index/tags",
        want: "a directory",
        get: "1",
        put: true,
      },
      // the base is read for a tag the overlay does not hold
      { name: "p2/app", swap: "p2/app/.ocipkg-index/tags.base", want: "a regular file", get: "x" },
      { name: "p3/app", swap: "p3/app/.ocipkg-index/tags/1", want: "a regular file", get: "1" },
    ];
    for (const [i, c] of cases.entries()) {
      assertEquals((await pushRaw(s, c.name, "1")).manifest.status, 201, c.name);
      const outside = `${work}/outside-${i}`;
      await Deno.mkdir(outside);
      await cp(`${root}/${c.swap}`, `${outside}/copy`);
      await Deno.rename(`${root}/${c.swap}`, `${work}/moved-${i}`);
      await Deno.symlink(`${outside}/copy`, `${root}/${c.swap}`);
      const before = await snapshot(outside);
      const refusal = `refused: '${c.swap}' under the registry's root is a symlink, not ${c.want}`;
      const get = await fetch(`${s.url}/v2/${c.name}/manifests/${c.get}`);
      assertEquals(await answer(get), { status: 500, code: "UNKNOWN", message: refusal }, c.swap);
      const tags = await fetch(`${s.url}/v2/${c.name}/tags/list`);
      assertEquals(await answer(tags), { status: 500, code: "UNKNOWN", message: refusal }, c.swap);
      if (c.put) {
        const put = await pushRaw(s, c.name, "2");
        assertEquals(put.manifest, { status: 500, code: "UNKNOWN", message: refusal }, c.swap);
      }
      assertEquals(await snapshot(outside), before, c.swap); // nothing written there
    }
  } finally {
    await s.close(); // their exports fail (logged), the stop goes on
  }
  assert(lines.some((l) => l.startsWith("export of 'p0/app' failed: refused:")), lines.join("\n"));
});

Deno.test("serve: the uploads directory swapped for a symlink after start is refused", async () => {
  const work = await tempDir();
  const root = `${work}/root`;
  const s = await serve({ root, addr: "127.0.0.1:0", log: () => {} });
  try {
    const first = await pushRaw(s, "org/app", "1");
    assertEquals(first.manifest.status, 201);
    // a session opened before the swap
    const post = await fetch(`${s.url}/v2/org/app/blobs/uploads/`, { method: "POST" });
    await post.body?.cancel();
    const session = new URL(post.headers.get("location")!, s.url);

    const target = `${work}/target`;
    await Deno.mkdir(target);
    await Deno.rename(`${root}/.uploads`, `${work}/uploads-moved`);
    await Deno.symlink(target, `${root}/.uploads`);
    const refusal = "refused: '.uploads' under the registry's root is a symlink, not a directory";

    // a new session, a monolithic upload, a mount: refused, nothing made at the target
    const open = await fetch(`${s.url}/v2/org/app/blobs/uploads/`, { method: "POST" });
    assertEquals(await answer(open), { status: 500, code: "UNKNOWN", message: refusal });
    const mono = await pushBlob(s, "org/app", random(5000));
    assertEquals([mono.status, mono.message], [500, refusal]);
    const mount = await fetch(
      `${s.url}/v2/org/other/blobs/uploads/?mount=${first.layer.digest}&from=org/app`,
      { method: "POST" },
    );
    assertEquals(await answer(mount), { status: 500, code: "UNKNOWN", message: refusal });
    // the session opened before: finishing it is refused, no blob is stored
    const bytes = random(3000);
    const digest = await sha256(bytes);
    session.searchParams.set("digest", digest);
    const put = await fetch(session, { method: "PUT", body: bytes });
    assertEquals(await answer(put), { status: 500, code: "UNKNOWN", message: refusal });
    assertEquals(await listTree(target), []);
    const stored = await fetch(`${s.url}/v2/org/app/blobs/${digest}`, { method: "HEAD" });
    assertEquals(stored.status, 404);

    // reads go on
    const blob = await fetch(`${s.url}/v2/org/app/blobs/${first.layer.digest}`);
    assertEquals((await blob.arrayBuffer()).byteLength, 1000);
    // the directory put back: pushes go on
    await Deno.remove(`${root}/.uploads`);
    await Deno.mkdir(`${root}/.uploads`);
    assertEquals((await pushRaw(s, "org/app", "2")).manifest.status, 201);
    assertEquals(await listTree(target), []);
  } finally {
    await s.close();
  }
  assertEquals(await listTree(`${root}/.uploads`), []);
});

Deno.test("serve: the root itself swapped for a symlink after start is refused", async () => {
  const work = await tempDir();
  const root = `${work}/root`;
  const s = await serve({ root, addr: "127.0.0.1:0", log: () => {} });
  try {
    assertEquals((await pushRaw(s, "org/app", "1")).manifest.status, 201);
    await cp(root, `${work}/copy`);
    await Deno.rename(root, `${work}/moved`);
    await Deno.symlink(`${work}/copy`, root);
    const before = await snapshot(`${work}/copy`);
    const push = await pushRaw(s, "org/app", "2");
    const refusal = "refused: the registry's root is now a symlink";
    assertEquals(push.manifest, { status: 500, code: "UNKNOWN", message: refusal });
    assertEquals([push.config.status, push.layer.status], [500, 500]);
    const tags = await fetch(`${s.url}/v2/org/app/tags/list`);
    assertEquals(await answer(tags), { status: 500, code: "UNKNOWN", message: refusal });
    assertEquals(await snapshot(`${work}/copy`), before);
  } finally {
    await s.close();
  }
});

Deno.test("serve: option files that are not small regular files are refused in one line, exit 2", async () => {
  const work = await tempDir();
  const fifo = `${work}/fifo`;
  assert((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
  const big = `${work}/big`;
  await Deno.writeFile(big, new Uint8Array(0));
  await Deno.truncate(big, 2 << 20); // sparse: 2 MiB of nothing on disk
  const cert = `${work}/cert.pem`;
  await Deno.writeTextFile(cert, "-----BEGIN CERTIFICATE-----\n");
  const cases: [string[], string][] = [
    [["--htpasswd", "/dev/zero"], "htpasswd file '/dev/zero' (--htpasswd) is a character device"],
    [
      ["--tls-cert", cert, "--tls-key", "/dev/zero"],
      "TLS key '/dev/zero' (--tls-key) is a character device",
    ],
    [["--htpasswd", fifo], `htpasswd file '${fifo}' (--htpasswd) is a fifo`],
    [["--tls-cert", fifo, "--tls-key", cert], `TLS certificate '${fifo}' (--tls-cert) is a fifo`],
    [
      ["--htpasswd", big],
      `htpasswd file '${big}' (--htpasswd) is 2097152 bytes, over the 1048576-byte cap`,
    ],
    [["--tls-cert", cert, "--tls-key", work], `TLS key '${work}' (--tls-key) is a directory`],
  ];
  await Promise.all(cases.map(async ([flags, expected], i) => {
    const root = `${work}/root-${i}`;
    const out = await new Deno.Command(Deno.execPath(), {
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
        ...flags,
      ],
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(20_000), // a hang is a failure, not a stuck suite
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 2, `${flags.join(" ")}: ${stderr}`);
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assertStringIncludes(stderr, expected);
    assertEquals(new TextDecoder().decode(out.stdout), ""); // never listened
    await assertRejects(() => Deno.lstat(root), Deno.errors.NotFound); // nothing made
  }));
  // the library refuses the same way
  await assertRejects(
    () => serve({ root: `${work}/lib-root`, addr: "127.0.0.1:0", htpasswd: fifo }),
    UsageError,
    "is a fifo, not a regular file",
  );
});

// a small tmpfs is the one honest full disk; mounting needs root (skipped otherwise)
async function mountTmpfs(dir: string, size: string): Promise<boolean> {
  try {
    const r = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.success;
  } catch {
    return false;
  }
}
async function umount(dir: string): Promise<void> {
  await new Deno.Command("umount", { args: [dir], stdout: "null", stderr: "null" }).output();
}
const canMount = await (async () => {
  const dir = await Deno.makeTempDir();
  const ok = await mountTmpfs(dir, "1m");
  if (ok) await umount(dir);
  await Deno.remove(dir);
  return ok;
})();

Deno.test({
  name: "serve: a push to a full disk reports the registry's error, nothing is left on either side",
  ignore: !canMount,
  fn: async () => {
    const work = await tempDir();
    const mnt = `${work}/mnt`;
    await Deno.mkdir(mnt);
    assert(await mountTmpfs(mnt, "8m"));
    try {
      const lines: string[] = [];
      const s = await serve({
        root: `${mnt}/root`,
        addr: "127.0.0.1:0",
        log: (l) => lines.push(l),
      });
      try {
        await Deno.mkdir(`${work}/pkg`);
        await Deno.writeFile(`${work}/pkg/big.bin`, random(12 << 20));
        const image = `${s.addr}/full/app:1`;
        const packed = await packDirectory(`${work}/pkg`, `${work}/p.tar`, { name: image });
        // streamed (one PUT) and chunked (PATCH) uploads alike
        for (const options of [{}, { chunkSize: 2 << 20 }]) {
          const e = await assertRejects(() => pushImage(`${work}/p.tar`, image, options));
          assertStringIncludes(e.message, "answered 507 UNKNOWN");
          assertStringIncludes(e.message, "out of disk space (ENOSPC)");
          assert(!e.message.includes("size mismatch"), e.message);
        }
        assert(
          !(await fetch(`${s.url}/v2/full/app/manifests/${packed.digest}`, { method: "HEAD" })).ok,
        );
        const failed = lines.filter((l) => / 507 /.test(l));
        assert(failed.length >= 2, lines.join("\n"));
        for (const l of failed) {
          // bytes received (up to the full disk), nothing sent but the error, the reason
          const m = /^(PUT|PATCH) \S+ 507 (\d+) (\d+) \d+ms error: the registry could not store/
            .exec(l);
          assert(m && Number(m[2]) > 0 && Number(m[3]) > 0, l);
        }
      } finally {
        await s.close();
      }
      // nothing half-written: no upload left, no layer blob, the space is free again
      assertEquals(await listTree(`${mnt}/root/.uploads`), []);
      const blobs = await listTree(`${mnt}/root/full/app/blobs/sha256`).catch(() => []);
      for (const b of blobs) {
        assert((await Deno.stat(`${mnt}/root/full/app/blobs/sha256/${b}`)).size < 1 << 20);
      }
    } finally {
      await umount(mnt);
    }
  },
});

Deno.test("serve: the request log has bytes received and sent and the whole request's duration", async () => {
  const work = await tempDir();
  const lines: string[] = [];
  const s = await serve({ root: `${work}/root`, addr: "127.0.0.1:0", log: (l) => lines.push(l) });
  try {
    const size = 48 << 20; // more than the socket buffers hold: the body is sent as it is read
    const pushed = await pushBlob(s, "log/app", random(size));
    assertEquals(pushed.status, 201);
    const path = `/v2/log/app/blobs/${pushed.digest}`;
    assert(
      lines.some((l) =>
        new RegExp(`^POST /v2/log/app/blobs/uploads/\\?digest=\\S+ 201 ${size} 0 \\d+ms$`).test(l)
      ),
      lines.join("\n"),
    );
    const gets = () => lines.filter((l) => l.startsWith(`GET ${path} `));

    // a download is logged when its body has been sent, not when its headers were
    const res = await fetch(`${s.url}${path}`);
    assertEquals(res.status, 200);
    await new Promise((r) => setTimeout(r, 300));
    assertEquals(gets(), []);
    assertEquals((await res.arrayBuffer()).byteLength, size);
    await until(() => gets().length === 1, "the GET's log line");
    assert(new RegExp(`^GET ${path} 200 0 ${size} \\d+ms$`).test(gets()[0]!), gets()[0]);

    // a download the client breaks off (it closes the connection) says so, and how far it got
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    await conn.write(enc.encode(`GET ${path} HTTP/1.1\r\nhost: x\r\nrange: bytes=0-\r\n\r\n`));
    await conn.read(new Uint8Array(65536));
    conn.close();
    await until(() => gets().length === 2, "the broken-off GET's log line");
    const broken = / 206 0 (\d+) \d+ms \(response broke off\)$/.exec(gets()[1]!);
    assert(broken && Number(broken[1]) < size, gets()[1]);

    // HEAD sends no body; a 4xx has no reason appended
    await (await fetch(`${s.url}${path}`, { method: "HEAD" })).body?.cancel();
    await until(() => lines.some((l) => l.startsWith(`HEAD ${path} `)), "the HEAD's log line");
    assert(
      lines.some((l) => new RegExp(`^HEAD ${path} 200 0 0 \\d+ms$`).test(l)),
      lines.join("\n"),
    );
    const missing = `/v2/log/app/blobs/sha256:${"0".repeat(64)}`;
    const r404 = await fetch(`${s.url}${missing}`);
    const body = await r404.arrayBuffer();
    await until(() => lines.some((l) => l.startsWith(`GET ${missing} `)), "the 404's log line");
    assert(
      lines.some((l) => new RegExp(`^GET ${missing} 404 0 ${body.byteLength} \\d+ms$`).test(l)),
      lines.join("\n"),
    );
  } finally {
    await s.close();
  }
});

Deno.test("serve: a request body cut off by its connection's end is logged as such, not as a server error", async (t) => {
  const work = await tempDir();
  const lines: string[] = [];
  const opts = { addr: "127.0.0.1:0", log: (l: string) => lines.push(l), stallMs: 300 };
  let s = await serve({ root: `${work}/root`, ...opts });
  /** A session's URL path. */
  const session = async () => {
    const res = await fetch(`${s.url}/v2/cut/app/blobs/uploads/`, { method: "POST" });
    assertEquals(res.status, 202);
    return res.headers.get("location")!;
  };
  /** Send a request's head and 1000 of the 100000 body bytes it declares. */
  const partial = async (method: string, path: string, headers = "") => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    await conn.write(
      enc.encode(
        `${method} ${path} HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n${headers}\r\n`,
      ),
    );
    await conn.write(new Uint8Array(1000));
    return conn;
  };
  /** Its log line is `METHOD PATH STATUS RECEIVED 0 NNms (WHY)`. */
  const logged = async (method: string, path: string, status: number, got: number, why: string) => {
    const head = `${method} ${path} `;
    await until(() => lines.some((l) => l.startsWith(head)), `the log line of ${head}`);
    const line = lines.find((l) => l.startsWith(head))!;
    const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    assert(
      new RegExp(`^${esc(head)}${status} ${got} 0 \\d+ms \\(${esc(why)}\\)$`).test(line),
      line,
    );
  };
  /** Wait until the session holds the bytes sent so far: the request is being answered. */
  const received = async (path: string) => {
    let range: string | null = null;
    await (async () => {
      for (let i = 0; i < 750 && range !== "0-999"; i++) {
        const res = await fetch(`${s.url}${path}`);
        await res.body?.cancel();
        range = res.headers.get("range");
        if (range !== "0-999") await new Promise((r) => setTimeout(r, 20));
      }
    })();
    assertEquals(range, "0-999");
  };
  try {
    await t.step("the client closes the connection mid-body: 499", async () => {
      const why = "the client closed the connection before the request body ended";
      const patch = await session();
      (await partial("PATCH", patch)).close();
      await logged("PATCH", patch, 499, 1000, why);
      const put = "/v2/cut/app/manifests/v1"; // a manifest body is read whole, not counted
      (await partial("PUT", put, `content-type: ${OCI_MANIFEST}\r\n`)).close();
      await logged("PUT", put, 499, 0, why);
      const post = `/v2/cut/app/blobs/uploads/?digest=sha256:${"a".repeat(64)}`;
      (await partial("POST", post)).close();
      await logged("POST", post, 499, 1000, why);
      // the session went with its request
      assertEquals((await fetch(`${s.url}${patch}`)).status, 404);
    });

    await t.step("the front cuts a stalled body: 408", async () => {
      const patch = await session();
      const conn = await partial("PATCH", patch);
      try {
        await logged("PATCH", patch, 408, 1000, "cut: the request body stalled");
      } finally {
        conn.close();
      }
    });

    await t.step("a stop cuts a body in flight: 503, saying so", async () => {
      const patch = await session();
      const conn = await partial("PATCH", patch);
      await received(patch);
      await s.close({ graceMs: 0 });
      conn.close();
      await logged(
        "PATCH",
        patch,
        503,
        1000,
        "cut: the registry stopped before the request body ended",
      );
      s = await serve({ root: `${work}/root`, ...opts });
    });
    // none of them was logged as a failure of the server
    assertEquals(lines.filter((l) => / 500 |error:/.test(l)), []);
  } finally {
    await s.close();
  }
});
