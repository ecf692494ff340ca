/**
 * The repositories of a served root, kept incrementally so that a
 * `GET /v2/_catalog` page costs the same with 10,000 repositories as with
 * one: `<root>/.ocipkg-catalog/` holds
 *
 * - `repos.base` and `repos/`: a {@link SortedTable} of repository names
 *   (sorted base file, plus one small file per name added since its last
 *   compaction), a page read from where `last` falls (a binary search);
 * - `format`: present once the table was built from a walk of the root;
 * - `clean`: written when `serve` stops cleanly and removed when it starts:
 *   the identity (`ino`, `mtime`, `ctime`, link count, size) of every
 *   directory the walk tracks — the root and each directory under it that
 *   is not a repository (`org/` of `org/app`), where a repository made,
 *   removed or renamed by hand shows as a changed entry.
 *
 * **When the table is trusted.** At start, the table is trusted when
 * `format` and `clean` are there and every tracked directory still has the
 * identity `clean` gives; otherwise (serve was killed, the root is new or
 * from before this index, skopeo/umoci or a hand wrote a repository while
 * `serve` was stopped) the first catalog page rebuilds it from a walk of the
 * root (names held in memory once, sorted, written whole). While `serve`
 * runs it adds each repository it makes (first blob upload, mount or
 * manifest PUT) and each one it first opens that the table lacks (made by
 * hand meanwhile), and updates the identities of the directories it changed.
 * Each page checks on disk the names it lists ({@link Catalog.page}): the
 * directories down to each name's parent must be real directories (a
 * symlink is refused); a tracked directory found changed by someone else
 * makes the page rebuild the table first; a tracked parent as recorded has
 * the entries `serve` saw, so its names are listed without a call each
 * (100 names of one namespace: two `lstat`s); under another parent (a
 * repository's directory) a name's own directory and `oci-layout` are
 * checked. What the identities cannot see: a repository made by hand inside
 * another repository's directory (a repository's own directory changes with
 * every export) while the table is trusted — listed once a request uses it —
 * and a change by hand in the very millisecond of one by `serve` in the same
 * directory (the times are compared to the millisecond). Every request to a
 * repository still checks its directories on disk (`storage.ts`).
 *
 * @module
 */
import { join } from "../util/path.ts";
import { Mutex } from "../util/concurrency.ts";
import { atomicWriteFile } from "../util/files.ts";
import { isRepositoryName } from "../oci/reference.ts";
import { ServeError } from "./errors.ts";
import { containedDir, lstatOrUndefined } from "./contained.ts";
import { SortedTable, type TableCheck } from "./sorted_table.ts";
import { linesFrom, syncDir, writeSortedFile } from "./sorted_file.ts";

/** The catalog's directory under the root (a dot name: never a repository's). */
export const CATALOG_DIR = ".ocipkg-catalog";
const FORMAT = "format";
const CLEAN = "clean";
const OCI_LAYOUT = "oci-layout";
/** The table is compacted (in the background) once this many names were added since. */
const COMPACT_AT = 1024;
/** A walk gives the event loop a turn after this many file system calls. */
const WALK_SLICE = 256;

/** A nested repository's components that would collide with its parent's layout. */
export const RESERVED_COMPONENTS: ReadonlySet<string> = new Set([
  "blobs",
  "index.json",
  "oci-layout",
]);

/**
 * Whether a string names a repository `serve` can hold: the spec's grammar,
 * no component after the first that a layout uses (`blobs`, `index.json`,
 * `oci-layout`).
 *
 * @param name a name
 * @returns true when it can be served
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isServedName } from "./catalog_index.ts";
 * assert.ok(isServedName("org/app"));
 * assert.ok(isServedName("blobs")); // at the top, not inside a layout
 * assert.ok(!isServedName("org/blobs"));
 * assert.ok(!isServedName("Org/App"));
 * ```
 */
export function isServedName(name: string): boolean {
  return isRepositoryName(name) &&
    !name.split("/").slice(1).some((c) => RESERVED_COMPONENTS.has(c));
}

/**
 * What the catalog's table may hold (its files may have been edited while
 * `serve` was stopped): served repository names, each with the value `{}`.
 */
const CATALOG_CHECK: TableCheck = {
  key: (k) => isServedName(k) ? undefined : "not a repository name",
  value: (_k, v) => v === "{}" ? undefined : "not the value '{}'",
};

/** A directory's identity: changes when an entry is made, removed or renamed in it. */
function idOf(st: Deno.FileInfo): string {
  return `${st.ino}:${st.mtime?.getTime()}:${st.ctime?.getTime()}:${st.nlink}:${st.size}`;
}

function lstatSyncOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    throw e;
  }
}

function rootGone(st: Deno.FileInfo | undefined): ServeError {
  return new ServeError(
    "UNKNOWN",
    st
      ? "refused: the registry's root is no longer a directory"
      : "refused: the registry's root directory is gone",
  );
}

/** What a walk of the root found. */
export interface Walked {
  /** The repositories, sorted. */
  names: string[];
  /** The tracked directories (`""` the root, else a path under it) and their identities. */
  tracked: Map<string, string>;
}

/**
 * Walk a root for its repositories: every real directory with a valid name
 * component (a layout's `blobs` and dot names skipped; a symlink never
 * followed), a repository where `oci-layout` is a regular file. Synchronous
 * calls, the event loop given a turn every few hundred.
 *
 * @param root the root (resolved)
 * @returns the names, sorted, and the tracked directories
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { walkRoot } from "./catalog_index.ts";
 * const root = await Deno.realPath(await Deno.makeTempDir());
 * for (const name of ["org/app", "org/app/sub", "top"]) {
 *   await Deno.mkdir(`${root}/${name}`, { recursive: true });
 *   await Deno.writeTextFile(`${root}/${name}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
 * }
 * await Deno.mkdir(`${root}/org/empty`);
 * await Deno.symlink(`${root}/org`, `${root}/link`); // not followed
 * const walked = await walkRoot(root);
 * assert.deepEqual(walked.names, ["org/app", "org/app/sub", "top"]);
 * assert.deepEqual([...walked.tracked.keys()].sort(), ["", "org", "org/empty"]);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function walkRoot(root: string): Promise<Walked> {
  const names: string[] = [];
  const tracked = new Map<string, string>();
  const top = lstatSyncOrUndefined(root);
  if (!top?.isDirectory) throw rootGone(top);
  tracked.set("", idOf(top));
  let calls = 0;
  const turn = async () => {
    if (++calls % WALK_SLICE === 0) await new Promise((r) => setTimeout(r, 0));
  };
  const visit = async (parts: string[], dir: string): Promise<void> => {
    const entries: string[] = [];
    try {
      for (const e of Deno.readDirSync(dir)) {
        if (e.isDirectory && !e.isSymlink) entries.push(e.name);
      }
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return;
      throw e;
    }
    await turn();
    for (const n of entries) {
      const name = parts.length ? `${parts.join("/")}/${n}` : n;
      if (!isServedName(name)) continue;
      const path = join(dir, n);
      const st = lstatSyncOrUndefined(path);
      if (!st?.isDirectory) continue; // swapped meanwhile
      if (lstatSyncOrUndefined(join(path, OCI_LAYOUT))?.isFile) names.push(name);
      else tracked.set(name, idOf(st));
      await turn();
      await visit([...parts, n], path);
    }
  };
  await visit([], root);
  names.sort();
  return { names, tracked };
}

/**
 * One page's checks on disk, each directory lstat-ed once: the directories
 * down to a name's parent must be real; a parent that is tracked and as
 * recorded has the entries `serve` last saw (the name, a real directory with
 * its `oci-layout`, made or walked then); under any other parent the name's
 * own directory and `oci-layout` are checked.
 */
class PageCheck {
  #root: string;
  #tracked: ReadonlyMap<string, string>;
  /** Directory → whether it is real, and whether it is tracked and as recorded. */
  #dirs = new Map<string, { real: boolean; unchanged: boolean }>();
  /** Tracked directories whose identity is not the one recorded. */
  readonly changed: string[] = [];

  constructor(root: string, tracked: ReadonlyMap<string, string>) {
    this.#root = root;
    this.#tracked = tracked;
  }

  /** A directory under the root (`""` the root), checked. */
  #dir(rel: string): { real: boolean; unchanged: boolean } {
    let known = this.#dirs.get(rel);
    if (known) return known;
    const st = lstatSyncOrUndefined(rel ? join(this.#root, rel) : this.#root);
    const real = !!st?.isDirectory;
    if (!rel && !real) throw rootGone(st);
    const want = this.#tracked.get(rel);
    const unchanged = real && want !== undefined && idOf(st!) === want;
    if (want !== undefined && !unchanged) this.changed.push(rel);
    this.#dirs.set(rel, known = { real, unchanged });
    return known;
  }

  /** Whether a name is a repository on disk now (see the class doc). */
  repository(name: string): boolean {
    if (!isServedName(name) || !this.#dir("").real) return false;
    let at = name.indexOf("/");
    let parent = "";
    while (at >= 0) {
      parent = name.slice(0, at);
      if (!this.#dir(parent).real) return false;
      at = name.indexOf("/", at + 1);
    }
    if (this.#dir(parent).unchanged) return true;
    if (!this.#dir(name).real) return false;
    return !!lstatSyncOrUndefined(join(this.#root, name, OCI_LAYOUT))?.isFile;
  }
}

/** One page of the catalog. */
export interface CatalogPage {
  /** The names, sorted. */
  names: string[];
  /** Whether more follow. */
  more: boolean;
}

/** The repositories of a served root (see the module doc). */
export class Catalog {
  #root: string;
  #readOnly: boolean;
  #table: SortedTable;
  /** Repository creations and rebuilds, one at a time. */
  #lock = new Mutex();
  /** The tracked directories and their identities as `serve` last saw or made them. */
  #tracked = new Map<string, string>();
  #trusted = false;
  #compaction: Promise<unknown> | undefined;

  private constructor(root: string, readOnly: boolean) {
    this.#root = root;
    this.#readOnly = readOnly;
    this.#table = new SortedTable(
      "repos",
      async () => {
        const dir = await containedDir(root, [CATALOG_DIR], false);
        if (!dir) throw new ServeError("UNKNOWN", `'${CATALOG_DIR}' is gone`);
        return dir;
      },
      CATALOG_DIR,
      CATALOG_CHECK,
      readOnly,
    );
  }

  /**
   * Open a root's catalog: trusted when `format` and `clean` are there and
   * every tracked directory is as `clean` says; `clean` then removed (a
   * crash leaves none). Under `readOnly` nothing is written: an untrusted
   * catalog is a walk of the root per page.
   *
   * @param root the root (resolved)
   * @param readOnly write nothing
   * @returns the catalog
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Catalog } from "./catalog_index.ts";
   * const root = await Deno.realPath(await Deno.makeTempDir());
   * await Deno.mkdir(`${root}/org/app`, { recursive: true });
   * await Deno.writeTextFile(`${root}/org/app/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
   * const catalog = await Catalog.open(root);
   * assert.equal(catalog.trusted, false); // never built: the first page walks the root
   * assert.deepEqual(await catalog.page(undefined, 10), { names: ["org/app"], more: false });
   * await catalog.close(); // a clean stop: the next start trusts it
   * const again = await Catalog.open(root);
   * assert.equal(again.trusted, true);
   * await again.close();
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  static async open(root: string, readOnly = false): Promise<Catalog> {
    const c = new Catalog(root, readOnly);
    const dir = await containedDir(root, [CATALOG_DIR], !readOnly);
    if (!dir) return c;
    c.#trusted = await c.#loadClean(dir);
    if (!readOnly) {
      await Deno.remove(join(dir, CLEAN)).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
      await syncDir(dir);
    }
    return c;
  }

  /** Whether the table is trusted as it is (else the next page rebuilds it, or walks under `readOnly`). */
  get trusted(): boolean {
    return this.#trusted;
  }

  /** Read `clean` (streamed) and compare each tracked directory with the disk. */
  async #loadClean(dir: string): Promise<boolean> {
    for (const f of [FORMAT, CLEAN]) {
      if (!(await lstatOrUndefined(join(dir, f)))?.isFile) return false;
    }
    const tracked = new Map<string, string>();
    let f: Deno.FsFile;
    try {
      f = await Deno.open(join(dir, CLEAN));
    } catch {
      return false;
    }
    try {
      const { size } = await f.stat();
      for (const line of linesFrom(f, 0, size)) {
        // "/" the root, "/org" a directory under it
        const rel = line.key.slice(1);
        if (!line.key.startsWith("/") || (rel && !isServedName(rel))) return false;
        const st = lstatSyncOrUndefined(rel ? join(this.#root, rel) : this.#root);
        if (!st?.isDirectory || JSON.stringify(idOf(st)) !== line.value) return false;
        tracked.set(rel, idOf(st));
      }
    } catch {
      return false; // damaged: rebuilt
    } finally {
      f.close();
    }
    if (!tracked.has("")) return false;
    this.#tracked = tracked;
    return true;
  }

  /** Rebuild the table unless it is trusted (after a compaction in flight: its base would replace ours). */
  async #rebuildWhenUntrusted(): Promise<void> {
    for (;;) {
      await this.#compaction;
      const done = await this.#lock.run(async () => {
        if (this.#trusted) return true;
        if (this.#compaction) return false; // started meanwhile (it needs the lock to end)
        await this.#rebuild();
        return true;
      });
      if (done) return;
    }
  }

  /** Rebuild the table from a walk (the caller holds the lock; no compaction runs). */
  async #rebuild(): Promise<void> {
    const walked = await walkRoot(this.#root);
    const dir = (await containedDir(this.#root, [CATALOG_DIR], true))!;
    await writeSortedFile(join(dir, "repos.base"), walked.names.map((n) => [n, "{}"]));
    // what the overlay held is in the walk (or gone from disk)
    const overlay = (await containedDir(this.#root, [CATALOG_DIR, "repos"], true))!;
    for (const e of Deno.readDirSync(overlay)) {
      if (e.isFile) await Deno.remove(join(overlay, e.name)).catch(() => {});
    }
    await syncDir(overlay);
    if (!(await lstatOrUndefined(join(dir, FORMAT)))?.isFile) {
      await atomicWriteFile(
        join(dir, FORMAT),
        new TextEncoder().encode('{"format":"ocipkg serve catalog","version":1}'),
      );
    }
    this.#tracked = walked.tracked;
    this.#trusted = true;
  }

  /**
   * A page of repository names, sorted, each checked on disk now (see the
   * module doc); the table rebuilt first when it is not trusted, or when a
   * tracked directory the page passed changed behind `serve`'s back.
   *
   * @param after only names after this one
   * @param n most names
   * @returns the page
   */
  async page(after: string | undefined, n: number): Promise<CatalogPage> {
    if (n <= 0) return { names: [], more: false };
    for (let attempt = 0;; attempt++) {
      if (!this.#trusted) {
        if (this.#readOnly) return pageOf((await walkRoot(this.#root)).names, after, n);
        await this.#rebuildWhenUntrusted();
      }
      const check = new PageCheck(this.#root, this.#tracked);
      const names: string[] = [];
      let more = false;
      try {
        for await (const [name] of this.#table.scan({ after })) {
          if (!check.repository(name)) continue;
          if (names.length === n) {
            more = true;
            break;
          }
          names.push(name);
        }
      } catch (e) {
        // a table someone else edited (out of order, not names): it is only a cache of what
        // is on disk, so it is made again from a walk rather than refused
        if (!(e instanceof ServeError) || attempt > 0) throw e;
        if (this.#readOnly) return pageOf((await walkRoot(this.#root)).names, after, n);
        this.#trusted = false;
        continue;
      }
      if (!check.changed.length || attempt > 0) return { names, more };
      // a creation in flight updates what it changed under the lock: changed by someone else?
      await this.#lock.run(() => {
        for (const rel of check.changed) {
          const want = this.#tracked.get(rel);
          const st = lstatSyncOrUndefined(rel ? join(this.#root, rel) : this.#root);
          if (want !== undefined && (!st || idOf(st) !== want)) this.#trusted = false;
        }
        return Promise.resolve();
      });
      if (this.#trusted) return { names, more };
    }
  }

  /**
   * Make a repository (`make`, run under the catalog's lock) and add it:
   * the tracked directories on its way are checked to be as last seen
   * before (else the table is rebuilt at the next page) and recorded as
   * they are right after its directory is made (`make` calls `made` then;
   * after a failure, as the clean-up left them).
   *
   * @param name the repository
   * @param make what makes its directories and files
   * @returns what `make` returns
   */
  creating<T>(name: string, make: (made: () => void) => Promise<T>): Promise<T> {
    return this.#lock.run(async () => {
      const ways = [""];
      for (let at = name.indexOf("/"); at >= 0; at = name.indexOf("/", at + 1)) {
        ways.push(name.slice(0, at));
      }
      for (const rel of ways) {
        const want = this.#tracked.get(rel);
        if (want === undefined) continue;
        const st = lstatSyncOrUndefined(rel ? join(this.#root, rel) : this.#root);
        if (!st || idOf(st) !== want) this.#trusted = false; // changed by someone else
      }
      // the directories on the way that are not repositories, as this creation left them
      let recorded = false;
      const record = () => {
        recorded = true;
        for (const rel of ways) {
          const path = rel ? join(this.#root, rel) : this.#root;
          const st = lstatSyncOrUndefined(path);
          if (!st?.isDirectory) this.#tracked.delete(rel);
          else if (rel && lstatSyncOrUndefined(join(path, OCI_LAYOUT))?.isFile) {
            this.#tracked.delete(rel);
          } else this.#tracked.set(rel, idOf(st));
        }
        this.#tracked.delete(name);
      };
      let ok = false;
      try {
        const result = await make(record);
        ok = true;
        return result;
      } finally {
        if (!ok || !recorded) record();
        if (ok) await this.#add(name);
      }
    });
  }

  /**
   * A repository opened that the table may lack (made by hand while `serve`
   * runs): added when it does.
   * @param name the repository
   */
  async known(name: string): Promise<void> {
    if (this.#readOnly || !this.#trusted) return;
    // under a tracked directory as recorded, every repository is one serve saw: listed
    const slash = name.lastIndexOf("/");
    const parent = slash < 0 ? "" : name.slice(0, slash);
    const want = this.#tracked.get(parent);
    if (want !== undefined) {
      const st = lstatSyncOrUndefined(parent ? join(this.#root, parent) : this.#root);
      if (st && idOf(st) === want) return;
    }
    try {
      if ((await this.#table.get(name)) !== undefined) return;
    } catch {
      this.#trusted = false;
      return;
    }
    await this.#lock.run(() => this.#add(name));
  }

  /** Add a name (the caller holds the lock); a failure leaves the table to be rebuilt. */
  async #add(name: string): Promise<void> {
    if (this.#readOnly) return;
    try {
      if ((await this.#table.get(name)) === undefined) await this.#table.put(name, "{}");
      if (!this.#compaction && (await this.#table.overlaySize()) >= COMPACT_AT) {
        this.#compaction = this.#table.compact((fn) => this.#lock.run(fn))
          .catch(() => {
            this.#trusted = false;
          })
          .finally(() => this.#compaction = undefined);
      }
    } catch {
      this.#trusted = false; // the next page rebuilds it (and says what is wrong, if it still is)
    }
  }

  /**
   * Stop: the table compacted, and, when it is trusted, `clean` written (the
   * tracked directories as `serve` last saw them), so that the next start
   * trusts it unless the root changed meanwhile. Never throws: when this
   * cannot be done (the root or the catalog's directory gone or swapped),
   * no marker is written and the next start rebuilds the table.
   */
  async close(): Promise<void> {
    await this.#compaction;
    if (this.#readOnly || !this.#trusted) return;
    await this.#lock.run(async () => {
      const dir = await containedDir(this.#root, [CATALOG_DIR], false);
      if (!dir || !this.#trusted) return;
      if ((await this.#table.overlaySize()) > 0) await this.#table.compact((fn) => fn());
      const lines = [...this.#tracked]
        .map(([rel, id]): [string, string] => [`/${rel}`, JSON.stringify(id)])
        .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
      await writeSortedFile(join(dir, CLEAN), lines);
    }).catch(() => {});
  }
}

/** A page of a sorted array of names. */
function pageOf(all: string[], after: string | undefined, n: number): CatalogPage {
  let i = 0;
  if (after !== undefined) { while (i < all.length && all[i]! <= after) i++; }
  return { names: all.slice(i, i + n), more: i + n < all.length };
}
