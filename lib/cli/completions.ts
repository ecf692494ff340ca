/**
 * `ocipkg completions bash|zsh|fish`: a completion script generated from the
 * same command tables the parser and `--help` use, so it cannot drift.
 *
 * @module
 */
import { type Command, defineCommand } from "./options.ts";

/**
 * How to load the commands the scripts complete, in help order. `commands.ts` lists them — this
 * command among them, so this module cannot import that one — and hands the loader over with
 * {@link completeCommands}.
 */
let everyCommand: () => Promise<readonly Command[]> = () => Promise.resolve([]);

/**
 * Give the completions command the loader of the commands to complete (`commands.ts` does, once).
 * @param load loads every command, in help order
 */
export function completeCommands(load: () => Promise<readonly Command[]>): void {
  everyCommand = load;
}

/**
 * The commands to complete, loaded by what {@link completeCommands} gave.
 * @returns every command, in help order
 */
export async function completedCommands(): Promise<readonly Command[]> {
  return await everyCommand();
}

/** The command's table (its work: `completions_run.ts`). */
export default defineCommand({
  name: "completions",
  usage: "completions bash|zsh|fish",
  summary: "Print a shell completion script (generated from the command tables)",
  positionals: [1, 1],
  subcommands: { what: "shell", words: ["bash", "zsh", "fish"] },
  options: {},
  examples: [
    {
      command: "source <(ocipkg completions bash)",
      description: "complete commands, flags and paths in this bash session",
    },
    {
      command: "ocipkg completions fish > ~/.config/fish/completions/ocipkg.fish",
      description: "install fish completions",
    },
    {
      command: "ocipkg completions zsh > ~/.zfunc/_ocipkg",
      description: "install zsh completions (with ~/.zfunc in fpath)",
    },
  ],
});
