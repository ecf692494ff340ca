/**
 * A repository's plain `index.json` as `serve` reads it: the whole file,
 * parsed without the 4 MiB manifest cap (a repository of 100,000 tags has a
 * 27 MB index), for repositories not yet moved to the private index
 * (`repo_index.ts`: a plain root is served as it is until its first write,
 * or for ever under `--read-only`), and for that move and for merging in an
 * `index.json` another tool wrote.
 *
 * @module
 */
import { type Descriptor, validateDescriptor } from "../oci/manifest.ts";
import { ANNOTATION_REF_NAME } from "../oci/media_types.ts";
import { isTag } from "../oci/reference.ts";
import { readSmallFile } from "../util/files.ts";
import { MAX_INDEX_FILE } from "../transport/layout/index_file.ts";

/**
 * Read an `index.json` (or the private index's list of entries) whole, at
 * most {@link MAX_INDEX_FILE} bytes (64 MiB, some 200,000 tags): a larger
 * one, a fifo or a device is refused, so a hostile root cannot fill memory.
 *
 * @param path the file
 * @param what names it in errors
 * @returns its bytes, or undefined when it is missing
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readIndexJson } from "./legacy_index.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/index.json`, "{}");
 * assert.equal((await readIndexJson(`${dir}/index.json`, "index.json"))?.byteLength, 2);
 * assert.equal(await readIndexJson(`${dir}/missing.json`, "missing"), undefined);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readIndexJson(path: string, what: string): Promise<Uint8Array | undefined> {
  return (await readSmallFile(path, what, MAX_INDEX_FILE))?.bytes;
}

/**
 * A list of descriptors (JSON), each checked.
 *
 * @param v the parsed list
 * @param where names it in errors
 * @returns the descriptors
 * @throws {Error} naming the first entry that is not a descriptor
 */
function descriptors(v: unknown, where: string): Descriptor[] {
  if (!Array.isArray(v)) throw new Error(`${where} is not a list of descriptors`);
  for (const [i, m] of v.entries()) {
    try {
      validateDescriptor(m, `entry ${i}`);
    } catch (e) {
      throw new Error(`${where}: entry ${i} is not a descriptor (${(e as Error).message})`);
    }
  }
  return v as Descriptor[];
}

/**
 * Parse a JSON list of descriptors (the private index's `foreign.json`).
 *
 * @param bytes its content
 * @param where names it in errors
 * @returns the descriptors
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDescriptorList } from "./legacy_index.ts";
 * const d = { mediaType: "m/x", digest: "sha256:" + "a".repeat(64), size: 3 };
 * assert.deepEqual(parseDescriptorList(new TextEncoder().encode(JSON.stringify([d])), "f"), [d]);
 * assert.throws(() => parseDescriptorList(new TextEncoder().encode("[1]"), "f"), /entry 0/);
 * ```
 */
export function parseDescriptorList(bytes: Uint8Array, where: string): Descriptor[] {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new Error(`${where} is not JSON: ${(e as Error).message}`);
  }
  return descriptors(v, where);
}

/** What an `index.json` holds. */
export interface ParsedIndex {
  /** Its entries, in order (each checked to be a descriptor). */
  manifests: Descriptor[];
  /** Its own annotations. */
  annotations?: Record<string, string>;
}

/**
 * Parse an `index.json` (any size): its entries must be descriptors.
 *
 * @param bytes its content
 * @param where names it in errors
 * @returns the entries and annotations
 * @throws {Error} when it is not an image index
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIndexJson } from "./legacy_index.ts";
 * const d = { mediaType: "m/x", digest: "sha256:" + "a".repeat(64), size: 3 };
 * const bytes = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, manifests: [d] }));
 * assert.deepEqual(parseIndexJson(bytes, "x").manifests, [d]);
 * assert.throws(() => parseIndexJson(new TextEncoder().encode("[]"), "x"), /not an image index/);
 * ```
 */
export function parseIndexJson(bytes: Uint8Array, where: string): ParsedIndex {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new Error(`${where}: index.json is not JSON: ${(e as Error).message}`);
  }
  const doc = v as { manifests?: unknown; annotations?: unknown } | null;
  if (
    typeof doc !== "object" || doc === null || Array.isArray(doc) || !Array.isArray(doc.manifests)
  ) {
    throw new Error(`${where}: index.json is not an image index`);
  }
  descriptors(doc.manifests, `${where}: index.json`);
  const annotations = validAnnotations(doc.annotations);
  return { manifests: doc.manifests as Descriptor[], ...(annotations ? { annotations } : {}) };
}

/**
 * An index's own annotations when they are a map of strings to strings
 * (anything else, from a file someone else wrote, is dropped).
 *
 * @param v the parsed value
 * @returns the annotations, or undefined
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validAnnotations } from "./legacy_index.ts";
 * assert.deepEqual(validAnnotations({ a: "1" }), { a: "1" });
 * assert.equal(validAnnotations({ a: 1 }), undefined);
 * assert.equal(validAnnotations([]), undefined);
 * ```
 */
export function validAnnotations(v: unknown): Record<string, string> | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  if (!Object.values(v).every((x) => typeof x === "string")) return undefined;
  return v as Record<string, string>;
}

/**
 * An entry's tag: its ref name when that is a tag (a ref name such as
 * `example.com/foo:1`, written by other tools, is not).
 *
 * @param d an index entry
 * @returns the tag, or undefined
 */
export function tagOf(d: Descriptor): string | undefined {
  const name = d.annotations?.[ANNOTATION_REF_NAME];
  return name !== undefined && isTag(name) ? name : undefined;
}

/**
 * An entry without its ref name (the entry of the manifest itself, untagged).
 *
 * @param d an index entry
 * @returns the descriptor without the ref name annotation
 */
export function untagged(d: Descriptor): Descriptor {
  if (d.annotations?.[ANNOTATION_REF_NAME] === undefined) return d;
  const { annotations, ...plain } = d;
  const { [ANNOTATION_REF_NAME]: _, ...rest } = annotations ?? {};
  return Object.keys(rest).length ? { ...plain, annotations: rest } : plain;
}

/** A plain `index.json`, read whole (see the module doc). */
export class LegacyIndex {
  /** The version of `index.json` this was read from. */
  readonly id: string;
  #entries: Descriptor[];
  #tags: string[] | undefined;

  /**
   * @param id the version of `index.json` read
   * @param parsed its content
   */
  constructor(id: string, parsed: ParsedIndex) {
    this.id = id;
    this.#entries = parsed.manifests;
  }

  /**
   * The entry a tag names (the last one, as a client pushing twice expects).
   * @param tag the tag
   * @returns the entry
   */
  tagged(tag: string): Descriptor | undefined {
    return this.#entries.findLast((d) => d.annotations?.[ANNOTATION_REF_NAME] === tag);
  }

  /**
   * An entry of a digest.
   * @param digest the digest
   * @returns the entry
   */
  entry(digest: string): Descriptor | undefined {
    return this.#entries.findLast((d) => d.digest === digest);
  }

  /**
   * The tags, sorted.
   * @returns the tags
   */
  tags(): string[] {
    if (!this.#tags) {
      const set = new Set<string>();
      for (const d of this.#entries) {
        const t = tagOf(d);
        if (t !== undefined) set.add(t);
      }
      this.#tags = [...set].sort();
    }
    return this.#tags;
  }

  /**
   * The distinct digests listed, sorted.
   * @returns the digests
   */
  digests(): string[] {
    return [...new Set(this.#entries.map((d) => d.digest))].sort();
  }
}
