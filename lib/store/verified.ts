/**
 * The store's records of what verified: `<root>/.verified/<alg>-<hex>.json`
 * holds `{"digest", "keys": [records]}`, who an installed manifest verified
 * with — key fingerprints, and the `identity:` and `attestation:` records of
 * keyless signers and attestations (`lib/sign/signers.ts`). What must verify
 * is decided in `lib/sign/policy.ts`; the store reads and writes the records
 * (`Store.recordVerified`, `Store.verifiedKeys`) without reading them.
 *
 * @module
 */
import { dirname, join } from "../util/path.ts";
import { parseDigest } from "../oci/digest.ts";
import { atomicWriteFile } from "../util/files.ts";

/** A verified record larger than this is not read (one holds a few fingerprints). */
const MAX_VERIFIED_RECORD = 64 * 1024;

/**
 * The record file of a manifest digest.
 *
 * @param root the store's root
 * @param digest the manifest's digest
 * @returns the path
 * @throws {FormatError} for an invalid digest
 */
export function verifiedPath(root: string, digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return join(root, ".verified", `${algorithm}-${hex}.json`);
}

/**
 * The fingerprints recorded for the manifest `digest`; none when there is no
 * readable record.
 *
 * @param root the store's root
 * @param digest the manifest's digest
 * @returns the key fingerprints
 */
export async function readVerifiedKeys(root: string, digest: string): Promise<Set<string>> {
  try {
    const path = verifiedPath(root, digest);
    const st = await Deno.stat(path);
    if (!st.isFile || st.size > MAX_VERIFIED_RECORD) return new Set();
    const v = JSON.parse(await Deno.readTextFile(path));
    if (v?.digest === digest && Array.isArray(v.keys)) {
      return new Set(v.keys.filter((k: unknown): k is string => typeof k === "string"));
    }
  } catch { /* absent or unreadable: as if unverified */ }
  return new Set();
}

/**
 * Write the record of the manifest `digest` (replacing it atomically).
 *
 * @param path its record file ({@link verifiedPath})
 * @param digest the manifest's digest
 * @param keys every fingerprint it verified with
 */
export async function writeVerifiedRecord(
  path: string,
  digest: string,
  keys: Set<string>,
): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const body = JSON.stringify({ digest, keys: [...keys].sort() }) + "\n";
  await atomicWriteFile(path, new TextEncoder().encode(body));
}
