/**
 * Verify before install — the one trust path of `get`, `link`, `load` and
 * `verify`: who an image must be signed by (keys or a keyless identity the
 * caller gives, and the `verify` rules of ocipkg's config file), every key
 * and trusted root file read once per command, and the check against a
 * source before a byte is extracted (`enforce.ts`). The store keeps the
 * record of what verified ({@link Store.recordVerified}; lib/sign/signers.ts),
 * so that a cached install is not verified again: this module decides that
 * from the config file and the store's record alone, and loads the key and
 * trusted root readers only when a requirement names a file.
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
 * relative to the config file; `identity` and `issuer` a keyless signer;
 * `attestations` the in-toto attestations the image must carry. Every rule
 * that applies must be met, and so must the signers given to the command
 * (`--verify-key`, any one of them, or `--certificate-identity`).
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
import type { ImageName } from "../oci/reference.ts";
import { resolve } from "../util/path.ts";
import type { Store } from "../store/store.ts";
import { configFile } from "../transport/config.ts";
import { printable } from "../util/text.ts";
import type { IdentityPolicy } from "./signers.ts";
import type { PublicKeyFile } from "./keys.ts";
import { type AttestationRequirement, readRules, ruleApplies } from "./policy_rules.ts";
import { recordsMeet, rootId } from "./signers.ts";
import type { TrustedRoot } from "./trusted_root.ts";

export { configFile };

/** Options that choose who an install must be signed by. */
export interface VerifyPolicyOptions {
  /** Public key files; the image must verify with one of them (or `verifyIdentity`). */
  verifyKeys?: string[];
  /**
   * Names `verifyKeys` in messages; default `verifyKeys option` (the CLI
   * passes `--verify-key`).
   */
  verifyKeysLabel?: string;
  /** A keyless signer (certificate identity and OIDC issuer) the image may be signed by instead. */
  verifyIdentity?: IdentityPolicy;
  /** Names `verifyIdentity` in messages; default `verifyIdentity option`. */
  verifyIdentityLabel?: string;
  /** The trusted root file of `verifyIdentity`; default the shipped public-good root. */
  trustedRoot?: string;
  /**
   * The config file whose `verify` rules apply; default `$OCIPKG_CONFIG`,
   * else `~/.ocipkg/config.json`; `false` to apply no rules.
   */
  policy?: string | false;
}

/**
 * One requirement: the image must be signed by one of `keys` or
 * `identities`, and carry each of `attestations` signed by one of them.
 */
export interface VerifyRequirement {
  /** The public key files, each read once per command. */
  keys: PublicKeyFile[];
  /** Keyless signers: certificate identity and issuer. */
  identities?: IdentityPolicy[];
  /** The trusted root of their bundles (read once per command); default the shipped public-good root. */
  trustedRoot?: TrustedRoot;
  /** The attestations the image must carry. */
  attestations?: AttestationRequirement[];
  /** Where it comes from, for messages: the caller's label of its keys, or the rule and file. */
  source: string;
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
  interface Wanted {
    paths: string[];
    identity?: IdentityPolicy;
    trustedRoot?: string;
    attestations: AttestationRequirement[];
    source: string;
  }
  const wanted: Wanted[] = [];
  const givenKeys = options.verifyKeys ?? [];
  if (givenKeys.length > 0 || options.verifyIdentity) {
    wanted.push({
      paths: givenKeys,
      ...(options.verifyIdentity ? { identity: options.verifyIdentity } : {}),
      ...(options.trustedRoot ? { trustedRoot: options.trustedRoot } : {}),
      attestations: [],
      source: givenKeys.length > 0
        ? options.verifyKeysLabel ?? "verifyKeys option"
        : options.verifyIdentityLabel ?? "verifyIdentity option",
    });
  }
  if (options.policy !== false) {
    const file = resolve(options.policy ?? configFile());
    for (const rule of readRules(file)) {
      if (!ruleApplies(rule, name)) continue;
      wanted.push({
        paths: rule.keys,
        ...(rule.identity ? { identity: rule.identity } : {}),
        ...(rule.trustedRoot ? { trustedRoot: rule.trustedRoot } : {}),
        attestations: rule.attestations,
        source: `verify rule '${printable(rule.prefix)}' of ${file}`,
      });
    }
  }
  // every key and trusted root file read once, before any request: a typo fails at once,
  // naming its source
  const read = new Map<string, PublicKeyFile>();
  const roots = new Map<string, TrustedRoot>();
  const out: VerifyRequirement[] = [];
  for (const { paths, identity, trustedRoot, attestations, source } of wanted) {
    const keys = new Set<PublicKeyFile>();
    for (const path of paths) {
      const abs = resolve(path);
      let key = read.get(abs);
      if (!key) {
        const { readPublicKeyFile } = await import("./keys.ts");
        read.set(abs, key = await readPublicKeyFile(abs, source));
      }
      keys.add(key);
    }
    let root: TrustedRoot | undefined;
    if (trustedRoot !== undefined) {
      const abs = resolve(trustedRoot);
      root = roots.get(abs);
      if (!root) {
        try {
          const { readTrustedRoot } = await import("./trusted_root.ts");
          roots.set(abs, root = await readTrustedRoot(abs));
        } catch (e) {
          if (e instanceof OcipkgError) throw new OcipkgError(`${e.message} (${source})`);
          throw e;
        }
      }
    }
    out.push({
      keys: [...keys],
      ...(identity ? { identities: [identity] } : {}),
      ...(root ? { trustedRoot: root } : {}),
      ...(attestations.length > 0 ? { attestations } : {}),
      source,
    });
  }
  return out;
}

/**
 * Whether the store recorded that the installed manifest `digest` met every
 * requirement: for each, one of its keys (by fingerprint) or identities
 * (under its trusted root) signed it, and its attestations were verified,
 * before. Reads the store's record only; no network, no `node:crypto`, no
 * Sigstore library.
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
  return requirements.every((req) =>
    recordsMeet(known, {
      fingerprints: req.keys.map((k) => k.fingerprint),
      identities: req.identities ?? [],
      root: rootId(req.trustedRoot),
    }, (req.attestations ?? []).map((a) => a.predicateTypes))
  );
}
