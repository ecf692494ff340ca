/**
 * The work of `ocipkg catalog`: the repositories of a registry, printed page
 * by page. Its table (usage, options, examples) is `catalog.ts`; this module
 * is loaded only when the command runs.
 *
 * @module
 */
import { listCatalogPages } from "../transport/registry/catalog.ts";
import { implement } from "./options.ts";
import { write } from "./output.ts";
import { remote } from "./shared.ts";
import command from "./catalog.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([registry], opts) => {
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
});
