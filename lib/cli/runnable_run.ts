/**
 * The work of `ocipkg runnable`: a container image running an executable.
 * Its table (usage, options, examples) is `runnable.ts`; this module is
 * loaded only when the command runs.
 *
 * @module
 */
import { basename } from "../util/path.ts";
import { formatPlatform } from "../oci/platform.ts";
import { buildRunnable } from "../native/runnable.ts";
import { implement } from "./options.ts";
import { info, out } from "./output.ts";
import { annotations } from "./shared.ts";
import command from "./runnable.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([exe], opts) => {
  const r = await buildRunnable(exe!, opts.output ?? `${basename(exe!)}.tar`, {
    name: opts.tag,
    platform: opts.platform,
    args: opts.arg,
    env: opts.env,
    annotations: annotations(opts.annotation),
    format: opts.format,
  });
  if (r.binary.dynamic) {
    info(
      `warning: '${exe}' is dynamically linked; it will not run in an image without its loader and libraries`,
    );
  }
  out(`${r.name} ${r.digest}`);
  info(`wrote ${r.output} (${formatPlatform(r.platform)}, ${r.binary.format})`);
});
