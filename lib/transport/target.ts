/**
 * The one storage interface. oci-dir, oci-archive, memory and registry all
 * implement it, and {@link copy} moves graphs between any two of them.
 *
 * @module
 */
import { verifyBytes } from "../oci/digest.ts";
import { FormatError, NotFoundError, OcipkgError, VerificationError } from "../util/errors.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { MAX_MANIFEST_SIZE } from "../oci/manifest.ts";

/** What to push: a media type, and the digest/size when known in advance. */
export interface BlobSpec {
  /** Media type of the content. */
  mediaType: string;
  /** Expected digest; when absent the target computes sha256 while writing. */
  digest?: string;
  /** Expected size; when absent the target measures it. */
  size?: number;
  /** Annotations to carry in the returned descriptor. */
  annotations?: Record<string, string>;
}

/** Options of {@link ReadTarget.fetch} and {@link ReadTarget.exists}. */
export interface FetchOptions {
  /**
   * Stops the fetch (or the check) when it aborts: its requests, and the
   * stream returned, fail with the signal's reason (a registry's; a
   * layout's local reads are not stopped).
   */
  signal?: AbortSignal;
}

/** Options of {@link Target.push}. */
export interface PushOptions {
  /**
   * Stops the push when it aborts: it rejects with the signal's reason, its
   * requests in flight end (a registry's upload session is cancelled, so it
   * keeps nothing of the content) and a layout keeps no file of it.
   */
  signal?: AbortSignal;
}

/** Options of {@link Target.tag}. */
export interface TagOptions {
  /**
   * Stops the tag when it aborts: it rejects with the signal's reason and
   * the reference is not changed. (An oci-dir makes the blobs pushed to it
   * durable before it writes a tag: a signal stops that too, between files;
   * those already in place stay, named by nothing, as after a crash.)
   */
  signal?: AbortSignal;
}

/**
 * A push's first step: when its signal has aborted already, release the
 * content (cancelled with the signal's reason) and reject with the reason,
 * before anything is written.
 *
 * @param content the bytes the push was given
 * @param signal the push's signal
 * @throws the signal's reason, when it has aborted
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stopIfAborted } from "./target.ts";
 * let why: unknown;
 * const content = new ReadableStream({ cancel: (reason) => void (why = reason) });
 * await assert.rejects(stopIfAborted(content, AbortSignal.abort("no")), (e) => e === "no");
 * assert.equal(why, "no"); // the source was told
 * await stopIfAborted(content, undefined); // no signal: goes on
 * ```
 */
export async function stopIfAborted(
  content: ReadableStream<Uint8Array>,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (!signal?.aborted) return;
  await content.cancel(signal.reason).catch(() => {});
  throw signal.reason;
}

/** Read side of a storage. */
export interface ReadTarget {
  /** Names the storage in messages, e.g. `oci-archive:out.tar`. */
  readonly description: string;
  /**
   * Find the root descriptor of an image by tag/ref name or digest. With no
   * reference, a layout that holds exactly one image returns that one.
   */
  resolve(reference?: string): Promise<Descriptor>;
  /** Stream a blob or manifest's bytes (callers verify them). */
  fetch(desc: Descriptor, options?: FetchOptions): Promise<ReadableStream<Uint8Array>>;
  /**
   * Whether the content is present.
   * @param options `signal`: stops the check (a registry's request)
   */
  exists(desc: Descriptor, options?: FetchOptions): Promise<boolean>;
  /** Release resources (and commit writes, for writable targets). */
  close(): Promise<void>;
}

/** Read-write storage. */
export interface Target extends ReadTarget {
  /**
   * Store content, verifying it against `spec.digest`/`spec.size` when given.
   * Nothing becomes visible unless the content verified.
   * @param options `signal`: stops the push
   * @returns the descriptor of what was stored
   */
  push(
    spec: BlobSpec,
    content: ReadableStream<Uint8Array>,
    options?: PushOptions,
  ): Promise<Descriptor>;
  /**
   * Point a reference (tag / ref name) at a manifest or index already stored.
   * @param options `signal`: stops it
   */
  tag(desc: Descriptor, reference: string, options?: TagOptions): Promise<void>;
  /** Discard uncommitted writes (e.g. a half-written archive). */
  abort(): Promise<void>;
  /**
   * Optional: make a blob of `src` present without transferring it (a
   * registry's cross-repository mount).
   * @param options `signal`: stops the mount (it rejects with the signal's reason)
   * @returns true when the blob is now present
   */
  mount?(desc: Descriptor, src: ReadTarget, options?: PushOptions): Promise<boolean>;
}

/** A storage that can list the images it holds (OCI layouts). */
export interface ListableTarget extends ReadTarget {
  /** The index entries (one per image). */
  list(): Promise<Descriptor[]>;
}

/**
 * Fetch a small document (manifest, index, config) whole, verified, capped at
 * 4 MiB.
 *
 * @param target where to read
 * @param desc what to read
 * @param what names the document in errors
 * @param options `signal`: stops the fetch (see {@link FetchOptions})
 * @returns the bytes
 * @throws {FormatError} when larger than the cap
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget, VerificationError } from "@ocipkg/cli";
 * import { encodeJson } from "@ocipkg/cli/oci";
 * import { fetchBytes, pushBytes } from "@ocipkg/cli/transport";
 * const t = new MemoryTarget();
 * const d = await pushBytes(t, "application/json", encodeJson({ layers: {} }));
 * assert.equal(new TextDecoder().decode(await fetchBytes(t, d)), '{"layers":{}}');
 * // bytes that do not match the descriptor are refused
 * await assert.rejects(fetchBytes(t, { ...d, size: d.size - 1 }), VerificationError);
 * ```
 */
export async function fetchBytes(
  target: ReadTarget,
  desc: Descriptor,
  what = `${desc.digest} in ${target.description}`,
  options: FetchOptions = {},
): Promise<Uint8Array> {
  if (desc.size > MAX_MANIFEST_SIZE) {
    throw new FormatError(`${what} is ${desc.size} bytes, over the ${MAX_MANIFEST_SIZE}-byte cap`);
  }
  // read whole (it is small), then hash with WebCrypto: no node:crypto on the cached paths
  const out = new Uint8Array(desc.size);
  let off = 0;
  for await (const chunk of await target.fetch(desc, options)) {
    if (off + chunk.byteLength > desc.size) {
      throw new VerificationError(`${what}: size exceeds the expected ${desc.size} bytes`);
    }
    out.set(chunk, off);
    off += chunk.byteLength;
  }
  await verifyBytes(out.subarray(0, off), desc, what);
  return out;
}

/**
 * Push a small in-memory document.
 *
 * @param target where to write
 * @param mediaType its media type
 * @param bytes the content
 * @param annotations optional annotations for the descriptor
 * @returns its descriptor
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget } from "@ocipkg/cli";
 * import { digestOf } from "@ocipkg/cli/oci";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * const t = new MemoryTarget();
 * const bytes = new TextEncoder().encode("hello");
 * const d = await pushBytes(t, "text/plain", bytes, { "org.example.note": "greeting" });
 * assert.deepEqual(d, {
 *   mediaType: "text/plain",
 *   digest: digestOf(bytes),
 *   size: 5,
 *   annotations: { "org.example.note": "greeting" },
 * });
 * assert.ok(await t.exists(d));
 * ```
 */
export function pushBytes(
  target: Target,
  mediaType: string,
  bytes: Uint8Array,
  annotations?: Record<string, string>,
): Promise<Descriptor> {
  return target.push({ mediaType, annotations }, bytesStream(bytes));
}

/** The bytes of each {@link bytesStream} not yet read, for {@link takeBytes}. */
const wholeStreams = new WeakMap<ReadableStream<Uint8Array>, Uint8Array>();

/**
 * A one-chunk readable stream of bytes. Whoever is given it may take the
 * bytes without reading it ({@link takeBytes}).
 *
 * @param bytes content
 * @returns a stream yielding it
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget } from "@ocipkg/cli";
 * import { bytesStream } from "./target.ts";
 * const bytes = new TextEncoder().encode("hello");
 * assert.equal(await new Response(bytesStream(bytes)).text(), "hello");
 * // what Target.push takes
 * const d = await new MemoryTarget().push({ mediaType: "text/plain" }, bytesStream(bytes));
 * assert.equal(d.size, 5);
 * ```
 */
export function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  const stream: ReadableStream<Uint8Array> = new ReadableStream({
    // nothing queued before the first read: a read takes the bytes from takeBytes
    pull(c) {
      wholeStreams.delete(stream);
      c.enqueue(bytes);
      c.close();
    },
  }, { highWaterMark: 0 });
  wholeStreams.set(stream, bytes);
  return stream;
}

/**
 * The bytes of a stream made by {@link bytesStream}, taken without reading
 * it: content already whole in memory is then written or hashed in one call,
 * not chunk by chunk through a reader. The stream is cancelled (its bytes
 * are had once, either way); any other stream, or one a reader has begun,
 * gives `undefined` and is left as it was.
 *
 * @param stream any stream
 * @returns its bytes, or undefined
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bytesStream, takeBytes } from "./target.ts";
 * const bytes = new TextEncoder().encode("hello");
 * const s = bytesStream(bytes);
 * assert.equal(takeBytes(s), bytes);
 * assert.equal(takeBytes(s), undefined); // taken once
 * const read = bytesStream(bytes);
 * assert.equal(await new Response(read).text(), "hello");
 * assert.equal(takeBytes(read), undefined); // read already
 * assert.equal(takeBytes(ReadableStream.from([bytes])), undefined); // not one of them
 * ```
 */
export function takeBytes(stream: ReadableStream<Uint8Array>): Uint8Array | undefined {
  const bytes = wholeStreams.get(stream);
  if (bytes === undefined || stream.locked) return undefined;
  wholeStreams.delete(stream);
  stream.cancel().catch(() => {});
  return bytes;
}

/**
 * Reads that fill a buffer in place (see {@link streamOfReads}).
 */
export interface ReadsInPlace {
  /**
   * Put the next bytes at the start of `into`, which the read does not take
   * (unlike a BYOB read's): it may be shared memory, another's buffer.
   * @returns how many bytes it put there, or `null` at the end
   */
  read(into: Uint8Array): Promise<number | null>;
  /** Stop reading: the stream is cancelled with `reason`. */
  cancel(reason?: unknown): Promise<void>;
}

const inPlaceStreams = new WeakMap<ReadableStream<Uint8Array>, ReadsInPlace["read"]>();

/**
 * The reads in place of a stream made by {@link streamOfReads}, taken
 * instead of reading it: a consumer that writes a blob through memory of
 * its own (the ring of a direct writer) has the bytes land there, with no
 * copy between. The stream is locked (no one else reads it), and cancelling
 * the reads cancels it. Any other stream, or one a reader has begun, gives
 * `undefined` and is left as it was.
 *
 * @param stream any stream
 * @returns its reads in place, or undefined
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { streamOfReads, takeReadsInPlace } from "./target.ts";
 * const bytes = new TextEncoder().encode("hello");
 * let at = 0;
 * const read = (into: Uint8Array) => {
 *   if (at === bytes.byteLength) return Promise.resolve(null);
 *   const n = Math.min(into.byteLength, bytes.byteLength - at);
 *   into.set(bytes.subarray(at, at + n));
 *   at += n;
 *   return Promise.resolve(n);
 * };
 * const s = streamOfReads({ read, cancel: () => Promise.resolve() });
 * const reads = takeReadsInPlace(s)!;
 * const into = new Uint8Array(new SharedArrayBuffer(3)); // any memory
 * assert.equal(await reads.read(into), 3);
 * assert.equal(await reads.read(into), 2);
 * assert.equal(await reads.read(into), null);
 * assert.ok(s.locked); // taken: nobody else reads it
 * assert.equal(takeReadsInPlace(ReadableStream.from([bytes])), undefined);
 * ```
 */
export function takeReadsInPlace(stream: ReadableStream<Uint8Array>): ReadsInPlace | undefined {
  const read = inPlaceStreams.get(stream);
  if (read === undefined || stream.locked) return undefined;
  inPlaceStreams.delete(stream);
  const lock = stream.getReader();
  return { read, cancel: (reason) => lock.cancel(reason) };
}

/**
 * A byte stream over reads that fill a buffer in place: each read of the
 * stream (BYOB into the consumer's buffer, or into one of the stream's
 * own) is one `reads.read`, and the stream offers the same reads to a
 * consumer that takes them ({@link takeReadsInPlace}).
 *
 * @param reads the reads, and what stops them
 * @param options `start`: awaited before the first read (a failure errors the stream);
 *   `chunk`: the buffer a reader without its own is given (default 256 KiB)
 * @returns the stream
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { streamOfReads } from "./target.ts";
 * const bytes = new TextEncoder().encode("hello");
 * let at = 0;
 * const s = streamOfReads({
 *   read: (into) => {
 *     if (at === bytes.byteLength) return Promise.resolve(null);
 *     into[0] = bytes[at++]!; // one byte a read
 *     return Promise.resolve(1);
 *   },
 *   cancel: () => Promise.resolve(),
 * });
 * assert.equal(await new Response(s).text(), "hello");
 * ```
 */
export function streamOfReads(
  reads: ReadsInPlace,
  options: { start?: () => Promise<void>; chunk?: number } = {},
): ReadableStream<Uint8Array> {
  const stream = new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: options.chunk ?? 256 << 10,
    start: options.start,
    async pull(controller: ReadableByteStreamController) {
      const request = controller.byobRequest!;
      const view = request.view!;
      const n = await reads.read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
      if (n === null) {
        controller.close();
        request.respond(0);
        return;
      }
      request.respond(n);
    },
    cancel: (reason) => reads.cancel(reason),
  }, { highWaterMark: 0 });
  inPlaceStreams.set(stream, reads.read);
  return stream;
}

/**
 * Run `fn` with a target and always close it; on failure abort writable ones
 * (so an archive being written is not left half-made).
 *
 * @param target the target
 * @param fn work to do
 * @returns what `fn` returns
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OciArchive } from "@ocipkg/cli";
 * import { pushBytes, withTarget } from "@ocipkg/cli/transport";
 * const tmp = await Deno.makeTempDir();
 * const hi = new TextEncoder().encode("hi");
 * // closed when `fn` returns: the archive is written
 * const w = await OciArchive.open(`${tmp}/a.tar`, { write: true });
 * const d = await withTarget(w, (t) => pushBytes(t, "text/plain", hi));
 * assert.ok(await withTarget(await OciArchive.open(`${tmp}/a.tar`), (r) => r.exists(d)));
 * // aborted when `fn` throws: no half-written archive is left
 * const failing = await OciArchive.open(`${tmp}/b.tar`, { write: true });
 * await assert.rejects(withTarget(failing, () => Promise.reject(new Error("no"))), /no/);
 * await assert.rejects(Deno.stat(`${tmp}/b.tar`), Deno.errors.NotFound);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function withTarget<T extends ReadTarget, R>(
  target: T,
  fn: (t: T) => Promise<R>,
): Promise<R> {
  try {
    const r = await fn(target);
    await target.close();
    return r;
  } catch (e) {
    if ("abort" in target && typeof target.abort === "function") {
      await (target as unknown as Target).abort().catch(() => {});
    } else await target.close().catch(() => {});
    throw e;
  }
}

/**
 * A destination lost a transfer under way (e.g. a registry dropped the upload
 * session after a lost reply); pushing the blob again from its start may work.
 * {@link copyGraph} does that once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type BlobSpec, MemoryTarget, TransferLostError } from "@ocipkg/cli";
 * import { copyGraph, pushBytes } from "@ocipkg/cli/transport";
 * class Flaky extends MemoryTarget { // loses its first upload, as a registry may
 *   lost = 0;
 *   override async push(spec: BlobSpec, content: ReadableStream<Uint8Array>) {
 *     if (this.lost++ > 0) return await super.push(spec, content);
 *     await content.cancel();
 *     throw new TransferLostError("upload session lost");
 *   }
 * }
 * const src = new MemoryTarget();
 * const blob = await pushBytes(src, "text/plain", new TextEncoder().encode("hi"));
 * const dst = new Flaky();
 * await copyGraph(src, dst, blob); // pushed once more, from the start
 * assert.equal(dst.lost, 2);
 * assert.ok(await dst.exists(blob));
 * ```
 */
export class TransferLostError extends OcipkgError {}

/**
 * Resolve a reference that may be absent.
 *
 * @param target where to look
 * @param ref a tag, ref name or digest
 * @returns its descriptor, or undefined when the target has no such reference
 */
export async function resolveOptional(
  target: ReadTarget,
  ref: string,
): Promise<Descriptor | undefined> {
  try {
    return await target.resolve(ref);
  } catch (e) {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
}
