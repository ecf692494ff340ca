/**
 * Deno FFI: the path of a package's shared library for the host, and
 * `Deno.dlopen` on it. The image is fetched on first use and cached in the
 * store like `ocipkg get` — and, like the CLI, pinned by the project's lock
 * when there is one (`ocipkg.lock` found walking up from the working
 * directory, or `$OCIPKG_LOCK`; `OCIPKG_LOCKED=1` refuses to change it).
 *
 * @module
 */
import { OcipkgError, UsageError } from "../util/errors.ts";
import { isSafeLibraryName, locateInPackage } from "./libraries.ts";
import { linkPackage } from "./link.ts";
import type { GetOptions } from "../ops/install_from.ts";
import type { ImageName } from "../oci/reference.ts";
import { printable } from "../util/text.ts";

/**
 * The path of the shared library `name` (`libname.so`, `libname.dylib`,
 * `name.dll`) in an image, for the host platform. The image is got (cached)
 * first. The path is absolute, and it is checked (just before it is
 * returned) to lead to a regular file inside the image's directory, so a
 * symlink in the package cannot make `Deno.dlopen` load a library from
 * elsewhere.
 *
 * Like the CLI, it uses the project's lock unless told otherwise: `lock`
 * defaults to `true` (find `ocipkg.lock`; pass `false` for none, or a path)
 * and `locked` to `OCIPKG_LOCKED` (see `getImage`).
 *
 * @param image image name
 * @param name library name without prefix/extension (`z` for `libz.so`)
 * @param options store, lock, client options (the platform defaults to the host's)
 * @returns absolute path to pass to `Deno.dlopen`
 * @throws {NotFoundError} listing the libraries the image has when it lacks `name`
 * @throws {UsageError} when `name` is not a link name (`[A-Za-z0-9_.+-]`)
 * @throws {OcipkgError} when the library no longer leads to a file inside the image
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadImage, packDirectory, Store } from "@ocipkg/cli";
 * import { libraryPath } from "@ocipkg/cli/native";
 * const os = Deno.build.os;
 * const file = os === "windows" ? "greet.dll" : os === "darwin" ? "libgreet.dylib" : "libgreet.so";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/${file}`, "");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/greet.tar`, { name: "example.com/greet:1" });
 * const store = new Store(`${tmp}/store`);
 * await loadImage(`${tmp}/greet.tar`, { store }); // not in the store, libraryPath would get it
 * const path = await libraryPath("example.com/greet:1", "greet", { store });
 * assert.ok(path.startsWith(store.imageDir("example.com/greet:1")) && path.endsWith(file));
 * // then: Deno.dlopen(path, { … })
 * await Deno.remove(tmp, { recursive: true });
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
  const r = await linkPackage(image, {
    lock: true,
    ...options,
    prefer: "dynamic",
    libs: [name],
  });
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
 * @param options store, lock (the project's by default, as {@link libraryPath}), client options
 * @returns the dynamic library; call `close()` when done
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadImage, packDirectory, Store } from "@ocipkg/cli";
 * import { openLibrary } from "@ocipkg/cli/native";
 * // a package holding libgreet.so (.dylib), built here with a C compiler
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/greet.c`, "int greet_answer(void) { return 42; }\n");
 * const file = Deno.build.os === "darwin" ? "libgreet.dylib" : "libgreet.so";
 * const args = ["-shared", "-fPIC", "-o", `${tmp}/pkg/${file}`, `${tmp}/greet.c`];
 * assert.ok((await new Deno.Command("cc", { args }).output()).success);
 * await packDirectory(`${tmp}/pkg`, `${tmp}/greet.tar`, { name: "example.com/greet:1" });
 * const store = new Store(`${tmp}/store`);
 * await loadImage(`${tmp}/greet.tar`, { store }); // not in the store, openLibrary would get it
 * const symbols = { greet_answer: { parameters: [], result: "i32" } } as const;
 * const lib = await openLibrary("example.com/greet:1", "greet", symbols, { store });
 * assert.equal(lib.symbols.greet_answer(), 42);
 * lib.close();
 * await Deno.remove(tmp, { recursive: true });
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
