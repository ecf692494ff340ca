/**
 * Disk usage as `du` counts it — the bytes allocated to files, directories
 * and links (blocks × 512; the size where the system reports no blocks),
 * each inode once however many hard links it has, symlinks never followed —
 * and the sizes of a store: each entry's and the whole store's.
 *
 * @module
 */
import { join, resolve } from "../util/path.ts";
import { forEachBounded } from "../util/concurrency.ts";
import { entryOnDisk } from "./entry_dirs.ts";
import type { StoreEntry } from "./entries.ts";

/** A file with more than one hard link: counted once, freed when every link goes. */
interface Inode {
  bytes: number;
  /** Hard links it has. */
  links: number;
  /** The paths of it that were added. */
  paths: Set<string>;
}

/**
 * A counter of disk usage over several trees: each tree's own bytes (an
 * inode once within it), and the bytes of all of them together (an inode
 * shared by two trees once), and what removing them all would free.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DiskUsage } from "./disk_usage.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/a`);
 * await Deno.writeFile(`${dir}/a/big`, new Uint8Array(100_000));
 * await Deno.link(`${dir}/a/big`, `${dir}/a/same`); // one inode, counted once
 * await Deno.symlink("/usr", `${dir}/a/out`); // never followed
 * const usage = new DiskUsage();
 * const a = await usage.add(`${dir}/a`);
 * assert.ok(a >= 100_000 && a < 200_000);
 * assert.equal(usage.freeable(), a); // every link of every inode is in it
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class DiskUsage {
  /** Files with more than one hard link, by `dev:ino`: the only inodes remembered. */
  #shared = new Map<string, Inode>();
  /** Directory trees added, by their root's `dev:ino`: their own bytes (being counted, or counted). */
  #trees = new Map<string, Promise<number>>();
  /** Bytes of what has one link (and of directories and symlinks): freed when removed. */
  #single = 0;
  /** Bytes of everything added, each inode once. */
  total = 0;

  /**
   * Add a tree (or with `recursive: false` one path). Memory grows with the
   * files that have several hard links, not with the files walked: an inode
   * with one link is reached by one path only, so it is counted as it is
   * met; a tree added again (an alias linking to the same version) is
   * answered from the first count.
   *
   * @param path a file, directory or link (not followed)
   * @param options `skip`: absolute paths not to enter; `recursive: false`: the path alone
   * @returns the tree's own bytes, each inode once within it
   */
  async add(
    path: string,
    options: { skip?: Set<string>; recursive?: boolean } = {},
  ): Promise<number> {
    const recursive = options.recursive !== false;
    if (recursive && !options.skip?.size) {
      const st = await Deno.lstat(path).catch(() => undefined);
      if (st?.isDirectory && st.ino != null && st.dev != null) {
        // one count a tree, also when two adds of it run at once
        const tree = `${st.dev}:${st.ino}`;
        let counted = this.#trees.get(tree);
        if (counted === undefined) {
          counted = this.#walk(path, options);
          this.#trees.set(tree, counted);
        }
        return await counted;
      }
    }
    return await this.#walk(path, options);
  }

  async #walk(
    path: string,
    options: { skip?: Set<string>; recursive?: boolean },
  ): Promise<number> {
    const recursive = options.recursive !== false;
    const mine = new Set<string>();
    let own = 0;
    const stack = [path];
    while (stack.length > 0) {
      const p = stack.pop()!;
      if (options.skip?.has(resolve(p))) continue;
      let st: Deno.FileInfo;
      try {
        st = await Deno.lstat(p);
      } catch {
        continue; // gone meanwhile
      }
      const bytes = st.blocks != null ? st.blocks * 512 : st.size;
      const links = st.isDirectory ? 1 : st.nlink ?? 1;
      if (links > 1 && st.ino != null && st.dev != null) {
        const key = `${st.dev}:${st.ino}`;
        if (!mine.has(key)) {
          mine.add(key);
          own += bytes;
        }
        let node = this.#shared.get(key);
        if (node === undefined) {
          node = { bytes, links, paths: new Set() };
          this.#shared.set(key, node);
          this.total += bytes;
        }
        node.paths.add(resolve(p));
      } else {
        own += bytes;
        this.#single += bytes;
        this.total += bytes;
      }
      if (st.isDirectory && recursive) {
        try {
          for await (const e of Deno.readDir(p)) stack.push(join(p, e.name));
        } catch { /* gone meanwhile */ }
      }
    }
    return own;
  }

  /**
   * The bytes removing everything added would free: each inode whose every
   * hard link was added (one still linked elsewhere stays allocated).
   *
   * @returns bytes
   */
  freeable(): number {
    let n = this.#single;
    for (const node of this.#shared.values()) if (node.paths.size >= node.links) n += node.bytes;
    return n;
  }
}

/** One entry's size (see {@link storeUsage}). */
export interface EntryUsage {
  /** The entry. */
  entry: StoreEntry;
  /**
   * Bytes of its image: the entry (a link, or a directory) and the version
   * directory it links to, each inode once.
   */
  bytes: number;
}

/** The sizes of a store: what `Store.usage` returns. */
export interface StoreUsage {
  /** Each entry's size, in the order of `Store.list`. */
  entries: EntryUsage[];
  /**
   * Bytes of everything else under the root: its directories, the records of
   * what verified, and what `prune` removes (stale versions, temps).
   */
  other: number;
  /** Bytes of the whole store, each inode once (what `du -s` counts). */
  total: number;
}

/**
 * The sizes of a store's entries and of the whole store. An entry's image is
 * its version directory (or the entry itself where it is a directory); a
 * link that leads elsewhere is counted as a link, never followed.
 *
 * @param root the store's root
 * @param entries its entries (`listEntries`)
 * @returns the sizes
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { storeUsage } from "./disk_usage.ts";
 * import { listEntries } from "./entries.ts";
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/example.com/foo/__1`, { recursive: true });
 * await Deno.writeFile(`${root}/example.com/foo/__1/lib.a`, new Uint8Array(50_000));
 * const usage = await storeUsage(root, await listEntries(root));
 * assert.equal(usage.entries.length, 1);
 * assert.ok(usage.entries[0]!.bytes >= 50_000);
 * assert.equal(usage.total, usage.entries[0]!.bytes + usage.other);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function storeUsage(root: string, entries: StoreEntry[]): Promise<StoreUsage> {
  const usage = new DiskUsage();
  const counted = new Set<string>();
  const out: EntryUsage[] = entries.map((entry) => ({ entry, bytes: 0 }));
  // several at once: each is many small file-system calls, mostly waiting
  await forEachBounded(out, 8, async (u) => {
    const found = await entryOnDisk(u.entry.dir);
    if (found === undefined) return;
    u.bytes += await usage.add(u.entry.dir); // a link: itself, not followed
    if (found.link && found.dir !== undefined) u.bytes += await usage.add(found.dir);
    counted.add(resolve(u.entry.dir));
    if (found.dir !== undefined) counted.add(resolve(found.dir));
  });
  const images = usage.total;
  await usage.add(root, { skip: counted });
  return { entries: out, other: usage.total - images, total: usage.total };
}
