/**
 * Shared libraries placed where Cargo runs binaries with them. Cargo puts a
 * `cargo:rustc-link-search=native=<dir>` directory on the dynamic library
 * path (`LD_LIBRARY_PATH`, `DYLD_FALLBACK_LIBRARY_PATH`, `PATH` on Windows)
 * of what `cargo run` and `cargo test` start — for every crate of the build,
 * not only the one whose build script printed it — but only when the
 * directory lies inside the target directory (Cargo's
 * `filter_dynamic_search_path`). The store does not; a build script's
 * `$OUT_DIR` does. So a `-sys` crate linking a shared library also places it
 * in `$OUT_DIR/ocipkg-lib/<key>/`, and its dependents' binaries find it when
 * Cargo runs them.
 *
 * What is placed: each shared library linked, under its file name (what the
 * linker looks for), under the name its header asks to be loaded by when
 * that differs (`libfoo.so.1` for a `libfoo.so` whose soname is
 * `libfoo.so.1`; `libfoo.1.dylib` on macOS) — used only when it is a plain
 * file name of the same library — and on Windows the DLL next to its import
 * library. Each is a hard link to the file in the store, or a copy where a
 * hard link cannot be made (another file system); never a symlink.
 *
 * The directory's name is a hash of the image, its platform and the
 * identity (path, size, time, inode) of each file placed: an unchanged
 * package reuses it (one `lstat`), a changed one gets a new directory, built
 * as a temp directory renamed into place, and the older ones of the same
 * image are removed. Nothing half-made is ever at the final name.
 *
 * @module
 */
import { basename, join, resolve, sep } from "../util/path.ts";
import { fsError, OcipkgError } from "../util/errors.ts";
import { releaseTemp, tempPathFor } from "../util/temp.ts";
import { digestBytes } from "../oci/digest.ts";
import { printable } from "../util/text.ts";
import { classifyLibrary } from "./libraries.ts";
import type { LinkResult } from "./link.ts";
import { checkLibrary, isPlainFileName, unsafe } from "./link_checks.ts";
import { readSoname } from "./soname.ts";

/** The directory of `$OUT_DIR` that placed libraries go into. */
export const STAGE_DIR = "ocipkg-lib";

/** One file to place: its name in the directory and the store file it is. */
interface Source {
  name: string;
  real: string;
  info: Deno.FileInfo;
  /** The link name, when the file's header may name another file name to place. */
  library?: string;
}

const hash = async (s: string, n: number) =>
  (await digestBytes(new TextEncoder().encode(s))).slice(7, 7 + n);

/** The store files of the linked shared libraries, each checked to be a file inside the image. */
async function sources(r: LinkResult, out: string): Promise<Source[]> {
  const wanted: { name: string; path: string; library?: string }[] = [];
  for (const lib of r.libraries) {
    if (lib.kind !== "dylib") continue;
    checkLibrary(r, out, lib);
    const loader = r.platform.os !== "windows"; // a DLL is loaded by its own file name
    wanted.push({ name: lib.file, path: lib.path, library: loader ? lib.name : undefined });
    if (lib.runtime && lib.runtime !== lib.path) {
      const name = basename(lib.runtime);
      if (!isPlainFileName(name)) {
        throw unsafe(r, out, "library file", name, "use letters, digits, '_', '.', '+', '-'");
      }
      wanted.push({ name, path: lib.runtime });
    }
  }
  if (wanted.length === 0) return [];
  let root: string;
  try {
    root = await Deno.realPath(r.dir);
  } catch (e) {
    throw fsError(e, `image '${r.image}': directory`, r.dir);
  }
  const found: Source[] = [];
  for (const w of wanted) {
    if (found.some((s) => s.name === w.name)) continue;
    let real: string;
    let info: Deno.FileInfo;
    try {
      real = await Deno.realPath(w.path);
      info = await Deno.stat(real);
    } catch (e) {
      throw fsError(e, `image '${r.image}': library`, w.path);
    }
    if (!real.startsWith(root.endsWith(sep) ? root : root + sep) || !info.isFile) {
      throw new OcipkgError(
        `image '${r.image}': library '${
          printable(w.path)
        }' does not lead to a file inside the image`,
      );
    }
    found.push({ ...w, real, info });
  }
  return found;
}

/** A hard link to `from` at `to`, or a copy where a link cannot be made. */
async function place(from: string, to: string): Promise<void> {
  try {
    await Deno.link(from, to);
  } catch {
    await Deno.copyFile(from, to);
  }
}

/** Fill a new directory with the sources and the names their headers ask for. */
async function fill(dir: string, files: Source[], os: string): Promise<void> {
  await Deno.mkdir(dir);
  const names = new Set(files.map((s) => s.name));
  for (const s of files) await place(s.real, join(dir, s.name));
  for (const s of files) {
    if (s.library === undefined) continue;
    const so = await readSoname(s.real);
    // from the file: only a plain name of the same library (never, say, libc.so.6)
    if (
      so === undefined || names.has(so) || !isPlainFileName(so) ||
      classifyLibrary(so, os)?.name !== s.library
    ) continue;
    names.add(so);
    await place(s.real, join(dir, so));
  }
}

/**
 * Place the shared libraries of a link result in `<outDir>/ocipkg-lib/<key>/`
 * (a build script's `$OUT_DIR`), where Cargo finds them for `cargo run` and
 * `cargo test` of the crates depending on the one that links them. Reused
 * while the package is unchanged; replaced (atomically, older ones removed)
 * when it changes.
 *
 * @param r what {@link linkPackage} returned
 * @param outDir the build script's `$OUT_DIR`
 * @returns the directory, or undefined when no shared library is linked
 * @throws {OcipkgError} when a library's name is not plain, it no longer
 *   leads to a file inside the image, or the directory cannot be made
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linkPackage, loadImage, packDirectory, Store } from "@ocipkg/cli";
 * import { stageSharedLibraries } from "./link_stage.ts";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg/lib`, { recursive: true });
 * await Deno.writeTextFile(`${tmp}/pkg/lib/libfoo.so`, "");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * const store = new Store(`${tmp}/store`);
 * await loadImage(`${tmp}/foo.tar`, { store });
 * const r = await linkPackage("example.com/foo:1", { store, platform: { os: "linux", architecture: "amd64" } });
 * const dir = await stageSharedLibraries(r, `${tmp}/out`);
 * assert.match(dir!, /\/out\/ocipkg-lib\/[0-9a-f]{12}-[0-9a-f]{12}$/);
 * assert.deepEqual([...Deno.readDirSync(dir!)].map((e) => e.name), ["libfoo.so"]);
 * assert.equal(await stageSharedLibraries(r, `${tmp}/out`), dir); // unchanged: reused
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function stageSharedLibraries(
  r: LinkResult,
  outDir: string,
): Promise<string | undefined> {
  const out = `${STAGE_DIR} of $OUT_DIR`;
  const files = await sources(r, out);
  if (files.length === 0) return undefined;
  const { os, architecture, variant } = r.platform;
  const image = await hash(
    JSON.stringify([r.image.toString(), os, architecture, variant ?? ""]),
    12,
  );
  const content = await hash(
    JSON.stringify(
      [1, files.map((s) => [s.name, s.real, s.info.size, s.info.mtime?.getTime(), s.info.ino])],
    ),
    12,
  );
  const base = join(resolve(outDir), STAGE_DIR);
  const dir = join(base, `${image}-${content}`);
  const made = await Deno.lstat(dir).then((st) => st.isDirectory, () => false);
  if (made) return dir;
  const tmp = tempPathFor(dir);
  try {
    await Deno.mkdir(base, { recursive: true });
    await fill(tmp, files, os);
    await Deno.rename(tmp, dir).catch(async (e) => {
      // made meanwhile by another run for the same package: the same files
      if (!(await Deno.lstat(dir).then((st) => st.isDirectory, () => false))) throw e;
    });
  } catch (e) {
    throw fsError(e, `image '${r.image}': shared libraries for cargo`, dir);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    releaseTemp(tmp);
  }
  // this image's older directories, and temps a killed run left
  const stale = new RegExp(
    `^(?:${image}-[0-9a-f]{12}|\\.${image}-[0-9a-f]{12}\\.tmp-[0-9a-f]{8})$`,
  );
  for await (const e of Deno.readDir(base)) {
    if (e.name !== basename(dir) && stale.test(e.name)) {
      await Deno.remove(join(base, e.name), { recursive: true }).catch(() => {});
    }
  }
  return dir;
}
