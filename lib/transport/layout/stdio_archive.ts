/**
 * An oci-archive on stdin or stdout (the location `-`). The archive reader
 * seeks, and the writer patches headers, so each goes through a temp file:
 * stdin is spooled to one before it is read (the same reader and limits as
 * for any archive file then apply), its tar headers read as they pass — so
 * input that is no tar fails at once, the copy stops at the archive's end
 * marker (input that never ends after it is not read), and at most
 * `OCIPKG_MAX_BYTES` (16 GiB by default) are spooled; an archive for stdout is written to one
 * and streamed out once complete, so nothing half-written ever reaches
 * stdout. The temp file is removed when the archive is closed (and on
 * Ctrl-C).
 *
 * @module
 */
import { join } from "../../util/path.ts";
import { ArchiveError, fsError } from "../../util/errors.ts";
import { writeAll } from "../../util/files.ts";
import { parseSize } from "../../util/text.ts";
import { readTar } from "../../archive/tar.ts";
import { StreamSource } from "../../archive/tar_source.ts";
import { DEFAULT_MAX_BYTES } from "../../archive/defaults.ts";
import { releaseTemp, trackTemp } from "../../util/temp.ts";
import { claimStdin, claimStdout } from "../../util/stdio.ts";
import type { Descriptor } from "../../oci/manifest.ts";
import type { BlobSpec, ListableTarget, PushOptions, TagOptions, Target } from "../target.ts";
import { OciArchive } from "./oci_archive.ts";

/** An oci-archive in a temp directory standing for stdin or stdout; closing it cleans up. */
class SpooledArchive implements Target, ListableTarget {
  readonly description: string;
  #archive: OciArchive;
  #dir: string;
  #finish: (archive: string) => Promise<void>;

  constructor(archive: OciArchive, dir: string, finish: (archive: string) => Promise<void>) {
    this.#archive = archive;
    this.description = archive.description;
    this.#dir = dir;
    this.#finish = finish;
  }

  resolve(reference?: string): Promise<Descriptor> {
    return this.#archive.resolve(reference);
  }
  list(): Promise<Descriptor[]> {
    return this.#archive.list();
  }
  fetch(desc: Descriptor): Promise<ReadableStream<Uint8Array>> {
    return this.#archive.fetch(desc);
  }
  exists(desc: Descriptor): Promise<boolean> {
    return this.#archive.exists(desc);
  }
  push(
    spec: BlobSpec,
    content: ReadableStream<Uint8Array>,
    options?: PushOptions,
  ): Promise<Descriptor> {
    return this.#archive.push(spec, content, options);
  }
  tag(desc: Descriptor, reference: string, options?: TagOptions): Promise<void> {
    return this.#archive.tag(desc, reference, options);
  }
  async close(): Promise<void> {
    try {
      await this.#archive.close();
      await this.#finish(this.#archive.path);
    } finally {
      await this.#removeDir();
    }
  }
  async abort(): Promise<void> {
    try {
      await this.#archive.abort();
    } finally {
      await this.#removeDir();
    }
  }
  async #removeDir(): Promise<void> {
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
    releaseTemp(this.#dir);
  }
}

async function spoolDir(prefix: string): Promise<string> {
  return trackTemp(await Deno.makeTempDir({ prefix }));
}

/**
 * Read an oci-archive from stdin: spooled to a temp file, then opened with
 * the archive reader. Close it to remove the temp file.
 *
 * @returns the archive, named `oci-archive on stdin` in messages
 * @throws {UsageError} when stdin is a terminal or was read before
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { packDirectory } from "@ocipkg/cli";
 * import { useStdio } from "../../util/stdio.ts";
 * import { openStdinArchive } from "./stdio_archive.ts";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * const packed = await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * const file = await Deno.open(`${tmp}/foo.tar`); // stands for the process's stdin
 * useStdio({
 *   stdin: { readable: file.readable, isTerminal: () => false },
 *   stdout: { write: (p) => Promise.resolve(p.byteLength), isTerminal: () => false },
 * });
 * const archive = await openStdinArchive();
 * assert.equal((await archive.resolve()).digest, packed.digest);
 * await archive.close(); // the spooled copy is gone
 * useStdio(undefined);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function openStdinArchive(): Promise<ListableTarget & Target> {
  const input = claimStdin("an oci-archive");
  const dir = await spoolDir("ocipkg-stdin-");
  const path = join(dir, "stdin.tar");
  try {
    await spoolTar(input, path, stdinCap());
    const archive = await OciArchive.open(path, { description: STDIN });
    return new SpooledArchive(archive, dir, () => Promise.resolve());
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    releaseTemp(dir);
    throw e;
  }
}

/** Names stdin's archive in messages. */
const STDIN = "oci-archive on stdin";

/**
 * The most bytes of stdin spooled: `OCIPKG_MAX_BYTES` (what an image may
 * extract to) when set, else {@link DEFAULT_MAX_BYTES} (16 GiB).
 */
function stdinCap(): number {
  const env = Deno.env.get("OCIPKG_MAX_BYTES");
  const n = env === undefined ? undefined : parseSize(env);
  return n !== undefined && n > 0 ? n : DEFAULT_MAX_BYTES;
}

/**
 * Copy a tar stream to `path`, reading its headers as it passes: garbage
 * (no tar header, a bad checksum) fails at its first block, an entry larger
 * than `cap` at its header, the whole past `cap` as it arrives — and the
 * copy stops at the archive's end marker, so input that never ends after a
 * whole archive is not read on.
 */
async function spoolTar(
  input: ReadableStream<Uint8Array>,
  path: string,
  cap: number,
): Promise<void> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { write: true, createNew: true });
  } catch (e) {
    throw fsError(e, `${STDIN}: temp file`, path);
  }
  const over = () =>
    new ArchiveError(
      `${STDIN} is over ${cap} bytes (OCIPKG_MAX_BYTES); write it to a file and give that`,
    );
  const reader = input.getReader();
  let spooled = 0;
  const chunks: AsyncIterable<Uint8Array> = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        spooled += value.byteLength;
        if (spooled > cap) throw over();
        try {
          await writeAll(file, value);
        } catch (e) {
          throw fsError(e, `${STDIN}: temp file`, path);
        }
        yield value;
      }
    },
  };
  try {
    // the same tar reader as the archive's (its data is skipped, passing through the copy)
    for await (const entry of readTar(new StreamSource(chunks, STDIN), STDIN)) {
      if (entry.size > cap) throw over();
    }
  } finally {
    await reader.cancel().catch(() => {});
    file.close();
  }
}

/**
 * Write an oci-archive to stdout: built in a temp file, streamed to stdout
 * on `close()` once complete (`abort()` writes nothing), then removed.
 *
 * @returns the archive being written
 * @throws {UsageError} when stdout is a terminal or carries something already
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OciArchive } from "@ocipkg/cli";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * import { useStdio } from "../../util/stdio.ts";
 * import { createStdoutArchive } from "./stdio_archive.ts";
 * const tmp = await Deno.makeTempDir();
 * const file = await Deno.open(`${tmp}/out.tar`, { write: true, create: true }); // stands for stdout
 * useStdio({
 *   stdin: { readable: new ReadableStream(), isTerminal: () => true },
 *   stdout: { write: (p) => file.write(p), isTerminal: () => false },
 * });
 * const w = await createStdoutArchive();
 * const d = await pushBytes(w, "text/plain", new TextEncoder().encode("hi"));
 * await w.close(); // streamed out now
 * file.close();
 * const r = await OciArchive.open(`${tmp}/out.tar`);
 * assert.ok(await r.exists(d));
 * await r.close();
 * useStdio(undefined);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function createStdoutArchive(): Promise<Target> {
  const output = claimStdout("an oci-archive");
  const dir = await spoolDir("ocipkg-stdout-");
  try {
    const archive = await OciArchive.open(join(dir, "stdout.tar"), {
      write: true,
      description: "oci-archive for stdout",
    });
    return new SpooledArchive(archive, dir, async (path) => {
      const file = await Deno.open(path);
      try {
        await file.readable.pipeTo(output);
      } catch (e) {
        throw fsError(e, "oci-archive written to", "stdout");
      }
    });
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    releaseTemp(dir);
    throw e;
  }
}
