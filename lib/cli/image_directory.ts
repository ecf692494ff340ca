/**
 * `ocipkg image-directory`: the store directory of an image.
 *
 * @module
 */
import { imageName, installedImageDir, NotFoundError, Store } from "../../mod.ts";
import { formatPlatform } from "../oci/mod.ts";
import { defineCommand } from "./options.ts";
import { out } from "./output.ts";
import { jsonOption, lockFileOption, platformOption } from "./shared.ts";

/** The command. */
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
  async run([image], opts) {
    const name = imageName(image!);
    // with a lock, the entry holding the locked bytes (as `get` answers), else the tag's
    const dir = await installedImageDir(name, { platform: opts.platform, lock: opts.lock ?? true });
    // the README feeds this to CMAKE_PREFIX_PATH: a missing image must not look like a path
    if (dir === undefined) {
      const flag = opts.platform ? ` --platform ${formatPlatform(opts.platform)}` : "";
      throw new NotFoundError(
        `image '${image}' is not in the store (${
          new Store().imageDir(name, opts.platform)
        }); install it with 'ocipkg get ${image}${flag}'`,
      );
    }
    out(opts.json ? JSON.stringify({ image, name: name.toString(), dir }) : dir);
  },
});
