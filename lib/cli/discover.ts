/**
 * `ocipkg discover`: an image's referrers as a tree.
 *
 * @module
 */
import { UsageError } from "../util/errors.ts";
import { defineCommand } from "./options.ts";
import { jsonOption, registryHints, registryOptions } from "./shared.ts";

function depth(text: string, flag: string): number {
  if (!/^[1-9]\d?$/.test(text)) throw new UsageError(`invalid ${flag} '${text}': use 1-99`);
  return Number(text);
}

/** The command's table (its work: `discover_run.ts`). */
export default defineCommand({
  name: "discover",
  usage: "discover <image> [--artifact-type type] [--depth n] [--json]",
  summary: "List an image's referrers (signatures, SBOMs, attachments) as a tree",
  positionals: [1, 1],
  options: {
    "artifact-type": {
      type: "string",
      value: "type",
      description: "only referrers of this type (at the first level)",
    },
    depth: {
      type: "string",
      value: "n",
      default: "4",
      parse: depth,
      description: "follow referrers of referrers this deep",
    },
    ...jsonOption,
    ...registryOptions,
  },
  examples: [
    {
      command: "ocipkg discover ghcr.io/org/libfoo:1.2",
      description: "everything attached to the image, and what is attached to those",
    },
    {
      command:
        "ocipkg discover localhost:5000/libfoo:1 --artifact-type application/spdx+json --json",
      description: "its SBOMs, as JSON",
    },
  ],
  hints: registryHints,
});
