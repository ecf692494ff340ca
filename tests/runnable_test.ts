// `ocipkg runnable`: a container image from a static executable, with the
// platform read from the binary; skopeo and umoci read it and the unpacked
// rootfs runs.
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { buildRunnable, FormatError, inspectLayout } from "./_internal.ts";
import { have, listTree, run, runCli, tempDir } from "./_helpers.ts";
import { assertRejects } from "./_assert.ts";

const CI = !!Deno.env.get("CI");
const hasCc = await have("cc") || CI;
const hasTools = (await have("skopeo") && await have("umoci")) || CI;

/** A static C program printing its arguments. */
async function staticHello(): Promise<string> {
  const dir = await tempDir();
  await Deno.writeTextFile(
    join(dir, "hello.c"),
    '#include <stdio.h>\nint main(int c, char **v) { printf("hello"); for (int i = 1; i < c; i++) printf(" %s", v[i]); printf("\\n"); return 0; }\n',
  );
  const r = await run("cc", ["-static", "-O2", "-o", join(dir, "hello"), join(dir, "hello.c")]);
  if (r.code !== 0) throw new Error(`cc -static failed: ${r.stderr}`);
  return join(dir, "hello");
}

Deno.test({
  name: "runnable: skopeo sees the platform and entrypoint; umoci unpacks a rootfs that runs",
  ignore: !hasCc || !hasTools,
  async fn() {
    const exe = await staticHello();
    const work = await tempDir();
    const out = join(work, "hello.tar");
    const r = await runCli([
      "runnable",
      exe,
      "-o",
      out,
      "-t",
      "example.com/hello:1",
      "--arg",
      "world",
    ]);
    assertEquals(r.code, 0, r.stderr);
    assert(!r.stderr.includes("warning"), r.stderr);
    const cfg = await run("skopeo", ["inspect", "--config", `oci-archive:${out}`]);
    assertEquals(cfg.code, 0, cfg.stderr);
    const config = JSON.parse(cfg.stdout);
    assertEquals(config.os, "linux");
    assertEquals(config.architecture, Deno.build.arch === "x86_64" ? "amd64" : "arm64");
    assertEquals(config.config.Entrypoint, ["/hello"]);
    assertEquals(config.config.Cmd, ["world"]);
    const cp = await run("skopeo", ["copy", "-q", `oci-archive:${out}`, `oci:${work}/oci:hello`]);
    assertEquals(cp.code, 0, cp.stderr);
    const un = await run("umoci", [
      "unpack",
      "--rootless",
      "--image",
      `${work}/oci:hello`,
      `${work}/bundle`,
    ]);
    assertEquals(un.code, 0, un.stderr);
    assertEquals(await listTree(join(work, "bundle", "rootfs")), ["hello"]);
    const spec = JSON.parse(await Deno.readTextFile(join(work, "bundle", "config.json")));
    assertEquals(spec.process.args, ["/hello", "world"]);
    const ran = await run(join(work, "bundle", "rootfs", "hello"), spec.process.args.slice(1));
    assertEquals(ran.stdout, "hello world\n");
  },
});

Deno.test({
  name: "runnable records the platform on the layout descriptor and warns for a dynamic binary",
  ignore: !hasCc,
  async fn() {
    const dir = await tempDir();
    await Deno.writeTextFile(join(dir, "dyn.c"), "int main(void) { return 0; }\n");
    const exe = join(dir, "dyn");
    assertEquals((await run("cc", ["-o", exe, join(dir, "dyn.c")])).code, 0);
    const r = await runCli(["runnable", exe, "-o", join(dir, "dyn.tar")]);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stderr, "is dynamically linked");
    const info = await inspectLayout(join(dir, "dyn.tar"), { files: true });
    assertEquals(info.manifests[0]?.platform?.os, "linux");
    assertEquals(info.manifests[0]?.layers[0]?.files, ["dyn"]);
  },
});

Deno.test("runnable refuses what is not an executable, with one line and nothing written", async () => {
  const dir = await tempDir();
  await Deno.writeTextFile(join(dir, "script.sh"), "#!/bin/sh\necho hi\n");
  const r = await runCli(["runnable", join(dir, "script.sh"), "-o", join(dir, "out.tar")]);
  assertEquals(r.code, 1);
  assertEquals(r.stderr.trim().split("\n").length, 1);
  assertStringIncludes(r.stderr, "is not a supported executable: no ELF, Mach-O or PE header");
  assertEquals(await listTree(dir), ["script.sh"]);
  await assertRejects(
    () => buildRunnable(join(dir, "script.sh"), join(dir, "o.tar")),
    FormatError,
  );
  const missing = await runCli(["runnable", join(dir, "nope"), "-o", join(dir, "out.tar")]);
  assertEquals(missing.code, 3);
  assertStringIncludes(missing.stderr, "nope");
  const wrong = await runCli([
    "runnable",
    Deno.execPath(),
    "-o",
    join(dir, "w.tar"),
    "--platform",
    "windows/amd64",
  ]);
  assertEquals(wrong.code, 2);
  assertStringIncludes(wrong.stderr, "does not fit");
  assertEquals(await listTree(dir), ["script.sh"]);
});
