/**
 * The work of `ocipkg rm`: remove images from the local store. Its table
 * (usage, options, examples) is `rm.ts`; this module is loaded only when the
 * command runs.
 *
 * @module
 */
import { imageName } from "../oci/reference.ts";
import { Store } from "../store/store.ts";
import { implement } from "./options.ts";
import { info, out } from "./output.ts";
import command from "./rm.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async (images, opts) => {
  const store = new Store();
  const removed: string[] = [];
  for (const n of images) {
    const name = imageName(n);
    await store.remove(name, opts.platform);
    removed.push(name.toString());
    if (!opts.json) info(`removed ${name}`);
  }
  if (opts.json) out(JSON.stringify({ removed }));
});
