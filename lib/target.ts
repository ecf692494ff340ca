/**
 * The one storage interface. oci-dir, oci-archive, memory and registry all
 * implement it, and {@link copy} moves graphs between any two of them.
 *
 * @module
 */
import { VerifyingStream } from "./digest.ts";
import { FormatError, OcipkgError } from "./errors.ts";
import type { Descriptor } from "./manifest.ts";
import { MAX_MANIFEST_SIZE } from "./manifest.ts";

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
  fetch(desc: Descriptor): Promise<ReadableStream<Uint8Array>>;
  /** Whether the content is present. */
  exists(desc: Descriptor): Promise<boolean>;
  /** Release resources (and commit writes, for writable targets). */
  close(): Promise<void>;
}

/** Read-write storage. */
export interface Target extends ReadTarget {
  /**
   * Store content, verifying it against `spec.digest`/`spec.size` when given.
   * Nothing becomes visible unless the content verified.
   * @returns the descriptor of what was stored
   */
  push(spec: BlobSpec, content: ReadableStream<Uint8Array>): Promise<Descriptor>;
  /** Point a reference (tag / ref name) at a manifest or index already stored. */
  tag(desc: Descriptor, reference: string): Promise<void>;
  /** Discard uncommitted writes (e.g. a half-written archive). */
  abort(): Promise<void>;
  /**
   * Optional: make a blob of `src` present without transferring it (a
   * registry's cross-repository mount).
   * @returns true when the blob is now present
   */
  mount?(desc: Descriptor, src: ReadTarget): Promise<boolean>;
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
 * @returns the bytes
 * @throws {FormatError} when larger than the cap
 * @example
 * ```ts
 * import { fetchBytes, pushBytes } from "./target.ts";
 * import { MemoryTarget } from "./layout/memory.ts";
 * const t = new MemoryTarget();
 * const d = await pushBytes(t, "application/json", new TextEncoder().encode("{}"));
 * console.assert((await fetchBytes(t, d)).length === 2);
 * ```
 */
export async function fetchBytes(
  target: ReadTarget,
  desc: Descriptor,
  what = `${desc.digest} in ${target.description}`,
): Promise<Uint8Array> {
  if (desc.size > MAX_MANIFEST_SIZE) {
    throw new FormatError(`${what} is ${desc.size} bytes, over the ${MAX_MANIFEST_SIZE}-byte cap`);
  }
  const stream = (await target.fetch(desc)).pipeThrough(new VerifyingStream(desc, what));
  const out = new Uint8Array(desc.size);
  let off = 0;
  for await (const chunk of stream) {
    out.set(chunk, off);
    off += chunk.byteLength;
  }
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
 */
export function pushBytes(
  target: Target,
  mediaType: string,
  bytes: Uint8Array,
  annotations?: Record<string, string>,
): Promise<Descriptor> {
  return target.push({ mediaType, annotations }, bytesStream(bytes));
}

/**
 * A one-chunk readable stream of bytes.
 *
 * @param bytes content
 * @returns a stream yielding it
 */
export function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      c.enqueue(bytes);
      c.close();
    },
  });
}

/**
 * Run `fn` with a target and always close it; on failure abort writable ones
 * (so an archive being written is not left half-made).
 *
 * @param target the target
 * @param fn work to do
 * @returns what `fn` returns
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
 */
export class TransferLostError extends OcipkgError {}
