/**
 * `ocipkg catalog`: the repositories of a registry, printed page by page.
 *
 * @module
 */
import { listCatalogPages } from "../transport/mod.ts";
import { defineCommand } from "./options.ts";
import { write } from "./output.ts";
import { jsonOption, registryHints, registryOptions, remote } from "./shared.ts";

/** The command. */
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
  async run([registry], opts) {
    // printed as pages arrive: memory stays at one page however large the registry
    let first = true;
    if (opts.json) await write("[");
    for await (const page of listCatalogPages(registry!, remote(opts))) {
      if (page.length === 0) continue;
      if (opts.json) {
        await write(`${first ? "" : ","}${page.map((r) => JSON.stringify(r)).join(",")}`);
      } else await write(`${page.join("\n")}\n`);
      first = false;
    }
    if (opts.json) await write("]\n");
  },
});
