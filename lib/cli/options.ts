/**
 * The one table a command declares — usage, summary, options (with
 * descriptions and defaults) and examples — and the typed parser over
 * `node:util` `parseArgs` that reads it. Option values arrive typed from the
 * table: a flag is a `boolean`, a repeatable option a `string[]`, a value
 * option `string | undefined` (or whatever its `parse` returns), with
 * kebab-case flag names as camelCase keys (`--plain-http` → `plainHttp`).
 *
 * @module
 */
import { OcipkgError, UsageError } from "../util/errors.ts";
import { didYouMean } from "./suggest.ts";

interface OptionBase {
  /** One-letter alias, e.g. `t` for `-t`. */
  short?: string;
  /** What the option does, for help. */
  description: string;
}

/** A flag: `--json`. Its value is a `boolean`. */
export interface FlagOption extends OptionBase {
  /** Kind. */
  type: "boolean";
}

/** An option with one value: `--tag name`. Its value is `string | undefined`, or `parse`'s result. */
export interface ValueOption<T = unknown> extends OptionBase {
  /** Kind. */
  type: "string";
  /** Not repeatable. */
  multiple?: false;
  /** Placeholder in help, e.g. `name` (default: the choices, `a|b`, else `value`). */
  value?: string;
  /** The values it takes, when they are a fixed few (see {@link oneOf}): help and completion offer them. */
  choices?: readonly string[];
  /** The default as shown in help; the library (or the command) applies it, the parser does not. */
  default?: string;
  /** Environment variable read when the flag is not given (an empty value counts as unset). */
  env?: string;
  /** Missing or empty: a usage error. The value's type then has no `undefined`. */
  required?: boolean;
  /**
   * Turn the text into the typed value; throw a {@link UsageError} naming `flag`.
   * @param text the text given
   * @param flag `--name`, or `--name (or ENV)` for an option with `env`
   */
  parse?: (text: string, flag: string) => T;
}

/** A repeatable option: `--lib a --lib b`. Its value is a `string[]` (empty when not given). */
export interface ListOption extends OptionBase {
  /** Kind. */
  type: "string";
  /** Repeatable. */
  multiple: true;
  /** Placeholder in help. */
  value?: string;
}

/** One option of the table. */
export type OptionSpec = FlagOption | ValueOption | ListOption;

/** A command's options, keyed by long flag name (`plain-http` for `--plain-http`). */
export type OptionTable = Record<string, OptionSpec>;

/** `plain-http` → `plainHttp`. */
export type CamelCase<S extends string> = S extends `${infer A}-${infer B}`
  ? `${A}${Capitalize<CamelCase<B>>}`
  : S;

/** The value type of one option spec. */
export type OptionValue<S> = S extends FlagOption ? boolean
  : S extends ListOption ? string[]
  : S extends { parse: (text: string, flag: string) => infer T }
    ? S extends { required: true } ? T : T | undefined
  : S extends { required: true } ? string
  : string | undefined;

/** The parsed values of a table, keyed in camelCase. */
export type OptionValues<O extends OptionTable> = {
  [K in keyof O & string as CamelCase<K>]: OptionValue<O[K]>;
};

/**
 * Declare a shared group of options, keeping the literal types the value
 * types are computed from.
 *
 * @param table the options
 * @returns the same table
 */
export function optionGroup<const O extends OptionTable>(table: O): O {
  return table;
}

/**
 * A CLI hint for a library error: when `when` matches the message, `add` is
 * appended — unless the message already names the flags `add` names (so a
 * library message that still carries the hint is not doubled).
 */
export interface Hint {
  /** Which errors. */
  when: RegExp;
  /** Text appended, with its own separator, e.g. `"; give one with -t"`. */
  add: string;
}

/** One example of a command line. */
export interface Example {
  /** The command line, starting with `ocipkg <command>` (or piped into it). */
  command: string;
  /** What it does. */
  description: string;
}

/**
 * An option that takes one of a few words — the one list help shows, the
 * completion scripts offer and the parser checks.
 *
 * @param choices the words
 * @returns `choices` and a `parse` that refuses any other word
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { oneOf } from "./options.ts";
 * const format = oneOf(["archive", "dir"]);
 * assert.equal(format.parse("dir", "--format"), "dir");
 * assert.throws(() => format.parse("zip", "--format"), /invalid --format 'zip': use archive or dir/);
 * ```
 */
export function oneOf<const C extends string>(
  choices: readonly C[],
): { choices: readonly C[]; parse: (text: string, flag: string) => C } {
  return {
    choices,
    parse(text, flag) {
      const found = choices.find((c) => c === text);
      if (found !== undefined) return found;
      throw new UsageError(
        `invalid ${flag} '${text}': use ${orList(choices)}${didYouMean(text, choices)}`,
      );
    },
  };
}

/** `a, b or c`. */
function orList(words: readonly string[]): string {
  return words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} or ${words.at(-1)}`;
}

/** The words a command's first argument may be: `cargo build|publish|install-shim`. */
export interface Subcommands {
  /** What they are, in errors: `subcommand`, `shell`. */
  what: string;
  /** The words. */
  words: readonly string[];
}

/**
 * A command's table, as {@link defineCommand} takes it: everything `--help`,
 * the completion scripts and "did you mean" read, and the parser checks —
 * not the work, which is its own module ({@link implement}), loaded only when
 * the command runs.
 */
export interface CommandTable<O extends OptionTable> {
  /** The command name. */
  readonly name: string;
  /** The usage line after `ocipkg `. */
  readonly usage: string;
  /** One line: what the command does. */
  readonly summary: string;
  /** How many positional arguments: `[min, max]` (`max` may be `Infinity`). */
  readonly positionals: readonly [number, number];
  /** The options. */
  readonly options: O;
  /** Example command lines. */
  readonly examples: readonly Example[];
  /** Hints naming flags for library errors. */
  readonly hints?: readonly Hint[];
  /** The words the first argument may be: completed, checked (with "did you mean"), in help. */
  readonly subcommands?: Subcommands;
}

/**
 * A command's work: call the library, print the result.
 * @param args the positional arguments (their count already checked)
 * @param opts the typed option values
 */
export type Run<O extends OptionTable> = (args: string[], opts: OptionValues<O>) => Promise<void>;

/** A command's work, with the table whose options it takes (see {@link implement}). */
export interface Implementation<O extends OptionTable> {
  /** The table. */
  readonly table: CommandTable<O>;
  /** The work. */
  readonly run: Run<O>;
}

/** A command as the dispatcher sees it: its table, and `invoke`. */
export interface Command extends CommandTable<OptionTable> {
  /**
   * Parse the arguments after the command name, load the command's work and run it.
   * @param argv the arguments
   */
  invoke(argv: string[]): Promise<void>;
}

/** `--plain-http` → `plainHttp`. */
function camel(flag: string): string {
  return flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function flagText(name: string, spec: OptionSpec): string {
  return spec.type === "string" && !spec.multiple && spec.env
    ? `--${name} (or ${spec.env})`
    : `--${name}`;
}

/**
 * Parse arguments against a table: unknown flags, a flag without its value,
 * a wrong number of positionals, a missing required option and a value its
 * `parse` refuses are all {@link UsageError}s (exit 2).
 *
 * @param cmd the usage, positional counts and options
 * @param argv the arguments after the command name
 * @returns the positionals and the typed values
 * @throws {UsageError} for any of the above
 */
export function parseCommandLine<O extends OptionTable>(
  cmd: Pick<CommandTable<O>, "usage" | "positionals" | "options" | "subcommands">,
  argv: string[],
): { args: string[]; opts: OptionValues<O> } {
  const usage = `usage: ocipkg ${cmd.usage}`;
  const config: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> =
    {};
  for (const [name, spec] of Object.entries(cmd.options)) {
    config[name] = { type: spec.type, multiple: spec.type === "string" && spec.multiple === true };
    if (spec.short) config[name].short = spec.short;
  }
  const name = cmd.usage.split(" ")[0]!;
  let parsed;
  try {
    parsed = parseFlags(argv, config);
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    const text = e.kind === "unknown"
      ? `unknown option '${e.flag}' for 'ocipkg ${name}'${
        e.flag.startsWith("--") ? didYouMean(e.flag, flagNames(cmd.options)) : ""
      }`
      : e.kind === "value"
      ? `option ${e.flag} needs a value`
      : `option ${e.flag} takes no value`;
    throw new UsageError(`${text} (${usage})`);
  }
  const args = parsed.positionals;
  const [min, max] = cmd.positionals;
  if (args.length > max) throw new UsageError(`unexpected argument '${args[max]}' (${usage})`);
  if (args.length < min) {
    // name what is missing, from the usage line: `<image>`, `<dir>`…
    const wanted = [...cmd.usage.replace(/\[[^\]]*\]/g, "").matchAll(/<[^>]+>/g)]
      .map((m) => m[0]);
    const missing = wanted[args.length];
    throw new UsageError(`${missing ? `missing ${missing}` : "missing arguments"} (${usage})`);
  }
  const sub = cmd.subcommands;
  if (sub && args.length > 0 && !sub.words.includes(args[0]!)) {
    throw new UsageError(
      `unknown ${sub.what} '${args[0]}' for 'ocipkg ${name}': use ${orList(sub.words)}${
        didYouMean(args[0]!, sub.words)
      }`,
    );
  }
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(cmd.options)) {
    const raw: unknown = parsed.values[name];
    const key = camel(name);
    if (spec.type === "boolean") {
      values[key] = raw === true;
    } else if (spec.multiple) {
      values[key] = Array.isArray(raw) ? raw.filter((v) => typeof v === "string") : [];
    } else {
      let text = typeof raw === "string" ? raw : undefined;
      if (spec.env) {
        text ??= Deno.env.get(spec.env);
        if (text === "") text = undefined;
      }
      if (spec.required && !text) {
        throw new UsageError(
          `missing ${spec.short ? `-${spec.short}` : `--${name}`} <${
            spec.value ?? "value"
          }> (${usage})`,
        );
      }
      values[key] = text !== undefined && spec.parse
        ? spec.parse(text, flagText(name, spec))
        : text;
    }
  }
  // the one place the table's types meet the parser's: every key of the table was set above
  return { args, opts: values as OptionValues<O> };
}

/**
 * The long flags of a table, `--help` included.
 * @param options the table
 * @returns `--name` for each option
 */
export function flagNames(options: OptionTable): string[] {
  return [...Object.keys(options).map((n) => `--${n}`), "--help"];
}

/** What {@link parseFlags} knows of each flag. */
export type FlagConfig = Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean }
>;

/** A flag the parser refuses: unknown, without its value, or a boolean given one. */
export class FlagError extends Error {
  constructor(readonly kind: "unknown" | "value" | "novalue", readonly flag: string) {
    super(`${kind} ${flag}`);
  }
}

/**
 * Split arguments into flag values and positionals, strictly, as
 * `node:util` `parseArgs({ strict: true, allowPositionals: true })` does
 * (written here because importing `node:util` starts Deno's Node layer, ≈ 5 ms
 * of every command): `--name value`, `--name=value`, `-n value`, `-nvalue`,
 * grouped short booleans (`-rv`), `--` ends the flags, a lone `-` is a
 * positional; a string flag's value may not start with `-` unless written
 * `--name=-x`; a repeated flag keeps its last value unless `multiple`.
 *
 * @param argv the arguments
 * @param config each flag's type, short letter and whether it repeats
 * @returns the values by flag name and the positionals
 * @throws {FlagError} for an unknown flag, a missing value, a value given to a boolean
 */
export function parseFlags(
  argv: string[],
  config: FlagConfig,
): { values: Record<string, string | boolean | string[]>; positionals: string[] } {
  const values: Record<string, string | boolean | string[]> = {};
  const positionals: string[] = [];
  const byShort = new Map<string, string>();
  for (const [name, c] of Object.entries(config)) if (c.short) byShort.set(c.short, name);
  const set = (name: string, value: string | boolean) => {
    if (config[name]!.multiple) {
      const list = values[name];
      values[name] = Array.isArray(list) ? [...list, value as string] : [value as string];
    } else values[name] = value;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.length < 2 || arg[0] !== "-") {
      positionals.push(arg);
      continue;
    }
    // one flag, or a group of short ones: [shown as, name, inline value]
    const flags: [string, string, string | undefined][] = [];
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      if (!Object.hasOwn(config, name)) throw new FlagError("unknown", `--${name}`);
      flags.push([`--${name}`, name, eq === -1 ? undefined : arg.slice(eq + 1)]);
    } else {
      for (let j = 1; j < arg.length; j++) {
        const name = byShort.get(arg[j]!);
        if (name === undefined) throw new FlagError("unknown", `-${arg[j]}`);
        if (config[name]!.type === "string" && j < arg.length - 1) {
          flags.push([`--${name}`, name, arg.slice(j + 1)]); // -tvalue
          break;
        }
        flags.push([`--${name}`, name, undefined]);
      }
    }
    for (const [shown, name, inline] of flags) {
      if (config[name]!.type === "boolean") {
        if (inline !== undefined) throw new FlagError("novalue", shown);
        set(name, true);
      } else if (inline !== undefined) {
        set(name, inline);
      } else {
        const next = argv[i + 1];
        if (next === undefined || (next.startsWith("-") && next !== "-")) {
          throw new FlagError("value", shown);
        }
        set(name, next);
        i++;
      }
    }
  }
  return { values, positionals };
}

/** The flags a hint names: `-t`, `--ca-file`. */
function flagsIn(text: string): string[] {
  return [...text.matchAll(/(?:^|[\s(])(--?[a-zA-Z][a-zA-Z-]*)/g)].map((m) => m[1]!);
}

/**
 * Add the matching hints to a library error's message (in place: the error
 * keeps its class, exit code and stack).
 *
 * @param e the error
 * @param hints the hints of the command
 */
export function addHints(e: unknown, hints: readonly Hint[]): void {
  if (!(e instanceof OcipkgError)) return;
  for (const h of hints) {
    if (!h.when.test(e.message)) continue;
    const named = flagsIn(h.add);
    const has = (f: string) =>
      new RegExp(`(^|[\\s(])${f.replace(/[-]/g, "\\-")}(?![a-zA-Z-])`).test(e.message);
    if (named.length && named.every(has)) continue;
    e.message += h.add;
  }
}

/**
 * Declare a command's table, keeping the literal types its option values are
 * computed from (see {@link implement} for its work).
 *
 * @param table usage, summary, positionals, options, examples, hints
 * @returns the same table
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { commandHelp, defineCommand, implement, lazyCommand } from "./options.ts";
 * const hello = defineCommand({
 *   name: "hello",
 *   usage: "hello <who> [--loud]",
 *   summary: "Greet someone",
 *   positionals: [1, 1],
 *   options: { loud: { type: "boolean", description: "shout" } },
 *   examples: [{ command: "ocipkg hello world", description: "say hello" }],
 * });
 * // the work, typed by the table (in its own module: `import()`ed when the command runs)
 * const said: string[] = [];
 * const work = implement(hello, ([who], opts) => {
 *   said.push(opts.loud ? `HELLO ${who!.toUpperCase()}` : `hello ${who}`);
 *   return Promise.resolve();
 * });
 * const cmd = lazyCommand(hello, () => Promise.resolve({ default: work }));
 * await cmd.invoke(["world", "--loud"]);
 * assert.deepEqual(said, ["HELLO WORLD"]);
 * assert.match(commandHelp(cmd), /--loud +shout/);
 * ```
 */
export function defineCommand<const O extends OptionTable>(
  table: CommandTable<O>,
): CommandTable<O> {
  return table;
}

/**
 * A command's work, typed by its table: the module `lib/cli/<name>_run.ts`
 * exports it as its default, and `commands.ts` loads that module only when
 * the command runs ({@link lazyCommand}).
 *
 * @param table the command's table
 * @param run the work
 * @returns both
 */
export function implement<const O extends OptionTable>(
  table: CommandTable<O>,
  run: Run<O>,
): Implementation<O> {
  return { table, run };
}

/**
 * Make a command from its table and the loader of its work: `invoke` checks
 * the arguments against the table (a usage error loads nothing), then loads
 * the work — an `import()` with a literal specifier, so that `deno compile`
 * includes it and `deno run` reads it only when it runs — and runs it.
 *
 * @param table the command's table
 * @param load `() => import("./<name>_run.ts")`
 * @returns the command
 */
export function lazyCommand<const O extends OptionTable>(
  table: CommandTable<O>,
  load: () => Promise<{ default: Implementation<O> }>,
): Command {
  return {
    ...table,
    async invoke(argv) {
      const { args, opts } = parseCommandLine(table, argv);
      const work = (await load()).default;
      if (work.table !== table) throw new Error(`the work loaded for '${table.name}' is another's`);
      try {
        await work.run(args, opts);
      } catch (e) {
        addHints(e, table.hints ?? []);
        throw e;
      }
    },
  };
}

function optionLabel(name: string, spec: OptionSpec): string {
  const short = spec.short ? `-${spec.short}, ` : "    ";
  const value = spec.type === "string"
    ? ` <${spec.value ?? (!spec.multiple && spec.choices?.join("|") || "value")}>`
    : "";
  return `${short}--${name}${value}${spec.type === "string" && spec.multiple ? "..." : ""}`;
}

function optionNote(spec: OptionSpec): string {
  if (spec.type !== "string" || spec.multiple) return "";
  const notes = [];
  if (spec.required) notes.push("required");
  if (spec.env) notes.push(`env ${spec.env}`);
  if (spec.default !== undefined) notes.push(`default: ${spec.default}`);
  return notes.length ? ` (${notes.join("; ")})` : "";
}

/**
 * A command's help, generated from its table: usage, summary, options with
 * descriptions and defaults, examples.
 *
 * @param cmd the command
 * @returns the text
 */
export function commandHelp(cmd: CommandTable<OptionTable>): string {
  const lines = [`usage: ocipkg ${cmd.usage}`, "", cmd.summary];
  const rows = Object.entries(cmd.options).map(([name, spec]) =>
    [optionLabel(name, spec), `${spec.description}${optionNote(spec)}`] as const
  );
  rows.push(["    --help", "show this help"]);
  const width = Math.min(30, Math.max(...rows.map(([l]) => l.length)));
  lines.push("", "options:");
  for (const [label, text] of rows) {
    if (label.length > width) lines.push(`  ${label}`, `  ${"".padEnd(width)}  ${text}`);
    else lines.push(`  ${label.padEnd(width)}  ${text}`);
  }
  lines.push("", "examples:");
  for (const ex of cmd.examples) lines.push(`  ${ex.command}`, `      ${ex.description}`);
  return lines.join("\n");
}
