/**
 * What one image may cost to extract: the caps on bytes written, entries and
 * decompression ratio (each with a default), and the {@link ExtractBudget}
 * its layers share, which also holds what extraction knows about the tree it
 * wrote.
 *
 * @module
 */
import { ArchiveError } from "../util/errors.ts";
import { shown } from "./tar_header.ts";
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_RATIO } from "./defaults.ts";

/** Limits of one extraction; every field has a default. */
export interface ExtractLimits {
  /** Cap on file bytes written ({@link DEFAULT_MAX_BYTES}). */
  maxBytes?: number;
  /** Cap on entries, counting every tar header that names a path ({@link DEFAULT_MAX_ENTRIES}). */
  maxEntries?: number;
  /** Cap on decompressed ÷ compressed bytes ({@link DEFAULT_MAX_RATIO}). */
  maxRatio?: number;
}

/**
 * Caps shared by the layers of one image, and what extraction knows about the
 * tree it wrote: real directories already checked, and every symlink created
 * (checked once all layers are in place, by {@link checkLinks}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ArchiveError } from "@ocipkg/cli";
 * import { ExtractBudget, extractLayer } from "@ocipkg/cli/archive";
 * import { inspectImage, OciArchive, packDirectory } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "more than ten bytes");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`);
 * const src = await OciArchive.open(`${tmp}/foo.tar`);
 * const [layer] = (await inspectImage(src, undefined, { files: false })).manifests[0]!.layers;
 * const budget = new ExtractBudget({ maxBytes: 10 }); // one budget for all layers of an image
 * const options = { compression: "gzip", what: "layer", budget } as const;
 * await assert.rejects(extractLayer(await src.fetch(layer!), tmp, options), ArchiveError);
 * await src.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export class ExtractBudget {
  /** Bytes left. */
  bytes: number;
  /** Entries left. */
  entries: number;
  /** Cap on decompressed ÷ compressed bytes. */
  readonly maxRatio: number;
  /** The byte cap this budget started with. */
  readonly maxBytes: number;
  /** The entry cap this budget started with. */
  readonly maxEntries: number;
  /** Compressed bytes read so far (all layers). */
  compressedIn = 0;
  /** Decompressed bytes produced so far (all layers). */
  expandedOut = 0;
  /** Real directories created or checked (never symlinks), relative paths. */
  readonly safeDirs: Set<string> = new Set([""]);
  /** Symlinks created, relative paths. */
  readonly links: Set<string> = new Set();
  /** Whether the destination's file system tells `a` from `A` (probed once). */
  caseSensitive: boolean | undefined;
  /**
   * Create an ExtractBudget.
   * @param limits caps; each defaults to the exported DEFAULT_ constant
   */
  constructor(limits: ExtractLimits = {}) {
    this.bytes = this.maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
    this.entries = this.maxEntries = limits.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.maxRatio = limits.maxRatio ?? DEFAULT_MAX_RATIO;
  }
}

/** The error for a layer past the entry cap of its budget. */
export function entryCap(what: string, budget: ExtractBudget): ArchiveError {
  return new ArchiveError(`${what}: more than ${budget.maxEntries} entries (the entry cap)`);
}

/** The error for an entry past the byte cap of its budget. */
export function bytesCap(what: string, budget: ExtractBudget, name: string): ArchiveError {
  return new ArchiveError(
    `${what}: extracted size exceeds the cap of ${budget.maxBytes} bytes at entry '${shown(name)}'`,
  );
}
