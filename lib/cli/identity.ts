/**
 * The keyless-signer flags, as cosign spells them — `--certificate-identity`
 * (or `-regexp`), `--certificate-oidc-issuer` (or `-regexp`),
 * `--trusted-root` — shared by `verify`, `verify-attestation`,
 * `verify-blob`, `get`, `link` and `load`, and the one check of how they
 * combine with a key flag.
 *
 * @module
 */
import { UsageError } from "../util/errors.ts";
import { optionGroup, type OptionValues } from "./options.ts";

/** The flags. */
export const identityOptions = optionGroup({
  "certificate-identity": {
    type: "string",
    value: "id",
    description:
      "a keyless signer: the signing certificate's identity, exactly (a workflow URI, an email)",
  },
  "certificate-identity-regexp": {
    type: "string",
    value: "regexp",
    description: "or a regular expression it must match (anywhere: anchor it with ^…$)",
  },
  "certificate-oidc-issuer": {
    type: "string",
    value: "url",
    description: "the certificate's OIDC issuer, exactly",
  },
  "certificate-oidc-issuer-regexp": {
    type: "string",
    value: "regexp",
    description: "or a regular expression it must match",
  },
  "trusted-root": {
    type: "string",
    value: "file",
    description: "a Sigstore trusted root (JSON) for bundles",
    default: "the public-good root shipped with ocipkg",
  },
});

/** What the flags give: an identity and issuer (each exact or a regexp), a trusted root. */
export interface IdentityFlags {
  /** `--certificate-identity`. */
  identity?: string;
  /** `--certificate-identity-regexp`. */
  identityRegexp?: string;
  /** `--certificate-oidc-issuer`. */
  issuer?: string;
  /** `--certificate-oidc-issuer-regexp`. */
  issuerRegexp?: string;
  /** `--trusted-root`. */
  trustedRoot?: string;
}

/**
 * Read the flags, checking how they combine with the key flag: one of the
 * key and an identity (`required`), never both; an identity needs its issuer;
 * no exact value and regexp of the same thing.
 *
 * @param opts the parsed flags
 * @param hasKey whether the key flag was given
 * @param keyFlag its name, for messages (`--key`, `--verify-key`)
 * @param required whether a key or an identity must be given
 * @returns the identity flags (all undefined when none was given)
 * @throws {UsageError} naming the flags that do not fit together
 */
export function identityFlags(
  opts: OptionValues<typeof identityOptions>,
  hasKey: boolean,
  keyFlag: string,
  required: boolean,
): IdentityFlags {
  const both = (exact: string | undefined, regexp: string | undefined, name: string) => {
    if (exact !== undefined && regexp !== undefined) {
      throw new UsageError(`give --${name} or --${name}-regexp, not both`);
    }
  };
  both(opts.certificateIdentity, opts.certificateIdentityRegexp, "certificate-identity");
  both(opts.certificateOidcIssuer, opts.certificateOidcIssuerRegexp, "certificate-oidc-issuer");
  const identity = opts.certificateIdentity ?? opts.certificateIdentityRegexp;
  const issuer = opts.certificateOidcIssuer ?? opts.certificateOidcIssuerRegexp;
  if (hasKey && (identity !== undefined || issuer !== undefined)) {
    throw new UsageError(`give ${keyFlag} or --certificate-identity, not both`);
  }
  if (!hasKey && identity === undefined) {
    if (required) {
      throw new UsageError(
        `give ${keyFlag} <cosign.pub>, or --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]`,
      );
    }
    if (issuer !== undefined) {
      throw new UsageError("--certificate-oidc-issuer needs --certificate-identity");
    }
  }
  if (identity !== undefined && issuer === undefined) {
    throw new UsageError(
      "give the OIDC issuer: --certificate-oidc-issuer or --certificate-oidc-issuer-regexp",
    );
  }
  return {
    identity: opts.certificateIdentity,
    identityRegexp: opts.certificateIdentityRegexp,
    issuer: opts.certificateOidcIssuer,
    issuerRegexp: opts.certificateOidcIssuerRegexp,
    trustedRoot: opts.trustedRoot,
  };
}

/** Hints for bundle refusals, as `verify-blob` gives them. */
export const bundleHints = [
  {
    when: /is signed with a key, not a certificate/,
    add: " (give --key)",
  },
  {
    when: /is signed with a certificate \(keyless\), not a key/,
    add: " (give --certificate-identity and --certificate-oidc-issuer)",
  },
  {
    when: /does not verify: .*(certificate chain|timestamp|checkpoint|inclusion)/,
    add: " (if it comes from another Sigstore instance, give that instance's --trusted-root)",
  },
];
