/**
 * Pruning a store: removing what nothing uses — version directories no
 * entry links to, temp directories of processes that are gone, records of
 * what verified for digests no entry holds — and, when asked, images not
 * used for a while (`unusedFor`, see `use_time.ts`) or not held by the given
 * lock files (`keepLocked`). Each option is a reason to keep an image; with
 * both, an image is removed only when neither keeps it (unused *and* not
 * locked).
 *
 * It runs in two steps. {@link planPrune}, under the store's lock, decides
 * and moves everything it removes away with one rename each into a temp of
 * this process (`.tmp-<pid>-prune-<uuid>`, which others leave alone while it
 * runs): the entry first, then its version directory. A `get` resolving the
 * entry meanwhile sees the whole image or no entry (and installs it again),
 * never a half-removed one. {@link finishPrune}, after the lock, sizes and
 * deletes what was moved, then the directories that became empty.
 *
 * A `get` that records a use (`use_time.ts`) between the decision and the
 * rename is seen by looking at the use time again after the rename: the
 * entry is put back. One that records it after that finds the entry gone.
 *
 * @module
 */
import { basename, dirname, join, relative, resolve } from "../util/path.ts";
import { NotFoundError } from "../util/errors.ts";
import { forEachBounded } from "../util/concurrency.ts";
import type { Platform } from "../oci/manifest.ts";
import type { ImageName } from "../oci/reference.ts";
import { OciDir } from "../transport/layout/oci_dir.ts";
import { LAYOUT_DIR, TMP_PREFIX } from "./paths.ts";
import { type EntryOnDisk, entryOnDisk, isStaleTemp, isVersionName } from "./entry_dirs.ts";
import { listEntries, type StoreEntry } from "./entries.ts";
import { DiskUsage } from "./disk_usage.ts";
import { readLockFile } from "./lock_file.ts";
import { USE_TIME_STEP } from "./use_time.ts";
import { listVerifiedRecords } from "./verified.ts";

/** What {@link planPrune} removes besides what nothing uses. */
export interface PruneOptions {
  /**
   * Remove images whose use was last recorded longer ago than this many
   * milliseconds (plus the hour to which uses are recorded, `USE_TIME_STEP`).
   */
  unusedFor?: number;
  /**
   * Remove images none of these `ocipkg.lock` files holds: an image is kept
   * when its reference is a key of one, or a digest it holds is a locked
   * root or platform digest. A file that does not exist is an error.
   */
  keepLocked?: string[];
  /** Report what would be removed; remove nothing. */
  dryRun?: boolean;
}

/** One thing a prune removed (or, in a dry run, would remove). */
export interface PrunedItem {
  /**
   * `image`: an entry and its version directory; `version`: a version
   * directory no entry links to; `temp`: a temp of a process that is gone;
   * `record`: the record of what verified a digest no entry holds;
   * `directory`: a directory left empty.
   */
  kind: "image" | "version" | "temp" | "record" | "directory";
  /** Its path. */
  path: string;
  /** Bytes it held (each inode once). */
  bytes: number;
  /** For an image: its name. */
  name?: ImageName;
  /** For an image of another platform than the host's: the platform. */
  platform?: Platform;
  /** For an image: its last recorded use. */
  lastUsed?: Date;
  /** For a record: its digest. */
  digest?: string;
}

/** What a prune did: what `Store.prune` returns. */
export interface PruneResult {
  /** What was removed: images, versions, temps, records, directories, each sorted by path. */
  removed: PrunedItem[];
  /** Bytes freed (inodes all of whose links were removed; what `du` drops by). */
  freed: number;
  /** Whether it was a dry run (nothing removed). */
  dryRun: boolean;
}

/** What the lock files given hold. */
export interface Locked {
  /** Locked references (canonical). */
  refs: Set<string>;
  /** Locked root and platform digests. */
  digests: Set<string>;
}

/**
 * Read the lock files whose images a prune keeps.
 *
 * @param paths `ocipkg.lock` files
 * @returns their references and digests
 * @throws {NotFoundError} for a file that does not exist
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readLocked } from "./prune.ts";
 * const dir = await Deno.makeTempDir();
 * const d = `sha256:${"a".repeat(64)}`;
 * const images = { "ghcr.io/org/libfoo:1.2": { digest: d, platforms: { "linux/amd64": d } } };
 * await Deno.writeTextFile(`${dir}/ocipkg.lock`, JSON.stringify({ version: 1, images }));
 * const locked = await readLocked([`${dir}/ocipkg.lock`]);
 * assert.deepEqual([...locked.refs], ["ghcr.io/org/libfoo:1.2"]);
 * assert.deepEqual([...locked.digests], [d]);
 * await assert.rejects(readLocked([`${dir}/none.lock`]), /does not exist/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readLocked(paths: string[]): Promise<Locked> {
  const locked: Locked = { refs: new Set(), digests: new Set() };
  for (const path of paths) {
    const lock = await readLockFile(path);
    if (lock === undefined) throw new NotFoundError(`lock file '${path}' does not exist`);
    for (const [ref, image] of Object.entries(lock.images)) {
      locked.refs.add(ref);
      locked.digests.add(image.digest);
      for (const d of Object.values(image.platforms)) locked.digests.add(d);
    }
  }
  return locked;
}

/** One thing to remove: where it was, where it is now (moved away, or not in a dry run). */
interface Doomed {
  item: PrunedItem;
  /** Its paths now, still to size and delete: the trash it was moved to, or (dry run) where it is. */
  at: string[];
}

/** What {@link planPrune} decided, for {@link finishPrune}. */
export interface PrunePlan {
  /** The store's root. */
  root: string;
  /** Whether it is a dry run. */
  dryRun: boolean;
  /** What to remove. */
  doomed: Doomed[];
  /** The sizes of what is removed. */
  usage: DiskUsage;
}

/**
 * Decide what to remove and (unless a dry run) move it away: call under the
 * store's lock. Records of what verified are removed here (they are small
 * and written under the lock).
 *
 * @param root the store's root
 * @param options what else to remove, dry run
 * @param locked the lock files' content (`keepLocked` read by {@link readLocked})
 * @param now the time to measure `unusedFor` from (ms since the epoch)
 * @returns the plan for {@link finishPrune}
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { finishPrune, planPrune } from "./prune.ts";
 * const root = await Deno.makeTempDir();
 * const dir = `${root}/example.com/foo`;
 * await Deno.mkdir(`${dir}/.__1.v-00000000-0000-4000-8000-000000000000`, { recursive: true });
 * await Deno.mkdir(`${dir}/.__1.v-11111111-1111-4111-8111-111111111111`);
 * await Deno.symlink(".__1.v-11111111-1111-4111-8111-111111111111", `${dir}/__1`);
 * const result = await finishPrune(await planPrune(root, {}, undefined, Date.now()));
 * assert.deepEqual(result.removed.map((r) => r.kind), ["version"]); // the one no entry links to
 * assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
 *   ".__1.v-11111111-1111-4111-8111-111111111111",
 *   "__1",
 * ]);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function planPrune(
  root: string,
  options: PruneOptions,
  locked: Locked | undefined,
  now: number,
): Promise<PrunePlan> {
  const dryRun = options.dryRun ?? false;
  const plan: PrunePlan = { root, dryRun, doomed: [], usage: new DiskUsage() };
  const away = async (path: string): Promise<string> => {
    if (dryRun) return path;
    const trash = join(dirname(path), `${TMP_PREFIX}${Deno.pid}-prune-${crypto.randomUUID()}`);
    await Deno.rename(path, trash);
    return trash;
  };

  const found = new Map<StoreEntry, EntryOnDisk>();
  // what each link names (resolved as text, never followed): a version named is in use
  const targetOf = new Map<StoreEntry, string>();
  for (const e of await listEntries(root)) {
    const d = await entryOnDisk(e.dir);
    if (d === undefined) continue;
    found.set(e, d);
    const target = d.link ? await Deno.readLink(e.dir).catch(() => undefined) : undefined;
    if (target !== undefined) targetOf.set(e, resolve(dirname(e.dir), target));
  }
  const digests = new Map<StoreEntry, Set<string>>();
  const digestsOf = async (e: StoreEntry): Promise<Set<string>> => {
    let set = digests.get(e);
    if (set === undefined) digests.set(e, set = await layoutDigests(found.get(e)?.dir));
    return set;
  };

  // images: removed when no option given keeps them; the entry moved first
  const images: { e: StoreEntry; doomed: Doomed }[] = [];
  if (options.unusedFor !== undefined || locked !== undefined) {
    const cutoff = now - (options.unusedFor ?? 0) - USE_TIME_STEP;
    for (const [e, d] of found) {
      if (options.unusedFor !== undefined && useTime(d.stat) >= cutoff) continue;
      if (locked?.refs.has(e.name.toString())) continue;
      if (locked && [...await digestsOf(e)].some((x) => locked.digests.has(x))) continue;
      const at = await away(e.dir);
      if (!dryRun && options.unusedFor !== undefined && d.dir !== undefined) {
        // a use recorded since the decision (a get's, see use_time.ts): put it back
        const again = await Deno.lstat(d.link ? d.dir : at).catch(() => null);
        if (again !== null && useTime(again) > useTime(d.stat)) {
          await Deno.rename(at, e.dir);
          continue;
        }
      }
      const item: PrunedItem = { kind: "image", path: e.dir, bytes: 0, name: e.name };
      if (e.platform) item.platform = e.platform;
      item.lastUsed = new Date(useTime(d.stat));
      images.push({ e, doomed: { item, at: [at] } });
    }
  }
  plan.doomed.push(...images.map((x) => x.doomed));
  const removing = new Set(images.map((x) => x.e));
  const kept = [...found.keys()].filter((e) => !removing.has(e));
  const keptTargets = new Set(kept.map((e) => targetOf.get(e)));
  // then its version, unless a kept entry links to it too
  for (const { e, doomed } of images) {
    const version = targetOf.get(e);
    const dir = found.get(e)!.dir;
    if (version === undefined || dir === undefined || keptTargets.has(version)) continue;
    keptTargets.add(version); // moved once
    doomed.at.push(await away(dir));
  }

  // versions no entry links to, temps of processes that are gone
  const allTargets = new Set(targetOf.values());
  for (const dir of await storeDirs(root)) {
    const names = await Array.fromAsync(Deno.readDir(dir)).catch(() => []);
    for (const x of names) {
      const path = join(dir, x.name);
      let kind: PrunedItem["kind"] | undefined;
      if (isVersionName(x.name) && !allTargets.has(resolve(path))) kind = "version";
      else if (x.name.startsWith(TMP_PREFIX) && await isStaleTemp(path)) kind = "temp";
      if (kind !== undefined) {
        plan.doomed.push({ item: { kind, path, bytes: 0 }, at: [await away(path)] });
      }
    }
  }

  // records of what verified for digests no entry holds, and their left-over temps: small
  // files written under the lock, so removed here
  const { records, temps } = await listVerifiedRecords(root);
  const held = new Set<string>();
  if (records.length > 0) { for (const e of kept) for (const x of await digestsOf(e)) held.add(x); }
  const files: PrunedItem[] = [
    ...temps.map((path): PrunedItem => ({ kind: "temp", path, bytes: 0 })),
    ...records.filter((r) => !held.has(r.digest)).map((r): PrunedItem => ({
      kind: "record",
      path: r.path,
      bytes: 0,
      digest: r.digest,
    })),
  ];
  for (const item of files) {
    if (dryRun) {
      plan.doomed.push({ item, at: [item.path] });
      continue;
    }
    item.bytes = await plan.usage.add(item.path);
    await Deno.remove(item.path).catch(() => {});
    plan.doomed.push({ item, at: [] });
  }
  return plan;
}

/**
 * Size and delete what {@link planPrune} moved away (after the store's lock
 * is released), then remove the directories that became empty; in a dry
 * run, size what would be removed and find the directories that would
 * become empty.
 *
 * @param plan what {@link planPrune} decided
 * @returns what was removed and the bytes freed
 */
export async function finishPrune(plan: PrunePlan): Promise<PruneResult> {
  const { usage, dryRun } = plan;
  const gone = new Set<string>();
  // several at once: each is many small file-system calls, mostly waiting
  await forEachBounded(plan.doomed, 8, async ({ item, at }) => {
    for (const path of at) {
      item.bytes += await usage.add(path);
      gone.add(resolve(path));
    }
    gone.add(resolve(item.path));
  });
  if (!dryRun) {
    const paths = plan.doomed.flatMap((x) => x.at);
    await forEachBounded(paths, 8, (p) => Deno.remove(p, { recursive: true }).catch(() => {}));
  }
  // directories left empty, up to the root (never a hidden one, such as `.verified`)
  const top = resolve(plan.root);
  const removed = plan.doomed.map((x) => x.item);
  const parents = new Set(removed.map((x) => dirname(resolve(x.path))));
  for (let dir of [...parents].sort((a, b) => b.length - a.length)) {
    while (dir.startsWith(top + "/") || dir.startsWith(top + "\\")) {
      if (gone.has(dir) || basename(dir).startsWith(".")) break;
      if (!(await isEmpty(dir, dryRun ? gone : undefined))) break;
      const bytes = await usage.add(dir, { recursive: false });
      if (!dryRun) {
        try {
          await Deno.remove(dir);
        } catch {
          break; // something was put in it meanwhile
        }
      }
      gone.add(dir);
      removed.push({ kind: "directory", path: join(plan.root, relative(top, dir)), bytes });
      dir = dirname(dir);
    }
  }
  const order = ["image", "version", "temp", "record", "directory"];
  removed.sort((a, b) =>
    order.indexOf(a.kind) - order.indexOf(b.kind) || a.path.localeCompare(b.path)
  );
  return { removed, freed: usage.freeable(), dryRun };
}

/** Whether a directory is empty — or, given what goes, holds nothing else. */
async function isEmpty(dir: string, going?: Set<string>): Promise<boolean> {
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!going?.has(resolve(join(dir, e.name)))) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** A use time: the modification time of an image's directory (see use_time.ts). */
function useTime(stat: Deno.FileInfo): number {
  return stat.mtime?.getTime() ?? 0;
}

/** The directories of a store that hold entries: the root and those below not hidden or entries. */
async function storeDirs(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    out.push(dir);
    const names = await Array.fromAsync(Deno.readDir(dir)).catch(() => []);
    for (const e of names) {
      if (e.isDirectory && !e.name.startsWith(".") && !e.name.startsWith("__")) {
        await walk(join(dir, e.name));
      }
    }
  };
  await walk(root);
  return out;
}

/** The digests an image's layout holds (none when it cannot be read). */
async function layoutDigests(dir: string | undefined): Promise<Set<string>> {
  const out = new Set<string>();
  if (dir === undefined) return out;
  try {
    const layout = await OciDir.open(join(dir, LAYOUT_DIR));
    try {
      for (const d of await layout.list()) out.add(d.digest);
    } finally {
      await layout.close();
    }
  } catch { /* not readable: holds nothing known */ }
  return out;
}
