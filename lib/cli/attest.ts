/**
 * `ocipkg attest`: attach an in-toto attestation to an image, signed with a
 * cosign key, in a Sigstore bundle (cosign v3's `attest --key`).
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption, registryHints, registryOptions } from "./shared.ts";

/** The command's table (its work: `attest_run.ts`). */
export default defineCommand({
  name: "attest",
  usage: "attest <image> --predicate <file.json> --type <type|uri> --key <cosign.key> [--json]",
  summary:
    "Attach a signed in-toto attestation to an image (a Sigstore bundle referrer, as cosign v3)",
  positionals: [1, 1],
  options: {
    predicate: {
      type: "string",
      value: "file.json",
      required: true,
      description: "the predicate (JSON): a SLSA provenance, an SBOM, a review…",
    },
    type: {
      type: "string",
      value: "type|uri",
      required: true,
      description:
        "its type: slsaprovenance (v0.2), slsaprovenance1, spdxjson, cyclonedx, vuln, openvex, link, custom, or a URI",
    },
    key: {
      type: "string",
      value: "file",
      required: true,
      description: "the private key (cosign's encrypted PEM; password from COSIGN_PASSWORD)",
    },
    ...jsonOption,
    ...registryOptions,
  },
  examples: [
    {
      command:
        "ocipkg attest ghcr.io/org/libfoo:1.2 --predicate sbom.spdx.json --type spdxjson --key cosign.key",
      description: "attach an SBOM, signed; verify it with 'ocipkg verify-attestation'",
    },
  ],
  hints: registryHints,
});
