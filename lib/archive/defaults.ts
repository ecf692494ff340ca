/**
 * The extraction caps by default, in one module that imports nothing: the
 * extractor applies them (`budget.ts`), the CLI's help shows them
 * without loading it.
 *
 * @module
 */

/** Default cap on the bytes one image may extract to (16 GiB). */
export const DEFAULT_MAX_BYTES = 16 * 1024 ** 3;
/**
 * Default cap on the entries of one image (50,000: ten times a large SDK's
 * file count; creating a file costs 20–300 µs, so the cap is met in seconds).
 */
export const DEFAULT_MAX_ENTRIES = 50_000;
/**
 * Default cap on how much a compressed layer may expand: the decompressed tar
 * stream of an image may be at most `RATIO_SLACK` plus this many times
 * the compressed bytes read (real libraries compress 2–10:1; gzip's maximum is
 * about 1000:1).
 */
export const DEFAULT_MAX_RATIO = 100;
/** Decompressed bytes allowed on top of the ratio limit (64 MiB). */
export const RATIO_SLACK = 64 * 1024 ** 2;
