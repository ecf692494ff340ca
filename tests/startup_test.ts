// Start-up of the CLI: what `deno run cli.ts` loads before its first line runs, and what a
// command loads to run. Every module loaded is read, compiled and evaluated, and Deno's Node layer
// is costly to start (node:crypto ≈ 17 ms, node:zlib and node:stream as much, an npm package
// more), so the import graph may name only cheap built-ins; the costly ones are loaded on first
// use (lib/util/lazy_node.ts). A command loads its own table and work only (lib/cli/commands.ts),
// and deno.json's `lazy-dynamic-imports` keeps Deno from reading the others: then a cached
// `get`/`link` starts in ≈ the time of an empty script plus the modules it uses, whose budget is
// pinned here. No timing is asserted (see the README's numbers): the graph is checked, and that a
// cached get and link make no request.
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { CLI, ROOT, runCli, samplePackage, tempDir } from "./_helpers.ts";

/**
 * Built-ins a static import may name: none. Even node:path and node:util start Deno's Node
 * layer (≈ 5 ms measured); lib/util/path.ts and the flag parser in lib/cli/options.ts replace them.
 */
const CHEAP_BUILTINS = new Set<string>();

interface Dep {
  specifier: string;
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface GraphModule {
  specifier: string;
  dependencies?: Dep[];
}

/**
 * The modules the CLI may load — cli.ts, and every module reached from it through runtime (not
 * type-only) imports, static or `import()`ed (a command's table and work, the library's parts
 * loaded on first use) — and what each names statically; `dynamic` collects the `import()`s of
 * packages (npm, JSR) met on the way.
 */
async function runtimeGraph(dynamic: string[] = []): Promise<Map<string, string[]>> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", CLI],
    cwd: ROOT,
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(r.success, new TextDecoder().decode(r.stderr));
  const info: { modules: GraphModule[] } = JSON.parse(new TextDecoder().decode(r.stdout));
  const byUrl = new Map(info.modules.map((m) => [m.specifier, m]));
  const out = new Map<string, string[]>();
  const todo = [new URL(`file://${CLI}`).href];
  while (todo.length) {
    const url = todo.pop()!;
    if (out.has(url)) continue;
    const all = (byUrl.get(url)?.dependencies ?? []).filter((d) => d.code);
    for (const d of all) {
      if (!d.isDynamic) continue;
      if (d.code!.specifier.startsWith("file:")) todo.push(d.code!.specifier);
      else dynamic.push(`${url.replace(`file://${ROOT}`, "")} ${d.code!.specifier}`);
    }
    const deps = all.filter((d) => !d.isDynamic);
    out.set(url, deps.map((d) => d.code!.specifier));
    for (const d of deps) if (d.code!.specifier.startsWith("file:")) todo.push(d.code!.specifier);
  }
  return out;
}

Deno.test("startup: cli.ts statically imports no Node built-in and no npm package", async () => {
  const graph = await runtimeGraph();
  assert(graph.size > 20, `graph of ${graph.size} modules`);
  const costly: string[] = [];
  for (const [url, deps] of graph) {
    for (const d of deps) {
      if (d.startsWith("file:") || CHEAP_BUILTINS.has(d) || d.endsWith("deno.json")) continue;
      costly.push(`${url.replace(`file://${ROOT}`, "")} imports ${d}`);
    }
  }
  assertEquals(
    costly,
    [],
    "load these on first use (lib/util/lazy_node.ts) instead",
  );
});

Deno.test("startup: the Sigstore libraries are imported on first use, from two modules", async () => {
  const dynamic: string[] = [];
  await runtimeGraph(dynamic);
  const where = dynamic.map((d) =>
    d.replace(/ npm:\/?(@sigstore\/[a-z-]+)@[0-9.]+(\/.*)?$/, " $1$2")
  );
  assertEquals(where.sort(), [
    "lib/sign/sigstore_lib.ts @sigstore/bundle",
    "lib/sign/sigstore_lib.ts @sigstore/core",
    "lib/sign/sigstore_lib.ts @sigstore/protobuf-specs",
    "lib/sign/sigstore_lib.ts @sigstore/verify",
    "lib/sign/trusted_root.ts @sigstore/tuf/seeds.json",
  ]);
});

Deno.test("startup: only lib/util/lazy_node.ts calls process.getBuiltinModule", async () => {
  for (const url of (await runtimeGraph()).keys()) {
    if (!url.startsWith("file:") || url.endsWith("/lib/util/lazy_node.ts")) continue;
    const source = await Deno.readTextFile(new URL(url));
    assert(!/\bprocess\s*\./.test(source), `${url} touches the process global`);
  }
});

/** `deno info --json cli.ts`: every module the CLI may load, static or `import()`ed. */
let infoOf: Promise<Map<string, GraphModule>> | undefined;
function cliInfo(): Promise<Map<string, GraphModule>> {
  return infoOf ??= (async () => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", CLI],
      cwd: ROOT,
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(r.success, new TextDecoder().decode(r.stderr));
    const info: { modules: GraphModule[] } = JSON.parse(new TextDecoder().decode(r.stdout));
    return new Map(info.modules.map((m) => [m.specifier, m]));
  })();
}

/**
 * The modules loaded to run from these roots, as paths from the root of the repository: what
 * their static runtime imports reach (an `import()` loads only when it runs).
 */
async function loadedFrom(roots: string[]): Promise<string[]> {
  const byUrl = await cliInfo();
  const url = (f: string) => new URL(`file://${join(ROOT, f)}`).href;
  const seen = new Set<string>();
  const todo = roots.map(url);
  while (todo.length) {
    const u = todo.pop()!;
    if (seen.has(u)) continue;
    seen.add(u);
    assert(byUrl.has(u), `${u} is not in cli.ts's graph`);
    for (const d of byUrl.get(u)?.dependencies ?? []) {
      if (d.code && !d.isDynamic) todo.push(d.code.specifier);
    }
  }
  return [...seen].filter((u) => u.startsWith("file:"))
    .map((u) => u.slice(`file://${ROOT}`.length).replace(/^\//, "")).sort();
}

/** The modules of `loaded` outside what `allowed` accepts. */
function beyond(loaded: string[], allowed: (f: string) => boolean): string[] {
  return loaded.filter((f) => !allowed(f));
}

/** A module of constants that imports nothing (`lib/<floor>/defaults.ts`): any command may. */
const isDefaults = (f: string) => /^lib\/[a-z]+\/defaults\.ts$/.test(f);

/** What verifying a signature needs (keys, signatures, bundles, Sigstore), and no cached run. */
const SIGNATURE_CHECKS = (f: string) =>
  f.startsWith("lib/sign/") &&
  !["policy.ts", "policy_rules.ts", "signers.ts", "statement.ts"].includes(f.slice(9));

/** Registry, archive, serving and vendored crypto code: no cached get or link needs any. */
const NETWORK_ARCHIVE_SERVE = (f: string) =>
  !isDefaults(f) &&
  (f.startsWith("lib/transport/registry/") || f.startsWith("lib/archive/") ||
    f.startsWith("lib/serve/") || f.startsWith("lib/vendor/") ||
    ["lib/transport/copy.ts", "lib/transport/location.ts", "lib/transport/referrers.ts"]
      .includes(f));

Deno.test("startup: cli.ts loads no command's table or work, and the tables only util/, oci/ and defaults", async () => {
  const { COMMAND_NAMES } = await import("../lib/cli/commands.ts");
  const file = (name: string) => `lib/cli/${name.replaceAll("-", "_")}`;
  const start = await loadedFrom(["cli.ts"]);
  // what every command loads before its own: the dispatcher, the parser, the names
  assertEquals(
    start.filter((f) =>
      COMMAND_NAMES.some((n) => f === `${file(n)}.ts` || f === `${file(n)}_run.ts`)
    ),
    ["lib/cli/completions.ts"], // it holds the loader of every table, for the completion scripts
  );
  assert(start.length <= 20, `cli.ts loads ${start.length} modules: ${start.join(" ")}`);
  // --help, completions and "did you mean" load every table, and with them no library module but
  // util/, oci/ and the defaults
  const tables = await loadedFrom(["cli.ts", ...COMMAND_NAMES.map((n) => `${file(n)}.ts`)]);
  assertEquals(
    beyond(tables, (f) =>
      f === "cli.ts" || f === "deno.json" || isDefaults(f) ||
      (f.startsWith("lib/cli/") && !f.endsWith("_run.ts")) ||
      f.startsWith("lib/util/") || f.startsWith("lib/oci/")),
    [],
  );
});

Deno.test("startup: a cached get loads the store, the lock and the verify policy, nothing more", async () => {
  const loaded = await loadedFrom(["cli.ts", "lib/cli/get.ts", "lib/cli/get_run.ts"]);
  assertEquals(
    beyond(
      loaded,
      (f) =>
        !SIGNATURE_CHECKS(f) && !NETWORK_ARCHIVE_SERVE(f) && !f.startsWith("lib/native/") &&
        (f === "lib/cli/get_run.ts" || !f.endsWith("_run.ts")),
    ),
    [],
  );
  // the budget: 45 modules when it was set (a cached get loaded 177 before commands were split)
  assert(loaded.length <= 55, `a cached get loads ${loaded.length} modules: ${loaded.join(" ")}`);
});

Deno.test("startup: a cached link --cargo loads what get does and the linking, nothing more", async () => {
  const loaded = await loadedFrom(["cli.ts", "lib/cli/link.ts", "lib/cli/link_run.ts"]);
  const linking = /^lib\/native\/(link(_[a-z]+)?|libraries|soname)\.ts$/;
  assertEquals(
    beyond(loaded, (f) =>
      !SIGNATURE_CHECKS(f) && !NETWORK_ARCHIVE_SERVE(f) &&
      (!f.startsWith("lib/native/") || linking.test(f)) &&
      (f === "lib/cli/link_run.ts" || !f.endsWith("_run.ts"))),
    [],
  );
  // the budget: 52 modules when it was set
  assert(loaded.length <= 62, `a cached link loads ${loaded.length} modules: ${loaded.join(" ")}`);
});

Deno.test("startup: a cached get and link make no request", async () => {
  const tmp = await tempDir();
  try {
    const pkg = await samplePackage(join(tmp, "src"));
    const data = join(tmp, "data");
    // port 1 on loopback: nothing listens, so any request would fail the command
    const name = "127.0.0.1:1/startup/foo:1";
    const packed = await runCli(["pack", pkg, join(tmp, "foo.tar"), "-t", name]);
    assertEquals(packed.code, 0, packed.stderr);
    const loaded = await runCli(["load", join(tmp, "foo.tar")], { dataHome: data });
    assertEquals(loaded.code, 0, loaded.stderr);
    const got = await runCli(["get", name], { dataHome: data });
    assertEquals(got.code, 0, got.stderr);
    assert(got.stdout.trim().endsWith(join("startup", "foo", "__1")), got.stdout);
    const linked = await runCli(["link", name, "--json"], { dataHome: data });
    assertEquals(linked.code, 0, linked.stderr);
    assertEquals(JSON.parse(linked.stdout).image, name);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("startup: no command's module imports an entry point at run time, only the modules that hold the names", async () => {
  const byUrl = await cliInfo();
  const rel = (u: string) => u.slice(`file://${ROOT}`.length).replace(/^\//, "");
  const isEntryPoint = (f: string) => f === "mod.ts" || /^lib\/[a-z_]+\/mod\.ts$/.test(f);
  const cliModules = [...byUrl.keys()].filter((u) => rel(u).startsWith("lib/cli/"));
  // the walk sees the commands' work (loaded by import() from lib/cli/commands.ts)
  assert(cliModules.some((u) => rel(u) === "lib/cli/pull_run.ts"), "no lib/cli/pull_run.ts");
  const through: string[] = [];
  for (const u of cliModules) {
    for (const d of byUrl.get(u)?.dependencies ?? []) {
      // `import type` is erased: it has no `code`, and costs nothing when the command runs
      if (d.code?.specifier.startsWith("file:") && isEntryPoint(rel(d.code.specifier))) {
        through.push(`${rel(u)} imports ${rel(d.code.specifier)}`);
      }
    }
  }
  // mod.ts loads the whole library (serve, sign, the vendored crypto): every command would pay
  assertEquals(through, [], "import each name from the module that holds it (see get_run.ts)");
});

Deno.test("startup: pull, push and copy load the transfer, the registry and the layouts, no signing, serving or linking", async () => {
  for (const name of ["pull", "push", "copy"]) {
    const loaded = await loadedFrom(["cli.ts", `lib/cli/${name}.ts`, `lib/cli/${name}_run.ts`]);
    // the walk works: it reaches the registry client and the copy routine
    for (const f of ["lib/transport/registry/client.ts", "lib/transport/copy.ts"]) {
      assert(loaded.includes(f), `${name} does not load ${f}`);
    }
    // --include-signatures copies the referrers as they are (lib/transport/referrers.ts, loaded
    // when it runs)
    assertEquals(
      beyond(loaded, (f) =>
        f !== "mod.ts" && !/^lib\/(sign|serve|native|vendor|store)\//.test(f) &&
        (f === `lib/cli/${name}_run.ts` || !f.endsWith("_run.ts"))),
      [],
      `${name}`,
    );
    // the budget: 64 modules when it was set (126 when the work imported mod.ts); pull's: 49
    // when the archive stack, uploads, listings, ranges, referrers and mirrors became import()s
    const budget = name === "pull" ? 52 : 75;
    assert(loaded.length <= budget, `${name} loads ${loaded.length} modules: ${loaded.join(" ")}`);
  }
});

/**
 * What a pull from a registry into an oci-dir never runs, loaded on first use (`import()`): the
 * oci-archive layouts and the tar stack under them (archive outputs, stdin/stdout), blob uploads
 * (push), tag and referrers listings, ranged downloads (large blobs), the referrers' copy
 * (`--include-signatures`, a digest reference), the mirrors (when configured), the extraction
 * limits' defaults and the identity flags (the install commands' options).
 */
/** The modules a pull imports where it uses them (each a literal `import()`). */
const LAZY_IN_PULL = [
  "lib/transport/layout/oci_archive.ts",
  "lib/transport/layout/stdio_archive.ts",
  "lib/transport/registry/upload.ts",
  "lib/transport/registry/listing.ts",
  "lib/transport/registry/ranged.ts",
  "lib/transport/registry/mirrors.ts",
  "lib/transport/referrers.ts",
];
const PULL_LOADS_ON_FIRST_USE = (f: string) =>
  f.startsWith("lib/archive/") || [
    ...LAZY_IN_PULL,
    "lib/util/body_chunks.ts",
    "lib/cli/identity.ts",
    "lib/cli/install_options.ts",
  ].includes(f);

Deno.test("startup: pull loads no archive, upload, listing, ranged, referrers or mirrors module until it needs one", async () => {
  const loaded = await loadedFrom(["cli.ts", "lib/cli/pull.ts", "lib/cli/pull_run.ts"]);
  assert(loaded.includes("lib/transport/registry/download.ts"), "the walk misses the downloads");
  assertEquals(loaded.filter(PULL_LOADS_ON_FIRST_USE), [], "import() these where they are used");
  // and each is still in the CLI's graph (a literal import(), which deno compile includes)
  const graph = [...(await cliInfo()).keys()].map((u) =>
    u.slice(`file://${ROOT}`.length).replace(/^\//, "")
  );
  for (const f of ["lib/archive/tar.ts", ...LAZY_IN_PULL]) {
    assert(graph.includes(f), `${f} is not in cli.ts's graph`);
  }
});

Deno.test("startup: what pull, push and copy load calls no setTimeout or setInterval (node:timers), but on an Alarm", async () => {
  // In Deno 2.9 the global timers are node:timers', whose first call loads that layer (≈ 13 ms
  // of a command's start): the registry's timeouts and waits are Alarms (lib/util/timer.ts).
  // Allowed: the temp keeper's interval, after its first second on an Alarm (it must not keep
  // the process alive); the progress display's (a terminal's); code run in a worker (a string).
  const allowed = new Set(["lib/util/temp.ts", "lib/cli/progress.ts", "lib/oci/digest.ts"]);
  for (const name of ["pull", "push", "copy"]) {
    const loaded = await loadedFrom(["cli.ts", `lib/cli/${name}.ts`, `lib/cli/${name}_run.ts`]);
    const calls: string[] = [];
    for (const f of loaded) {
      if (allowed.has(f) || f.endsWith(".json")) continue;
      const code = (await Deno.readTextFile(join(ROOT, f)))
        .replace(/\/\*[\s\S]*?\*\//g, "") // doc comments and their examples
        .replace(/^\s*\/\/.*$/gm, "");
      if (/\bset(Timeout|Interval)\s*\(/.test(code)) calls.push(f);
    }
    assertEquals(calls, [], `${name}: use an Alarm (lib/util/timer.ts)`);
  }
});
