/**
 * The work of `ocipkg compose`: files into an ocipkg artifact. Its table
 * (usage, options, examples) is `compose.ts`; this module is loaded only
 * when the command runs.
 *
 * @module
 */
import { composeFiles } from "../ops/artifact.ts";
import { implement } from "./options.ts";
import { packing, reportPacked } from "./shared.ts";
import command from "./compose.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async (files, opts) => {
  const r = await composeFiles(files, opts.output, {
    ...packing(opts),
    compression: opts.compression,
    allowPlatformMismatch: opts.allowPlatformMismatch,
  });
  reportPacked(r, `composed ${files.length} file(s)`, opts.tag, opts.json, opts.quiet);
});
