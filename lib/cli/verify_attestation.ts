/**
 * `ocipkg verify-attestation`: check the in-toto attestations of a type
 * attached to an image in Sigstore bundles (cosign v3, GitHub's
 * `actions/attest`), with a key or a keyless identity, and print their
 * predicates.
 *
 * @module
 */
import { bundleHints, identityOptions } from "./identity.ts";
import { defineCommand } from "./options.ts";
import { jsonOption, registryHints, registryOptions } from "./shared.ts";

/** The command's table (its work: `verify_attestation_run.ts`). */
export default defineCommand({
  name: "verify-attestation",
  usage: "verify-attestation <image> --type <type|uri> (--key <cosign.pub> [--key …] | " +
    "--certificate-identity[-regexp] <id> --certificate-oidc-issuer[-regexp] <url> " +
    "[--trusted-root <root.json>]) [--json]",
  summary:
    "Verify an image's attestations of a type (Sigstore bundles) and print their predicates; exit 1 when none verifies",
  positionals: [1, 1],
  options: {
    type: {
      type: "string",
      value: "type|uri",
      required: true,
      description:
        "slsaprovenance (v0.2 or v1), slsaprovenance02, slsaprovenance1, spdxjson, cyclonedx, vuln, openvex, link, custom, or a URI",
    },
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
      command: "ocipkg verify-attestation ghcr.io/org/libfoo:1.2 --type slsaprovenance1 " +
        "--certificate-identity-regexp '^https://github\\.com/org/libfoo/' " +
        "--certificate-oidc-issuer https://token.actions.githubusercontent.com",
      description:
        "GitHub's build provenance (actions/attest-build-provenance, pushed to the registry)",
    },
    {
      command: "ocipkg verify-attestation libfoo.tar --type spdxjson --key cosign.pub --json",
      description: "an SBOM attached with 'ocipkg attest' (or cosign attest --key)",
    },
  ],
  hints: [...registryHints, ...bundleHints],
});
