// Attacks on stopping uploads (Target.push's signal, a copy's first failure and its caller's
// signal reaching the destination): the signal aborted at each request of a blob upload (held by
// a proxy in front of a real registry), with a source that stalls, during the retry of a lost
// upload, while a HEAD or a mount is in flight; registry→registry, layout→registry, an
// oci-archive's byte ranges, pushImage/copyImage and the CLI. What each push rejects with, what
// goes out after it, what is left of the session and of the source.
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { MemoryTarget, OciArchive, OciDir } from "../mod.ts";
import type { Descriptor } from "../lib/oci/mod.ts";
import { RegistryTarget } from "../lib/transport/registry/target.ts";
import { tempDir } from "./_helpers.ts";
import { makeRandomImage } from "./_images.ts";
import { startRegistry } from "./_registry.ts";
import { type LogEntry, startFaultProxy } from "./_fault_proxy.ts";

const reg = await startRegistry();
const proxy = startFaultProxy(reg.host);
globalThis.addEventListener("unload", () => reg.kill());
const fast = { credential: null, backoffMs: 10 };
const MiB = 1024 * 1024;
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
let n = 0;
const repo = () => `upred/r${n++}`;

/** The reasons a signal may be aborted with: an Error, a string, none (a DOMException then). */
const REASONS: [string, () => AbortController][] = [
  ["an Error", () => abortingWith(new Error("the caller gave up"))],
  ["a string", () => abortingWith("gave up")],
  ["no reason", () => abortingWith(undefined)],
];
function abortingWith(reason: unknown): AbortController {
  const ac = new AbortController();
  const abort = ac.abort.bind(ac);
  ac.abort = () => abort(reason);
  return ac;
}

/** What a promise settled with, or `"pending"` after `ms`: a hang shows as that. */
async function settled<T>(p: Promise<T>, ms = 10_000): Promise<{ value?: T; error?: unknown }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<{ error: unknown }>((r) => {
    timer = setTimeout(() => r({ error: "pending" }), ms);
  });
  try {
    return await Promise.race([p.then((value) => ({ value }), (error) => ({ error })), hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** Bytes of this size (random), and a stream of them that records its cancel. */
function source(bytes: Uint8Array<ArrayBuffer>) {
  const got = { cancelled: undefined as unknown, isCancelled: false, readToEnd: false };
  let off = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (off >= bytes.byteLength) {
        got.readToEnd = true;
        return c.close();
      }
      c.enqueue(bytes.slice(off, off + 256 * 1024));
      off += 256 * 1024;
    },
    cancel(reason) {
      got.cancelled = reason;
      got.isCancelled = true;
    },
  });
  return { stream, got };
}

function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(size);
  for (let off = 0; off < size; off += 65536) crypto.getRandomValues(b.subarray(off, off + 65536));
  return b;
}

async function descOf(bytes: Uint8Array<ArrayBuffer>): Promise<Descriptor> {
  const hex = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
    (x) => x.toString(16).padStart(2, "0"),
  ).join("");
  return { mediaType: "application/octet-stream", digest: `sha256:${hex}`, size: bytes.byteLength };
}

/** The fds of this process open on files whose path contains `part`. */
function openFiles(part: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      const to = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
      if (to.includes(part)) out.push(to);
    } catch { /* closed meanwhile */ }
  }
  return out;
}

const describeLog = (log: LogEntry[]) =>
  log.map((e) => `${e.method} ${e.path.slice(0, 70)} → ${e.status} ${e.ended ?? ""}`).join("\n");

Deno.test("upload redteam: a push stopped at each request of an upload: the reason as given, the session cancelled, nothing after, the source released", async () => {
  const small = randomBytes(100_000);
  const big = randomBytes(5 * MiB); // over MONOLITHIC_MAX: a streamed PUT
  const three = randomBytes(3 * MiB); // in 1 MiB chunks: PATCH, PATCH, PUT
  const img = await makeRandomImage([5 * MiB]);
  const layout = await OciDir.open(img.dir);
  const layer = img.layers[0]!;
  type Point = {
    name: string;
    hold: { method: string; match: string; nth?: number; after?: boolean };
    chunkSize?: number;
    losePatchReply?: number;
    maxAttempts?: number;
    bytes?: Uint8Array<ArrayBuffer>;
    file?: boolean; // the oci-dir's blob file (a native body)
    session: boolean; // a session was opened: it is DELETEd
  };
  const points: Point[] = [
    {
      name: "POST",
      hold: { method: "POST", match: "/blobs/uploads/" },
      bytes: small,
      session: false,
    },
    {
      name: "monolithic PUT",
      hold: { method: "PUT", match: "/blobs/uploads/" },
      bytes: small,
      session: true,
    },
    {
      name: "PUT answered by the registry, its answer held",
      hold: { method: "PUT", match: "/blobs/uploads/", after: true },
      bytes: small,
      session: true,
    },
    {
      name: "streamed PUT of a stream",
      hold: { method: "PUT", match: "/blobs/uploads/" },
      bytes: big,
      session: true,
    },
    {
      name: "streamed PUT of a layout's file",
      hold: { method: "PUT", match: "/blobs/uploads/" },
      file: true,
      session: true,
    },
    {
      name: "second PATCH",
      hold: { method: "PATCH", match: "/blobs/uploads/", nth: 2 },
      chunkSize: MiB,
      bytes: three,
      session: true,
    },
    {
      name: "status GET after a failed PATCH",
      hold: { method: "GET", match: "/blobs/uploads/" },
      chunkSize: MiB,
      losePatchReply: 1,
      maxAttempts: 1, // (else the client sends the PATCH again, and the registry drops the session)
      bytes: three,
      session: true,
    },
    {
      name: "final PUT after chunks",
      hold: { method: "PUT", match: "/blobs/uploads/" },
      chunkSize: MiB,
      bytes: three,
      session: true,
    },
  ];
  const broken: string[] = [];
  try {
    for (const p of points) {
      for (const [reasonName, make] of REASONS) {
        const label = `${p.name}, ${reasonName}`;
        proxy.reset();
        const ac = make();
        let heldEntry: LogEntry | undefined;
        proxy.rules.hold = {
          ...p.hold,
          onHeld: (e) => {
            heldEntry = e;
            ac.abort();
          },
        };
        if (p.losePatchReply) proxy.rules.losePatchReply = p.losePatchReply;
        const dst = new RegistryTarget(proxy.host, repo(), {
          ...fast,
          ...(p.chunkSize ? { chunkSize: p.chunkSize } : {}),
          ...(p.maxAttempts ? { maxAttempts: p.maxAttempts } : {}),
        });
        let got: ReturnType<typeof source>["got"] | undefined;
        let content: ReadableStream<Uint8Array>;
        let spec: Descriptor;
        if (p.file) {
          content = await layout.fetch(layer);
          spec = layer;
        } else {
          const s = source(p.bytes!);
          content = s.stream;
          got = s.got;
          spec = await descOf(p.bytes!);
        }
        const r = await settled(dst.push(spec, content, { signal: ac.signal }));
        const reason = ac.signal.reason;
        const heldThen = heldEntry?.ended; // still held as it rejected: it did not wait for it
        if (r.error !== reason) {
          broken.push(`${label}: rejected with ${String(r.error ?? r.value)}`);
        }
        if (!heldEntry) broken.push(`${label}: nothing held\n${describeLog(proxy.log)}`);
        await pause(150); // anything more would go out now
        const after = proxy.log.slice(proxy.log.indexOf(heldEntry!) + 1);
        const deletes = after.filter((e) => e.method === "DELETE").length;
        if (deletes !== (p.session ? 1 : 0)) broken.push(`${label}: ${deletes} DELETE`);
        const others = after.filter((e) => e.method !== "DELETE");
        if (others.length > 0) broken.push(`${label}: after the stop:\n${describeLog(others)}`);
        if (heldThen === "done") broken.push(`${label}: it waited for the held request`);
        // the source released: cancelled with the reason, unless it was read to its end already
        if (got && !(got.cancelled === reason || (got.readToEnd && !got.isCancelled))) {
          broken.push(
            `${label}: the source cancelled with ${String(got.cancelled)} (${got.isCancelled})`,
          );
        }
        if (p.file && openFiles(layer.digest.slice(7)).length > 0) {
          broken.push(`${label}: the blob file is still open`);
        }
        await dst.close();
      }
    }
  } finally {
    proxy.reset(); // the held requests go
    await layout.close();
  }
  assertEquals(broken, []);
});

Deno.test("upload redteam: a push whose source stalls stops when its signal aborts: the reason, the source released, nothing kept", async () => {
  const dir = await tempDir();
  const spec = { mediaType: "application/octet-stream" };
  const targets = [
    ["oci-dir", await OciDir.open(join(dir, "d"), { create: true }), spec],
    ["oci-archive", await OciArchive.open(join(dir, "a.tar"), { write: true }), spec],
    ["memory", new MemoryTarget(), spec],
    ["registry, one PUT", new RegistryTarget(proxy.host, repo(), fast), spec],
    ["registry, chunks", new RegistryTarget(proxy.host, repo(), { ...fast, chunkSize: MiB }), spec],
    [
      "registry, streamed",
      new RegistryTarget(proxy.host, repo(), fast),
      { ...spec, digest: `sha256:${"0".repeat(64)}`, size: 64 * MiB },
    ],
  ] as const;
  const broken: string[] = [];
  proxy.reset();
  for (const [kind, t, s] of targets) {
    const ac = new AbortController();
    const why = new Error(`${kind}: no longer wanted`);
    let cancelled: unknown;
    let chunks = 0;
    // 3 MiB, then nothing more (a source that waits on someone else, e.g. a slow pipe)
    const stalls = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (chunks++ < 3) return c.enqueue(new Uint8Array(MiB));
        if (chunks === 4) ac.abort(why); // it is waited on: stop now
        await new Promise(() => {});
      },
      cancel(reason) {
        cancelled = reason;
      },
    }, { highWaterMark: 0 });
    const start = proxy.log.length;
    const r = await settled(t.push(s, stalls, { signal: ac.signal }));
    if (r.error !== why) broken.push(`${kind}: ${String(r.error ?? r.value)}`);
    if (r.error === "pending") continue; // (closing it would wait for the push)
    if (cancelled !== why) broken.push(`${kind}: the source was cancelled with ${cancelled}`);
    const sent = proxy.log.slice(start);
    if (sent.some((e) => e.method === "POST") && !sent.some((e) => e.method === "DELETE")) {
      broken.push(`${kind}: the upload session is left:\n${describeLog(sent)}`);
    }
    await t.close();
  }
  proxy.reset();
  assertEquals(broken, []);
  // nothing of the blobs stayed
  assertEquals([...Deno.readDirSync(join(dir, "d", "blobs", "sha256"))], []);
  assertEquals(await (await OciArchive.open(join(dir, "a.tar"))).list(), []);
});
