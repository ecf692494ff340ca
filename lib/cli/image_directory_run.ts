/**
 * The work of `ocipkg image-directory`: the store directory of an image. Its
 * table (usage, options, examples) is `image_directory.ts`; this module is
 * loaded only when the command runs.
 *
 * @module
 */
import { imageName } from "../oci/reference.ts";
import { installedImageDir } from "../ops/install.ts";
import { Store } from "../store/store.ts";
import { NotFoundError } from "../util/errors.ts";
import { formatPlatform } from "../oci/platform.ts";
import { implement } from "./options.ts";
import { out } from "./output.ts";
import command from "./image_directory.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([image], opts) => {
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
});
