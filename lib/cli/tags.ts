/**
 * `ocipkg tags`: the tags of a repository, printed page by page.
 *
 * @module
 */
import { listTagPages } from "../../mod.ts";
import { defineCommand } from "./options.ts";
import { write } from "./output.ts";
import { jsonOption, registryHints, registryOptions, remote } from "./shared.ts";

/** The command. */
export default defineCommand({
  name: "tags",
  usage: "tags <repository> [--json]",
  summary: "List the tags of a repository",
  positionals: [1, 1],
  options: { ...jsonOption, ...registryOptions },
  examples: [
    { command: "ocipkg tags ghcr.io/org/libfoo", description: "one tag a line" },
    { command: "ocipkg tags localhost:5000/libfoo --json", description: "a JSON array" },
  ],
  hints: registryHints,
  async run([repository], opts) {
    // printed as pages arrive: memory stays at one page however long the list
    let first = true;
    if (opts.json) await write("[");
    for await (const page of listTagPages(repository!, remote(opts))) {
      if (opts.json) {
        const items = page.map((t) => JSON.stringify(t)).join(",");
        if (items) await write(`${first ? "" : ","}${items}`);
        if (items) first = false;
      } else if (page.length) await write(`${page.join("\n")}\n`);
    }
    if (opts.json) await write("]\n");
  },
});
