/**
 * The process's stdin and stdout as data streams (`-` for a path): each is
 * claimed once, a terminal is refused (binary data is not for a screen, and
 * a terminal on stdin means nothing was piped in), and whether stdout
 * carries data is known — the CLI then prints its result lines on stderr,
 * so stdout carries nothing else.
 *
 * @module
 */
import { UsageError } from "./errors.ts";

/** The path that names stdin (reading) or stdout (writing). */
export const STDIO_PATH = "-";

let stdinClaimed = false;
let stdoutClaimed = false;

/** What {@link claimStdin} and {@link claimStdout} read and write: the process's own by default. */
export interface StdioStreams {
  /** The input, and whether it is a terminal. */
  stdin: { readable: ReadableStream<Uint8Array>; isTerminal(): boolean };
  /** The output (written with `write`, unbuffered), and whether it is a terminal. */
  stdout: { write(p: Uint8Array): Promise<number>; isTerminal(): boolean };
}

let streams: StdioStreams = { stdin: Deno.stdin, stdout: Deno.stdout };

/**
 * Replace the streams {@link claimStdin} and {@link claimStdout} hand out
 * (tests), and forget earlier claims.
 *
 * @param replacement the streams, or undefined for the process's own
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { claimStdin, useStdio } from "./stdio.ts";
 * useStdio({
 *   stdin: { readable: ReadableStream.from([new TextEncoder().encode("hi")]), isTerminal: () => false },
 *   stdout: { write: (p) => Promise.resolve(p.byteLength), isTerminal: () => true },
 * });
 * assert.equal(await new Response(claimStdin("a manifest")).text(), "hi");
 * useStdio(undefined); // the process's own again
 * ```
 */
export function useStdio(replacement: StdioStreams | undefined): void {
  streams = replacement ?? { stdin: Deno.stdin, stdout: Deno.stdout };
  stdinClaimed = false;
  stdoutClaimed = false;
}

/**
 * Claim stdin to read `what` from it: once per process, and never a
 * terminal.
 *
 * @param what names the data, e.g. `an oci-archive`
 * @returns its bytes (the caller reads them to the end or cancels)
 * @throws {UsageError} when stdin is a terminal, or was claimed before
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { claimStdin, useStdio } from "./stdio.ts";
 * const input = ReadableStream.from([new TextEncoder().encode("{}")]);
 * useStdio({
 *   stdin: { readable: input, isTerminal: () => false },
 *   stdout: { write: (p) => Promise.resolve(p.byteLength), isTerminal: () => false },
 * });
 * assert.equal(await new Response(claimStdin("a manifest")).text(), "{}");
 * assert.throws(() => claimStdin("a manifest"), /stdin is read once/);
 * useStdio(undefined);
 * ```
 */
export function claimStdin(what: string): ReadableStream<Uint8Array> {
  if (stdinClaimed) {
    throw new UsageError(`stdin is read once: give '-' once (for ${what})`);
  }
  if (streams.stdin.isTerminal()) {
    throw new UsageError(`'-' reads ${what} from stdin, but stdin is a terminal: pipe it in`);
  }
  stdinClaimed = true;
  return streams.stdin.readable;
}

/**
 * Claim stdout to write `what` to it: once per process, and never a
 * terminal. From now on {@link stdoutCarriesData} is true.
 *
 * @param what names the data, e.g. `an oci-archive`
 * @returns a writable that leaves stdout open when it closes
 * @throws {UsageError} when stdout is a terminal, or was claimed before
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { claimStdout, stdoutCarriesData, useStdio } from "./stdio.ts";
 * const chunks: Uint8Array[] = [];
 * const write = (p: Uint8Array) => Promise.resolve(chunks.push(p.slice()) && p.byteLength);
 * useStdio({
 *   stdin: { readable: new ReadableStream(), isTerminal: () => true },
 *   stdout: { write, isTerminal: () => false },
 * });
 * assert.equal(stdoutCarriesData(), false);
 * await ReadableStream.from([new Uint8Array([1, 2])]).pipeTo(claimStdout("a blob"));
 * assert.deepEqual(chunks, [new Uint8Array([1, 2])]);
 * assert.equal(stdoutCarriesData(), true);
 * useStdio(undefined);
 * ```
 */
export function claimStdout(what: string): WritableStream<Uint8Array> {
  if (stdoutClaimed) {
    throw new UsageError(`stdout carries one stream: give '-' once (for ${what})`);
  }
  if (streams.stdout.isTerminal()) {
    throw new UsageError(
      `refusing to write ${what} to a terminal: redirect stdout ('> file') or pipe it`,
    );
  }
  stdoutClaimed = true;
  const out = streams.stdout;
  // written through at once (not `.writable`, which may hold bytes until closed), and
  // never closed: stdout stays open for later lines
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      for (let off = 0; off < chunk.byteLength;) off += await out.write(chunk.subarray(off));
    },
  });
}

/**
 * Whether stdout carries data (it was claimed with {@link claimStdout}):
 * then every message and result line goes to stderr.
 *
 * @returns true once stdout was claimed
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stdoutCarriesData } from "./stdio.ts";
 * assert.equal(stdoutCarriesData(), false); // nothing claimed it in this process
 * ```
 */
export function stdoutCarriesData(): boolean {
  return stdoutClaimed;
}
