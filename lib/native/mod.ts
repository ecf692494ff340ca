/**
 * `@ocipkg/cli/native` — native builds around installed packages: what a
 * package's libraries are (`findLibraries`), build-system glue from a link
 * result (Cargo lines, pkg-config `.pc` files, CMake packages), Deno FFI
 * straight from an image (`openLibrary`, `libraryPath`), `cargo ocipkg`
 * (`cargoBuild`, `cargoPublish`, `installCargoShim`), runnable images
 * (`buildRunnable`) and launchers (`installLauncher`, `uninstallLauncher`). `linkPackage` — what
 * `ocipkg link` does — is in the main module.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findLibraries } from "@ocipkg/cli/native";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/lib`);
 * await Deno.writeTextFile(`${tmp}/lib/libfoo.a`, "!<arch>\n");
 * const found = await findLibraries(tmp, "linux");
 * assert.deepEqual(found.libraries.map((l) => l.name), ["foo"]);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 *
 * @module
 */
export {
  type CargoLinesOptions,
  cargoLink,
  cargoLinkLines,
  type CargoLinkOptions,
} from "./link_cargo.ts";
export { type ConfigOptions } from "./link_config.ts";
export { writeCmakeConfig } from "./link_cmake.ts";
export { writePkgConfig } from "./link_pkgconfig.ts";
export {
  findLibraries,
  type Library,
  type LibraryFile,
  type LinkKind,
  type PackageContents,
  type SkippedFile,
} from "./libraries.ts";
export { libraryPath, openLibrary } from "./ffi.ts";
export {
  cargoBuild,
  type CargoBuildResult,
  type CargoOptions,
  cargoPublish,
  installCargoShim,
} from "./cargo.ts";
export {
  buildRunnable,
  type ImageConfig,
  type RunnableOptions,
  type RunnableResult,
} from "./runnable.ts";
export { installLauncher, type LauncherTarget, uninstallLauncher } from "./launcher.ts";
