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

/** One record file of the store (see {@link listVerifiedRecords}). */
export interface VerifiedRecordFile {
  /** The manifest digest it is for (from its name). */
  digest: string;
  /** Its path. */
  path: string;
}

/**
 * Every record file of a store, and the temp files of interrupted writes
 * (records are written under the store's lock: one seen while holding it is
 * left over).
 *
 * @param root the store's root
 * @returns the records, and the paths of left-over temp files
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listVerifiedRecords, verifiedPath, writeVerifiedRecord } from "./verified.ts";
 * const root = await Deno.makeTempDir();
 * const digest = "sha256:" + "a".repeat(64);
 * await writeVerifiedRecord(verifiedPath(root, digest), digest, new Set(["k"]));
 * await Deno.writeTextFile(`${root}/.verified/.x.json.tmp-0badf00d`, "");
 * const found = await listVerifiedRecords(root);
 * assert.deepEqual(found.records, [{ digest, path: verifiedPath(root, digest) }]);
 * assert.deepEqual(found.temps, [`${root}/.verified/.x.json.tmp-0badf00d`]);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function listVerifiedRecords(
  root: string,
): Promise<{ records: VerifiedRecordFile[]; temps: string[] }> {
  const dir = join(root, ".verified");
  const records: VerifiedRecordFile[] = [];
  const temps: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const m = /^([a-z0-9]+)-([0-9a-f]+)\.json$/.exec(e.name);
      if (m && e.isFile) records.push({ digest: `${m[1]}:${m[2]}`, path: join(dir, e.name) });
      else if (/^\..*\.tmp-[0-9a-f]{8}$/.test(e.name)) temps.push(join(dir, e.name));
    }
  } catch { /* none */ }
  records.sort((a, b) => a.path.localeCompare(b.path));
  return { records, temps: temps.sort() };
}
