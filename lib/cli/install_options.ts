/**
 * Option groups of the commands that install an image into the store (`get`,
 * `link`, `load`): the extraction limits (`--max-*`, `OCIPKG_MAX_*`) and the
 * signature check (`--verify-key`, or a keyless identity; `lock` makes it
 * too before it pins) — and their conversion into library options. Apart from
 * `shared.ts` so that the commands that move images (`pull`, `push`, `copy`)
 * do not load the extraction defaults and the identity flags.
 *
 * @module
 */
import type { ExtractLimits } from "../archive/mod.ts";
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_RATIO } from "../archive/defaults.ts";
import type { VerifyPolicyOptions } from "../sign/mod.ts";
import { UsageError } from "../util/errors.ts";
import { parseSize } from "../util/text.ts";
import { identityFlags, identityOptions } from "./identity.ts";
import { optionGroup, type OptionValues } from "./options.ts";

function count(text: string, flag: string): number {
  const n = parseSize(text);
  if (n === undefined || n < 1) {
    throw new UsageError(
      `invalid ${flag} '${text}': use a positive number (K, M, G suffixes allowed)`,
    );
  }
  return n;
}

/** Extraction limits: `--max-bytes`, `--max-entries`, `--max-ratio`, else `OCIPKG_MAX_*`. */
export const limitOptions = optionGroup({
  "max-bytes": {
    type: "string",
    value: "n",
    env: "OCIPKG_MAX_BYTES",
    default: `${DEFAULT_MAX_BYTES / 1024 ** 3}G`,
    parse: count,
    description: "cap on the bytes an image extracts to; K, M, G suffixes allowed",
  },
  "max-entries": {
    type: "string",
    value: "n",
    env: "OCIPKG_MAX_ENTRIES",
    default: `${DEFAULT_MAX_ENTRIES}`,
    parse: count,
    description: "cap on the entries of an image's layers",
  },
  "max-ratio": {
    type: "string",
    value: "n",
    env: "OCIPKG_MAX_RATIO",
    default: `${DEFAULT_MAX_RATIO}`,
    parse: count,
    description: "cap on a layer's decompressed ÷ compressed size",
  },
});

/**
 * Library extraction limits from the limits group.
 * @param opts parsed values
 * @returns the limits given
 */
export function limits(opts: OptionValues<typeof limitOptions>): ExtractLimits {
  const o: ExtractLimits = {};
  if (opts.maxBytes !== undefined) o.maxBytes = opts.maxBytes;
  if (opts.maxEntries !== undefined) o.maxEntries = opts.maxEntries;
  if (opts.maxRatio !== undefined) o.maxRatio = opts.maxRatio;
  return o;
}

/**
 * `--verify-key`, or a keyless `--certificate-identity` and issuer: install
 * only what verifies (besides the config file's `verify` rules).
 */
export const verifyOption = optionGroup({
  "verify-key": {
    type: "string",
    multiple: true,
    value: "cosign.pub",
    description:
      "install only if a signature verifies with this public key (repeatable: any one); the config file's verify rules apply too",
  },
  ...identityOptions,
});

/**
 * The library's verify options from {@link verifyOption}'s flags.
 * @param opts parsed values
 * @returns the keys or identity, their labels, the trusted root
 * @throws {UsageError} for a key and an identity both, or an identity without issuer
 */
export function verifyPolicy(opts: OptionValues<typeof verifyOption>): VerifyPolicyOptions {
  const id = identityFlags(opts, opts.verifyKey.length > 0, "--verify-key", false);
  const { trustedRoot, ...identity } = id;
  const hasIdentity = identity.identity !== undefined || identity.identityRegexp !== undefined;
  return {
    verifyKeys: opts.verifyKey,
    verifyKeysLabel: "--verify-key",
    ...(hasIdentity
      ? { verifyIdentity: identity, verifyIdentityLabel: "--certificate-identity" }
      : {}),
    ...(trustedRoot !== undefined ? { trustedRoot } : {}),
  };
}
