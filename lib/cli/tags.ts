/**
 * `ocipkg tags`: the tags of a repository, printed page by page.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption, registryHints, registryOptions } from "./shared.ts";

/** The command's table (its work: `tags_run.ts`). */
export default defineCommand({
  name: "tags",
  usage: "tags <repository> [--json]",
  summary: "List the tags of a repository (a registry's repositories: catalog)",
  positionals: [1, 1],
  options: { ...jsonOption, ...registryOptions },
  examples: [
    {
      command: "ocipkg tags ghcr.io/org/libfoo",
      description: "one tag a line, in version order (1.9 before 1.10, 1.0-rc1 before 1.0)",
    },
    {
      command: "ocipkg tags localhost:5000/libfoo --json",
      description: "a JSON array, in the registry's order",
    },
  ],
  hints: registryHints,
});
