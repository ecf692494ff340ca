/**
 * Verify before install: which keys an image must be signed with (given
 * keys, and the `verify` rules of ocipkg's config file), checking them
 * against a source before a byte is extracted, and the store's record of
 * what was verified so that a cached install is not verified again.
 *
 * The config file is `$OCIPKG_CONFIG`, else `~/.ocipkg/config.json`:
 *
 * ```json
 * { "verify": [{ "prefix": "ghcr.io/org/", "key": "keys/org.pub" }] }
 * ```
 *
 * A rule applies to every image whose `registry/repository` starts with
 * `prefix` (end it with `/` to mean a namespace; Docker Hub images match as
 * `docker.io/…`, `index.docker.io/…` and `registry-1.docker.io/…`); `key` (or `keys`, any one
 * of which suffices) names public key files, relative to the config file.
 * Every rule that applies must be met, and so must the keys given to the
 * command (`--verify-key`, any one of them).
 *
 * @module
 */
import type { KeyObject } from "node:crypto";
import { OcipkgError, systemReason } from "../errors.ts";
import { atomicWriteFile } from "../fs_util.ts";
import type { Descriptor } from "../manifest.ts";
import { dirname, isAbsolute, join, resolve } from "../path.ts";
import { DEFAULT_HOST, type ImageName } from "../reference.ts";
import type { ReadTarget } from "../target.ts";
import { printable } from "../text.ts";
import { parseDigest } from "../digest.ts";
import { SignatureError, verifySignatures } from "./image.ts";
import { readPublicKey } from "./keys.ts";
import { KeyError, keyFingerprint, MAX_KEY_FILE } from "./pem.ts";

/** Options that choose the keys an install must verify with. */
export interface VerifyPolicyOptions {
  /** Public key files; the image must verify with one of them. */
  verifyKeys?: string[];
  /**
   * The config file whose `verify` rules apply; default `$OCIPKG_CONFIG`,
   * else `~/.ocipkg/config.json`; `false` to apply no rules.
   */
  policy?: string | false;
}

/** One requirement: the image must verify with one of `keys`. */
export interface VerifyRequirement {
  /** Absolute paths of public key files. */
  keys: string[];
  /** Where it comes from, for messages: `--verify-key`, or the rule and file. */
  source: string;
}

/**
 * ocipkg's config file: `$OCIPKG_CONFIG`, else `~/.ocipkg/config.json`.
 *
 * @returns its path
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { configFile } from "@ocipkg/cli";
 * assert.match(configFile(), /config\.json$/);
 * ```
 */
export function configFile(): string {
  const own = Deno.env.get("OCIPKG_CONFIG");
  if (own) return resolve(own);
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
  return resolve(join(home, ".ocipkg", "config.json"));
}

/** A small regular file's text; undefined when absent. A fifo or device is refused unopened. */
async function readSmall(path: string, what: string): Promise<string | undefined> {
  let file: Deno.FsFile;
  try {
    const st = await Deno.stat(path);
    if (!st.isFile) throw new OcipkgError(`${what} is not a regular file`);
    file = await Deno.open(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    if (e instanceof OcipkgError) throw e;
    throw new OcipkgError(`cannot read ${what}: ${systemReason(e) ?? String(e)}`);
  }
  try {
    const buf = new Uint8Array(MAX_KEY_FILE + 1);
    let n = 0;
    while (n < buf.length) {
      const r = await file.read(buf.subarray(n));
      if (r === null) break;
      n += r;
    }
    if (n > MAX_KEY_FILE) throw new OcipkgError(`${what} is over ${MAX_KEY_FILE} bytes`);
    return new TextDecoder().decode(buf.subarray(0, n));
  } finally {
    file.close();
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The requirements for installing `name`: the given keys (one of them), and
 * each `verify` rule of the config file whose prefix the image's
 * `registry/repository` starts with.
 *
 * @param name the image
 * @param options given keys, the config file
 * @returns the requirements (none: no verification)
 * @throws {OcipkgError} naming the config file when it is not valid
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName, verifyRequirements } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${tmp}/config.json`, JSON.stringify({
 *   verify: [{ prefix: "ghcr.io/org/", key: "org.pub" }],
 * }));
 * await Deno.writeTextFile(`${tmp}/org.pub`, "-----BEGIN PUBLIC KEY-----\n…"); // checked to exist
 * const policy = `${tmp}/config.json`;
 * const [rule] = await verifyRequirements(ImageName.parse("ghcr.io/org/libfoo:1"), { policy });
 * assert.deepEqual(rule?.keys, [`${tmp}/org.pub`]);
 * assert.deepEqual(await verifyRequirements(ImageName.parse("ghcr.io/other/x:1"), { policy }), []);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function verifyRequirements(
  name: ImageName,
  options: VerifyPolicyOptions = {},
): Promise<VerifyRequirement[]> {
  const out: VerifyRequirement[] = [];
  if (options.verifyKeys && options.verifyKeys.length > 0) {
    out.push({ keys: options.verifyKeys.map((k) => resolve(k)), source: "--verify-key" });
  }
  if (options.policy !== false) out.push(...await configRequirements(name, options.policy));
  // every key file is checked before any request: a typo fails at once, naming its source
  for (const req of out) {
    for (const key of req.keys) {
      let st: Deno.FileInfo;
      try {
        st = await Deno.stat(key);
      } catch (e) {
        throw new OcipkgError(
          `key ${key} (${req.source}) ${
            e instanceof Deno.errors.NotFound
              ? "does not exist"
              : `cannot be read: ${systemReason(e) ?? String(e)}`
          }`,
        );
      }
      if (!st.isFile) throw new OcipkgError(`key ${key} (${req.source}) is not a regular file`);
    }
  }
  return out;
}

async function configRequirements(
  name: ImageName,
  policy: string | undefined,
): Promise<VerifyRequirement[]> {
  const out: VerifyRequirement[] = [];
  const file = policy ?? configFile();
  const text = await readSmall(file, `config file ${file}`);
  if (text === undefined) return out;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new OcipkgError(`config file ${file} is not valid JSON`);
  }
  if (!isObject(doc) || doc.verify === undefined) return out;
  if (!Array.isArray(doc.verify)) {
    throw new OcipkgError(`config file ${file}: 'verify' must be a list of rules`);
  }
  // Docker Hub answers to several host names: a rule may use any of them
  const hub = name.hostname === DEFAULT_HOST || name.hostname === "docker.io" ||
    name.hostname === "index.docker.io";
  const repos = hub && name.port === undefined
    ? [DEFAULT_HOST, "docker.io", "index.docker.io"].map((h) => `${h}/${name.name}`)
    : [`${name.registry}/${name.name}`];
  for (const [i, rule] of doc.verify.entries()) {
    const where = `config file ${file}: verify rule ${i + 1}`;
    if (!isObject(rule) || typeof rule.prefix !== "string") {
      throw new OcipkgError(`${where} needs a 'prefix' string`);
    }
    const keys = rule.keys ?? (rule.key === undefined ? undefined : [rule.key]);
    if (
      !Array.isArray(keys) || keys.length === 0 ||
      keys.some((k) => typeof k !== "string" || k === "")
    ) {
      throw new OcipkgError(`${where} needs a 'key' (or 'keys') naming public key files`);
    }
    if (!repos.some((r) => r.startsWith(rule.prefix as string))) continue;
    out.push({
      keys: (keys as string[]).map((k) => isAbsolute(k) ? k : join(dirname(file), k)),
      source: `verify rule '${printable(rule.prefix)}' of ${file}`,
    });
  }
  return out;
}

/** Read a public key file: its key and fingerprint. */
async function loadKey(path: string): Promise<{ key: KeyObject; fingerprint: string }> {
  const text = await readSmall(path, `key ${path}`);
  if (text === undefined) throw new KeyError(`key ${path} does not exist`);
  return { key: readPublicKey(text, path), fingerprint: await keyFingerprint(text, path) };
}

/**
 * Check the requirements against the image `root` in `src` — its
 * signatures, under the `.sig` tag or as referrers — before anything is
 * installed.
 *
 * @param src where the image is (registry or layout)
 * @param root the image's manifest or index
 * @param name names the image in messages
 * @param requirements from {@link verifyRequirements}
 * @returns the fingerprints of the keys that verified (for {@link recordVerified})
 * @throws {SignatureError} naming the image, the reason and the requirement
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   encodeJson, encodePublicKey, enforceVerification, generateSigningKeyPair, ImageName,
 *   MemoryTarget, OCI_MANIFEST, pushBytes, SignatureError, signImage,
 * } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const root = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * const signer = generateSigningKeyPair();
 * await Deno.writeTextFile(`${tmp}/cosign.pub`, encodePublicKey(signer.publicKey));
 * const name = ImageName.parse("example.com/foo:1");
 * const need = [{ keys: [`${tmp}/cosign.pub`], source: "--verify-key" }];
 * await assert.rejects(enforceVerification(t, root, name, need), SignatureError); // unsigned
 * await signImage(t, root, signer.privateKey, { dockerReference: "example.com/foo" });
 * assert.equal((await enforceVerification(t, root, name, need)).length, 1);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function enforceVerification(
  src: ReadTarget,
  root: Descriptor,
  name: ImageName,
  requirements: VerifyRequirement[],
): Promise<string[]> {
  const fingerprints: string[] = [];
  for (const req of requirements) {
    let last: SignatureError | undefined;
    let met = false;
    for (const path of req.keys) {
      const { key, fingerprint } = await loadKey(path);
      try {
        await verifySignatures(src, root, key, { keyName: path });
      } catch (e) {
        if (e instanceof SignatureError) {
          last = e;
          continue;
        }
        throw e;
      }
      fingerprints.push(fingerprint);
      met = true;
      break;
    }
    if (!met) {
      throw new SignatureError(
        last!.reason,
        `refusing to install image '${name}' (${root.digest}), required by ${req.source}: ${
          last!.message
        }`,
        { cause: last },
      );
    }
  }
  return fingerprints;
}

function recordPath(storeRoot: string, digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return join(storeRoot, ".verified", `${algorithm}-${hex}.json`);
}

/**
 * Record in a store that the manifest `digest` verified with keys of these
 * fingerprints (added to what was recorded before).
 *
 * @param storeRoot the store's root directory
 * @param digest the installed manifest's digest
 * @param fingerprints key fingerprints ({@link keyFingerprint})
 */
export async function recordVerified(
  storeRoot: string,
  digest: string,
  fingerprints: string[],
): Promise<void> {
  if (fingerprints.length === 0) return;
  const path = recordPath(storeRoot, digest);
  const known = await verifiedFingerprints(storeRoot, digest);
  for (const f of fingerprints) known.add(f);
  await Deno.mkdir(dirname(path), { recursive: true });
  const body = JSON.stringify({ digest, keys: [...known].sort() }) + "\n";
  await atomicWriteFile(path, new TextEncoder().encode(body));
}

async function verifiedFingerprints(storeRoot: string, digest: string): Promise<Set<string>> {
  const path = recordPath(storeRoot, digest);
  const text = await readSmall(path, `verification record ${path}`).catch(() => undefined);
  if (!text) return new Set();
  try {
    const v = JSON.parse(text);
    if (v?.digest === digest && Array.isArray(v.keys)) {
      return new Set(v.keys.filter((k: unknown) => typeof k === "string"));
    }
  } catch { /* unreadable: as if absent, verified again */ }
  return new Set();
}

/**
 * Whether a store recorded that `digest` met every requirement: for each,
 * one of its keys (by fingerprint) verified it before. Reads the record and
 * the key files; no network, no `node:crypto`.
 *
 * @param storeRoot the store's root directory
 * @param digest the installed manifest's digest
 * @param requirements from {@link verifyRequirements}
 * @returns true when nothing needs verifying again
 */
export async function isVerified(
  storeRoot: string,
  digest: string,
  requirements: VerifyRequirement[],
): Promise<boolean> {
  if (requirements.length === 0) return true;
  if (!digest) return false;
  const known = await verifiedFingerprints(storeRoot, digest);
  if (known.size === 0) return false;
  for (const req of requirements) {
    let met = false;
    for (const path of req.keys) {
      const text = await readSmall(path, `key ${path}`).catch(() => undefined);
      if (text === undefined) continue;
      let fp: string;
      try {
        fp = await keyFingerprint(text, path);
      } catch {
        continue;
      }
      if (known.has(fp)) {
        met = true;
        break;
      }
    }
    if (!met) return false;
  }
  return true;
}
