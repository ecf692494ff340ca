/**
 * Hashing off the main thread for large blobs. sha256 runs at ≈ 1.8 GB/s on
 * these machines — slower than a local registry sends — and on the main
 * thread it cannot overlap with receiving: a 1 GiB pull spent ≈ 0.57 s
 * hashing in series with the download. {@link BackgroundDigester} copies each
 * chunk into a ring of shared 4 MiB slots and a worker hashes them, so the
 * main thread only copies; it waits (Atomics) only when the worker is a whole
 * ring behind. `serve` hashes its uploads here; downloads do only when asked
 * (`hashOffThread`): on 2 cores the copy into the ring cost more than the
 * overlap gained (see `RegistryTargetOptions.hashOffThread`).
 *
 * The worker's code is inline (a blob: URL), so nothing is read next to the
 * module and `deno compile` needs no extra files. A live worker keeps the
 * process alive: every digester must end with {@link BackgroundDigester.digest}
 * or {@link BackgroundDigester.dispose} (a forgotten one stops itself after
 * two minutes without work). The worker starts with the first bytes.
 *
 * @module
 */
import { OcipkgError } from "./errors.ts";

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
 * synchronous `Digester` (`update`, `size`, `digest()`).
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
