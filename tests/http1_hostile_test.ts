// Large blob downloads (16 MiB or more: over http1Fetch) from hostile raw servers: exact
// bytes for each answer, the download (BlobDownloads) reading them as a pull does.
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { RegistryClient, RegistryTimeoutError } from "./_internal.ts";
import { have } from "./_helpers.ts";
import { startRaw } from "./_hostile_server.ts";
import { Repository } from "../lib/transport/registry/repository.ts";
import { BlobDownloads } from "../lib/transport/registry/download.ts";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";

const enc = new TextEncoder();
const MiB = 1 << 20;

/** A random blob of `size` bytes and its descriptor. */
function randomBlob(size: number) {
  const bytes = new Uint8Array(size);
  for (let o = 0; o < size; o += 65536) {
    crypto.getRandomValues(bytes.subarray(o, Math.min(size, o + 65536)));
  }
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  return { bytes, desc: { mediaType: "application/octet-stream", digest, size } };
}

const BLOB = randomBlob(17 * MiB + 5);

async function writeAll(c: Deno.Conn, b: Uint8Array): Promise<void> {
  for (let o = 0; o < b.byteLength;) o += await c.write(b.subarray(o));
}

/** The start of a request's `Range: bytes=N-`, or undefined. */
function rangeStart(head: string): number | undefined {
  const m = /\r\nrange: bytes=(\d+)-/i.exec(head);
  return m ? Number(m[1]) : undefined;
}

/** Answer as a registry does: the whole blob, or the rest from a Range's start. */
async function answerWell(c: Deno.Conn, head: string, blob = BLOB.bytes): Promise<void> {
  const from = rangeStart(head);
  const size = blob.byteLength;
  if (from === undefined) {
    await writeAll(c, enc.encode(`HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`));
    await writeAll(c, blob);
  } else if (from >= size) {
    await writeAll(
      c,
      enc.encode(`HTTP/1.1 416 Range Not Satisfiable\r\ncontent-length: 0\r\n\r\n`),
    );
  } else {
    await writeAll(
      c,
      enc.encode(
        `HTTP/1.1 206 Partial Content\r\ncontent-length: ${size - from}\r\n` +
          `content-range: bytes ${from}-${size - 1}/${size}\r\n\r\n`,
      ),
    );
    await writeAll(c, blob.subarray(from));
  }
}

/**
 * A raw TCP registry: `answer` is given each request's head and its number
 * (1-based); the connection closes when it returns. `heads` records them.
 */
async function withRaw(
  answer: (conn: Deno.Conn, head: string, n: number) => Promise<void>,
  fn: (host: string, heads: string[]) => Promise<void>,
): Promise<void> {
  const heads: string[] = [];
  const server = startRaw(async (conn, head) => {
    heads.push(head);
    await answer(conn, head, heads.length);
  });
  try {
    await fn(server.host, heads);
  } finally {
    await server.stop();
  }
}

/** Download BLOB (or `blob`) from `host` as a pull does; its bytes. */
async function download(
  host: string,
  blob = BLOB,
  options: ConstructorParameters<typeof RegistryClient>[1] = {},
): Promise<Uint8Array> {
  const client = new RegistryClient(host, {
    credential: null,
    backoffMs: 5,
    config: false,
    ...options,
  });
  try {
    const downloads = new BlobDownloads(new Repository(client, "x/y", {}));
    return new Uint8Array(await new Response(await downloads.fetch(blob.desc)).arrayBuffer());
  } finally {
    client.close();
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}
Deno.test("http1 hostile: a 200 with an empty body (Content-Length: 0) is resumed, not a TypeError", async () => {
  await withRaw(async (c, head, n) => {
    if (n === 1) await writeAll(c, enc.encode("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
    else await answerWell(c, head);
  }, async (host, heads) => {
    assert(sameBytes(await download(host), BLOB.bytes));
    assertEquals(heads.length, 2);
    // over http1Fetch: Deno's fetch adds `accept-language: *`, http1Fetch only the headers given
    assert(heads.every((h) => !/\r\naccept-language:/i.test(h)), "over http1");
  });
});

Deno.test("http1 hostile: obs-text bytes (0x80-0xff) in a reason phrase and a header value are taken", async () => {
  // (fetch takes them; a windows-1252 decode made 0x80 '€', which Headers refused as a
  // "connection" failure, retried five times)
  const head = new Uint8Array([
    ...enc.encode("HTTP/1.1 200 O"),
    0x80,
    0xe9,
    ...enc.encode("K\r\nx-note: "),
    0x80,
    0x9f,
    0xff,
    ...enc.encode(`\r\ncontent-length: ${BLOB.desc.size}\r\n\r\n`),
  ]);
  await withRaw(async (c) => {
    await writeAll(c, head);
    await writeAll(c, BLOB.bytes);
  }, async (host, heads) => {
    assert(sameBytes(await download(host), BLOB.bytes));
    assertEquals(heads.length, 1);
  });
});

// read whole into memory (BlobDownloads.read), not streamed, and over fetch
const SMALL = randomBlob(100_000);

for (const blob of [BLOB, SMALL]) {
  for (
    const [name, frame] of [
      ["a Content-Length longer than the blob", `content-length: ${blob.desc.size + 1000}`],
      ["a chunked body without its last chunk", "transfer-encoding: chunked"],
    ] as const
  ) {
    Deno.test(
      `http1 hostile: an answer broken off after the ${
        blob === SMALL ? "small " : ""
      }blob's last byte (${name}) completes it`,
      async () => {
        // nothing is missing: the digest decides, no Range past the blob's end is asked
        await withRaw(async (c, head) => {
          if (rangeStart(head) !== undefined) return await answerWell(c, head, blob.bytes);
          await writeAll(c, enc.encode(`HTTP/1.1 200 OK\r\n${frame}\r\n\r\n`));
          if (frame.startsWith("transfer")) {
            await writeAll(c, enc.encode(`${blob.desc.size.toString(16)}\r\n`));
          }
          await writeAll(c, blob.bytes);
        }, async (host, heads) => {
          assert(sameBytes(await download(host, blob), blob.bytes));
          assertEquals(heads.length, 1, heads.join("\n"));
        });
      },
    );
  }
}

Deno.test("http1 hostile: other bytes that break off after the blob's size still fail on the digest", async () => {
  const other = randomBlob(BLOB.desc.size).bytes;
  await withRaw(async (c) => {
    await writeAll(
      c,
      enc.encode(`HTTP/1.1 200 OK\r\ncontent-length: ${BLOB.desc.size + 1}\r\n\r\n`),
    );
    await writeAll(c, other);
  }, async (host) => {
    await assertRejects(() => download(host), Error, "digest mismatch");
  });
});

Deno.test("http1 hostile: 50 large downloads stopped mid-body (signal, cancel, unread) leave no connection open", async () => {
  let open = 0;
  const closed: Promise<void>[] = [];
  await withRaw(async (c) => {
    open++;
    let gone!: () => void;
    closed.push(new Promise<void>((r) => gone = r));
    try {
      await writeAll(c, enc.encode(`HTTP/1.1 200 OK\r\ncontent-length: ${BLOB.desc.size}\r\n\r\n`));
      await writeAll(c, BLOB.bytes.subarray(0, 256 << 10));
      // then nothing, until the client goes away
      const buf = new Uint8Array(1024);
      while (await c.read(buf).catch(() => null) !== null);
    } finally {
      open--;
      gone();
    }
  }, async (host) => {
    const client = new RegistryClient(host, { credential: null, config: false });
    try {
      const downloads = new BlobDownloads(new Repository(client, "x/y", {}));
      for (let i = 0; i < 50; i++) {
        const ac = new AbortController();
        const stream = await downloads.fetch(BLOB.desc, { signal: ac.signal });
        const way = i % 3;
        if (way === 2) {
          await stream.cancel(); // a caller that gives up before reading
          continue;
        }
        const reader = stream.getReader();
        assert(!(await reader.read()).done);
        if (way === 0) {
          ac.abort(new Error("stopped"));
          await assertRejects(() => reader.read(), Error, "stopped");
        } else await reader.cancel();
      }
      // every connection is closed by the client (a leak would keep this waiting)
      let timer: ReturnType<typeof setTimeout> | undefined;
      const leak = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${open} connections left open`)), 10_000);
      });
      try {
        await Promise.race([Promise.all(closed), leak]);
      } finally {
        clearTimeout(timer);
      }
      assertEquals(closed.length, 50);
      assertEquals(open, 0);
    } finally {
      client.close();
    }
  });
});

/**
 * A listener whose accept queue is full (python3: `listen(0)`, never accepting, one connection
 * queued): a connection to it hangs in its handshake, as to a host that drops packets.
 */
async function withHangingConnect(fn: (host: string) => Promise<void>): Promise<void> {
  const script = [
    "import socket, sys",
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
    "fill = []",
    "for i in range(8):",
    "    c = socket.socket(); c.settimeout(0.5)",
    "    try: c.connect(s.getsockname()); fill.append(c)",
    "    except OSError: break",
    "print(s.getsockname()[1], flush=True)",
    "sys.stdin.read()",
  ].join("\n");
  const child = new Deno.Command("python3", {
    args: ["-c", script],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    const port = Number((await lines.read()).value?.trim());
    await fn(`127.0.0.1:${port}`);
  } finally {
    await child.stdin.close();
    await lines.cancel();
    await child.status;
  }
}

Deno.test("http1 hostile: the connect timeout fires while a large blob's connection hangs in its handshake", async (t) => {
  if (!await have("python3")) {
    console.log("  (no python3: skipped)");
    return;
  }
  await withHangingConnect(async (host) => {
    const client = new RegistryClient(host, {
      credential: null,
      config: false,
      connectTimeoutMs: 300,
      maxAttempts: 1,
    });
    try {
      const downloads = new BlobDownloads(new Repository(client, "x/y", {}));
      for (const blob of [randomBlob(2 * MiB), BLOB]) { // over fetch, then over http1Fetch
        await t.step(`${blob.desc.size >> 20} MiB`, async () => {
          let guard: ReturnType<typeof setTimeout> | undefined;
          const hung = new Promise<never>((_, reject) => {
            guard = setTimeout(() => reject(new Error("still connecting after 20 s")), 20_000);
          });
          try {
            const e = await Promise.race([
              downloads.fetch(blob.desc)
                .then((s) => new Response(s).arrayBuffer())
                .then(() => undefined, (e) => e),
              hung,
            ]);
            assert(e instanceof RegistryTimeoutError, String(e));
            assertEquals(e.kind, "connect");
          } finally {
            clearTimeout(guard);
          }
        });
      }
    } finally {
      client.close();
    }
  });
});
