// Attacks on stopping uploads (Target.push's signal, a copy's first failure and its caller's
// signal reaching the destination): the signal aborted at each request of a blob upload (held by
// a proxy in front of a real registry), with a source that stalls, during the retry of a lost
// upload, while a HEAD or a mount is in flight; registry→registry, layout→registry, an
// oci-archive's byte ranges, pushImage/copyImage and the CLI. What each push rejects with, what
// goes out after it, what is left of the session and of the source.
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import {
  copyImage,
  MemoryTarget,
  OciArchive,
  OciDir,
  pushImage,
  VerificationError,
} from "../mod.ts";
import type { Descriptor } from "../lib/oci/mod.ts";
import { copy, pushBytes } from "../lib/transport/mod.ts";
import { encodeJson, OCI_INDEX, OCI_MANIFEST } from "../lib/oci/mod.ts";
import { OCI_EMPTY } from "../lib/oci/media_types.ts";
import { RegistryTarget } from "../lib/transport/registry/target.ts";
import { runCli, tempDir } from "./_helpers.ts";
import { makeRandomImage, pushRandomImage } from "./_images.ts";
import { RegistryError } from "./_internal.ts";
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
  const archive = await OciArchive.open(join(dir, "a.tar"));
  assertEquals(await archive.list(), []);
  await archive.close();
  assertEquals(openFiles(dir), []); // no temp file left open
});

/**
 * A destination on the proxy whose `exists` of `bad` fails with `why` once `ready()` says so:
 * the copy's first failure, at a moment the test chooses.
 */
class FailingDst extends RegistryTarget {
  constructor(
    repository: string,
    readonly bad: string,
    readonly why: unknown,
    readonly ready: () => boolean,
  ) {
    super(proxy.host, repository, fast);
  }
  override async exists(desc: Descriptor, ...rest: unknown[]): Promise<boolean> {
    if (desc.digest !== this.bad) {
      return await (super.exists as (...a: unknown[]) => Promise<boolean>)(desc, ...rest);
    }
    while (!this.ready()) await pause(10);
    throw this.why;
  }
}

/** An index of two images (M1: layers `a` and `bad`; M2: layer `b`), in memory. */
async function twoImages() {
  const src = new MemoryTarget();
  const blob = (text: string) =>
    pushBytes(src, "application/vnd.oci.image.layer.v1.tar", new TextEncoder().encode(text));
  const [a, bad, b] = [await blob("a"), await blob("bad"), await blob("b")];
  const config = await pushBytes(src, OCI_EMPTY, encodeJson({}));
  const manifest = (layers: Descriptor[]) =>
    pushBytes(
      src,
      OCI_MANIFEST,
      encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers }),
    );
  const [m1, m2] = [await manifest([a, bad]), await manifest([b])];
  const index = await pushBytes(
    src,
    OCI_INDEX,
    encodeJson({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [m1, m2] }),
  );
  await src.tag(index, "1");
  return { src, a, bad, b, m2 };
}

Deno.test("upload redteam: a copy's first failure stops a HEAD, a mount and a manifest's fetch in flight", async () => {
  const { src: memory, a, bad, b, m2 } = await twoImages();
  // the same images in a repository of the registry, on the proxy: a source to mount from
  const from = repo();
  await copy(memory, new RegistryTarget(reg.host, from, fast), { srcRef: "1", dstRef: "1" });
  const kinds = {
    "a blob's HEAD": { method: "HEAD", match: `/blobs/${a.digest}`, fromRegistry: false },
    "a mount": { method: "POST", match: `mount=${a.digest}`, fromRegistry: true },
    "a manifest's HEAD": { method: "HEAD", match: `/manifests/${m2.digest}`, fromRegistry: false },
    "a manifest's GET from the source": {
      method: "GET",
      match: `/manifests/${m2.digest}`,
      fromRegistry: true,
    },
  };
  const broken: string[] = [];
  for (const [kind, k] of Object.entries(kinds)) {
    proxy.reset();
    let held: LogEntry | undefined;
    proxy.rules.hold = { method: k.method, match: k.match, onHeld: (e) => held = e };
    const why = new Error(`the first failure (${kind})`);
    const dst = new FailingDst(repo(), bad.digest, why, () => held !== undefined);
    const src = k.fromRegistry ? new RegistryTarget(proxy.host, from, fast) : memory;
    const r = await settled(copy(src, dst, { srcRef: "1", dstRef: "1" }));
    if (r.error !== why) broken.push(`${kind}: ${String(r.error ?? r.value)}`);
    if (!held) broken.push(`${kind}: nothing held`);
    if (held?.ended === "done") broken.push(`${kind}: the copy waited for it`);
    proxy.reset();
    await dst.close();
    await src.close();
  }
  assertEquals(broken, []);
  assert(b.digest !== a.digest);
});

Deno.test("upload redteam: a lost streamed upload's retry stopped by the caller's signal or by a first failure elsewhere", async () => {
  const img = await makeRandomImage([5 * MiB, 1000]);
  const layout = await OciDir.open(img.dir);
  const [big, bad] = [img.layers[0]!.digest, img.layers[1]!.digest];
  const broken: string[] = [];
  try {
    for (const by of ["the caller's signal", "a first failure"] as const) {
      proxy.reset();
      proxy.rules.losePutReply = 1; // the streamed PUT's answer is lost: sent again, in chunks
      let held: LogEntry | undefined;
      const ac = new AbortController();
      const why = new Error(`stopped by ${by}`);
      proxy.rules.hold = {
        method: "PUT",
        match: big,
        nth: 2, // the retry's PUT
        onHeld: (e) => {
          held = e;
          if (by === "the caller's signal") ac.abort(why);
        },
      };
      const dst = by === "a first failure"
        ? new FailingDst(repo(), bad, why, () => held !== undefined)
        : new RegistryTarget(proxy.host, repo(), fast);
      const r = await settled(copy(layout, dst, { srcRef: "1", dstRef: "1", signal: ac.signal }));
      if (r.error !== why) broken.push(`${by}: ${String(r.error ?? r.value)}`);
      if (!held) broken.push(`${by}: no retry:\n${describeLog(proxy.log)}`);
      if (held?.ended === "done") broken.push(`${by}: the copy waited for the held retry`);
      await pause(150);
      const after = proxy.log.slice(proxy.log.indexOf(held!) + 1);
      if (after.filter((e) => e.method === "DELETE").length !== 1) {
        broken.push(`${by}: the retry's session:\n${describeLog(after)}`);
      }
      if (after.some((e) => e.method !== "DELETE" && !e.path.includes(bad))) {
        broken.push(`${by}: sent after the stop:\n${describeLog(after)}`);
      }
      proxy.reset();
      await dst.close();
    }
  } finally {
    await layout.close();
  }
  assertEquals(broken, []);
  assertEquals(openFiles(img.dir), []);
});

/** A second proxy in front of the same registry: a copy between the two is no mount. */
const other = startFaultProxy(reg.host);

/** The uploads (PATCH/PUT with a body passed on) of these blobs through a proxy. */
const uploadsOf = (log: LogEntry[], digests: string[]) =>
  log.filter((e) =>
    (e.method === "PUT" || e.method === "PATCH") && e.sent !== undefined &&
    digests.some((d) => decodeURIComponent(e.path).includes(d))
  );

/** Wait (at most 20 s) until this holds. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await pause(10);
}

/** Every entry has ended (at most 20 s). */
async function allEnded(entries: () => LogEntry[]): Promise<LogEntry[]> {
  await until(() => entries().every((e) => e.ended));
  return entries();
}

/** The registry has none of these blobs in this repository, and no tag `1`. */
async function noneOf(digests: string[], repository: string): Promise<string[]> {
  const check = new RegistryTarget(reg.host, repository, fast);
  const there: string[] = [];
  for (const d of digests) {
    if (await check.exists({ mediaType: "x/y", digest: d, size: 16 * MiB })) there.push(d);
  }
  if (await settled(check.resolve("1")).then((r) => r.error === undefined)) there.push("tag 1");
  await check.close();
  return there;
}

/** The id of the upload session a request's path names. */
const sessionOf = (path: string) => /\/blobs\/uploads\/([^/?]+)/.exec(path)?.[1];

/**
 * How many upload sessions in a proxy's log are left open: opened (POST answered 202), neither
 * completed (PUT answered 201) nor cancelled (DELETE). (A DELETE may follow a 201 whose answer
 * the client did not get before it stopped: the registry answers it 404.)
 */
function sessionsLeft(log: LogEntry[]): string[] {
  const opened = log.filter((e) => e.method === "POST" && e.status === 202).length;
  const ended = new Set(
    log.filter((e) => (e.method === "PUT" && e.status === 201) || e.method === "DELETE")
      .map((e) => sessionOf(e.path)),
  );
  return opened > ended.size ? [`${opened - ended.size} open`] : [];
}

/** The uploads of these blobs whose session was not cancelled (DELETE). */
function notCancelled(log: LogEntry[], digests: string[]): string[] {
  const deleted = new Set(log.filter((e) => e.method === "DELETE").map((e) => sessionOf(e.path)));
  return uploadsOf(log, digests).filter((e) => !deleted.has(sessionOf(e.path))).map((e) => e.path);
}

/** Wait until every session of the log has ended (at most 20 s); those left. */
async function sessionsEnd(log: LogEntry[]): Promise<string[]> {
  await until(() => sessionsLeft(log).length === 0);
  return sessionsLeft(log);
}

Deno.test("upload redteam: registry→registry, the first failure in the source or in the destination stops the other transfers", async () => {
  const from = repo();
  const img = await pushRandomImage([16 * MiB, 16 * MiB, 1000], reg.host, from);
  const large = img.layers.slice(0, 2).map((l) => l.digest);
  const bad = img.layers[2]!.digest;
  try {
    for (const at of ["source", "destination"] as const) {
      proxy.reset();
      other.reset();
      // downloads at 2 MB/s (8 s each if waited for); the bad blob held until they are going
      proxy.rules.throttle = { bytesPerSecond: 2_000_000 };
      other.rules.throttleUploads = { bytesPerSecond: 4_000_000 }; // (to count what is passed on)
      const failing = at === "source" ? proxy : other;
      failing.rules.hold = at === "source"
        ? { method: "GET", match: `/blobs/${bad}`, nth: 1 }
        : { method: "PUT", match: bad, nth: 1 };
      const to = repo();
      const copying = settled(
        copyImage(`${proxy.host}/${from}:1`, `${other.host}/${to}:1`, { ...fast }),
        30_000,
      );
      await until(() => uploadsOf(other.log, large).filter((e) => (e.sent ?? 0) > 0).length === 2);
      // now it fails: the source sends wrong bytes, or the destination answers 503 (retried, then given up)
      if (at === "source") proxy.rules.wrongBytes = bad;
      else other.rules.unavailable = { match: bad.slice(7), times: 99 };
      failing.release();
      const r = await copying;
      const e = r.error;
      if (e === undefined) console.log(describeLog(proxy.log), "\n---\n", describeLog(other.log));
      const expected = at === "source" ? VerificationError : RegistryError;
      assert(e instanceof expected, `${at}: rejected with ${String(e ?? r.value)}`);
      assertStringIncludes(e.message, bad);
      // the other downloads and uploads were cut
      for (
        const g of await allEnded(() =>
          proxy.log.filter((e) => large.some((d) => e.path.endsWith(`/blobs/${d}`)))
        )
      ) {
        assertEquals(g.ended, "cancelled", `${at}: the download of ${g.path}: ${g.sent} bytes`);
      }
      const ups = await allEnded(() => uploadsOf(other.log, large));
      for (const u of ups) {
        assert(u.sent! < 16 * MiB, `${at}: ${u.path} sent whole`);
        assertEquals(u.status, 0, `${at}: ${u.path} answered`);
      }
      // (the failing blob's own session is the registry's to end: it answered 503)
      await until(() => notCancelled(other.log, large).length === 0);
      assertEquals(notCancelled(other.log, large), [], describeLog(other.log));
      assertEquals(await noneOf(large, to), []);
    }
  } finally {
    proxy.reset();
    other.reset();
  }
});

Deno.test("upload redteam: an oci-archive's blobs (byte ranges) being uploaded when a first failure comes: cut, the archive released", async () => {
  const img = await makeRandomImage([16 * MiB, 16 * MiB, 1000]);
  const large = img.layers.slice(0, 2).map((l) => l.digest);
  const bad = img.layers[2]!.digest;
  const tar = join(await tempDir(), "img.tar");
  const layout = await OciDir.open(img.dir);
  const out = await OciArchive.open(tar, { write: true });
  await copy(layout, out, { srcRef: "1", dstRef: "1" });
  await out.close();
  await layout.close();
  proxy.reset();
  proxy.rules.throttleUploads = { bytesPerSecond: 2_000_000 };
  const src = await OciArchive.open(tar);
  const why = new Error("the first failure");
  const to = repo();
  const dst = new FailingDst(
    to,
    bad,
    why,
    () => uploadsOf(proxy.log, large).filter((e) => (e.sent ?? 0) > 0).length === 2,
  );
  const r = await settled(copy(src, dst, { srcRef: "1", dstRef: "1" }));
  assert(r.error === why, `rejected with ${String(r.error ?? r.value)}`);
  for (const u of await allEnded(() => uploadsOf(proxy.log, large))) {
    assert(u.sent! < 16 * MiB, `${u.path} sent whole`);
    assertEquals(u.status, 0, `${u.path} answered`);
  }
  assertEquals(await sessionsEnd(proxy.log), [], describeLog(proxy.log));
  assert(proxy.log.filter((e) => e.method === "DELETE").length >= 2, describeLog(proxy.log));
  await dst.close();
  await src.close();
  assertEquals(openFiles(tar), []);
  assertEquals(await noneOf(large, to), []);
  proxy.reset();
});

Deno.test("upload redteam: pushImage and copyImage given a signal stop their uploads, rejecting with its reason", async () => {
  const img = await makeRandomImage([16 * MiB, 16 * MiB]);
  const large = img.layers.map((l) => l.digest);
  const from = repo();
  await copy(await OciDir.open(img.dir), new RegistryTarget(reg.host, from, fast), {
    srcRef: "1",
    dstRef: "1",
  });
  for (const how of ["pushImage", "copyImage"] as const) {
    proxy.reset();
    other.reset();
    proxy.rules.throttleUploads = { bytesPerSecond: 2_000_000 };
    const ac = new AbortController();
    const why = new Error(`${how}: the user gave up`);
    const to = repo();
    const dst = `${proxy.host}/${to}:1`;
    const options = { ...fast, signal: ac.signal };
    const going = settled<unknown>(
      how === "pushImage"
        ? pushImage(`oci:${img.dir}:1`, dst, options)
        : copyImage(`${other.host}/${from}:1`, dst, options),
      30_000,
    );
    await until(() => uploadsOf(proxy.log, large).filter((e) => (e.sent ?? 0) > 0).length === 2);
    const asked = proxy.log.length;
    ac.abort(why);
    const r = await going;
    assert(r.error === why, `${how}: rejected with ${String(r.error ?? r.value)}`);
    for (const u of await allEnded(() => uploadsOf(proxy.log, large))) {
      assert(u.sent! < 16 * MiB, `${how}: ${u.path} sent whole`);
      assertEquals(u.status, 0, `${how}: ${u.path} answered`);
    }
    await pause(150);
    const after = proxy.log.slice(asked);
    // nothing but the DELETEs of the sessions open (the large ones' at least)
    assertEquals(after.filter((e) => e.method !== "DELETE"), [], describeLog(after));
    assert(after.length >= 2, describeLog(after));
    assertEquals(sessionsLeft(proxy.log), [], describeLog(proxy.log));
    assertEquals(await noneOf(large, to), []);
  }
  proxy.reset();
  other.reset();
});

Deno.test("upload redteam: `ocipkg push` of a layout with one bad blob: exit 1, one line naming it, the other uploads cut", async () => {
  // the bad blob is streamed too (over 4 MiB): the registry finds it bad at its end, 2.6 s in,
  // while the large ones are a third of the way
  const img = await makeRandomImage([16 * MiB, 16 * MiB, 5 * MiB]);
  const large = img.layers.slice(0, 2).map((l) => l.digest);
  const bad = img.layers[2]!.digest;
  // the bad blob's file: its size, other bytes
  const file = join(img.dir, "blobs", "sha256", bad.slice(7));
  const bytes = await Deno.readFile(file);
  bytes[0] = bytes[0]! ^ 0xff;
  await Deno.writeFile(file, bytes);
  proxy.reset();
  proxy.rules.throttleUploads = { bytesPerSecond: 2_000_000 }; // 8 s each if waited for
  const to = repo();
  const t0 = performance.now();
  const r = await runCli(["push", `oci:${img.dir}:1`, `${proxy.host}/${to}:1`]);
  const took = performance.now() - t0;
  assertEquals(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assertEquals(lines.length, 1, r.stderr);
  assertStringIncludes(lines[0]!, bad);
  assert(!/\n\s+at /.test(r.stderr), r.stderr);
  const ups = await allEnded(() => uploadsOf(proxy.log, large));
  assertEquals(ups.length, 2, describeLog(proxy.log)); // they were going when it failed
  for (const u of ups) {
    assert(u.sent! < 16 * MiB, `${u.path} sent whole`);
    assertEquals(u.status, 0, `${u.path} answered`);
  }
  assertEquals(await noneOf([...large, bad], to), []);
  console.log(`ocipkg push with one bad blob: ${Math.round(took)} ms, ${r.stderr.trim()}`);
  proxy.reset();
});

Deno.test("upload redteam: a stopped push's DELETE is sent once, and a registry that does not answer it holds the push up no longer than the connect timeout", async () => {
  proxy.reset();
  proxy.rules.hold = { method: "DELETE", match: "/blobs/uploads/" };
  const ac = new AbortController();
  const why = new Error("no longer wanted");
  // (a registry that stopped answering: the upload was stopped because of it)
  const dst = new RegistryTarget(proxy.host, repo(), { ...fast, connectTimeoutMs: 500 });
  const bytes = randomBytes(100_000);
  let reads = 0;
  const stalls = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (reads++ === 0) return c.enqueue(bytes);
      ac.abort(why);
      await new Promise(() => {});
    },
  });
  const r = await settled(dst.push(await descOf(bytes), stalls, { signal: ac.signal }));
  assert(r.error === why, `rejected with ${String(r.error ?? r.value)}`);
  const deletes = proxy.log.filter((e) => e.method === "DELETE");
  assertEquals(deletes.length, 1, describeLog(proxy.log));
  assert(deletes[0]!.ended !== "done", "it waited for the DELETE's answer");
  proxy.reset();
  await dst.close();
});

/** The abort listeners added to a signal from now on that are still there. */
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

Deno.test("upload redteam: 1000 pushes and copies with one signal leave no listener on it", async () => {
  const dir = await tempDir();
  const ac = new AbortController();
  const left = listeners(ac.signal);
  const signal = ac.signal;
  const targets = [
    ["memory", new MemoryTarget(), 1000],
    ["oci-dir", await OciDir.open(join(dir, "d"), { create: true }), 1000],
    ["oci-archive", await OciArchive.open(join(dir, "a.tar"), { write: true }), 1000],
    ["registry", new RegistryTarget(reg.host, repo(), fast), 200],
  ] as const;
  for (const [kind, t, count] of targets) {
    for (let i = 0; i < count; i++) {
      // a byte stream and a default one, in turn (a layout reads the one with BYOB)
      const bytes = new TextEncoder().encode(`${kind} ${i}`);
      const content = i % 2 ? new Response(bytes).body! : ReadableStream.from([bytes]);
      await t.push({ mediaType: "application/octet-stream" }, content, { signal });
    }
    assertEquals(left(), 0, `${kind}: listeners left`);
  }
  // copies, with blobs in every layout, and to the registry
  const { src } = await twoImages();
  for (let i = 0; i < 20; i++) {
    for (const [kind, t] of targets) {
      if (kind !== "memory") await copy(src, t, { srcRef: "1", signal });
    }
  }
  assertEquals(left(), 0, "copies: listeners left");
  for (const [, t] of targets) await t.close();
});

Deno.test("upload redteam: a blob listed twice in one copy goes up once, also when the copy fails", async () => {
  const img = await makeRandomImage([5 * MiB, 1000]);
  const layout = await OciDir.open(img.dir);
  const [twice, bad] = [img.layers[0]!, img.layers[1]!];
  const config = await pushBytes(layout, OCI_EMPTY, encodeJson({}));
  const doc = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [twice, bad, twice] };
  const root = await pushBytes(layout, OCI_MANIFEST, encodeJson(doc));
  await layout.tag(root, "twice");
  try {
    for (const failing of [false, true]) {
      proxy.reset();
      proxy.rules.throttleUploads = { bytesPerSecond: 8_000_000 };
      const why = new Error("the first failure");
      const going = () => uploadsOf(proxy.log, [twice.digest]).some((e) => (e.sent ?? 0) > 0);
      const dst = failing
        ? new FailingDst(repo(), bad.digest, why, going)
        : new RegistryTarget(proxy.host, repo(), fast);
      const r = await settled(copy(layout, dst, { srcRef: "twice", dstRef: "1" }));
      if (failing) assert(r.error === why, `rejected with ${String(r.error ?? r.value)}`);
      else assert(r.error === undefined, String(r.error));
      await allEnded(() => uploadsOf(proxy.log, [twice.digest]));
      assertEquals(uploadsOf(proxy.log, [twice.digest]).length, 1, describeLog(proxy.log));
      // one HEAD of it (the second listing waits for the first)
      const heads = proxy.log.filter((e) => e.method === "HEAD" && e.path.endsWith(twice.digest));
      assertEquals(heads.length, 1, describeLog(proxy.log));
      await dst.close();
    }
  } finally {
    proxy.reset();
    await layout.close();
  }
});
