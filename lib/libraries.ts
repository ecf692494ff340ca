/**
 * Find the libraries and headers in an extracted package: `lib*.a`,
 * `lib*.so[.N…]`, `lib*[.N].dylib`, `*.lib`, `*.dll` (and MinGW's
 * `lib*.dll.a`), at the top of the package (the Rust ocipkg layout) and under
 * `lib/` (`lib64/`, and `bin/` for Windows DLLs). Naming follows the target
 * platform's OS, not the host's, so cross builds see the right files.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { fsError } from "./errors.ts";

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

/** What a package holds for native builds. */
export interface PackageContents {
  /** Libraries, sorted by name. */
  libraries: Library[];
  /** `include/` when the package has one. */
  includeDir?: string;
  /** Directories searched. */
  searched: string[];
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
 * import { classifyLibrary } from "./libraries.ts";
 * console.assert(classifyLibrary("libz.so.1.3", "linux")?.name === "z");
 * console.assert(classifyLibrary("foo.lib", "windows")?.kind === "static");
 * console.assert(classifyLibrary("libfoo.dylib", "linux") === undefined);
 * ```
 */
export function classifyLibrary(file: string, os: string): LibraryMatch | undefined {
  let m: RegExpExecArray | null;
  if (os === "windows") {
    if ((m = /^lib(.+)\.dll\.a$/.exec(file))) return { name: m[1]!, kind: "dylib" };
    if ((m = /^lib(.+)\.a$/.exec(file))) return { name: m[1]!, kind: "static" };
    if ((m = /^(.+)\.lib$/i.exec(file))) return { name: m[1]!, kind: "static" };
    if ((m = /^(.+)\.dll$/i.exec(file))) return { name: m[1]!, kind: "dylib", runtime: true };
    return undefined;
  }
  if ((m = /^lib(.+)\.a$/.exec(file))) return { name: m[1]!, kind: "static" };
  if (os === "darwin") {
    if ((m = /^lib(.+?)((?:\.\d+)*)\.dylib$/.exec(file))) {
      return { name: m[1]!, kind: "dylib", verbatim: m[2] !== "" };
    }
    return undefined;
  }
  if ((m = /^lib(.+?)\.so((?:\.\d+)*)$/.exec(file))) {
    return { name: m[1]!, kind: "dylib", verbatim: m[2] !== "" };
  }
  return undefined;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/**
 * Find the libraries and headers of an extracted package.
 *
 * @param dir the package's directory (e.g. from `ocipkg get`)
 * @param os the target's OCI os (default: the host's)
 * @returns libraries by name, the include directory, the directories searched
 * @throws {OcipkgError} when `dir` cannot be read
 * @example
 * ```ts
 * import { findLibraries } from "./libraries.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/libfoo.a`, new Uint8Array(8));
 * const c = await findLibraries(dir, "linux");
 * console.assert(c.libraries[0]?.name === "foo" && c.libraries[0].static !== undefined);
 * ```
 */
export async function findLibraries(
  dir: string,
  os: string = Deno.build.os === "darwin" ? "darwin" : Deno.build.os,
): Promise<PackageContents> {
  const subdirs = ["", "lib", "lib64", ...(os === "windows" ? ["bin"] : [])];
  const byName = new Map<string, Library>();
  const searched: string[] = [];
  for (const sub of subdirs) {
    const d = sub ? join(dir, sub) : dir;
    let names: string[];
    try {
      names = [];
      for await (const e of Deno.readDir(d)) if (!e.isDirectory) names.push(e.name);
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
      if (!(await isFile(path))) continue; // dangling symlink
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
  let hasInclude = false;
  try {
    hasInclude = (await Deno.stat(includeDir)).isDirectory;
  } catch { /* none */ }
  const out: PackageContents = {
    libraries: [...byName.values()].filter((l) => l.static || l.dylib).sort((a, b) =>
      a.name.localeCompare(b.name)
    ),
    searched,
  };
  if (hasInclude) out.includeDir = includeDir;
  return out;
}
