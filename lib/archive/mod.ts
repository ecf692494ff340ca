/**
 * `@ocipkg/cli/archive` — the one extractor: safe streaming extraction of tar
 * layers (plain, gzip, zstd) with caps on bytes, entries and expansion ratio,
 * and the link check that runs once all layers of an image are in place.
 * `getImage` and `loadImage` use it; this module is for extracting layers
 * yourself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ArchiveError } from "@ocipkg/cli";
 * import { extractLayer } from "@ocipkg/cli/archive";
 * const tmp = await Deno.makeTempDir();
 * const junk = ReadableStream.from([new TextEncoder().encode("not gzip")]);
 * const options = { compression: "gzip", what: "layer x" } as const;
 * await assert.rejects(extractLayer(junk, tmp, options), ArchiveError);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 *
 * @module
 */
export { checkLinks, extractLayer, type ExtractOptions, type ExtractResult } from "./extract.ts";
export { ExtractBudget, type ExtractLimits } from "./budget.ts";
export { DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_RATIO } from "./defaults.ts";
