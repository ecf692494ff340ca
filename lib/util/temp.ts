/**
 * Temporary paths: one unique name beside its final path (so a rename is
 * atomic), and a process-wide list of the temps in use, which a signal
 * handler deletes when the process is interrupted (Ctrl-C) so an interrupted
 * command leaves nothing behind. What a killed process left (SIGKILL, a
 * power loss) is found by age: a writer keeps the temps it holds fresh
 * ({@link HeldTemps}), and the next writer beside them removes those left
 * untouched past {@link STALE_TEMP_AGE} ({@link removeStaleTemps}).
 *
 * @module
 */
import { dirname, join } from "./path.ts";
import { Alarm } from "./timer.ts";

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

/**
 * Age in ms after which a temp file no writer has touched is a killed
 * writer's, and the next writer beside it removes it ({@link removeStaleTemps}):
 * one hour. A live writer's temps are younger: one being written changes with
 * every block (a download that stalls for 45 s ends), and a writer touches
 * every temp it holds each 10 minutes ({@link TEMP_TOUCH_SHARE},
 * {@link HeldTemps}) while it waits (a layer pulled early waits for the rest
 * of the image to be renamed into place). Age, not a pid, tells: a pid names
 * no process across containers or NFS clients sharing a directory; the hour
 * leaves 50 minutes for their clocks to differ.
 */
export const STALE_TEMP_AGE = 60 * 60 * 1000;

/**
 * How often a writer touches the temps it holds, as a share of the stale age
 * ({@link STALE_TEMP_AGE}): a sixth, 10 minutes of the hour.
 */
export const TEMP_TOUCH_SHARE = 1 / 6;

/**
 * How long a writer holds its first temp on an {@link Alarm} before it
 * hands the touching over to an interval that never keeps the process
 * alive: a second. (`setInterval` is `node:timers`' in Deno 2.9, whose first
 * call costs ≈ 13 ms; a command that holds its temps for less never pays it.)
 */
export const TEMP_HANDOVER_MS = 1000;

/**
 * The temp files one writer holds (being written, or written and waiting to
 * be renamed into place), each touched every {@link TEMP_TOUCH_SHARE} of the
 * stale age (at least every 50 ms) until released, so a writer beside it
 * never takes one for a killed writer's ({@link removeStaleTemps}). The timer
 * runs only while a temp is held; it keeps the process alive for at most
 * {@link TEMP_HANDOVER_MS} after the first hold (an object dropped while it
 * holds temps), never longer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HeldTemps, tempPathFor } from "./temp.ts";
 * const dir = await Deno.makeTempDir();
 * const held = new HeldTemps(300); // touched every 50 ms (a stale age of 300 ms)
 * const tmp = held.hold(tempPathFor(`${dir}/blob`));
 * await Deno.writeTextFile(tmp, "partial");
 * const long_ago = new Date(0);
 * await Deno.utime(tmp, long_ago, long_ago);
 * while ((await Deno.stat(tmp)).mtime!.getTime() === 0) await new Promise((r) => setTimeout(r, 10));
 * held.release(tmp); // renamed or removed: no longer touched
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class HeldTemps {
  #paths = new Set<string>();
  /** Until the handover: the first touch, on an alarm. */
  #first: Alarm | undefined;
  /** After it: an interval that does not keep the process alive. */
  #timer: ReturnType<typeof setInterval> | undefined;
  #every: number;

  /**
   * Create the set of one writer's temps.
   * @param staleAge the age after which a temp is taken for a killed
   *   writer's (default {@link STALE_TEMP_AGE})
   */
  constructor(staleAge: number = STALE_TEMP_AGE) {
    this.#every = Math.max(50, staleAge * TEMP_TOUCH_SHARE);
  }

  #touch(): void {
    const now = new Date();
    for (const p of this.#paths) Deno.utime(p, now, now).catch(() => {});
  }

  /**
   * Hold a temp path (tracked, see {@link trackTemp}): touched until released.
   *
   * @param path the temp path
   * @returns the same path
   */
  hold(path: string): string {
    this.#paths.add(trackTemp(path));
    if (this.#first === undefined && this.#timer === undefined) {
      const first = new Alarm();
      const handover = Math.min(this.#every, TEMP_HANDOVER_MS);
      first.set(handover, () => {
        this.#first = undefined;
        if (handover === this.#every) this.#touch();
        const timer = setInterval(() => this.#touch(), this.#every);
        Deno.unrefTimer(timer);
        this.#timer = timer;
      });
      this.#first = first;
    }
    return path;
  }

  /**
   * Release a temp path (renamed into place or removed): no longer touched,
   * nor tracked ({@link releaseTemp}).
   *
   * @param path a held path
   */
  release(path: string): void {
    this.#paths.delete(path);
    releaseTemp(path);
    if (this.#paths.size > 0) return;
    this.#first?.clear();
    this.#first = undefined;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * Remove the temp files killed writers left in a directory: names
 * {@link tempPathFor} gives (those starting with `prefix` when given),
 * regular files or links, untouched for `age` ms, and not this process's
 * own ({@link isLiveTemp}). Best effort: what cannot be read or removed is
 * left.
 *
 * @param dir the directory
 * @param options `age` (default {@link STALE_TEMP_AGE}); `prefix`: only
 *   temps of one file, e.g. `.out.tar.tmp-`
 * @returns how many were removed
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { removeStaleTemps } from "./temp.ts";
 * const dir = await Deno.makeTempDir();
 * const hourAgo = new Date(Date.now() - 2 * 3600 * 1000);
 * for (const name of [".blob.tmp-0badf00d", ".blob.tmp-00c0ffee", "notes.tmp-0badf00d"]) {
 *   await Deno.writeTextFile(`${dir}/${name}`, "…");
 * }
 * await Deno.utime(`${dir}/.blob.tmp-0badf00d`, hourAgo, hourAgo);
 * await Deno.utime(`${dir}/notes.tmp-0badf00d`, hourAgo, hourAgo);
 * assert.equal(await removeStaleTemps(dir), 1); // old and a temp's name
 * assert.deepEqual(
 *   [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
 *   [".blob.tmp-00c0ffee", "notes.tmp-0badf00d"], // fresh; not a temp's name
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function removeStaleTemps(
  dir: string,
  options: { age?: number; prefix?: string } = {},
): Promise<number> {
  const before = Date.now() - (options.age ?? STALE_TEMP_AGE);
  let removed = 0;
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory || !isTempName(e.name)) continue;
      if (options.prefix !== undefined && !e.name.startsWith(options.prefix)) continue;
      const p = join(dir, e.name);
      if (isLiveTemp(p)) continue;
      const st = await Deno.lstat(p).catch(() => undefined);
      if (!st?.mtime || st.isDirectory || st.mtime.getTime() > before) continue;
      await Deno.remove(p).then(() => removed++, () => {});
    }
  } catch { /* best effort: a directory gone or unreadable */ }
  return removed;
}
