/**
 * The work of `ocipkg resolve`: the digest an image resolves to. Its table
 * (usage, options, examples) is `resolve.ts`; this module is loaded only
 * when the command runs.
 *
 * @module
 */
import { resolveImage } from "../ops/tagging.ts";
import { resolveLocation } from "../transport/location.ts";
import { implement } from "./options.ts";
import { out } from "./output.ts";
import { remote } from "./shared.ts";
import command from "./resolve.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([image], opts) => {
  const digest = await resolveImage(await resolveLocation(image!), remote(opts));
  out(opts.json ? JSON.stringify({ image, digest }) : digest);
});
