// The CLI's flag parser (lib/cli/options.ts) replaces node:util parseArgs (importing node:util
// starts Deno's Node layer). On any argument list it must accept and refuse what parseArgs
// ({ strict: true, allowPositionals: true }) accepts and refuses, with the same result.
import fc from "fast-check";
import { parseArgs } from "node:util";
import { assertEquals } from "./_assert.ts";
import { type FlagConfig, parseFlags } from "../lib/cli/options.ts";

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
