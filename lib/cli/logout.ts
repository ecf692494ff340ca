/**
 * `ocipkg logout`: remove saved credentials.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption } from "./shared.ts";

/** The command's table (its work: `logout_run.ts`). */
export default defineCommand({
  name: "logout",
  usage: "logout <registry>",
  summary: "Remove saved credentials for a registry",
  positionals: [1, 1],
  options: jsonOption,
  examples: [{ command: "ocipkg logout ghcr.io", description: "forget ghcr.io's credentials" }],
});
