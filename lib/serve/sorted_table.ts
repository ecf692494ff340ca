/**
 * A sorted key → value table kept on disk in two parts, so that a write costs
 * one small file whatever the table's size:
 *
 * - the **base**, `<dir>/<name>.base`: a sorted file of `key<TAB>value`
 *   lines (`sorted_file.ts`), looked up by binary search, rewritten only by
 *   {@link SortedTable.compact};
 * - the **overlay**, `<dir>/<name>/`: one file per key written since, named
 *   for its key (`:` spelled `=`, a space `+`, a `/` — in a repository's
 *   name — `,`), holding its value or `null` for a key removed. Each is
 *   written to a temp file, `fdatasync`ed, renamed
 *   into place and the directory synced before {@link SortedTable.put}
 *   returns: durable, and whole or absent after a crash.
 *
 * A lookup reads the overlay file when the key is in the overlay (its names
 * are kept in memory, sorted, reread when the directory changes behind our
 * back), else the base. A scan merges the two in key order. Compaction
 * writes a new base from both (a streamed merge) and then removes each
 * overlay file it merged unless it was rewritten meanwhile: memory holds the
 * overlay's names and, while compacting, its values — never the base.
 *
 * The caller serializes writes (`put`, and the overlay removal step of
 * `compact`, through the lock it passes); reads run beside them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SortedTable } from "./sorted_table.ts";
 * const dir = await Deno.makeTempDir();
 * const table = new SortedTable("tags", () => Promise.resolve(dir), "demo");
 * await table.put("b", '"2"');
 * await table.put("a", '"1"');
 * await table.compact((fn) => fn()); // into the base
 * await table.put("c", '"3"');
 * await table.remove("a");
 * assert.equal(await table.get("b"), '"2"');
 * const all: string[] = [];
 * for await (const [key] of table.scan({})) all.push(key);
 * assert.deepEqual(all, ["b", "c"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
import { Mutex } from "../util/concurrency.ts";
import { releaseTemp, tempPathFor } from "../util/temp.ts";
import { writeAll } from "../util/files.ts";
import { lstatOrUndefined, refused } from "./contained.ts";
import {
  type Line,
  lineAt,
  linesFrom,
  lowerBound,
  Probes,
  syncDir,
  writeSortedFile,
} from "./sorted_file.ts";

/** The value of a removed key in the overlay. */
const TOMBSTONE = "null";

/** A key's overlay file name. */
function fileOf(key: string): string {
  return key.replaceAll(":", "=").replaceAll(" ", "+").replaceAll("/", ",");
}

/** The key of an overlay file name (undefined for a temp file). */
function keyOf(file: string): string | undefined {
  if (file.startsWith(".")) return undefined;
  return file.replaceAll("=", ":").replaceAll("+", " ").replaceAll(",", "/");
}

/** The identity of a file or directory's current state. */
function idOf(st: Deno.FileInfo): string {
  return `${st.ino}:${st.mtime?.getTime()}:${st.ctime?.getTime()}:${st.size}`;
}

/** Index of the first element of a sorted array not below `key`. */
function bisect(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A base's lines and an overlay's values merged (the overlay's win; removed keys dropped). */
function* mergeLines(
  lines: Generator<Line> | undefined,
  overlay: Map<string, { value: string }>,
): Generator<[string, string]> {
  const order = [...overlay.keys()];
  let line = lines?.next();
  let oi = 0;
  for (;;) {
    const b = line && !line.done ? line.value : undefined;
    const o = oi < order.length ? order[oi]! : undefined;
    if (b === undefined && o === undefined) return;
    if (o === undefined || (b !== undefined && b.key < o)) {
      yield [b!.key, b!.value];
      line = lines?.next();
      continue;
    }
    if (b?.key === o) line = lines?.next();
    oi++;
    const v = overlay.get(o)!.value;
    if (v !== TOMBSTONE) yield [o, v];
  }
}

/** Where a scan starts and what it keeps. */
export interface ScanRange {
  /** Only keys after this one. */
  after?: string;
  /** Only keys starting with this. */
  prefix?: string;
}

/** A sorted table: base file and overlay directory (see the module doc). */
export class SortedTable {
  /** Its name (`<name>.base`, `<name>/`). */
  readonly name: string;
  #place: () => Promise<string>;
  #where: string;
  /** The overlay's keys, sorted (never changed in place: replaced). */
  #keys: readonly string[] = [];
  /** The overlay directory's identity when `#keys` was read. */
  #id: string | undefined;
  #cache = new Mutex();
  #compacting = new Mutex();
  #probes: Probes | undefined;

  /**
   * @param name the table's name
   * @param place the directory holding it, checked on disk on each call
   * @param where that directory's path under the registry's root (for messages)
   */
  constructor(name: string, place: () => Promise<string>, where: string) {
    this.name = name;
    this.#place = place;
    this.#where = where;
  }

  /** The overlay directory, made when missing, checked to be a real directory. */
  async #overlay(): Promise<{ dir: string; overlay: string }> {
    const dir = await this.#place();
    const overlay = `${dir}/${this.name}`;
    let st = await lstatOrUndefined(overlay);
    if (!st) {
      await Deno.mkdir(overlay).catch((e) => {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      });
      st = await lstatOrUndefined(overlay);
    }
    if (!st?.isDirectory) {
      throw refused(`${this.#where}/${this.name}`, st ?? await Deno.lstat(overlay), "a directory");
    }
    await this.#refresh(overlay, st);
    return { dir, overlay };
  }

  /** Reread the overlay's names when its directory changed behind our back. */
  async #refresh(overlay: string, st: Deno.FileInfo): Promise<void> {
    if (idOf(st) === this.#id) return;
    // synchronous reads (a directory of at most a few thousand names), in turn with a write's update
    await this.#cache.run(() => {
      const id = idOf(Deno.lstatSync(overlay));
      if (id !== this.#id) {
        const keys: string[] = [];
        for (const e of Deno.readDirSync(overlay)) {
          const key = keyOf(e.name);
          if (key !== undefined) keys.push(key);
        }
        this.#keys = keys.sort();
        this.#id = id;
      }
      return Promise.resolve();
    });
  }

  /** A regular file's text, or undefined when absent. */
  async #read(path: string, key: string): Promise<string | undefined> {
    const st = await lstatOrUndefined(path);
    if (!st) return undefined;
    if (!st.isFile) {
      throw refused(`${this.#where}/${this.name}/${fileOf(key)}`, st, "a regular file");
    }
    try {
      return await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined; // merged and removed meanwhile
      throw e;
    }
  }

  /** The base, open, with its probe cache; undefined when there is none. */
  #openBase(dir: string): { f: Deno.FsFile; size: number; probes: Probes } | undefined {
    const path = `${dir}/${this.name}.base`;
    let st: Deno.FileInfo;
    try {
      st = Deno.lstatSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
    if (!st.isFile) throw refused(`${this.#where}/${this.name}.base`, st, "a regular file");
    let f: Deno.FsFile;
    try {
      f = Deno.openSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
    const now = f.statSync();
    const id = idOf(now);
    if (this.#probes?.id !== id) this.#probes = new Probes(id);
    return { f, size: now.size, probes: this.#probes };
  }

  /** A key's value in the current base. */
  #baseGet(dir: string, key: string): string | undefined {
    const base = this.#openBase(dir);
    if (!base) return undefined;
    try {
      const line = lineAt(base.f, lowerBound(base.f, base.size, key, base.probes), base.size);
      return line?.key === key ? line.value : undefined;
    } finally {
      base.f.close();
    }
  }

  /** Whether a key is in the overlay (as last read). */
  #inOverlay(key: string): boolean {
    return this.#keys[bisect(this.#keys, key)] === key;
  }

  /**
   * A key's value.
   * @param key the key
   * @returns its value, or undefined when absent or removed
   */
  async get(key: string): Promise<string | undefined> {
    const { dir, overlay } = await this.#overlay();
    if (this.#inOverlay(key)) {
      const v = await this.#read(`${overlay}/${fileOf(key)}`, key);
      if (v !== undefined) return v === TOMBSTONE ? undefined : v;
    }
    return this.#baseGet(dir, key);
  }

  /**
   * Set a key, durably (see the module doc). The caller serializes writes.
   * @param key the key (no tab, newline, `=`, `+` or `,`; not starting with `.`)
   * @param value one line of JSON
   */
  async put(key: string, value: string): Promise<void> {
    if (!key || key.startsWith(".") || /[\t\n=+,]/.test(key) || value.includes("\n")) {
      throw new Error(`table ${this.name}: key '${key.slice(0, 100)}' or its value is malformed`);
    }
    const { overlay } = await this.#overlay();
    const before = this.#id;
    const path = `${overlay}/${fileOf(key)}`;
    const st = await lstatOrUndefined(path);
    if (st && !st.isFile) {
      throw refused(`${this.#where}/${this.name}/${fileOf(key)}`, st, "a regular file");
    }
    const tmp = tempPathFor(path);
    try {
      const f = await Deno.open(tmp, { write: true, createNew: true });
      try {
        await writeAll(f, new TextEncoder().encode(value));
        await f.syncData();
      } finally {
        f.close();
      }
      await Deno.rename(tmp, path);
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      throw e;
    } finally {
      releaseTemp(tmp);
    }
    await syncDir(overlay);
    await this.#cache.run(async () => {
      // the names read are still the directory's but for this write: add it; else reread them
      if (this.#id !== before || before === undefined) {
        this.#id = undefined;
        return;
      }
      const at = bisect(this.#keys, key);
      if (this.#keys[at] !== key) this.#keys = this.#keys.toSpliced(at, 0, key);
      this.#id = idOf(await Deno.lstat(overlay));
    });
  }

  /**
   * Remove a key, durably (a `null` in the overlay until compaction).
   * @param key the key
   */
  async remove(key: string): Promise<void> {
    await this.put(key, TOMBSTONE);
  }

  /**
   * How many keys the overlay holds (written since the last compaction).
   * @returns the count
   */
  async overlaySize(): Promise<number> {
    await this.#overlay();
    return this.#keys.length;
  }

  /**
   * The keys and values, in key order, base and overlay merged (removed keys skipped).
   * @param range where to start (`after`) and which keys (`prefix`)
   * @yields `[key, value]`
   */
  async *scan(range: ScanRange): AsyncGenerator<[string, string]> {
    const { dir, overlay } = await this.#overlay();
    const { after, prefix } = range;
    const from = after !== undefined && (prefix === undefined || after >= prefix)
      ? after
      : prefix ?? "";
    const skip = (k: string) => after !== undefined && k <= after;
    const keys = this.#keys;
    let oi = bisect(keys, from);
    const base = this.#openBase(dir);
    try {
      const lines = base
        ? linesFrom(base.f, lowerBound(base.f, base.size, from, base.probes), base.size)
        : undefined;
      let line = lines?.next();
      const nextLine = () => {
        line = lines?.next();
      };
      for (;;) {
        while (line && !line.done && skip(line.value.key)) nextLine();
        while (oi < keys.length && skip(keys[oi]!)) oi++;
        const b = line && !line.done ? line.value : undefined;
        const o = oi < keys.length ? keys[oi]! : undefined;
        if (b === undefined && o === undefined) return;
        const key = o === undefined || (b !== undefined && b.key < o) ? b!.key : o;
        if (prefix !== undefined && !key.startsWith(prefix)) return;
        let value: string | undefined;
        if (key === o) {
          oi++;
          if (b?.key === key) nextLine();
          value = await this.#read(`${overlay}/${fileOf(key)}`, key);
          // merged into a newer base meanwhile: read it there
          if (value === undefined) value = this.#baseGet(dir, key);
          if (value === TOMBSTONE) value = undefined;
        } else {
          value = b!.value;
          nextLine();
        }
        if (value !== undefined) yield [key, value];
      }
    } finally {
      base?.f.close();
    }
  }

  /**
   * Merge the overlay into a new base (written whole, durably, then renamed
   * over the old one), then remove each overlay file merged unless it was
   * rewritten meanwhile. Writes go on beside it; compactions run one at a time.
   * @param lock runs its function as the table's one writer (the caller's write lock)
   * @returns how many overlay files were merged
   */
  compact(lock: <T>(fn: () => Promise<T>) => Promise<T>): Promise<number> {
    return this.#compacting.run(async () => {
      const { dir, overlay } = await this.#overlay();
      const keys = this.#keys;
      if (!keys.length) return 0;
      // each overlay value, and the identity of the file it was read from
      const merged = new Map<string, { ino: number | null; value: string }>();
      for (const key of keys) {
        const path = `${overlay}/${fileOf(key)}`;
        const st = await lstatOrUndefined(path);
        if (!st) continue;
        if (!st.isFile) {
          throw refused(`${this.#where}/${this.name}/${fileOf(key)}`, st, "a regular file");
        }
        let f: Deno.FsFile;
        try {
          f = await Deno.open(path);
        } catch (e) {
          if (e instanceof Deno.errors.NotFound) continue;
          throw e;
        }
        try {
          const st = await f.stat();
          if (!st.isFile) continue; // swapped meanwhile
          const bytes = new Uint8Array(st.size);
          let got = 0;
          while (got < bytes.byteLength) {
            const n = await f.read(bytes.subarray(got));
            if (n === null) break;
            got += n;
          }
          merged.set(key, { ino: st.ino, value: new TextDecoder().decode(bytes.subarray(0, got)) });
        } finally {
          f.close();
        }
      }
      const base = this.#openBase(dir);
      try {
        const lines = base ? linesFrom(base.f, 0, base.size) : undefined;
        await writeSortedFile(`${dir}/${this.name}.base`, mergeLines(lines, merged));
      } finally {
        base?.f.close();
      }
      // the new base is durable: drop what it holds from the overlay, a batch per lock
      const done = [...merged];
      for (let i = 0; i < done.length; i += 64) {
        const batch = done.slice(i, i + 64);
        await lock(async () => {
          const before = this.#id;
          const gone: string[] = [];
          for (const [key, { ino }] of batch) {
            const path = `${overlay}/${fileOf(key)}`;
            const st = await lstatOrUndefined(path);
            if (st?.isFile && st.ino === ino) {
              await Deno.remove(path).catch(() => {});
              gone.push(key);
            }
          }
          await this.#cache.run(async () => {
            if (this.#id !== before || before === undefined) {
              this.#id = undefined;
              return;
            }
            const drop = new Set(gone);
            this.#keys = this.#keys.filter((k) => !drop.has(k));
            this.#id = idOf(await Deno.lstat(overlay));
          });
        });
      }
      // temp files a crash left (no write is in flight while the lock is held)
      await lock(async () => {
        for await (const e of Deno.readDir(overlay)) {
          if (e.name.startsWith(".") && e.isFile) {
            await Deno.remove(`${overlay}/${e.name}`).catch(() => {});
          }
        }
        for await (const e of Deno.readDir(dir)) {
          if (e.name.startsWith(`.${this.name}.base.tmp-`) && e.isFile) {
            await Deno.remove(`${dir}/${e.name}`).catch(() => {});
          }
        }
      });
      return merged.size;
    });
  }
}
