/**
 * The entries of a store: every `__<reference>[+<platform>]` below its root
 * (a directory, or a symlink to a version directory), found by walking the
 * directories whose names do not start with `.` or `__`.
 *
 * One walk serves `list` and `prune` ({@link storeDirectories}): each
 * directory is read once, and what it holds comes with the types the read
 * gave (no `stat` per child). A store of 10,000 images is 10,000 directory
 * reads, done synchronously (an asynchronous read costs a round trip to a
 * thread each, three times as long in all); every 256th is asynchronous, so
 * other work of the process still runs during a long walk.
 *
 * @module
 */
import { join, sep } from "../util/path.ts";
import { fsError } from "../util/errors.ts";
import type { Platform } from "../oci/manifest.ts";
import { formatPlatform } from "../oci/platform.ts";
import { ImageName } from "../oci/reference.ts";
import { parsePlatformKey } from "./paths.ts";

/** An installed image: what `Store.list` returns. */
export interface StoreEntry {
  /** The image. */
  name: ImageName;
  /**
   * The platform of an entry for another platform than the host's
   * (`__<reference>+<platform>`); undefined for the host's entry (`__<reference>`).
   */
  platform?: Platform;
  /** Its directory. */
  dir: string;
}

/** A directory of a store that may hold entries, as one read of it found it. */
export interface StoreDirectory {
  /** Its path. */
  path: string;
  /** Its path below the store's root, as segments (none for the root). */
  segments: string[];
  /** What it holds: each child's name and type (links not followed). */
  children: Deno.DirEntry[];
}

/** Directories read between two asynchronous reads in {@link storeDirectories}. */
const SYNC_READS = 256;

/**
 * Every directory of a store that may hold entries: the root, and each below
 * it whose name starts neither with `.` (versions, temps, layouts, records)
 * nor with `__` (entries), each read once. Directories removed during the
 * walk are skipped; a store that does not exist has none.
 *
 * @param root the store's root
 * @returns the directories, parents before their children
 * @throws {OcipkgError} naming a directory that cannot be read
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { storeDirectories } from "./entries.ts";
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/example.com/foo/__1/lib`, { recursive: true });
 * await Deno.mkdir(`${root}/example.com/foo/.__1.v-x`);
 * const seen = [];
 * for await (const d of storeDirectories(root)) {
 *   seen.push(`${d.segments.join("/")}: ${d.children.map((c) => c.name).sort().join(" ")}`);
 * }
 * assert.deepEqual(seen, [": example.com", "example.com: foo", "example.com/foo: .__1.v-x __1"]);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function* storeDirectories(root: string): AsyncGenerator<StoreDirectory> {
  // depth first, one frame per directory on the current path: a directory of 10,000
  // repositories is its listing, not 10,000 pending paths
  const frames: { dir: StoreDirectory; next: number }[] = [];
  let reads = 0;
  const read = async (path: string, segments: string[]) => {
    try {
      const children = ++reads % SYNC_READS === 0
        ? await Array.fromAsync(Deno.readDir(path))
        : Array.from(Deno.readDirSync(path));
      return { path, segments, children };
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return;
      throw fsError(e, "store directory", path);
    }
  };
  const top = await read(join(root), []);
  if (top === undefined) return;
  yield top;
  frames.push({ dir: top, next: 0 });
  while (frames.length > 0) {
    const frame = frames[frames.length - 1]!;
    const c = frame.dir.children[frame.next++];
    if (c === undefined) {
      frames.pop();
      continue;
    }
    if (!c.isDirectory || c.name.startsWith(".") || c.name.startsWith("__")) continue;
    const dir = await read(childPath(frame.dir.path, c.name), [...frame.dir.segments, c.name]);
    if (dir === undefined) continue;
    yield dir;
    frames.push({ dir, next: 0 });
  }
}

/**
 * The path of a child of a directory (a name without separators): what
 * `join` gives, without normalizing the path again for each child.
 *
 * @param dir a normalized path
 * @param name the child's name
 * @returns its path
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { join } from "../util/path.ts";
 * import { childPath } from "./entries.ts";
 * for (const dir of ["/store", "/", ".", "store"]) assert.equal(childPath(dir, "x"), join(dir, "x"));
 * ```
 */
export function childPath(dir: string, name: string): string {
  if (dir === ".") return name;
  return dir.endsWith(sep) ? `${dir}${name}` : `${dir}${sep}${name}`;
}

/**
 * The entry a child of a store directory is, if it is one: a directory or a
 * symlink named `__<reference>`, or `__<reference>+<platform>` for another
 * platform, below a path that names an image.
 *
 * @param dir the directory (from {@link storeDirectories})
 * @param child one of its children
 * @returns the entry, or undefined
 */
export function entryOf(dir: StoreDirectory, child: Deno.DirEntry): StoreEntry | undefined {
  const name = child.name;
  if (!name.startsWith("__") || !(child.isDirectory || child.isSymlink)) return undefined;
  const plus = name.indexOf("+");
  const base = plus < 0 ? name : name.slice(0, plus);
  const platform = plus < 0 ? undefined : parsePlatformKey(name.slice(plus + 1));
  if (plus >= 0 && !platform) return undefined; // not an entry of this store
  try {
    const entry: StoreEntry = {
      name: ImageName.fromStorePath([...dir.segments, base]),
      dir: childPath(dir.path, name),
    };
    if (platform) entry.platform = platform;
    return entry;
  } catch {
    return undefined; // not an image directory
  }
}

/**
 * Every entry below a store's root.
 *
 * @param root the store's root
 * @returns entries, sorted by name, the host's entry of an image first
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listEntries } from "./entries.ts";
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/example.com/foo/__1+linux-riscv64`, { recursive: true });
 * await Deno.mkdir(`${root}/example.com/foo/__1`);
 * await Deno.mkdir(`${root}/example.com/foo/.__1.v-not-an-entry`);
 * const found = (await listEntries(root)).map((e) => `${e.name} ${e.platform?.architecture ?? "host"}`);
 * assert.deepEqual(found, ["example.com/foo:1 host", "example.com/foo:1 riscv64"]);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function listEntries(root: string): Promise<StoreEntry[]> {
  const found: { entry: StoreEntry; name: string; platform: string }[] = [];
  for await (const dir of storeDirectories(root)) {
    for (const child of dir.children) {
      const entry = entryOf(dir, child);
      if (entry === undefined) continue;
      const platform = entry.platform ? formatPlatform(entry.platform) : "";
      found.push({ entry, name: entry.name.toString(), platform });
    }
  }
  const compare = collator();
  found.sort((a, b) => compare(a.name, b.name) || compare(a.platform, b.platform));
  return found.map((x) => x.entry);
}

/**
 * The order of {@link listEntries}: by name, then the host's entry before
 * those of other platforms, by platform.
 *
 * @param a an entry
 * @param b another
 * @returns negative when `a` comes first, positive when `b` does, 0 for the same
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName } from "@ocipkg/cli";
 * import { compareEntries } from "./entries.ts";
 * const name = ImageName.parse("example.com/foo:1");
 * const riscv = { name, dir: "b", platform: { os: "linux", architecture: "riscv64" } };
 * assert.ok(compareEntries({ name, dir: "a" }, riscv) < 0);
 * ```
 */
export function compareEntries(a: StoreEntry, b: StoreEntry): number {
  const compare = collator();
  const platform = (e: StoreEntry) => e.platform ? formatPlatform(e.platform) : "";
  return compare(a.name.toString(), b.name.toString()) || compare(platform(a), platform(b));
}

let collatorMade: Intl.Collator | undefined;

/** One collator: the order of `localeCompare`, without one made per comparison. */
function collator(): (a: string, b: string) => number {
  return (collatorMade ??= new Intl.Collator()).compare;
}
