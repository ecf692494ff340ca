/**
 * When an image was last used: the modification time of its directory (the
 * version directory an entry links to, or the entry's own directory). An
 * install sets it; `get` and `link` move it to now when it is more than
 * {@link USE_TIME_STEP} old — one `stat` on the cached path, and at most one
 * write an hour per image. Nothing else changes that time: the directory's
 * entries are not changed after an install, and reading it (`list --size`,
 * a build) moves only its access time. `prune --unused-for` reads it.
 *
 * @module
 */
import { entryOnDisk } from "./entry_dirs.ts";

/** A use is recorded when the recorded one is older than this (one hour). */
export const USE_TIME_STEP = 3600 * 1000;

/**
 * Record that an entry is used now, when its recorded use time is more than
 * {@link USE_TIME_STEP} old: one `stat` (through the entry's link), and then
 * only for an old record the write. A link that does not lead to a sibling
 * version directory is not followed (nothing is written).
 *
 * @param entry the entry's path (`…/__<ref>`)
 * @param now the time of the use (ms since the epoch)
 * @returns whether the entry is still there once the use is recorded (false:
 *   it was removed meanwhile, e.g. by a `prune`, and must be installed again)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { recordUse } from "./use_time.ts";
 * const dir = await Deno.makeTempDir();
 * const version = ".__1.v-00000000-0000-4000-8000-000000000000";
 * await Deno.mkdir(`${dir}/${version}`);
 * await Deno.symlink(version, `${dir}/__1`);
 * const weekAgo = new Date(Date.now() - 7 * 24 * 3600 * 1000);
 * await Deno.utime(`${dir}/${version}`, weekAgo, weekAgo);
 * assert.ok(await recordUse(`${dir}/__1`));
 * const used = (await Deno.lstat(`${dir}/${version}`)).mtime!.getTime();
 * assert.ok(Date.now() - used < 60_000); // recorded now
 * assert.equal(await recordUse(`${dir}/__2`), false); // no such entry
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function recordUse(entry: string, now: number = Date.now()): Promise<boolean> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(entry);
  } catch {
    return false;
  }
  const recorded = st.mtime?.getTime();
  if (recorded === undefined || now - recorded < USE_TIME_STEP) return true;
  const found = await entryOnDisk(entry);
  if (found?.dir === undefined) return found !== undefined;
  const t = new Date(now);
  // a read-only store keeps its old record: the use is not worth an error
  await Deno.utime(found.dir, t, t).catch(() => {});
  // a prune that renamed it away before the write: gone (see prune.ts)
  return (await entryOnDisk(entry))?.dir === found.dir;
}
