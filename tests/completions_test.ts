// Completion scripts and usage errors come from the same command tables as
// the parser and --help: every command and flag is offered, each script
// passes its shell's syntax check, and each shell completes commands,
// subcommands, option values and files — bash through COMP_WORDS, fish
// through `complete -C`, zsh by pressing Tab in a real terminal (tmux).
// Mistyped words get "did you mean".
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { have, run, runCli, tempDir, withTempDir } from "./_helpers.ts";
import { Tmux } from "./_tmux.ts";
import { loadCommands } from "../lib/cli/commands.ts";

const COMMANDS = await loadCommands();

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

  await t.step("no case of the bash script is written twice (one per command)", () => {
    const cases = [...scripts.bash!.matchAll(/^\s+([a-z-]+)\) opts=/gm)].map((m) => m[1]);
    assertEquals(cases, COMMANDS.map((c) => c.name));
  });
});

/** A command line being completed, and what the shell must offer (in any order). */
type Case = [line: string, offers: string[]];

/** The cases every shell must complete alike: values and subcommands come from the tables. */
function cases(): Case[] {
  const out: Case[] = [
    ["ocipkg pu", ["push", "pull"]],
    ["ocipkg completions ", ["bash", "zsh", "fish"]], // not files (a case written twice did that)
    ["ocipkg cargo --release b", ["build"]],
    ["ocipkg cargo build --manifest-path ", ["Cargo.toml"]], // a file, in the cwd
    ["ocipkg cargo build ", ["Cargo.toml"]], // after the subcommand: files
    ["ocipkg help pu", ["push", "pull"]],
    ["ocipkg pull --for", ["--format"]],
  ];
  for (const c of COMMANDS) {
    if (c.subcommands && c.name !== "completions") {
      out.push([`ocipkg ${c.name} `, [...c.subcommands.words]]);
    }
    for (const [name, spec] of Object.entries(c.options)) {
      if (spec.type === "string" && !spec.multiple && spec.choices) {
        out.push([`ocipkg ${c.name} --${name} `, [...spec.choices]]);
      }
    }
  }
  return out;
}

/** The words of a completed line: `ocipkg pack ` → `["ocipkg", "pack", ""]`. */
const words = (line: string) => line.split(" ");

Deno.test("completions complete in real shells: subcommands, option values, files", async (t) => {
  const all = cases();
  // the values of --progress, --compression and --format are among them, from the tables
  for (const flag of ["--progress", "--compression", "--format"]) {
    assert(all.some(([line]) => line.endsWith(` ${flag} `)), flag);
  }
  const dir = await tempDir(); // the scripts
  const cwd = await tempDir(); // where the shell runs: one file
  await Deno.writeTextFile(`${cwd}/Cargo.toml`, "");
  const script = async (shell: string) => (await runCli(["completions", shell])).stdout;

  await t.step("bash: the generated function driven through COMP_WORDS", async () => {
    await Deno.writeTextFile(`${dir}/c.bash`, await script("bash"));
    const lines = [`source ${dir}/c.bash`, "complete -p ocipkg"];
    for (const [line] of all) {
      const w = words(line).map((x) => `'${x}'`).join(" ");
      lines.push(
        `COMP_WORDS=(${w}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _ocipkg`,
        'echo "\${COMPREPLY[*]}"',
      );
    }
    const r = await run("bash", ["-c", lines.join("\n")], cwd);
    assertEquals(r.code, 0, r.stderr);
    const [complete, ...got] = r.stdout.split("\n");
    assertEquals(complete, "complete -o filenames -F _ocipkg ocipkg");
    all.forEach(([line, offers], i) => {
      assertEquals(got[i]!.split(" ").sort(), [...offers].sort(), `bash: '${line}'`);
    });
  });

  await t.step({
    name: "fish: its own completion engine (complete -C)",
    ignore: !(await have("fish")),
    fn: async () => {
      await Deno.writeTextFile(`${dir}/c.fish`, await script("fish"));
      const lines = [`source ${dir}/c.fish`];
      for (const [line] of all) lines.push(`complete -C '${line}'`, "echo ==");
      const r = await run("fish", ["--no-config", "-c", lines.join("\n")], cwd);
      assertEquals(r.code, 0, r.stderr);
      const got = r.stdout.split("==\n").map((block) =>
        block.split("\n").filter((l) => l).map((l) => l.split("\t")[0]!)
      );
      all.forEach(([line, offers], i) => {
        // fish completes a prefix as the whole word (`--for` → `--format`)
        assertEquals(got[i]!.sort(), [...offers].sort(), `fish: '${line}'`);
      });
    },
  });

  await t.step({
    name: "zsh: autoloaded from fpath, Tab pressed in a real terminal (tmux)",
    ignore: !(await have("zsh")) || !(await have("tmux")),
    fn: async () => {
      const fpath = `${dir}/zfunc`;
      await Deno.mkdir(fpath, { recursive: true });
      await Deno.writeTextFile(`${fpath}/_ocipkg`, await script("zsh"));
      const tmux = await Tmux.start(`cd ${cwd} && exec zsh -f`, {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: dir,
        TERM: "xterm",
      });
      try {
        await tmux.type(
          `PS1='%% '; fpath=(${fpath} $fpath); autoload -Uz compinit && compinit -u -D; ` +
            "ocipkg() { :; }; clear",
          "Enter",
        );
        await tmux.waitFor((s) => s === "%", "the prompt");
        // a few of the cases: each costs a terminal round trip
        const some = all.filter(([line]) =>
          [
            "ocipkg completions ",
            "ocipkg cargo ",
            "ocipkg cargo --release b",
            "ocipkg pack --compression ",
            "ocipkg push --progress ",
            "ocipkg cargo build ",
          ].includes(line)
        );
        assertEquals(some.length, 6);
        for (const [line, offers] of some) {
          await tmux.type(line, "Tab");
          const screen = await tmux.waitFor(
            (s) => offers.every((o) => s.includes(o)),
            `zsh to offer ${offers.join(" ")} for '${line}'`,
          );
          if (line === "ocipkg completions ") assert(!screen.includes("Cargo.toml"), screen);
          await tmux.type("", "C-c");
          await tmux.type("clear", "Enter");
          await tmux.waitFor((s) => s === "%", "the prompt");
        }
      } finally {
        await tmux.stop();
      }
    },
  });
});

Deno.test("did you mean: commands, options, subcommands and values; help help", async () => {
  const cases: [string[], string][] = [
    [["psuh", "x"], "error: unknown command 'psuh'; did you mean 'push'? (see 'ocipkg --help')"],
    [["--carg"], "error: unknown command '--carg'; did you mean 'cargo'?"],
    [["help", "puhs"], "error: unknown command 'puhs'; did you mean 'push'?"],
    [["pack", "a", "b", "--compresion", "zstd"], "; did you mean '--compression'? (usage:"],
    [["pack", "a", "b", "--compression", "zstf"], "use gzip, zstd or none; did you mean 'zstd'?"],
    [
      ["cargo", "biuld"],
      "error: unknown subcommand 'biuld' for 'ocipkg cargo': use build, publish or install-shim; did you mean 'build'?",
    ],
    [
      ["key", "gen"],
      "error: unknown action 'gen' for 'ocipkg key': use generate; did you mean 'generate'?",
    ],
    [
      ["completions", "tcsh"],
      "error: unknown shell 'tcsh' for 'ocipkg completions': use bash, zsh or fish",
    ],
    [["pull", "x", "-o", "y", "--progres", "tty"], "did you mean '--progress'?"],
  ];
  for (const [args, text] of cases) {
    const r = await runCli(args);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
    assertStringIncludes(r.stderr, text);
  }
  // far from everything: no suggestion
  const far = await runCli(["frobnicate"]);
  assertEquals(far.stderr.trim(), "error: unknown command 'frobnicate' (see 'ocipkg --help')");
  const help = await runCli(["help", "help"]);
  assertEquals(help.code, 0, help.stderr);
  assert(help.stdout.startsWith("usage: ocipkg help [<command>]\n"), help.stdout);
  // the enumerated values are in help, from the same list
  const pack = await runCli(["help", "pack"]);
  assertStringIncludes(pack.stdout, "--compression <gzip|zstd|none>");
  assertStringIncludes(pack.stdout, "--format <archive|dir>");
  assertStringIncludes((await runCli(["help", "get"])).stdout, "--progress <auto|tty|json|none>");
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
