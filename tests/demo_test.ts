// `deno task demo` (the README's first command) runs the main job on the
// embedded registry: every step, a cached get with no request, and nothing
// left behind.
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { ROOT, withTempDir } from "./_helpers.ts";

Deno.test("demo: serve, pack, push, tags, inspect, get twice (no request), link", async () => {
  await withTempDir(async (tmp) => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", `${ROOT}/scripts/demo.ts`],
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", TMPDIR: tmp },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout);
    assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
    const steps = out.trim().split("\n").map((l) => l.split(/\s+/)[0]);
    assertEquals(steps, [
      "serve",
      "pack",
      "push",
      "tags",
      "inspect",
      "get",
      "get",
      "link",
      "link",
      "link",
      "done",
    ]);
    assertStringIncludes(out, "from the cache, 0 requests made");
    assertStringIncludes(out, "cargo:rustc-link-lib=static=demo");
    // the demo removed its registry root and store
    assertEquals([...Deno.readDirSync(tmp)].map((e) => e.name), []);
    assert(/done +in \d+ ms/.test(out), out);
  });
});
