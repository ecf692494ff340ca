// Run the property-based tests of tests/_properties.ts much longer than CI
// does, each round with a fresh random seed; print how to replay a failure.
//
//   deno run -A scripts/fuzz.ts [--runs N] [--time SECONDS] [--only TEXT]
//                               [--keep-going] [--seed S [--path P]] [--list]
//
// --runs N      runs per round of a cost-1 property (default 20000; cheaper
//               properties run more, see --list)
// --time S      keep starting rounds (new seeds) until S seconds have passed
// --only TEXT   only properties whose name contains TEXT
// --keep-going  after a property fails, keep fuzzing it with new seeds and
//               report each failure whose message differs in more than names
// --seed S      use this seed (one round); with --path P replay one counterexample
// --list        list the properties and their run counts
//
// Exit status: 0 when every property held, 1 when one failed, 2 on bad usage.
import fc from "fast-check";
import { PROPERTIES, runsFor } from "../tests/_properties.ts";

function usage(msg?: string): never {
  if (msg) console.error(`fuzz: ${msg}`);
  console.error(
    "usage: deno run -A scripts/fuzz.ts [--runs N] [--time SECONDS] [--only TEXT] [--keep-going] [--seed S [--path P]] [--list]",
  );
  Deno.exit(2);
}

const opts: {
  runs: number;
  time?: number;
  only?: string;
  seed?: number;
  path?: string;
  keepGoing: boolean;
  list: boolean;
} = { runs: 20000, keepGoing: false, list: false };
const args = [...Deno.args];
while (args.length) {
  const a = args.shift()!;
  const val = () => args.shift() ?? usage(`${a} needs a value`);
  const int = () => {
    const v = val();
    const n = Number(v);
    if (!Number.isSafeInteger(n)) usage(`${a} needs an integer, got '${v}'`);
    return n;
  };
  if (a === "--runs") opts.runs = int();
  else if (a === "--time") opts.time = int();
  else if (a === "--only") opts.only = val();
  else if (a === "--seed") opts.seed = int();
  else if (a === "--path") opts.path = val();
  else if (a === "--keep-going") opts.keepGoing = true;
  else if (a === "--list") opts.list = true;
  else if (a === "-h" || a === "--help") usage();
  else usage(`unknown argument '${a}'`);
}
if (opts.path !== undefined && opts.seed === undefined) usage("--path needs --seed");

const selected = PROPERTIES.filter((p) => !opts.only || p.name.includes(opts.only));
if (selected.length === 0) usage(`no property matches '${opts.only}'`);
if (opts.list) {
  for (const p of selected) console.log(`${p.name}  (${runsFor(p, opts.runs)} runs per round)`);
  Deno.exit(0);
}

/** A failure's message with names, numbers and paths blurred, to tell distinct bugs apart. */
function signature(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n")[0]!.replace(/'[^']*'|"[^"]*"|\/tmp\/\S+|\[[^\]]*\]|[\w.:-]{20,}|\d+/g, "_")
    .slice(0, 160);
}

const randomSeed = () => crypto.getRandomValues(new Int32Array(1))[0]!;
const started = performance.now();
const stopped = new Set<string>(); // properties no longer fuzzed
const seen = new Map<string, Set<string>>(); // property → failure signatures reported
let failures = 0;
let round = 0;
do {
  round++;
  for (const p of selected) {
    if (stopped.has(p.name)) continue;
    const seed = opts.seed ?? randomSeed();
    const numRuns = runsFor(p, opts.runs);
    const t0 = performance.now();
    console.log(`[round ${round}] ${p.name}: seed ${seed}, ${numRuns} runs …`);
    const details = await fc.check(p.property, {
      seed,
      numRuns,
      ...(opts.path !== undefined ? { path: opts.path } : {}),
    });
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    if (!details.failed) {
      console.log(`  ok: ${details.numRuns} runs (${details.numSkips} skipped) in ${secs} s`);
      continue;
    }
    if (!opts.keepGoing) stopped.add(p.name);
    const sig = signature(details.errorInstance);
    const sigs = seen.get(p.name) ?? new Set();
    seen.set(p.name, sigs);
    if (sigs.has(sig)) {
      console.log(`  failed again the same way after ${details.numRuns} runs (${secs} s)`);
      continue;
    }
    sigs.add(sig);
    failures++;
    console.log(`  FAILED after ${details.numRuns} runs, ${details.numShrinks} shrinks, ${secs} s`);
    console.log(fc.defaultReportMessage(details) ?? "");
    const err = details.errorInstance;
    console.log(`  error: ${err instanceof Error ? err.message : String(err)}`);
    console.log(
      `  replay: deno run -A scripts/fuzz.ts --only ${JSON.stringify(p.name)} --seed ${seed}` +
        (details.counterexamplePath ? ` --path ${JSON.stringify(details.counterexamplePath)}` : ""),
    );
  }
} while (
  opts.seed === undefined && opts.time !== undefined &&
  stopped.size < selected.length && performance.now() - started < opts.time * 1000
);
const secs = ((performance.now() - started) / 1000).toFixed(1);
console.log(
  failures
    ? `${failures} distinct failure(s) in ${seen.size} of ${selected.length} properties (${round} round(s), ${secs} s)`
    : `all ${selected.length} properties held (${round} round(s), ${secs} s)`,
);
Deno.exit(failures ? 1 : 0);
