/**
 * The work of `ocipkg blob`: save one blob of a registry, streamed and
 * verified, to a file or stdout. Its table (usage, options, examples) is
 * `blob.ts`; this module is loaded only when the command runs.
 *
 * @module
 */
import { saveBlob } from "../ops/raw.ts";
import { implement } from "./options.ts";
import { info, out } from "./output.ts";
import { remote } from "./shared.ts";
import command from "./blob.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([image], opts) => {
  const desc = await saveBlob(image!, opts.output, remote(opts));
  // with -o -, stdout carries the blob: out() prints on stderr then
  const { digest, size } = desc;
  if (opts.json) out(JSON.stringify({ image, digest, size, output: opts.output }));
  else {
    out(digest);
    if (opts.output !== "-") info(`saved ${size} bytes to ${opts.output}`);
  }
});
