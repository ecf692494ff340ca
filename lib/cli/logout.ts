/**
 * `ocipkg logout`: remove saved credentials.
 *
 * @module
 */
import { logout } from "../../mod.ts";
import { defineCommand } from "./options.ts";
import { info } from "./output.ts";

/** The command. */
export default defineCommand({
  name: "logout",
  usage: "logout <registry>",
  summary: "Remove saved credentials for a registry",
  positionals: [1, 1],
  options: {},
  examples: [{ command: "ocipkg logout ghcr.io", description: "forget ghcr.io's credentials" }],
  async run([registry]) {
    await logout(registry!);
    info(`logged out of ${registry}`);
  },
});
