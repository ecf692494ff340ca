/**
 * An oci-archive on stdin or stdout (the location `-`). The archive reader
 * seeks, and the writer patches headers, so each goes through a temp file:
 * stdin is spooled to one before it is read (the same reader and limits as
 * for any archive file then apply); an archive for stdout is written to one
 * and streamed out once complete, so nothing half-written ever reaches
 * stdout. The temp file is removed when the archive is closed (and on
 * Ctrl-C).
 *
 * @module
 */
import { join } from "../../util/path.ts";
import { fsError } from "../../util/errors.ts";
import { releaseTemp, trackTemp } from "../../util/temp.ts";
import { claimStdin, claimStdout } from "../../util/stdio.ts";
import type { Descriptor } from "../../oci/manifest.ts";
import type { BlobSpec, ListableTarget, Target } from "../target.ts";
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
  push(spec: BlobSpec, content: ReadableStream<Uint8Array>): Promise<Descriptor> {
    return this.#archive.push(spec, content);
  }
  tag(desc: Descriptor, reference: string): Promise<void> {
    return this.#archive.tag(desc, reference);
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
    try {
      const file = await Deno.open(path, { write: true, createNew: true });
      await input.pipeTo(file.writable);
    } catch (e) {
      throw fsError(e, "oci-archive read from stdin into", path);
    }
    const archive = await OciArchive.open(path, { description: "oci-archive on stdin" });
    return new SpooledArchive(archive, dir, () => Promise.resolve());
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    releaseTemp(dir);
    throw e;
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
