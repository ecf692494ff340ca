/**
 * File paths without `node:path`: importing any Node built-in makes Deno
 * start its Node compatibility layer (≈ 5 ms of a 38 ms cached `ocipkg get`,
 * see lib/util/lazy_node.ts). On POSIX systems these functions are a port of
 * Node's `path.posix` (same results: `tests/path_test.ts` checks them against
 * it on random input); on Windows they are `node:path`'s `win32` functions,
 * loaded on first use.
 *
 * @module
 */
import type * as NodePath from "node:path";
import { nodePath } from "./lazy_node.ts";

const WINDOWS = Deno.build.os === "windows";

function win32(): typeof NodePath.win32 {
  return nodePath().win32;
}

/** Resolve `.` and `..` in a path with no leading slash handling. */
function normalizeString(path: string, allowAboveRoot: boolean): string {
  let res = "";
  let lastSegmentLength = 0;
  let lastSlash = -1;
  let dots = 0;
  let code = 0;
  for (let i = 0; i <= path.length; ++i) {
    if (i < path.length) code = path.charCodeAt(i);
    else if (code === 47) break;
    else code = 47;
    if (code === 47) {
      if (lastSlash === i - 1 || dots === 1) {
        // empty segment or "."
      } else if (dots === 2) {
        if (
          res.length < 2 || lastSegmentLength !== 2 ||
          res.charCodeAt(res.length - 1) !== 46 || res.charCodeAt(res.length - 2) !== 46
        ) {
          if (res.length > 2) {
            const lastSlashIndex = res.lastIndexOf("/");
            if (lastSlashIndex === -1) {
              res = "";
              lastSegmentLength = 0;
            } else {
              res = res.slice(0, lastSlashIndex);
              lastSegmentLength = res.length - 1 - res.lastIndexOf("/");
            }
            lastSlash = i;
            dots = 0;
            continue;
          } else if (res.length !== 0) {
            res = "";
            lastSegmentLength = 0;
            lastSlash = i;
            dots = 0;
            continue;
          }
        }
        if (allowAboveRoot) {
          res += res.length > 0 ? "/.." : "..";
          lastSegmentLength = 2;
        }
      } else {
        if (res.length > 0) res += `/${path.slice(lastSlash + 1, i)}`;
        else res = path.slice(lastSlash + 1, i);
        lastSegmentLength = i - lastSlash - 1;
      }
      lastSlash = i;
      dots = 0;
    } else if (code === 46 && dots !== -1) {
      ++dots;
    } else {
      dots = -1;
    }
  }
  return res;
}

function posixNormalize(path: string): string {
  if (path.length === 0) return ".";
  const isAbs = path.charCodeAt(0) === 47;
  const trailing = path.charCodeAt(path.length - 1) === 47;
  let p = normalizeString(path, !isAbs);
  if (p.length === 0) {
    if (isAbs) return "/";
    return trailing ? "./" : ".";
  }
  if (trailing) p += "/";
  return isAbs ? `/${p}` : p;
}

function posixJoin(...parts: string[]): string {
  const joined = parts.filter((p) => p.length > 0).join("/");
  return joined.length === 0 ? "." : posixNormalize(joined);
}

/** The platform's path separator: `/`, or `\` on Windows. */
export const sep: string = WINDOWS ? "\\" : "/";

/**
 * Join path segments and normalise (as `node:path` `join`).
 * @param parts path segments
 * @returns the joined path
 */
export function join(...parts: string[]): string {
  return WINDOWS ? win32().join(...parts) : posixJoin(...parts);
}

/**
 * Whether a path is absolute (as `node:path` `isAbsolute`).
 * @param path a path
 * @returns true for `/x` (or `C:\x`, `\\server\x` on Windows)
 */
export function isAbsolute(path: string): boolean {
  return WINDOWS ? win32().isAbsolute(path) : path.charCodeAt(0) === 47;
}

/**
 * An absolute, normalised path from segments, right to left, against the
 * current directory (as `node:path` `resolve`).
 * @param parts path segments
 * @returns the absolute path
 */
export function resolve(...parts: string[]): string {
  if (WINDOWS) return win32().resolve(...parts);
  let resolved = "";
  let abs = false;
  for (let i = parts.length - 1; i >= -1 && !abs; i--) {
    const path = i >= 0 ? parts[i]! : Deno.cwd();
    if (path.length === 0) continue;
    resolved = `${path}/${resolved}`;
    abs = path.charCodeAt(0) === 47;
  }
  resolved = normalizeString(resolved, !abs);
  if (abs) return `/${resolved}`;
  return resolved.length > 0 ? resolved : ".";
}

/**
 * The directory part of a path (as `node:path` `dirname`).
 * @param path a path
 * @returns its directory, `.` when it has none
 */
export function dirname(path: string): string {
  return WINDOWS ? win32().dirname(path) : posixDirname(path);
}

function posixDirname(path: string): string {
  if (path.length === 0) return ".";
  const hasRoot = path.charCodeAt(0) === 47;
  let end = -1;
  let matchedSlash = true;
  for (let i = path.length - 1; i >= 1; --i) {
    if (path.charCodeAt(i) === 47) {
      if (!matchedSlash) {
        end = i;
        break;
      }
    } else {
      matchedSlash = false;
    }
  }
  if (end === -1) return hasRoot ? "/" : ".";
  if (hasRoot && end === 1) return "//";
  return path.slice(0, end);
}

/**
 * The last part of a path (as `node:path` `basename`, without its suffix
 * argument).
 * @param path a path
 * @returns its last segment, trailing slashes ignored
 */
export function basename(path: string): string {
  return WINDOWS ? win32().basename(path) : posixBasename(path);
}

function posixBasename(path: string): string {
  let start = 0;
  let end = -1;
  let matchedSlash = true;
  for (let i = path.length - 1; i >= 0; --i) {
    if (path.charCodeAt(i) === 47) {
      if (!matchedSlash) {
        start = i + 1;
        break;
      }
    } else if (end === -1) {
      matchedSlash = false;
      end = i + 1;
    }
  }
  return end === -1 ? "" : path.slice(start, end);
}

/**
 * The relative path from one path to another (as `node:path` `relative`).
 * @param from the starting path
 * @param to the destination
 * @returns a path that leads from `from` to `to`, `""` when they are the same
 */
export function relative(from: string, to: string): string {
  if (WINDOWS) return win32().relative(from, to);
  if (from === to) return "";
  from = resolve(from);
  to = resolve(to);
  if (from === to) return "";
  const fromParts = from === "/" ? [] : from.slice(1).split("/");
  const toParts = to === "/" ? [] : to.slice(1).split("/");
  let i = 0;
  while (i < fromParts.length && i < toParts.length && fromParts[i] === toParts[i]) i++;
  return [...fromParts.slice(i).map(() => ".."), ...toParts.slice(i)].join("/");
}

/**
 * POSIX paths whatever the host system (`node:path`'s `posix`): for names
 * inside archives and images, which always use `/`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { posix } from "./path.ts";
 * assert.equal(posix.join("lib", "./x/../libfoo.so"), "lib/libfoo.so");
 * assert.equal(posix.dirname("lib/libfoo.so"), "lib");
 * assert.equal(posix.basename("lib/libfoo.so/"), "libfoo.so");
 * ```
 */
export const posix: {
  join(...parts: string[]): string;
  dirname(path: string): string;
  basename(path: string): string;
} = { join: posixJoin, dirname: posixDirname, basename: posixBasename };
