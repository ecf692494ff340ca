/**
 * `ocipkg catalog`: the repositories of a registry, printed page by page.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption, registryHints, registryOptions } from "./shared.ts";

/** The command's table (its work: `catalog_run.ts`). */
export default defineCommand({
  name: "catalog",
  usage: "catalog <registry> [--json]",
  summary: "List the repositories of a registry (its catalog), page by page",
  positionals: [1, 1],
  options: { ...jsonOption, ...registryOptions },
  examples: [
    {
      command: "ocipkg catalog localhost:5000",
      description: "one repository a line, in the registry's order",
    },
    {
      command: "ocipkg catalog localhost:5000 --json",
      description: "a JSON array (then 'ocipkg tags localhost:5000/<repository>' for its tags)",
    },
  ],
  hints: registryHints,
});
