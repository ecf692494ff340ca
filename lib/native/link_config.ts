/**
 * What the pkg-config and CMake writers share: their options, the version
 * and description of the package (from the installed manifest's annotations,
 * checked), and writing generated files inside an image's directory without
 * ever following a symlink the package may contain.
 *
 * @module
 */
import { ANNOTATION_DESCRIPTION, ANNOTATION_VERSION } from "../oci/media_types.ts";
import { join } from "../util/path.ts";
import { fsError, OcipkgError } from "../util/errors.ts";
import { atomicWriteFile } from "../util/files.ts";
import { Store } from "../store/store.ts";
import { printable } from "../util/text.ts";
import type { LinkResult } from "./link.ts";
import { oneLineText, VERSION } from "./link_checks.ts";

/** Options of {@link writePkgConfig} and {@link writeCmakeConfig}. */
export interface ConfigOptions {
  /** Package name (default: the last segment of the repository name). */
  name?: string;
  /** The store to read the image's annotations from (default: the one `dir` is in). */
  store?: Store;
}

/** The store holding `r.dir` (so a result from another store reads that store's manifest). */
function storeOf(r: LinkResult): Store {
  const tail = join("/", ...Store.entryPath(r.image, r.platform)).slice(1);
  const root = r.dir.endsWith(tail) ? r.dir.slice(0, -tail.length) : undefined;
  return root !== undefined && /[\\/]$/.test(root) ? new Store(root) : new Store();
}

/** The checked version and one-line description of a linked package. */
export async function packageInfo(
  r: LinkResult,
  store?: Store,
): Promise<{ version: string | undefined; description: string | undefined }> {
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
export async function writeGenerated(
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
