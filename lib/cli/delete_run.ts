/**
 * The work of `ocipkg delete`: delete an image (a manifest, and the tags
 * pointing to it) or a tag alone from a registry. Its table (usage, options,
 * examples) is `delete.ts`; this module is loaded only when the command
 * runs.
 *
 * @module
 */
import { deleteImage } from "../ops/deletion.ts";
import { implement } from "./options.ts";
import { info, out } from "./output.ts";
import { remote } from "./shared.ts";
import command from "./delete.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([image], opts) => {
  const r = await deleteImage(image!, {
    ...remote(opts),
    force: opts.force,
    tagOnly: opts.tagOnly,
    dryRun: opts.dryRun,
  });
  if (opts.json) {
    out(JSON.stringify(r));
    return;
  }
  const would = r.dryRun ? "would delete" : "deleted";
  const tags = r.tags.length ? r.tags.join(", ") : "none";
  if (r.deleted === "tag") info(`${would} tag ${r.tags[0]} (manifest ${r.digest} stays)`);
  else info(`${would} manifest ${r.digest}; tags removed with it: ${tags}`);
  if (r.tagsUnknown) info(`warning: other tags may point to it too: ${r.tagsUnknown}`);
  out(r.digest);
});
