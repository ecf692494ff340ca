/**
 * Every `ocipkg` command, in the order `ocipkg --help` lists them: its name,
 * and the loaders of its table (`lib/cli/<name>.ts`: usage, options,
 * examples — what help, completions and "did you mean" read) and of its work
 * (`lib/cli/<name>_run.ts`). A command run loads its own table and work and
 * no other's (so it loads the library modules it uses and no others); help
 * and completions load every table. The loaders are `import()`s with literal
 * specifiers: `deno compile` includes them, and with `deno.json`'s
 * `lazy-dynamic-imports` Deno reads them only when they run. A new command
 * is those two modules (see `pack.ts`, `pack_run.ts`) added here.
 *
 * @module
 */
import {
  type Command,
  type CommandTable,
  type Implementation,
  lazyCommand,
  type OptionTable,
} from "./options.ts";
import { completeCommands } from "./completions.ts";

/** One command: its name, and how to load it. */
interface Entry {
  /** The command name. */
  readonly name: string;
  /** Load its table; its work loads when it is invoked. */
  load(): Promise<Command>;
}

/** A command's entry; the types make its table and its work agree on the options. */
function command<const O extends OptionTable>(
  name: string,
  table: () => Promise<{ default: CommandTable<O> }>,
  work: () => Promise<{ default: Implementation<O> }>,
): Entry {
  return {
    name,
    async load() {
      const t = (await table()).default;
      if (t.name !== name) throw new Error(`the table loaded for '${name}' is '${t.name}'`);
      return lazyCommand(t, work);
    },
  };
}

const ENTRIES: readonly Entry[] = [
  command("pack", () => import("./pack.ts"), () => import("./pack_run.ts")),
  command("compose", () => import("./compose.ts"), () => import("./compose_run.ts")),
  command("inspect", () => import("./inspect.ts"), () => import("./inspect_run.ts")),
  command("load", () => import("./load.ts"), () => import("./load_run.ts")),
  command("push", () => import("./push.ts"), () => import("./push_run.ts")),
  command("get", () => import("./get.ts"), () => import("./get_run.ts")),
  command("pull", () => import("./pull.ts"), () => import("./pull_run.ts")),
  command("copy", () => import("./copy.ts"), () => import("./copy_run.ts")),
  command("tags", () => import("./tags.ts"), () => import("./tags_run.ts")),
  command("catalog", () => import("./catalog.ts"), () => import("./catalog_run.ts")),
  command("resolve", () => import("./resolve.ts"), () => import("./resolve_run.ts")),
  command("tag", () => import("./tag.ts"), () => import("./tag_run.ts")),
  command("manifest", () => import("./manifest.ts"), () => import("./manifest_run.ts")),
  command("blob", () => import("./blob.ts"), () => import("./blob_run.ts")),
  command("delete", () => import("./delete.ts"), () => import("./delete_run.ts")),
  command("login", () => import("./login.ts"), () => import("./login_run.ts")),
  command("logout", () => import("./logout.ts"), () => import("./logout_run.ts")),
  command("link", () => import("./link.ts"), () => import("./link_run.ts")),
  command("lock", () => import("./lock.ts"), () => import("./lock_run.ts")),
  command("runnable", () => import("./runnable.ts"), () => import("./runnable_run.ts")),
  command("cargo", () => import("./cargo.ts"), () => import("./cargo_run.ts")),
  command("list", () => import("./list.ts"), () => import("./list_run.ts")),
  command(
    "image-directory",
    () => import("./image_directory.ts"),
    () => import("./image_directory_run.ts"),
  ),
  command("rm", () => import("./rm.ts"), () => import("./rm_run.ts")),
  command("prune", () => import("./prune.ts"), () => import("./prune_run.ts")),
  command("serve", () => import("./serve.ts"), () => import("./serve_run.ts")),
  command("key", () => import("./key.ts"), () => import("./key_run.ts")),
  command("sign", () => import("./sign.ts"), () => import("./sign_run.ts")),
  command("verify", () => import("./verify.ts"), () => import("./verify_run.ts")),
  command("verify-blob", () => import("./verify_blob.ts"), () => import("./verify_blob_run.ts")),
  command("attest", () => import("./attest.ts"), () => import("./attest_run.ts")),
  command(
    "verify-attestation",
    () => import("./verify_attestation.ts"),
    () => import("./verify_attestation_run.ts"),
  ),
  command("attach", () => import("./attach.ts"), () => import("./attach_run.ts")),
  command("discover", () => import("./discover.ts"), () => import("./discover_run.ts")),
  command("completions", () => import("./completions.ts"), () => import("./completions_run.ts")),
];

/** The command names, in help order. */
export const COMMAND_NAMES: readonly string[] = ENTRIES.map((e) => e.name);

/**
 * The command of a name, its table loaded.
 * @param name e.g. `pack`
 * @returns the command, or undefined when there is none of that name
 */
export async function loadCommand(name: string): Promise<Command | undefined> {
  return await ENTRIES.find((e) => e.name === name)?.load();
}

/**
 * Every command, their tables loaded (for help and completions).
 * @returns the commands, in help order
 */
export async function loadCommands(): Promise<Command[]> {
  return await Promise.all(ENTRIES.map((e) => e.load()));
}
completeCommands(loadCommands);
