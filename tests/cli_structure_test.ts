// The house's structure (ARCHITECTURE.md, "The house: folders are floors"): every module imports
// only its own folder and the floors below it, no two files and no two floors import each other
// round in a cycle, and the CLI reaches the library only through its public API: an entry point,
// or a module an entry point re-exports, importing only the names the entry point exports from
// it (so a command loads the modules it uses, not all of mod.ts). Then the CLI's own structure:
// every command is a table (what help, completions and did-you-mean read) and its work, loaded
// when it runs; help is generated from the tables, and the option-table parser gives typed values
// and uniform usage errors.
import { join, posix, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "./_assert.ts";
import { ROOT, runCli, tempDir } from "./_helpers.ts";
import { OcipkgError, UsageError } from "../mod.ts";
import { main } from "../cli.ts";
import { COMMAND_NAMES, loadCommands } from "../lib/cli/commands.ts";

const COMMANDS = await loadCommands();
import {
  addHints,
  defineCommand,
  implement,
  lazyCommand,
  parseCommandLine,
} from "../lib/cli/options.ts";

/** The floors of lib/ (ARCHITECTURE.md): a module may import its own folder and lower floors. */
const FLOORS: Record<string, number> = {
  util: 0,
  oci: 1,
  archive: 2,
  transport: 3,
  store: 4,
  sign: 5,
  ops: 6,
  native: 7,
  serve: 7,
  cli: 8,
};
/** mod.ts sits above the library and below the command modules (which import it); cli.ts on top. */
const MOD_FLOOR = 7.5;
const CLI_FLOOR = 9;

/** One import: `from` names `to` (paths relative to the root, `/`-separated). */
interface Edge {
  from: string;
  to: string;
}

/**
 * Every import between the given modules and the files they reach, as Deno's own parser sees it
 * (`deno info`): static and dynamic, `import type` included, comments (doc examples) ignored.
 */
async function importEdges(root: string, files: string[]): Promise<Edge[]> {
  const dir = await tempDir("ocipkg-structure-");
  const entry = join(dir, "all.ts");
  const url = (f: string) => pathToFileURL(join(root, f)).href;
  await Deno.writeTextFile(entry, files.map((f) => `import "${url(f)}";\n`).join(""));
  const config = join(root, "deno.json");
  const hasConfig = await Deno.stat(config).then(() => true, () => false);
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", ...(hasConfig ? ["--config", config] : ["--no-config"]), entry],
    cwd: root,
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(r.success, new TextDecoder().decode(r.stderr));
  const info: {
    modules: {
      specifier: string;
      error?: string;
      dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
    }[];
  } = JSON.parse(new TextDecoder().decode(r.stdout));
  const ours = new Set(files);
  const rel = (u: string) =>
    u.startsWith("file:") ? relative(root, fileURLToPath(u)).replaceAll("\\", "/") : undefined;
  const edges: Edge[] = [];
  for (const m of info.modules) {
    const from = rel(m.specifier);
    if (from === undefined || !ours.has(from)) continue;
    assert(!m.error, `${from}: ${m.error}`);
    for (const d of m.dependencies ?? []) {
      for (const to of new Set([d.code?.specifier, d.type?.specifier])) {
        const t = to === undefined ? undefined : rel(to);
        // a relative path inside the project (json, such as deno.json, is data, not a module)
        if (t !== undefined && !t.startsWith("..") && !t.endsWith(".json")) {
          edges.push({ from, to: t });
        }
      }
    }
  }
  return edges;
}

/** The modules of the house: every .ts file of lib/ (its vendored packages aside), mod.ts, cli.ts. */
async function houseFiles(): Promise<string[]> {
  const files = ["mod.ts", "cli.ts"];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(join(ROOT, dir))) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory && path !== "lib/vendor") await walk(path);
      else if (e.isFile && e.name.endsWith(".ts")) files.push(path);
    }
  };
  await walk("lib");
  return files.sort();
}

/** The floor a module stands on (its top folder under lib/), or undefined for lib/vendor/. */
function floorOf(file: string): { floor: number; unit: string } | undefined {
  if (file === "mod.ts") return { floor: MOD_FLOOR, unit: "mod.ts" };
  if (file === "cli.ts") return { floor: CLI_FLOOR, unit: "cli.ts" };
  const [lib, folder, rest] = file.split("/");
  if (lib !== "lib" || rest === undefined) return { floor: NaN, unit: file };
  if (folder === "vendor") return undefined; // a leaf anyone may import
  return { floor: FLOORS[folder!] ?? NaN, unit: `lib/${folder}/` };
}

/** Strongly connected components of more than one node (or a node importing itself). */
function cycles(edges: [string, string][]): string[][] {
  const next = new Map<string, string[]>();
  for (const [a, b] of edges) next.set(a, [...(next.get(a) ?? []), b]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || next.get(v)?.includes(v)) found.push(scc.sort());
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

/** The public API, module by module: the names each entry point re-exports from each module. */
type PublicNames = Map<string, Set<string>>;
/** What each file imports by name from each module (`default` for a default import). */
type ImportedNames = Map<string, Map<string, string[]>>;

const isEntryPoint = (f: string) => f === "mod.ts" || /^lib\/[a-z_]+\/mod\.ts$/.test(f);

/** `a, type B, c as d` → the names as the exporting module has them: a, B, c. */
function specifierNames(list: string): string[] {
  return list.split(",").map((n) => n.trim().replace(/^type\s+/, "").split(/\s+as\s+/)[0]!)
    .filter(Boolean);
}

/**
 * The names each entry point re-exports (`export { a, type B } from "./x.ts"`), and the names
 * each file imports (`import x, { a } from "…"`), from the source text, paths relative to root.
 */
async function namesOf(
  root: string,
  files: string[],
): Promise<{ exported: PublicNames; imported: ImportedNames }> {
  const exported: PublicNames = new Map();
  const imported: ImportedNames = new Map();
  const target = (file: string, spec: string) =>
    posix.normalize(posix.join(posix.dirname(file), spec));
  for (const file of files) {
    const text = await Deno.readTextFile(join(root, file));
    if (isEntryPoint(file)) {
      for (const m of text.matchAll(/^export\s+(?:type\s+)?\{([^}]*)\}\s*from\s*"(\.[^"]+)"/gm)) {
        const to = target(file, m[2]!);
        const set = exported.get(to) ?? new Set<string>();
        for (const n of specifierNames(m[1]!)) set.add(n);
        exported.set(to, set);
      }
    }
    const byModule = new Map<string, string[]>();
    const importRe =
      /^import\s+(?:type\s+)?(?:(\w+)\s*,?\s*)?(?:\{([^}]*)\}|\*\s+as\s+\w+)?\s*from\s*"(\.[^"]+)"/gm;
    for (const m of text.matchAll(importRe)) {
      const to = target(file, m[3]!);
      const names = [...(m[1] ? ["default"] : []), ...specifierNames(m[2] ?? "")];
      if (!m[1] && m[2] === undefined) names.push("*");
      byModule.set(to, [...(byModule.get(to) ?? []), ...names]);
    }
    imported.set(file, byModule);
  }
  return { exported, imported };
}

/** Every breach of the layer rule, of the CLI's way in, and every cycle, one line each. */
function violations(
  edges: Edge[],
  api: { exported: PublicNames; imported: ImportedNames },
): string[] {
  const out: string[] = [];
  for (const { from, to } of edges) {
    const a = floorOf(from);
    const b = floorOf(to);
    if (!a || !b) continue; // lib/vendor/
    if (Number.isNaN(a.floor)) out.push(`${from} is on no floor (see ARCHITECTURE.md)`);
    else if (Number.isNaN(b.floor)) out.push(`${from} imports ${to}, which is on no floor`);
    else if (b.floor > a.floor) {
      out.push(`${from} (floor ${a.floor}) imports ${to} (floor ${b.floor}): a higher floor`);
    } else if (b.floor === a.floor && a.unit !== b.unit) {
      out.push(`${from} imports ${to}: ${a.unit} and ${b.unit} share floor ${a.floor}`);
    }
    // the CLI uses the library as a user would: what mod.ts and the subpath modules export
    // (from them, or from the module that holds it, to load no more than it uses), and lib/util/
    const cli = from === "cli.ts" || from.startsWith("lib/cli/");
    if (cli && !isEntryPoint(to) && !to.startsWith("lib/util/") && !to.startsWith("lib/cli/")) {
      const names = api.imported.get(from)?.get(to) ?? ["import()"];
      const hidden = names.filter((n) => !api.exported.get(to)?.has(n));
      if (hidden.length) {
        out.push(
          `${from} imports ${
            hidden.join(", ")
          } from ${to}, which no entry point exports: the CLI uses the public API only`,
        );
      }
    }
  }
  for (const c of cycles(edges.map((e) => [e.from, e.to]))) {
    out.push(`import cycle between files: ${c.join(" ↔ ")}`);
  }
  const units = edges.flatMap((e) => {
    const a = floorOf(e.from)?.unit;
    const b = floorOf(e.to)?.unit;
    return a && b && a !== b ? [[a, b] as [string, string]] : [];
  });
  for (const c of cycles(units)) out.push(`import cycle between folders: ${c.join(" ↔ ")}`);
  return [...new Set(out)];
}

Deno.test("structure: the import parser sees static, dynamic and type imports, not doc examples", async () => {
  const dir = await tempDir("ocipkg-structure-fixture-");
  for (const folder of ["util", "oci", "native", "serve", "cli"]) {
    await Deno.mkdir(join(dir, "lib", folder), { recursive: true });
  }
  const files: Record<string, string> = {
    // two violations: util (0) imports oci (1), statically and as a type
    "lib/util/a.ts": 'import { b } from "../oci/b.ts";\nimport type { C } from "../oci/c.ts";\n' +
      "export const a = (c?: C) => b + String(c);\n",
    // a dynamic import, and one in a doc example that does not count
    "lib/oci/b.ts": '/**\n * ```ts\n * import { d } from "../cli/d.ts";\n * ```\n */\n' +
      'export const b = 1;\nexport const later = () => import("./c.ts");\n',
    // oci imports util (allowed), util imports oci (not): the two folders form a cycle
    "lib/oci/c.ts": 'import { b } from "./b.ts";\nimport { e } from "../util/e.ts";\n' +
      "export type C = typeof b | typeof e;\n",
    "lib/util/e.ts": "export const e = 1;\n",
    "lib/oci/mod.ts": 'export { b } from "./b.ts";\n',
    // the CLI may import entry points and lib/util/, and from other modules of the library
    // only what an entry point exports (b, not later)
    "lib/cli/d.ts": 'export const d = 1;\nimport { a } from "../util/a.ts";\n' +
      'import { b } from "../oci/mod.ts";\nimport { later } from "../oci/b.ts";\n' +
      "void [a, b, later];\n",
    "lib/cli/e.ts": 'import { b } from "../oci/b.ts";\nexport const e = b;\n',
    // native and serve share floor 7: neither imports the other
    "lib/native/n.ts": 'import { s } from "../serve/s.ts";\nexport const n = s;\n',
    "lib/serve/s.ts": "export const s = 1;\n",
  };
  for (const [f, text] of Object.entries(files)) await Deno.writeTextFile(join(dir, f), text);
  const edges = await importEdges(dir, Object.keys(files));
  const list = edges.map((e) => `${e.from} → ${e.to}`).sort();
  assertEquals(list, [
    "lib/cli/d.ts → lib/oci/b.ts",
    "lib/cli/d.ts → lib/oci/mod.ts",
    "lib/cli/d.ts → lib/util/a.ts",
    "lib/cli/e.ts → lib/oci/b.ts",
    "lib/native/n.ts → lib/serve/s.ts",
    "lib/oci/b.ts → lib/oci/c.ts", // dynamic
    "lib/oci/c.ts → lib/oci/b.ts",
    "lib/oci/c.ts → lib/util/e.ts",
    "lib/oci/mod.ts → lib/oci/b.ts",
    "lib/util/a.ts → lib/oci/b.ts",
    "lib/util/a.ts → lib/oci/c.ts", // import type
  ]);
  assertEquals(violations(edges, await namesOf(dir, Object.keys(files))), [
    "lib/cli/d.ts imports later from lib/oci/b.ts, which no entry point exports: the CLI uses the public API only",
    "lib/native/n.ts imports lib/serve/s.ts: lib/native/ and lib/serve/ share floor 7",
    "lib/util/a.ts (floor 0) imports lib/oci/b.ts (floor 1): a higher floor",
    "lib/util/a.ts (floor 0) imports lib/oci/c.ts (floor 1): a higher floor",
    "import cycle between files: lib/oci/b.ts ↔ lib/oci/c.ts",
    "import cycle between folders: lib/oci/ ↔ lib/util/",
  ]);
});

Deno.test("structure: every module imports only its floor and lower ones, with no cycle", async () => {
  const files = await houseFiles();
  const edges = await importEdges(ROOT, files);
  // the walk works: it sees the imports of deep modules and of the entry points
  const seen = new Set(edges.map((e) => e.from));
  for (const f of ["mod.ts", "cli.ts", "lib/transport/registry/target.ts", "lib/cli/get.ts"]) {
    assert(seen.has(f), `no import of ${f} found`);
  }
  assert(edges.length > 300, `only ${edges.length} imports found`);
  const api = await namesOf(ROOT, files);
  // the parser sees the public API: names of mod.ts and of a subpath module, by their module
  assert(api.exported.get("lib/ops/install.ts")?.has("getImage"));
  assert(api.exported.get("lib/oci/platform.ts")?.has("parsePlatform"));
  assert(api.imported.get("lib/cli/get_run.ts")?.get("lib/cli/get.ts")?.includes("default"));
  assertEquals(violations(edges, api), [], "see ARCHITECTURE.md, 'The house: folders are floors'");
});

Deno.test("structure: the library never imports the CLI", async () => {
  const edges = await importEdges(ROOT, await houseFiles());
  const isCli = (f: string) => f === "cli.ts" || f.startsWith("lib/cli/");
  assertEquals(edges.filter((e) => !isCli(e.from) && isCli(e.to)), []);
  // …and it would notice: the CLI's imports are there
  assert(edges.some((e) => e.from === "cli.ts" && e.to === "lib/cli/commands.ts"));
});

Deno.test("structure: every command is a table that documents it and its work", async () => {
  assertEquals(COMMANDS.map((c) => c.name), COMMAND_NAMES);
  assertEquals(COMMAND_NAMES, [
    "pack",
    "compose",
    "inspect",
    "load",
    "push",
    "get",
    "pull",
    "copy",
    "tags",
    "catalog",
    "resolve",
    "tag",
    "manifest",
    "blob",
    "delete",
    "login",
    "logout",
    "link",
    "lock",
    "runnable",
    "cargo",
    "list",
    "image-directory",
    "rm",
    "prune",
    "serve",
    "key",
    "sign",
    "verify",
    "verify-blob",
    "attest",
    "verify-attestation",
    "attach",
    "discover",
    "completions",
  ]);
  for (const c of COMMANDS) {
    // lib/cli/<name>.ts holds the table, lib/cli/<name>_run.ts the work that runs by it
    const file = `lib/cli/${c.name.replaceAll("-", "_")}`;
    const table = (await import(`../${file}.ts`)).default;
    assert(table.name === c.name && table.options === c.options, `${file}.ts: not '${c.name}'`);
    const work = (await import(`../${file}_run.ts`)).default;
    assert(work.table === table, `${file}_run.ts is not the work of '${c.name}'`);
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
  // implement() types the work's options from the same table
  const t = defineCommand({
    name: "t",
    usage: "t",
    summary: "a test command",
    positionals: [0, 0],
    options: { lib: { type: "string", multiple: true, description: "d" } },
    examples: [{ command: "ocipkg t", description: "d" }],
  });
  implement(t, (_args, o) => {
    const libs: string[] = o.lib;
    // @ts-expect-error no such option
    void o.nope;
    return Promise.resolve(void libs);
  });
});

Deno.test("structure: a command loads its work only to run, after its arguments checked", async () => {
  const t = defineCommand({
    name: "t",
    usage: "t <a>",
    summary: "a test command",
    positionals: [1, 1],
    options: { loud: { type: "boolean", description: "d" } },
    examples: [{ command: "ocipkg t x", description: "d" }],
    hints: [{ when: /went wrong/, add: "; try --loud" }],
  });
  const ran: string[] = [];
  let loads = 0;
  const work = implement(t, ([a], o) => {
    if (a === "fail") throw new OcipkgError("it went wrong");
    ran.push(`${a}${o.loud ? "!" : ""}`);
    return Promise.resolve();
  });
  const cmd = lazyCommand(t, () => {
    loads++;
    return Promise.resolve({ default: work });
  });
  await assertRejects(() => cmd.invoke([]), UsageError, "missing <a>");
  await assertRejects(() => cmd.invoke(["x", "--quiet"]), UsageError, "unknown option '--quiet'");
  assertEquals(loads, 0);
  await cmd.invoke(["x", "--loud"]);
  assertEquals([loads, ran], [1, ["x!"]]);
  // the command's hints are added to what its work throws
  await assertRejects(() => cmd.invoke(["fail"]), OcipkgError, "it went wrong; try --loud");
  // the work of another table is refused
  const other = lazyCommand(
    defineCommand({ ...t, name: "u" }),
    () => Promise.resolve({ default: work }),
  );
  await assertRejects(() => other.invoke(["x"]), Error, "the work loaded for 'u' is another's");
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
