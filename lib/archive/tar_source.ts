/**
 * Where the tar reader's bytes come from: a {@link ByteSource} reads exactly,
 * yields a number of bytes in chunks and skips; {@link StreamSource} does it
 * over the chunks of a stream, {@link FileSource} over a file (seeking to
 * skip). Both report an end of input inside what was asked for as a
 * truncated archive.
 *
 * @module
 */
import { ArchiveError } from "../util/errors.ts";

/** Sequential reader of bytes that may skip cheaply (seek) when it can. */
export interface ByteSource {
  /** Bytes consumed so far. */
  readonly position: number;
  /** Read up to `n` bytes; fewer only at the end. */
  readExact(n: number): Promise<Uint8Array>;
  /** Yield exactly the next `n` bytes in chunks; throws when the input ends early. */
  chunks(n: number): AsyncIterable<Uint8Array>;
  /** Skip `n` bytes; throws when the input ends early. */
  skip(n: number): Promise<void>;
}

/**
 * A {@link ByteSource} over an async iterable of chunks (a stream). It is
 * done with a chunk of its input when it asks for the next one: what
 * {@link StreamSource.readExact} returns is a copy, and each view
 * {@link StreamSource.chunks} yields is consumed before the generator is
 * resumed — so the input may free a chunk then (`decompress` does).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StreamSource } from "./tar_source.ts";
 * const s = new StreamSource([new Uint8Array([1, 2]), new Uint8Array([3, 4])]);
 * assert.deepEqual([...await s.readExact(3)], [1, 2, 3]);
 * assert.equal(s.position, 3);
 * ```
 */
export class StreamSource implements ByteSource {
  #it: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  #pending: Uint8Array | undefined;
  #position = 0;
  #what: string;

  /**
   * Create a StreamSource.
   * @param input chunks
   * @param what names the input in errors
   */
  constructor(input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, what = "archive") {
    this.#it = Symbol.asyncIterator in input
      ? input[Symbol.asyncIterator]()
      : (input as Iterable<Uint8Array>)[Symbol.iterator]();
    this.#what = what;
  }

  get position(): number {
    return this.#position;
  }

  async #next(): Promise<Uint8Array | undefined> {
    if (this.#pending) {
      const p = this.#pending;
      this.#pending = undefined;
      return p;
    }
    while (true) {
      const r = await this.#it.next();
      if (r.done) return undefined;
      if (r.value.byteLength > 0) return r.value;
    }
  }

  async readExact(n: number): Promise<Uint8Array> {
    if (n === 0) return new Uint8Array(0);
    const first = await this.#next();
    if (!first) return new Uint8Array(0);
    if (first.byteLength >= n) {
      if (first.byteLength > n) this.#pending = first.subarray(n);
      this.#position += n;
      // a copy (the chunk may be freed once consumed; a node Buffer's `slice` is a view)
      const out = new Uint8Array(n);
      out.set(first.subarray(0, n));
      return out;
    }
    const out = new Uint8Array(n);
    out.set(first);
    let got = first.byteLength;
    while (got < n) {
      const c = await this.#next();
      if (!c) break;
      const take = Math.min(c.byteLength, n - got);
      out.set(c.subarray(0, take), got);
      if (take < c.byteLength) this.#pending = c.subarray(take);
      got += take;
    }
    this.#position += got;
    return got === n ? out : out.subarray(0, got);
  }

  async *chunks(n: number): AsyncIterable<Uint8Array> {
    let left = n;
    while (left > 0) {
      const c = await this.#next();
      if (!c) {
        throw new ArchiveError(
          `${this.#what} is truncated: unexpected end of data at offset ${this.#position}`,
        );
      }
      if (c.byteLength > left) {
        this.#pending = c.subarray(left);
        this.#position += left;
        left = 0;
        yield c.subarray(0, c.byteLength - this.#pending.byteLength);
      } else {
        left -= c.byteLength;
        this.#position += c.byteLength;
        yield c;
      }
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.chunks(n)) { /* discard */ }
  }

  /** Read and discard everything left (so a verifier upstream sees every byte). */
  async drain(): Promise<void> {
    while (await this.#next()) { /* discard */ }
  }
}

/**
 * A {@link ByteSource} over an open file that seeks to skip, so listing a
 * large archive reads only its headers. It knows the file's size, so a skip
 * past the end is an error as it is through a {@link StreamSource}.
 */
export class FileSource implements ByteSource {
  #file: Deno.FsFile;
  #position: number;
  #what: string;
  #size: number | undefined;

  /**
   * Create a FileSource.
   * @param file an open file, positioned at `start`
   * @param what names the file in errors
   * @param start current position of the file
   * @param size the file's size (by default taken from the open file when needed)
   */
  constructor(file: Deno.FsFile, what: string, start = 0, size?: number) {
    this.#file = file;
    this.#what = what;
    this.#position = start;
    this.#size = size;
  }

  get position(): number {
    return this.#position;
  }

  async readExact(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const r = await this.#file.read(out.subarray(got));
      if (r === null) break;
      got += r;
    }
    this.#position += got;
    return got === n ? out : out.subarray(0, got);
  }

  async *chunks(n: number): AsyncIterable<Uint8Array> {
    let left = n;
    while (left > 0) {
      const buf = await this.readExact(Math.min(left, 1 << 20));
      if (buf.byteLength === 0) {
        throw new ArchiveError(
          `${this.#what} is truncated: unexpected end of file at offset ${this.#position}`,
        );
      }
      left -= buf.byteLength;
      yield buf;
    }
  }

  async skip(n: number): Promise<void> {
    if (n <= 0) return;
    this.#size ??= (await this.#file.stat()).size;
    if (this.#position + n > this.#size) {
      throw new ArchiveError(
        `${this.#what} is truncated: unexpected end of file at offset ${this.#size}`,
      );
    }
    await this.#file.seek(n, Deno.SeekMode.Current);
    this.#position += n;
  }
}
