/**
 * Link packages into native builds: get the image (cached like `get`), find
 * its libraries for the target platform, and choose the ones to link
 * ({@link linkPackage}). The result is written out for a build system by
 * `link_cargo.ts` (Cargo build-script lines), `link_pkgconfig.ts` (a
 * pkg-config `.pc` file) and `link_cmake.ts` (a CMake package config).
 *
 * Everything that comes from an image (annotations, file names, the store
 * path) is checked or escaped for the language it is written in (the rules
 * are in each writer's module, the shared ones in `link_checks.ts`), and
 * generated files are written inside the image's own directory without ever
 * following a symlink the package may contain (`link_config.ts`).
 *
 * @module
 */
import { resolve } from "../util/path.ts";
import { NotFoundError } from "../util/errors.ts";
import { findLibraries, type Library, type LibraryFile, type SkippedFile } from "./libraries.ts";
import type { Platform } from "../oci/manifest.ts";
import { hostPlatform } from "../oci/platform.ts";
import { type ImageName, imageName } from "../oci/reference.ts";
import { getImage } from "../ops/install.ts";
import type { GetOptions } from "../ops/install_from.ts";
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
  /** The lock file that pinned (or recorded) the image, when one was used. */
  lock?: string;
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
 * build and a cross build never share files and both stay cached. With a
 * lock (`lock`, `locked`: see {@link getImage}) a locked reference links
 * exactly the locked digest.
 *
 * @param image image name
 * @param options `prefer` static/dynamic, `libs` to pick, platform, store, lock, client options
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
  if (got.lock) result.lock = got.lock;
  return result;
}
