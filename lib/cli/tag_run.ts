/**
 * The work of `ocipkg tag`: more tags for an image, without uploading
 * anything again. Its table (usage, options, examples) is `tag.ts`; this
 * module is loaded only when the command runs.
 *
 * @module
 */
import { tagImage } from "../ops/tagging.ts";
import { resolveLocation } from "../transport/location.ts";
import { implement } from "./options.ts";
import { out } from "./output.ts";
import { remote } from "./shared.ts";
import command from "./tag.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([image, ...tags], opts) => {
  const digest = await tagImage(await resolveLocation(image!), tags, remote(opts));
  out(opts.json ? JSON.stringify({ image, tags, digest }) : digest);
});
