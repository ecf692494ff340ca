/**
 * The work of `ocipkg get`: pull an image into the local store (cached). Its
 * table (usage, options, examples) is `get.ts`; this module is loaded only
 * when the command runs.
 *
 * @module
 */
import { getImage } from "../ops/install.ts";
import { imageName } from "../oci/reference.ts";
import { implement } from "./options.ts";
import { reportInstalled, withProgress } from "./progress.ts";
import { lockSettings, remote } from "./shared.ts";
import { limits, verifyPolicy } from "./install_options.ts";
import command from "./get.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([image], opts) => {
  const name = imageName(image!);
  const r = await withProgress(
    opts,
    image!,
    (p) =>
      getImage(name, {
        ...verifyPolicy(opts),
        ...lockSettings(opts),
        ...remote(opts),
        ...limits(opts),
        ...p,
        force: opts.overwrite,
        refresh: opts.refresh,
        platform: opts.platform,
      }),
    // from the store, nothing moved: no closing line, as fast as ever
    (r) => r.status === "installed" ? `got ${r.name},` : undefined,
  );
  reportInstalled(r, opts);
});
