/**
 * Link packages into native builds: get the image (cached like `get`), find
 * its libraries for the target platform, and emit Cargo build-script lines,
 * a pkg-config `.pc` file or a CMake package config.
 *
 * Everything that comes from an image (annotations, file names, the store
 * path) is checked or escaped for the language it is written in, and
 * generated files are written inside the image's own directory without ever
 * following a symlink the package may contain:
 *
 * - Cargo lines are line-based: a value holding a control character is
 *   refused (a newline would start another `cargo:` instruction).
 * - rpath directories (`-Wl,-rpath,<dir>`) are refused when they hold `,`
 *   (the compiler splits `-Wl,` at commas), `:` (it separates rpath entries)
 *   or a dynamic-loader token such as `$ORIGIN`.
 * - `.pc` files: paths are escaped for pkg-config's argument splitting
 *   (`\`, space, `"`, `'`, `#` get a backslash); paths holding control
 *   characters, `${` or `$$` (which pkg-config and pkgconf read differently)
 *   are refused; the description is made one line and escaped.
 * - CMake files never hold a path (they locate the package from
 *   `CMAKE_CURRENT_LIST_DIR`); a store path CMake would misread (`;`, `$<`,
 *   a backslash outside Windows, control characters) is refused; the version
 *   is written as a bracket argument; the description is not written.
 * - The version annotation is used only when it matches
 *   `[0-9A-Za-z][0-9A-Za-z.+_~-]{0,63}`; otherwise it is ignored (a numeric
 *   tag such as `1.2` or `v1.2` stands in, or none).
 * - Link names and file names of libraries must be `[A-Za-z0-9_.+-]` (files
 *   that are not are left out by {@link findLibraries}).
 *
 * @module
 */
import { join, resolve } from "../util/path.ts";
import { fsError, NotFoundError, OcipkgError, UsageError } from "../util/errors.ts";
import { atomicWriteFile } from "../util/files.ts";
import {
  findLibraries,
  isSafeLibraryName,
  type Library,
  type LibraryFile,
  type SkippedFile,
} from "./libraries.ts";
import type { Platform } from "../oci/manifest.ts";
import { ANNOTATION_DESCRIPTION, ANNOTATION_VERSION } from "../oci/media_types.ts";
import { hostPlatform } from "../oci/platform.ts";
import { type ImageName, imageName } from "../oci/reference.ts";
import { getImage, type GetOptions } from "../ops/install.ts";
import { Store } from "../store/store.ts";
import { printable } from "../util/text.ts";

/** Options of {@link linkPackage}. */
export interface LinkOptions extends GetOptions {
  /**
   * `static`: link static archives only; `dynamic`: shared libraries only;
   * default: each library's static archive when it has one, else its shared
   * library.
   */
  prefer?: "static" | "dynamic";
  /** Link only these libraries (each must exist). Default: all. */
  libs?: string[];
}

/** One library chosen for linking. */
export interface LinkedLibrary extends LibraryFile {
  /** Link name. */
  name: string;
  /** The DLL to load at run time (Windows). */
  runtime?: string;
}

/** What {@link linkPackage} found. */
export interface LinkResult {
  /** The image. */
  image: ImageName;
  /** Its store directory. */
  dir: string;
  /** The platform the libraries were chosen for. */
  platform: Platform;
  /** Chosen libraries, sorted by name. */
  libraries: LinkedLibrary[];
  /** Every library found in the package (static and shared files), chosen or not. */
  found?: Library[];
  /** Directories holding them (for `-L`). */
  searchDirs: string[];
  /** `include/` when the package has one. */
  includeDir?: string;
  /** Library files left out as unsafe (see {@link findLibraries}), when there are any. */
  skipped?: SkippedFile[];
  /**
   * Annotations to take the version and description of `.pc` and CMake files
   * from (checked when they are written). Default: the installed manifest's,
   * read by the writer from the store `dir` belongs to.
   */
  annotations?: Record<string, string>;
}

function describe(libs: Library[]): string {
  return libs.map((l) =>
    `${l.name} (${[l.static ? "static" : "", l.dylib ? "shared" : ""].filter(Boolean).join("+")})`
  ).join(", ") || "none";
}

/**
 * Get an image (no request when it is already in the store) and choose the
 * libraries to link from it. The image is got for the platform linked for
 * (the host's by default) into that platform's own store entry, so a host
 * build and a cross build never share files and both stay cached.
 *
 * @param image image name
 * @param options `prefer` static/dynamic, `libs` to pick, platform, store, client options
 * @returns the store directory, chosen libraries and include directory
 * @throws {NotFoundError} when the image has no (matching) libraries
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linkPackage, loadImage, packDirectory, Store } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg/include`, { recursive: true });
 * await Deno.writeTextFile(`${tmp}/pkg/libfoo.a`, "!<arch>\n");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * const store = new Store(`${tmp}/store`);
 * await loadImage(`${tmp}/foo.tar`, { store }); // not in the store, linkPackage would get it
 * const r = await linkPackage("example.com/foo:1", { store });
 * assert.deepEqual(r.libraries.map((l) => [l.name, l.kind, l.file]), [["foo", "static", "libfoo.a"]]);
 * assert.deepEqual(r.searchDirs, [r.dir]);
 * assert.equal(r.includeDir, `${r.dir}/include`);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function linkPackage(
  image: string | ImageName,
  options: LinkOptions = {},
): Promise<LinkResult> {
  const name = imageName(image);
  const platform = options.platform ?? hostPlatform();
  const store = options.store ?? new Store();
  const got = await getImage(name, { ...options, platform, store });
  const dir = resolve(got.dir);
  const contents = await findLibraries(dir, platform.os);
  const all = contents.libraries;
  const where = `image '${name}'`;
  if (all.length === 0) {
    const left = contents.skipped.length
      ? `; left out as unsafe: ${
        contents.skipped.map((s) => `'${printable(s.path)}' (${s.reason})`).join(", ")
      }`
      : "";
    throw new NotFoundError(
      `${where} contains no libraries for ${platform.os} (looked in ${
        contents.searched.join(", ")
      }${left})`,
    );
  }
  let wanted = all;
  if (options.libs?.length) {
    wanted = options.libs.map((n) => {
      const lib = all.find((l) => l.name === n);
      if (!lib) throw new NotFoundError(`${where} has no library '${n}' (has: ${describe(all)})`);
      return lib;
    });
  }
  const libraries: LinkedLibrary[] = [];
  for (const lib of wanted) {
    const file = options.prefer === "static"
      ? lib.static
      : options.prefer === "dynamic"
      ? lib.dylib
      : lib.static ?? lib.dylib;
    if (!file) {
      // asked for by name: an error; otherwise it just does not fit the choice
      if (options.libs?.length) {
        throw new NotFoundError(
          `${where} has no ${
            options.prefer === "static" ? "static" : "shared"
          } library '${lib.name}' (has: ${describe([lib])})`,
        );
      }
      continue;
    }
    const linked: LinkedLibrary = { ...file, name: lib.name };
    if (lib.runtime) linked.runtime = lib.runtime;
    libraries.push(linked);
  }
  if (libraries.length === 0) {
    throw new NotFoundError(
      `${where} has no ${options.prefer === "static" ? "static" : "shared"} libraries (has: ${
        describe(all)
      })`,
    );
  }
  const result: LinkResult = {
    image: name,
    dir,
    platform,
    libraries,
    found: all,
    searchDirs: [...new Set(libraries.map((l) => l.dir))],
  };
  if (contents.includeDir) result.includeDir = contents.includeDir;
  if (contents.skipped.length) result.skipped = contents.skipped;
  return result;
}

/**
 * Cargo build-script lines for a link result, as the Rust `link_package`
 * prints them (plus `native=` search paths, shared libraries and an rpath so
 * a binary linked to a shared library finds it when run).
 *
 * @param r what {@link linkPackage} returned
 * @returns lines to print from `build.rs`
 * @throws {OcipkgError} when a path or name holds a control character, or an
 *   rpath directory holds `,`, `:` or a `$ORIGIN`-style token
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName } from "@ocipkg/cli";
 * import { cargoLinkLines } from "@ocipkg/cli/native";
 * // what linkPackage("ghcr.io/org/greet:1") returns, e.g. in a build.rs helper
 * const dir = "/data/ocipkg/ghcr.io/org/greet/__1";
 * const lines = cargoLinkLines({
 *   image: ImageName.parse("ghcr.io/org/greet:1"),
 *   dir,
 *   platform: { os: "linux", architecture: "amd64" },
 *   libraries: [{ name: "greet", kind: "static", file: "libgreet.a", path: `${dir}/libgreet.a`, dir }],
 *   searchDirs: [dir],
 * });
 * assert.equal(lines[0], `cargo:rustc-link-search=native=${dir}`);
 * assert.equal(lines[1], "cargo:rustc-link-lib=static=greet");
 * ```
 */
export function cargoLinkLines(r: LinkResult): string[] {
  const out = "Cargo build-script lines";
  const line = (what: string, v: string) => {
    if (CONTROL.test(v)) {
      throw unsafe(
        r,
        out,
        what,
        v,
        "it holds a control character (a newline would start another cargo: instruction)",
      );
    }
    return v;
  };
  const lines = r.searchDirs.map((d) =>
    `cargo:rustc-link-search=native=${line("search directory", d)}`
  );
  for (const lib of r.libraries) {
    checkLibrary(r, out, lib);
    const kind = lib.kind === "static" ? "static" : "dylib";
    lines.push(
      lib.verbatim
        ? `cargo:rustc-link-lib=${kind}:+verbatim=${lib.file}`
        : `cargo:rustc-link-lib=${kind}=${lib.name}`,
    );
  }
  for (const d of rpathDirs(r, out)) lines.push(`cargo:rustc-link-arg=-Wl,-rpath,${d}`);
  lines.push(
    `cargo:rerun-if-changed=${line("image directory", r.dir)}`,
    "cargo:rerun-if-env-changed=XDG_DATA_HOME",
    "cargo:rerun-if-env-changed=OCIPKG_DATA_DIR",
    "cargo:rerun-if-env-changed=OCIPKG_CONFIG",
  );
  return lines;
}

/** Options of {@link writePkgConfig} and {@link writeCmakeConfig}. */
export interface ConfigOptions {
  /** Package name (default: the last segment of the repository name). */
  name?: string;
  /** The store to read the image's annotations from (default: the one `dir` is in). */
  store?: Store;
}

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

function checkName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/.test(name)) {
    throw new UsageError(
      `invalid package name '${
        printable(name)
      }': use up to 128 letters, digits, '_', '.', '+', '-'`,
    );
  }
  return name;
}

// C0 controls (newline, tab, escape, …), DEL, C1 controls, Unicode line separators
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
// deno-lint-ignore no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g;
/** What the version annotation must look like to be written anywhere. */
const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+_~-]{0,63}$/;
/** A library file name (its link name is checked by isSafeLibraryName). */
const LIBRARY_FILE = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,254}$/;
/** The part of a path below the image directory: `/lib/libfoo.a`, `/include`. */
const SUFFIX = /^(?:\/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*$/;
/** Dynamic string tokens the loader expands in an rpath entry. */
const LOADER_TOKEN = /\$(?:\{(?:ORIGIN|LIB|PLATFORM)\}|(?:ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))/;

function unsafe(r: LinkResult, out: string, what: string, value: string, why: string) {
  return new OcipkgError(
    `image '${r.image}': cannot write ${what} '${printable(value)}' into ${out}: ${why}`,
  );
}

function checkLibrary(r: LinkResult, out: string, l: LinkedLibrary): void {
  if (!isSafeLibraryName(l.name)) {
    throw unsafe(r, out, "library name", l.name, "use letters, digits, '_', '.', '+', '-'");
  }
  if (!LIBRARY_FILE.test(l.file)) {
    throw unsafe(r, out, "library file", l.file, "use letters, digits, '_', '.', '+', '-'");
  }
}

/** The directories to put in an rpath (none for Windows), each checked. */
function rpathDirs(r: LinkResult, out: string): string[] {
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
function below(r: LinkResult, out: string, p: string): string {
  let rest = p.startsWith(r.dir) ? p.slice(r.dir.length) : undefined;
  if (rest !== undefined && Deno.build.os === "windows") rest = rest.replaceAll("\\", "/");
  if (rest === undefined || !SUFFIX.test(rest)) {
    throw unsafe(r, out, "path", p, `it is not a plain path inside '${printable(r.dir)}'`);
  }
  return rest;
}

/** Annotation text made one line: control characters become spaces, at most 200 characters. */
function oneLineText(s: string): string {
  return Array.from(s.replace(CONTROLS, " ").replace(/ {2,}/g, " ").trim()).slice(0, 200).join("");
}

/** The store holding `r.dir` (so a result from another store reads that store's manifest). */
function storeOf(r: LinkResult): Store {
  const tail = join("/", ...Store.entryPath(r.image, r.platform)).slice(1);
  const root = r.dir.endsWith(tail) ? r.dir.slice(0, -tail.length) : undefined;
  return root !== undefined && /[\\/]$/.test(root) ? new Store(root) : new Store();
}

/** The checked version and one-line description of a linked package. */
async function packageInfo(r: LinkResult, store?: Store) {
  const a = r.annotations ??
    (await (store ?? storeOf(r)).installedManifest(r.image, r.platform).catch(() => undefined))
      ?.annotations ??
    {};
  const given = a[ANNOTATION_VERSION];
  const tag = r.image.tag ?? "";
  // a version that is not plain is ignored, never written (it could break out of a quoted value)
  const version = given !== undefined && VERSION.test(given)
    ? given
    : /^v?\d+(\.\d+)*$/.test(tag) && VERSION.test(tag.replace(/^v/, ""))
    ? tag.replace(/^v/, "")
    : undefined;
  const raw = a[ANNOTATION_DESCRIPTION];
  const description = raw === undefined ? undefined : oneLineText(raw) || undefined;
  return { version, description };
}

/**
 * A path for a `.pc` value: backslash before `\\`, space, `"`, `'` and `#`
 * (pkg-config splits Libs/Cflags like a shell and starts comments at `#`);
 * refused when it holds a control character, `${` or `$$` (a variable or an
 * escape that pkg-config and pkgconf read differently).
 */
function pcPath(r: LinkResult, out: string, what: string, p: string): string {
  if (CONTROL.test(p)) throw unsafe(r, out, what, p, "it holds a control character");
  if (/\$[{$]/.test(p)) {
    throw unsafe(r, out, what, p, "it holds '${' or '$$', which pkg-config would expand");
  }
  return p.replace(/[\\ "'#]/g, "\\$&");
}

/** Refuse an image directory that cannot be an entry of PKG_CONFIG_PATH. */
function checkPkgConfigDir(r: LinkResult, out: string): void {
  const separator = Deno.build.os === "windows" ? ";" : ":";
  if (r.dir.includes(separator)) {
    throw unsafe(
      r,
      out,
      "image directory",
      r.dir,
      `it holds '${separator}', which separates PKG_CONFIG_PATH entries; use a data dir (OCIPKG_DATA_DIR) without it`,
    );
  }
}

/** Free text for a `.pc` field: one line, `\\` and `#` escaped, no `${`/`$$`. */
function pcText(s: string): string {
  return oneLineText(s).replace(/\\/g, "\\\\").replace(/#/g, "\\#").replace(/\$(?=[{$])/g, "$ ");
}

/** A CMake bracket argument holding `v` literally (no escapes, no variables). */
function cmakeBracket(v: string): string {
  let eq = "";
  while ((v + `]${eq}]`).indexOf(`]${eq}]`) !== v.length) eq += "=";
  return `[${eq}[${v}]${eq}]`;
}

/** Refuse an image directory CMake cannot name (it splits `;`, evaluates `$<`, turns `\\` into `/`). */
function checkCmakeDir(r: LinkResult, out: string): void {
  const d = r.dir;
  const bad = CONTROL.test(d)
    ? "a control character"
    : d.includes(";")
    ? "';' (CMake splits lists at it)"
    : d.includes("$<")
    ? "'$<' (a CMake generator expression)"
    : Deno.build.os !== "windows" && d.includes("\\")
    ? "a backslash (CMake reads it as a path separator)"
    : undefined;
  if (bad) {
    throw unsafe(
      r,
      out,
      "image directory",
      d,
      `it holds ${bad}; use a data dir (OCIPKG_DATA_DIR) without it`,
    );
  }
}

/** Comment text: one line, no backslash (a trailing one would continue the line). */
function commentText(s: string): string {
  return oneLineText(s).replaceAll("\\", "/");
}

function describeEntry(st: Deno.FileInfo): string {
  return st.isSymlink
    ? "a symlink"
    : st.isDirectory
    ? "a directory"
    : st.isFile
    ? "a regular file"
    : "a special file";
}

/**
 * Write generated files into `<image dir>/<sub…>/` without following any
 * symlink the package put there: the image directory itself (a symlink the
 * store manages) is resolved once; below it every component is created with
 * a plain mkdir or checked with lstat and must be a real directory; each file
 * is written as a new temp file (`createNew`, so never through a symlink)
 * renamed over its destination, which must be absent or a regular file. All
 * destinations are checked before anything is written. A file given as
 * `undefined` is removed (when it is a regular file).
 *
 * (A candidate for util/files.ts: `writeInsideDir(base, parts, files)`.)
 */
async function writeGenerated(
  r: LinkResult,
  sub: string[],
  files: [string, Uint8Array | undefined][],
): Promise<void> {
  const where = `image '${r.image}'`;
  let dir: string;
  try {
    dir = await Deno.realPath(r.dir);
  } catch (e) {
    throw fsError(e, `${where}: directory`, r.dir);
  }
  let shown = r.dir;
  for (const part of sub) {
    dir = join(dir, part);
    shown = join(shown, part);
    try {
      await Deno.mkdir(dir); // never follows a symlink: an existing one is EEXIST
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw fsError(e, `${where}: directory`, shown);
    }
    const st = await Deno.lstat(dir).catch((e) => {
      throw fsError(e, `${where}: directory`, shown);
    });
    if (st.isSymlink || !st.isDirectory) {
      throw new OcipkgError(
        `${where}: refusing to write generated files into '${printable(shown)}': it is ${
          describeEntry(st)
        }, not a directory`,
      );
    }
  }
  for (const [name] of files) {
    let st: Deno.FileInfo;
    try {
      st = await Deno.lstat(join(dir, name));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw fsError(e, `${where}: file`, join(shown, name));
    }
    if (!st.isFile) {
      throw new OcipkgError(
        `${where}: refusing to replace '${printable(join(shown, name))}': it is ${
          describeEntry(st)
        }, not a regular file`,
      );
    }
  }
  for (const [name, data] of files) {
    const path = join(dir, name);
    try {
      if (data) await atomicWriteFile(path, data);
      else {await Deno.remove(path).catch((e) => {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        });}
    } catch (e) {
      throw fsError(e, `${where}: file`, join(shown, name));
    }
  }
}

/**
 * Write `<dir>/pkgconfig/<name>.pc` for a linked package. Paths are escaped
 * for pkg-config, the description is one line, and the version is written
 * only when it is plain (see the module documentation). The file is created
 * inside the image directory without following symlinks.
 *
 * @param r what {@link linkPackage} returned
 * @param options package name, store
 * @returns the `.pc` path and the `PKG_CONFIG_PATH` entry to use
 * @throws {UsageError} for an invalid package name
 * @throws {OcipkgError} when a path cannot be written into a `.pc` file, or
 *   `pkgconfig/` or the `.pc` file in the package is a symlink or not a
 *   directory / regular file
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linkPackage, loadImage, packDirectory, Store } from "@ocipkg/cli";
 * import { writePkgConfig } from "@ocipkg/cli/native";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg/include`, { recursive: true });
 * await Deno.writeTextFile(`${tmp}/pkg/libfoo.a`, "!<arch>\n");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/libfoo:1.2" });
 * const store = new Store(`${tmp}/store`);
 * await loadImage(`${tmp}/foo.tar`, { store });
 * const pc = await writePkgConfig(await linkPackage("example.com/libfoo:1.2", { store }));
 * // PKG_CONFIG_PATH=<pc.searchPath> pkg-config --cflags --libs libfoo
 * const lines = (await Deno.readTextFile(pc.path)).split("\n");
 * assert.ok(lines.includes("Version: 1.2")); // from the tag
 * assert.ok(lines.includes("Libs: -L${prefix} -lfoo"));
 * assert.ok(lines.includes("Cflags: -I${prefix}/include"));
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function writePkgConfig(
  r: LinkResult,
  options: ConfigOptions = {},
): Promise<{ path: string; searchPath: string; name: string }> {
  const name = checkName(options.name ?? packageName(r.image));
  const file = `${name}.pc`;
  const info = await packageInfo(r, options.store);
  const prefix = pcPath(
    r,
    file,
    "image directory",
    Deno.build.os === "windows" ? r.dir.replaceAll("\\", "/") : r.dir,
  );
  checkPkgConfigDir(r, file);
  // below() allows only [A-Za-z0-9_.+-] names: nothing to escape after ${prefix}
  const rel = (p: string) => "${prefix}" + below(r, file, p);
  const libs = [
    ...r.searchDirs.map((d) => `-L${rel(d)}`),
    ...r.libraries.map((l) => {
      checkLibrary(r, file, l);
      // a static archive next to a shared one of the same name is named by path
      if (l.kind === "static" && hasSharedSibling(l)) return rel(l.path);
      return l.verbatim ? `-l:${l.file}` : `-l${l.name}`;
    }),
  ];
  for (const d of rpathDirs(r, file)) libs.push(`-Wl,-rpath,${rel(d)}`);
  const lines = [
    `# written by ocipkg for ${commentText(r.image.toString())}`,
    `prefix=${prefix}`,
    "",
    `Name: ${name}`,
    `Description: ${pcText(info.description ?? `${r.image} (ocipkg)`)}`,
    `Version: ${info.version ?? "0"}`,
    `Libs: ${libs.join(" ")}`,
  ];
  if (r.includeDir) lines.push(`Cflags: -I${rel(r.includeDir)}`);
  await writeGenerated(r, ["pkgconfig"], [[
    file,
    new TextEncoder().encode(lines.join("\n") + "\n"),
  ]]);
  const searchPath = join(r.dir, "pkgconfig");
  return { path: join(searchPath, file), searchPath, name };
}

/** A shared library of the same name sits next to a static one (so `-l` would pick it). */
function hasSharedSibling(l: LinkedLibrary): boolean {
  const base = l.path.slice(0, -".a".length);
  return [".so", ".dylib"].some((ext) => {
    try {
      return Deno.statSync(base + ext).isFile;
    } catch {
      return false;
    }
  });
}

/**
 * Write `<dir>/cmake/<name>Config.cmake` (and `<name>ConfigVersion.cmake`
 * when the package has a version) so that `find_package(<name>)` works with
 * `CMAKE_PREFIX_PATH=<dir>`. It defines an imported target `<name>::<lib>`
 * per library, `<name>::<name>` for all of them, and `<name>_INCLUDE_DIRS` /
 * `<name>_LIBRARIES`. Paths are relative to the file, so the store can move;
 * the file holds no path and no text from the image but a plain version (as
 * a bracket argument). It is created inside the image directory without
 * following symlinks.
 *
 * @param r what {@link linkPackage} returned
 * @param options package name, store
 * @returns the config file's path and the prefix to give CMake
 * @throws {UsageError} for an invalid package name
 * @throws {OcipkgError} when the image directory cannot be named to CMake,
 *   or `cmake/` or a config file in the package is a symlink or not a
 *   directory / regular file
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linkPackage, loadImage, packDirectory, Store } from "@ocipkg/cli";
 * import { writeCmakeConfig } from "@ocipkg/cli/native";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/libfoo.a`, "!<arch>\n");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/libfoo:1.2" });
 * const store = new Store(`${tmp}/store`);
 * await loadImage(`${tmp}/foo.tar`, { store });
 * const c = await writeCmakeConfig(await linkPackage("example.com/libfoo:1.2", { store }));
 * // cmake -DCMAKE_PREFIX_PATH=<c.prefix> …, then find_package(libfoo) in CMakeLists.txt
 * assert.equal(c.path, `${c.prefix}/cmake/libfooConfig.cmake`);
 * const text = await Deno.readTextFile(c.path);
 * assert.ok(text.includes("add_library(libfoo::foo STATIC IMPORTED)"));
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function writeCmakeConfig(
  r: LinkResult,
  options: ConfigOptions = {},
): Promise<{ path: string; prefix: string; name: string }> {
  const name = checkName(options.name ?? packageName(r.image));
  const file = `${name}Config.cmake`;
  checkCmakeDir(r, file);
  const info = await packageInfo(r, options.store);
  // below() allows only [A-Za-z0-9_.+-] names: safe inside a quoted argument
  const rel = (p: string) => "${_ocipkg_prefix}" + below(r, file, p);
  const lines = [
    `# written by ocipkg for ${commentText(r.image.toString())}`,
    `get_filename_component(_ocipkg_prefix "\${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)`,
    `set(${name}_FOUND TRUE)`,
  ];
  if (info.version) lines.push(`set(${name}_VERSION ${cmakeBracket(info.version)})`);
  lines.push(`set(${name}_INCLUDE_DIRS "${r.includeDir ? rel(r.includeDir) : ""}")`);
  const targets: string[] = [];
  for (const l of r.libraries) {
    checkLibrary(r, file, l);
    const target = `${name}::${l.name}`;
    targets.push(target);
    const type = l.kind === "static" ? "STATIC" : "SHARED";
    const props = [];
    if (l.kind === "dylib" && r.platform.os === "windows") {
      props.push(`IMPORTED_IMPLIB "${rel(l.path)}"`);
      props.push(`IMPORTED_LOCATION "${rel(l.runtime ?? l.path)}"`);
    } else {
      props.push(`IMPORTED_LOCATION "${rel(l.path)}"`);
    }
    if (r.includeDir) props.push(`INTERFACE_INCLUDE_DIRECTORIES "${rel(r.includeDir)}"`);
    lines.push(
      `if(NOT TARGET ${target})`,
      `  add_library(${target} ${type} IMPORTED)`,
      `  set_target_properties(${target} PROPERTIES`,
      ...props.map((p) => `    ${p}`),
      "  )",
      "endif()",
    );
  }
  const all = `${name}::${name}`;
  if (!targets.includes(all)) {
    lines.push(
      `if(NOT TARGET ${all})`,
      `  add_library(${all} INTERFACE IMPORTED)`,
      `  set_target_properties(${all} PROPERTIES INTERFACE_LINK_LIBRARIES "${targets.join(";")}")`,
      "endif()",
    );
  }
  lines.push(`set(${name}_LIBRARIES ${all})`, "unset(_ocipkg_prefix)");
  const enc = new TextEncoder();
  let version: Uint8Array | undefined;
  if (info.version) {
    const v = [
      `set(PACKAGE_VERSION ${cmakeBracket(info.version)})`,
      "if(PACKAGE_FIND_VERSION AND PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION)",
      "  set(PACKAGE_VERSION_COMPATIBLE FALSE)",
      "else()",
      "  set(PACKAGE_VERSION_COMPATIBLE TRUE)",
      "  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)",
      "    set(PACKAGE_VERSION_EXACT TRUE)",
      "  endif()",
      "endif()",
    ];
    version = enc.encode(v.join("\n") + "\n");
  }
  // the version file first: find_package never sees a new config with an old version
  await writeGenerated(r, ["cmake"], [
    [`${name}ConfigVersion.cmake`, version],
    [file, enc.encode(lines.join("\n") + "\n")],
  ]);
  return { path: join(r.dir, "cmake", file), prefix: r.dir, name };
}
