/**
 * Containment of an extraction, decided on disk: entry names are normalized
 * and checked ({@link safeEntryPath}); the {@link Tree} being extracted into
 * makes sure every parent is a real directory (never a symlink), removes what
 * an entry replaces, applies whiteouts, and resolves symlinks against the
 * disk to refuse one that leads outside the tree or into a reserved name.
 *
 * @module
 */
import { join, posix } from "../util/path.ts";
import { ArchiveError } from "../util/errors.ts";
import type { ExtractBudget } from "./budget.ts";
import { shown } from "./tar_header.ts";

/** Longest path component, in UTF-8 bytes, that extraction accepts. */
export const MAX_NAME_BYTES = 255;
/** Longest relative path, in UTF-8 bytes, that extraction accepts. */
export const MAX_PATH_BYTES = 4000;
/** Most symlinks followed while checking where one link leads. */
const MAX_LINK_HOPS = 40;

const enc = new TextEncoder();

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
 * import { safeEntryPath } from "./containment.ts";
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

// Metadata calls are synchronous: an async round trip per call made a layer
// of many small entries several times slower, and each call takes microseconds.
/** lstat, or null when nothing is there. */
export function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  }
}

/**
 * The tree being extracted into: path checks against the disk, removal, and
 * whiteouts, sharing the budget's record of real directories and symlinks.
 */
export class Tree {
  readonly #dest: string;
  readonly #what: string;
  readonly #budget: ExtractBudget;
  readonly #reserved: Set<string>;
  /** Paths this layer made (and their parents), when whiteouts apply: those hide lower layers only. */
  readonly #mine: Set<string> | undefined;

  /**
   * Create a Tree.
   * @param dest the directory extracted into
   * @param what names the layer or image in errors
   * @param budget the budget of the image (its checked directories and links)
   * @param reserved top-level names entries must not use
   * @param whiteouts whether whiteout entries apply (container image layers)
   */
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

  /** The path on disk of `rel`. */
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

  /** Refuse a path whose first component is a reserved name (compared as the disk does). */
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
