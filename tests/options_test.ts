// The CLI's flag parser (lib/cli/options.ts) replaces node:util parseArgs (importing node:util
// starts Deno's Node layer). On any argument list it must accept and refuse what parseArgs
// ({ strict: true, allowPositionals: true }) accepts and refuses, with the same result.
import fc from "fast-check";
import { parseArgs } from "node:util";
import { assertEquals, assertThrows } from "./_assert.ts";
import { type FlagConfig, oneOf, parseCommandLine, parseFlags } from "../lib/cli/options.ts";
import { suggest } from "../lib/cli/suggest.ts";
import { UsageError } from "../mod.ts";

const CONFIG: FlagConfig = {
  output: { type: "string", short: "o" },
  tag: { type: "string", short: "t", multiple: true },
  release: { type: "boolean", short: "r" },
  quiet: { type: "boolean", short: "q" },
  "plain-http": { type: "boolean" },
};
const TOKEN = fc.constantFrom(
  "a",
  "b.tar",
  "-",
  "--",
  "---",
  "-o",
  "-t",
  "-r",
  "-q",
  "-x",
  "-rq",
  "-ro",
  "-rofile",
  "-ofile",
  "-qtv1",
  "-tv1",
  "--output",
  "--output=x",
  "--output=",
  "--output=-y",
  "--tag",
  "--tag=v2",
  "--release",
  "--release=1",
  "--plain-http",
  "--nope",
  "--nope=1",
  "-rx",
  "--Output",
  "-",
);

function ours(argv: string[]): unknown {
  try {
    return JSON.parse(JSON.stringify(parseFlags(argv, CONFIG)));
  } catch {
    return "error";
  }
}

function node(argv: string[]): unknown {
  try {
    const r = parseArgs({ args: argv, options: CONFIG, strict: true, allowPositionals: true });
    return JSON.parse(JSON.stringify({ values: { ...r.values }, positionals: r.positionals }));
  } catch {
    return "error";
  }
}

Deno.test("options: the flag parser agrees with node:util parseArgs (strict) on random argv", () => {
  fc.assert(
    fc.property(fc.array(TOKEN, { maxLength: 7 }), (argv) => {
      assertEquals(ours(argv), node(argv), JSON.stringify(argv));
      return true;
    }),
    { seed: 1124, numRuns: 5000 },
  );
});

Deno.test("options: enumerated values and subcommands are checked from the table, with did-you-mean", () => {
  const cmd = {
    usage: "t build|publish [--mode fast|slow]",
    positionals: [1, 1] as const,
    subcommands: { what: "subcommand", words: ["build", "publish"] },
    options: {
      mode: { type: "string", ...oneOf(["fast", "slow"]), description: "d" },
      "plain-http": { type: "boolean", description: "d" },
    },
  } as const;
  const { args, opts } = parseCommandLine(cmd, ["build", "--mode", "slow"]);
  // compile-time: the value is one of the words
  const mode: "fast" | "slow" | undefined = opts.mode;
  assertEquals([args, mode], [["build"], "slow"]);
  const refused: [string[], string][] = [
    [
      ["biuld"],
      "unknown subcommand 'biuld' for 'ocipkg t': use build or publish; did you mean 'build'?",
    ],
    [["build", "--mode", "slwo"], "invalid --mode 'slwo': use fast or slow; did you mean 'slow'?"],
    [
      ["build", "--plain-htp"],
      "unknown option '--plain-htp' for 'ocipkg t'; did you mean '--plain-http'? (usage:",
    ],
    [["build", "--zzz"], "unknown option '--zzz' for 'ocipkg t' (usage:"],
  ];
  for (const [argv, text] of refused) {
    assertThrows(() => parseCommandLine(cmd, argv), UsageError, text);
  }
  // the closest only; a prefix when nothing is close
  assertEquals(suggest("carg", ["cargo", "tag", "tags"]), ["cargo"]);
  assertEquals(suggest("comp", ["compose", "completions", "copy"]), ["compose", "completions"]);
  assertEquals(suggest("compl", ["compose", "completions", "copy"]), ["completions"]);
});
