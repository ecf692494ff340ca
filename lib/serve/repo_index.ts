/**
 * A served repository's private index, `<repo>/.ocipkg-index/`: what its
 * `index.json` would say, kept so that a tag PUT, a manifest GET by tag and a
 * tag page cost the same with 100,000 tags as with one (three
 * {@link SortedTable}s: a sorted base file each, plus one small file per key
 * written since the last compaction):
 *
 * | table       | key                      | value                                            |
 * | ----------- | ------------------------ | ------------------------------------------------ |
 * | `tags`      | tag                      | the descriptor the tag names                     |
 * | `manifests` | digest                   | every manifest stored, as listed untagged        |
 * | `referrers` | `<subject> <digest>`     | the referrer's descriptor (type, annotations)    |
 *
 * `format` (written last when the index is made) marks it complete;
 * `foreign.json` keeps the entries whose ref name is not a tag (e.g.
 * `example.com/app:1`, as other tools write them), exported as they are;
 * `exported.json` and `exported-previous.json` are hard links to the last
 * two `index.json` files written from it ({@link RepoIndex.export}), by which
 * an `index.json` another tool wrote is told from ours and merged in
 * ({@link RepoIndex.merge}: a three-way merge against our last export).
 *
 * The directory's name cannot be a repository's name component (those never
 * start with a dot), so it never collides with a nested repository.
 *
 * @module
 */
import { join } from "../util/path.ts";
import { releaseTemp, tempPathFor } from "../util/temp.ts";
import { atomicWriteFile, writeAll } from "../util/files.ts";
import { type Descriptor, validateDescriptor } from "../oci/manifest.ts";
import { isDigest } from "../oci/digest.ts";
import { isTag } from "../oci/reference.ts";
import { printable } from "../util/text.ts";
import { ANNOTATION_REF_NAME, OCI_INDEX } from "../oci/media_types.ts";
import {
  parseDescriptorList,
  type ParsedIndex,
  parseIndexJson,
  readIndexJson,
  tagOf,
  untagged,
} from "./legacy_index.ts";
import { SortedTable, type TableCheck } from "./sorted_table.ts";
import { lstatOrUndefined, refused } from "./contained.ts";
import { syncDir, writeSortedFile } from "./sorted_file.ts";

/** The private index's directory in a repository. */
export const INDEX_DIR = ".ocipkg-index";
/** Its marker file: present once the index is complete. */
export const FORMAT_FILE = "format";
const EXPORTED = "exported.json";
/** Entries whose ref name is not a tag (written by other tools), kept as they are. */
const FOREIGN = "foreign.json";
const EXPORTED_PREVIOUS = "exported-previous.json";

/** One page of tags. */
export interface TagPage {
  /** The tags, sorted. */
  tags: string[];
  /** Whether more follow. */
  more: boolean;
}

/** What the index needs to know of a stored manifest (from its bytes). */
export interface StoredManifest {
  /** Its subject's digest. */
  subject?: string;
  /** Its artifact type (or an image manifest's config media type). */
  artifactType?: string;
  /** Its annotations. */
  annotations?: Record<string, string>;
}

/**
 * A descriptor as one line of JSON, its keys in a fixed order (so that two
 * spellings of one descriptor compare equal).
 *
 * @param d a descriptor
 * @returns its JSON
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { descriptorJson } from "./repo_index.ts";
 * const digest = "sha256:" + "a".repeat(64);
 * assert.equal(
 *   descriptorJson({ size: 2, digest, mediaType: "m", annotations: { b: "2", a: "1" } }),
 *   `{"mediaType":"m","digest":"${digest}","size":2,"annotations":{"a":"1","b":"2"}}`,
 * );
 * ```
 */
export function descriptorJson(d: Descriptor): string {
  const { mediaType, digest, size, artifactType, platform, urls, data, annotations } = d;
  const sorted = annotations
    ? Object.fromEntries(Object.entries(annotations).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
    : undefined;
  return JSON.stringify({
    mediaType,
    digest,
    size,
    ...(artifactType !== undefined ? { artifactType } : {}),
    ...(platform !== undefined ? { platform } : {}),
    ...(urls !== undefined ? { urls } : {}),
    ...(data !== undefined ? { data } : {}),
    ...(sorted !== undefined ? { annotations: sorted } : {}),
  });
}

/** A referrer's key in the `referrers` table. */
function referrerKey(subject: string, digest: string): string {
  return `${subject} ${digest}`;
}

/** Why a table's value is not a descriptor (of `digest`, when given). */
function descriptorProblem(value: string, digest?: string): string | undefined {
  let v: unknown;
  try {
    v = JSON.parse(value);
    validateDescriptor(v, "its value");
  } catch (e) {
    return e instanceof SyntaxError ? "its value is not JSON" : printable((e as Error).message);
  }
  if (digest !== undefined && (v as Descriptor).digest !== digest) {
    return "its value names another digest than its key";
  }
  return undefined;
}

const shownKey = (key: string) => `'${printable(key.slice(0, 200))}'`;

/** The `tags` table: tag → descriptor. */
const TAGS: TableCheck = {
  key: (k) => isTag(k) ? undefined : `${shownKey(k)} is not a tag`,
  value: (_k, v) => descriptorProblem(v),
};
/** The `manifests` table: digest → its descriptor. */
const MANIFESTS: TableCheck = {
  key: (k) => isDigest(k) ? undefined : `${shownKey(k)} is not a digest`,
  value: (k, v) => descriptorProblem(v, k),
};
/** The `referrers` table: `<subject> <digest>` → the referrer's descriptor. */
const REFERRERS: TableCheck = {
  key: (k) => {
    const parts = k.split(" ");
    return parts.length === 2 && parts.every(isDigest)
      ? undefined
      : `${shownKey(k)} is not '<subject digest> <digest>'`;
  },
  value: (k, v) => descriptorProblem(v, k.split(" ")[1]),
};

/** A writer of text in 1 MiB writes. */
class TextSink {
  #f: Deno.FsFile;
  #text = "";
  constructor(f: Deno.FsFile) {
    this.#f = f;
  }
  async add(s: string): Promise<void> {
    this.#text += s;
    if (this.#text.length >= 1 << 20) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.#text) await writeAll(this.#f, new TextEncoder().encode(this.#text));
    this.#text = "";
  }
}

/** A repository's private index (see the module doc). */
export class RepoIndex {
  /** tag → descriptor. */
  readonly tags: SortedTable;
  /** digest → the manifest's untagged entry. */
  readonly manifests: SortedTable;
  /** `<subject> <digest>` → the referrer's descriptor. */
  readonly referrers: SortedTable;
  #place: () => Promise<string>;
  #where: string;

  /**
   * @param place the index's directory, checked on disk on each call
   * @param where its path under the registry's root (for messages)
   * @param readOnly write nothing, not even the marks of bases checked whole
   */
  constructor(place: () => Promise<string>, where: string, readOnly = false) {
    this.#place = place;
    this.#where = where;
    this.tags = new SortedTable("tags", place, where, TAGS, readOnly);
    this.manifests = new SortedTable("manifests", place, where, MANIFESTS, readOnly);
    this.referrers = new SortedTable("referrers", place, where, REFERRERS, readOnly);
  }

  /**
   * The descriptor a tag names.
   * @param tag the tag
   * @returns the descriptor
   */
  async tagged(tag: string): Promise<Descriptor | undefined> {
    const v = await this.tags.get(tag);
    return v === undefined ? undefined : JSON.parse(v);
  }

  /**
   * A stored manifest's entry.
   * @param digest its digest
   * @returns its entry
   */
  async entry(digest: string): Promise<Descriptor | undefined> {
    const v = await this.manifests.get(digest);
    return v === undefined ? undefined : JSON.parse(v);
  }

  /**
   * A page of tags, sorted.
   * @param after the tags after this one
   * @param n most tags
   * @returns the page
   */
  async tagPage(after: string | undefined, n: number): Promise<TagPage> {
    const tags: string[] = [];
    if (n <= 0) return { tags, more: false };
    for await (const [tag] of this.tags.scan({ after })) {
      if (tags.length === n) return { tags, more: true };
      tags.push(tag);
    }
    return { tags, more: false };
  }

  /**
   * The referrers of a subject, by digest.
   * @param subject the subject's digest
   * @param after only those after this digest
   * @yields each referrer's descriptor
   */
  async *referrersOf(subject: string, after?: string): AsyncGenerator<Descriptor> {
    const range = {
      prefix: `${subject} `,
      ...(after !== undefined ? { after: referrerKey(subject, after) } : {}),
    };
    for await (const [, v] of this.referrers.scan(range)) yield JSON.parse(v);
  }

  /**
   * Record a manifest stored (each write durable before this returns): its
   * entry (when new), its place among its subject's referrers, and the tag.
   * The caller holds the repository's write lock.
   * @param desc its descriptor (as the tag's entry lists it)
   * @param tag the tag it is pushed under, if any
   * @param stored what its bytes say
   */
  async record(desc: Descriptor, tag: string | undefined, stored: StoredManifest): Promise<void> {
    if ((await this.manifests.get(desc.digest)) === undefined) {
      await this.manifests.put(desc.digest, descriptorJson(desc));
    }
    if (stored.subject !== undefined) {
      const key = referrerKey(stored.subject, desc.digest);
      if ((await this.referrers.get(key)) === undefined) {
        await this.referrers.put(key, descriptorJson(referrerOf(desc, stored)));
      }
    }
    if (tag !== undefined) await this.tags.put(tag, descriptorJson(desc));
  }

  /**
   * Remove a tag (its manifest stays, untagged).
   * @param tag the tag
   * @returns whether it was there
   */
  async removeTag(tag: string): Promise<boolean> {
    if ((await this.tags.get(tag)) === undefined) return false;
    await this.tags.remove(tag);
    return true;
  }

  /**
   * Remove a manifest: its entry, every tag naming it (a scan of all tags),
   * its place among its subject's referrers.
   * @param digest its digest
   * @param subject its subject, when it has one
   */
  async removeManifest(digest: string, subject: string | undefined): Promise<void> {
    const tags: string[] = [];
    for await (const [tag, v] of this.tags.scan({})) {
      if ((JSON.parse(v) as Descriptor).digest === digest) tags.push(tag);
    }
    for (const t of tags) await this.tags.remove(t);
    if ((await this.manifests.get(digest)) !== undefined) await this.manifests.remove(digest);
    if (subject !== undefined) {
      const key = referrerKey(subject, digest);
      if ((await this.referrers.get(key)) !== undefined) await this.referrers.remove(key);
    }
  }

  /**
   * Keys written since the last compaction, all tables together.
   * @returns the count
   */
  async pending(): Promise<number> {
    let n = 0;
    for (const t of [this.tags, this.manifests, this.referrers]) n += await t.overlaySize();
    return n;
  }

  /**
   * Whether any table has a key written since the last compaction (so
   * `index.json` may trail): the index's directory checked once, each
   * overlay read up to its first name.
   * @returns true when one has
   */
  async hasPending(): Promise<boolean> {
    const dir = await this.#place();
    for (const t of [this.tags, this.manifests, this.referrers]) {
      const overlay = join(dir, t.name);
      const st = await lstatOrUndefined(overlay);
      if (!st) continue;
      if (!st.isDirectory) throw refused(`${this.#where}/${t.name}`, st, "a directory");
      for (const e of Deno.readDirSync(overlay)) if (!e.name.startsWith(".")) return true;
    }
    return false;
  }

  /**
   * Whether an `index.json` (by inode) is one this index wrote.
   * @param ino the inode of `index.json`
   * @returns true for our last two exports
   */
  async isExport(ino: number | null): Promise<boolean> {
    if (ino === null) return false;
    const dir = await this.#place();
    for (const f of [EXPORTED, EXPORTED_PREVIOUS]) {
      const st = await lstatOrUndefined(join(dir, f)).catch(() => undefined);
      if (st?.isFile && st.ino === ino) return true;
    }
    return false;
  }

  /** The entries whose ref name is not a tag (an `index.json`'s entries, bounded and checked). */
  async #foreign(): Promise<Descriptor[]> {
    const path = join(await this.#place(), FOREIGN);
    const st = await lstatOrUndefined(path);
    if (!st) return [];
    if (!st.isFile) throw refused(`${this.#where}/${FOREIGN}`, st, "a regular file");
    const bytes = await readIndexJson(path, `${this.#where}/${FOREIGN}`);
    return bytes ? parseDescriptorList(bytes, `${this.#where}/${FOREIGN}`) : [];
  }

  /** Remember `index.json` (just written, or merged in) as our last export. */
  async #adopt(dir: string, file: string): Promise<void> {
    await Deno.rename(join(dir, EXPORTED), join(dir, EXPORTED_PREVIOUS)).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
    await Deno.link(file, join(dir, EXPORTED));
  }

  /**
   * Write the repository's `index.json` from the index: compact each table,
   * then stream every tag's entry (its ref name annotated) and every
   * untagged manifest's into a temp file, `fdatasync` it, remember it as our
   * export and rename it over `index.json`. Writes go on beside it (a write
   * made meanwhile may be in it or not: the repository stays to be exported).
   * @param repoDir the repository's directory
   * @param lock runs a function as the repository's one writer
   * @param annotations the index's own annotations
   */
  async export(
    repoDir: string,
    lock: <T>(fn: () => Promise<T>) => Promise<T>,
    annotations?: Record<string, string>,
  ): Promise<void> {
    for (const t of [this.tags, this.manifests, this.referrers]) await t.compact(lock);
    const indexPath = join(repoDir, "index.json");
    const tmp = tempPathFor(indexPath);
    try {
      const f = await Deno.open(tmp, { write: true, createNew: true });
      try {
        const out = new TextSink(f);
        await out.add(`{"schemaVersion":2,"mediaType":"${OCI_INDEX}","manifests":[`);
        let first = true;
        const tagged = new Set<string>();
        for await (const [tag, v] of this.tags.scan({})) {
          const d = JSON.parse(v) as Descriptor;
          tagged.add(d.digest);
          const entry = { ...d, annotations: { ...d.annotations, [ANNOTATION_REF_NAME]: tag } };
          await out.add((first ? "" : ",") + JSON.stringify(entry));
          first = false;
        }
        for await (const [digest, v] of this.manifests.scan({})) {
          if (tagged.has(digest)) continue;
          await out.add((first ? "" : ",") + v);
          first = false;
        }
        for (const d of await this.#foreign()) {
          await out.add((first ? "" : ",") + JSON.stringify(d));
          first = false;
        }
        await out.add(annotations ? `],"annotations":${JSON.stringify(annotations)}}` : "]}");
        await out.flush();
        await f.syncData();
      } finally {
        f.close();
      }
      await lock(async () => {
        const dir = await this.#place();
        // an export a crash cut off left its temp file: no other export is in flight
        for await (const e of Deno.readDir(repoDir)) {
          const stale = join(repoDir, e.name);
          if (e.isFile && e.name.startsWith(".index.json.tmp-") && stale !== tmp) {
            await Deno.remove(stale).catch(() => {});
          }
        }
        await this.#adopt(dir, tmp);
        await Deno.rename(tmp, indexPath);
        await syncDir(repoDir);
        await syncDir(dir);
      });
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      throw e;
    } finally {
      releaseTemp(tmp);
    }
  }

  /**
   * Merge in an `index.json` another tool wrote (the caller holds the write
   * lock): against our last export, each tag it added, moved or removed is
   * applied unless we changed that tag since (ours is newer); each manifest
   * it lists that we lack is recorded. Then it is taken as our last export.
   * @param repoDir the repository's directory
   * @param read what a stored manifest's bytes say (undefined when not stored)
   */
  async merge(
    repoDir: string,
    read: (digest: string, mediaType: string) => Promise<StoredManifest | undefined>,
  ): Promise<void> {
    const dir = await this.#place();
    const indexPath = join(repoDir, "index.json");
    const name = this.#where.slice(0, -INDEX_DIR.length - 1); // the repository, as clients name it
    const theirs = parseIndexJson(await indexBytes(indexPath, name), name);
    let base: ParsedIndex = { manifests: [] };
    if ((await lstatOrUndefined(join(dir, EXPORTED)))?.isFile) {
      try {
        base = parseIndexJson(await indexBytes(join(dir, EXPORTED), name), name);
      } catch { /* unreadable: every tag of theirs is new */ }
    }
    const tagMap = (p: ParsedIndex) => {
      const m = new Map<string, string>();
      for (const d of p.manifests) {
        const t = tagOf(d);
        if (t !== undefined) m.set(t, descriptorJson(untagged(d)));
      }
      return m;
    };
    const t = tagMap(theirs);
    const b = tagMap(base);
    for (const tag of new Set([...t.keys(), ...b.keys()])) {
      const tv = t.get(tag);
      const bv = b.get(tag);
      if (tv === bv) continue;
      if ((await this.tags.get(tag)) !== bv) continue; // changed here since: ours stands
      if (tv === undefined) await this.tags.remove(tag);
      else await this.tags.put(tag, tv);
    }
    const seen = new Set<string>();
    for (const d of theirs.manifests) {
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      if ((await this.manifests.get(d.digest)) !== undefined) continue;
      const stored = await read(d.digest, d.mediaType);
      if (!stored) continue; // not in the repository: not a manifest to serve
      await this.record(untagged(d), undefined, stored);
    }
    await writeForeign(dir, theirs);
    await this.#adopt(dir, indexPath);
    await syncDir(dir);
  }

  /**
   * Make the private index of a repository from its `index.json` (a plain
   * layout, or a new repository): each table's base written whole, then
   * `format`. A move cut off (no `format`) is done again from the start.
   * @param dir the index's directory (made by the caller)
   * @param repoDir the repository's directory
   * @param read what a stored manifest's bytes say (undefined when not stored)
   * @param name the repository's name, for messages (its path by default)
   * @returns the index's own annotations, from `index.json`
   */
  static async build(
    dir: string,
    repoDir: string,
    read: (digest: string, mediaType: string) => Promise<StoredManifest | undefined>,
    name: string = repoDir,
  ): Promise<Record<string, string> | undefined> {
    const indexPath = join(repoDir, "index.json");
    const parsed = parseIndexJson(await indexBytes(indexPath, name), name);
    const tags = new Map<string, string>();
    const manifests = new Map<string, string>();
    const referrers = new Map<string, string>();
    for (const d of parsed.manifests) {
      const tag = tagOf(d);
      if (tag !== undefined) tags.set(tag, descriptorJson(untagged(d)));
      if (manifests.has(d.digest)) continue;
      manifests.set(d.digest, descriptorJson(untagged(d)));
      const stored = await read(d.digest, d.mediaType);
      if (stored?.subject !== undefined) {
        referrers.set(
          referrerKey(stored.subject, d.digest),
          descriptorJson(referrerOf(untagged(d), stored)),
        );
      }
    }
    const sorted = (m: Map<string, string>) =>
      [...m].sort(([a], [c]) => a < c ? -1 : a > c ? 1 : 0);
    for (
      const [name, m] of [["tags", tags], ["manifests", manifests], [
        "referrers",
        referrers,
      ]] as const
    ) {
      // an overlay left by a move cut off before: emptied
      await Deno.remove(join(dir, name), { recursive: true }).catch(() => {});
      await Deno.mkdir(join(dir, name));
      await writeSortedFile(join(dir, `${name}.base`), sorted(m));
    }
    await writeForeign(dir, parsed);
    await Deno.remove(join(dir, EXPORTED)).catch(() => {});
    await Deno.link(indexPath, join(dir, EXPORTED));
    await syncDir(dir);
    await atomicWriteFile(
      join(dir, FORMAT_FILE),
      new TextEncoder().encode(JSON.stringify({
        format: "ocipkg serve index",
        version: 1,
        ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
      })),
    );
    await syncDir(dir);
    return parsed.annotations;
  }
}

/** An `index.json` read whole, bounded (see {@link readIndexJson}); a missing one is an error. */
async function indexBytes(path: string, where: string): Promise<Uint8Array> {
  const file = path.slice(path.lastIndexOf("/") + 1);
  const bytes = await readIndexJson(path, `${where}/${file}`);
  if (!bytes) throw new Deno.errors.NotFound(`${where}: no ${file}`);
  return bytes;
}

/** Keep an index's entries whose ref name is not a tag (none: no file). */
async function writeForeign(dir: string, parsed: ParsedIndex): Promise<void> {
  const foreign = parsed.manifests.filter((d) =>
    d.annotations?.[ANNOTATION_REF_NAME] !== undefined && tagOf(d) === undefined
  );
  if (foreign.length) {
    await atomicWriteFile(join(dir, FOREIGN), new TextEncoder().encode(JSON.stringify(foreign)));
  } else {
    await Deno.remove(join(dir, FOREIGN)).catch(() => {});
  }
}

/** A referrer's descriptor, as the referrers API lists it. */
function referrerOf(desc: Descriptor, stored: StoredManifest): Descriptor {
  return {
    mediaType: desc.mediaType,
    digest: desc.digest,
    size: desc.size,
    ...(stored.artifactType !== undefined ? { artifactType: stored.artifactType } : {}),
    ...(stored.annotations !== undefined ? { annotations: stored.annotations } : {}),
  };
}
