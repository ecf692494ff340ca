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
import { nodeStream, nodeZlib } from "../util/lazy_node.ts";
import { join, posix } from "../util/path.ts";
import { ArchiveError, OcipkgError, oneLine, ResourceError, systemReason } from "../util/errors.ts";
import { writeAll } from "../util/fs_util.ts";
import { readTar, type TarEntry } from "./tar.ts";
import { StreamSource } from "./tar_source.ts";
import { ZstdFrameChecker } from "./zstd_frames.ts";

/** Default cap on the bytes one image may extract to (16 GiB). */
export const DEFAULT_MAX_BYTES = 16 * 1024 ** 3;
/**
 * Default cap on the entries of one image (50,000: ten times a large SDK's
 * file count; creating a file costs 20–300 µs, so the cap is met in seconds).
 */
export const DEFAULT_MAX_ENTRIES = 50_000;
/**
 * Default cap on how much a compressed layer may expand: the decompressed tar
 * stream of an image may be at most {@link RATIO_SLACK} plus this many times
 * the compressed bytes read (real libraries compress 2–10:1; gzip's maximum is
 * about 1000:1).
 */
export const DEFAULT_MAX_RATIO = 100;
/** Decompressed bytes allowed on top of the ratio limit (64 MiB). */
export const RATIO_SLACK = 64 * 1024 ** 2;
/** Longest path component, in UTF-8 bytes, that extraction accepts. */
export const MAX_NAME_BYTES = 255;
/** Longest relative path, in UTF-8 bytes, that extraction accepts. */
export const MAX_PATH_BYTES = 4000;
/** Most symlinks followed while checking where one link leads. */
const MAX_LINK_HOPS = 40;

/** Limits of one extraction; every field has a default. */
export interface ExtractLimits {
  /** Cap on file bytes written ({@link DEFAULT_MAX_BYTES}). */
  maxBytes?: number;
  /** Cap on entries, counting every tar header that names a path ({@link DEFAULT_MAX_ENTRIES}). */
  maxEntries?: number;
  /** Cap on decompressed ÷ compressed bytes ({@link DEFAULT_MAX_RATIO}). */
  maxRatio?: number;
}

/** Options of {@link extractLayer}. */
export interface ExtractOptions {
  /** How the stream is compressed. */
  compression: "gzip" | "zstd" | "none";
  /** Names the layer in errors, e.g. "layer sha256:… of image x". */
  what: string;
  /** Top-level names the layer must not create, touch or link to (e.g. `.oci-dir`). */
  reserved?: string[];
  /** Shared budget, so caps hold across all layers of an image. */
  budget?: ExtractBudget;
  /** Apply OCI whiteouts (`.wh.name`, `.wh..wh..opq`) — for container image layers. */
  whiteouts?: boolean;
}

/**
 * Caps shared by the layers of one image, and what extraction knows about the
 * tree it wrote: real directories already checked, and every symlink created
 * (checked once all layers are in place, by {@link checkLinks}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ArchiveError, ExtractBudget, extractLayer } from "@ocipkg/cli";
 * import { inspectImage, OciArchive, packDirectory } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "more than ten bytes");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`);
 * const src = await OciArchive.open(`${tmp}/foo.tar`);
 * const [layer] = (await inspectImage(src, undefined, { files: false })).manifests[0]!.layers;
 * const budget = new ExtractBudget({ maxBytes: 10 }); // one budget for all layers of an image
 * const options = { compression: "gzip", what: "layer", budget } as const;
 * await assert.rejects(extractLayer(await src.fetch(layer!), tmp, options), ArchiveError);
 * await src.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export class ExtractBudget {
  /** Bytes left. */
  bytes: number;
  /** Entries left. */
  entries: number;
  /** Cap on decompressed ÷ compressed bytes. */
  readonly maxRatio: number;
  /** The byte cap this budget started with. */
  readonly maxBytes: number;
  /** The entry cap this budget started with. */
  readonly maxEntries: number;
  /** Compressed bytes read so far (all layers). */
  compressedIn = 0;
  /** Decompressed bytes produced so far (all layers). */
  expandedOut = 0;
  /** Real directories created or checked (never symlinks), relative paths. */
  readonly safeDirs: Set<string> = new Set([""]);
  /** Symlinks created, relative paths. */
  readonly links: Set<string> = new Set();
  /** Whether the destination's file system tells `a` from `A` (probed once). */
  caseSensitive: boolean | undefined;
  /**
   * Create an ExtractBudget.
   * @param limits caps; each defaults to the exported DEFAULT_ constant
   */
  constructor(limits: ExtractLimits = {}) {
    this.bytes = this.maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
    this.entries = this.maxEntries = limits.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.maxRatio = limits.maxRatio ?? DEFAULT_MAX_RATIO;
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
 * verifier) pass through unchanged. With a `budget`, the bytes in and out are
 * counted and a stream that expands past the budget's ratio limit is refused
 * as soon as it does.
 *
 * @param stream compressed bytes
 * @param compression the algorithm
 * @param what names the content in errors
 * @param budget optional budget whose ratio limit applies
 * @returns decompressed chunks
 */
export async function* decompress(
  stream: ReadableStream<Uint8Array>,
  compression: "gzip" | "zstd" | "none",
  what = "layer",
  budget?: ExtractBudget,
): AsyncGenerator<Uint8Array> {
  if (compression === "none") {
    yield* stream;
    return;
  }
  const z = compression === "gzip"
    ? nodeZlib().createGunzip({ chunkSize: 256 * 1024 })
    : nodeZlib().createZstdDecompress({ chunkSize: 256 * 1024 });
  // node:zlib's zstd decoder ends quietly on a truncated frame: check the framing alongside
  const frames = compression === "zstd" ? new ZstdFrameChecker(what) : undefined;
  const counted = budget || frames
    ? observe(stream, (c) => {
      if (budget) budget.compressedIn += c.byteLength;
      frames?.update(c);
    }, () => frames?.finish())
    : stream;
  const { pipeline, Readable } = nodeStream();
  // deno-lint-ignore no-explicit-any
  const out = pipeline(Readable.fromWeb(counted as any), z, () => {});
  try {
    for await (const chunk of out) {
      if (budget) {
        budget.expandedOut += (chunk as Uint8Array).byteLength;
        if (budget.expandedOut > RATIO_SLACK + budget.maxRatio * budget.compressedIn) {
          throw new ArchiveError(
            `${what} expands more than ${budget.maxRatio}:1 when decompressed ` +
              `(${budget.expandedOut} bytes from ${budget.compressedIn}); refused as a decompression bomb`,
          );
        }
      }
      yield chunk as Uint8Array;
    }
  } catch (e) {
    if (e instanceof OcipkgError) throw e;
    const reason = systemReason(e);
    if (reason) throw new ResourceError(`${what}: ${reason}`, { cause: e });
    throw new ArchiveError(`${what} is corrupt: invalid ${compression} data (${oneLine(e)})`);
  } finally {
    out.destroy();
  }
}

function observe(
  stream: ReadableStream<Uint8Array>,
  each: (chunk: Uint8Array) => void,
  end: () => void,
): ReadableStream<Uint8Array> {
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, c) {
        each(chunk);
        c.enqueue(chunk);
      },
      flush: end,
    }),
  );
}

function entryCap(what: string, budget: ExtractBudget): ArchiveError {
  return new ArchiveError(`${what}: more than ${budget.maxEntries} entries (the entry cap)`);
}

function bytesCap(what: string, budget: ExtractBudget, name: string): ArchiveError {
  return new ArchiveError(
    `${what}: extracted size exceeds the cap of ${budget.maxBytes} bytes at entry '${shown(name)}'`,
  );
}

/** An entry name as shown in an error: escaped and at most 200 characters. */
function shown(name: string): string {
  return name.length > 200 ? `${name.slice(0, 100)}…${name.slice(-60)}` : name;
}

/**
 * Normalize and check a tar entry name.
 *
 * @param name the name as written in the archive
 * @param what names the archive in errors
 * @returns the relative path with `/` separators ("" for the root)
 * @throws {ArchiveError} for absolute paths, `..`, NUL, backslashes, or names
 *   longer than {@link MAX_NAME_BYTES} per component / {@link MAX_PATH_BYTES} in all
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ArchiveError } from "../util/errors.ts";
 * import { safeEntryPath } from "./extract.ts";
 * assert.equal(safeEntryPath("./lib//libfoo.a", "layer"), "lib/libfoo.a");
 * assert.throws(() => safeEntryPath("../etc/passwd", "layer"), ArchiveError);
 * assert.throws(() => safeEntryPath("/etc/passwd", "layer"), ArchiveError);
 * ```
 */
export function safeEntryPath(name: string, what: string): string {
  if (name.includes("\0")) throw new ArchiveError(`${what}: entry name contains NUL`);
  if (name.includes("\\")) {
    throw new ArchiveError(`${what}: entry '${shown(name)}' contains a backslash`);
  }
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) {
    throw new ArchiveError(`${what}: entry '${shown(name)}' has an absolute path`);
  }
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) {
    throw new ArchiveError(`${what}: entry '${shown(name)}' escapes the target directory`);
  }
  const rel = parts.join("/");
  if (
    enc.encode(rel).byteLength > MAX_PATH_BYTES ||
    parts.some((p) => p.length > MAX_NAME_BYTES / 3 && enc.encode(p).byteLength > MAX_NAME_BYTES)
  ) {
    throw new ArchiveError(
      `${what}: entry '${shown(name)}' has a name longer than this system accepts ` +
        `(${MAX_NAME_BYTES} bytes per component, ${MAX_PATH_BYTES} in all)`,
    );
  }
  return rel;
}

const enc = new TextEncoder();

// Metadata calls are synchronous: an async round trip per call made a layer
// of many small entries several times slower, and each call takes microseconds.
function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  }
}

/** Safe modes: never group/other-writable, never setuid/setgid/sticky. */
function safeMode(mode: number, dir: boolean): number {
  return (mode & 0o755) | (dir ? 0o700 : 0);
}

/**
 * Extract one tar layer into `dest` safely.
 *
 * Containment is decided by what is on disk: every parent of an entry must be
 * a real directory (checked with lstat, never through a symlink); files are
 * created with `createNew` after whatever was at their path is removed, so no
 * write follows a link; hardlinks must name a regular file reached the same
 * way; symlinks are recorded and, once every layer is in place,
 * {@link checkLinks} resolves each one against the disk and refuses the image
 * when one leads outside `dest` or into a reserved name. Modes lose
 * group/other write and setuid/setgid/sticky bits.
 *
 * @param stream the layer's bytes (verify them first, e.g. with VerifyingStream)
 * @param dest destination directory (normally a fresh temp directory)
 * @param options compression, caps, names for errors
 * @returns the files written
 * @throws {ArchiveError} for unsafe or corrupt archives (the caller discards `dest`)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { extractLayer, inspectImage, OciArchive, packDirectory, VerifyingStream } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "a");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`);
 * const src = await OciArchive.open(`${tmp}/foo.tar`);
 * const [layer] = (await inspectImage(src, undefined, { files: false })).manifests[0]!.layers;
 * const verified = (await src.fetch(layer!)).pipeThrough(new VerifyingStream(layer!, "layer"));
 * await Deno.mkdir(`${tmp}/out`);
 * const r = await extractLayer(verified, `${tmp}/out`, { compression: "gzip", what: "layer" });
 * assert.deepEqual(r.files, ["a.txt"]);
 * assert.equal(await Deno.readTextFile(`${tmp}/out/a.txt`), "a");
 * await src.close();
 * await Deno.remove(tmp, { recursive: true });
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
  const source = new StreamSource(
    decompress(stream, options.compression, what, budget),
    what,
  );
  const result: ExtractResult = { files: [], bytes: 0 };
  const tree = new Tree(dest, what, budget, reserved, options.whiteouts ?? false);
  tree.probe();

  const handle = async (e: TarEntry) => {
    if (--budget.entries < 0) throw entryCap(what, budget);
    const rel = safeEntryPath(e.name, what);
    if (rel === "") return;
    tree.checkReserved(rel, e.name);
    tree.realParents(rel, e.name);
    const base = posix.basename(rel);
    if (options.whiteouts && base.startsWith(".wh.")) {
      tree.whiteout(rel, e.name);
      return;
    }
    tree.mark(rel);
    switch (e.type) {
      case "directory": {
        const st = tree.clear(rel, true);
        if (st === null) Deno.mkdirSync(tree.full(rel), { mode: 0o700 });
        Deno.chmodSync(tree.full(rel), safeMode(e.mode, true));
        budget.safeDirs.add(tree.key(rel));
        return;
      }
      case "file": {
        if (e.size > budget.bytes) {
          throw bytesCap(what, budget, e.name);
        }
        budget.bytes -= e.size;
        const mode = safeMode(e.mode, false);
        const f = tree.create(rel, mode | 0o600);
        try {
          for await (const chunk of e.body()) await writeAll(f, chunk);
        } finally {
          f.close();
        }
        // a read-only file gets its mode once written (umask may only remove bits)
        if ((mode | 0o600) !== mode) Deno.chmodSync(tree.full(rel), mode);
        result.files.push(rel);
        result.bytes += e.size;
        return;
      }
      case "symlink": {
        const target = e.linkname;
        if (
          target === "" || target.includes("\0") || target.startsWith("/") ||
          /^[A-Za-z]:/.test(target) || target.includes("\\")
        ) {
          throw new ArchiveError(
            `${what}: symlink '${shown(e.name)}' points outside the target directory ('${
              shown(target)
            }')`,
          );
        }
        // a first, textual check; checkLinks() decides on the final tree
        tree.resolveLink(rel, target, e.name);
        tree.clear(rel, false);
        Deno.symlinkSync(target, tree.full(rel));
        budget.links.add(rel);
        return;
      }
      case "hardlink": {
        let target: string;
        try {
          target = safeEntryPath(e.linkname, what);
        } catch {
          throw new ArchiveError(
            `${what}: hardlink '${shown(e.name)}' points outside the target directory ('${
              shown(e.linkname)
            }')`,
          );
        }
        if (target === "") {
          throw new ArchiveError(`${what}: hardlink '${shown(e.name)}' has no target`);
        }
        tree.checkReserved(target, e.name);
        tree.realParents(target, e.name);
        const st = lstatOrNull(tree.full(target));
        if (!st || !st.isFile) {
          throw new ArchiveError(
            `${what}: hardlink '${shown(e.name)}' points to '${
              shown(e.linkname)
            }', which is not a file extracted here`,
          );
        }
        if (target === rel) return; // a link to itself changes nothing
        tree.clear(rel, false);
        Deno.linkSync(tree.full(target), tree.full(rel));
        result.files.push(rel);
        return;
      }
      default:
        throw new ArchiveError(
          `${what}: entry '${shown(e.name)}' is ${
            e.type === "other" ? "of an unsupported type" : `a ${e.type}`
          }; refused`,
        );
    }
  };

  for await (const entry of readTar(source, what)) {
    try {
      await handle(entry);
    } catch (err) {
      if (err instanceof OcipkgError) throw err;
      const reason = systemReason(err);
      if (reason) {
        throw new ResourceError(
          `${what}: cannot write '${shown(join(dest, entry.name))}': ${reason}`,
          { cause: err },
        );
      }
      throw new ArchiveError(
        `${what}: cannot extract entry '${shown(entry.name)}': ${oneLine(err)}`,
        {
          cause: err,
        },
      );
    }
  }
  // Drain the rest (tar padding) so the digest verifier sees every byte.
  await source.drain();
  return result;
}

/**
 * The tree being extracted into: path checks against the disk, removal, and
 * whiteouts, sharing the budget's record of real directories and symlinks.
 */
class Tree {
  readonly #dest: string;
  readonly #what: string;
  readonly #budget: ExtractBudget;
  readonly #reserved: Set<string>;
  /** Paths this layer made (and their parents), when whiteouts apply: those hide lower layers only. */
  readonly #mine: Set<string> | undefined;

  constructor(
    dest: string,
    what: string,
    budget: ExtractBudget,
    reserved: Set<string>,
    whiteouts = false,
  ) {
    this.#dest = dest;
    this.#what = what;
    this.#budget = budget;
    this.#reserved = reserved;
    if (whiteouts) this.#mine = new Set();
  }

  /** Record that this layer makes `rel` (and its parents), so its own whiteouts spare them. */
  mark(rel: string): void {
    if (!this.#mine) return;
    for (let i = rel.indexOf("/"); i >= 0; i = rel.indexOf("/", i + 1)) {
      this.#mine.add(this.key(rel.slice(0, i)));
    }
    this.#mine.add(this.key(rel));
  }

  /** Remove what lower layers put under `dir`, keeping what this layer made. */
  #hideLower(dir: string): void {
    for (const c of Deno.readDirSync(this.full(dir))) {
      const p = dir ? `${dir}/${c.name}` : c.name;
      if (dir === "" && (this.#reserved.has(c.name) || this.#reserved.has(this.key(c.name)))) {
        continue;
      }
      if (!this.#mine?.has(this.key(p))) this.clear(p, false);
      else if (c.isDirectory) this.#hideLower(p);
    }
  }

  full(rel: string): string {
    return rel === "" ? this.#dest : join(this.#dest, ...rel.split("/"));
  }

  /** Key of a path in the cache of checked directories (case-folded when the disk folds case). */
  key(rel: string): string {
    return this.#budget.caseSensitive === false ? rel.normalize("NFC").toLowerCase() : rel;
  }

  /**
   * Find out once whether the destination folds case (`A` and `a` the same):
   * then cached directory checks must compare folded names.
   */
  probe(): void {
    if (this.#budget.caseSensitive !== undefined) return;
    const name = `.ocipkg-case-probe-${crypto.randomUUID().slice(0, 8)}`;
    const probe = join(this.#dest, name);
    Deno.writeFileSync(probe, new Uint8Array(0), { createNew: true, mode: 0o600 });
    try {
      this.#budget.caseSensitive = lstatOrNull(join(this.#dest, name.toUpperCase())) === null;
    } finally {
      Deno.removeSync(probe);
    }
  }

  /**
   * Create a new file at `rel` (its parents are real directories): whatever
   * was there is removed first; `createNew` never follows a symlink.
   */
  create(rel: string, mode: number): Deno.FsFile {
    const options = { write: true, createNew: true, mode };
    try {
      return Deno.openSync(this.full(rel), options);
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    this.clear(rel, false);
    return Deno.openSync(this.full(rel), options);
  }

  checkReserved(rel: string, name: string): void {
    const top = rel.split("/")[0]!;
    if (this.#reserved.has(top) || this.#reserved.has(this.key(top))) {
      throw new ArchiveError(`${this.#what}: entry '${shown(name)}' uses a reserved name`);
    }
  }

  /** Make sure every parent of `rel` is a real directory (never a symlink), creating missing ones. */
  realParents(rel: string, name: string): void {
    const parts = rel.split("/");
    let cur = "";
    for (let i = 0; i < parts.length - 1; i++) {
      cur = cur ? `${cur}/${parts[i]}` : parts[i]!;
      if (this.#budget.safeDirs.has(this.key(cur))) continue;
      const st = lstatOrNull(this.full(cur));
      if (st === null) Deno.mkdirSync(this.full(cur), { mode: 0o755 });
      else if (st.isSymlink) {
        throw new ArchiveError(
          `${this.#what}: entry '${shown(name)}' would be written through symlink '${shown(cur)}'`,
        );
      } else if (!st.isDirectory) {
        throw new ArchiveError(
          `${this.#what}: entry '${shown(name)}' needs '${shown(cur)}' to be a directory`,
        );
      }
      this.#budget.safeDirs.add(this.key(cur));
    }
  }

  /** Whether every parent of `rel` is a real directory on disk (nothing followed). */
  physicalParents(rel: string): boolean {
    const parts = rel.split("/");
    for (let i = 1; i < parts.length; i++) {
      if (!lstatOrNull(this.full(parts.slice(0, i).join("/")))?.isDirectory) return false;
    }
    return true;
  }

  /** Remove whatever is at `rel` (keeping a directory if asked); returns what stays. */
  clear(rel: string, keepDir: boolean): Deno.FileInfo | null {
    const st = lstatOrNull(this.full(rel));
    if (st === null || (keepDir && st.isDirectory)) return st;
    Deno.removeSync(this.full(rel), { recursive: st.isDirectory });
    const k = this.key(rel);
    for (const d of this.#budget.safeDirs) {
      if (d === k || d.startsWith(`${k}/`)) this.#budget.safeDirs.delete(d);
    }
    return null;
  }

  /** Apply a whiteout entry (`dir/.wh.name` or `dir/.wh..wh..opq`); its parents are real. */
  whiteout(rel: string, name: string): void {
    const dir = posix.dirname(rel) === "." ? "" : posix.dirname(rel);
    const base = posix.basename(rel);
    // whiteouts apply to lower layers only (OCI image spec, "Whiteouts")
    if (base === ".wh..wh..opq") {
      this.#hideLower(dir);
      return;
    }
    const victim = base.slice(4);
    if (victim === "" || victim === "." || victim === ".." || victim.startsWith(".wh.")) {
      throw new ArchiveError(`${this.#what}: whiteout '${shown(name)}' names no entry`);
    }
    const target = dir ? `${dir}/${victim}` : victim;
    this.checkReserved(target, name);
    if (!this.#mine?.has(this.key(target))) this.clear(target, false);
    else if (lstatOrNull(this.full(target))?.isDirectory) this.#hideLower(target);
  }

  /**
   * Resolve a symlink's target against the disk, following symlinks met on
   * the way; throws when it leads outside the tree or into a reserved name.
   */
  resolveLink(rel: string, target: string, name: string): void {
    const escape = (why: string) =>
      new ArchiveError(
        `${this.#what}: symlink '${shown(name)}' ${why} ('${shown(target)}')`,
      );
    const stack = rel.split("/").slice(0, -1);
    const queue = target.split("/").reverse();
    let hops = 0;
    let missing = false; // past a component that does not exist: the rest is lexical
    while (queue.length) {
      const c = queue.pop()!;
      if (c === "" || c === ".") continue;
      if (c === "..") {
        if (stack.length === 0) throw escape("points outside the target directory");
        stack.pop();
        continue;
      }
      stack.push(c);
      if (stack.length === 1 && (this.#reserved.has(c) || this.#reserved.has(this.key(c)))) {
        throw escape("points into a reserved directory");
      }
      if (missing) continue;
      const st = lstatOrNull(this.full(stack.join("/")));
      if (st === null) {
        missing = true;
        continue;
      }
      if (!st.isSymlink) continue;
      if (++hops > MAX_LINK_HOPS) throw escape("is part of a symlink loop");
      const next = Deno.readLinkSync(this.full(stack.join("/")));
      if (next.startsWith("/") || /^[A-Za-z]:/.test(next) || next.includes("\\")) {
        throw escape("points outside the target directory");
      }
      stack.pop();
      queue.push(...next.split("/").reverse());
    }
  }
}

/**
 * Check every symlink an extraction created, now that all layers are in
 * place: each must still resolve (following other links on disk) inside
 * `dest` and outside the reserved names. Call it after the last layer; the
 * image must be refused when it throws.
 *
 * @param dest the extracted tree
 * @param budget the budget shared by its layers (it holds the links made)
 * @param what names the image in errors
 * @param reserved reserved top-level names
 * @throws {ArchiveError} naming the first link that escapes
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkLinks, ExtractBudget, extractLayer } from "@ocipkg/cli";
 * import { inspectImage, OciArchive, packDirectory } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/libfoo.so.1`, "");
 * await Deno.symlink("libfoo.so.1", `${tmp}/pkg/libfoo.so`);
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`);
 * const src = await OciArchive.open(`${tmp}/foo.tar`);
 * const [layer] = (await inspectImage(src, undefined, { files: false })).manifests[0]!.layers;
 * const budget = new ExtractBudget(); // one for all layers of the image
 * const out = `${tmp}/out`;
 * await Deno.mkdir(out);
 * await extractLayer(await src.fetch(layer!), out, { compression: "gzip", what: "layer", budget });
 * checkLinks(out, budget, "image foo"); // after the last layer; throws if a link escapes
 * assert.deepEqual([...budget.links], ["libfoo.so"]);
 * await src.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export function checkLinks(
  dest: string,
  budget: ExtractBudget,
  what: string,
  reserved: string[] = [],
): void {
  const tree = new Tree(dest, what, budget, new Set(reserved));
  for (const rel of budget.links) {
    // the link is still there only if every parent is still a real directory
    // (a parent replaced by a symlink since must not be followed, e.g. into a loop)
    try {
      if (!tree.physicalParents(rel)) continue;
      const st = lstatOrNull(tree.full(rel));
      if (!st?.isSymlink) continue; // replaced or removed since
      tree.resolveLink(rel, Deno.readLinkSync(tree.full(rel)), rel);
    } catch (err) {
      if (err instanceof OcipkgError) throw err;
      const reason = systemReason(err);
      if (reason) {
        throw new ResourceError(
          `${what}: cannot check symlink '${shown(join(dest, rel))}': ${reason}`,
          { cause: err },
        );
      }
      throw new ArchiveError(`${what}: cannot check symlink '${shown(rel)}': ${oneLine(err)}`, {
        cause: err,
      });
    }
  }
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
  const tree = new Tree(dest, what, budget, new Set(options.reserved ?? []));
  if (!rel) throw new ArchiveError(`${what}: '${shown(name)}' is not a usable file name`);
  tree.checkReserved(rel, name);
  if (--budget.entries < 0) throw entryCap(what, budget);
  if (size > budget.bytes) throw bytesCap(what, budget, name);
  budget.bytes -= size;
  tree.probe();
  try {
    tree.realParents(rel, name);
    const f = tree.create(rel, 0o644);
    try {
      for await (const chunk of stream) await writeAll(f, chunk);
    } finally {
      f.close();
    }
  } catch (err) {
    if (err instanceof OcipkgError) throw err;
    throw new ArchiveError(`${what}: cannot write '${shown(name)}': ${oneLine(err)}`, {
      cause: err,
    });
  }
  return rel;
}
