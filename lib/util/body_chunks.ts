/**
 * The chunks of a streamed `fetch` request body, with memory that goes back
 * as soon as the body has been sent, not when the garbage collector runs.
 *
 * A body that is not Deno's native file stream passes through JavaScript,
 * and Deno's `fetch` keeps a reference to each chunk (no copy) until it has
 * sent it. Fresh chunks for every read then stay allocated until V8 collects
 * them, which it does when some 64 MB of them have piled up: a 1 GiB push of
 * a blob inside an oci-archive peaked at 131 MB, twice the 60 MB of the same
 * push from an oci-dir (a native file stream). {@link BodyChunks} reads the
 * source into fresh {@link BODY_CHUNK} buffers (straight into them, for a
 * byte stream) and detaches each one ({@link ArrayBuffer.prototype.transfer})
 * once `fetch` holds it: `fetch` still owns the bytes (they stay valid), and
 * they are freed the moment it lets go of them.
 *
 * When does `fetch` hold a chunk? Deno's request body pump
 * (`resourceForReadableStream`) reads the next chunk only after it handed
 * the previous one to the connection's channel; the chunk before that is
 * detached when a new one is read (one chunk of margin). Were a later Deno to
 * read further ahead, a chunk could be detached before it is sent: it would
 * then go out empty, and the registry refuses the body, whose digest it
 * checks — an upload that fails, never one that stores other bytes.
 *
 * @module
 */

/** Bytes per chunk {@link BodyChunks} reads (1 MiB: few reads, little memory in flight). */
export const BODY_CHUNK = 1 << 20;

/** Chunks read since a chunk was given out, before it is detached. */
const MARGIN = 2;

/**
 * A reader of a body's source that gives out fresh, full chunks and detaches
 * each one two reads later (see the module's notes). Use it only to feed a
 * request body to `fetch`: a consumer that keeps chunks (collecting them,
 * a tee) would find them emptied.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BodyChunks } from "./body_chunks.ts";
 * const src = ReadableStream.from([new Uint8Array([1]), new Uint8Array([2, 3])]);
 * const reader = new BodyChunks(src, 2);
 * const a = await reader.read();
 * assert.deepEqual([...a.value!], [1, 2]); // filled up to the chunk size
 * const b = await reader.read();
 * assert.deepEqual([...b.value!], [3]);
 * assert.ok((await reader.read()).done);
 * assert.equal(a.value!.byteLength, 0); // two reads later: detached, its memory given back
 * assert.deepEqual([...b.value!], [3]);
 * ```
 */
export class BodyChunks {
  #byob: ReadableStreamBYOBReader | undefined;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #pending: Uint8Array | undefined; // the rest of a chunk a default reader gave
  #ended = false;
  #given: Uint8Array[] = [];
  #size: number;

  /**
   * @param source the body's bytes (read with a BYOB reader when it is a byte stream)
   * @param chunkSize bytes per chunk (the last may be shorter)
   */
  constructor(source: ReadableStream<Uint8Array>, chunkSize: number = BODY_CHUNK) {
    this.#size = chunkSize;
    try {
      this.#byob = source.getReader({ mode: "byob" });
    } catch {
      this.#reader = source.getReader();
    }
  }

  /**
   * The next chunk, full unless the source ended; detaches the chunk given
   * {@link MARGIN} reads ago.
   *
   * @returns the chunk, or done
   */
  async read(): Promise<ReadableStreamReadResult<Uint8Array>> {
    while (this.#given.length >= MARGIN) release(this.#given.shift()!);
    if (this.#ended) return { done: true, value: undefined };
    let buf = new ArrayBuffer(this.#size);
    let n = 0;
    while (n < this.#size && !this.#ended) {
      if (this.#byob) {
        const r = await this.#byob.read(new Uint8Array(buf, n));
        if (!r.value) return { done: true, value: undefined }; // cancelled
        buf = r.value.buffer as ArrayBuffer; // the read transferred it
        n += r.value.byteLength;
        if (r.done) this.#ended = true;
        continue;
      }
      const part = this.#pending ?? (await this.#reader!.read()).value;
      this.#pending = undefined;
      if (!part) {
        this.#ended = true;
        break;
      }
      const take = Math.min(part.byteLength, this.#size - n);
      new Uint8Array(buf, n, take).set(part.subarray(0, take));
      n += take;
      if (take < part.byteLength) this.#pending = part.subarray(take);
    }
    if (n === 0) return { done: true, value: undefined };
    const chunk = new Uint8Array(buf, 0, n);
    this.#given.push(chunk);
    return { done: false, value: chunk };
  }

  /**
   * Cancel the source.
   *
   * @param reason why
   */
  cancel(reason?: unknown): Promise<void> {
    return (this.#byob ?? this.#reader)!.cancel(reason);
  }

  /** Release the source's lock. */
  releaseLock(): void {
    (this.#byob ?? this.#reader)!.releaseLock();
  }
}

/** Give a chunk's memory back: whoever still holds the bytes keeps them, JavaScript lets go. */
function release(chunk: Uint8Array): void {
  try {
    (chunk.buffer as ArrayBuffer).transfer(0);
  } catch { /* not detachable: the collector frees it */ }
}
