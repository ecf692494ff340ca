/**
 * Content digests (`sha256:<hex>`, `sha512:<hex>`), the digesters that
 * compute them (on this thread, or in a worker for large blobs) and the one
 * streaming verifier that checks size and digest while data flows.
 *
 * @module
 */
import type { Hash } from "node:crypto";
import { nodeCrypto } from "../util/lazy_node.ts";
import { FormatError, OcipkgError, VerificationError } from "../util/errors.ts";

/** Digest algorithms ocipkg can compute and verify. */
export type DigestAlgorithm = "sha256" | "sha512";

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/** A digest string split into its algorithm and hex parts. */
export interface ParsedDigest {
  /** Hash algorithm. */
  algorithm: DigestAlgorithm;
  /** Lower-case hex encoding of the hash. */
  hex: string;
}

/**
 * Parse and validate a digest string.
 *
 * @param digest e.g. `sha256:2c26b4…`
 * @returns the algorithm and hex
 * @throws {FormatError} when the algorithm is unsupported or the hex malformed
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FormatError } from "@ocipkg/cli";
 * import { parseDigest } from "@ocipkg/cli/oci";
 * const d = parseDigest("sha256:" + "a".repeat(64));
 * assert.equal(d.algorithm, "sha256");
 * assert.equal(d.hex, "a".repeat(64));
 * assert.throws(() => parseDigest("md5:d41d8cd98f00b204e9800998ecf8427e"), FormatError);
 * assert.throws(() => parseDigest("sha256:abc"), FormatError); // too short
 * ```
 */
export function parseDigest(digest: string): ParsedDigest {
  const m = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/.exec(digest);
  if (!m) throw new FormatError(`invalid digest '${digest}'`);
  const algorithm = m[1] as DigestAlgorithm;
  const hex = m[2]!;
  const len = HEX_LENGTH[algorithm];
  if (len === undefined) {
    throw new FormatError(`unsupported digest algorithm '${m[1]}' in '${digest}'`);
  }
  if (hex.length !== len || !/^[a-f0-9]+$/.test(hex)) {
    throw new FormatError(`invalid ${algorithm} digest '${digest}'`);
  }
  return { algorithm, hex };
}

/**
 * Whether a string is a valid, supported digest.
 *
 * @param s any string
 * @returns true for `sha256:<64 hex>` or `sha512:<128 hex>`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isDigest } from "@ocipkg/cli/oci";
 * assert.ok(isDigest("sha256:" + "0".repeat(64)));
 * assert.ok(!isDigest("latest"));
 * assert.ok(!isDigest("sha256:" + "A".repeat(64))); // hex must be lower case
 * ```
 */
export function isDigest(s: string): boolean {
  // no exception on the way: store walks and lock files ask this of every name
  return DIGEST.test(s);
}

/** Exactly what {@link parseDigest} accepts. */
const DIGEST = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/**
 * Incremental hasher producing a digest string.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Digester } from "./digest.ts";
 * const h = new Digester();
 * h.update(new TextEncoder().encode("{"));
 * h.update(new TextEncoder().encode("}"));
 * assert.equal(h.size, 2);
 * assert.equal(h.digest(), "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
 * ```
 */
export class Digester {
  #hash: Hash;
  #algorithm: DigestAlgorithm;
  #size = 0;
  /**
   * Create a Digester.
   * @param algorithm hash algorithm, sha256 by default
   */
  constructor(algorithm: DigestAlgorithm = "sha256") {
    this.#algorithm = algorithm;
    this.#hash = nodeCrypto().createHash(algorithm);
  }
  /** Feed bytes. */
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#size += chunk.byteLength;
  }
  /** Number of bytes fed so far. */
  get size(): number {
    return this.#size;
  }
  /** Finish and return `<algorithm>:<hex>`. Call once. */
  digest(): string {
    return `${this.#algorithm}:${this.#hash.digest("hex")}`;
  }
}

/** A worker that hears nothing for this long stops itself (ms). */
const IDLE_MS = 120_000;

const WORKER_SOURCE = `
import { createHash } from "node:crypto";
let hash, ctl, data, slotSize, idle;
self.onmessage = (e) => {
  const m = e.data;
  // a digester its owner forgot (a bug) must not keep the process alive for ever
  clearTimeout(idle);
  idle = setTimeout(() => self.close(), ${IDLE_MS});
  try {
    if (m.init) {
      ctl = new Int32Array(m.ctl);
      data = new Uint8Array(m.data);
      slotSize = m.slotSize;
      hash = createHash(m.algorithm);
    } else if (m.slot !== undefined) {
      hash.update(data.subarray(m.slot * slotSize, m.slot * slotSize + m.len));
      Atomics.store(ctl, m.slot, 0);
      Atomics.notify(ctl, m.slot);
    } else if (m.finish) {
      new Uint8Array(m.out).set(new TextEncoder().encode(hash.digest("hex")));
      Atomics.store(ctl, ctl.length - 1, 1);
      Atomics.notify(ctl, ctl.length - 1);
    }
  } catch {
    Atomics.store(ctl, ctl.length - 1, 2);
    for (let i = 0; i < ctl.length; i++) Atomics.notify(ctl, i);
  }
};
`;

let workerUrl: string | undefined;

/** Blobs at least this large are hashed off the main thread (32 MiB). */
export const OFF_THREAD_MIN = 32 << 20;
const SLOTS = 4;
const SLOT_SIZE = 4 << 20;
/** Longest wait for the worker before it is declared stuck (ms). */
const STUCK_MS = 60_000;

/**
 * A streaming digest computed by a worker thread; same shape as the
 * synchronous {@link Digester} (`update`, `size`, `digest()`). For large
 * blobs: sha256 runs at ≈ 1.8 GB/s on these machines — slower than a local
 * registry sends — and on the main thread it cannot overlap with receiving (a
 * 1 GiB pull spent ≈ 0.57 s hashing in series with the download). Each chunk
 * is copied into a ring of shared 4 MiB slots that a worker hashes, so the
 * main thread only copies; it waits (Atomics) only when the worker is a whole
 * ring behind. `serve` hashes its uploads here, a layout the large blobs
 * nobody vouched for; downloads do only when asked (`hashOffThread`): on 2
 * cores the copy into the ring cost more than the overlap gained (see
 * `RegistryTargetOptions.hashOffThread`).
 *
 * The worker's code is inline (a blob: URL), so nothing is read next to the
 * module and `deno compile` needs no extra files. A live worker keeps the
 * process alive: every digester must end with {@link BackgroundDigester.digest}
 * or {@link BackgroundDigester.dispose} (a forgotten one stops itself after
 * two minutes without work). The worker starts with the first bytes.
 *
 * It lives in this module, not one of its own, because {@link Verifier}'s
 * constructor (synchronous) may need it: a module of its own was one more
 * for every command to load, used by few.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BackgroundDigester, digestOf } from "./digest.ts";
 * const data = new Uint8Array(5 << 20); // more than one 4 MiB slot of the ring
 * const bg = new BackgroundDigester("sha256");
 * bg.update(data);
 * assert.equal(bg.digest(), digestOf(data)); // the worker stops with digest()
 * ```
 */
export class BackgroundDigester {
  #algorithm: string;
  #worker: Worker | undefined;
  #ctl: Int32Array;
  #data: Uint8Array;
  #out = new SharedArrayBuffer(128);
  #slot = 0;
  #fill = 0;
  #size = 0;
  #disposed = false;

  /**
   * Start a worker for one digest.
   * @param algorithm `sha256` or `sha512`
   */
  constructor(algorithm: "sha256" | "sha512") {
    this.#algorithm = algorithm;
    const ctl = new SharedArrayBuffer(4 * (SLOTS + 1));
    const data = new SharedArrayBuffer(SLOTS * SLOT_SIZE);
    this.#ctl = new Int32Array(ctl);
    this.#data = new Uint8Array(data);
  }

  /** The worker, started by the first bytes (a digester never fed starts none). */
  #start(): Worker {
    if (this.#disposed) throw new OcipkgError("the hashing worker was stopped");
    if (this.#worker) return this.#worker;
    workerUrl ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    const w = new Worker(workerUrl, { type: "module" });
    w.postMessage({
      init: true,
      ctl: this.#ctl.buffer,
      data: this.#data.buffer,
      slotSize: SLOT_SIZE,
      algorithm: this.#algorithm,
    });
    return this.#worker = w;
  }

  /**
   * Feed bytes (copied into the ring; `chunk` may be reused afterwards).
   * @param chunk bytes
   */
  update(chunk: Uint8Array): void {
    this.#size += chunk.byteLength;
    while (chunk.byteLength > 0) {
      if (this.#fill === 0) this.#waitFor(this.#slot, 1); // the slot is still being hashed
      const n = Math.min(chunk.byteLength, SLOT_SIZE - this.#fill);
      this.#data.set(chunk.subarray(0, n), this.#slot * SLOT_SIZE + this.#fill);
      this.#fill += n;
      chunk = chunk.subarray(n);
      if (this.#fill === SLOT_SIZE) this.#post();
    }
  }

  /** Number of bytes fed so far. */
  get size(): number {
    return this.#size;
  }

  /**
   * Finish and return `<algorithm>:<hex>`; stops the worker. Call once.
   * @returns the digest
   */
  digest(): string {
    if (this.#fill > 0) this.#post();
    this.#start().postMessage({ finish: true, out: this.#out });
    this.#waitFor(SLOTS, 0);
    const status = Atomics.load(this.#ctl, SLOTS);
    this.dispose();
    if (status !== 1) throw new OcipkgError("the hashing worker failed");
    const hex = new TextDecoder().decode(new Uint8Array(this.#out).slice()).replace(/\0+$/, "");
    return `${this.#algorithm}:${hex}`;
  }

  /** Stop the worker (idempotent); for error paths. */
  dispose(): void {
    this.#disposed = true;
    this.#worker?.terminate();
    this.#worker = undefined;
  }

  #post(): void {
    Atomics.store(this.#ctl, this.#slot, 1);
    this.#start().postMessage({ slot: this.#slot, len: this.#fill });
    this.#slot = (this.#slot + 1) % SLOTS;
    this.#fill = 0;
  }

  /** Block while `ctl[index] === busy` (the worker clears it), or until it failed. */
  #waitFor(index: number, busy: number): void {
    if (this.#disposed) throw new OcipkgError("the hashing worker was stopped");
    const deadline = Date.now() + STUCK_MS;
    while (Atomics.load(this.#ctl, index) === busy) {
      if (Atomics.load(this.#ctl, SLOTS) === 2) break;
      const left = deadline - Date.now();
      if (left <= 0) {
        this.dispose();
        throw new OcipkgError("the hashing worker stopped responding");
      }
      Atomics.wait(this.#ctl, index, busy, Math.min(left, 1000));
    }
    if (Atomics.load(this.#ctl, SLOTS) === 2) {
      this.dispose();
      throw new OcipkgError("the hashing worker failed");
    }
  }
}

/**
 * Digest of a byte array (for small things: manifests, configs).
 *
 * @param bytes content
 * @param algorithm sha256 by default
 * @returns `<algorithm>:<hex>`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestOf } from "@ocipkg/cli/oci";
 * const bytes = new TextEncoder().encode("{}");
 * assert.equal(
 *   digestOf(bytes),
 *   "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
 * );
 * assert.match(digestOf(bytes, "sha512"), /^sha512:[0-9a-f]{128}$/);
 * ```
 */
export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = "sha256"): string {
  const h = new Digester(algorithm);
  h.update(bytes);
  return h.digest();
}

/**
 * Digest of a byte array with WebCrypto: for small things on the fast paths
 * (a cached `get`/`link`), where the first use of `node:crypto` would cost
 * tens of milliseconds of start-up.
 *
 * @param bytes content
 * @param algorithm sha256 by default
 * @returns `<algorithm>:<hex>`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestBytes, digestOf } from "@ocipkg/cli/oci";
 * const bytes = new TextEncoder().encode("{}");
 * assert.equal(await digestBytes(bytes), digestOf(bytes));
 * assert.equal(await digestBytes(bytes, "sha512"), digestOf(bytes, "sha512"));
 * ```
 */
export async function digestBytes(
  bytes: Uint8Array,
  algorithm: DigestAlgorithm = "sha256",
): Promise<string> {
  const name = algorithm === "sha512" ? "SHA-512" : "SHA-256";
  const hash = new Uint8Array(
    await crypto.subtle.digest(name, bytes as Uint8Array<ArrayBuffer>),
  );
  return `${algorithm}:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * Check bytes held in memory against what was expected — the same checks and
 * messages as {@link Verifier}, hashed with WebCrypto (see {@link digestBytes}).
 *
 * @param bytes the content
 * @param expected expected digest and/or size
 * @param what names the content in error messages
 * @returns what was measured
 * @throws {VerificationError} on a size or digest mismatch
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VerificationError } from "@ocipkg/cli";
 * import { digestOf, verifyBytes } from "@ocipkg/cli/oci";
 * const data = new TextEncoder().encode("hi");
 * assert.deepEqual(await verifyBytes(data, { digest: digestOf(data), size: 2 }, "greeting"), {
 *   digest: digestOf(data),
 *   size: 2,
 * });
 * await assert.rejects(verifyBytes(new TextEncoder().encode("ho"), { digest: digestOf(data) }, "greeting"), VerificationError);
 * ```
 */
export async function verifyBytes(
  bytes: Uint8Array,
  expected: Expected,
  what: string,
): Promise<Measured> {
  const size = bytes.byteLength;
  if (expected.size !== undefined && size !== expected.size) {
    throw sizeMismatch(what, expected.size, size);
  }
  const algorithm = expected.digest ? parseDigest(expected.digest).algorithm : "sha256";
  const digest = await digestBytes(bytes, algorithm);
  if (expected.digest && digest !== expected.digest) {
    throw digestMismatch(what, expected.digest, digest);
  }
  return { digest, size };
}

function sizeMismatch(what: string, want: number, got: number): VerificationError {
  return new VerificationError(`${what}: size mismatch, expected ${want} bytes but got ${got}`);
}

function digestMismatch(what: string, want: string, got: string): VerificationError {
  return new VerificationError(`${what}: digest mismatch, expected ${want} but got ${got}`);
}

/** What a stream is expected to hold. */
export interface Expected {
  /** Expected digest; omit to only measure. */
  digest?: string;
  /** Expected size in bytes; omit to only measure. */
  size?: number;
}

/** What a {@link VerifyingStream} measured. */
export interface Measured {
  /** Digest of the bytes that flowed. */
  digest: string;
  /** Number of bytes that flowed. */
  size: number;
}

const vouched = new WeakMap<ReadableStream<Uint8Array>, Expected>();

/**
 * Mark a stream as already verified by its producer against `expected`
 * (digest and size): the producer errors the stream, before it closes, when
 * the bytes differ. A consumer that would verify the same digest again (a
 * layout writing a blob pulled from a registry) may then only count bytes —
 * one sha256 pass per blob instead of two. Only ocipkg's own producers mark
 * streams; the mark is lost by any transformation (pass it on with
 * {@link vouchedFor} when the bytes are unchanged, e.g. a tee branch).
 *
 * @param stream the producer's stream
 * @param expected the digest and size it is verified against
 * @returns the same stream
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestOf } from "@ocipkg/cli/oci";
 * import { vouch, vouchedFor } from "./digest.ts";
 * const data = new TextEncoder().encode("hi");
 * const desc = { digest: digestOf(data), size: 2 };
 * const s = vouch(ReadableStream.from([data]), desc);
 * assert.deepEqual(vouchedFor(s), desc);
 * assert.equal(vouchedFor(ReadableStream.from([data])), undefined);
 * ```
 */
export function vouch(
  stream: ReadableStream<Uint8Array>,
  expected: Expected,
): ReadableStream<Uint8Array> {
  if (expected.digest !== undefined && expected.size !== undefined) {
    vouched.set(stream, { digest: expected.digest, size: expected.size });
  }
  return stream;
}

/**
 * What a stream was marked as verified against by {@link vouch}, if anything.
 *
 * @param stream a stream
 * @returns the digest and size, or undefined
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { vouchedFor } from "./digest.ts";
 * assert.equal(vouchedFor(ReadableStream.from([new Uint8Array(1)])), undefined);
 * ```
 */
export function vouchedFor(stream: ReadableStream<Uint8Array>): Expected | undefined {
  return vouched.get(stream);
}

/** Options of a {@link Verifier}. */
export interface VerifierOptions {
  /** The stream to be verified: a {@link vouch}ed one is only counted. */
  source?: ReadableStream<Uint8Array>;
  /** Hash large content of known size in a worker thread. */
  offThread?: boolean;
  /**
   * The size the content is expected to reach when `expected.size` is not
   * given (e.g. a request's `Content-Length`): with `offThread`, content
   * hinted to be large is hashed in a worker too.
   */
  sizeHint?: number;
  /** The algorithm to measure with when `expected.digest` is not given (default sha256). */
  algorithm?: DigestAlgorithm;
}

/**
 * The one verifier: counts and hashes bytes as they arrive, fails as soon as
 * more than the expected size arrives, and at {@link Verifier.finish} when the
 * size or digest differs. {@link VerifyingStream} wraps it for Web streams.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VerificationError } from "@ocipkg/cli";
 * import { digestOf, Verifier } from "@ocipkg/cli/oci";
 * const data = new TextEncoder().encode("hi");
 * const ok = new Verifier({ digest: digestOf(data), size: 2 }, "greeting");
 * ok.update(data);
 * assert.deepEqual(ok.finish(), { digest: digestOf(data), size: 2 });
 * // other bytes of the same size: the digest differs
 * const bad = new Verifier({ digest: digestOf(data), size: 2 }, "greeting");
 * bad.update(new TextEncoder().encode("ho"));
 * assert.throws(() => bad.finish(), VerificationError);
 * // nothing expected: it only measures (here with sha512)
 * const m = new Verifier({}, "greeting", { algorithm: "sha512" });
 * m.update(data);
 * assert.deepEqual(m.finish(), { digest: digestOf(data, "sha512"), size: 2 });
 * ```
 */
export class Verifier {
  #hasher: Digester | BackgroundDigester | undefined;
  #size = 0;
  #expected: Expected;
  #what: string;

  /**
   * Create a Verifier.
   * @param expected expected digest and/or size
   * @param what names the content in error messages, e.g. "blob sha256:… of image x"
   * @param options `source`: the stream about to be verified — when its
   *   producer vouched for this very digest and size ({@link vouch}), the
   *   bytes are only counted, not hashed a second time; `offThread`: hash
   *   content of a known size ≥ 32 MiB in a worker thread (then call
   *   {@link Verifier.dispose} on every path that does not reach `finish`);
   *   `sizeHint`: the size to judge that by when `expected` has none;
   *   `algorithm`: what to measure with when `expected` has no digest
   */
  constructor(expected: Expected, what: string, options: VerifierOptions = {}) {
    this.#expected = expected;
    this.#what = what;
    const vouched = options.source && vouchedFor(options.source);
    const trusted = vouched !== undefined && vouched.digest === expected.digest &&
      vouched.size === expected.size;
    if (trusted) return;
    const algorithm = expected.digest
      ? parseDigest(expected.digest).algorithm
      : options.algorithm ?? "sha256";
    this.#hasher = options.offThread && (expected.size ?? options.sizeHint ?? 0) >= OFF_THREAD_MIN
      ? new BackgroundDigester(algorithm)
      : new Digester(algorithm);
  }

  /** Stop a background hash (idempotent; a no-op for the others). */
  dispose(): void {
    if (this.#hasher instanceof BackgroundDigester) this.#hasher.dispose();
  }

  /**
   * Feed a chunk.
   *
   * @param chunk bytes
   * @throws {VerificationError} when the expected size is exceeded
   */
  update(chunk: Uint8Array): void {
    const limit = this.#expected.size;
    this.#size += chunk.byteLength;
    if (limit !== undefined && this.#size > limit) {
      this.dispose();
      throw new VerificationError(`${this.#what}: size exceeds the expected ${limit} bytes`);
    }
    this.#hasher?.update(chunk);
  }

  /**
   * Finish: check size, then digest.
   *
   * @returns what was measured
   * @throws {VerificationError} on a size or digest mismatch
   */
  finish(): Measured {
    const { size: limit, digest: want } = this.#expected;
    const size = this.#size;
    if (limit !== undefined && size !== limit) {
      this.dispose();
      throw sizeMismatch(this.#what, limit, size);
    }
    // vouched for: the producer checked exactly this digest before the stream closed
    const digest = this.#hasher ? this.#hasher.digest() : want!;
    if (want && digest !== want) {
      throw digestMismatch(this.#what, want, digest);
    }
    return { digest, size };
  }
}

/**
 * {@link Verifier} as a pass-through `TransformStream`. Read {@link result}
 * once the stream has been consumed to learn the measured digest and size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VerificationError } from "@ocipkg/cli";
 * import { digestOf, VerifyingStream } from "@ocipkg/cli/oci";
 * const data = new TextEncoder().encode("hello");
 * const v = new VerifyingStream({ digest: digestOf(data), size: 5 }, "greeting");
 * assert.equal(await new Response(ReadableStream.from([data]).pipeThrough(v)).text(), "hello");
 * assert.deepEqual(v.result, { digest: digestOf(data), size: 5 });
 * // a stream longer than expected fails as soon as it is read
 * const short = new VerifyingStream({ size: 4 }, "greeting");
 * await assert.rejects(new Response(ReadableStream.from([data]).pipeThrough(short)).text(), VerificationError);
 * ```
 */
export class VerifyingStream extends TransformStream<Uint8Array, Uint8Array> {
  #state: { result?: Measured };

  /**
   * Create a VerifyingStream.
   * @param expected expected digest and/or size
   * @param what names the content in error messages
   */
  constructor(expected: Expected, what: string) {
    const verifier = new Verifier(expected, what);
    const state: { result?: Measured } = {};
    super({
      transform: (chunk, controller) => {
        verifier.update(chunk);
        controller.enqueue(chunk);
      },
      flush: () => {
        state.result = verifier.finish();
      },
    });
    this.#state = state;
  }

  /** Measured digest and size, set once the stream ended successfully. */
  get result(): Measured | undefined {
    return this.#state.result;
  }
}
