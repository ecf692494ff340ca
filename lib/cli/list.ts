/**
 * `ocipkg list`: the images in the local store.
 *
 * @module
 */
import { Store } from "../../mod.ts";
import { defineCommand } from "./options.ts";
import { out } from "./output.ts";
import { jsonOption } from "./shared.ts";

/** The command. */
export default defineCommand({
  name: "list",
  usage: "list [--json]",
  summary: "List images in the local store",
  positionals: [0, 0],
  options: jsonOption,
  examples: [
    { command: "ocipkg list", description: "one image name a line" },
    { command: "ocipkg list --json", description: "a JSON array of image names" },
  ],
  async run(_args, opts) {
    const names = (await new Store().list()).map((n) => n.toString());
    if (opts.json) out(JSON.stringify(names));
    else for (const n of names) out(n);
  },
});
