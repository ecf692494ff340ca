/**
 * `ocipkg resolve`: the digest an image resolves to.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption, registryHints, registryOptions } from "./shared.ts";

/** The command's table (its work: `resolve_run.ts`). */
export default defineCommand({
  name: "resolve",
  usage: "resolve <image> [--json]",
  summary: "Print the digest an image (tag) resolves to",
  positionals: [1, 1],
  options: { ...jsonOption, ...registryOptions },
  examples: [
    {
      command: "ocipkg resolve ghcr.io/org/libfoo:1.0",
      description: "the manifest (or index) digest the tag points at",
    },
    {
      command: "ocipkg get ghcr.io/org/libfoo@$(ocipkg resolve ghcr.io/org/libfoo:1.0)",
      description: "pin a build to what the tag points at today",
    },
    {
      command: "ocipkg resolve localhost:5000/org/libfoo:1.0 --json",
      description:
        "crane digest's equivalent, as JSON; 'ocipkg manifest IMAGE --descriptor' adds media type and size",
    },
  ],
  hints: registryHints,
});
