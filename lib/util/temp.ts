/**
 * Temporary paths: one unique name beside its final path (so a rename is
 * atomic), and a process-wide list of the temps in use, which a signal
 * handler deletes when the process is interrupted (Ctrl-C) so an interrupted
 * command leaves nothing behind.
 *
 * @module
 */
import { dirname, join } from "./path.ts";

/**
 * A unique temporary path next to `path` (same file system, so rename is atomic).
 * The path is tracked ({@link trackTemp}): call {@link releaseTemp} once it is
 * renamed or removed.
 *
 * @param path the final path
 * @returns e.g. `/dir/.name.tmp-<uuid>`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { releaseTemp, tempPathFor } from "./temp.ts";
 * const tmp = tempPathFor("/data/index.json");
 * assert.match(tmp, /^\/data\/\.index\.json\.tmp-[0-9a-f]{8}$/);
 * releaseTemp(tmp);
 * ```
 */
export function tempPathFor(path: string): string {
  const base = path.slice(dirname(path).length + 1);
  return trackTemp(join(dirname(path), `.${base}.tmp-${crypto.randomUUID().slice(0, 8)}`));
}

/** A name {@link tempPathFor} gives: `.<name>.tmp-<8 hex>`. */
const TEMP_NAME = /^\..+\.tmp-[0-9a-f]{8}$/;

/**
 * Whether a file name is one {@link tempPathFor} gives (`.<name>.tmp-<8 hex>`):
 * a file being written, or one a killed writer left.
 *
 * @param name a file name (no directory)
 * @returns true for a temp's name
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isTempName } from "./temp.ts";
 * assert.ok(isTempName(".blob.tmp-0badf00d"));
 * assert.ok(!isTempName("0badf00d".repeat(8))); // a blob
 * assert.ok(!isTempName(".blob.tmp-../x"));
 * ```
 */
export function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/**
 * Whether this process is writing the temp at `path` ({@link trackTemp}ed
 * and not yet released).
 *
 * @param path a temp path, as {@link tempPathFor} gave it
 * @returns true while it is in use here
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLiveTemp, releaseTemp, tempPathFor } from "./temp.ts";
 * const tmp = tempPathFor("/data/index.json");
 * assert.ok(isLiveTemp(tmp));
 * releaseTemp(tmp);
 * assert.ok(!isLiveTemp(tmp));
 * ```
 */
export function isLiveTemp(path: string): boolean {
  return liveTemps.has(path);
}

const liveTemps = new Set<string>();

/**
 * Remember a temp file or directory, so that {@link removeTempsSync} can
 * delete it when the process is interrupted. Call {@link releaseTemp} once it
 * is renamed or removed.
 *
 * @param path a temp path
 * @returns the same path
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { releaseTemp, trackTemp } from "./temp.ts";
 * const dir = await Deno.makeTempDir();
 * const tmp = trackTemp(`${dir}/.partial`);
 * await Deno.writeTextFile(tmp, "…");
 * await Deno.rename(tmp, `${dir}/done`);
 * releaseTemp(tmp); // renamed: nothing to clean up any more
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function trackTemp(path: string): string {
  liveTemps.add(path);
  return path;
}

/**
 * Forget a temp path (it was renamed into place or removed).
 *
 * @param path a path given to {@link trackTemp}
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { releaseTemp, removeTempsSync, trackTemp } from "./temp.ts";
 * const dir = await Deno.makeTempDir();
 * releaseTemp(trackTemp(dir));
 * assert.equal(removeTempsSync(), 0); // forgotten: left alone
 * assert.ok((await Deno.stat(dir)).isDirectory);
 * await Deno.remove(dir);
 * ```
 */
export function releaseTemp(path: string): void {
  liveTemps.delete(path);
}

/**
 * Delete every temp path still in use — for a signal handler that is about to
 * exit (Ctrl-C), so an interrupted command leaves nothing behind.
 *
 * @returns how many were removed
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { removeTempsSync, trackTemp } from "./temp.ts";
 * const dir = trackTemp(await Deno.makeTempDir());
 * await Deno.writeTextFile(`${dir}/half-written`, "…");
 * assert.equal(removeTempsSync(), 1);
 * await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
 * ```
 */
export function removeTempsSync(): number {
  let n = 0;
  for (const p of liveTemps) {
    try {
      Deno.removeSync(p, { recursive: true });
      n++;
    } catch { /* already gone */ }
  }
  liveTemps.clear();
  return n;
}
