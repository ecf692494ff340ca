/**
 * `ocipkg image-directory`: the store directory of an image.
 *
 * @module
 */
import { ImageName, Store } from "../../mod.ts";
import { defineCommand } from "./options.ts";
import { out } from "./output.ts";

/** The command. */
export default defineCommand({
  name: "image-directory",
  usage: "image-directory <image>",
  summary: "Print the store directory of an image",
  positionals: [1, 1],
  options: {},
  examples: [
    {
      command: "ocipkg image-directory ghcr.io/org/libfoo:1.0",
      description: "where the store keeps (or would keep) the image's files",
    },
  ],
  run([image]) {
    out(new Store().imageDir(ImageName.parse(image!)));
    return Promise.resolve();
  },
});
