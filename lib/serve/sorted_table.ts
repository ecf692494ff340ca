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
import { printable } from "../util/text.ts";
import { lstatOrUndefined, refused } from "./contained.ts";
import { ServeError } from "./errors.ts";
import {
  type Line,
  lineAt,
  linesFrom,
  lowerBound,
  MAX_LINE,
  Probes,
  SortedFileError,
  syncDir,
  writeSortedFile,
} from "./sorted_file.ts";

/** The value of a removed key in the overlay. */
const TOMBSTONE = "null";

/** Most files an overlay directory may hold (a hostile one is refused, not read into memory). */
export const MAX_OVERLAY = 1 << 20;

/**
 * What a table's keys and values must be (its files may have been written
 * by someone else while `serve` was stopped): each returns why one cannot
 * be, or undefined when it can.
 */
export interface TableCheck {
  /** Why `key` cannot be a key of the table. */
  key(key: string): string | undefined;
  /** Why `value` cannot be the value of `key`. */
  value(key: string, value: string): string | undefined;
}

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

/**
 * Bases checked whole (or written) in this process: path → identity. A
 * table object is made again when `serve` reopens a repository it had let
 * go (it keeps a bounded number open), and must not check a base of
 * 100,000 lines again when the file is the one already checked.
 */
const CHECKED = new Map<string, Vouched>();

/**
 * A base's identity as it was checked whole or written, and when. Deno gives
 * a file's ctime to the second only: a change in place within that second,
 * mtime put back, keeps the identity, so a record vouches for a base only
 * when the base's ctime is a whole second before the record was made.
 */
interface Vouched {
  id: string;
  /** When (ms since the epoch) it was checked or written. */
  at: number;
}

/** Whether `v` vouches for a base whose state is `st` (identity `id`). */
function vouches(v: Vouched | undefined, st: Deno.FileInfo, id: string): boolean {
  if (v === undefined || v.id !== id || !st.ctime) return false;
  return Math.floor(st.ctime.getTime() / 1000) < Math.floor(v.at / 1000);
}

/** Most paths {@link CHECKED} remembers (the oldest forgotten first). */
const MAX_CHECKED = 4096;

/**
 * A base's mark: `<base>.checked` beside it holds the identity (inode,
 * mtime, ctime, size) the base had when `serve` last checked it whole or
 * wrote it, so a restart does not check 100,000 lines again before its first
 * answer. Any change to the base since — an edit in place, a copy, a
 * rename over it — changes its ctime or inode, and the mark no longer
 * matches: the base is checked whole again. (A mark is not a signature:
 * whoever can write the root can forge one, as they can change what the
 * root serves in other ways; it guards against tools and hands, not them.)
 */
function markOf(path: string): string {
  return `${path}.checked`;
}

/**
 * Whether a base's mark vouches for it as it is now (`st`, its `id`). Deno
 * gives a file's ctime to the second only, so a change in place within the
 * second the mark was written, mtime put back, would keep the identity:
 * the mark counts only when the base's ctime is a whole second before the
 * mark was written (a base written or checked just before its mark is
 * checked once more at the next start, and marked again).
 */
function markVouches(path: string, st: Deno.FileInfo, id: string): boolean {
  try {
    const mark = markOf(path);
    const m = Deno.lstatSync(mark);
    if (!m.isFile || m.size > 256 || !m.mtime) return false;
    return vouches({ id: Deno.readTextFileSync(mark), at: m.mtime.getTime() }, st, id);
  } catch {
    return false;
  }
}

/** Write a mark (best effort: without it the next start checks the base again). */
function writeMark(path: string, id: string): void {
  const mark = markOf(path);
  const temp = tempPathFor(mark);
  try {
    Deno.writeTextFileSync(temp, id, { createNew: true });
    Deno.renameSync(temp, mark);
  } catch {
    try {
      Deno.removeSync(temp);
    } catch { /* not made */ }
  } finally {
    releaseTemp(temp);
  }
}

function rememberChecked(path: string, v: Vouched): void {
  CHECKED.delete(path);
  CHECKED.set(path, v);
  if (CHECKED.size > MAX_CHECKED) CHECKED.delete(CHECKED.keys().next().value!);
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
  overlay: Map<string, string>,
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
    const v = overlay.get(o)!;
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
  #check: TableCheck | undefined;
  /** The identity of the base last checked whole, or written by this table. */
  #trusted: string | undefined;
  /** Write no mark of a base checked whole. */
  #readOnly: boolean;

  /**
   * @param name the table's name
   * @param place the directory holding it, checked on disk on each call
   * @param where that directory's path under the registry's root (for messages)
   * @param check what its keys and values must be: a base that breaks it (or is not
   *   sorted) is refused whole before a key is looked up in it, an overlay file when read
   */
  constructor(
    name: string,
    place: () => Promise<string>,
    where: string,
    check?: TableCheck,
    readOnly = false,
  ) {
    this.name = name;
    this.#place = place;
    this.#where = where;
    this.#check = check;
    this.#readOnly = readOnly;
  }

  /** The refusal of a file of the table that is not what the table writes. */
  #corrupt(file: string, why: string): ServeError {
    return new ServeError(
      "UNKNOWN",
      `refused: '${this.#where}/${
        printable(file)
      }' under the registry's root is corrupt (${why}); ` +
        `stop serve and remove '${this.#where}' to have it made again from index.json ` +
        `(writes not yet in index.json are lost with it)`,
    );
  }

  /** A sorted-file error of the base as the refusal naming it; anything else as it is. */
  #baseError(e: unknown): unknown {
    return e instanceof SortedFileError ? this.#corrupt(`${this.name}.base`, e.message) : e;
  }

  /** Why a key and value cannot be in the table (a tombstone only where `removed` may be). */
  #problem(key: string, value: string | undefined, removed: boolean): string | undefined {
    const bad = this.#check?.key(key);
    if (bad !== undefined) return bad;
    if (value === undefined || (removed && value === TOMBSTONE)) return undefined;
    return this.#check?.value(key, value);
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
    // the overlay's names read synchronously (a thread hop per call costs more than the call)
    await this.#cache.run(async () => {
      const id = idOf(Deno.lstatSync(overlay));
      if (id === this.#id) return;
      const keys: string[] = [];
      const known = new Set(this.#keys);
      for (const e of Deno.readDirSync(overlay)) {
        const key = keyOf(e.name);
        if (key === undefined) continue;
        const file = `${this.name}/${e.name.slice(0, 200)}`;
        if (fileOf(key) !== e.name) throw this.#corrupt(file, "not a key's file name");
        const bad = this.#problem(key, undefined, true);
        if (bad !== undefined) throw this.#corrupt(file, bad);
        if (keys.length >= MAX_OVERLAY) {
          throw this.#corrupt(this.name, `more than ${MAX_OVERLAY} files`);
        }
        keys.push(key);
      }
      // a file this table did not write (found at start, or put there behind its back) is
      // checked now, bounded: a corrupt table refuses writes as well as reads, so nothing is
      // acknowledged that it could not export
      for (const key of keys) {
        if (!known.has(key)) await this.#read(`${overlay}/${fileOf(key)}`, key);
      }
      this.#keys = keys.sort();
      this.#id = id;
    });
  }

  /**
   * An overlay file's value (checked, at most {@link MAX_LINE} bytes), or
   * undefined when absent.
   */
  async #read(path: string, key: string): Promise<string | undefined> {
    const file = `${this.name}/${fileOf(key)}`;
    const st = await lstatOrUndefined(path);
    if (!st) return undefined;
    if (!st.isFile) throw refused(`${this.#where}/${file}`, st, "a regular file");
    let f: Deno.FsFile;
    try {
      f = await Deno.open(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined; // merged and removed meanwhile
      throw e;
    }
    let value: string;
    try {
      const buf = new Uint8Array(Math.min(st.size, MAX_LINE) + 1);
      let got = 0;
      while (got < buf.byteLength) {
        const n = await f.read(buf.subarray(got));
        if (n === null) break;
        got += n;
      }
      if (got > MAX_LINE) throw this.#corrupt(file, `longer than ${MAX_LINE} bytes`);
      value = new TextDecoder().decode(buf.subarray(0, got));
    } finally {
      f.close();
    }
    if (value.includes("\n")) throw this.#corrupt(file, "a value of more than one line");
    const bad = this.#problem(key, value, true);
    if (bad !== undefined) throw this.#corrupt(file, bad);
    return value;
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
    try {
      const now = f.statSync();
      const id = idOf(now);
      // a base this table did not write (or check) since it changed is checked whole, once
      if (this.#trusted !== id && !vouches(CHECKED.get(path), now, id)) {
        if (!markVouches(path, now, id)) {
          this.#validate(f, now.size);
          if (!this.#readOnly) writeMark(path, id);
        }
        rememberChecked(path, { id, at: Date.now() });
      }
      this.#trusted = id;
      if (this.#probes?.id !== id) this.#probes = new Probes(id);
      return { f, size: now.size, probes: this.#probes };
    } catch (e) {
      f.close();
      throw this.#baseError(e);
    }
  }

  /** Check a base whole: keys strictly in order, each key and value what the table holds. */
  #validate(f: Deno.FsFile, size: number): void {
    let last: string | undefined;
    for (const line of linesFrom(f, 0, size)) {
      if (last !== undefined && line.key <= last) {
        throw new SortedFileError(
          `the key at byte ${line.start}, '${printable(line.key.slice(0, 200))}', is not after '${
            printable(last.slice(0, 200))
          }'`,
        );
      }
      const bad = this.#problem(line.key, line.value, false);
      if (bad !== undefined) throw new SortedFileError(`the line at byte ${line.start}: ${bad}`);
      last = line.key;
    }
  }

  /** A key's value in the current base. */
  #baseGet(dir: string, key: string): string | undefined {
    const base = this.#openBase(dir);
    if (!base) return undefined;
    try {
      const line = lineAt(base.f, lowerBound(base.f, base.size, key, base.probes), base.size);
      return line?.key === key ? line.value : undefined;
    } catch (e) {
      throw this.#baseError(e);
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
    const { dir, overlay } = await this.#overlay();
    // a corrupt base refuses writes as it refuses reads: nothing is acknowledged that the
    // table could not serve or export
    this.#openBase(dir)?.f.close();
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
    } catch (e) {
      throw this.#baseError(e);
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
      // each overlay value (checked as it is read)
      const merged = new Map<string, string>();
      for (const key of keys) {
        const value = await this.#read(`${overlay}/${fileOf(key)}`, key);
        if (value !== undefined) merged.set(key, value);
      }
      const basePath = `${dir}/${this.name}.base`;
      const base = this.#openBase(dir);
      try {
        const lines = base ? linesFrom(base.f, 0, base.size) : undefined;
        await writeSortedFile(basePath, mergeLines(lines, merged));
      } catch (e) {
        throw this.#baseError(e);
      } finally {
        base?.f.close();
      }
      // merged from a checked base and checked values: no need to check it again
      const written = await lstatOrUndefined(basePath);
      if (written?.isFile) {
        this.#trusted = idOf(written);
        rememberChecked(basePath, { id: this.#trusted, at: Date.now() });
        writeMark(basePath, this.#trusted);
      }
      // the new base is durable: drop what it holds from the overlay, a batch per lock —
      // each file only while it still holds the value merged (a write since has replaced
      // it; its inode alone cannot tell, a file written twice since may have the same)
      const done = [...merged];
      for (let i = 0; i < done.length; i += 64) {
        const batch = done.slice(i, i + 64);
        await lock(async () => {
          const before = this.#id;
          const gone: string[] = [];
          for (const [key, value] of batch) {
            const path = `${overlay}/${fileOf(key)}`;
            const now = await this.#read(path, key).catch(() => undefined);
            if (now === value) {
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
