// Start-up of the CLI: what `deno run cli.ts` loads before its first line runs. Every static
// import is evaluated whatever the command, and Deno's Node layer is costly to start
// (node:crypto ≈ 17 ms, node:zlib and node:stream as much, an npm package more), so the
// runtime import graph of cli.ts may name only cheap built-ins; the costly ones are loaded on
// first use (lib/util/lazy_node.ts). Then a cached `get`/`link` starts in ≈ the time of an empty
// script plus our modules. No timing is asserted here (see the README's numbers): the graph
// is checked, and that a cached get and link make no request.
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
 * The modules the CLI reaches through static runtime (not type-only, not `import()`) imports —
 * from cli.ts, and from each command's work (`lib/cli/<name>_run.ts`, which `commands.ts`
 * imports when the command runs) — and what each names; `dynamic` collects the other `import()`s
 * met on the way (loaded on first use only).
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
  const commands = new URL(`file://${join(ROOT, "lib", "cli", "commands.ts")}`).href;
  while (todo.length) {
    const url = todo.pop()!;
    if (out.has(url)) continue;
    const all = (byUrl.get(url)?.dependencies ?? []).filter((d) => d.code);
    for (const d of all) {
      if (!d.isDynamic) continue;
      if (url === commands) todo.push(d.code!.specifier); // a command's work
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
