/**
 * The work of `ocipkg logout`: remove saved credentials. Its table (usage,
 * options, examples) is `logout.ts`; this module is loaded only when the
 * command runs.
 *
 * @module
 */
import { logout } from "../transport/registry/login.ts";
import { implement } from "./options.ts";
import { info, out } from "./output.ts";
import command from "./logout.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([registry], opts) => {
  await logout(registry!);
  if (opts.json) out(JSON.stringify({ registry, status: "logged out" }));
  else info(`logged out of ${registry}`);
});
