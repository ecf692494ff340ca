/**
 * `ocipkg image-directory`: the store directory of an image.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption, lockFileOption, platformOption } from "./shared.ts";

/** The command's table (its work: `image_directory_run.ts`). */
export default defineCommand({
  name: "image-directory",
  usage: "image-directory <image> [--platform os/arch|triple]",
  summary: "Print the store directory of an image",
  positionals: [1, 1],
  options: {
    ...jsonOption,
    platform: platformOption("the directory of the install for this platform", "this host's"),
    ...lockFileOption,
  },
  examples: [
    {
      command: "ocipkg image-directory ghcr.io/org/libfoo:1.0",
      description: "where the store keeps the image's files (exit 3 when it is not installed)",
    },
  ],
});
