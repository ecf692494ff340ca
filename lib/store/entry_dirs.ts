/**
 * The directories of store entries on disk: an entry is a symlink to a
 * versioned sibling (`.<base>.v-<uuid>`), or a directory where symlinks are
 * not available; temp directories (`.tmp-<pid>-…`) are left by installs that
 * were interrupted. Finding an image's entries, replacing and removing
 * versions, and cleaning up stale temps.
 *
 * @module
 */
import { dirname, join } from "../util/path.ts";
import { fsError } from "../util/errors.ts";
import { pathExists } from "../util/files.ts";
import { TMP_PREFIX } from "./paths.ts";

/** Whether a path is a directory (following symlinks). */
export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
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
  const trash = join(dirname(dir), `${TMP_PREFIX}old-${crypto.randomUUID()}`);
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
 * Remove temp directories left by interrupted installs: those of processes
 * that no longer run (on Linux, where `/proc` tells), else those older than a
 * day.
 */
export async function cleanStaleTemps(parent: string): Promise<void> {
  const cutoff = Date.now() - 24 * 3600 * 1000;
  try {
    for await (const e of Deno.readDir(parent)) {
      if (!e.name.startsWith(TMP_PREFIX)) continue;
      const p = join(parent, e.name);
      const pid = /^\.tmp-(\d+)-/.exec(e.name)?.[1];
      let stale = false;
      if (pid !== undefined && Deno.build.os === "linux") {
        stale = Number(pid) !== Deno.pid && !(await pathExists(`/proc/${pid}`));
      } else {
        const st = await Deno.lstat(p).catch(() => null);
        stale = st?.mtime !== null && st?.mtime !== undefined && st.mtime.getTime() < cutoff;
      }
      if (stale) await Deno.remove(p, { recursive: true }).catch(() => {});
    }
  } catch { /* best effort */ }
}
