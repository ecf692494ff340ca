/**
 * The work of `ocipkg login`: check credentials against a registry and save
 * them. Its table (usage, options, examples) is `login.ts`; this module is
 * loaded only when the command runs.
 *
 * @module
 */
import { UsageError } from "../util/errors.ts";
import { login } from "../transport/registry/login.ts";
import { readStdinSecret } from "../util/stdio.ts";
import { implement } from "./options.ts";
import { info, out } from "./output.ts";
import { remote } from "./shared.ts";
import command from "./login.ts";

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

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([registry], opts) => {
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
});
