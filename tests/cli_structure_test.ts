// The CLI's structure: the library never imports the CLI (crane's dependency test), every
// command is one module whose table documents it, help is generated from those tables, and
// the option-table parser gives typed values and uniform usage errors.
import { dirname, join, relative, resolve } from "node:path";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "./_assert.ts";
import { ROOT, runCli } from "./_helpers.ts";
import { OcipkgError, UsageError } from "../mod.ts";
import { main } from "../cli.ts";
import { COMMANDS } from "../lib/cli/commands.ts";
import { addHints, defineCommand, parseCommandLine } from "../lib/cli/options.ts";

/** Every module specifier a source file names: `import … from`, `export … from`, `import "x"`, `import("x")`. */
function specifiers(source: string): string[] {
  const re = /\bfrom\s*["']([^"']+)["']|\bimport\s*\(?\s*["']([^"']+)["']/g;
  return [...source.matchAll(re)].map((m) => (m[1] ?? m[2])!);
}

/** The file a specifier names, or undefined for node:, npm: and other packages. */
function target(from: string, spec: string): string | undefined {
  // the package's own name (as doc examples write it) is mod.ts, and its ./cli export cli.ts
  const self = /^(?:jsr:)?@ocipkg\/cli(\/cli)?$/.exec(spec);
  if (self) return join(ROOT, self[1] ? "cli.ts" : "mod.ts");
  if (spec.startsWith("./") || spec.startsWith("../")) return resolve(dirname(from), spec);
  if (spec.startsWith("file://")) return new URL(spec).pathname;
  return undefined;
}

/** Every local file reachable from `entry` through its imports, as paths relative to the root. */
async function importGraph(entry: string): Promise<Set<string>> {
  const seen = new Set<string>();
  const todo = [join(ROOT, entry)];
  while (todo.length) {
    const file = todo.pop()!;
    const rel = relative(ROOT, file);
    if (seen.has(rel)) continue;
    seen.add(rel);
    if (!file.endsWith(".ts")) continue;
    for (const spec of specifiers(await Deno.readTextFile(file))) {
      const next = target(file, spec);
      if (next) todo.push(next);
    }
  }
  return seen;
}

const isCli = (rel: string) => rel === "cli.ts" || rel.startsWith("lib/cli/");

Deno.test("structure: the library (everything mod.ts reaches) never imports the CLI", async () => {
  const graph = await importGraph("mod.ts");
  // the walk works: it reaches deep modules
  for (
    const f of [
      "lib/transport/location.ts",
      "lib/transport/copy.ts",
      "lib/transport/registry/target.ts",
      "lib/archive/extract.ts",
    ]
  ) {
    assert(graph.has(f), `${f} not reached from mod.ts: ${[...graph].join(", ")}`);
  }
  assertEquals([...graph].filter(isCli), [], "library modules importing the CLI");
  // …and it would notice: from cli.ts it reaches the command modules
  const cli = await importGraph("cli.ts");
  assert(cli.has("lib/cli/options.ts") && cli.has("lib/cli/pack.ts"), [...cli].join(", "));
});

Deno.test("structure: command modules reach the library only through mod.ts", async () => {
  for await (const e of Deno.readDir(join(ROOT, "lib", "cli"))) {
    const source = await Deno.readTextFile(join(ROOT, "lib", "cli", e.name));
    for (const spec of specifiers(source)) {
      assert(
        // lib/util/path.ts stands in for node:path (see tests/startup_test.ts)
        spec.startsWith("node:") || spec === "../util/path.ts" || spec === "../../mod.ts" ||
          /^\.\/[a-z_]+\.ts$/.test(spec),
        `lib/cli/${e.name} imports '${spec}'`,
      );
    }
  }
});

Deno.test("structure: every command is one module whose table documents it", async () => {
  assertEquals(COMMANDS.map((c) => c.name), [
    "pack",
    "compose",
    "inspect",
    "load",
    "push",
    "get",
    "pull",
    "copy",
    "tags",
    "resolve",
    "tag",
    "login",
    "logout",
    "link",
    "runnable",
    "cargo",
    "list",
    "image-directory",
    "rm",
    "serve",
    "key",
    "sign",
    "verify",
    "attach",
    "discover",
    "completions",
  ]);
  for (const c of COMMANDS) {
    const mod = await import(`../lib/cli/${c.name.replaceAll("-", "_")}.ts`);
    assert(mod.default === c, `lib/cli/${c.name}.ts does not export the '${c.name}' command`);
    assert(c.usage.startsWith(`${c.name}`), `${c.name}: usage '${c.usage}'`);
    assert(c.summary.trim().length > 10, `${c.name}: summary`);
    const [min, max] = c.positionals;
    assert(min >= 0 && min <= max, `${c.name}: positionals ${min}..${max}`);
    assert(c.examples.length >= 1, `${c.name}: no example`);
    for (const ex of c.examples) {
      assertStringIncludes(ex.command, `ocipkg ${c.name}`, `${c.name}: example`);
      assert(ex.description.trim(), `${c.name}: example '${ex.command}' has no description`);
    }
    const shorts = new Set<string>();
    for (const [name, spec] of Object.entries(c.options)) {
      assert(/^[a-z][a-z0-9-]*$/.test(name), `${c.name}: option '${name}'`);
      assert(spec.description.trim(), `${c.name}: --${name} has no description`);
      if (spec.short) {
        assert(!shorts.has(spec.short) && spec.short !== "h", `${c.name}: -${spec.short} twice`);
        shorts.add(spec.short);
      }
    }
  }
});

/** Run main() in this process, capturing what it prints. */
async function capture(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const log = console.log;
  const error = console.error;
  let stdout = "";
  let stderr = "";
  console.log = (s: string) => void (stdout += `${s}\n`);
  console.error = (s: string) => void (stderr += `${s}\n`);
  try {
    return { code: await main(args), stdout, stderr };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("structure: 'ocipkg <cmd> --help' and 'ocipkg help <cmd>' print the table", async () => {
  for (const c of COMMANDS) {
    const r = await capture([c.name, "--help"]);
    assertEquals(r.code, 0, `${c.name} --help: ${r.stderr}`);
    assert(r.stdout.startsWith(`usage: ocipkg ${c.usage}\n\n${c.summary}\n`), r.stdout);
    for (const [name, spec] of Object.entries(c.options)) {
      assertStringIncludes(r.stdout, `--${name}`);
      assertStringIncludes(r.stdout, spec.description);
      if (spec.type === "string" && !spec.multiple && spec.default) {
        assertStringIncludes(r.stdout, `default: ${spec.default}`);
      }
    }
    for (const ex of c.examples) assertStringIncludes(r.stdout, ex.command);
    const h = await capture(["help", c.name]);
    assertEquals(h, r, `help ${c.name}`);
  }
  const unknown = await capture(["help", "nosuch"]);
  assertEquals(unknown.code, 2);
  assertStringIncludes(unknown.stderr, "unknown command 'nosuch'");
  const all = await capture(["help"]);
  assertEquals(all.code, 0);
  for (const c of COMMANDS) assertStringIncludes(all.stdout, `  ${c.name.padEnd(16)} ${c.summary}`);
  // and through the real entry point, once
  const sub = await runCli(["push", "--help"]);
  assertEquals(sub.code, 0, sub.stderr);
  assertStringIncludes(sub.stdout, "usage: ocipkg push");
  assertStringIncludes(sub.stdout, "--concurrency <n>");
});

Deno.test("structure: usage errors are uniform (exit 2, one line naming the culprit)", async () => {
  const cases: [string[], string][] = [
    [["pack", "a"], "usage: ocipkg pack <dir> <output>"],
    [["pack", "a", "b", "c"], "unexpected argument 'c' (usage: ocipkg pack"],
    [["list", "x"], "unexpected argument 'x' (usage: ocipkg list"],
    [["get", "--bogus", "x"], "'--bogus'"],
    [["pull", "x"], "usage: ocipkg pull"],
    [["get", "x", "--concurrency", "0"], "invalid --concurrency '0': use 1-999"],
    [["pack", "a", "b", "--level", "10"], "invalid --level '10': use 0-9"],
    [["pack", "a", "b", "--format", "zip"], "invalid --format 'zip': use archive or dir"],
    [["get", "x", "--max-bytes", "lots"], "invalid --max-bytes (or OCIPKG_MAX_BYTES) 'lots'"],
    [["tags", "x", "--timeout", "0"], "invalid --timeout (or OCIPKG_TIMEOUT) '0'"],
    [["cargo", "build", "extra"], "unexpected argument 'extra' (usage: ocipkg cargo"],
  ];
  for (const [args, culprit] of cases) {
    const r = await capture(args);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assertEquals(r.stdout, "");
    const lines = r.stderr.trim().split("\n");
    assertEquals(lines.length, 1, r.stderr);
    assert(lines[0]!.startsWith("error: "), r.stderr);
    assertStringIncludes(lines[0]!, culprit);
  }
});

Deno.test("structure: the option table gives typed values", () => {
  const cmd = {
    usage: "t <a> [b]",
    positionals: [1, 2] as const,
    options: {
      flag: { type: "boolean", short: "f", description: "d" },
      "two-words": { type: "string", description: "d" },
      lib: { type: "string", multiple: true, description: "d" },
      out: { type: "string", short: "o", required: true, description: "d" },
      n: {
        type: "string",
        env: "OCIPKG_CLI_STRUCTURE_TEST_N",
        description: "d",
        parse: (t: string, flag: string) => {
          if (!/^\d+$/.test(t)) throw new UsageError(`invalid ${flag} '${t}'`);
          return Number(t);
        },
      },
    },
  } as const;
  const { args, opts } = parseCommandLine(cmd, ["x", "-o", "o.tar", "--lib", "a", "--lib=b"]);
  assertEquals(args, ["x"]);
  // compile-time: each value has the type its spec gives
  const typed: [boolean, string | undefined, string[], string, number | undefined] = [
    opts.flag,
    opts.twoWords,
    opts.lib,
    opts.out,
    opts.n,
  ];
  assertEquals(typed, [false, undefined, ["a", "b"], "o.tar", undefined]);
  // @ts-expect-error a required option is never undefined, an optional one may be
  const _s: string = opts.twoWords;
  // @ts-expect-error no such option
  void opts.nope;
  assertEquals(parseCommandLine(cmd, ["x", "-fo", "o", "--n", "7"]).opts.n, 7);
  assertEquals(parseCommandLine(cmd, ["x", "-fo", "o"]).opts.flag, true);
  Deno.env.set("OCIPKG_CLI_STRUCTURE_TEST_N", "9");
  try {
    assertEquals(parseCommandLine(cmd, ["x", "-o", "o"]).opts.n, 9);
    assertEquals(parseCommandLine(cmd, ["x", "-o", "o", "--n", "3"]).opts.n, 3);
    Deno.env.set("OCIPKG_CLI_STRUCTURE_TEST_N", "z");
    assertThrows(
      () => parseCommandLine(cmd, ["x", "-o", "o"]),
      UsageError,
      "invalid --n (or OCIPKG_CLI_STRUCTURE_TEST_N) 'z'",
    );
  } finally {
    Deno.env.delete("OCIPKG_CLI_STRUCTURE_TEST_N");
  }
  assertThrows(() => parseCommandLine(cmd, ["-o", "o"]), UsageError, "usage: ocipkg t <a> [b]");
  assertThrows(() => parseCommandLine(cmd, ["x"]), UsageError, "usage: ocipkg t <a> [b]");
  assertThrows(() => parseCommandLine(cmd, ["x", "-o", ""]), UsageError, "usage: ocipkg t");
  assertThrows(() => parseCommandLine(cmd, ["x", "-o", "o", "--nope"]), UsageError, "--nope");
  assertThrows(() => parseCommandLine(cmd, ["x", "y", "z", "-o", "o"]), UsageError, "'z'");
  // defineCommand types run()'s options from the same table
  defineCommand({
    name: "t",
    usage: "t",
    summary: "a test command",
    positionals: [0, 0],
    options: { lib: { type: "string", multiple: true, description: "d" } },
    examples: [{ command: "ocipkg t", description: "d" }],
    run(_args, o) {
      const libs: string[] = o.lib;
      return Promise.resolve(void libs);
    },
  });
});

Deno.test("structure: CLI hints name flags once, whether or not the library message does", () => {
  const hints = [{ when: /has no ref name/, add: "; give one with -t" }];
  const bare = new OcipkgError("oci-dir 'x': the image has no ref name");
  addHints(bare, hints);
  assertEquals(bare.message, "oci-dir 'x': the image has no ref name; give one with -t");
  const already = new OcipkgError("oci-dir 'x': the image has no ref name; give one with -t");
  addHints(already, hints);
  assertEquals(already.message, "oci-dir 'x': the image has no ref name; give one with -t");
  const other = new OcipkgError("something else");
  addHints(other, hints);
  assertEquals(other.message, "something else");
});
