/**
 * Find the libraries and headers in an extracted package: `lib*.a`,
 * `lib*.so[.N…]`, `lib*[.N].dylib`, `*.lib`, `*.dll` (and MinGW's
 * `lib*.dll.a`), at the top of the package (the Rust ocipkg layout) and under
 * `lib/` (`lib64/`, and `bin/` for Windows DLLs). Naming follows the target
 * platform's OS, not the host's, so cross builds see the right files.
 *
 * @module
 */
import { basename, dirname, join, sep } from "../util/path.ts";
import { fsError } from "../util/errors.ts";

/** How a library is linked. */
export type LinkKind = "static" | "dylib";

/** One library file. */
export interface LibraryFile {
  /** `static` archive or `dylib` (shared library / import library). */
  kind: LinkKind;
  /** Absolute path. */
  path: string;
  /** Directory holding it. */
  dir: string;
  /** File name. */
  file: string;
  /**
   * The file can only be found by its verbatim name (a versioned shared
   * library like `libfoo.so.1` with no `libfoo.so` next to it).
   */
  verbatim?: boolean;
}

/** A library by link name, with the files found for it. */
export interface Library {
  /** Link name (`foo` for `libfoo.a`, `foo.lib`, `libfoo.so.1`). */
  name: string;
  /** Static archive, if any. */
  static?: LibraryFile;
  /** Shared library (or import library on Windows), if any. */
  dylib?: LibraryFile;
  /** The DLL itself on Windows (for loading at run time). */
  runtime?: string;
}

/** A file that looked like a library (or the include directory) but was left out. */
export interface SkippedFile {
  /** Its path. */
  path: string;
  /** Why, e.g. "its link name is not [A-Za-z0-9_.+-]" (never holds the file name). */
  reason: string;
}

/** What a package holds for native builds. */
export interface PackageContents {
  /** Libraries, sorted by name. */
  libraries: Library[];
  /** `include/` when the package has one. */
  includeDir?: string;
  /** Directories searched. */
  searched: string[];
  /**
   * Library files (and an `include/`) that were left out because they are not
   * safe to hand to a build: a link name outside `[A-Za-z0-9_.+-]`, or a path
   * that resolves outside the package.
   */
  skipped: SkippedFile[];
}

const LIBRARY_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}$/;

/**
 * Whether a link name is safe to write into Cargo lines, `.pc` files and
 * CMake target names: letters, digits, `_`, `.`, `+`, `-` (not first), at
 * most 200 characters. A file named `libx;y.a` or `lib$(x).so` is not a
 * library ocipkg links.
 *
 * @param name a link name (`foo` for `libfoo.a`)
 * @returns true when it may be used
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isSafeLibraryName } from "./libraries.ts";
 * assert.ok(isSafeLibraryName("foo-bar_2.0+x"));
 * assert.ok(!isSafeLibraryName("x;y") && !isSafeLibraryName("a b") && !isSafeLibraryName("-x"));
 * ```
 */
export function isSafeLibraryName(name: string): boolean {
  return LIBRARY_NAME.test(name);
}

/**
 * Where `path` leads once every symlink is followed: a regular file or a
 * directory inside the directory whose real path is `root`, or outside it.
 *
 * @param root real path of the package directory (from `Deno.realPath`)
 * @param path a path in the package
 * @returns `file` or `dir` when inside, `outside`, or `missing` (dangling, unreadable, neither)
 */
// async for its callers; its file operations are synchronous (see findLibraries)
// deno-lint-ignore require-await
export async function locateInPackage(
  root: string,
  path: string,
): Promise<"file" | "dir" | "outside" | "missing"> {
  let real: string;
  let info: Deno.FileInfo;
  try {
    real = Deno.realPathSync(path);
    info = Deno.statSync(real);
  } catch {
    return "missing";
  }
  if (real !== root && !real.startsWith(root.endsWith(sep) ? root : root + sep)) return "outside";
  return info.isFile ? "file" : info.isDirectory ? "dir" : "missing";
}

/** What a file name says about a library. */
export interface LibraryMatch {
  /** Link name. */
  name: string;
  /** Static archive or shared/import library. */
  kind: LinkKind;
  /** Only usable by its verbatim name (versioned shared library). */
  verbatim?: boolean;
  /** A Windows DLL (loaded at run time, linked through its import library). */
  runtime?: boolean;
}

/**
 * Classify a file name as a library for a target OS.
 *
 * @param file a file name
 * @param os the target's OCI os (`linux`, `darwin`, `windows`, …)
 * @returns its link name and kind, or undefined when it is not a library
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifyLibrary } from "./libraries.ts";
 * const z = classifyLibrary("libz.so.1.3", "linux");
 * assert.deepEqual(z, { name: "z", kind: "dylib", verbatim: true });
 * assert.equal(classifyLibrary("foo.lib", "windows")?.kind, "static");
 * assert.equal(classifyLibrary("libfoo.dylib", "linux"), undefined); // not for linux
 * ```
 */
export function classifyLibrary(file: string, os: string): LibraryMatch | undefined {
  // `s`: a name holding a newline is still recognised, so that findLibraries reports it as unsafe
  let m: RegExpExecArray | null;
  if (os === "windows") {
    if ((m = /^lib(.+)\.dll\.a$/s.exec(file))) return { name: m[1]!, kind: "dylib" };
    if ((m = /^lib(.+)\.a$/s.exec(file))) return { name: m[1]!, kind: "static" };
    if ((m = /^(.+)\.lib$/is.exec(file))) return { name: m[1]!, kind: "static" };
    if ((m = /^(.+)\.dll$/is.exec(file))) return { name: m[1]!, kind: "dylib", runtime: true };
    return undefined;
  }
  if ((m = /^lib(.+)\.a$/s.exec(file))) return { name: m[1]!, kind: "static" };
  if (os === "darwin") {
    if ((m = /^lib(.+?)((?:\.\d+)*)\.dylib$/s.exec(file))) {
      return { name: m[1]!, kind: "dylib", verbatim: m[2] !== "" };
    }
    return undefined;
  }
  if ((m = /^lib(.+?)\.so((?:\.\d+)*)$/s.exec(file))) {
    return { name: m[1]!, kind: "dylib", verbatim: m[2] !== "" };
  }
  return undefined;
}

/**
 * Find the libraries and headers of an extracted package. Files whose link
 * name is not {@link isSafeLibraryName safe}, and files or an `include/`
 * that resolve (through symlinks) outside the package, are left out and
 * listed in `skipped`.
 *
 * @param dir the package's directory (e.g. from `ocipkg get`)
 * @param os the target's OCI os (default: the host's)
 * @returns libraries by name, the include directory, the directories searched
 * @throws {OcipkgError} when `dir` cannot be read
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findLibraries } from "@ocipkg/cli/native";
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/lib`);
 * await Deno.mkdir(`${dir}/include`);
 * await Deno.writeTextFile(`${dir}/lib/libfoo.a`, "!<arch>\n");
 * await Deno.writeTextFile(`${dir}/lib/libfoo.so`, "");
 * await Deno.writeTextFile(`${dir}/lib/libbad name.a`, "!<arch>\n");
 * const c = await findLibraries(dir, "linux");
 * assert.deepEqual(c.libraries.map((l) => [l.name, l.static?.file, l.dylib?.file]), [
 *   ["foo", "libfoo.a", "libfoo.so"],
 * ]);
 * assert.equal(c.includeDir, `${dir}/include`);
 * assert.equal(c.skipped.length, 1); // `libbad name.a`: not a safe link name
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function findLibraries(
  dir: string,
  os: string = Deno.build.os === "darwin" ? "darwin" : Deno.build.os,
): Promise<PackageContents> {
  const subdirs = ["", "lib", "lib64", ...(os === "windows" ? ["bin"] : [])];
  const byName = new Map<string, Library>();
  const searched: string[] = [];
  const skipped: SkippedFile[] = [];
  let root: string;
  // the file operations are synchronous: a package's few directories, and a cached `link` (run
  // by every build script) pays no thread hand-off for each
  try {
    root = Deno.realPathSync(dir);
  } catch (e) {
    throw fsError(e, "package directory", dir);
  }
  for (const sub of subdirs) {
    const d = sub ? join(dir, sub) : dir;
    let names: string[];
    try {
      names = [];
      for (const e of Deno.readDirSync(d)) if (!e.isDirectory) names.push(e.name);
    } catch (e) {
      if (sub && e instanceof Deno.errors.NotFound) continue;
      if (sub && e instanceof Deno.errors.NotADirectory) continue;
      throw fsError(e, "package directory", d);
    }
    searched.push(d);
    names.sort();
    const present = new Set(names);
    for (const file of names) {
      const m = classifyLibrary(file, os);
      if (!m) continue;
      const path = join(d, file);
      if (!isSafeLibraryName(m.name)) {
        skipped.push({ path, reason: "its link name is not [A-Za-z0-9_.+-]" });
        continue;
      }
      const where = await locateInPackage(root, path);
      if (where === "outside") {
        skipped.push({ path, reason: "it resolves to a file outside the package" });
        continue;
      }
      if (where !== "file") continue; // dangling symlink, directory
      const lib = byName.get(m.name) ?? { name: m.name };
      byName.set(m.name, lib);
      if (m.runtime) {
        lib.runtime ??= path;
        continue;
      }
      const found: LibraryFile = { kind: m.kind, path, dir: d, file };
      if (m.verbatim) {
        // libfoo.so.1: only usable by name when libfoo.so is absent
        const plain = os === "darwin" ? `lib${m.name}.dylib` : `lib${m.name}.so`;
        if (present.has(plain)) continue;
        found.verbatim = true;
      }
      const prev = lib[m.kind];
      // keep the first found (top level before lib/), but an unversioned name wins
      if (!prev || (prev.verbatim && !found.verbatim)) lib[m.kind] = found;
    }
  }
  if (os === "windows") {
    for (const lib of byName.values()) {
      if (!lib.runtime) continue;
      // foo.lib next to foo.dll is its import library; a lone foo.dll links directly (MinGW)
      if (!lib.dylib && lib.static && /\.lib$/i.test(lib.static.file)) {
        lib.dylib = lib.static;
        delete lib.static;
      }
      lib.dylib ??= {
        kind: "dylib",
        path: lib.runtime,
        dir: dirname(lib.runtime),
        file: basename(lib.runtime),
      };
    }
  }
  const includeDir = join(dir, "include");
  const include = await locateInPackage(root, includeDir);
  const hasInclude = include === "dir";
  if (include === "outside") {
    skipped.push({ path: includeDir, reason: "it resolves to a directory outside the package" });
  }
  const out: PackageContents = {
    libraries: [...byName.values()].filter((l) => l.static || l.dylib).sort((a, b) =>
      a.name.localeCompare(b.name)
    ),
    searched,
    skipped,
  };
  if (hasInclude) out.includeDir = includeDir;
  return out;
}
