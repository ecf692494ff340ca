/**
 * `oci-archive`: an OCI Image Layout inside a tar file, as a {@link Target}.
 * Reading indexes the tar's headers (seeking past data) and serves blobs by
 * seeking into the file; writing streams entries into a temp file that is
 * renamed into place on {@link OciArchive.close}, under a lock on the archive
 * (`withFileLock`), after taking in what writers beside it put there since it
 * started: their blobs and their tags, then its own tags again.
 *
 * @module
 */
import { basename, dirname } from "../../util/path.ts";
import { parseDigest } from "../../oci/digest.ts";
import { ArchiveError, fsError, NotFoundError, OcipkgError } from "../../util/errors.ts";
import { openFileRange, pathExists, withFileLock, writeAll } from "../../util/files.ts";
import { Mutex } from "../../util/concurrency.ts";
import { HeldTemps, removeStaleTemps, tempPathFor } from "../../util/temp.ts";
import { type Descriptor, MAX_MANIFEST_SIZE, stripUndefined } from "../../oci/manifest.ts";
import { readTar } from "../../archive/tar.ts";
import { FileSource } from "../../archive/tar_source.ts";
import { TAR_END, tarHeader, tarPadding } from "../../archive/tar_writer.ts";
import {
  type BlobSpec,
  type ListableTarget,
  type PushOptions,
  stopIfAborted,
  type TagOptions,
  type Target,
} from "../target.ts";
import { checkLayoutFile, checkSoleImage, LayoutIndex, OCI_LAYOUT_FILE } from "./index_file.ts";
import { writeVerified } from "./verified_write.ts";

interface Slot {
  offset: number;
  size: number;
}

/** Options for {@link OciArchive.open}. */
export interface OciArchiveOptions {
  /** Open for writing: a new archive (keeping the blobs and index of an existing one). */
  write?: boolean;
  /** Names the archive in messages (default `oci-archive '<path>'`), e.g. for a spooled stdin. */
  description?: string;
  /**
   * Age in ms of a temp file beside the archive (`.<name>.tmp-*`) that a
   * killed writer left, which this writer removes as it replaces the archive
   * (default one hour, `STALE_TEMP_AGE` in `util/temp.ts`; a test sets 0).
   * This writer touches its own every sixth of it.
   */
  staleTempAge?: number;
  /**
   * This writer's images must be alone in the archive (a `pack` without
   * `--append`): when it replaces the archive and finds, under the lock, an
   * image of another name that a writer beside it put there since it
   * opened, it fails with a `SoleImageError` and the archive stays as that
   * writer left it.
   */
  soleImage?: boolean;
}

/** A blob's entry name: `blobs/<alg>/<hex>`. */
const BLOB_ENTRY = /^blobs\/[a-z0-9]+\/[a-f0-9]+$/;

function normalize(name: string): string {
  return name.replace(/^(\.\/)+/, "").replace(/^\/+/, "");
}

/**
 * An oci-archive file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OciArchive } from "@ocipkg/cli";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * const tmp = await Deno.makeTempDir();
 * const w = await OciArchive.open(`${tmp}/x.tar`, { write: true });
 * const d = await pushBytes(w, "text/plain", new TextEncoder().encode("hi"));
 * await w.close(); // the archive appears only now
 * const r = await OciArchive.open(`${tmp}/x.tar`);
 * assert.ok(await r.exists(d));
 * assert.equal(await new Response(await r.fetch(d)).text(), "hi");
 * await r.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export class OciArchive implements Target, ListableTarget {
  /** Path of the archive. */
  readonly path: string;
  readonly description: string;
  #entries = new Map<string, Slot>();
  #index: LayoutIndex;
  #writer: { file: Deno.FsFile; tmp: string; end: number; held: HeldTemps } | undefined;
  #staleTempAge: number | undefined;
  #soleImage = false;
  /** The archive file as scanned (`fstat`): blobs are read only from that very file. */
  #scanned: Deno.FileInfo | undefined;
  #mutex = new Mutex();
  #closed = false;
  /** The tags this writer made, in order: made again over what another writer put there. */
  #tags: { desc: Descriptor; reference: string }[] = [];

  private constructor(path: string, description?: string) {
    this.path = path;
    this.description = description ?? `oci-archive '${path}'`;
    // its images named as the user can: not for a spooled stdin
    this.#index = new LayoutIndex(
      this.description,
      description === undefined ? `oci-archive:${path}` : undefined,
    );
  }

  /**
   * Open an archive for reading, or (with `write`) start a new one.
   *
   * @param path the tar file
   * @param options `write` to create/replace it on close
   * @returns the archive
   * @throws {NotFoundError} when reading a missing file
   * @throws {ArchiveError} when it is not a tar or lacks index.json
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ArchiveError, NotFoundError, OciArchive } from "@ocipkg/cli";
   * const tmp = await Deno.makeTempDir();
   * await assert.rejects(OciArchive.open(`${tmp}/missing.tar`), NotFoundError);
   * await Deno.writeTextFile(`${tmp}/not.tar`, "hello");
   * await assert.rejects(OciArchive.open(`${tmp}/not.tar`), ArchiveError);
   * const w = await OciArchive.open(`${tmp}/new.tar`, { write: true });
   * await w.abort(); // nothing written
   * await assert.rejects(Deno.stat(`${tmp}/new.tar`), Deno.errors.NotFound);
   * await Deno.remove(tmp, { recursive: true });
   * ```
   */
  static async open(path: string, options: OciArchiveOptions = {}): Promise<OciArchive> {
    const ar = new OciArchive(path, options.description);
    ar.#staleTempAge = options.staleTempAge;
    ar.#soleImage = options.soleImage ?? false;
    const existing = !options.write || await pathExists(path);
    // a writer copies the blobs from the very file it scanned (another writer may rename a new
    // archive over the path meanwhile: its offsets are not this one's)
    const scanned = existing ? await ar.#scan(options.write) : undefined;
    if (options.write) await ar.#startWriting(scanned);
    return ar;
  }

  /**
   * Index the archive's entries and read its index; with `keepOpen`, the
   * open file is returned (the caller closes it) to read blobs from.
   */
  async #scan(keepOpen: true): Promise<Deno.FsFile>;
  async #scan(keepOpen?: boolean): Promise<Deno.FsFile | undefined>;
  async #scan(keepOpen = false): Promise<Deno.FsFile | undefined> {
    let file: Deno.FsFile;
    try {
      const st = await Deno.stat(this.path);
      if (st.isDirectory) {
        throw new OcipkgError(`${this.description} is a directory; use an oci-dir for layouts`);
      }
      // a fifo would block the open, a device never ends
      if (!st.isFile) throw new OcipkgError(`${this.description} is not a regular file`);
      file = await Deno.open(this.path);
    } catch (e) {
      throw fsError(e, "oci-archive", this.path);
    }
    try {
      const source = new FileSource(file, this.description);
      for await (const e of readTar(source, this.description, { refuseSparse: true })) {
        if (e.type === "file") {
          this.#entries.set(normalize(e.name), { offset: e.offset, size: e.size });
        }
      }
      const layout = await this.#readEntry(file, "oci-layout");
      if (!layout) {
        throw new ArchiveError(`${this.description} is not an oci-archive: it has no oci-layout`);
      }
      checkLayoutFile(layout, this.description);
      const index = await this.#readEntry(file, "index.json");
      if (!index) throw new ArchiveError(`${this.description} has no index.json`);
      this.#index = LayoutIndex.parse(index, this.description, this.#index.spelling);
      this.#scanned = await file.stat();
    } catch (e) {
      file.close();
      throw e;
    }
    if (keepOpen) return file;
    file.close();
    return undefined;
  }

  /** A slot's bytes, read from an open archive file (one reader at a time). */
  async *#copyOut(file: Deno.FsFile, slot: Slot): AsyncGenerator<Uint8Array> {
    await file.seek(slot.offset, Deno.SeekMode.Start);
    let left = slot.size;
    const buf = new Uint8Array(Math.min(1 << 20, Math.max(1, slot.size)));
    while (left > 0) {
      const n = await file.read(buf.subarray(0, Math.min(buf.byteLength, left)));
      if (n === null) throw new ArchiveError(`${this.description} is truncated`);
      left -= n;
      yield buf.subarray(0, n);
    }
  }

  async #readEntry(file: Deno.FsFile, name: string): Promise<Uint8Array | undefined> {
    const slot = this.#entries.get(name);
    if (!slot) return undefined;
    if (slot.size > MAX_MANIFEST_SIZE) {
      throw new ArchiveError(
        `${this.description}: ${name} is larger than ${MAX_MANIFEST_SIZE} bytes`,
      );
    }
    await file.seek(slot.offset, Deno.SeekMode.Start);
    const out = new Uint8Array(slot.size);
    let got = 0;
    while (got < slot.size) {
      const n = await file.read(out.subarray(got));
      if (n === null) throw new ArchiveError(`${this.description} is truncated in ${name}`);
      got += n;
    }
    return out;
  }

  async #startWriting(source: Deno.FsFile | undefined): Promise<void> {
    const held = new HeldTemps(this.#staleTempAge);
    const tmp = held.hold(tempPathFor(this.path));
    let file: Deno.FsFile;
    try {
      file = await Deno.open(tmp, { write: true, read: true, createNew: true });
    } catch (e) {
      held.release(tmp);
      source?.close();
      if (e instanceof Deno.errors.NotFound) {
        // the file is new: what is missing is the directory it goes into
        throw new NotFoundError(
          `cannot write '${this.path}': its directory '${dirname(this.path)}' does not exist`,
        );
      }
      throw fsError(e, "output", this.path);
    }
    this.#writer = { file, tmp, end: 0, held };
    if (!source) return;
    // carry over the blobs of the archive being replaced
    const old = this.#entries;
    this.#entries = new Map();
    try {
      for (const [name, slot] of old) {
        if (!BLOB_ENTRY.test(name)) continue;
        await this.#append(name, slot.size, this.#copyOut(source, slot));
      }
    } finally {
      source.close();
    }
  }

  /**
   * A blob's bytes in the tar file at `path` (a byte stream: see
   * {@link openFileRange}); the archive itself must still be the file that
   * was scanned (another writer may have renamed a new one over it, whose
   * offsets are not these).
   */
  #range(path: string, slot: Slot): Promise<ReadableStream<Uint8Array>> {
    return openFileRange(
      path,
      slot.offset,
      slot.size,
      () => new ArchiveError(`${this.description} is truncated`),
      path === this.path && this.#scanned
        ? {
          same: this.#scanned,
          changed: () =>
            new ArchiveError(
              `${this.description} was replaced while it was read (another writer?); read it again`,
            ),
        }
        : {},
    );
  }

  async #append(
    name: string,
    size: number,
    body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  ): Promise<void> {
    const w = this.#writer!;
    const header = tarHeader({ name, type: "file", size, mode: 0o644, mtime: 0, linkname: "" });
    await writeAll(w.file, header);
    for await (const c of body) await writeAll(w.file, c);
    await writeAll(w.file, tarPadding(size));
    this.#entries.set(name, { offset: w.end + header.length, size });
    w.end += header.length + size + tarPadding(size).length;
  }

  resolve(reference?: string): Promise<Descriptor> {
    return Promise.resolve(this.#index.resolve(reference));
  }

  list(): Promise<Descriptor[]> {
    return Promise.resolve([...this.#index.manifests]);
  }

  #blobName(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return `blobs/${algorithm}/${hex}`;
  }

  async fetch(desc: Descriptor): Promise<ReadableStream<Uint8Array>> {
    const slot = this.#entries.get(this.#blobName(desc.digest));
    if (!slot) throw new NotFoundError(`blob ${desc.digest} is missing from ${this.description}`);
    // pushed to a registry, it is sent through JavaScript in small chunks (Deno reads
    // a native file body to the file's end); written to a layout, read in large blocks
    return await this.#range(this.#writer ? this.#writer.tmp : this.path, slot);
  }

  exists(desc: Descriptor): Promise<boolean> {
    return Promise.resolve(
      this.#entries.get(this.#blobName(desc.digest))?.size === desc.size,
    );
  }

  push(
    spec: BlobSpec,
    content: ReadableStream<Uint8Array>,
    options: PushOptions = {},
  ): Promise<Descriptor> {
    if (!this.#writer) {
      return Promise.reject(new OcipkgError(`${this.description} is open read-only`));
    }
    const signal = options.signal;
    return this.#mutex.run(async () => {
      await stopIfAborted(content, signal);
      const w = this.#writer!;
      if (spec.digest && spec.size !== undefined) {
        const d = { ...spec, digest: spec.digest, size: spec.size };
        if (await this.exists(d)) {
          await content.cancel();
          return stripUndefined(d);
        }
      }
      // Header first with a placeholder name and size when unknown; patched after.
      const name0 = spec.digest ? this.#blobName(spec.digest) : `blobs/sha256/${"0".repeat(64)}`;
      const start = w.end;
      const placeholder = tarHeader({
        name: name0,
        type: "file",
        size: spec.size ?? 0,
        mode: 0o644,
        mtime: 0,
        linkname: "",
      });
      try {
        await writeAll(w.file, placeholder);
        const got = await writeVerified(
          content,
          w.file,
          spec,
          `blob ${spec.digest ?? "(new)"} for ${this.description}`,
          signal,
        );
        const name = this.#blobName(got.digest);
        if (got.size > 0o77777777777 && spec.size === undefined) {
          throw new ArchiveError(`${this.description}: blobs over 8 GiB need a known size`);
        }
        await writeAll(w.file, tarPadding(got.size));
        const end = start + placeholder.length + got.size + tarPadding(got.size).length;
        if (name !== name0 || spec.size === undefined) {
          const header = tarHeader({
            name,
            type: "file",
            size: got.size,
            mode: 0o644,
            mtime: 0,
            linkname: "",
          });
          if (header.length !== placeholder.length) {
            throw new ArchiveError(`${this.description}: cannot patch header of ${got.digest}`);
          }
          await w.file.seek(start, Deno.SeekMode.Start);
          await writeAll(w.file, header);
          await w.file.seek(end, Deno.SeekMode.Start);
        }
        if (this.#entries.has(name)) {
          // a duplicate of what we hold: drop the copy just written
          await w.file.truncate(start);
          await w.file.seek(start, Deno.SeekMode.Start);
        } else {
          this.#entries.set(name, { offset: start + placeholder.length, size: got.size });
          w.end = end;
        }
        return stripUndefined({ ...spec, digest: got.digest, size: got.size });
      } catch (e) {
        await w.file.truncate(start).catch(() => {});
        await w.file.seek(start, Deno.SeekMode.Start).catch(() => {});
        if (signal?.aborted) throw signal.reason; // as the caller gave it
        throw fsError(e, "archive being written", this.path);
      }
    }, signal).catch(async (e) => {
      // given up while another push held the archive: its source is released too (after a
      // push that ran, it was already: cancelling again does nothing)
      await content.cancel(e).catch(() => {});
      throw e;
    });
  }

  tag(desc: Descriptor, reference: string, options: TagOptions = {}): Promise<void> {
    return this.#mutex.run(() => {
      this.#index.tag(desc, reference);
      this.#tags.push({ desc, reference });
      return Promise.resolve();
    }, options.signal);
  }

  /**
   * Take in the archive as it is now (under its lock, before replacing it):
   * another writer may have replaced it since this one read it. Its blobs
   * this writer lacks are appended, its index is the one this writer's tags
   * are made again on — so both writers' images are kept, and where both
   * tagged one name, this writer's (the later) tag wins.
   */
  async #takeIn(): Promise<void> {
    if (!(await pathExists(this.path))) return; // removed meanwhile: what this writer holds
    const now = new OciArchive(this.path, this.description);
    now.#index = new LayoutIndex(this.description, this.#index.spelling);
    const file = await now.#scan(true);
    try {
      for (const [name, slot] of now.#entries) {
        if (!BLOB_ENTRY.test(name) || this.#entries.has(name)) continue;
        await this.#append(name, slot.size, now.#copyOut(file, slot));
      }
    } finally {
      file.close();
    }
    const index = now.#index;
    if (this.#soleImage) {
      checkSoleImage(
        this.description,
        index.manifests,
        new Set(this.#tags.map((t) => t.reference)),
      );
    }
    for (const { desc, reference } of this.#tags) index.tag(desc, reference);
    this.#index = index;
  }

  /** Finish: for a writer, append `oci-layout` and `index.json` and rename into place. */
  close(): Promise<void> {
    return this.#finish(true);
  }

  /** Discard a half-written archive; the original file, if any, stays as it was. */
  abort(): Promise<void> {
    return this.#finish(false);
  }

  #finish(commit: boolean): Promise<void> {
    return this.#mutex.run(async () => {
      if (this.#closed) return;
      this.#closed = true;
      const w = this.#writer;
      if (!w) return;
      try {
        if (commit) {
          // one writer at a time replaces the archive, each over what the one before wrote
          await withFileLock(this.path, async () => {
            await this.#takeIn();
            await this.#append("oci-layout", OCI_LAYOUT_FILE.byteLength, [OCI_LAYOUT_FILE]);
            const index = this.#index.encode();
            await this.#append("index.json", index.byteLength, [index]);
            await writeAll(w.file, TAR_END);
            await w.file.syncData();
            w.file.close();
            await Deno.rename(w.tmp, this.path);
            // what writers killed before their rename left beside it
            await removeStaleTemps(dirname(this.path), {
              prefix: `.${basename(this.path)}.tmp-`,
              age: this.#staleTempAge,
            });
          });
          w.held.release(w.tmp);
          return;
        }
      } catch (e) {
        await discard(w);
        throw fsError(e, "output", this.path);
      }
      await discard(w);
    });
  }
}

async function discard(w: { file: Deno.FsFile; tmp: string; held: HeldTemps }): Promise<void> {
  try {
    w.file.close();
  } catch { /* closed */ }
  await Deno.remove(w.tmp).catch(() => {});
  w.held.release(w.tmp);
}
