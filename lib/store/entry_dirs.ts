/**
 * The directories of store entries on disk: an entry is a symlink to a
 * versioned sibling (`.<base>.v-<uuid>`), or a directory where symlinks are
 * not available; temp directories (`.tmp-<pid>-…`) are left by installs that
 * were interrupted. Finding an image's entries, replacing and removing
 * versions, and cleaning up stale temps.
 *
 * @module
 */
import { basename, dirname, join } from "../util/path.ts";
import { fsError } from "../util/errors.ts";
import { pathExists } from "../util/files.ts";
import { TMP_PREFIX } from "./paths.ts";

/**
 * Whether a path is a directory (false when absent), synchronously: a cached
 * `get` asks it with no thread hand-off.
 * @param path the path
 * @returns whether it is a directory (false when absent)
 */
export function isDirectorySync(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return false;
    throw e;
  }
}

/** The entries of an image in `parent`: the host's `base` and other platforms' `base+…`. */
export async function platformEntries(parent: string, base: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(parent)) {
      if (e.name === base || e.name.startsWith(`${base}+`)) out.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw fsError(e, "store directory", parent);
  }
  return out.sort();
}

/** Replace a directory by another one with two renames (no symlinks). */
export async function replaceDirectory(tmp: string, dir: string): Promise<void> {
  try {
    await Deno.rename(tmp, dir);
    return;
  } catch (e) {
    if (!(await pathExists(dir))) throw fsError(e, "store directory", dir);
  }
  const trash = join(dirname(dir), `${TMP_PREFIX}${Deno.pid}-old-${crypto.randomUUID()}`);
  await Deno.rename(dir, trash);
  await Deno.rename(tmp, dir);
  await Deno.remove(trash, { recursive: true }).catch(() => {});
}

/** Remove the versions of an entry (`.<base>.v-<uuid>`, `.<base>.link-<uuid>`) except `keep`. */
export async function removeVersions(parent: string, base: string, keep?: string): Promise<void> {
  for await (const e of Deno.readDir(parent)) {
    // exactly `.<base>.v-<uuid>`: not the versions of `<base>.v-2` (a tag may hold `.v-`)
    const rest = e.name.startsWith(`.${base}.`) ? e.name.slice(base.length + 2) : "";
    const mine = /^(?:v|link)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(
      rest,
    );
    if (mine && e.name !== keep) {
      await Deno.remove(join(parent, e.name), { recursive: true }).catch(() => {});
    }
  }
}

/**
 * Whether a temp (`.tmp-<pid>-…`, beside entries) is left by a process that
 * no longer runs: on Linux, where `/proc` tells, one whose process is gone;
 * elsewhere, or for a temp that names no process, one older than a day.
 * This process's own temps are never stale.
 *
 * @param path the temp's path
 * @returns true when it can be removed
 */
export async function isStaleTemp(path: string): Promise<boolean> {
  const pid = /^\.tmp-(\d+)-/.exec(basename(path))?.[1];
  if (pid !== undefined && Number(pid) === Deno.pid) return false;
  if (pid !== undefined && Deno.build.os === "linux") return !(await pathExists(`/proc/${pid}`));
  const st = await Deno.lstat(path).catch(() => null);
  return st?.mtime != null && st.mtime.getTime() < Date.now() - 24 * 3600 * 1000;
}

/**
 * Remove temp directories left by interrupted installs ({@link isStaleTemp}).
 */
export async function cleanStaleTemps(parent: string): Promise<void> {
  try {
    for await (const e of Deno.readDir(parent)) {
      if (!e.name.startsWith(TMP_PREFIX)) continue;
      const p = join(parent, e.name);
      if (await isStaleTemp(p)) await Deno.remove(p, { recursive: true }).catch(() => {});
    }
  } catch { /* best effort */ }
}

/**
 * Make an install's private temp directory, making its parent again when it
 * was removed meanwhile (a `prune` or `rm` removes directories it emptied).
 *
 * @param path the temp directory (its parent made beforehand)
 */
export async function makePrivateDir(path: string): Promise<void> {
  for (let i = 0;; i++) {
    try {
      return await Deno.mkdir(path, { mode: 0o700 });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound) || i >= 8) throw e;
      await Deno.mkdir(dirname(path), { recursive: true });
    }
  }
}

const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
/** An entry's version (`.<base>.v-<uuid>`) or a link being swapped in (`.<base>.link-<uuid>`). */
const VERSION_NAME = new RegExp(`^\\.__[^/\\\\]*\\.(?:v|link)-${UUID}$`);

/**
 * Whether a name is that of an entry's version directory or of a link being
 * swapped in (`.__<ref>.v-<uuid>`, `.__<ref>.link-<uuid>`).
 *
 * @param name a directory entry's name
 * @returns true for a version or link name
 */
export function isVersionName(name: string): boolean {
  return VERSION_NAME.test(name);
}

/** What an entry is on disk, decided by `lstat` (see {@link entryOnDisk}). */
export interface EntryOnDisk {
  /**
   * The directory holding the image: the sibling version directory the entry
   * links to, or the entry itself when it is a directory. Undefined for a
   * link to anything else, which is never followed.
   */
  dir?: string;
  /** Whether the entry is a symlink. */
  link: boolean;
  /** `lstat` of `dir`, or of the link when there is no `dir`. */
  stat: Deno.FileInfo;
}

/**
 * What an entry is on disk: a symlink to a sibling version directory (what
 * installs make), a directory (an older install, or where symlinks are not
 * available), or a link to something else (not followed).
 *
 * @param entry the entry's path (`…/__<ref>`)
 * @returns what it is, or undefined when there is no entry (or a file)
 */
export async function entryOnDisk(entry: string): Promise<EntryOnDisk | undefined> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.lstat(entry);
  } catch {
    return undefined;
  }
  if (st.isDirectory) return { dir: entry, link: false, stat: st };
  if (!st.isSymlink) return undefined;
  const target = await Deno.readLink(entry).catch(() => "");
  if (isVersionName(target)) {
    const dir = join(dirname(entry), target);
    const vst = await Deno.lstat(dir).catch(() => null);
    if (vst?.isDirectory) return { dir, link: true, stat: vst };
  }
  return { link: true, stat: st };
}
