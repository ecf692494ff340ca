/**
 * `ocipkg verify`: check an image's signatures — legacy cosign signatures
 * with a public key, Sigstore bundles (cosign v3) with a key or a keyless
 * identity.
 *
 * @module
 */
import { bundleHints, identityOptions } from "./identity.ts";
import { defineCommand } from "./options.ts";
import { jsonOption, registryHints, registryOptions } from "./shared.ts";

/** The command's table (its work: `verify_run.ts`). */
export default defineCommand({
  name: "verify",
  usage: "verify <image> (--key <cosign.pub> [--key …] | --certificate-identity[-regexp] <id> " +
    "--certificate-oidc-issuer[-regexp] <url> [--trusted-root <root.json>]) [--json]",
  summary:
    "Verify an image's signatures (legacy .sig and referrers, Sigstore bundles); exit 1 when none verifies",
  positionals: [1, 1],
  options: {
    key: {
      type: "string",
      multiple: true,
      value: "file",
      description: "a public key (PEM); repeat it: one of them must verify",
    },
    ...identityOptions,
    ...jsonOption,
    ...registryOptions,
  },
  examples: [
    {
      command: "ocipkg verify ghcr.io/org/libfoo:1.2 --key cosign.pub",
      description: "prints what verified; exits 1 with the reason when nothing does",
    },
    {
      command: "ocipkg verify ghcr.io/org/libfoo:1.2 " +
        "--certificate-identity-regexp '^https://github\\.com/org/libfoo/\\.github/workflows/' " +
        "--certificate-oidc-issuer https://token.actions.githubusercontent.com",
      description: "a keyless signature (cosign v3 bundle) made by a workflow of org/libfoo",
    },
    {
      command: "ocipkg verify libfoo.tar --key cosign.pub --json",
      description: "verify a package file before it is loaded",
    },
  ],
  hints: [
    ...registryHints,
    ...bundleHints,
    {
      when: /^no (signature|Sigstore bundle signature) of/,
      add: " (sign it with 'ocipkg sign' or cosign)",
    },
  ],
});
