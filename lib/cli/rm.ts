/**
 * `ocipkg rm`: remove images from the local store.
 *
 * @module
 */
import { ImageName, Store } from "../../mod.ts";
import { defineCommand } from "./options.ts";
import { info } from "./output.ts";

/** The command. */
export default defineCommand({
  name: "rm",
  usage: "rm <image>...",
  summary: "Remove images from the local store",
  positionals: [1, Infinity],
  options: {},
  examples: [
    {
      command: "ocipkg rm ghcr.io/org/libfoo:1.0 ghcr.io/org/libbar:2",
      description: "remove two images",
    },
  ],
  async run(images) {
    const store = new Store();
    for (const n of images) {
      await store.remove(ImageName.parse(n));
      info(`removed ${ImageName.parse(n)}`);
    }
  },
});
