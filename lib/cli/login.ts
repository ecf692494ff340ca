/**
 * `ocipkg login`: check credentials against a registry and save them.
 *
 * @module
 */
import { UsageError } from "../../mod.ts";
import { login } from "../transport/mod.ts";
import { readStdinSecret } from "../util/stdio.ts";
import { defineCommand } from "./options.ts";
import { info, out } from "./output.ts";
import { jsonOption, registryHints, registryOptions, remote } from "./shared.ts";

/** Ask on the terminal, without echo (raw mode), for one line. */
async function prompt(question: string, echo: boolean): Promise<string> {
  const enc = new TextEncoder();
  await Deno.stderr.write(enc.encode(question));
  if (!echo) Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  const buf = new Uint8Array(1);
  try {
    while (true) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      const c = buf[0]!;
      if (c === 13 || c === 10) break;
      if (c === 3) throw new UsageError("login cancelled"); // Ctrl-C in raw mode
      if (c === 127 || c === 8) bytes.pop();
      else bytes.push(c);
    }
  } finally {
    if (!echo) {
      Deno.stdin.setRaw(false);
      await Deno.stderr.write(enc.encode("\n"));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** The command. */
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
  async run([registry], opts) {
    if (opts.password !== undefined && opts.passwordStdin) {
      throw new UsageError("give the password with -p or with --password-stdin, not both");
    }
    if (opts.password !== undefined) {
      info(
        "warning: a password given with -p/--password ends up in the shell's history and the process list; use --password-stdin",
      );
    }
    let username = opts.username;
    let password = opts.password;
    if (opts.passwordStdin) password = await readStdinSecret("the password (--password-stdin)");
    const tty = Deno.stdin.isTerminal();
    if (!username && tty && !opts.passwordStdin) username = await prompt("Username: ", true);
    if (password === undefined && tty) password = await prompt("Password: ", false);
    if (!username || password === undefined) {
      throw new UsageError(
        "login needs -u <user> and a password: -p <pass>, --password-stdin, or a terminal to ask on",
      );
    }
    if (password === "") {
      throw new UsageError(
        `empty password for ${registry}: give the password or token (with --password-stdin, check that the variable piped in is set)`,
      );
    }
    await login(registry!, { username, password }, remote(opts));
    if (opts.json) out(JSON.stringify({ registry, username, status: "logged in" }));
    else info(`logged in to ${registry}`);
  },
});
