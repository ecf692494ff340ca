/**
 * Deno FFI: the path of a package's shared library for the host, and
 * `Deno.dlopen` on it. The image is fetched on first use and cached in the
 * store like `ocipkg get`.
 *
 * @module
 */
import { OcipkgError, UsageError } from "./errors.ts";
import { isSafeLibraryName, locateInPackage } from "./libraries.ts";
import { linkPackage } from "./link.ts";
import type { GetOptions } from "./install.ts";
import type { ImageName } from "./reference.ts";
import { printable } from "./text.ts";

/**
 * The path of the shared library `name` (`libname.so`, `libname.dylib`,
 * `name.dll`) in an image, for the host platform. The image is got (cached)
 * first. The path is absolute, and it is checked (just before it is
 * returned) to lead to a regular file inside the image's directory, so a
 * symlink in the package cannot make `Deno.dlopen` load a library from
 * elsewhere.
 *
 * @param image image name
 * @param name library name without prefix/extension (`z` for `libz.so`)
 * @param options store, client options (the platform defaults to the host's)
 * @returns absolute path to pass to `Deno.dlopen`
 * @throws {NotFoundError} listing the libraries the image has when it lacks `name`
 * @throws {UsageError} when `name` is not a link name (`[A-Za-z0-9_.+-]`)
 * @throws {OcipkgError} when the library no longer leads to a file inside the image
 * @example
 * ```ts ignore
 * import { libraryPath } from "jsr:@ocipkg/cli";
 * const path = await libraryPath("ghcr.io/org/libgreet:1", "greet");
 * const lib = Deno.dlopen(path, { greet_answer: { parameters: [], result: "i32" } });
 * console.log(lib.symbols.greet_answer());
 * ```
 */
export async function libraryPath(
  image: string | ImageName,
  name: string,
  options: GetOptions = {},
): Promise<string> {
  if (!isSafeLibraryName(name)) {
    throw new UsageError(
      `invalid library name '${printable(name)}': use letters, digits, '_', '.', '+', '-'`,
    );
  }
  const r = await linkPackage(image, { ...options, prefer: "dynamic", libs: [name] });
  const lib = r.libraries[0]!;
  // on Windows the loadable file is the DLL, not its import library
  const path = lib.runtime ?? lib.path;
  // checked again right before use: dlopen follows symlinks
  const root = await Deno.realPath(r.dir);
  if ((await locateInPackage(root, path)) !== "file") {
    throw new OcipkgError(
      `image '${r.image}': library '${printable(path)}' does not lead to a file inside the image`,
    );
  }
  return path;
}

/**
 * Open a package's shared library with `Deno.dlopen` (needs `--allow-ffi`).
 *
 * @param image image name
 * @param name library name (`greet` for `libgreet.so`)
 * @param symbols the FFI symbol definitions
 * @param options store, client options
 * @returns the dynamic library; call `close()` when done
 * @example
 * ```ts ignore
 * import { openLibrary } from "jsr:@ocipkg/cli";
 * const lib = await openLibrary("ghcr.io/org/libgreet:1", "greet", {
 *   greet_answer: { parameters: [], result: "i32" },
 * });
 * console.log(lib.symbols.greet_answer());
 * lib.close();
 * ```
 */
export async function openLibrary<const S extends Deno.ForeignLibraryInterface>(
  image: string | ImageName,
  name: string,
  symbols: S,
  options: GetOptions = {},
): Promise<Deno.DynamicLibrary<S>> {
  return Deno.dlopen(await libraryPath(image, name, options), symbols);
}
