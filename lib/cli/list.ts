/**
 * `ocipkg list`: the images in the local store.
 *
 * @module
 */
import { Store } from "../../mod.ts";
import { formatPlatform } from "../oci/mod.ts";
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
    {
      command: "ocipkg list",
      description:
        "one image a line; an install for another platform than the host's is followed by it, e.g. `ghcr.io/org/libfoo:1.0 (linux/arm64)`",
    },
    {
      command: "ocipkg list --json",
      description:
        'a JSON array of {"name", "platform", "dir"}; platform is null for the host\'s entry',
    },
  ],
  async run(_args, opts) {
    const entries = await new Store().list();
    if (opts.json) {
      out(JSON.stringify(entries.map((e) => ({
        name: e.name.toString(),
        platform: e.platform ? formatPlatform(e.platform) : null,
        dir: e.dir,
      }))));
    } else {
      for (const e of entries) {
        out(e.platform ? `${e.name} (${formatPlatform(e.platform)})` : e.name.toString());
      }
    }
  },
});
