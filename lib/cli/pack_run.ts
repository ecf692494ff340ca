/**
 * The work of `ocipkg pack`: a directory into an ocipkg artifact. Its table
 * (usage, options, examples) is `pack.ts`; this module is loaded only when
 * the command runs.
 *
 * @module
 */
import { packDirectory } from "../ops/artifact.ts";
import { implement } from "./options.ts";
import { packing, reportPacked } from "./shared.ts";
import command from "./pack.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([dir, output], opts) => {
  const r = await packDirectory(dir!, output!, {
    ...packing(opts),
    compression: opts.compression,
    allowPlatformMismatch: opts.allowPlatformMismatch,
  });
  reportPacked(r, `packed ${dir}`, opts.tag, opts.json, opts.quiet);
});
