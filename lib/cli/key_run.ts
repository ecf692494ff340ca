/**
 * The work of `ocipkg key generate`: a cosign key pair. Its table (usage,
 * options, examples) is `key.ts`; this module is loaded only when the
 * command runs.
 *
 * @module
 */
import { generateKeyFiles } from "../sign/flow.ts";
import { implement } from "./options.ts";
import { info, out } from "./output.ts";
import { newKeyPassword } from "./password.ts";
import command from "./key.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async (_generate, opts) => {
  const prefix = opts.outputKeyPrefix ?? "cosign";
  const files = await generateKeyFiles(prefix, {
    password: await newKeyPassword(),
    force: opts.force,
  });
  if (opts.json) out(JSON.stringify(files));
  else {
    info(`Private key written to ${files.key}`);
    info(`Public key written to ${files.pub}`);
  }
});
