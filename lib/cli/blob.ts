/**
 * `ocipkg blob`: save one blob of a registry, streamed and verified, to a
 * file or stdout.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption, registryHints, registryOptions } from "./shared.ts";

/** The command's table (its work: `blob_run.ts`). */
export default defineCommand({
  name: "blob",
  usage: "blob <image@digest> -o <file|-> [--json]",
  summary: "Save a blob of a registry, streamed and verified, to a file or stdout",
  positionals: [1, 1],
  options: {
    output: {
      type: "string",
      short: "o",
      value: "file|-",
      required: true,
      description:
        "the file to write (replaced only once the blob verified), or - for stdout (not a terminal; bytes go out as they arrive)",
    },
    ...jsonOption,
    ...registryOptions,
  },
  examples: [
    {
      command: "ocipkg blob ghcr.io/org/libfoo@sha256:… -o layer.tar.gz",
      description: "save a layer, verified against its digest",
    },
    {
      command: "ocipkg blob localhost:5000/org/libfoo@sha256:… -o - | tar tz",
      description: "stream a layer to another program",
    },
  ],
  hints: registryHints,
});
