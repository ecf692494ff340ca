/**
 * `ocipkg rm`: remove images from the local store.
 *
 * @module
 */
import { imageName, Store } from "../../mod.ts";
import { defineCommand } from "./options.ts";
import { info, out } from "./output.ts";
import { jsonOption, platformOption } from "./shared.ts";

/** The command. */
export default defineCommand({
  name: "rm",
  usage: "rm <image>... [--platform os/arch|triple]",
  summary: "Remove images from the local store",
  positionals: [1, Infinity],
  options: {
    ...jsonOption,
    platform: platformOption(
      "remove only the install for this platform",
      "every platform's install",
    ),
  },
  examples: [
    {
      command: "ocipkg rm ghcr.io/org/libfoo:1.0 ghcr.io/org/libbar:2",
      description: "remove two images (their installs for every platform)",
    },
    {
      command: "ocipkg rm ghcr.io/org/libfoo:1.0 --platform aarch64-unknown-linux-gnu",
      description: "remove the linux/arm64 install only (e.g. a cross build's)",
    },
  ],
  async run(images, opts) {
    const store = new Store();
    const removed: string[] = [];
    for (const n of images) {
      const name = imageName(n);
      await store.remove(name, opts.platform);
      removed.push(name.toString());
      if (!opts.json) info(`removed ${name}`);
    }
    if (opts.json) out(JSON.stringify({ removed }));
  },
});
