/**
 * `ocipkg logout`: remove saved credentials.
 *
 * @module
 */
import { logout } from "../transport/mod.ts";
import { defineCommand } from "./options.ts";
import { info, out } from "./output.ts";
import { jsonOption } from "./shared.ts";

/** The command. */
export default defineCommand({
  name: "logout",
  usage: "logout <registry>",
  summary: "Remove saved credentials for a registry",
  positionals: [1, 1],
  options: jsonOption,
  examples: [{ command: "ocipkg logout ghcr.io", description: "forget ghcr.io's credentials" }],
  async run([registry], opts) {
    await logout(registry!);
    if (opts.json) out(JSON.stringify({ registry, status: "logged out" }));
    else info(`logged out of ${registry}`);
  },
});
