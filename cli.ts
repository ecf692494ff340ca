/**
 * The `ocipkg` command line: global options, dispatch, error printing and
 * exit codes. Each command is two modules under `lib/cli/`: its table (usage,
 * typed options, examples: all that help, completions and "did you mean"
 * need) and its work (one library call), loaded only when the command runs;
 * the work is done by the library (`mod.ts`).
 *
 * Exit codes: 0 success, 1 runtime failure, 2 usage error, 130 interrupted.
 *
 * @module
 */
import { basename } from "./lib/util/path.ts";
import { OcipkgError, oneLine, UsageError } from "./lib/util/errors.ts";
import { removeTempsSync } from "./lib/util/temp.ts";
import { COMMAND_NAMES, loadCommand, loadCommands } from "./lib/cli/commands.ts";
import { commandHelp } from "./lib/cli/options.ts";
import { clearProgress, signalsOwned } from "./lib/cli/signals.ts";
import { didYouMean } from "./lib/cli/suggest.ts";
import { out, setDebug } from "./lib/cli/output.ts";
import denoJson from "./deno.json" with { type: "json" };

async function help(): Promise<string> {
  const commands = await loadCommands();
  const lines = [
    `ocipkg ${denoJson.version} — distribute binaries through OCI registries`,
    "",
    "usage: ocipkg <command> [options]",
    "",
    "commands:",
    ...commands.map((c) => `  ${c.name.padEnd(16)} ${c.summary}`),
    "",
    "global options: --debug (stack traces), --help, --version",
    "run 'ocipkg <command> --help' (or 'ocipkg help <command>') for a command's options and examples",
  ];
  return lines.join("\n");
}

/** `ocipkg help help`. */
const HELP_HELP = [
  "usage: ocipkg help [<command>]",
  "",
  "Show the commands, or one command's usage, options and examples",
  "",
  "examples:",
  "  ocipkg help",
  "      list the commands",
  "  ocipkg help push",
  "      the options and examples of push (the same as 'ocipkg push --help')",
].join("\n");

/** The command of a name (its table loaded: not the others'), or a usage error. */
async function command(name: string) {
  const cmd = await loadCommand(name);
  if (!cmd) {
    // `psuh` → push, `--carg` → cargo
    const names = [...COMMAND_NAMES, "help"];
    const hint = didYouMean(name.replace(/^--?/, ""), names);
    throw new UsageError(`unknown command '${name}'${hint} (see 'ocipkg --help')`);
  }
  return cmd;
}

/**
 * Run the CLI with arguments; returns the exit code.
 *
 * @param args command-line arguments (without the program name)
 * @returns 0, 1 (failure) or 2 (usage)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { main } from "@ocipkg/cli/cli";
 * assert.equal(await main(["--version"]), 0); // prints `ocipkg <version>`
 * assert.equal(await main(["nosuch"]), 2); // a usage error: one line on stderr
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const debug = args.includes("--debug");
  args = args.filter((a) => a !== "--debug");
  setDebug(debug);
  try {
    const [name, ...rest] = args;
    if (name === "help" && rest.length > 0) {
      if (rest.length > 1) throw new UsageError("usage: ocipkg help [<command>]");
      out(rest[0] === "help" ? HELP_HELP : commandHelp(await command(rest[0]!)));
      return 0;
    }
    if (name === undefined || name === "--help" || name === "-h" || name === "help") {
      out(await help());
      return name === undefined ? 2 : 0;
    }
    if (name === "--version" || name === "-V") {
      out(`ocipkg ${denoJson.version}`);
      return 0;
    }
    const cmd = await command(name);
    if (rest.includes("--help") || rest.includes("-h")) {
      out(commandHelp(cmd));
      return 0;
    }
    await cmd.invoke(rest);
    return 0;
  } catch (e) {
    console.error(`error: ${oneLine(e)}`);
    if (debug && e instanceof Error) console.error(e.stack);
    return e instanceof OcipkgError ? e.exitCode : 1;
  }
}

/**
 * Arguments as the CLI sees them: an executable named `cargo-ocipkg` (as cargo
 * runs it for `cargo ocipkg …`) acts as `ocipkg cargo …`.
 *
 * @param args process arguments
 * @param exe the executable's path
 * @returns arguments for {@link main}
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cliArgs } from "@ocipkg/cli/cli";
 * assert.deepEqual(cliArgs(["ocipkg", "build"], "/home/me/.cargo/bin/cargo-ocipkg"), [
 *   "cargo",
 *   "build",
 * ]);
 * assert.deepEqual(cliArgs(["get", "x"], "/usr/local/bin/ocipkg"), ["get", "x"]);
 * ```
 */
export function cliArgs(args: string[], exe: string): string[] {
  if (!/^cargo-ocipkg(\.exe)?$/i.test(basename(exe))) return args;
  return ["cargo", ...(args[0] === "ocipkg" ? args.slice(1) : args)];
}

/**
 * On Ctrl-C (or SIGTERM) take the progress lines off the terminal, delete the
 * temp files and directories in use, say so in one line and exit with 130 —
 * an interrupted command leaves nothing, on disk or on screen.
 */
function exitCleanlyOnSignals(): void {
  const onSignal = () => {
    if (signalsOwned()) return; // `serve` stops gracefully and exits 0
    clearProgress();
    removeTempsSync();
    console.error("error: interrupted");
    Deno.exit(130);
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(sig, onSignal);
    } catch { /* not supported here (SIGTERM on Windows) */ }
  }
}

if (import.meta.main) {
  exitCleanlyOnSignals();
  Deno.exit(await main(cliArgs(Deno.args, Deno.execPath())));
}
