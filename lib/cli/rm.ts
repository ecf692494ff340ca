/**
 * `ocipkg rm`: remove images from the local store.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption, platformOption } from "./shared.ts";

/** The command's table (its work: `rm_run.ts`). */
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
});
