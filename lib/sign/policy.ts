/**
 * Verify before install — the one trust path of `get`, `link`, `load` and
 * `verify`: which keys an image must be signed with (keys the caller gives,
 * and the `verify` rules of ocipkg's config file), every key file read once
 * per command, and the check against a source before a byte is extracted.
 * The store keeps the record of what verified ({@link Store.recordVerified}),
 * so that a cached install is not verified again.
 *
 * The config file is `$OCIPKG_CONFIG`, else `~/.ocipkg/config.json` (see
 * `configFile`), read once by the one reader (`transport/config.ts`, which
 * also holds its `registries`): a JSON object whose `verify` (optional) is a
 * list of rules.
 *
 * ```json
 * { "verify": [{ "prefix": "ghcr.io/org/", "key": "keys/org.pub" }] }
 * ```
 *
 * `key` (or `keys`, any one of which suffices) names public key files,
 * relative to the config file. Every rule that applies must be met, and so
 * must the keys given to the command (`--verify-key`, any one of them).
 *
 * A rule's `prefix` is matched against the image's canonical
 * `registry/repository` (see {@link canonicalRegistry}), never as typed:
 *
 * | prefix                        | applies to                                                        |
 * | ----------------------------- | ----------------------------------------------------------------- |
 * | `ghcr.io/org/`, `GHCR.io:443/org/` | `ghcr.io/org/…`, also written `ghcr.io:443/org/…`            |
 * | `docker.io/library/`          | Docker Hub's `library/…` under any of its names (`docker.io`, `index.docker.io`, `registry-1.docker.io`, any case, `:443`) |
 * | `docker.io/alpine`            | Docker Hub's `alpine…` and `library/alpine…`                      |
 * | `127.0.0.1:5000/rt/`, `localhost:5000/rt/` | `rt/…` on every loopback host of port 5000: `localhost`, `LocalHost`, `127.1`, `2130706433`, `[::1]` reach the same machine |
 * | `ghcr.io`, `localhost` (no `/`) | every image of that host, on any port (`ghcr.io:5000` one port) |
 * | `""`                          | every image                                                       |
 *
 * The part before the first `/` is the registry host; the rest is the start
 * of the repository name (lower case; end it with `/` to mean a namespace).
 * A host part that is not a registry host (`org/`: no `.`, `:`, `[` or
 * `localhost`) is refused, naming the file and the rule — it would apply to
 * nothing. When in doubt a rule applies: over-applying asks for a signature
 * once too often, under-applying would let an unsigned image in.
 *
 * @module
 */
import { OcipkgError } from "../util/errors.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { dirname, isAbsolute, join, resolve } from "../util/path.ts";
import {
  canonicalRegistry,
  DEFAULT_HOST,
  type ImageName,
  isHostComponent,
  isLoopbackHost,
} from "../oci/reference.ts";
import type { Store } from "../store/store.ts";
import type { ReadTarget } from "../transport/target.ts";
import { configFile, loadConfig } from "../transport/config.ts";
import { printable } from "../util/text.ts";
import { SignatureError, type VerifiedSignature, VerifyBudget, verifyWithin } from "./image.ts";
import { type PublicKeyFile, readPublicKeyFile } from "./keys.ts";

/** Options that choose the keys an install must verify with. */
export interface VerifyPolicyOptions {
  /** Public key files; the image must verify with one of them. */
  verifyKeys?: string[];
  /**
   * Names `verifyKeys` in messages; default `verifyKeys option` (the CLI
   * passes `--verify-key`).
   */
  verifyKeysLabel?: string;
  /**
   * The config file whose `verify` rules apply; default `$OCIPKG_CONFIG`,
   * else `~/.ocipkg/config.json`; `false` to apply no rules.
   */
  policy?: string | false;
}

/** One requirement: the image must verify with one of `keys`. */
export interface VerifyRequirement {
  /** The public key files, each read once per command. */
  keys: PublicKeyFile[];
  /** Where it comes from, for messages: the caller's label of its keys, or the rule and file. */
  source: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A `verify` rule of the config file, its prefix in canonical form. */
interface Rule {
  /** The prefix as written, for messages. */
  prefix: string;
  /** The registry host (canonical); undefined for `""`, every image. */
  hostname?: string;
  /** Its port (undefined: the default one); `any` for a host written alone, without a port. */
  port?: number | "any";
  /** The start of the repository name. */
  name: string;
  /** Key files, absolute. */
  keys: string[];
}

function readRule(rule: unknown, where: string, file: string): Rule {
  if (!isObject(rule) || typeof rule.prefix !== "string") {
    throw new OcipkgError(`${where} needs a 'prefix' string`);
  }
  const unknown = Object.keys(rule).filter((k) => !["prefix", "key", "keys"].includes(k));
  if (unknown.length) {
    throw new OcipkgError(
      `${where} has ${unknown.map((k) => `'${printable(k)}'`).join(", ")}: a rule holds only ` +
        `'prefix' and 'key' (or 'keys')`,
    );
  }
  if (rule.key !== undefined && rule.keys !== undefined) {
    throw new OcipkgError(`${where} has both 'key' and 'keys': give one`);
  }
  const keys = rule.keys ?? (rule.key === undefined ? undefined : [rule.key]);
  if (
    !Array.isArray(keys) || keys.length === 0 ||
    keys.some((k) => typeof k !== "string" || k === "")
  ) {
    throw new OcipkgError(`${where} needs a 'key' (or 'keys') naming public key files`);
  }
  const prefix = rule.prefix;
  const paths = [
    ...new Set((keys as string[]).map((k) => isAbsolute(k) ? k : join(dirname(file), k))),
  ];
  if (prefix === "") return { prefix, name: "", keys: paths };
  const slash = prefix.indexOf("/");
  const host = slash < 0 ? prefix : prefix.slice(0, slash);
  if (!isHostComponent(host)) {
    throw new OcipkgError(
      `${where}: '${printable(host)}' in prefix '${
        printable(prefix)
      }' is not a registry host (a prefix starts with one, e.g. 'docker.io/${printable(host)}/')`,
    );
  }
  let canonical: { hostname: string; port: number | undefined };
  try {
    canonical = canonicalRegistry(host);
  } catch (e) {
    throw new OcipkgError(
      `${where}: prefix '${printable(prefix)}' has ${(e as Error).message}`,
    );
  }
  const name = slash < 0 ? "" : prefix.slice(slash + 1).toLowerCase();
  // the rest is a plain leading part of a repository name: a glob, a tag or `//` would
  // match nothing, and a rule that matches nothing is a rule that protects nothing
  if (name && !/^[a-z0-9]+(?:(?:[._]|__|-+|\/)[a-z0-9]+)*(?:[._/]|__|-+)?$/.test(name)) {
    throw new OcipkgError(
      `${where}: prefix '${printable(prefix)}' can match no image: after the host comes the ` +
        `start of a repository name (lower-case letters, digits, '.', '_', '-', '/'), ` +
        `e.g. '${printable(host)}/org/' — no globs, tags or digests`,
    );
  }
  return {
    prefix,
    hostname: canonical.hostname,
    // `ghcr.io` alone is a prefix of `ghcr.io:5000/…` too
    port: slash < 0 && !/:\d+$/.test(host) ? "any" : canonical.port,
    name,
    keys: paths,
  };
}

/** The `verify` rules of a config file (read once, by the one reader); none when it does not exist. */
function readRules(file: string): Rule[] {
  const { doc } = loadConfig(file);
  if (doc.verify === undefined) return [];
  if (!Array.isArray(doc.verify)) {
    throw new OcipkgError(`config file ${file}: 'verify' must be a list of rules`);
  }
  return doc.verify.map((r, i) => readRule(r, `config file ${file}: verify rule ${i + 1}`, file));
}

/**
 * A port as rules compare it: no port, `:80` and `:443` are one class (the
 * scheme's default depends on flags such as `--ca-file` and `--plain-http`, so
 * a rule for one holds for all three — over-applying a rule is safe).
 */
function portClass(port: number | undefined): number | "default" {
  return port === undefined || port === 80 || port === 443 ? "default" : port;
}

/** Whether a rule applies to an image: its canonical registry, every loopback spelling alike. */
function ruleApplies(rule: Rule, image: ImageName): boolean {
  if (rule.hostname === undefined) return true;
  let host: { hostname: string; port: number | undefined };
  try {
    host = canonicalRegistry(image.registry); // a name built by hand, not parsed
  } catch {
    host = { hostname: image.hostname.toLowerCase(), port: image.port };
  }
  if (rule.port !== "any" && portClass(rule.port) !== portClass(host.port)) return false;
  const sameHost = rule.hostname === host.hostname ||
    // localhost, 127.0.0.1 and [::1] reach the same machine: a rule for one holds for all
    (isLoopbackHost(rule.hostname) && isLoopbackHost(host.hostname));
  if (!sameHost) return false;
  if (image.name.startsWith(rule.name)) return true;
  // `docker.io/alpine` names `library/alpine`
  return host.hostname === DEFAULT_HOST && !rule.name.includes("/") &&
    image.name.startsWith(`library/${rule.name}`);
}

/**
 * The requirements for installing `name`: the given keys (one of them), and
 * each `verify` rule of the config file that applies to the image's
 * canonical `registry/repository` (see the module doc). Every key file is
 * read here, once (a key named twice is the same {@link PublicKeyFile}), so
 * a missing or malformed key fails before any request, naming who asked
 * for it.
 *
 * @param name the image
 * @param options given keys and their label, the config file
 * @returns the requirements (none: no verification)
 * @throws {OcipkgError} naming the config file (and rule) when it is not
 *   valid, or a key file and its requirement when it cannot be read
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName } from "@ocipkg/cli";
 * import { encodePublicKey, generateSigningKeyPair, verifyRequirements } from "@ocipkg/cli/sign";
 * const tmp = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${tmp}/config.json`, JSON.stringify({
 *   verify: [{ prefix: "ghcr.io/org/", key: "org.pub" }],
 * }));
 * await Deno.writeTextFile(`${tmp}/org.pub`, encodePublicKey(generateSigningKeyPair().publicKey));
 * const policy = `${tmp}/config.json`;
 * // matched on the canonical name: ghcr.io:443 is ghcr.io
 * const [rule] = await verifyRequirements(ImageName.parse("GHCR.io:443/org/libfoo:1"), { policy });
 * assert.deepEqual(rule?.keys.map((k) => k.path), [`${tmp}/org.pub`]);
 * assert.equal(rule?.source, `verify rule 'ghcr.io/org/' of ${tmp}/config.json`);
 * assert.deepEqual(await verifyRequirements(ImageName.parse("ghcr.io/other/x:1"), { policy }), []);
 * // the given keys are labelled by the caller
 * const [given] = await verifyRequirements(ImageName.parse("ghcr.io/other/x:1"), {
 *   policy, verifyKeys: [`${tmp}/org.pub`], verifyKeysLabel: "--verify-key",
 * });
 * assert.equal(given?.source, "--verify-key");
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function verifyRequirements(
  name: ImageName,
  options: VerifyPolicyOptions = {},
): Promise<VerifyRequirement[]> {
  const wanted: { paths: string[]; source: string }[] = [];
  if (options.verifyKeys && options.verifyKeys.length > 0) {
    wanted.push({
      paths: options.verifyKeys,
      source: options.verifyKeysLabel ?? "verifyKeys option",
    });
  }
  if (options.policy !== false) {
    const file = resolve(options.policy ?? configFile());
    for (const rule of readRules(file)) {
      if (!ruleApplies(rule, name)) continue;
      wanted.push({
        paths: rule.keys,
        source: `verify rule '${printable(rule.prefix)}' of ${file}`,
      });
    }
  }
  // every key file read once, before any request: a typo fails at once, naming its source
  const read = new Map<string, PublicKeyFile>();
  const out: VerifyRequirement[] = [];
  for (const { paths, source } of wanted) {
    const keys = new Set<PublicKeyFile>();
    for (const path of paths) {
      const abs = resolve(path);
      let key = read.get(abs);
      if (!key) read.set(abs, key = await readPublicKeyFile(abs, source));
      keys.add(key);
    }
    out.push({ keys: [...keys], source });
  }
  return out;
}

/** What {@link verifyWithAnyKey} verified. */
export interface KeyVerified {
  /** The key that verified. */
  key: PublicKeyFile;
  /** Every signature that verified with it. */
  signatures: VerifiedSignature[];
}

/**
 * Verify the cosign signatures of `root` in `src` with any one of `keys`,
 * tried in order: the one "any of these keys" routine of `verify`, `get`,
 * `link` and `load`. Everything is read once for all the keys, within one
 * budget ({@link VerifyBudget}: 64 signature manifests, 256 signature
 * layers, 256 payload fetches, each payload digest fetched once); pass
 * `budget` to share it with other requirements of the same command.
 *
 * @param src where the image is (registry or layout)
 * @param root the image's manifest or index
 * @param keys the keys (from {@link readPublicKeyFile} or {@link verifyRequirements})
 * @param budget what the command may still read, and what it read; default a new one
 * @returns the first key that verified, and its signatures
 * @throws {SignatureError} the last key's reason when none verifies
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget, SignatureError } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * import { encodePublicKey, generateSigningKeyPair, signImage } from "@ocipkg/cli/sign";
 * import { readPublicKeyFile } from "./keys.ts";
 * import { verifyWithAnyKey } from "./policy.ts";
 * const tmp = await Deno.makeTempDir();
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const root = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * const signer = generateSigningKeyPair();
 * await Deno.writeTextFile(`${tmp}/other.pub`, encodePublicKey(generateSigningKeyPair().publicKey));
 * await Deno.writeTextFile(`${tmp}/cosign.pub`, encodePublicKey(signer.publicKey));
 * const keys = [await readPublicKeyFile(`${tmp}/other.pub`, "--key"), await readPublicKeyFile(`${tmp}/cosign.pub`, "--key")];
 * await assert.rejects(verifyWithAnyKey(t, root, keys), SignatureError); // unsigned
 * await signImage(t, root, signer.privateKey, { dockerReference: "example.com/foo" });
 * assert.equal((await verifyWithAnyKey(t, root, keys)).key.path, `${tmp}/cosign.pub`);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function verifyWithAnyKey(
  src: ReadTarget,
  root: Descriptor,
  keys: PublicKeyFile[],
  budget: VerifyBudget = new VerifyBudget(),
): Promise<KeyVerified> {
  if (keys.length === 0) throw new OcipkgError(`no key to verify image ${root.digest} with`);
  let last: SignatureError | undefined;
  for (const key of keys) {
    try {
      return {
        key,
        signatures: await verifyWithin(src, root, key.key(), { keyName: key.path }, budget),
      };
    } catch (e) {
      if (!(e instanceof SignatureError)) throw e;
      last = e;
    }
  }
  throw last!;
}

/**
 * Check the requirements against the image `root` in `src` — its
 * signatures, under the `.sig` tag or as referrers, looked up once — before
 * anything is installed. One budget holds for all the requirements and keys
 * (64 signature manifests, 256 signature layers, 256 payload fetches, each
 * manifest and payload read once): a registry that lists endless signatures
 * ends the command with an error that says so, not a million requests. A
 * place that cannot be read (a referrers page over its cap) gives no
 * signatures, and the others are still checked; a refusal names each.
 *
 * @param src where the image is (registry or layout)
 * @param root the image's manifest or index
 * @param name names the image in messages
 * @param requirements from {@link verifyRequirements}
 * @returns the fingerprints of the keys that verified (for {@link Store.recordVerified})
 * @throws {SignatureError} naming the image, the reason and the requirement
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName, MemoryTarget, SignatureError } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * import {
 *   encodePublicKey, enforceVerification, generateSigningKeyPair, signImage, verifyRequirements,
 * } from "@ocipkg/cli/sign";
 * const tmp = await Deno.makeTempDir();
 * const t = new MemoryTarget();
 * const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
 * const root = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
 * const signer = generateSigningKeyPair();
 * await Deno.writeTextFile(`${tmp}/cosign.pub`, encodePublicKey(signer.publicKey));
 * const name = ImageName.parse("example.com/foo:1");
 * const need = await verifyRequirements(name, { verifyKeys: [`${tmp}/cosign.pub`], policy: false });
 * await assert.rejects(
 *   enforceVerification(t, root, name, need), // unsigned
 *   (e) => e instanceof SignatureError && /required by verifyKeys option: no signature/.test(e.message),
 * );
 * await signImage(t, root, signer.privateKey, { dockerReference: "example.com/foo" });
 * assert.deepEqual(await enforceVerification(t, root, name, need), [need[0]!.keys[0]!.fingerprint]);
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
  const budget = new VerifyBudget(); // one for the command: every requirement, every key
  for (const req of requirements) {
    try {
      fingerprints.push((await verifyWithAnyKey(src, root, req.keys, budget)).key.fingerprint);
    } catch (e) {
      if (!(e instanceof SignatureError)) throw e;
      throw new SignatureError(
        e.reason,
        `refusing to install image '${name}' (${root.digest}), required by ${req.source}: ${e.message}`,
        { cause: e },
      );
    }
  }
  return fingerprints;
}

/**
 * Whether the store recorded that the installed manifest `digest` met every
 * requirement: for each, one of its keys (by fingerprint) verified it
 * before. Reads the store's record only; no network, no `node:crypto`.
 *
 * @param store the store
 * @param digest the installed manifest's digest
 * @param requirements from {@link verifyRequirements}
 * @returns true when nothing needs verifying again
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName, Store } from "@ocipkg/cli";
 * import { encodePublicKey, generateSigningKeyPair, verifyRequirements } from "@ocipkg/cli/sign";
 * import { isVerified } from "./policy.ts";
 * const tmp = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${tmp}/k.pub`, encodePublicKey(generateSigningKeyPair().publicKey));
 * const need = await verifyRequirements(ImageName.parse("example.com/foo:1"), {
 *   verifyKeys: [`${tmp}/k.pub`], policy: false,
 * });
 * const store = new Store(`${tmp}/store`);
 * const digest = "sha256:" + "a".repeat(64);
 * assert.equal(await isVerified(store, digest, need), false);
 * assert.equal(await isVerified(store, digest, []), true); // nothing required
 * await store.recordVerified(digest, [need[0]!.keys[0]!.fingerprint]);
 * assert.equal(await isVerified(store, digest, need), true);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function isVerified(
  store: Store,
  digest: string,
  requirements: VerifyRequirement[],
): Promise<boolean> {
  if (requirements.length === 0) return true;
  if (!digest) return false;
  const known = await store.verifiedKeys(digest);
  return requirements.every((req) => req.keys.some((k) => known.has(k.fingerprint)));
}
