/**
 * Deno FFI: the path of a package's shared library for the host, and
 * `Deno.dlopen` on it. The image is fetched on first use and cached in the
 * store like `ocipkg get`.
 *
 * @module
 */
import { linkPackage } from "./link.ts";
import type { GetOptions } from "./remote.ts";
import type { ImageName } from "./reference.ts";

/**
 * The path of the shared library `name` (`libname.so`, `libname.dylib`,
 * `name.dll`) in an image, for the host platform. The image is got (cached)
 * first.
 *
 * @param image image name
 * @param name library name without prefix/extension (`z` for `libz.so`)
 * @param options store, client options (the platform defaults to the host's)
 * @returns absolute path to pass to `Deno.dlopen`
 * @throws {NotFoundError} listing the libraries the image has when it lacks `name`
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
  const r = await linkPackage(image, { ...options, prefer: "dynamic", libs: [name] });
  const lib = r.libraries[0]!;
  // on Windows the loadable file is the DLL, not its import library
  return lib.runtime ?? lib.path;
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
