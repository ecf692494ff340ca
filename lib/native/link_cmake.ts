/**
 * A CMake package config for a linked package. CMake files never hold a
 * path (they locate the package from `CMAKE_CURRENT_LIST_DIR`); a store path
 * CMake would misread (`;`, `$<`, a backslash outside Windows, control
 * characters) is refused; the version is written as a bracket argument; the
 * description is not written.
 *
 * @module
 */
import { join } from "../util/path.ts";
import type { LinkResult } from "./link.ts";
import {
  below,
  checkLibrary,
  checkName,
  commentText,
  CONTROL,
  packageName,
  unsafe,
} from "./link_checks.ts";
import { type ConfigOptions, packageInfo, writeGenerated } from "./link_config.ts";

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
