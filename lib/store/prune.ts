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
import { readSmallFileSync } from "../util/files.ts";
import type { Platform } from "../oci/manifest.ts";
import type { ImageName } from "../oci/reference.ts";
import { MAX_INDEX_FILE } from "../transport/layout/index_file.ts";
import { LayoutIndex } from "../transport/layout/index_file.ts";
import { LAYOUT_DIR, TMP_PREFIX } from "./paths.ts";
import { isStaleTemp, isVersionName } from "./entry_dirs.ts";
import {
  childPath,
  compareEntries,
  entryOf,
  storeDirectories,
  type StoreDirectory,
  type StoreEntry,
} from "./entries.ts";
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
  const images = options.unusedFor !== undefined || locked !== undefined;
  const cutoff = now - (options.unusedFor ?? 0) - USE_TIME_STEP;
  // records of what verified: each goes unless a kept image holds its digest
  const { records, temps } = await listVerifiedRecords(root);
  const unheld = new Set(records.map((r) => r.digest));

  // One walk, a directory at a time: what a directory's links name is known there (an install
  // links an entry to a sibling version). What cannot be decided before the walk ends waits:
  // links that name something elsewhere (resolved) may keep a version of another directory.
  const elsewhere = new Set<string>(); // what any link names outside its directory
  const keptElsewhere = new Set<string>(); // … the kept entries' links
  const versionsOfRemoved: { doomed: Doomed; path: string }[] = [];
  const staleVersions: string[] = [];
  const staleTemps: string[] = [];
  for await (const dir of storeDirectories(root)) {
    const versionNames: string[] = []; // versions, and links being swapped in
    const versions = new Set<string>(); // the versions that are directories
    const named = new Set<string>(); // siblings a link of this directory names
    const namedByKept = new Set<string>();
    const removed: { e: StoreEntry; doomed: Doomed; version: string }[] = [];
    const entries: { child: Deno.DirEntry; e: StoreEntry }[] = [];
    for (const child of dir.children) {
      if (isVersionName(child.name)) {
        versionNames.push(child.name);
        if (child.isDirectory) versions.add(child.name);
      } else if (child.name.startsWith(TMP_PREFIX)) {
        const path = childPath(dir.path, child.name);
        if (await isStaleTemp(path)) staleTemps.push(path);
      } else {
        const e = entryOf(dir, child);
        if (e !== undefined) entries.push({ child, e });
      }
    }
    for (const { child, e } of entries) {
      const link = child.isSymlink ? linkOf(dir, e.dir) : undefined;
      if (link?.sibling !== undefined) named.add(link.sibling);
      else if (link?.resolved !== undefined) elsewhere.add(link.resolved);
      // where the image is: the sibling version the link names, or the entry itself
      const home = !child.isSymlink
        ? e.dir
        : link?.sibling !== undefined && versions.has(link.sibling)
        ? childPath(dir.path, link.sibling)
        : undefined;
      let digests: Set<string> | undefined;
      const digestsOf = () => digests ??= layoutDigests(home);
      const keep = () => {
        if (link?.sibling !== undefined) namedByKept.add(link.sibling);
        else if (link?.resolved !== undefined) keptElsewhere.add(link.resolved);
        if (unheld.size > 0) { for (const d of digestsOf()) unheld.delete(d); }
      };
      if (!images) {
        keep();
        continue;
      }
      // the use time: the image's directory's (of the link itself when it names none)
      const stat = lstatOrUndefined(home ?? e.dir);
      if (stat === undefined) continue; // removed meanwhile
      if (
        (options.unusedFor !== undefined && useTime(stat) >= cutoff) ||
        locked?.refs.has(e.name.toString()) ||
        (locked && [...digestsOf()].some((x) => locked.digests.has(x)))
      ) {
        keep();
        continue;
      }
      const at = await away(e.dir);
      if (!dryRun && options.unusedFor !== undefined && home !== undefined) {
        // a use recorded since the decision (a get's, see use_time.ts): put it back
        const again = await Deno.lstat(child.isSymlink ? home : at).catch(() => null);
        if (again !== null && useTime(again) > useTime(stat)) {
          await Deno.rename(at, e.dir);
          keep();
          continue;
        }
      }
      const item: PrunedItem = { kind: "image", path: e.dir, bytes: 0, name: e.name };
      if (e.platform) item.platform = e.platform;
      item.lastUsed = new Date(useTime(stat));
      const doomed: Doomed = { item, at: [at] };
      plan.doomed.push(doomed);
      if (child.isSymlink && home !== undefined) {
        removed.push({ e, doomed, version: link!.sibling! });
      }
    }
    // a removed image's version goes with it, unless a kept entry here names it too (once:
    // with the first in the order of `list`, whose bytes it counts in)
    removed.sort((a, b) => compareEntries(a.e, b.e));
    for (const { doomed, version } of removed) {
      if (namedByKept.has(version)) continue;
      namedByKept.add(version);
      versionsOfRemoved.push({ doomed, path: childPath(dir.path, version) });
    }
    // versions no link here names
    for (const v of versionNames) if (!named.has(v)) staleVersions.push(childPath(dir.path, v));
  }
  const namedElsewhere = (path: string, by: Set<string>) => by.size > 0 && by.has(resolve(path));
  for (const { doomed, path } of versionsOfRemoved) {
    if (!namedElsewhere(path, keptElsewhere)) doomed.at.push(await away(path));
  }
  for (const path of staleVersions) {
    if (namedElsewhere(path, elsewhere)) continue;
    plan.doomed.push({ item: { kind: "version", path, bytes: 0 }, at: [await away(path)] });
  }
  for (const path of staleTemps) {
    plan.doomed.push({ item: { kind: "temp", path, bytes: 0 }, at: [await away(path)] });
  }

  // records of what verified for digests no kept image holds, and their left-over temps:
  // small files written under the lock, so removed here
  const files: PrunedItem[] = [
    ...temps.map((path): PrunedItem => ({ kind: "temp", path, bytes: 0 })),
    ...records.filter((r) => unheld.has(r.digest)).map((r): PrunedItem => ({
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
 * What an entry's link names (read as text, never followed): a sibling's
 * name, or else the resolved path of what it names elsewhere.
 */
function linkOf(
  dir: StoreDirectory,
  entry: string,
): { sibling?: string; resolved?: string } | undefined {
  let target: string;
  try {
    target = Deno.readLinkSync(entry);
  } catch {
    return undefined; // removed meanwhile
  }
  if (target !== "." && target !== ".." && !/[\\/]/.test(target)) return { sibling: target };
  return { resolved: resolve(dir.path, target) };
}

/** `lstat`, or undefined when the path is gone. */
function lstatOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.lstatSync(path);
  } catch {
    return undefined;
  }
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

/**
 * The digests an image's layout holds: those its `index.json` lists (none
 * when it cannot be read). One read of one small file.
 */
function layoutDigests(dir: string | undefined): Set<string> {
  const out = new Set<string>();
  if (dir === undefined) return out;
  const path = join(dir, LAYOUT_DIR, "index.json");
  try {
    const read = readSmallFileSync(path, `layout index '${path}'`, MAX_INDEX_FILE);
    if (read === undefined) return out;
    for (const d of LayoutIndex.parse(read.bytes, path).manifests) out.add(d.digest);
  } catch { /* not readable: holds nothing known */ }
  return out;
}
