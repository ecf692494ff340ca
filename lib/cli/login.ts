/**
 * `ocipkg login`: check credentials against a registry and save them.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption, registryHints, registryOptions } from "./shared.ts";

/** The command's table (its work: `login_run.ts`). */
export default defineCommand({
  name: "login",
  usage: "login <registry> [-u user] [-p pass | --password-stdin]  (asks on a terminal)",
  summary: "Check credentials against a registry and save them (mode 0600)",
  positionals: [1, 1],
  options: {
    username: { type: "string", short: "u", value: "user", description: "the user name" },
    password: {
      type: "string",
      short: "p",
      value: "pass",
      description:
        "the password or token (kept in shell history, visible in the process list: prefer --password-stdin)",
    },
    "password-stdin": {
      type: "boolean",
      description: "read the password or token from stdin",
    },
    ...registryOptions,
    ...jsonOption,
  },
  examples: [
    {
      command: 'echo "$GITHUB_TOKEN" | ocipkg login ghcr.io -u me --password-stdin',
      description: "save a token for ghcr.io",
    },
    {
      command: "ocipkg login localhost:5000 -u alice",
      description: "on a terminal: asks for the password without echoing it",
    },
  ],
  hints: registryHints,
});
