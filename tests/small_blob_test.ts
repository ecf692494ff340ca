// A small blob (under 1 MiB) is read whole into one buffer, resumed with Range,
// verified with one hash before fetch returns, and written by a layout in one
// call (BlobDownloads.read, takeBytes, writeVerified): attacked here as a
// hostile registry and as a library user would.
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import { FormatError, OciDir, pullImage, RegistryTarget, VerificationError } from "../mod.ts";
import { type Descriptor, digestOf, encodeJson, OCI_MANIFEST } from "../lib/oci/mod.ts";
import { bytesStream, RegistryError } from "./_internal.ts";
import { type FakeRegistry, pause, startFakeRegistry, startHttp } from "./_hostile_server.ts";
import { CLI, listTree, tempDir } from "./_helpers.ts";

const LAYER = "application/vnd.oci.image.layer.v1.tar";
const FAST = { credential: null, backoffMs: 1, maxAttempts: 1 } as const;

function blobOf(size: number, seed = 1): { bytes: Uint8Array<ArrayBuffer>; desc: Descriptor } {
  const bytes = new Uint8Array(size).map((_, i) => ((i * 7919 + seed) >> 3) & 0xff);
  return { bytes, desc: { mediaType: LAYER, digest: digestOf(bytes), size } };
}

type Answer = (n: number, range: string | undefined) => Response | Promise<Response>;

/** A registry serving one repository's blobs through `answer` (n: the GET's number, from 0). */
async function withBlobServer(
  answer: Answer,
  fn: (t: RegistryTarget, host: string, gets: (string | undefined)[]) => Promise<void>,
  opts: ConstructorParameters<typeof RegistryTarget>[2] = {},
): Promise<void> {
  const gets: (string | undefined)[] = [];
  const server = startHttp((req, url) => {
    if (url.pathname === "/v2/") return new Response("{}");
    if (req.method === "GET" && url.pathname.startsWith("/v2/org/x/blobs/")) {
      const range = req.headers.get("range") ?? undefined;
      gets.push(range);
      return answer(gets.length - 1, range);
    }
    return new Response("not found", { status: 404 });
  });
  const t = new RegistryTarget(server.host, "org/x", { ...FAST, ...opts });
  try {
    await fn(t, server.host, gets);
  } finally {
    await t.close();
    await server.stop();
  }
}

/** A 206 holding bytes `from`.. of `b`. */
const partial = (b: Uint8Array<ArrayBuffer>, from: number, end = b.length - 1, total = b.length) =>
  new Response(b.slice(from, end + 1), {
    status: 206,
    headers: { "content-range": `bytes ${from}-${end}/${total}` },
  });

/** A body of `head`, then an error (a dropped connection). */
const dropped = (head: Uint8Array<ArrayBuffer>) =>
  new Response(
    new ReadableStream({
      start(c) {
        c.enqueue(head);
      },
      pull(c) {
        c.error(new Error("connection reset"));
      },
    }),
  );

function oneLineNaming(e: unknown, ...names: string[]): void {
  assert(e instanceof Error, `${e}`);
  assert(!e.message.includes("\n"), `one line: ${e.message}`);
  for (const n of names) assertStringIncludes(e.message, n);
}

async function fetchAll(t: RegistryTarget, desc: Descriptor): Promise<Uint8Array> {
  return new Uint8Array(await new Response(await t.fetch(desc)).arrayBuffer());
}

/**
 * An answer to a GET of a 5000-byte blob from the `Range` asked (none: its start) that sends 100
 * bytes and then stalls for ever (206 with its Content-Range for a resumption).
 */
function stallsAfter100(bytes: Uint8Array, range: string | null | undefined): Response {
  const from = range ? Number(range.slice(6, -1)) : 0;
  return new Response(
    new ReadableStream({
      start(c) {
        c.enqueue(bytes.slice(from, from + 100));
      },
      pull: () => new Promise(() => {}),
    }),
    range ? { status: 206, headers: { "content-range": `bytes ${from}-4999/5000` } } : {},
  );
}

const resumedWrong: [string, (b: Uint8Array<ArrayBuffer>, from: number) => Response][] = [
  ["a 206 starting elsewhere", (b, from) => partial(b, from - 1)],
  ["a 206 of another total", (b, from) => partial(b, from, b.length - 1, b.length + 1)],
  ["a 206 without Content-Range", (b, from) => new Response(b.slice(from), { status: 206 })],
  ["a 200 of another length", (b) => {
    const longer = new Uint8Array(b.length + 1);
    longer.set(b);
    return new Response(longer, { headers: { "content-length": String(longer.length) } });
  }],
];
for (const [name, wrong] of resumedWrong) {
  Deno.test(`small blob: a resumption answered with ${name} is refused at once`, async () => {
    const { bytes, desc } = blobOf(5000);
    await withBlobServer(
      (n, range) =>
        n === 0 ? dropped(bytes.slice(0, 1000)) : wrong(bytes, Number(range!.slice(6, -1))),
      async (t, host, gets) => {
        const e = await assertRejects(() => t.fetch(desc));
        assert(e instanceof RegistryError || e instanceof VerificationError, `${e}`);
        oneLineNaming(e, `blob ${desc.digest} of ${host}/org/x`, "refused");
        assertEquals(gets, [undefined, "bytes=1000-"]);
      },
    );
  });
}

// read whole (small) or streamed (large): the same registry failure, not a blob's
for (const size of [5000, 2 * 1024 * 1024]) {
  Deno.test(`small blob: a body of ${size} bytes that ends short every time gives up after the resumptions allowed`, async () => {
    const { bytes, desc } = blobOf(size);
    await withBlobServer(
      (_n, range) => {
        const from = range ? Number(range.slice(6, -1)) : 0;
        // each answer claims the rest of the blob, and ends (cleanly) after 10 bytes
        return range
          ? new Response(bytes.slice(from, from + 10), {
            status: 206,
            headers: { "content-range": `bytes ${from}-${size - 1}/${size}` },
          })
          : new Response(bytes.slice(0, 10));
      },
      async (t, host, gets) => {
        const e = await assertRejects(() => fetchAll(t, desc), RegistryError);
        assert(!(e instanceof VerificationError), `${e}`);
        oneLineNaming(
          e,
          `blob ${desc.digest} of ${host}/org/x`,
          `${host} sent 40 of ${size} bytes, each answer ending early; gave up after 3 resumed downloads`,
        );
        assertEquals(gets, [undefined, "bytes=10-", "bytes=20-", "bytes=30-"]);
      },
      { resumeAttempts: 3 },
    );
  });
}

Deno.test("small blob: a body far longer than its descriptor is cut at the first extra byte", async () => {
  const { bytes, desc } = blobOf(5000);
  let sent = 0;
  await withBlobServer(
    () =>
      new Response(
        new ReadableStream({
          pull(c) {
            const chunk = sent === 0 ? bytes : new Uint8Array(64 << 10);
            sent += chunk.byteLength;
            c.enqueue(chunk);
          },
        }),
      ),
    async (t, host) => {
      const e = await assertRejects(() => t.fetch(desc), VerificationError);
      oneLineNaming(e, `blob ${desc.digest} of ${host}/org/x`, "size exceeds");
      assert(sent < 4 << 20, `the server sent ${sent} bytes`);
    },
  );
});

Deno.test("small blob: a body that stalls gives up after its stalls' shared deadline", async () => {
  const { bytes, desc } = blobOf(5000);
  await withBlobServer(
    (_n, range) => {
      return stallsAfter100(bytes, range);
    },
    async (t, host, gets) => {
      // the first stall is resumed, the second passes the 1.5 × idle timeout they share
      const e = await assertRejects(() => t.fetch(desc), RegistryError);
      oneLineNaming(
        e,
        `blob ${desc.digest} of ${host}/org/x`,
        "stalled",
        "gave up after 1 resumed",
      );
      assertEquals(gets, [undefined, "bytes=100-"]);
    },
    { idleTimeoutMs: 150, resumeAttempts: 5 },
  );
});

Deno.test("small blob: sizes 0, 1 MiB - 1 and 1 MiB, whole and resumed (206 or 200), into an oci-dir", async () => {
  for (const size of [0, (1 << 20) - 1, 1 << 20]) {
    const { bytes, desc } = blobOf(size, size);
    // whole; dropped halfway and resumed with a 206; dropped and answered 200 from the start
    for (const answer of ["whole", "206", "200"]) {
      await withBlobServer(
        (n, range) => {
          if (answer !== "whole" && n % 2 === 0 && size > 0) {
            return dropped(bytes.slice(0, size >> 1));
          }
          return range && answer === "206"
            ? partial(bytes, Number(range.slice(6, -1)))
            : new Response(bytes, { headers: { "content-length": String(size) } });
        },
        async (t, _host, gets) => {
          assertEquals(digestOf(await fetchAll(t, desc)), desc.digest);
          const resumed = answer !== "whole" && size > 0;
          assertEquals(gets, resumed ? [undefined, `bytes=${size >> 1}-`] : [undefined]);
          const dir = join(await tempDir(), "out");
          const out = await OciDir.open(dir, { create: true });
          await out.push(desc, await t.fetch(desc));
          await out.close();
          assertEquals(
            digestOf(await Deno.readFile((await OciDir.open(dir)).blobPath(desc.digest))),
            desc.digest,
          );
        },
      );
    }
  }
});

Deno.test("small blob: a descriptor whose size is a lie", async () => {
  const { bytes, desc } = blobOf(10);
  await withBlobServer(
    (_n, range) => range ? new Response(null, { status: 416 }) : new Response(bytes),
    async (t, host, gets) => {
      // 900 KiB claimed, 10 bytes sent: the rest asked for, and refused
      const e = await assertRejects(() => t.fetch({ ...desc, size: 900 << 10 }), RegistryError);
      oneLineNaming(e, `blob ${desc.digest} of ${host}/org/x`, "416");
      assertEquals(gets, [undefined, "bytes=10-"]);
      // a size that is no byte count (a library caller's: manifests are validated) asks nothing
      for (const size of [-1, NaN, 1.5, Infinity]) {
        const e2 = await assertRejects(() => t.fetch({ ...desc, size }), FormatError);
        oneLineNaming(e2, `blob ${desc.digest} of ${host}/org/x`, "invalid size");
      }
      assertEquals(gets.length, 2);
    },
  );
});

Deno.test("small blob: many at once, each dropped or stalled once, all exact (the spare read buffers stay whole)", async () => {
  const blobs = Array.from({ length: 40 }, (_, i) => blobOf(1000 + i * 9000, i));
  const byDigest = new Map(blobs.map((b) => [b.desc.digest, b.bytes]));
  const seen = new Set<string>();
  const server = startHttp((req, url) => {
    const digest = url.pathname.split("/").pop()!;
    const bytes = byDigest.get(digest)!;
    const range = req.headers.get("range");
    if (!seen.has(digest)) {
      seen.add(digest);
      // half of them dropped, half stalled (the read in flight is abandoned, its buffer with it)
      const head = bytes.slice(0, bytes.length >> 1);
      if (bytes.length % 2 === 0) return dropped(head);
      return new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(head);
          },
          pull: () => pause(5000, server.signal),
        }),
      );
    }
    return range ? partial(bytes, Number(range.slice(6, -1))) : new Response(bytes);
  });
  const t = new RegistryTarget(server.host, "org/x", { ...FAST, idleTimeoutMs: 150 });
  try {
    for (let round = 0; round < 2; round++) {
      const got = await Promise.all(blobs.map((b) => fetchAll(t, b.desc)));
      got.forEach((g, i) => assertEquals(digestOf(g), blobs[i]!.desc.digest));
    }
  } finally {
    await t.close();
    await server.stop();
  }
});

// A caller that changes its bytes while a push of them runs (a bug of its own) must not get a
// blob stored under a digest it does not have: the layout writes the very bytes it hashed.
for (const size of [3000, (1 << 20) + 5]) {
  Deno.test(`small blob: a pushed bytesStream of ${size} bytes changed as it is hashed`, async () => {
    const bytes = new Uint8Array(size).fill(7);
    const desc = { mediaType: LAYER, digest: digestOf(bytes), size };
    const dir = join(await tempDir(), "out");
    const out = await OciDir.open(dir, { create: true });
    // the caller changes its bytes as soon as a hash of them has begun
    const digest = crypto.subtle.digest.bind(crypto.subtle);
    crypto.subtle.digest = (alg, data) => {
      const p = digest(alg, data);
      bytes.fill(9);
      return p;
    };
    try {
      await out.push(desc, bytesStream(bytes));
    } finally {
      crypto.subtle.digest = digest;
    }
    await out.close();
    const written = await Deno.readFile((await OciDir.open(dir)).blobPath(desc.digest));
    assertEquals(digestOf(written), desc.digest);
  });
}

Deno.test("small blob: a mirror answering other bytes is skipped for the registry", async () => {
  const { bytes, desc } = blobOf(4000);
  const wrong = bytes.slice();
  wrong[100]! ^= 1;
  for (
    const mirrorAnswer of [
      () => new Response(wrong), // other bytes of the same length
      () => new Response(bytes.slice(0, 10)), // short, every time
      () => new Response(bytes, { headers: { "docker-content-digest": digestOf(wrong) } }),
    ]
  ) {
    const mirror = startHttp(mirrorAnswer);
    const logged: string[] = [];
    try {
      await withBlobServer(
        () => new Response(bytes),
        async (t, _host, gets) => {
          assertEquals(digestOf(await fetchAll(t, desc)), desc.digest);
          assertEquals(gets.length, 1); // the registry, once
          assertEquals(logged.length, 1, logged.join("\n"));
          assertStringIncludes(logged[0]!, `mirror ${mirror.host} skipped: `);
          assertStringIncludes(logged[0]!, desc.digest);
        },
        {
          mirrors: [{ host: mirror.host, resolve: false }],
          debug: (l) => {
            if (l.startsWith("mirror")) logged.push(l);
          },
        },
      );
    } finally {
      await mirror.stop();
    }
  }
});

/** An image of `n` small layers in a fake registry, tagged `org/x:1`. */
function smallImage(reg: FakeRegistry, n: number): Descriptor[] {
  const config = new TextEncoder().encode("{}");
  const cfg = { mediaType: "application/vnd.oci.empty.v1+json", ...blobDesc(config) };
  reg.blobs.set(cfg.digest, { bytes: config, mediaType: cfg.mediaType });
  const layers = Array.from({ length: n }, (_, i) => {
    const b = blobOf(500 + i * 20_000, i);
    reg.blobs.set(b.desc.digest, { bytes: b.bytes, mediaType: LAYER });
    return b.desc;
  });
  const manifest = encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: cfg, layers });
  const m = { mediaType: OCI_MANIFEST, ...blobDesc(manifest) };
  reg.blobs.set(m.digest, { bytes: new Uint8Array(manifest), mediaType: OCI_MANIFEST });
  reg.tags.set("org/x:1", m.digest);
  return layers;
}

function blobDesc(b: Uint8Array) {
  return { digest: digestOf(b), size: b.byteLength };
}

Deno.test("small blob: a pull of many small layers, one of them wrong, leaves nothing behind", async () => {
  const reg = startFakeRegistry();
  try {
    const layers = smallImage(reg, 30);
    const bad = reg.blobs.get(layers[17]!.digest)!;
    bad.bytes = bad.bytes.slice();
    bad.bytes[3]! ^= 1;
    const tmp = await tempDir();
    const out = join(tmp, "pulled");
    const e = await assertRejects(
      () => pullImage(`${reg.host}/org/x:1`, `oci:${out}`, FAST),
      VerificationError,
    );
    oneLineNaming(e, layers[17]!.digest, `${reg.host}/org/x`, "digest mismatch");
    assertEquals([...Deno.readDirSync(tmp)], []);
    // the next pull, with the blob mended, is whole (no spare buffer was spoiled)
    reg.blobs.get(layers[17]!.digest)!.bytes[3]! ^= 1;
    await pullImage(`${reg.host}/org/x:1`, `oci:${out}`, FAST);
    const dir = await OciDir.open(out);
    for (const l of layers) {
      assertEquals(digestOf(await Deno.readFile(dir.blobPath(l.digest))), l.digest);
    }
  } finally {
    await reg.stop();
  }
});

Deno.test("small blob: concurrent pulls of one image into one oci-dir", async () => {
  const reg = startFakeRegistry();
  try {
    const layers = smallImage(reg, 12);
    const out = join(await tempDir(), "pulled");
    await Promise.all(
      Array.from({ length: 4 }, () => pullImage(`${reg.host}/org/x:1`, `oci:${out}`, FAST)),
    );
    const dir = await OciDir.open(out);
    for (const l of layers) {
      assertEquals(digestOf(await Deno.readFile(dir.blobPath(l.digest))), l.digest);
    }
    const names = [...Deno.readDirSync(join(out, "blobs", "sha256"))].map((e) => e.name);
    assertEquals(names.filter((n) => !/^[0-9a-f]{64}$/.test(n)), []); // no temp file left
  } finally {
    await reg.stop();
  }
});

Deno.test("small blob: a mirror's stalls share one deadline with the resumptions after its first answer", async () => {
  const { bytes, desc } = blobOf(5000);
  const mirrorGets: (string | null)[] = [];
  const mirror = startHttp((req) => {
    const range = req.headers.get("range");
    mirrorGets.push(range);
    return stallsAfter100(bytes, range);
  });
  try {
    await withBlobServer(
      () => new Response(bytes),
      async (t, _host, gets) => {
        assertEquals(digestOf(await fetchAll(t, desc)), desc.digest);
        // the first stall is resumed, the second passes the 1.5 × idle timeout they share
        assertEquals(mirrorGets, [null, "bytes=100-"]);
        assertEquals(gets.length, 1);
      },
      { mirrors: [{ host: mirror.host, resolve: false }], idleTimeoutMs: 150 },
    );
  } finally {
    await mirror.stop();
  }
});

Deno.test("small blob: a body dripping under the speed limit ends the download at once", async () => {
  const { bytes, desc } = blobOf(50_000);
  await withBlobServer(
    () => {
      let at = 0;
      return new Response(
        new ReadableStream({
          async pull(c) {
            await new Promise((r) => setTimeout(r, 20));
            c.enqueue(bytes.slice(at, at + 2));
            at += 2;
          },
        }),
      );
    },
    async (t, host, gets) => {
      const e = await assertRejects(() => t.fetch(desc), RegistryError);
      oneLineNaming(e, `blob ${desc.digest}`, host, "below the speed limit");
      assertEquals(gets.length, 1); // too slow is final: not resumed
    },
    { speedLimit: 1000, speedTimeMs: 200 },
  );
});

Deno.test("small blob: Ctrl-C amid many small-blob reads exits 130 and leaves no temp file", async () => {
  const stalled: string[] = [];
  const reg = startFakeRegistry({
    route: (req, url) => {
      const digest = url.pathname.split("/").pop()!;
      if (req.method !== "GET" || !stalled.includes(digest)) return undefined;
      const b = reg.blobs.get(digest)!.bytes;
      return new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(b.slice(0, 100));
          },
          pull: () => pause(30_000, reg.signal),
        }),
      );
    },
  });
  try {
    const layers = smallImage(reg, 24);
    stalled.push(...layers.slice(-3).map((l) => l.digest));
    const tmp = await tempDir();
    const out = join(tmp, "pulled");
    const env = { OCIPKG_AUTH_FILE: join(tmp, "auth.json"), OCIPKG_CONFIG: join(tmp, "none.json") };
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        CLI,
        "pull",
        `${reg.host}/org/x:1`,
        "-o",
        out,
        "--format",
        "dir",
      ],
      env,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // interrupt once the stalled blobs are asked for (the others are read, or being read)
    for (let i = 0; i < 400; i++) {
      if (stalled.every((d) => reg.requests.some((r) => r.path.endsWith(d)))) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    await new Promise((r) => setTimeout(r, 100));
    // the blobs read already wait in temp files for the commit
    assert((await listTree(tmp)).some((p) => p.includes(".tmp")), "no blob was written yet");
    child.kill("SIGINT");
    const r = await child.output();
    assertEquals(new TextDecoder().decode(r.stderr).trim(), "error: interrupted");
    assertEquals(r.code, 130);
    const left = await listTree(tmp);
    assert(!left.some((p) => p.includes(".tmp")), left.join(" "));
  } finally {
    await reg.stop();
  }
});

Deno.test("small blob: a fetched stream given to two layouts: the second fails, writes nothing", async () => {
  const { bytes, desc } = blobOf(3000);
  await withBlobServer(() => new Response(bytes), async (t) => {
    const s = await t.fetch(desc); // vouched for: its bytes were verified
    const tmp = await tempDir();
    const a = await OciDir.open(join(tmp, "a"), { create: true });
    const b = await OciDir.open(join(tmp, "b"), { create: true });
    await a.push(desc, s);
    await a.close();
    const e = await assertRejects(() => b.push(desc, s), VerificationError);
    oneLineNaming(e, desc.digest, "size mismatch");
    await b.close();
    assertEquals(digestOf(await Deno.readFile(a.blobPath(desc.digest))), desc.digest);
    assertEquals(await Deno.stat(b.blobPath(desc.digest)).catch(() => undefined), undefined);
  });
});
