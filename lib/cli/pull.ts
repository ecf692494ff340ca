/**
 * `ocipkg pull`: save an image from a registry as an oci-archive or oci-dir.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import {
  formatOptions,
  platformSelection,
  progressOptions,
  registryHints,
  registryOptions,
  signaturesOption,
} from "./shared.ts";

/** The command's table (its work: `pull_run.ts`). */
export default defineCommand({
  name: "pull",
  usage: "pull <image> -o <out.tar|dir|-> [--format archive|dir] [--plain-http] [--ca-file pem]",
  summary: "Save an image from a registry as an oci-archive or oci-dir",
  positionals: [1, 1],
  options: {
    ...signaturesOption,
    output: {
      type: "string",
      short: "o",
      value: "out.tar|dir|-",
      required: true,
      description:
        "the oci-archive or oci-dir to write; - writes an oci-archive to stdout (not a terminal; the result line then goes to stderr)",
    },
    ...formatOptions,
    ...platformSelection,
    ...registryOptions,
    ...progressOptions,
  },
  examples: [
    {
      command: "ocipkg pull ghcr.io/org/libfoo:1.0 -o libfoo.tar",
      description: "save an image (every platform of an index) as an oci-archive",
    },
    {
      command: "ocipkg pull ghcr.io/org/libfoo:1.0 -o ./libfoo --format dir",
      description: "save it as an oci-dir",
    },
    {
      command: "ocipkg pull ghcr.io/org/libfoo:1.0 -o libfoo-arm64.tar --platform linux/arm64",
      description: "save only the arm64 package of a multi-platform image",
    },
    {
      command: "ocipkg pull ghcr.io/org/libfoo:1.0 -o - | ssh build-host ocipkg load -",
      description: "stream it as an oci-archive to another machine's store (crane export's way)",
    },
  ],
  hints: registryHints,
});
