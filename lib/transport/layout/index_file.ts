/**
 * The `index.json` of an OCI image layout: entries, lookup by ref name or
 * digest, tagging. Shared by oci-dir and oci-archive.
 *
 * @module
 */
import { isDigest, parseDigest } from "../../oci/digest.ts";
import { join } from "../../util/path.ts";
import { FormatError, NotFoundError, UsageError } from "../../util/errors.ts";
import {
  type Descriptor,
  encodeJson,
  type Index,
  parseManifestDocument,
} from "../../oci/manifest.ts";
import { ANNOTATION_REF_NAME, OCI_INDEX } from "../../oci/media_types.ts";
import { ImageName } from "../../oci/reference.ts";

/**
 * Where a layout keeps a blob.
 *
 * @param layout the layout's directory
 * @param digest the blob's digest
 * @returns `<layout>/blobs/<alg>/<hex>`
 * @throws {FormatError} when `digest` is not a digest
 */
export function blobPathIn(layout: string, digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return join(layout, "blobs", algorithm, hex);
}

/** Largest `index.json` read (64 MiB: some 200,000 tagged manifests). */
export const MAX_INDEX_FILE = 64 * 1024 * 1024;

/** Content of the `oci-layout` file. */
export const OCI_LAYOUT_FILE: Uint8Array = encodeJson({ imageLayoutVersion: "1.0.0" });

/**
 * Validate the content of an `oci-layout` file.
 *
 * @param bytes its content
 * @param where names the layout in errors
 * @throws {FormatError} when it is not a layout marker
 */
export function checkLayoutFile(bytes: Uint8Array, where: string): void {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof v?.imageLayoutVersion === "string") return;
  } catch { /* below */ }
  throw new FormatError(`${where}: oci-layout file is not valid`);
}

function sameName(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return ImageName.parse(a).toString() === ImageName.parse(b).toString();
  } catch {
    return false;
  }
}

/**
 * Ref names of what is stored beside an image rather than an image: cosign's
 * `sha256-<hex>.sig` (`.att`, `.sbom`) and the referrers fallback index
 * `sha256-<hex>`, bare or after a repository name (`example.com/foo:sha256-…`).
 */
const ATTACHED_REF = /(^|:)sha(256|512)-[0-9a-f]{64,128}(\.(sig|att|sbom))?$/;

/**
 * The images of a layout's index: its entries but signatures and referrer
 * indexes stored beside an image.
 *
 * @param manifests the index's entries
 * @returns the images
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { imageEntries } from "./index_file.ts";
 * const mediaType = "application/vnd.oci.image.manifest.v1+json";
 * const hex = "1".repeat(64);
 * const image = { mediaType, digest: `sha256:${hex}`, size: 2, annotations: {
 *   "org.opencontainers.image.ref.name": "example.com/a:1" } };
 * const sig = { ...image, annotations: {
 *   "org.opencontainers.image.ref.name": `sha256-${hex}.sig` } };
 * assert.deepEqual(imageEntries([image, sig]), [image]);
 * ```
 */
export function imageEntries(manifests: readonly Descriptor[]): Descriptor[] {
  return manifests.filter((m) => !ATTACHED_REF.test(m.annotations?.[ANNOTATION_REF_NAME] ?? ""));
}

/**
 * A writer that must leave its images alone in a layout (a `pack` without
 * `--append`) found others there as it wrote its index — put there by a
 * writer beside it since it looked. `others` are their index entries.
 */
export class SoleImageError extends UsageError {
  /** The other images' index entries. */
  readonly others: Descriptor[];
  /**
   * @param where names the layout
   * @param others the other images' index entries
   */
  constructor(where: string, others: Descriptor[]) {
    super(
      `${where} holds ${
        others.map((e) => e.annotations?.[ANNOTATION_REF_NAME] ?? e.digest).join(", ")
      } beside the image written, which must be alone there`,
    );
    this.others = others;
  }
}

/**
 * Refuse an index that holds images other than those named `mine`: for a
 * writer whose images must be alone in its layout, checked under the
 * layout's lock as its index is written.
 *
 * @param where names the layout
 * @param manifests the index's entries, as on disk
 * @param mine the ref names this writer tags
 * @throws {SoleImageError} listing the others
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkSoleImage, SoleImageError } from "./index_file.ts";
 * const entry = (ref: string) => ({ mediaType: "application/vnd.oci.image.manifest.v1+json",
 *   digest: "sha256:" + "1".repeat(64), size: 2,
 *   annotations: { "org.opencontainers.image.ref.name": ref } });
 * checkSoleImage("t.tar", [entry("example.com/a:1")], new Set(["example.com/a:1"]));
 * assert.throws(
 *   () => checkSoleImage("t.tar", [entry("example.com/b:1")], new Set(["example.com/a:1"])),
 *   (e) => e instanceof SoleImageError && e.others.length === 1,
 * );
 * ```
 */
export function checkSoleImage(
  where: string,
  manifests: readonly Descriptor[],
  mine: ReadonlySet<string>,
): void {
  const others = imageEntries(manifests).filter((e) =>
    !mine.has(e.annotations?.[ANNOTATION_REF_NAME] ?? "")
  );
  if (others.length > 0) throw new SoleImageError(where, others);
}

/**
 * How a user names one image of a layout: the layout's spelling, `:`, and
 * the image's ref name (its digest when it has none).
 *
 * @param layout `oci-archive:<file>` or `oci:<dir>`
 * @param entry the image's index entry
 * @returns e.g. `oci-archive:t.tar:example.com/a:1`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { imageSpelling } from "./index_file.ts";
 * const entry = { mediaType: "application/vnd.oci.image.manifest.v1+json",
 *   digest: "sha256:" + "1".repeat(64), size: 2,
 *   annotations: { "org.opencontainers.image.ref.name": "example.com/a:1" } };
 * assert.equal(imageSpelling("oci-archive:t.tar", entry), "oci-archive:t.tar:example.com/a:1");
 * ```
 */
export function imageSpelling(layout: string, entry: Descriptor): string {
  return `${layout}:${entry.annotations?.[ANNOTATION_REF_NAME] ?? entry.digest}`;
}

/**
 * In-memory view of a layout's `index.json`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LayoutIndex } from "./index_file.ts";
 * const idx = new LayoutIndex("demo");
 * const mediaType = "application/vnd.oci.image.manifest.v1+json";
 * const d = { mediaType, digest: "sha256:" + "1".repeat(64), size: 2 };
 * idx.tag(d, "example.com/a:1");
 * assert.equal(idx.resolve("example.com/a:1").digest, d.digest);
 * assert.equal(idx.resolve().digest, d.digest); // the only image
 * assert.equal(LayoutIndex.parse(idx.encode(), "demo").manifests.length, 1);
 * ```
 */
export class LayoutIndex {
  /** The entries, in order. */
  manifests: Descriptor[] = [];
  #where: string;
  #spelling: string | undefined;
  #annotations: Record<string, string> | undefined;

  /**
   * Create a LayoutIndex.
   * @param where names the layout in errors
   * @param spelling how the user names the layout (`oci-archive:t.tar`), to
   *   show the names of its images in errors (see {@link imageSpelling})
   */
  constructor(where: string, spelling?: string) {
    this.#where = where;
    this.#spelling = spelling;
  }

  /** How the user names the layout (`oci-archive:t.tar`), if known. */
  get spelling(): string | undefined {
    return this.#spelling;
  }

  /**
   * Parse `index.json`.
   *
   * @param bytes its content
   * @param where names the layout in errors
   * @param spelling how the user names the layout (`oci:dir`)
   * @returns the index
   */
  static parse(bytes: Uint8Array, where: string, spelling?: string): LayoutIndex {
    const doc = parseManifestDocument(bytes, OCI_INDEX, `${where} index.json`);
    if (doc.kind !== "index") throw new FormatError(`${where}: index.json is not an index`);
    const idx = new LayoutIndex(where, spelling);
    idx.manifests = [...doc.index.manifests];
    idx.#annotations = doc.index.annotations;
    return idx;
  }

  /** Serialize to `index.json` bytes. */
  encode(): Uint8Array {
    const index: Index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: this.manifests };
    if (this.#annotations) index.annotations = this.#annotations;
    return encodeJson(index);
  }

  /**
   * Find an entry by ref name (exact, or the same image name) or digest.
   *
   * @param reference ref name or digest; omitted, the single entry
   * @returns the descriptor (without the ref-name annotation's semantics changed)
   * @throws {NotFoundError} naming the reference and layout
   */
  resolve(reference?: string): Descriptor {
    if (reference === undefined) {
      // signatures and referrer indexes stored beside an image are not "an image"
      const images = imageEntries(this.manifests);
      if (images.length === 1) return images[0]!;
      if (images.length === 0) {
        throw new NotFoundError(`${this.#where}: index.json lists no image`);
      }
      const spelling = this.#spelling;
      const names = images.map((m) =>
        spelling === undefined
          ? m.annotations?.[ANNOTATION_REF_NAME] ?? m.digest
          : imageSpelling(spelling, m)
      );
      // ambiguous, not missing: the user must say which (a usage error, exit 2)
      throw new UsageError(
        `${this.#where} holds ${images.length} images; name one: ${names.join(", ")}`,
      );
    }
    if (isDigest(reference)) {
      const d = this.manifests.find((m) => m.digest === reference);
      if (d) return d;
    }
    const exact = this.manifests.find((m) => m.annotations?.[ANNOTATION_REF_NAME] === reference);
    if (exact) return exact;
    const similar = this.manifests.find((m) => {
      const n = m.annotations?.[ANNOTATION_REF_NAME];
      return n !== undefined && sameName(n, reference);
    });
    if (similar) return similar;
    throw new NotFoundError(`${this.#where} has no image '${reference}'`);
  }

  /**
   * Point `reference` at `desc`, replacing an entry with the same ref name.
   *
   * @param desc the manifest or index
   * @param reference the ref name; a digest adds an untagged entry
   */
  tag(desc: Descriptor, reference: string): void {
    const { annotations: _drop, ...plain } = desc;
    const annotations = { ...(desc.annotations ?? {}) };
    if (isDigest(reference)) {
      delete annotations[ANNOTATION_REF_NAME];
      if (!this.manifests.some((m) => m.digest === desc.digest)) {
        this.manifests.push(Object.keys(annotations).length ? { ...plain, annotations } : plain);
      }
      return;
    }
    annotations[ANNOTATION_REF_NAME] = reference;
    this.manifests = this.manifests.filter((m) =>
      m.annotations?.[ANNOTATION_REF_NAME] !== reference &&
      !(m.digest === desc.digest && m.annotations?.[ANNOTATION_REF_NAME] === undefined)
    );
    this.manifests.push({ ...plain, annotations });
  }
}
