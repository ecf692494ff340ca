/**
 * `ocipkg rm`: remove images from the local store.
 *
 * @module
 */
import { imageName, Store } from "../../mod.ts";
import { defineCommand } from "./options.ts";
import { info, out } from "./output.ts";
import { jsonOption } from "./shared.ts";

/** The command. */
export default defineCommand({
  name: "rm",
  usage: "rm <image>...",
  summary: "Remove images from the local store",
  positionals: [1, Infinity],
  options: jsonOption,
  examples: [
    {
      command: "ocipkg rm ghcr.io/org/libfoo:1.0 ghcr.io/org/libbar:2",
      description: "remove two images",
    },
  ],
  async run(images, opts) {
    const store = new Store();
    const removed: string[] = [];
    for (const n of images) {
      const name = imageName(n);
      await store.remove(name);
      removed.push(name.toString());
      if (!opts.json) info(`removed ${name}`);
    }
    if (opts.json) out(JSON.stringify({ removed }));
  },
});
