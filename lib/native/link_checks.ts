/**
 * What text from an image may become in the files `link` writes, the checks
 * every writer shares:
 *
 * - Link names and file names of libraries must be `[A-Za-z0-9_.+-]` (files
 *   that are not are left out by `findLibraries`); paths written below the
 *   image directory hold only such names.
 * - rpath directories (`-Wl,-rpath,<dir>`) are refused when they hold `,`
 *   (the compiler splits `-Wl,` at commas), `:` (it separates rpath entries)
 *   or a dynamic-loader token such as `$ORIGIN`.
 * - The version annotation is used only when it matches
 *   `[0-9A-Za-z][0-9A-Za-z.+_~-]{0,63}`; otherwise it is ignored (a numeric
 *   tag such as `1.2` or `v1.2` stands in, or none).
 * - A package name is up to 128 of `[A-Za-z0-9_.+-]`.
 * - Free text (a description, a comment) is made one line.
 *
 * @module
 */
import { OcipkgError, UsageError } from "../util/errors.ts";
import type { ImageName } from "../oci/reference.ts";
import { printable } from "../util/text.ts";
import { isSafeLibraryName } from "./libraries.ts";
import type { LinkedLibrary, LinkResult } from "./link.ts";

/** A C0 control (newline, tab, escape, …), DEL, a C1 control or a Unicode line separator. */
// deno-lint-ignore no-control-regex
export const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
// deno-lint-ignore no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g;
/** What the version annotation must look like to be written anywhere. */
export const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+_~-]{0,63}$/;
/** A library file name (its link name is checked by isSafeLibraryName). */
const LIBRARY_FILE = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,254}$/;
/** The part of a path below the image directory: `/lib/libfoo.a`, `/include`. */
const SUFFIX = /^(?:\/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*$/;
/** Dynamic string tokens the loader expands in an rpath entry. */
const LOADER_TOKEN = /\$(?:\{(?:ORIGIN|LIB|PLATFORM)\}|(?:ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))/;

/**
 * The package name used for `.pc` and CMake files: the last segment of the
 * repository (`ghcr.io/org/libfoo:1` → `libfoo`).
 *
 * @param image the image
 * @returns the name
 */
export function packageName(image: ImageName): string {
  return image.name.slice(image.name.lastIndexOf("/") + 1);
}

/** A package name for `.pc` and CMake files, checked (refused unless plain). */
export function checkName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/.test(name)) {
    throw new UsageError(
      `invalid package name '${
        printable(name)
      }': use up to 128 letters, digits, '_', '.', '+', '-'`,
    );
  }
  return name;
}

/** The error for a value from an image that cannot be written into `out`. */
export function unsafe(
  r: LinkResult,
  out: string,
  what: string,
  value: string,
  why: string,
): OcipkgError {
  return new OcipkgError(
    `image '${r.image}': cannot write ${what} '${printable(value)}' into ${out}: ${why}`,
  );
}

/** Whether a library's file name (or soname) is plain: `[A-Za-z0-9_.+-]`, not starting with `.`, `+`, `-`. */
export function isPlainFileName(file: string): boolean {
  return LIBRARY_FILE.test(file);
}

/** Refuse a library whose link name or file name is not plain. */
export function checkLibrary(r: LinkResult, out: string, l: LinkedLibrary): void {
  if (!isSafeLibraryName(l.name)) {
    throw unsafe(r, out, "library name", l.name, "use letters, digits, '_', '.', '+', '-'");
  }
  if (!isPlainFileName(l.file)) {
    throw unsafe(r, out, "library file", l.file, "use letters, digits, '_', '.', '+', '-'");
  }
}

/** The directories to put in an rpath (none for Windows), each checked. */
export function rpathDirs(r: LinkResult, out: string): string[] {
  if (r.platform.os === "windows") return [];
  const dirs = [...new Set(r.libraries.filter((l) => l.kind === "dylib").map((l) => l.dir))];
  for (const d of dirs) {
    const bad = CONTROL.test(d)
      ? "a control character"
      : d.includes(",")
      ? "',' (the compiler splits -Wl, arguments at commas)"
      : d.includes(":")
      ? "':' (it separates rpath entries)"
      : LOADER_TOKEN.test(d)
      ? "a token the dynamic loader expands ($ORIGIN, $LIB, $PLATFORM)"
      : undefined;
    if (bad) {
      throw unsafe(
        r,
        out,
        "rpath directory",
        d,
        `it holds ${bad}; link statically, or use a data dir (OCIPKG_DATA_DIR) without it`,
      );
    }
  }
  return dirs;
}

/** `p` below the image directory, `/`-separated, checked to hold only safe names. */
export function below(r: LinkResult, out: string, p: string): string {
  let rest = p.startsWith(r.dir) ? p.slice(r.dir.length) : undefined;
  if (rest !== undefined && Deno.build.os === "windows") rest = rest.replaceAll("\\", "/");
  if (rest === undefined || !SUFFIX.test(rest)) {
    throw unsafe(r, out, "path", p, `it is not a plain path inside '${printable(r.dir)}'`);
  }
  return rest;
}

/** Annotation text made one line: control characters become spaces, at most 200 characters. */
export function oneLineText(s: string): string {
  return Array.from(s.replace(CONTROLS, " ").replace(/ {2,}/g, " ").trim()).slice(0, 200).join("");
}

/** Comment text: one line, no backslash (a trailing one would continue the line). */
export function commentText(s: string): string {
  return oneLineText(s).replaceAll("\\", "/");
}
