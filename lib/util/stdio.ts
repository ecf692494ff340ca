/**
 * The process's stdin and stdout as data streams (`-` for a path): each is
 * claimed once, a terminal is refused (binary data is not for a screen, and
 * a terminal on stdin means nothing was piped in), and whether stdout
 * carries data is known — the CLI then prints its result lines on stderr,
 * so stdout carries nothing else.
 *
 * @module
 */
import { fsError, OcipkgError, UsageError } from "./errors.ts";
import { readBodyCapped } from "./body.ts";

/** The path that names stdin (reading) or stdout (writing). */
export const STDIO_PATH = "-";

/** What stdin was claimed for (undefined: not yet). */
let stdinClaimed: string | undefined;
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
  stdinClaimed = undefined;
  stdoutClaimed = false;
}

/**
 * Claim stdin to read `what` from it: once per process, and never a
 * terminal (unless `terminal` allows one: a password may be typed).
 *
 * @param what names the data, e.g. `an oci-archive`
 * @param options `terminal`: a terminal is fine
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
 * assert.throws(() => claimStdin("an oci-archive"), /stdin is read once: it carries a manifest, not also an oci-archive/);
 * useStdio(undefined);
 * ```
 */
export function claimStdin(
  what: string,
  options: { terminal?: boolean } = {},
): ReadableStream<Uint8Array> {
  if (stdinClaimed !== undefined) {
    throw new UsageError(
      stdinClaimed === what
        ? `stdin is read once: give '-' once (for ${what})`
        : `stdin is read once: it carries ${stdinClaimed}, not also ${what}`,
    );
  }
  if (!options.terminal && streams.stdin.isTerminal()) {
    throw new UsageError(`'-' reads ${what} from stdin, but stdin is a terminal: pipe it in`);
  }
  stdinClaimed = what;
  return streams.stdin.readable;
}

/** Most bytes of a password read from stdin (64 KiB: a registry token is a few KiB). */
export const MAX_STDIN_SECRET = 64 * 1024;

/**
 * A password (or token) from stdin, claimed as {@link claimStdin} does (a
 * terminal is fine): read to its end, at most {@link MAX_STDIN_SECRET}
 * bytes, one final newline dropped. Input that never ends fails at the cap.
 *
 * @param what names it, e.g. `the password (--password-stdin)`
 * @returns the text
 * @throws {OcipkgError} when it is over the cap; {UsageError} when stdin was claimed before
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readStdinSecret, useStdio } from "./stdio.ts";
 * useStdio({
 *   stdin: { readable: ReadableStream.from([new TextEncoder().encode("s3cret\n")]), isTerminal: () => false },
 *   stdout: { write: (p) => Promise.resolve(p.byteLength), isTerminal: () => false },
 * });
 * assert.equal(await readStdinSecret("the password"), "s3cret");
 * useStdio(undefined);
 * ```
 */
export async function readStdinSecret(what: string): Promise<string> {
  const input = claimStdin(what, { terminal: true });
  const bytes = await readBodyCapped(
    new Response(input),
    MAX_STDIN_SECRET,
    () => new OcipkgError(`${what} on stdin is over ${MAX_STDIN_SECRET} bytes; stopped reading`),
  );
  return new TextDecoder().decode(bytes).replace(/\r?\n$/, "");
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
      try {
        for (let off = 0; off < chunk.byteLength;) off += await out.write(chunk.subarray(off));
      } catch (e) {
        // a reader gone (a closed pipe) or a full disk: named, one line
        throw fsError(e, `${what} written to`, "stdout");
      }
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
