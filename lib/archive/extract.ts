/**
 * Safe streaming extraction of tar layers (plain, gzip, zstd) — the only
 * extractor in ocipkg.
 *
 * Rejects absolute paths, `..`, NUL and backslashes in names, symlinks and
 * hardlinks that point outside the destination, writes through a symlink
 * planted by an earlier entry or layer, device nodes and fifos, and caps the
 * total bytes and entry count.
 *
 * The caps and the budget the layers of an image share are in `budget.ts`,
 * decompression in `decompress.ts`, the path and containment checks in
 * `containment.ts`.
 *
 * @module
 */
import { join, posix } from "../util/path.ts";
import { ArchiveError, OcipkgError, oneLine, ResourceError, systemReason } from "../util/errors.ts";
import { writeAll } from "../util/files.ts";
import { readTar, type TarEntry } from "./tar.ts";
import { shown } from "./tar_header.ts";
import { StreamSource } from "./tar_source.ts";
import { bytesCap, entryCap, ExtractBudget } from "./budget.ts";
import { decompress } from "./decompress.ts";
import { lstatOrNull, safeEntryPath, Tree } from "./containment.ts";

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

/** What {@link extractLayer} wrote. */
export interface ExtractResult {
  /** Relative paths of regular files written. */
  files: string[];
  /** Bytes of file data written. */
  bytes: number;
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
 * import { inspectImage, OciArchive, packDirectory } from "@ocipkg/cli";
 * import { VerifyingStream } from "@ocipkg/cli/oci";
 * import { extractLayer } from "@ocipkg/cli/archive";
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
 * import { checkLinks, ExtractBudget, extractLayer } from "@ocipkg/cli/archive";
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
