/**
 * The work of `ocipkg load`: an image from an oci-archive or oci-dir into
 * the local store. Its table (usage, options, examples) is `load.ts`; this
 * module is loaded only when the command runs.
 *
 * @module
 */
import { imageName } from "../oci/reference.ts";
import { loadImage } from "../ops/install_from.ts";
import { type LayoutLocation, resolveLocation } from "../transport/location.ts";
import { implement } from "./options.ts";
import { info } from "./output.ts";
import { chatty, reportInstalled, withProgress } from "./progress.ts";
import { lockSettings } from "./shared.ts";
import { limits, verifyPolicy } from "./install_options.ts";
import command from "./load.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([layout], opts) => {
  const from = await resolveLocation(layout!, { accept: "layout" }) as LayoutLocation;
  const name = opts.tag === undefined ? undefined : imageName(opts.tag);
  const r = await withProgress(opts, layout!, (p) =>
    loadImage(from, {
      ...verifyPolicy(opts),
      ...lockSettings(opts),
      ...limits(opts),
      ...p,
      force: opts.overwrite,
      name,
      platform: opts.platform,
    }));
  if (chatty(opts)) {
    info(
      r.status === "present"
        ? `${r.name} is already in the store (use -f to replace)`
        : `loaded ${r.name}`,
    );
  }
  reportInstalled(r, opts);
});
