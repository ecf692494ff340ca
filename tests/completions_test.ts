// Completion scripts and usage errors come from the same command tables as
// the parser and --help: every command and flag is offered, each script
// passes its shell's syntax check, and bash completes after sourcing it.
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { have, run, runCli, withTempDir } from "./_helpers.ts";
import { COMMANDS } from "../lib/cli/commands.ts";

Deno.test("completions: bash, zsh and fish scripts from the tables", async (t) => {
  const scripts: Record<string, string> = {};
  for (const shell of ["bash", "zsh", "fish"]) {
    const r = await runCli(["completions", shell]);
    assertEquals(r.code, 0, r.stderr);
    scripts[shell] = r.stdout;
    for (const c of COMMANDS) assertStringIncludes(r.stdout, c.name);
    for (const flag of ["plain-http", "compression", "progress", "verify-key"]) {
      if (COMMANDS.some((c) => flag in c.options)) assertStringIncludes(r.stdout, flag);
    }
  }
  const bad = await runCli(["completions", "tcsh"]);
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, "unknown shell 'tcsh'");

  await t.step("bash: complete -p, commands and flags", async () => {
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/c.bash`, scripts.bash!);
      const r = await run("bash", [
        "-c",
        `source ${dir}/c.bash; complete -p ocipkg; ` +
        `COMP_WORDS=(ocipkg pu); COMP_CWORD=1; _ocipkg; echo "\${COMPREPLY[*]}"; ` +
        `COMP_WORDS=(ocipkg pull --plai); COMP_CWORD=2; _ocipkg; echo "\${COMPREPLY[*]}"`,
      ]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(r.stdout.trim().split("\n"), [
        "complete -o default -F _ocipkg ocipkg",
        "push pull",
        "--plain-http",
      ]);
    });
  });

  for (const shell of ["zsh", "fish"]) {
    await t.step({
      name: `${shell}: syntax check`,
      ignore: !(await have(shell)),
      fn: async () => {
        await withTempDir(async (dir) => {
          await Deno.writeTextFile(`${dir}/c`, scripts[shell]!);
          const r = await run(shell, ["-n", `${dir}/c`]);
          assertEquals(r.code, 0, r.stderr);
        });
      },
    });
  }
});

Deno.test("usage errors: one line naming what is wrong, then the usage; exit 2", async () => {
  const cases: [string[], string][] = [
    [
      ["pull", "--bogus", "x"],
      "error: unknown option '--bogus' for 'ocipkg pull' (usage: ocipkg pull ",
    ],
    [["pull"], "error: missing <image> (usage: ocipkg pull "],
    [["pull", "x"], "error: missing -o <out.tar|dir|-> (usage: ocipkg pull "],
    [["pull", "x", "-o"], "error: option --output needs a value (usage: ocipkg pull "],
    [["pack", "dir"], "error: missing <output> (usage: ocipkg pack "],
  ];
  for (const [args, start] of cases) {
    const r = await runCli(args);
    assertEquals(r.code, 2, args.join(" "));
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert(r.stderr.startsWith(start), `${args.join(" ")}: ${r.stderr}`);
    // no unbalanced quotes from Node's parser
    assertEquals((r.stderr.match(/'/g) ?? []).length % 2, 0, r.stderr);
  }
  // help of every command from its table: every option with its description
  for (const c of COMMANDS) {
    const h = await runCli(["help", c.name]);
    assertEquals(h.code, 0);
    for (const name of Object.keys(c.options)) assertStringIncludes(h.stdout, `--${name}`);
  }
});
