// Soak: for a fixed time, many concurrent clients push and pull through one `ocipkg serve`
// subprocess, some of them aborting on purpose, while `serve` is stopped (SIGTERM) and started
// again on the same root; then nothing acknowledged may be lost and the root must be consistent.
//
//   deno task soak [--duration 90] [--clients 24] [--json soak.json] [options]
//
// Clients: ocipkg's library (pushBytes, copy from a MemoryTarget, pushImage from an oci-dir,
// fetchBytes, a blob stream, pullImage, copyImage between repositories, against one
// RegistryClient per client) and skopeo (every --skopeo-every'th client: `skopeo copy` of an
// oci: dir to docker://… and back). Blob sizes are log-uniform from 1 byte to --max-size-mb, and
// one blob push in --large-every is between --max-size-mb and --large-mb. Some operations abort on
// purpose (a fetch whose body stream errors halfway, a socket closed halfway through a PATCH or
// a monolithic POST, an upload session left open), some upload one blob several times at once.
//
// Afterwards (while the last `serve` still runs) every push a client saw succeed is read back
// over HTTP and hashed, and no aborted blob may be visible; after `serve` stops, the root is
// checked on disk: every blob file hashes to its name, every manifest in every repository's
// index.json has its blobs (children of an index too), nothing is left in <root>/.uploads and no
// stray temp file is left next to the layouts.
//
// Reports: requests and requests/s (from serve's request log), bytes, small-pull latency
// (fetchBytes of a manifest or a blob ≤ 64 KiB: p50/p99, outside the restart gap), serve's peak
// RSS (VmHWM of /proc/<pid>/status just before each stop), operations and errors by kind (and
// which of them overlapped the restart gap), aborts by kind, and the consistency result; a table
// on stdout and everything as JSON (--json). Exit code 1 when the consistency check fails.
//
// tests/serve_soak_test.ts runs the same code (runSoak) with small numbers.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  copyImage,
  MemoryTarget,
  NotFoundError,
  OciDir,
  pullImage,
  pushImage,
  RegistryError,
  RegistryTarget,
  RegistryTimeoutError,
  VerificationError,
} from "../mod.ts";
import { type Descriptor, digestOf, encodeJson, OCI_INDEX, OCI_MANIFEST } from "../lib/oci/mod.ts";
import {
  copy,
  fetchBytes,
  pushBytes,
  RegistryClient,
  type RetryInfo,
} from "../lib/transport/mod.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const KiB = 1024;
const MiB = 1024 * KiB;
/** A pull of at most this many bytes counts as small (its latency is reported). */
export const SMALL_PULL = 64 * KiB;
const LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";
const IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json";
const MANIFEST_ACCEPT = [OCI_MANIFEST, OCI_INDEX].join(", ");

/** What a soak run does. */
export interface SoakOptions {
  /** How long clients start new operations, in ms. */
  durationMs: number;
  /** Concurrent clients. */
  clients: number;
  /** Every n-th client is a skopeo client (0: none). */
  skopeoEvery: number;
  /** Largest ordinary blob (sizes are log-uniform from 1 byte). */
  maxSizeBytes: number;
  /** Largest "larger" blob (0: none). */
  largeBytes: number;
  /** One blob push in this many is a larger one. */
  largeEvery: number;
  /** Times `serve` is stopped with SIGTERM and started again, spread over the run. */
  restarts: number;
  /** Repositories the clients share. */
  repos: number;
  /** Upload sessions left open on purpose, per `serve` instance (they hold a slot until it stops). */
  abandonPerInstance: number;
  /** Seed of the choices (sizes, operations); the bytes are random anyway. */
  seed: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Keep the work directory (the root) and print where it is. */
  keep?: boolean;
}

/** The defaults of the full run (`deno task soak`). */
export const DEFAULTS: SoakOptions = {
  durationMs: 90_000,
  clients: 24,
  skopeoEvery: 6,
  maxSizeBytes: 4 * MiB,
  largeBytes: 48 * MiB,
  largeEvery: 60,
  restarts: 1,
  repos: 6,
  abandonPerInstance: 3,
  seed: 22,
};

/** Operations and their outcomes. */
export interface OpCount {
  /** Succeeded. */
  ok: number;
  /** Failed (see the errors). */
  failed: number;
}

/** The result of the consistency checks. */
export interface Consistency {
  /** Everything below passed. */
  ok: boolean;
  /** Repositories found under the root. */
  repositories: number;
  /** Blob files hashed. */
  blobFiles: number;
  /** Bytes hashed. */
  blobBytes: number;
  /** Blob files whose content does not hash to their name (or unreadable). */
  badBlobs: string[];
  /** index.json entries checked (with their children). */
  manifests: number;
  /** Manifests missing, or naming a blob or child manifest the repository lacks. */
  incomplete: string[];
  /** Files left in `<root>/.uploads` after the last stop. */
  orphanUploads: string[];
  /** Other files next to the layouts that no layout names (temp files). */
  strayFiles: string[];
  /** Acknowledged blobs read back over HTTP with the same digest and size. */
  ackedBlobsReadable: number;
  /** Acknowledged blobs not readable, or with other bytes. */
  ackedBlobsLost: string[];
  /** Acknowledged manifests read back by digest with the same bytes. */
  ackedManifestsReadable: number;
  /** Acknowledged manifests not readable by digest. */
  ackedManifestsLost: string[];
  /** Acknowledged tags (each push has its own) that still name their manifest. */
  ackedTagsReadable: number;
  /** Acknowledged tags lost or naming another manifest. */
  ackedTagsLost: string[];
  /** Blobs whose upload was aborted on purpose that are visible anyway. */
  abortedVisible: string[];
  /** Every `serve` instance exited 0 after SIGTERM. */
  cleanStops: boolean;
}

/** Everything a run measured. */
export interface SoakReport {
  /** The options (without `log`). */
  options: Omit<SoakOptions, "log">;
  /** When it started (ISO). */
  startedAt: string;
  /** How long the load ran, until the last operation ended, in seconds. */
  loadSeconds: number;
  /** Whether skopeo clients ran. */
  skopeo: boolean;
  /** From serve's request log. */
  server: {
    /** Requests logged. */
    requests: number;
    /** Requests per second over the load. */
    requestsPerSecond: number;
    /** Bytes received (uploads) and sent (Content-Length of answers). */
    bytes: number;
    /** Requests by status. */
    byStatus: Record<string, number>;
    /** Requests by method. */
    byMethod: Record<string, number>;
    /** Peak RSS (VmHWM) of each instance just before it was stopped, MiB. */
    peakRssMiB: number[];
    /** ms from SIGTERM to exit, each instance. */
    stopMs: number[];
    /** Exit code of each instance. */
    exitCodes: (number | null)[];
    /** ms from spawn to `listening on`, each instance. */
    startMs: number[];
    /** Files in `<root>/.uploads` right after each instance exited. */
    uploadsLeftAtStop: string[][];
    /** ms from SIGTERM to the next instance listening, each restart. */
    restartGapMs: number[];
    /** serve's own time (its log's ms) for GETs of blobs and manifests ≤ 64 KiB. */
    smallGets: { count: number; p50Ms: number; p99Ms: number; maxMs: number };
    /** Answers other than 2xx by method, route and status. */
    notOk: Record<string, number>;
    /** Lines on serve's stderr that are not request log lines (first 50). */
    otherOutput: string[];
  };
  /** What the clients did. */
  clients: {
    /** Operations by kind. */
    ops: Record<string, OpCount>;
    /** Bytes pushed (acknowledged) and pulled (verified). */
    bytesPushed: number;
    /** Bytes pulled and verified. */
    bytesPulled: number;
    /** Latency of small pulls (fetchBytes ≤ 64 KiB) that did not overlap a restart. */
    smallPulls: { count: number; p50Ms: number; p99Ms: number; maxMs: number; overlapped: number };
    /** Errors by kind: in all, and those of operations overlapping a restart gap. */
    errors: Record<string, { total: number; duringRestart: number }>;
    /** Up to 3 messages per error kind. */
    errorSamples: Record<string, string[]>;
    /** Retries the library client reported (onRetry). */
    retries: number;
    /** Aborts on purpose, by kind. */
    aborts: Record<string, number>;
    /** Aborted sessions still open 3 s after their PATCH was cut (the server did not drop them). */
    abortedSessionsLingering: number;
  };
  /** Pushes clients saw succeed, by how they pushed. */
  acked: { blobs: number; manifests: number; by: Record<string, number> };
  /** The checks. */
  consistency: Consistency;
}

// ---------------------------------------------------------------- small helpers

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(b.subarray(off, off + 65536));
  return b;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[i]! * 10) / 10;
}

async function eachLine(stream: ReadableStream<Uint8Array>, f: (line: string) => void) {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      f(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  }
  if (buf) f(buf);
}

async function hashFile(path: string): Promise<{ digest: string; size: number }> {
  const h = createHash("sha256");
  let size = 0;
  using f = await Deno.open(path);
  for await (const chunk of f.readable) {
    h.update(chunk);
    size += chunk.byteLength;
  }
  return { digest: `sha256:${h.digest("hex")}`, size };
}

/** An expected failure of the soak's own requests, classified by `kind`. */
class SoakError extends Error {
  constructor(readonly kind: string, message: string) {
    super(message);
    this.name = "SoakError";
  }
}

function chainText(e: unknown): string {
  const parts: string[] = [];
  for (let c: unknown = e, i = 0; c instanceof Error && i < 6; c = c.cause, i++) {
    parts.push(`${c.name}: ${c.message}`);
  }
  return parts.join(" <- ") || String(e);
}

/** The kind of a failure, for the error table. */
export function classify(e: unknown): string {
  if (e instanceof SoakError) return e.kind;
  const text = chainText(e);
  const net = /refused/i.test(text)
    ? "connection-refused"
    : /reset|closed|broken pipe|incomplete|unexpected end|eof/i.test(text)
    ? "connection-lost"
    : undefined;
  if (e instanceof RegistryTimeoutError) return `timeout-${e.kind}`;
  if (e instanceof RegistryError) {
    if (e.status === 0) return net ?? "unreachable";
    return `http-${e.status}${e.code ? `-${e.code}` : ""}`;
  }
  if (e instanceof VerificationError) return "verification";
  if (e instanceof NotFoundError) return "not-found";
  if (net) return net;
  return e instanceof Error ? e.name : "unknown";
}

// ---------------------------------------------------------------- serve as a subprocess

/** A request path with its names, digests and ids replaced by placeholders. */
export function route(pathAndQuery: string): string {
  const [path, query] = pathAndQuery.split("?", 2) as [string, string | undefined];
  const m = /^\/v2\/(.+?)\/(blobs\/uploads|blobs|manifests|tags|referrers)(\/.*)?$/.exec(path);
  let r = path;
  if (m) {
    const rest = (m[3] ?? "")
      .replace(/^\/sha256:[0-9a-f]{64}$/, "/<digest>")
      .replace(/^\/[0-9a-f-]{36}$/, "/<id>")
      .replace(/^\/(?!<)[^/]+$/, m[2] === "manifests" ? "/<tag>" : "/$&");
    r = `/v2/<name>/${m[2]}${rest}`;
  }
  const keys = query ? [...new URLSearchParams(query).keys()] : [];
  return keys.length ? `${r}?${keys.join("&")}` : r;
}

/** Counts of serve's request log. */
class ServeLog {
  requests = 0;
  bytes = 0;
  byStatus: Record<string, number> = {};
  byMethod: Record<string, number> = {};
  /** Answers other than 2xx, by method, route and status. */
  notOk: Record<string, number> = {};
  /** ms serve took for each GET of a blob or manifest of at most SMALL_PULL bytes. */
  smallGets: number[] = [];
  other: string[] = [];

  line(l: string): void {
    // METHOD /path?query STATUS RECEIVED SENT MSms [error: …] [(response broke off)] [(cut-off why)]
    const f = /^([A-Z]+) (\S+) (\d{3}) (\d+) (\d+) (\d+)ms(?: .*)?$/.exec(l);
    // bytes: what went through serve, either way
    const m = f ? [f[0], f[1], f[2], f[3], String(Number(f[4]) + Number(f[5])), f[6]] : null;
    if (!m) {
      if (l.trim() && this.other.length < 50) this.other.push(l.slice(0, 300));
      return;
    }
    this.requests++;
    this.bytes += Number(m[4]);
    this.byStatus[m[3]!] = (this.byStatus[m[3]!] ?? 0) + 1;
    this.byMethod[m[1]!] = (this.byMethod[m[1]!] ?? 0) + 1;
    if (
      m[1] === "GET" && m[3] === "200" && Number(m[4]) <= SMALL_PULL &&
      /^\/v2\/.+\/(blobs|manifests)\/[^/]+$/.test(m[2]!) && !m[2]!.includes("/uploads")
    ) this.smallGets.push(Number(m[5]));
    if (!m[3]!.startsWith("2")) {
      const key = `${m[1]} ${route(m[2]!)} ${m[3]}`;
      this.notOk[key] = (this.notOk[key] ?? 0) + 1;
    }
  }
}

/** One `deno run -A cli.ts serve` process. */
class ServeProcess {
  #child: Deno.ChildProcess;
  #drained: Promise<unknown>;
  readonly startMs: number;

  private constructor(child: Deno.ChildProcess, drained: Promise<unknown>, startMs: number) {
    this.#child = child;
    this.#drained = drained;
    this.startMs = startMs;
  }

  get pid(): number {
    return this.#child.pid;
  }

  static async start(root: string, port: number, log: ServeLog): Promise<ServeProcess> {
    const t0 = performance.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", CLI, "serve", "--root", root, "--addr", `127.0.0.1:${port}`],
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const listening = Promise.withResolvers<void>();
    const out: string[] = [];
    const drained = Promise.all([
      eachLine(child.stdout, (l) => {
        if (l.startsWith("listening on ")) listening.resolve();
        else out.push(l);
      }),
      eachLine(child.stderr, (l) => {
        log.line(l);
        if (!/^[A-Z]+ \//.test(l)) out.push(l);
      }),
    ]).catch(() => {});
    const status = child.status.then((s) => {
      listening.reject(
        new Error(`serve exited with ${s.code} before listening: ${out.join("\n")}`),
      );
    });
    const timer = setTimeout(
      () => listening.reject(new Error("serve did not listen in 60 s")),
      60_000,
    );
    try {
      await listening.promise;
    } catch (e) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await status;
      await drained;
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return new ServeProcess(child, Promise.all([drained, status]), performance.now() - t0);
  }

  /** VmHWM of the process in MiB (Linux), or -1. */
  async peakRssMiB(): Promise<number> {
    try {
      const status = await Deno.readTextFile(`/proc/${this.pid}/status`);
      const m = /VmHWM:\s+(\d+) kB/.exec(status);
      return m ? Math.round(Number(m[1]) / 102.4) / 10 : -1;
    } catch {
      return -1;
    }
  }

  /** SIGTERM, and wait (SIGKILL after 60 s). */
  async stop(): Promise<{ code: number | null; ms: number }> {
    const t0 = performance.now();
    this.#child.kill("SIGTERM");
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 60_000);
    const s = await this.#child.status;
    clearTimeout(timer);
    await this.#drained;
    return { code: s.signal ? null : s.code, ms: Math.round(performance.now() - t0) };
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

// ---------------------------------------------------------------- the run

interface AckBlob {
  repo: string;
  digest: string;
  size: number;
  by: string;
}

interface AckManifest {
  repo: string;
  tag: string;
  digest: string;
  size: number;
  blobs: { digest: string; size: number }[];
  by: string;
}

interface Image {
  blobs: { desc: Descriptor; bytes: Uint8Array }[];
  manifest: { desc: Descriptor; bytes: Uint8Array };
}

class Soak {
  readonly o: SoakOptions;
  readonly work: string;
  readonly root: string;
  readonly port: number;
  readonly addr: string;
  readonly base: string;
  readonly log = new ServeLog();
  readonly rand: () => number;
  readonly skopeo: boolean;
  t0 = 0;
  deadline = 0;
  gaps: { start: number; end: number }[] = [];
  ackBlobs = new Map<string, AckBlob>();
  /** The acknowledged blobs of at most SMALL_PULL bytes (manifests too), to pick from. */
  smallAcks: AckBlob[] = [];
  allAcks: AckBlob[] = [];
  manifestDigests = new Set<string>();
  ackManifests: AckManifest[] = [];
  aborted: { repo: string; digest: string; kind: string }[] = [];
  ops: Record<string, OpCount> = {};
  errors: Record<string, { total: number; duringRestart: number }> = {};
  errorSamples: Record<string, string[]> = {};
  smallPulls: { start: number; end: number }[] = [];
  aborts: Record<string, number> = {};
  lingering = 0;
  bytesPushed = 0;
  bytesPulled = 0;
  retries = 0;
  abandoned = 0;
  seq = 0;

  constructor(o: SoakOptions, work: string, skopeo: boolean) {
    this.o = o;
    this.work = work;
    this.root = join(work, "root");
    this.port = freePort();
    this.addr = `127.0.0.1:${this.port}`;
    this.base = `http://${this.addr}`;
    this.rand = mulberry32(o.seed);
    this.skopeo = skopeo;
  }

  get now(): number {
    return performance.now() - this.t0;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)]!;
  }

  repo(): string {
    return `soak/r${Math.floor(this.rand() * this.o.repos)}`;
  }

  size(allowLarge = true): number {
    const { maxSizeBytes: max, largeBytes: large, largeEvery } = this.o;
    if (allowLarge && large > max && this.rand() * largeEvery < 1) {
      return max + Math.floor(this.rand() * (large - max));
    }
    return Math.max(1, Math.round(Math.exp(this.rand() * Math.log(max))));
  }

  clientOptions() {
    return {
      credential: null,
      connectTimeoutMs: 20_000,
      idleTimeoutMs: 30_000,
      onRetry: (_: RetryInfo) => void this.retries++,
    };
  }

  ackBlob(a: AckBlob): void {
    const key = `${a.repo}@${a.digest}`;
    if (!this.ackBlobs.has(key)) {
      this.ackBlobs.set(key, a);
      this.allAcks.push(a);
      if (a.size <= SMALL_PULL) this.smallAcks.push(a);
    }
    this.bytesPushed += a.size;
  }

  ackManifest(m: AckManifest): void {
    this.ackManifests.push(m);
    this.manifestDigests.add(m.digest);
    for (const b of m.blobs) this.ackBlob({ repo: m.repo, ...b, by: m.by });
    this.ackBlob({ repo: m.repo, digest: m.digest, size: m.size, by: m.by });
  }

  overlapsGap(start: number, end: number): boolean {
    // the gap, and a second after it for pooled connections and backoffs that began in it
    return this.gaps.some((g) => start < g.end + 1000 && end > g.start);
  }

  async op(name: string, fn: () => Promise<void>): Promise<void> {
    const start = this.now;
    const count = this.ops[name] ??= { ok: 0, failed: 0 };
    try {
      await fn();
      count.ok++;
    } catch (e) {
      count.failed++;
      const kind = `${name}: ${classify(e)}`;
      const err = this.errors[kind] ??= { total: 0, duringRestart: 0 };
      err.total++;
      if (this.overlapsGap(start, this.now) || this.restarting) err.duringRestart++;
      const samples = this.errorSamples[kind] ??= [];
      if (samples.length < 3) samples.push(chainText(e).slice(0, 400));
    }
  }

  restarting = false;

  /** A small image: 1–3 random layers, a config naming them, a manifest. */
  image(id: string): Image {
    const layers = Array.from({ length: 1 + Math.floor(this.rand() * 3) }, () => {
      const bytes = randomBytes(this.size(false));
      return {
        desc: { mediaType: LAYER_TAR, digest: digestOf(bytes), size: bytes.byteLength },
        bytes,
      };
    });
    const configBytes = encodeJson({
      architecture: "amd64",
      os: "linux",
      config: { Labels: { "org.example.soak": id } },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.desc.digest) },
    });
    const config = {
      desc: {
        mediaType: IMAGE_CONFIG,
        digest: digestOf(configBytes),
        size: configBytes.byteLength,
      },
      bytes: configBytes,
    };
    const manifestBytes = encodeJson({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: config.desc,
      layers: layers.map((l) => l.desc),
    });
    return {
      blobs: [config, ...layers],
      manifest: {
        desc: {
          mediaType: OCI_MANIFEST,
          digest: digestOf(manifestBytes),
          size: manifestBytes.byteLength,
        },
        bytes: manifestBytes,
      },
    };
  }

  async writeOciDir(img: Image, dir: string): Promise<void> {
    const layout = await OciDir.open(dir, { create: true });
    try {
      for (const b of img.blobs) await pushBytes(layout, b.desc.mediaType, b.bytes);
      const m = await pushBytes(layout, OCI_MANIFEST, img.manifest.bytes);
      await layout.tag(m, "src");
    } finally {
      await layout.close();
    }
  }

  imageAck(img: Image, repo: string, tag: string, by: string): AckManifest {
    return {
      repo,
      tag,
      digest: img.manifest.desc.digest,
      size: img.manifest.desc.size,
      blobs: img.blobs.map((b) => ({ digest: b.desc.digest, size: b.desc.size })),
      by,
    };
  }

  // ---- raw HTTP (the soak's own requests: aborts, duplicate monolithic uploads, read-back)

  async raw(path: string, init: RequestInit = {}): Promise<Response> {
    return await fetch(`${this.base}${path}`, { ...init, signal: AbortSignal.timeout(60_000) });
  }

  /** A raw request retried on 429/503 and refused connections (as a client would). */
  async rawRetry(path: string, init: () => RequestInit): Promise<Response> {
    for (let attempt = 1;; attempt++) {
      let res: Response | undefined;
      try {
        res = await this.raw(path, init());
      } catch (e) {
        if (attempt >= 6) throw e;
      }
      if (res && (![429, 503].includes(res.status) || attempt >= 6)) return res;
      await res?.body?.cancel();
      this.retries++;
      await sleep(200 * 2 ** Math.min(attempt - 1, 4) * (0.5 + this.rand()));
    }
  }

  async openSession(repo: string): Promise<string> {
    const res = await this.rawRetry(`/v2/${repo}/blobs/uploads/`, () => ({ method: "POST" }));
    await res.body?.cancel();
    const location = res.headers.get("location");
    if (res.status !== 202 || !location) {
      throw new SoakError(`session-http-${res.status}`, `POST uploads: ${res.status}`);
    }
    return new URL(location, this.base).pathname + new URL(location, this.base).search;
  }

  /** Write a request head and half of a `length`-byte body, then close the socket. */
  async cutSocket(head: string, body: Uint8Array): Promise<void> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: this.port });
    try {
      await writeAll(conn, new TextEncoder().encode(head));
      const half = body.subarray(0, Math.floor(body.byteLength / 2));
      for (let off = 0; off < half.byteLength; off += 64 * KiB) {
        await writeAll(conn, half.subarray(off, off + 64 * KiB));
      }
      await sleep(20); // let the server start on the body
    } catch {
      /* the server may answer and close first */
    } finally {
      conn.close();
    }
  }

  /** A body that sends half of `bytes`, then errors. */
  failingBody(bytes: Uint8Array): ReadableStream<Uint8Array> {
    const half = Math.floor(bytes.byteLength / 2);
    let off = 0;
    return new ReadableStream({
      async pull(c) {
        if (off >= half) {
          await sleep(20);
          c.error(new Error("soak: body aborted on purpose"));
          return;
        }
        const n = Math.min(64 * KiB, half - off);
        c.enqueue(bytes.slice(off, off + n));
        off += n;
      },
    });
  }

  /** Whether an upload session is gone within 3 s (the server dropped it after a cut body). */
  async sessionGone(location: string): Promise<boolean> {
    for (let i = 0; i < 30; i++) {
      const res = await this.raw(location).catch(() => undefined);
      await res?.body?.cancel();
      if (res && res.status === 404) return true;
      if (!res) return true; // the server went away: its sessions with it
      await sleep(100);
    }
    return false;
  }

  // ---- library client operations

  async pushBlob(client: RegistryClient): Promise<void> {
    const repo = this.repo();
    const bytes = randomBytes(this.size());
    const t = new RegistryTarget(client, repo, this.clientOptions());
    const d = await pushBytes(t, "application/octet-stream", bytes);
    if (d.digest !== digestOf(bytes)) throw new SoakError("wrong-digest", d.digest);
    this.ackBlob({ repo, digest: d.digest, size: d.size, by: "ocipkg pushBytes" });
  }

  async pushCopy(client: RegistryClient, id: string): Promise<void> {
    const repo = this.repo();
    const img = this.image(id);
    const mem = new MemoryTarget();
    for (const b of img.blobs) await pushBytes(mem, b.desc.mediaType, b.bytes);
    await mem.tag(await pushBytes(mem, OCI_MANIFEST, img.manifest.bytes), "src");
    const t = new RegistryTarget(client, repo, this.clientOptions());
    const root = await copy(mem, t, { srcRef: "src", dstRef: id });
    if (root.digest !== img.manifest.desc.digest) throw new SoakError("wrong-digest", root.digest);
    this.ackManifest(this.imageAck(img, repo, id, "ocipkg copy"));
  }

  async pushImageDir(id: string): Promise<void> {
    const repo = this.repo();
    const img = this.image(id);
    const dir = join(this.work, "tmp", id);
    try {
      await this.writeOciDir(img, dir);
      const r = await pushImage(
        { kind: "oci-dir", path: dir, ref: "src" },
        `${this.addr}/${repo}:${id}`,
        this.clientOptions(),
      );
      if (r.digest !== img.manifest.desc.digest) throw new SoakError("wrong-digest", r.digest);
      this.ackManifest(this.imageAck(img, repo, id, "ocipkg pushImage"));
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }

  async smallPull(client: RegistryClient): Promise<boolean> {
    if (this.smallAcks.length === 0) return false;
    const b = this.pick(this.smallAcks);
    const isManifest = this.manifestDigests.has(b.digest);
    const desc = {
      mediaType: isManifest ? OCI_MANIFEST : "application/octet-stream",
      digest: b.digest,
      size: b.size,
    };
    const t = new RegistryTarget(client, b.repo, this.clientOptions());
    const start = this.now;
    const bytes = await fetchBytes(t, desc);
    this.smallPulls.push({ start, end: this.now });
    this.bytesPulled += bytes.byteLength;
    return true;
  }

  async blobPull(client: RegistryClient): Promise<boolean> {
    if (this.allAcks.length === 0) return false;
    const b = this.pick(this.allAcks);
    const t = new RegistryTarget(client, b.repo, this.clientOptions());
    // a manifest's digest fetched as a blob: the blob endpoint serves it too
    const stream = await t.fetch({ mediaType: "application/octet-stream", ...b });
    let n = 0;
    for await (const chunk of stream) n += chunk.byteLength;
    if (n !== b.size) throw new SoakError("short-read", `${n} of ${b.size}`);
    this.bytesPulled += n;
    return true;
  }

  async imagePull(id: string): Promise<boolean> {
    if (this.ackManifests.length === 0) return false;
    const m = this.pick(this.ackManifests);
    const dir = join(this.work, "tmp", id);
    try {
      const digest = await pullImage(`${this.addr}/${m.repo}:${m.tag}`, `oci:${dir}`, {
        ...this.clientOptions(),
      });
      if (digest !== m.digest) throw new SoakError("wrong-digest", `${m.tag}: ${digest}`);
      this.bytesPulled += m.blobs.reduce((n, b) => n + b.size, m.size);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
    return true;
  }

  async copyBetween(id: string): Promise<boolean> {
    if (this.ackManifests.length === 0) return false;
    const m = this.pick(this.ackManifests);
    const repo = this.repo();
    const digest = await copyImage(
      `${this.addr}/${m.repo}:${m.tag}`,
      `${this.addr}/${repo}:${id}`,
      this.clientOptions(),
    );
    if (digest !== m.digest) throw new SoakError("wrong-digest", `${m.tag}: ${digest}`);
    this.ackManifest({ ...m, repo, tag: id, by: "ocipkg copyImage" });
    return true;
  }

  /** One blob uploaded several times at once: by the library and as raw monolithic POSTs. */
  async duplicates(client: RegistryClient): Promise<void> {
    const repo = this.repo();
    const other = this.repo();
    const bytes = randomBytes(Math.max(KiB, this.size(false)));
    const digest = digestOf(bytes);
    const k = 3 + Math.floor(this.rand() * 4);
    const results = await Promise.allSettled(Array.from({ length: k }, async (_, i) => {
      const target = i === k - 1 ? other : repo;
      if (i % 2 === 0) {
        const t = new RegistryTarget(client, target, this.clientOptions());
        const d = await pushBytes(t, "application/octet-stream", bytes);
        this.ackBlob({
          repo: target,
          digest: d.digest,
          size: d.size,
          by: "ocipkg pushBytes (dup)",
        });
      } else {
        const res = await this.rawRetry(
          `/v2/${target}/blobs/uploads/?digest=${digest}`,
          () => ({
            method: "POST",
            body: bytes,
            headers: { "content-type": "application/octet-stream" },
          }),
        );
        await res.body?.cancel();
        if (res.status !== 201) {
          throw new SoakError(`http-${res.status}`, `POST ?digest=: ${res.status}`);
        }
        this.ackBlob({
          repo: target,
          digest,
          size: bytes.byteLength,
          by: "raw POST ?digest= (dup)",
        });
      }
    }));
    const failed = results.find((r) => r.status === "rejected") as
      | PromiseRejectedResult
      | undefined;
    if (failed) throw failed.reason;
  }

  /** An upload cut short on purpose; its blob must never become visible. */
  async abort(): Promise<void> {
    const repo = this.repo();
    const bytes = randomBytes(64 * KiB + Math.floor(this.rand() * 4 * MiB));
    const digest = digestOf(bytes);
    const kinds = [
      "stream-error POST ?digest=",
      "stream-error PATCH",
      "socket-cut PATCH",
      "socket-cut POST ?digest=",
    ];
    const kind = this.pick(kinds);
    let session: string | undefined;
    if (kind.endsWith("PATCH")) session = await this.openSession(repo);
    this.aborted.push({ repo, digest, kind });
    this.aborts[kind] = (this.aborts[kind] ?? 0) + 1;
    const host = `Host: ${this.addr}\r\n`;
    switch (kind) {
      case "stream-error POST ?digest=":
      case "stream-error PATCH": {
        const path = session ?? `/v2/${repo}/blobs/uploads/?digest=${digest}`;
        try {
          const res = await this.raw(path, {
            method: session ? "PATCH" : "POST",
            body: this.failingBody(bytes),
            headers: { "content-type": "application/octet-stream" },
          });
          await res.body?.cancel();
          // an answer at all means the server took the short body as whole: it must not store it
          if (res.status < 400) throw new SoakError(`aborted-body-accepted-${res.status}`, path);
        } catch (e) {
          if (e instanceof SoakError) throw e;
        }
        break;
      }
      case "socket-cut PATCH":
        await this.cutSocket(
          `PATCH ${session} HTTP/1.1\r\n${host}Content-Type: application/octet-stream\r\n` +
            `Content-Length: ${bytes.byteLength}\r\nContent-Range: 0-${
              bytes.byteLength - 1
            }\r\n\r\n`,
          bytes,
        );
        break;
      case "socket-cut POST ?digest=":
        await this.cutSocket(
          `POST /v2/${repo}/blobs/uploads/?digest=${digest} HTTP/1.1\r\n${host}` +
            `Content-Type: application/octet-stream\r\nContent-Length: ${bytes.byteLength}\r\n\r\n`,
          bytes,
        );
        break;
    }
    if (session && !this.restarting && !(await this.sessionGone(session))) this.lingering++;
  }

  /** An upload session with a first chunk, then left open (the stop must remove its file). */
  async abandon(): Promise<void> {
    const repo = this.repo();
    const session = await this.openSession(repo);
    const bytes = randomBytes(1 + Math.floor(this.rand() * 256 * KiB));
    const res = await this.raw(session, {
      method: "PATCH",
      body: bytes,
      headers: {
        "content-type": "application/octet-stream",
        "content-range": `0-${bytes.byteLength - 1}`,
      },
    });
    await res.body?.cancel();
    if (res.status !== 202) throw new SoakError(`http-${res.status}`, `PATCH: ${res.status}`);
    this.aborts["session left open"] = (this.aborts["session left open"] ?? 0) + 1;
  }

  async libraryClient(n: number): Promise<void> {
    const client = new RegistryClient(this.addr, this.clientOptions());
    const ops: [number, string][] = [
      [22, "pushBytes"],
      [10, "copy to registry"],
      [6, "pushImage"],
      [28, "small pull"],
      [4, "blob stream pull"],
      [7, "pullImage"],
      [4, "copyImage"],
      [8, "duplicate uploads"],
      [9, "abort"],
      [2, "abandon"],
    ];
    const total = ops.reduce((s, [w]) => s + w, 0);
    while (this.now < this.deadline) {
      let r = this.rand() * total;
      const name = ops.find(([w]) => (r -= w) < 0)![1];
      const id = `c${n}-${this.seq++}`;
      switch (name) {
        case "pushBytes":
          await this.op(name, () => this.pushBlob(client));
          break;
        case "copy to registry":
          await this.op(name, () => this.pushCopy(client, id));
          break;
        case "pushImage":
          await this.op(name, () => this.pushImageDir(id));
          break;
        case "small pull":
        case "blob stream pull":
        case "pullImage":
        case "copyImage": {
          const fn = {
            "small pull": () => this.smallPull(client),
            "blob stream pull": () => this.blobPull(client),
            "pullImage": () => this.imagePull(id),
            "copyImage": () => this.copyBetween(id),
          }[name];
          // nothing to pull yet: push instead
          await this.op(name, async () => {
            if (!(await fn())) await this.pushBlob(client);
          });
          break;
        }
        case "duplicate uploads":
          await this.op(name, () => this.duplicates(client));
          break;
        case "abort":
          await this.op(name, () => this.abort());
          break;
        case "abandon":
          if (this.abandoned < this.o.abandonPerInstance && !this.restarting) {
            this.abandoned++;
            await this.op(name, () => this.abandon());
          }
          break;
      }
    }
    client.close();
  }

  // ---- skopeo

  async skopeoRun(args: string[], timeoutMs = 120_000): Promise<void> {
    const tmp = join(this.work, "skopeo-tmp");
    await Deno.mkdir(tmp, { recursive: true });
    const child = new Deno.Command("skopeo", {
      args,
      env: { TMPDIR: tmp },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, timeoutMs);
    const r = await child.output();
    clearTimeout(timer);
    if (!r.success) {
      const err = new TextDecoder().decode(r.stderr).trim().split("\n").pop() ?? "";
      const why = /refused/i.test(err)
        ? "connection-refused"
        : /manifest unknown|not found/i.test(err)
        ? "not-found"
        : /reset|EOF|closed/i.test(err)
        ? "connection-lost"
        : /\b(4\d\d|5\d\d)\b/.exec(err)?.[1] ?? `exit-${r.code}`;
      throw new SoakError(`skopeo ${why}`, err.slice(0, 400));
    }
  }

  async skopeoPush(id: string): Promise<void> {
    const repo = this.repo();
    const img = this.image(id);
    const dir = join(this.work, "tmp", id);
    const digestFile = join(this.work, "tmp", `${id}.digest`);
    try {
      await this.writeOciDir(img, dir);
      await this.skopeoRun([
        "copy",
        "--quiet",
        "--retry-times",
        "3",
        "--preserve-digests", // else skopeo compresses the tar layers: another manifest
        "--dest-tls-verify=false",
        "--digestfile",
        digestFile,
        `oci:${dir}:src`,
        `docker://${this.addr}/${repo}:${id}`,
      ]);
      const pushed = (await Deno.readTextFile(digestFile)).trim();
      if (pushed !== img.manifest.desc.digest) {
        throw new SoakError(
          "skopeo changed the manifest",
          `${pushed} ≠ ${img.manifest.desc.digest}`,
        );
      }
      this.ackManifest(this.imageAck(img, repo, id, "skopeo copy oci: → docker://"));
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(digestFile).catch(() => {});
    }
  }

  async skopeoPull(id: string): Promise<boolean> {
    if (this.ackManifests.length === 0) return false;
    const m = this.pick(this.ackManifests);
    const dir = join(this.work, "tmp", id);
    try {
      await this.skopeoRun([
        "copy",
        "--quiet",
        "--retry-times",
        "3",
        "--preserve-digests",
        "--src-tls-verify=false",
        `docker://${this.addr}/${m.repo}:${m.tag}`,
        `oci:${dir}:x`,
      ]);
      const index = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
      const got = index.manifests?.[0]?.digest;
      if (got !== m.digest) {
        throw new SoakError("skopeo pulled other bytes", `${got} ≠ ${m.digest}`);
      }
      this.bytesPulled += m.blobs.reduce((n, b) => n + b.size, m.size);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
    return true;
  }

  async skopeoClient(n: number): Promise<void> {
    let push = true;
    while (this.now < this.deadline) {
      const id = `s${n}-${this.seq++}`;
      if (push) await this.op("skopeo push", () => this.skopeoPush(id));
      else {
        await this.op("skopeo pull", async () => {
          if (!(await this.skopeoPull(id))) await this.skopeoPush(id);
        });
      }
      push = !push;
    }
  }

  // ---- checks

  /** Every acknowledged push read back over HTTP; no aborted blob visible. */
  async readBack(c: Consistency): Promise<void> {
    const blobs = [...this.ackBlobs.values()];
    const manifests = this.ackManifests;
    let next = 0;
    const worker = async () => {
      while (next < blobs.length) {
        const b = blobs[next++]!;
        try {
          const res = await this.rawRetry(`/v2/${b.repo}/blobs/${b.digest}`, () => ({}));
          if (res.status !== 200) {
            await res.body?.cancel();
            throw new Error(`GET: ${res.status}`);
          }
          const h = createHash("sha256");
          let size = 0;
          for await (const chunk of res.body!) {
            h.update(chunk);
            size += chunk.byteLength;
          }
          const digest = `sha256:${h.digest("hex")}`;
          if (digest !== b.digest || size !== b.size) {
            throw new Error(`read ${size} bytes ${digest}`);
          }
          c.ackedBlobsReadable++;
        } catch (e) {
          c.ackedBlobsLost.push(
            `${b.repo}@${b.digest} (${b.size} bytes, ${b.by}): ${(e as Error).message}`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    const getManifest = async (m: AckManifest, ref: string): Promise<string> => {
      const res = await this.rawRetry(`/v2/${m.repo}/manifests/${ref}`, () => ({
        headers: { accept: MANIFEST_ACCEPT },
      }));
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (res.status !== 200) return `GET ${ref}: ${res.status}`;
      const digest = digestOf(bytes);
      return digest === m.digest ? "" : `GET ${ref}: ${digest}`;
    };
    for (const m of manifests) {
      const what = `${m.repo}:${m.tag} ${m.digest} (${m.by})`;
      try {
        const byDigest = await getManifest(m, m.digest);
        if (byDigest) c.ackedManifestsLost.push(`${what}: ${byDigest}`);
        else c.ackedManifestsReadable++;
        const byTag = await getManifest(m, m.tag);
        if (byTag) c.ackedTagsLost.push(`${what}: ${byTag}`);
        else c.ackedTagsReadable++;
      } catch (e) {
        c.ackedManifestsLost.push(`${what}: ${(e as Error).message}`);
      }
    }
    for (const a of this.aborted) {
      const res = await this.rawRetry(
        `/v2/${a.repo}/blobs/${a.digest}`,
        () => ({ method: "HEAD" }),
      );
      await res.body?.cancel();
      if (res.status !== 404) {
        c.abortedVisible.push(`${a.repo}@${a.digest} (${a.kind}): HEAD ${res.status}`);
      }
    }
  }

  /** The files in `<root>/.uploads`. */
  async uploadFiles(): Promise<string[]> {
    const names: string[] = [];
    for await (const e of Deno.readDir(join(this.root, ".uploads"))) {
      names.push(`.uploads/${e.name}`);
    }
    return names.sort();
  }

  /** The root on disk, after the last stop. */
  async checkRoot(c: Consistency): Promise<void> {
    const repos: string[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      const entries: Deno.DirEntry[] = [];
      for await (const e of Deno.readDir(dir)) entries.push(e);
      const isRepo = entries.some((e) => e.name === "oci-layout" && e.isFile);
      if (isRepo) repos.push(rel);
      for (const e of entries) {
        const path = join(dir, e.name);
        const name = rel ? `${rel}/${e.name}` : e.name;
        if (!rel && e.name === ".uploads") {
          for await (const u of Deno.readDir(path)) c.orphanUploads.push(`.uploads/${u.name}`);
          continue;
        }
        if (!rel && e.name === ".ocipkg-catalog" && e.isDirectory) {
          // serve's catalog index: its files, and one per name in repos/; a temp file is stray
          for await (const f of Deno.readDir(path)) {
            if (
              f.isFile && ["repos.base", "repos.base.checked", "format", "clean"].includes(f.name)
            ) continue;
            if (f.isDirectory && f.name === "repos") {
              for await (const k of Deno.readDir(join(path, "repos"))) {
                if (!k.isFile || k.name.startsWith(".")) {
                  c.strayFiles.push(`${name}/repos/${k.name}`);
                }
              }
              continue;
            }
            c.strayFiles.push(`${name}/${f.name}`);
          }
          continue;
        }
        if (isRepo && ["oci-layout", "index.json"].includes(e.name) && e.isFile) continue;
        if (isRepo && e.name === "blobs" && e.isDirectory) continue;
        if (isRepo && e.name === ".ocipkg-index" && e.isDirectory) continue; // serve's private index
        if (e.isDirectory) await walk(path, name);
        else c.strayFiles.push(name);
      }
    };
    await walk(this.root, "");
    c.repositories = repos.length;
    for (const rel of repos) {
      const dir = join(this.root, rel);
      const present = new Map<string, number>();
      for await (const alg of Deno.readDir(join(dir, "blobs"))) {
        if (!alg.isDirectory) {
          c.strayFiles.push(`${rel}/blobs/${alg.name}`);
          continue;
        }
        for await (const f of Deno.readDir(join(dir, "blobs", alg.name))) {
          const name = `${alg.name}:${f.name}`;
          if (alg.name !== "sha256" || !/^[0-9a-f]{64}$/.test(f.name) || !f.isFile) {
            c.strayFiles.push(`${rel}/blobs/${alg.name}/${f.name}`);
            continue;
          }
          try {
            const h = await hashFile(join(dir, "blobs", alg.name, f.name));
            c.blobFiles++;
            c.blobBytes += h.size;
            if (h.digest !== name) c.badBlobs.push(`${rel}@${name}: content hashes to ${h.digest}`);
            else present.set(name, h.size);
          } catch (e) {
            c.badBlobs.push(`${rel}@${name}: ${(e as Error).message}`);
          }
        }
      }
      let index: { manifests?: Descriptor[] };
      try {
        index = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
      } catch (e) {
        c.incomplete.push(`${rel}/index.json: ${(e as Error).message}`);
        continue;
      }
      const seen = new Set<string>();
      const check = async (d: Descriptor, where: string, depth: number): Promise<void> => {
        if (seen.has(d.digest)) return;
        seen.add(d.digest);
        c.manifests++;
        if (present.get(d.digest) !== d.size) {
          c.incomplete.push(`${where}: manifest ${d.digest} (${d.size} bytes) is missing`);
          return;
        }
        const hex = d.digest.slice("sha256:".length);
        const doc = JSON.parse(await Deno.readTextFile(join(dir, "blobs", "sha256", hex)));
        if (Array.isArray(doc.manifests)) {
          for (const m of doc.manifests as Descriptor[]) {
            if (depth < 8) await check(m, `${where} → ${d.digest}`, depth + 1);
          }
          return;
        }
        for (const b of [doc.config, ...(doc.layers ?? [])] as (Descriptor | undefined)[]) {
          if (b && present.get(b.digest) !== b.size) {
            c.incomplete.push(
              `${where}: manifest ${d.digest} names ${b.digest} (${b.size} bytes), missing`,
            );
          }
        }
      };
      for (const d of index.manifests ?? []) await check(d, `${rel}/index.json`, 0);
    }
  }

  async run(): Promise<SoakReport> {
    const o = this.o;
    const say = o.log ?? (() => {});
    const startedAt = new Date().toISOString();
    const peaks: number[] = [];
    const stops: { code: number | null; ms: number }[] = [];
    const startMs: number[] = [];
    const left: string[][] = [];
    let server = await ServeProcess.start(this.root, this.port, this.log);
    startMs.push(Math.round(server.startMs));
    say(`serve pid ${server.pid} on ${this.addr}, root ${this.root}`);
    await Deno.mkdir(join(this.work, "tmp"), { recursive: true });
    this.t0 = performance.now();
    this.deadline = o.durationMs;
    const restarter = (async () => {
      for (let i = 1; i <= o.restarts; i++) {
        await sleep(Math.max(0, (o.durationMs * i) / (o.restarts + 1) - this.now));
        peaks.push(await server.peakRssMiB());
        const start = this.now;
        this.restarting = true;
        say(`${(start / 1000).toFixed(1)} s: SIGTERM to serve (pid ${server.pid})`);
        stops.push(await server.stop());
        left.push(await this.uploadFiles());
        server = await ServeProcess.start(this.root, this.port, this.log);
        startMs.push(Math.round(server.startMs));
        this.abandoned = 0;
        this.restarting = false;
        this.gaps.push({ start, end: this.now });
        say(`${(this.now / 1000).toFixed(1)} s: serve listening again (pid ${server.pid})`);
      }
    })();
    const clients = Array.from(
      { length: o.clients },
      (_, i) =>
        this.skopeo && o.skopeoEvery > 0 && i % o.skopeoEvery === o.skopeoEvery - 1
          ? this.skopeoClient(i)
          : this.libraryClient(i),
    );
    const ticker = setInterval(() => {
      const ok = Object.values(this.ops).reduce((n, c) => n + c.ok, 0);
      const failed = Object.values(this.ops).reduce((n, c) => n + c.failed, 0);
      say(
        `${
          (this.now / 1000).toFixed(0)
        } s: ${ok} ops ok, ${failed} failed, ${this.log.requests} requests`,
      );
    }, 10_000);
    try {
      await Promise.all([restarter, ...clients]);
    } finally {
      clearInterval(ticker);
    }
    const loadSeconds = this.now / 1000;
    const requests = this.log.requests;
    say(`load done in ${loadSeconds.toFixed(1)} s; reading back what was acknowledged`);
    const c: Consistency = {
      ok: false,
      repositories: 0,
      blobFiles: 0,
      blobBytes: 0,
      badBlobs: [],
      manifests: 0,
      incomplete: [],
      orphanUploads: [],
      strayFiles: [],
      ackedBlobsReadable: 0,
      ackedBlobsLost: [],
      ackedManifestsReadable: 0,
      ackedManifestsLost: [],
      ackedTagsReadable: 0,
      ackedTagsLost: [],
      abortedVisible: [],
      cleanStops: false,
    };
    await this.readBack(c);
    peaks.push(await server.peakRssMiB());
    stops.push(await server.stop());
    left.push(await this.uploadFiles());
    say("serve stopped; checking the root");
    await this.checkRoot(c);
    c.cleanStops = stops.every((s) => s.code === 0);
    c.ok = c.cleanStops &&
      [
        c.badBlobs,
        c.incomplete,
        c.orphanUploads,
        c.strayFiles,
        c.ackedBlobsLost,
        c.ackedManifestsLost,
        c.ackedTagsLost,
        c.abortedVisible,
      ].every((l) => l.length === 0);
    const steady = this.smallPulls.filter((p) => !this.overlapsGap(p.start, p.end));
    const lat = steady.map((p) => p.end - p.start).sort((a, b) => a - b);
    const by: Record<string, number> = {};
    for (const b of this.ackBlobs.values()) by[b.by] = (by[b.by] ?? 0) + 1;
    const { log: _, ...options } = o;
    return {
      options,
      startedAt,
      loadSeconds: Math.round(loadSeconds * 10) / 10,
      skopeo: this.skopeo && o.skopeoEvery > 0,
      server: {
        requests,
        requestsPerSecond: Math.round(requests / loadSeconds),
        bytes: this.log.bytes,
        byStatus: this.log.byStatus,
        byMethod: this.log.byMethod,
        peakRssMiB: peaks,
        stopMs: stops.map((s) => s.ms),
        exitCodes: stops.map((s) => s.code),
        startMs,
        uploadsLeftAtStop: left,
        restartGapMs: this.gaps.map((g) => Math.round(g.end - g.start)),
        smallGets: (() => {
          const ms = this.log.smallGets.sort((a, b) => a - b);
          return {
            count: ms.length,
            p50Ms: percentile(ms, 50),
            p99Ms: percentile(ms, 99),
            maxMs: percentile(ms, 100),
          };
        })(),
        notOk: this.log.notOk,
        otherOutput: this.log.other,
      },
      clients: {
        ops: this.ops,
        bytesPushed: this.bytesPushed,
        bytesPulled: this.bytesPulled,
        smallPulls: {
          count: lat.length,
          p50Ms: percentile(lat, 50),
          p99Ms: percentile(lat, 99),
          maxMs: percentile(lat, 100),
          overlapped: this.smallPulls.length - lat.length,
        },
        errors: this.errors,
        errorSamples: this.errorSamples,
        retries: this.retries,
        aborts: this.aborts,
        abortedSessionsLingering: this.lingering,
      },
      acked: { blobs: this.ackBlobs.size, manifests: this.ackManifests.length, by },
      consistency: c,
    };
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.byteLength;) off += await conn.write(bytes.subarray(off));
}

async function haveSkopeo(): Promise<boolean> {
  try {
    return (await new Deno.Command("skopeo", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output()).success;
  } catch {
    return false;
  }
}

/**
 * Run a soak against a fresh `ocipkg serve` subprocess and check what it left.
 *
 * @param options what to run (the rest from {@link DEFAULTS})
 * @returns the measurements and the consistency result
 */
export async function runSoak(options: Partial<SoakOptions> = {}): Promise<SoakReport> {
  const o = { ...DEFAULTS, ...options };
  const work = await Deno.makeTempDir({ prefix: "ocipkg-soak-" });
  try {
    const soak = new Soak(o, work, o.skopeoEvery > 0 && (await haveSkopeo()));
    return await soak.run();
  } finally {
    if (o.keep) o.log?.(`kept ${work}`);
    else await Deno.remove(work, { recursive: true });
  }
}

// ---------------------------------------------------------------- the report

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

/**
 * The report as a table (and the failures of the checks, each listed).
 *
 * @param r a report
 * @returns lines of text
 */
export function formatReport(r: SoakReport): string {
  const rows: [string, string][] = [];
  const s = r.server;
  const cl = r.clients;
  const c = r.consistency;
  const opsOk = Object.values(cl.ops).reduce((n, x) => n + x.ok, 0);
  const opsFailed = Object.values(cl.ops).reduce((n, x) => n + x.failed, 0);
  rows.push([
    "load",
    `${r.loadSeconds} s, ${r.options.clients} clients${r.skopeo ? " (skopeo too)" : ""}`,
  ]);
  rows.push(["requests (serve log)", `${s.requests}, ${s.requestsPerSecond}/s`]);
  rows.push([
    "requests by status",
    Object.entries(s.byStatus).map(([k, v]) => `${k}: ${v}`).join(", "),
  ]);
  for (const [k, v] of Object.entries(s.notOk).sort()) rows.push([`  ${k}`, String(v)]);
  rows.push(["bytes (serve log)", mib(s.bytes)]);
  rows.push(["bytes pushed / pulled (clients)", `${mib(cl.bytesPushed)} / ${mib(cl.bytesPulled)}`]);
  rows.push([
    "small pulls (≤ 64 KiB) latency",
    `p50 ${cl.smallPulls.p50Ms} ms, p99 ${cl.smallPulls.p99Ms} ms, max ${cl.smallPulls.maxMs} ms (${cl.smallPulls.count}; ${cl.smallPulls.overlapped} over a restart left out)`,
  ]);
  rows.push([
    "  serve's own time for them (log)",
    `p50 ${s.smallGets.p50Ms} ms, p99 ${s.smallGets.p99Ms} ms, max ${s.smallGets.maxMs} ms (${s.smallGets.count} GETs)`,
  ]);
  rows.push(["serve peak RSS (VmHWM)", s.peakRssMiB.map((m) => `${m} MiB`).join(", ")]);
  rows.push([
    "serve start / stop / restart gap",
    `${s.startMs.join(", ")} ms / ${s.stopMs.join(", ")} ms / ${s.restartGapMs.join(", ")} ms`,
  ]);
  rows.push(["serve exit codes", s.exitCodes.join(", ")]);
  rows.push(["operations", `${opsOk} ok, ${opsFailed} failed; client retries ${cl.retries}`]);
  for (const [k, v] of Object.entries(cl.ops).sort()) {
    rows.push([`  ${k}`, `${v.ok} ok, ${v.failed} failed`]);
  }
  rows.push([
    "aborts on purpose",
    Object.entries(cl.aborts).map(([k, v]) => `${k}: ${v}`).join(", "),
  ]);
  rows.push(["aborted sessions still open after 3 s", String(cl.abortedSessionsLingering)]);
  rows.push(["errors", Object.keys(cl.errors).length === 0 ? "none" : ""]);
  for (const [k, v] of Object.entries(cl.errors).sort()) {
    rows.push([`  ${k}`, `${v.total} (${v.duringRestart} over a restart)`]);
  }
  rows.push(["acknowledged", `${r.acked.blobs} blobs, ${r.acked.manifests} manifests (tags)`]);
  rows.push([
    "read back",
    `${c.ackedBlobsReadable} blobs, ${c.ackedManifestsReadable} manifests by digest, ${c.ackedTagsReadable} by tag`,
  ]);
  rows.push([
    "root",
    `${c.repositories} repositories, ${c.blobFiles} blob files (${
      mib(c.blobBytes)
    }), ${c.manifests} manifests`,
  ]);
  rows.push(["consistency", c.ok ? "PASS" : "FAIL"]);
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`);
  const lists: [string, string[]][] = [
    ["blob files not matching their name", c.badBlobs],
    ["manifests incomplete", c.incomplete],
    ["orphan upload files", c.orphanUploads],
    ["stray files", c.strayFiles],
    ["acknowledged blobs lost", c.ackedBlobsLost],
    ["acknowledged manifests lost", c.ackedManifestsLost],
    ["acknowledged tags lost", c.ackedTagsLost],
    ["aborted blobs visible", c.abortedVisible],
  ];
  for (const [title, list] of lists) {
    if (list.length === 0) continue;
    lines.push(`${title} (${list.length}):`);
    for (const l of list.slice(0, 20)) lines.push(`  ${l}`);
    if (list.length > 20) lines.push(`  … ${list.length - 20} more`);
  }
  s.uploadsLeftAtStop.forEach((l, i) => {
    if (l.length) lines.push(`upload files left when instance ${i + 1} stopped: ${l.join(", ")}`);
  });
  if (!c.cleanStops) lines.push(`serve did not exit 0 on SIGTERM: ${s.exitCodes.join(", ")}`);
  if (s.otherOutput.length) {
    lines.push("serve's other output:");
    for (const l of s.otherOutput.slice(0, 10)) lines.push(`  ${l}`);
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------- command line

const USAGE = `usage: deno task soak [options]
  --duration <s>        seconds of load (default ${DEFAULTS.durationMs / 1000})
  --clients <n>         concurrent clients (default ${DEFAULTS.clients})
  --skopeo-every <n>    every n-th client runs skopeo; 0: none (default ${DEFAULTS.skopeoEvery})
  --max-size-mb <n>     largest ordinary blob, MiB (sizes log-uniform from 1 byte; default ${
  DEFAULTS.maxSizeBytes / MiB
})
  --large-mb <n>        largest of the larger blobs, MiB; 0: none (default ${
  DEFAULTS.largeBytes / MiB
})
  --large-every <n>     one blob push in n is a larger one (default ${DEFAULTS.largeEvery})
  --restarts <n>        SIGTERM + restart of serve during the run (default ${DEFAULTS.restarts})
  --repos <n>           repositories shared by the clients (default ${DEFAULTS.repos})
  --seed <n>            seed of the choices (default ${DEFAULTS.seed})
  --json <file>         write the report as JSON here
  --keep                keep the work directory (the served root)`;

if (import.meta.main) {
  const args = parseArgs({
    args: Deno.args,
    options: {
      duration: { type: "string" },
      clients: { type: "string" },
      "skopeo-every": { type: "string" },
      "max-size-mb": { type: "string" },
      "large-mb": { type: "string" },
      "large-every": { type: "string" },
      restarts: { type: "string" },
      repos: { type: "string" },
      seed: { type: "string" },
      json: { type: "string" },
      keep: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (args.values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const num = (name: keyof typeof args.values, dflt: number, min: number): number => {
    const v = args.values[name];
    if (v === undefined || typeof v !== "string") return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) {
      console.error(`error: --${name} must be a number ≥ ${min}, got '${v}'`);
      Deno.exit(2);
    }
    return n;
  };
  const report = await runSoak({
    durationMs: num("duration", DEFAULTS.durationMs / 1000, 1) * 1000,
    clients: Math.round(num("clients", DEFAULTS.clients, 1)),
    skopeoEvery: Math.round(num("skopeo-every", DEFAULTS.skopeoEvery, 0)),
    maxSizeBytes: Math.round(num("max-size-mb", DEFAULTS.maxSizeBytes / MiB, 0.001) * MiB),
    largeBytes: Math.round(num("large-mb", DEFAULTS.largeBytes / MiB, 0) * MiB),
    largeEvery: num("large-every", DEFAULTS.largeEvery, 1),
    restarts: Math.round(num("restarts", DEFAULTS.restarts, 0)),
    repos: Math.round(num("repos", DEFAULTS.repos, 1)),
    seed: Math.round(num("seed", DEFAULTS.seed, 0)),
    keep: args.values.keep,
    log: (l) => console.error(l),
  });
  console.log(formatReport(report));
  if (args.values.json) {
    await Deno.writeTextFile(args.values.json, JSON.stringify(report, null, 2) + "\n");
    console.log(`wrote ${args.values.json}`);
  }
  Deno.exit(report.consistency.ok ? 0 : 1);
}
