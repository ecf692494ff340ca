/**
 * The `verify` rules of ocipkg's config file (`$OCIPKG_CONFIG`, else
 * `~/.ocipkg/config.json`): which images they apply to (see
 * `lib/sign/policy.ts` for how a prefix matches) and who must have signed —
 * public key files (`key`, `keys`), or a keyless signer: a certificate
 * identity and OIDC issuer, each exactly or as a glob (`identity`, `issuer`:
 * `*` any run of characters but `/`, `**` any run) or as a regular expression
 * (`identityRegexp`, `issuerRegexp`), checked under the shipped public-good
 * root or `trustedRoot` — and the attestations (`attestations`: predicate
 * type names or URIs) the image must carry, by the same signers.
 *
 * ```json
 * { "verify": [
 *   { "prefix": "ghcr.io/org/", "key": "keys/org.pub" },
 *   { "prefix": "ghcr.io/org/",
 *     "identity": "https://github.com/org/*\/.github/workflows/*@refs/tags/*",
 *     "issuer": "https://token.actions.githubusercontent.com",
 *     "attestations": ["slsaprovenance"] }
 * ] }
 * ```
 *
 * Paths (`key`, `keys`, `trustedRoot`) are relative to the config file. A
 * rule that could match nothing, or names a field it does not know, is
 * refused naming the file and the rule: a rule that protects nothing must
 * not pass for one that does.
 *
 * @module
 */
import { OcipkgError, UsageError } from "../util/errors.ts";
import { dirname, isAbsolute, join } from "../util/path.ts";
import {
  canonicalRegistry,
  DEFAULT_HOST,
  type ImageName,
  isHostComponent,
  isLoopbackHost,
} from "../oci/reference.ts";
import { printable } from "../util/text.ts";
import type { IdentityPolicy } from "./signers.ts";
import { loadConfig } from "../transport/config.ts";
import { compileRegExp, globRegExp } from "./signers.ts";
import { predicateTypes } from "./statement.ts";

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** An attestation a rule asks for: its name as written, the predicate types that meet it. */
export interface AttestationRequirement {
  /** As written (`slsaprovenance`, or a URI). */
  name: string;
  /** The predicate type URIs, any one of which meets it. */
  predicateTypes: string[];
}

/** A `verify` rule of the config file, its prefix in canonical form. */
export interface Rule {
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
  /** A keyless signer: the certificate identity and issuer. */
  identity?: IdentityPolicy;
  /** The trusted root file (absolute); default the shipped public-good root. */
  trustedRoot?: string;
  /** The attestations the image must carry. */
  attestations: AttestationRequirement[];
}

const RULE_FIELDS = [
  "prefix",
  "key",
  "keys",
  "identity",
  "identityRegexp",
  "issuer",
  "issuerRegexp",
  "trustedRoot",
  "attestations",
];

/** A rule's string field, absent or a non-empty string. */
function stringField(
  rule: Record<string, unknown>,
  field: string,
  where: string,
): string | undefined {
  const v = rule[field];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v === "") {
    throw new OcipkgError(`${where}: '${field}' must be a non-empty string`);
  }
  return v;
}

/** A rule's keyless signer: identity and issuer, each exact-or-glob or a regular expression. */
function readIdentity(rule: Record<string, unknown>, where: string): IdentityPolicy | undefined {
  const identity = stringField(rule, "identity", where);
  const identityRegexp = stringField(rule, "identityRegexp", where);
  const issuer = stringField(rule, "issuer", where);
  const issuerRegexp = stringField(rule, "issuerRegexp", where);
  if (identity === undefined && identityRegexp === undefined) {
    if (issuer !== undefined || issuerRegexp !== undefined) {
      throw new OcipkgError(`${where} names an issuer but no 'identity' (or 'identityRegexp')`);
    }
    return undefined;
  }
  if (identity !== undefined && identityRegexp !== undefined) {
    throw new OcipkgError(`${where} has both 'identity' and 'identityRegexp': give one`);
  }
  if (issuer === undefined && issuerRegexp === undefined) {
    throw new OcipkgError(
      `${where} needs the identity's OIDC 'issuer' (or 'issuerRegexp'), e.g. ` +
        `'https://token.actions.githubusercontent.com'`,
    );
  }
  if (issuer !== undefined && issuerRegexp !== undefined) {
    throw new OcipkgError(`${where} has both 'issuer' and 'issuerRegexp': give one`);
  }
  const compile = (source: string, what: string) => {
    try {
      return compileRegExp(source, what);
    } catch (e) {
      if (e instanceof UsageError) throw new OcipkgError(`${where}: ${e.message}`);
      throw e;
    }
  };
  return {
    // a glob without '*' is the exact value
    ...(identity !== undefined
      ? identity.includes("*") ? { identityRegexp: globRegExp(identity) } : { identity }
      : { identityRegexp: compile(identityRegexp!, "identity") }),
    ...(issuer !== undefined
      ? issuer.includes("*") ? { issuerRegexp: globRegExp(issuer) } : { issuer }
      : { issuerRegexp: compile(issuerRegexp!, "issuer") }),
  };
}

/** A rule's attestations: predicate type names or URIs. */
function readAttestations(rule: Record<string, unknown>, where: string): AttestationRequirement[] {
  const list = rule.attestations;
  if (list === undefined) return [];
  if (!Array.isArray(list) || list.length === 0) {
    throw new OcipkgError(
      `${where}: 'attestations' must be a list of predicate types, e.g. ["slsaprovenance"]`,
    );
  }
  return list.map((name: unknown) => {
    const types = typeof name === "string" ? predicateTypes(name) : undefined;
    if (!types) {
      throw new OcipkgError(
        `${where}: attestation '${
          printable(String(name)).slice(0, 100)
        }' is neither a predicate type name (slsaprovenance, spdxjson, cyclonedx, …) nor a URI`,
      );
    }
    return { name: name as string, predicateTypes: types };
  });
}

function readRule(rule: unknown, where: string, file: string): Rule {
  if (!isObject(rule) || typeof rule.prefix !== "string") {
    throw new OcipkgError(`${where} needs a 'prefix' string`);
  }
  const unknown = Object.keys(rule).filter((k) => !RULE_FIELDS.includes(k));
  if (unknown.length) {
    throw new OcipkgError(
      `${where} has ${unknown.map((k) => `'${printable(k)}'`).join(", ")}: a rule holds ` +
        `'prefix', 'key' (or 'keys'), 'identity' and 'issuer' (or their 'Regexp' forms), ` +
        `'trustedRoot' and 'attestations'`,
    );
  }
  if (rule.key !== undefined && rule.keys !== undefined) {
    throw new OcipkgError(`${where} has both 'key' and 'keys': give one`);
  }
  const identity = readIdentity(rule, where);
  const keys = rule.keys ?? (rule.key === undefined ? (identity ? [] : undefined) : [rule.key]);
  if (
    !Array.isArray(keys) || (keys.length === 0 && !identity) ||
    keys.some((k) => typeof k !== "string" || k === "")
  ) {
    throw new OcipkgError(
      `${where} needs a 'key' (or 'keys') naming public key files, or a keyless ` +
        `'identity' and 'issuer'`,
    );
  }
  const abs = (p: string) => isAbsolute(p) ? p : join(dirname(file), p);
  const trustedRoot = stringField(rule, "trustedRoot", where);
  const signers = {
    keys: [...new Set((keys as string[]).map(abs))],
    ...(identity ? { identity } : {}),
    ...(trustedRoot ? { trustedRoot: abs(trustedRoot) } : {}),
    attestations: readAttestations(rule, where),
  };
  const prefix = rule.prefix;
  if (prefix === "") return { prefix, name: "", ...signers };
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
    ...signers,
  };
}

/**
 * The `verify` rules of a config file; none when it does not exist.
 * @param file the config file (absolute)
 * @returns its rules, paths made absolute
 * @throws {OcipkgError} naming the file (and rule) when it is not valid
 */
export function readRules(file: string): Rule[] {
  // the one reader of the config file (transport/config.ts): JSON, an object, keys checked
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

/**
 * Whether a rule applies to an image: its canonical registry, every loopback spelling alike.
 * @param rule the rule
 * @param image the image
 * @returns whether it applies
 */
export function ruleApplies(rule: Rule, image: ImageName): boolean {
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
