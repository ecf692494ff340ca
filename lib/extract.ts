/**
 * Safe streaming extraction of tar layers (plain, gzip, zstd) — the only
 * extractor in ocipkg.
 *
 * Rejects absolute paths, `..`, NUL and backslashes in names, symlinks and
 * hardlinks that point outside the destination, writes through a symlink
 * planted by an earlier entry or layer, device nodes and fifos, and caps the
 * total bytes and entry count.
 *
 * @module
 */
import { pipeline, Readable } from "node:stream";
import { createGunzip, createZstdDecompress } from "node:zlib";
import { join, posix } from "node:path";
import { ArchiveError, OcipkgError, oneLine } from "./errors.ts";
import { writeAll } from "./fs_util.ts";
import { readTar, StreamSource, type TarEntry } from "./tar.ts";

/** Default cap on the bytes one image may extract to (64 GiB). */
export const DEFAULT_MAX_BYTES = 64 * 1024 ** 3;
/** Default cap on the entries of one image (1 million). */
export const DEFAULT_MAX_ENTRIES = 1_000_000;

/** Options of {@link extractLayer}. */
export interface ExtractOptions {
  /** How the stream is compressed. */
  compression: "gzip" | "zstd" | "none";
  /** Names the layer in errors, e.g. "layer sha256:… of image x". */
  what: string;
  /** Top-level names the layer must not create (e.g. `.oci-dir`). */
  reserved?: string[];
  /** Shared budget, so caps hold across all layers of an image. */
  budget?: ExtractBudget;
  /** Apply OCI whiteouts (`.wh.name`, `.wh..wh..opq`) — for container image layers. */
  whiteouts?: boolean;
}

/** Byte and entry caps shared by the layers of one image. */
export class ExtractBudget {
  /** Bytes left. */
  bytes: number;
  /** Entries left. */
  entries: number;
  /** Real directories created or checked (never symlinks), relative paths. */
  readonly safeDirs: Set<string> = new Set([""]);
  /**
   * Create an ExtractBudget.
   * @param maxBytes cap on file bytes
   * @param maxEntries cap on entries
   */
  constructor(maxBytes = DEFAULT_MAX_BYTES, maxEntries = DEFAULT_MAX_ENTRIES) {
    this.bytes = maxBytes;
    this.entries = maxEntries;
  }
}

/** What {@link extractLayer} wrote. */
export interface ExtractResult {
  /** Relative paths of regular files written. */
  files: string[];
  /** Bytes of file data written. */
  bytes: number;
}

/**
 * Decompress a stream as a Node-stream pipeline (keeps backpressure; much
 * faster than DecompressionStream), yielding chunks. Decoder errors become
 * {@link ArchiveError}s naming `what`; errors from the input (e.g. the
 * verifier) pass through unchanged.
 *
 * @param stream compressed bytes
 * @param compression the algorithm
 * @param what names the content in errors
 * @returns decompressed chunks
 */
export async function* decompress(
  stream: ReadableStream<Uint8Array>,
  compression: "gzip" | "zstd" | "none",
  what = "layer",
): AsyncGenerator<Uint8Array> {
  if (compression === "none") {
    yield* stream;
    return;
  }
  const z = compression === "gzip"
    ? createGunzip({ chunkSize: 256 * 1024 })
    : createZstdDecompress({ chunkSize: 256 * 1024 });
  // deno-lint-ignore no-explicit-any
  const out = pipeline(Readable.fromWeb(stream as any), z, () => {});
  try {
    for await (const chunk of out) yield chunk as Uint8Array;
  } catch (e) {
    if (e instanceof OcipkgError) throw e;
    throw new ArchiveError(`${what} is corrupt: invalid ${compression} data (${oneLine(e)})`);
  } finally {
    out.destroy();
  }
}

/**
 * Normalize and check a tar entry name.
 *
 * @param name the name as written in the archive
 * @param what names the archive in errors
 * @returns the relative path with `/` separators ("" for the root)
 * @throws {ArchiveError} for absolute paths, `..`, NUL or backslashes
 * @example
 * ```ts
 * import { safeEntryPath } from "./extract.ts";
 * console.assert(safeEntryPath("./lib/libfoo.a", "x") === "lib/libfoo.a");
 * ```
 */
export function safeEntryPath(name: string, what: string): string {
  if (name.includes("\0")) throw new ArchiveError(`${what}: entry name contains NUL`);
  if (name.includes("\\")) {
    throw new ArchiveError(`${what}: entry '${name}' contains a backslash`);
  }
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) {
    throw new ArchiveError(`${what}: entry '${name}' has an absolute path`);
  }
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) {
    throw new ArchiveError(`${what}: entry '${name}' escapes the target directory`);
  }
  return parts.join("/");
}

async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Extract one tar layer into `dest` safely.
 *
 * @param stream the layer's bytes (verify them first, e.g. with VerifyingStream)
 * @param dest destination directory (normally a fresh temp directory)
 * @param options compression, caps, names for errors
 * @returns the files written
 * @throws {ArchiveError} for unsafe or corrupt archives (the caller discards `dest`)
 * @example
 * ```ts
 * import { extractLayer, tarHeader, tarPadding, TAR_END, bytesStream } from "../mod.ts";
 * const data = new TextEncoder().encode("hi");
 * const h = tarHeader({ name: "a.txt", type: "file", size: 2, mode: 0o644, mtime: 0, linkname: "" });
 * const tar = new Uint8Array([...h, ...data, ...tarPadding(2), ...TAR_END]);
 * const dir = await Deno.makeTempDir();
 * const r = await extractLayer(bytesStream(tar), dir, { compression: "none", what: "demo" });
 * console.assert(r.files[0] === "a.txt");
 * ```
 */
export async function extractLayer(
  stream: ReadableStream<Uint8Array>,
  dest: string,
  options: ExtractOptions,
): Promise<ExtractResult> {
  const what = options.what;
  const budget = options.budget ?? new ExtractBudget();
  const reserved = new Set(options.reserved ?? []);
  const source = new StreamSource(decompress(stream, options.compression, what), what);
  const result: ExtractResult = { files: [], bytes: 0 };
  const full = (rel: string) => join(dest, ...rel.split("/"));
  const ensureParents = (rel: string, name: string) =>
    ensureRealParents(dest, rel, name, what, budget);
  const clear = (rel: string, keepDir: boolean) => clearPath(dest, rel, keepDir, budget);

  const insideRoot = (fromDir: string, target: string): boolean => {
    if (target.startsWith("/") || /^[A-Za-z]:/.test(target) || target.includes("\0")) return false;
    const resolved = posix.normalize(posix.join(fromDir, target));
    return resolved !== ".." && !resolved.startsWith("../");
  };

  const handle = async (e: TarEntry) => {
    if (--budget.entries < 0) throw new ArchiveError(`${what}: more entries than the cap allows`);
    const rel = safeEntryPath(e.name, what);
    if (rel === "") return;
    const top = rel.split("/")[0]!;
    if (reserved.has(top)) {
      throw new ArchiveError(`${what}: entry '${e.name}' uses a reserved name`);
    }
    await ensureParents(rel, e.name);
    const base = posix.basename(rel);
    if (options.whiteouts && base.startsWith(".wh.")) {
      const dir = posix.dirname(rel) === "." ? "" : posix.dirname(rel);
      if (base === ".wh..wh..opq") {
        for await (const c of Deno.readDir(full(dir))) {
          await clear(dir ? `${dir}/${c.name}` : c.name, false);
        }
      } else {
        const victim = base.slice(4);
        safeEntryPath(victim, what);
        await clear(dir ? `${dir}/${victim}` : victim, false);
      }
      return;
    }
    switch (e.type) {
      case "directory": {
        const st = await clear(rel, true);
        if (st === null) await Deno.mkdir(full(rel), { mode: 0o755 });
        await Deno.chmod(full(rel), (e.mode & 0o777) | 0o700).catch(() => {});
        budget.safeDirs.add(rel);
        return;
      }
      case "file": {
        if (e.size > budget.bytes) {
          throw new ArchiveError(`${what}: extracted size exceeds the cap at entry '${e.name}'`);
        }
        budget.bytes -= e.size;
        await clear(rel, false);
        const f = await Deno.open(full(rel), {
          write: true,
          createNew: true,
          mode: (e.mode & 0o777) | 0o600,
        });
        try {
          for await (const chunk of e.body()) await writeAll(f, chunk);
        } finally {
          f.close();
        }
        if ((e.mode & 0o777 | 0o600) !== (e.mode & 0o777)) {
          await Deno.chmod(full(rel), e.mode & 0o777).catch(() => {});
        }
        result.files.push(rel);
        result.bytes += e.size;
        return;
      }
      case "symlink": {
        if (!insideRoot(posix.dirname(rel), e.linkname)) {
          throw new ArchiveError(
            `${what}: symlink '${e.name}' points outside the target directory ('${e.linkname}')`,
          );
        }
        await clear(rel, false);
        await Deno.symlink(e.linkname, full(rel));
        return;
      }
      case "hardlink": {
        const target = safeEntryPath(e.linkname, what);
        await ensureParents(target, e.name);
        const st = await lstatOrNull(full(target));
        if (!st || !st.isFile) {
          throw new ArchiveError(
            `${what}: hardlink '${e.name}' points to '${e.linkname}', which is not a file extracted here`,
          );
        }
        await clear(rel, false);
        await Deno.link(full(target), full(rel));
        result.files.push(rel);
        return;
      }
      default:
        throw new ArchiveError(`${what}: entry '${e.name}' is a ${e.type}; refused`);
    }
  };

  for await (const entry of readTar(source, what)) await handle(entry);
  // Drain the rest (tar padding) so the digest verifier sees every byte.
  await source.drain();
  return result;
}

function fullPath(dest: string, rel: string): string {
  return join(dest, ...rel.split("/"));
}

/** Make sure every parent of `rel` is a real directory (never a symlink). */
async function ensureRealParents(
  dest: string,
  rel: string,
  name: string,
  what: string,
  budget: ExtractBudget,
): Promise<void> {
  const parts = rel.split("/");
  let cur = "";
  for (let i = 0; i < parts.length - 1; i++) {
    cur = cur ? `${cur}/${parts[i]}` : parts[i]!;
    if (budget.safeDirs.has(cur)) continue;
    const st = await lstatOrNull(fullPath(dest, cur));
    if (st === null) await Deno.mkdir(fullPath(dest, cur), { mode: 0o755 });
    else if (st.isSymlink) {
      throw new ArchiveError(`${what}: entry '${name}' would be written through symlink '${cur}'`);
    } else if (!st.isDirectory) {
      throw new ArchiveError(`${what}: entry '${name}' needs '${cur}' to be a directory`);
    }
    budget.safeDirs.add(cur);
  }
}

/** Remove whatever is at `rel` (keeping a directory if asked); returns what stays. */
async function clearPath(
  dest: string,
  rel: string,
  keepDir: boolean,
  budget: ExtractBudget,
): Promise<Deno.FileInfo | null> {
  const st = await lstatOrNull(fullPath(dest, rel));
  if (st === null || (keepDir && st.isDirectory)) return st;
  await Deno.remove(fullPath(dest, rel), { recursive: st.isDirectory });
  for (const d of budget.safeDirs) {
    if (d === rel || d.startsWith(`${rel}/`)) budget.safeDirs.delete(d);
  }
  return null;
}

/**
 * Write one stream as a file at a relative path of `dest`, with the same
 * checks as tar entries (used for ORAS-style layers titled by annotation).
 *
 * @param stream the file's bytes
 * @param dest destination directory
 * @param name relative path (checked like a tar entry name)
 * @param size declared size, counted against the budget
 * @param options names, reserved names and budget
 * @returns the relative path written
 */
export async function extractFile(
  stream: ReadableStream<Uint8Array>,
  dest: string,
  name: string,
  size: number,
  options: Omit<ExtractOptions, "compression" | "whiteouts">,
): Promise<string> {
  const { what } = options;
  const budget = options.budget ?? new ExtractBudget();
  const rel = safeEntryPath(name, what);
  if (!rel || (options.reserved ?? []).includes(rel.split("/")[0]!)) {
    throw new ArchiveError(`${what}: '${name}' is not a usable file name`);
  }
  if (--budget.entries < 0) throw new ArchiveError(`${what}: more entries than the cap allows`);
  if (size > budget.bytes) throw new ArchiveError(`${what}: extracted size exceeds the cap`);
  budget.bytes -= size;
  await ensureRealParents(dest, rel, name, what, budget);
  await clearPath(dest, rel, false, budget);
  const f = await Deno.open(fullPath(dest, rel), { write: true, createNew: true, mode: 0o644 });
  try {
    for await (const chunk of stream) await writeAll(f, chunk);
  } finally {
    f.close();
  }
  return rel;
}
