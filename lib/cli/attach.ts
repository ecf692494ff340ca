/**
 * `ocipkg attach`: attach files to an image as an OCI 1.1 referrer.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption, registryHints, registryOptions } from "./shared.ts";

/** The command's table (its work: `attach_run.ts`). */
export default defineCommand({
  name: "attach",
  usage:
    "attach <image> <file>... --artifact-type <type> [--media-type t] [-a key=value]... [--json]",
  summary: "Attach files (SBOM, licence, provenance) to an image as an OCI 1.1 referrer",
  positionals: [2, Infinity],
  options: {
    "artifact-type": {
      type: "string",
      value: "type",
      required: true,
      description: "the artifact's type, e.g. application/spdx+json",
    },
    "media-type": {
      type: "string",
      value: "type",
      default: "application/octet-stream",
      description: "the files' media type",
    },
    annotation: {
      type: "string",
      multiple: true,
      short: "a",
      value: "key=value",
      description: "add an annotation to the artifact's manifest",
    },
    ...jsonOption,
    ...registryOptions,
  },
  examples: [
    {
      command:
        "ocipkg attach ghcr.io/org/libfoo:1.2 sbom.spdx.json --artifact-type application/spdx+json",
      description:
        "attach an SBOM (the referrers API, or the sha256-<hex> index on older registries)",
    },
    {
      command: "ocipkg attach libfoo.tar LICENSE --artifact-type text/plain -a kind=licence",
      description: "attach a licence text to a package file before it is pushed",
    },
  ],
  hints: registryHints,
});
