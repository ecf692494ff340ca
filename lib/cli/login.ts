/**
 * `ocipkg login`: check credentials against a registry and save them.
 *
 * @module
 */
import { login, UsageError } from "../../mod.ts";
import { defineCommand } from "./options.ts";
import { info } from "./output.ts";
import { registryHints, registryOptions, remote } from "./shared.ts";

async function readStdin(): Promise<string> {
  const text = await new Response(Deno.stdin.readable).text();
  return text.replace(/\r?\n$/, "");
}

/** The command. */
export default defineCommand({
  name: "login",
  usage: "login <registry> [-u user] [-p pass | --password-stdin]",
  summary: "Check credentials against a registry and save them (mode 0600)",
  positionals: [1, 1],
  options: {
    username: { type: "string", short: "u", value: "user", description: "the user name" },
    password: {
      type: "string",
      short: "p",
      value: "pass",
      description: "the password or token (visible to other users in the process list)",
    },
    "password-stdin": {
      type: "boolean",
      description: "read the password or token from stdin",
    },
    ...registryOptions,
  },
  examples: [
    {
      command: 'echo "$GITHUB_TOKEN" | ocipkg login ghcr.io -u me --password-stdin',
      description: "save a token for ghcr.io",
    },
  ],
  hints: registryHints,
  async run([registry], opts) {
    const username = opts.username;
    let password = opts.password;
    if (opts.passwordStdin) password = await readStdin();
    if (!username || password === undefined) {
      throw new UsageError("login needs -u <user> and -p <pass> or --password-stdin");
    }
    await login(registry!, { username, password }, remote(opts));
    info(`logged in to ${registry}`);
  },
});
