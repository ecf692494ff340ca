/**
 * A structural check of zstd streams. The zstd decoder behind `node:zlib`
 * ends without an error when its input stops in the middle of a frame, so a
 * truncated layer would silently lose its tail; this checker walks the frame
 * and block headers (without decoding) and fails unless the stream ends
 * exactly at the end of a complete frame.
 *
 * @module
 */
import { ArchiveError } from "../util/errors.ts";

const MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE = 0x184d2a50;

type State =
  | "magic"
  | "descriptor"
  | "header-rest"
  | "block-header"
  | "skip-block"
  | "checksum"
  | "skippable-size"
  | "skip-frame";

/**
 * Walks zstd frames as bytes arrive.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { zstdCompressSync } from "node:zlib";
 * import { ArchiveError } from "../util/errors.ts";
 * import { ZstdFrameChecker } from "./zstd_frames.ts";
 * const z = new Uint8Array(zstdCompressSync(new TextEncoder().encode("hello")));
 * const whole = new ZstdFrameChecker("demo");
 * whole.update(z);
 * assert.doesNotThrow(() => whole.finish());
 * const cut = new ZstdFrameChecker("demo");
 * cut.update(z.subarray(0, z.length - 1));
 * assert.throws(() => cut.finish(), ArchiveError); // truncated
 * ```
 */
export class ZstdFrameChecker {
  #what: string;
  #state: State = "magic";
  #buf: number[] = [];
  #want = 4; // bytes to collect into #buf for the current header field
  #skip = 0; // bytes to pass over (block contents, skippable frame data)
  #checksum = false;
  #lastBlock = false;
  #frames = 0;

  /**
   * Create a checker.
   * @param what names the stream in errors
   */
  constructor(what: string) {
    this.#what = what;
  }

  #fail(why: string): never {
    throw new ArchiveError(`${this.#what} is corrupt: invalid zstd data (${why})`);
  }

  /**
   * Feed the next bytes.
   * @param chunk compressed bytes, in order
   */
  update(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - i);
        this.#skip -= n;
        i += n;
        if (this.#skip === 0) this.#afterSkip();
        continue;
      }
      this.#buf.push(chunk[i++]!);
      if (this.#buf.length === this.#want) this.#field();
    }
  }

  #afterSkip(): void {
    if (this.#state !== "skip-block") this.#expect("magic", 4); // end of a skippable frame
    else if (this.#lastBlock) this.#endOfBlocks();
    else this.#expect("block-header", 3);
  }

  #expect(state: State, n: number): void {
    this.#state = state;
    this.#buf = [];
    this.#want = n;
  }

  #le(): number {
    let v = 0;
    for (let k = this.#buf.length - 1; k >= 0; k--) v = v * 256 + this.#buf[k]!;
    return v;
  }

  #field(): void {
    switch (this.#state) {
      case "magic": {
        const m = this.#le();
        if (m === MAGIC) this.#expect("descriptor", 1);
        else if (((m & SKIPPABLE_MASK) >>> 0) === SKIPPABLE) this.#expect("skippable-size", 4);
        else this.#fail("bad frame magic");
        return;
      }
      case "descriptor": {
        const d = this.#buf[0]!;
        if (d & 0x08) this.#fail("reserved bit set in the frame header");
        const fcsFlag = d >> 6;
        const single = (d >> 5) & 1;
        this.#checksum = ((d >> 2) & 1) === 1;
        const dictBytes = [0, 1, 2, 4][d & 3]!;
        const fcsBytes = [single ? 1 : 0, 2, 4, 8][fcsFlag]!;
        const rest = (single ? 0 : 1) + dictBytes + fcsBytes;
        if (rest === 0) this.#expect("block-header", 3);
        else this.#expect("header-rest", rest);
        return;
      }
      case "header-rest":
        this.#expect("block-header", 3);
        return;
      case "block-header": {
        const h = this.#le();
        const last = (h & 1) === 1;
        const type = (h >> 1) & 3;
        const size = h >>> 3;
        if (type === 3) this.#fail("reserved block type");
        const data = type === 1 ? 1 : size;
        this.#lastBlock = last;
        if (data > 0) {
          this.#state = "skip-block";
          this.#buf = [];
          this.#skip = data;
        } else if (last) this.#endOfBlocks();
        else this.#expect("block-header", 3);
        return;
      }
      case "checksum":
        this.#endFrame();
        return;
      case "skippable-size":
        this.#skip = this.#le();
        this.#state = "skip-frame";
        this.#buf = [];
        if (this.#skip === 0) this.#expect("magic", 4);
        return;
      default:
        this.#fail("internal state");
    }
  }

  #endOfBlocks(): void {
    this.#lastBlock = false;
    if (this.#checksum) this.#expect("checksum", 4);
    else this.#endFrame();
  }

  #endFrame(): void {
    this.#frames++;
    this.#expect("magic", 4);
  }

  /**
   * The input ended: it must end exactly after a complete frame.
   * @throws {ArchiveError} when the stream stops inside a frame, or holds none
   */
  finish(): void {
    if (this.#skip > 0 || this.#state !== "magic" || this.#buf.length > 0) {
      this.#fail("the stream ends inside a frame: truncated");
    }
    if (this.#frames === 0) this.#fail("no frame");
  }
}
