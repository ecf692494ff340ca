/**
 * Link packages into native builds: get the image (cached like `get`), find
 * its libraries for the target platform, and emit Cargo build-script lines,
 * a pkg-config `.pc` file or a CMake package config.
 *
 * @module
 */
import { join } from "node:path";
import { NotFoundError, UsageError } from "./errors.ts";
import { atomicWriteFile } from "./fs_util.ts";
import { findLibraries, type Library, type LibraryFile } from "./libraries.ts";
import type { Platform } from "./manifest.ts";
import { hostPlatform } from "./platform.ts";
import { ImageName } from "./reference.ts";
import { getImage, type GetOptions } from "./remote.ts";
import { Store } from "./store.ts";

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
  /** Directories holding them (for `-L`). */
  searchDirs: string[];
  /** `include/` when the package has one. */
  includeDir?: string;
}

function describe(libs: Library[]): string {
  return libs.map((l) =>
    `${l.name} (${[l.static ? "static" : "", l.dylib ? "shared" : ""].filter(Boolean).join("+")})`
  ).join(", ") || "none";
}

/**
 * Get an image (no request when it is already in the store) and choose the
 * libraries to link from it.
 *
 * @param image image name
 * @param options `prefer` static/dynamic, `libs` to pick, platform, store, client options
 * @returns the store directory, chosen libraries and include directory
 * @throws {NotFoundError} when the image has no (matching) libraries
 * @example
 * ```ts ignore
 * import { cargoLinkLines, linkPackage } from "jsr:@ocipkg/cli";
 * const r = await linkPackage("ghcr.io/org/libfoo:1.2");
 * for (const line of cargoLinkLines(r)) console.log(line);
 * ```
 */
export async function linkPackage(
  image: string | ImageName,
  options: LinkOptions = {},
): Promise<LinkResult> {
  const name = typeof image === "string" ? ImageName.parse(image) : image;
  const platform = options.platform ?? hostPlatform();
  const got = await getImage(name, { ...options, platform });
  const contents = await findLibraries(got.dir, platform.os);
  const all = contents.libraries;
  const where = `image '${name}'`;
  if (all.length === 0) {
    throw new NotFoundError(
      `${where} contains no libraries for ${platform.os} (looked in ${
        contents.searched.join(", ")
      })`,
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
    dir: got.dir,
    platform,
    libraries,
    searchDirs: [...new Set(libraries.map((l) => l.dir))],
  };
  if (contents.includeDir) result.includeDir = contents.includeDir;
  return result;
}

/**
 * Cargo build-script lines for a link result, as the Rust `link_package`
 * prints them (plus `native=` search paths, shared libraries and an rpath so
 * a binary linked to a shared library finds it when run).
 *
 * @param r what {@link linkPackage} returned
 * @returns lines to print from `build.rs`
 * @example
 * ```ts
 * import { cargoLinkLines } from "./link.ts";
 * import { ImageName } from "./reference.ts";
 * const lines = cargoLinkLines({
 *   image: ImageName.parse("localhost:5000/greet:1"),
 *   dir: "/s/greet",
 *   platform: { os: "linux", architecture: "amd64" },
 *   libraries: [{ name: "greet", kind: "static", path: "/s/greet/libgreet.a", dir: "/s/greet", file: "libgreet.a" }],
 *   searchDirs: ["/s/greet"],
 * });
 * console.assert(lines.includes("cargo:rustc-link-lib=static=greet"));
 * ```
 */
export function cargoLinkLines(r: LinkResult): string[] {
  const lines = r.searchDirs.map((d) => `cargo:rustc-link-search=native=${d}`);
  for (const lib of r.libraries) {
    const kind = lib.kind === "static" ? "static" : "dylib";
    lines.push(
      lib.verbatim
        ? `cargo:rustc-link-lib=${kind}:+verbatim=${lib.file}`
        : `cargo:rustc-link-lib=${kind}=${lib.name}`,
    );
  }
  if (r.platform.os !== "windows") {
    for (const d of new Set(r.libraries.filter((l) => l.kind === "dylib").map((l) => l.dir))) {
      lines.push(`cargo:rustc-link-arg=-Wl,-rpath,${d}`);
    }
  }
  lines.push(
    `cargo:rerun-if-changed=${r.dir}`,
    "cargo:rerun-if-env-changed=XDG_DATA_HOME",
    "cargo:rerun-if-env-changed=OCIPKG_DATA_DIR",
  );
  return lines;
}

/** Options of {@link writePkgConfig} and {@link writeCmakeConfig}. */
export interface ConfigOptions {
  /** Package name (default: the last segment of the repository name). */
  name?: string;
  /** The store (default: the data dir). */
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
  if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(name)) {
    throw new UsageError(
      `invalid package name '${name}': use letters, digits, '_', '.', '+', '-'`,
    );
  }
  return name;
}

async function packageInfo(r: LinkResult, store: Store) {
  const manifest = await store.installedManifest(r.image).catch(() => undefined);
  const a = manifest?.annotations ?? {};
  const tag = r.image.tag ?? "";
  const version = a["org.opencontainers.image.version"] ??
    (/^v?\d+(\.\d+)*$/.test(tag) ? tag.replace(/^v/, "") : undefined);
  return { version, description: a["org.opencontainers.image.description"] };
}

/**
 * Write `<dir>/pkgconfig/<name>.pc` for a linked package.
 *
 * @param r what {@link linkPackage} returned
 * @param options package name, store
 * @returns the `.pc` path and the `PKG_CONFIG_PATH` entry to use
 * @example
 * ```ts ignore
 * import { linkPackage, writePkgConfig } from "jsr:@ocipkg/cli";
 * const pc = await writePkgConfig(await linkPackage("ghcr.io/org/libfoo:1.2"));
 * // PKG_CONFIG_PATH=<pc.searchPath> pkg-config --cflags --libs libfoo
 * ```
 */
export async function writePkgConfig(
  r: LinkResult,
  options: ConfigOptions = {},
): Promise<{ path: string; searchPath: string; name: string }> {
  const name = checkName(options.name ?? packageName(r.image));
  const info = await packageInfo(r, options.store ?? new Store());
  const rel = (p: string) => "${prefix}" + p.slice(r.dir.length).replaceAll("\\", "/");
  const libs = [
    ...r.searchDirs.map((d) => `-L${rel(d)}`),
    ...r.libraries.map((l) => {
      // a static archive next to a shared one of the same name is named by path
      if (l.kind === "static" && hasSharedSibling(l)) return rel(l.path);
      return l.verbatim ? `-l:${l.file}` : `-l${l.name}`;
    }),
  ];
  if (r.platform.os !== "windows") {
    for (const d of new Set(r.libraries.filter((l) => l.kind === "dylib").map((l) => l.dir))) {
      libs.push(`-Wl,-rpath,${rel(d)}`);
    }
  }
  const lines = [
    `# written by ocipkg for ${r.image}`,
    `prefix=${r.dir.replaceAll("\\", "/")}`,
    "",
    `Name: ${name}`,
    `Description: ${(info.description ?? `${r.image} (ocipkg)`).replace(/\r?\n/g, " ")}`,
    `Version: ${info.version ?? "0"}`,
    `Libs: ${libs.join(" ")}`,
  ];
  if (r.includeDir) lines.push(`Cflags: -I${rel(r.includeDir)}`);
  const searchPath = join(r.dir, "pkgconfig");
  const path = join(searchPath, `${name}.pc`);
  await Deno.mkdir(searchPath, { recursive: true });
  await atomicWriteFile(path, new TextEncoder().encode(lines.join("\n") + "\n"));
  return { path, searchPath, name };
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
 * `<name>_LIBRARIES`. Paths are relative to the file, so the store can move.
 *
 * @param r what {@link linkPackage} returned
 * @param options package name, store
 * @returns the config file's path and the prefix to give CMake
 * @example
 * ```ts ignore
 * import { linkPackage, writeCmakeConfig } from "jsr:@ocipkg/cli";
 * const c = await writeCmakeConfig(await linkPackage("ghcr.io/org/libfoo:1.2"));
 * // cmake -DCMAKE_PREFIX_PATH=<c.prefix> …, then find_package(libfoo) in CMakeLists.txt
 * ```
 */
export async function writeCmakeConfig(
  r: LinkResult,
  options: ConfigOptions = {},
): Promise<{ path: string; prefix: string; name: string }> {
  const name = checkName(options.name ?? packageName(r.image));
  const info = await packageInfo(r, options.store ?? new Store());
  const rel = (p: string) => "${_ocipkg_prefix}" + p.slice(r.dir.length).replaceAll("\\", "/");
  const lines = [
    `# written by ocipkg for ${r.image}`,
    `get_filename_component(_ocipkg_prefix "\${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)`,
    `set(${name}_FOUND TRUE)`,
  ];
  if (info.version) lines.push(`set(${name}_VERSION "${info.version}")`);
  lines.push(`set(${name}_INCLUDE_DIRS "${r.includeDir ? rel(r.includeDir) : ""}")`);
  const targets: string[] = [];
  for (const l of r.libraries) {
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
  const dir = join(r.dir, "cmake");
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, `${name}Config.cmake`);
  await atomicWriteFile(path, new TextEncoder().encode(lines.join("\n") + "\n"));
  const versionPath = join(dir, `${name}ConfigVersion.cmake`);
  if (info.version) {
    const v = [
      `set(PACKAGE_VERSION "${info.version}")`,
      "if(PACKAGE_FIND_VERSION AND PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION)",
      "  set(PACKAGE_VERSION_COMPATIBLE FALSE)",
      "else()",
      "  set(PACKAGE_VERSION_COMPATIBLE TRUE)",
      "  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)",
      "    set(PACKAGE_VERSION_EXACT TRUE)",
      "  endif()",
      "endif()",
    ];
    await atomicWriteFile(versionPath, new TextEncoder().encode(v.join("\n") + "\n"));
  } else {
    await Deno.remove(versionPath).catch(() => {});
  }
  return { path, prefix: r.dir, name };
}
