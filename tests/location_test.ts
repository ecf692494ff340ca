// The one resolver: a table of inputs, and how the CLI reads paths, bare words and image names.
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { type Location, packDirectory, resolveLocation, UsageError } from "../mod.ts";
import { runCli, samplePackage, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";

type Want = string | { error: string };
const show = (l: Location) =>
  l.kind === "registry" ? `registry ${l.name}` : `${l.kind} ${l.path}${l.ref ? ` @${l.ref}` : ""}`;

Deno.test("resolveLocation: the rule table", async () => {
  const dir = await tempDir();
  const existing = join(dir, "existing.bin");
  await Deno.writeTextFile(existing, "");
  const rows: [string, "image" | "layout" | "any", Want][] = [
    ["docker://alpine", "any", "registry registry-1.docker.io/library/alpine:latest"],
    ["docker://ghcr.io/o/x:1", "image", "registry ghcr.io/o/x:1"],
    ["oci:out", "any", "oci-dir out"],
    ["oci:out:v1", "layout", "oci-dir out @v1"],
    ["oci-dir:out:v1", "any", "oci-dir out @v1"],
    ["oci-archive:a.tar:x.io/a:1", "any", "oci-archive a.tar @x.io/a:1"],
    ["oci:", "any", { error: "has no path" }],
    ["-", "any", "oci-archive -"],
    ["-", "layout", "oci-archive -"],
    ["oci-archive:-:v1", "any", "oci-archive - @v1"],
    ["./-", "any", "oci-archive ./-"],
    ["oci:-", "any", { error: "an oci-dir cannot be read from stdin" }],
    ["-", "image", { error: "invalid image name" }],
    ["alpine", "image", "registry registry-1.docker.io/library/alpine:latest"],
    ["greet", "image", "registry registry-1.docker.io/library/greet:latest"],
    [dir, "any", `oci-dir ${dir}`],
    [existing, "any", `oci-archive ${existing}`],
    ["missing.tar", "any", "oci-archive missing.tar"],
    ["./newdir", "any", "oci-archive ./newdir"],
    ["../x", "any", "oci-archive ../x"],
    ["/abs/path", "any", "oci-archive /abs/path"],
    ["localhost:5000/a/b:1", "any", "registry localhost:5000/a/b:1"],
    ["localhost/a", "any", "registry localhost/a:latest"],
    ["ghcr.io/org/libfoo:1.2", "any", "registry ghcr.io/org/libfoo:1.2"],
    ["[::1]:5000/a", "any", "registry [::1]:5000/a:latest"],
    ["newdir", "layout", "oci-archive newdir"],
    ["greet", "any", { error: "ambiguous" }],
    ["org/greet:1", "any", { error: "ambiguous" }],
    ["out.dir", "any", { error: "ambiguous" }],
    ["ghcr.io/o/x:1", "layout", { error: "a layout (oci-archive or oci-dir) is needed" }],
    ["oci:out", "image", { error: "an image name is needed" }],
    ["", "any", { error: "empty location" }],
  ];
  for (const [input, accept, want] of rows) {
    const got = resolveLocation(input, { accept });
    if (typeof want === "string") assertEquals(show(await got), want, `${input} (${accept})`);
    else await assertRejects(() => got, UsageError, want.error);
  }
  // a new layout path takes the requested format; stdin/stdout is an archive only
  assertEquals((await resolveLocation("./d", { format: "dir" })).kind, "oci-dir");
  await assertRejects(() => resolveLocation("-", { format: "dir" }), UsageError, "--format dir");
  // the ambiguity error shows both spellings
  const e = await assertRejects(() => resolveLocation("newdir"), UsageError);
  for (const s of ["./newdir", "oci:newdir", "docker.io/library/newdir"]) {
    assert(e.message.includes(s), e.message);
  }
});

Deno.test("CLI: a .tar argument is a layout path and a bare word is refused naming both spellings; neither becomes a Docker Hub request", async () => {
  const tmp = await tempDir();
  const src = await samplePackage(join(tmp, "src"));
  const a = join(tmp, "a.tar");
  await packDirectory(src, a, { name: "example.com/greet:1" });
  const data = join(tmp, "store");
  const cwd = tmp;
  // push a.tar missing.tar: missing.tar is a layout path, reported as missing (no host lookup)
  const push = await runCli(["push", "a.tar", "missing.tar"], { dataHome: data, cwd });
  assertEquals(push.code, 3, push.stderr);
  assert(push.stderr.includes("missing.tar") && !push.stderr.includes("docker.io"), push.stderr);
  // copy a.tar missing.tar writes ./missing.tar (a layout)
  const copy = await runCli(["copy", "a.tar", "missing.tar"], { dataHome: data, cwd });
  assertEquals(copy.code, 0, copy.stderr);
  assert((await Deno.stat(join(tmp, "missing.tar"))).isFile);
  // copy a.tar newdir and inspect greet: ambiguous, exit 2, both spellings shown
  for (const args of [["copy", "a.tar", "newdir"], ["inspect", "greet"]]) {
    const r = await runCli(args, { dataHome: data, cwd });
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    const last = args.at(-1)!;
    assert(r.stderr.includes(`./${last}`) && r.stderr.includes(`oci:${last}`), r.stderr);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  // and the explicit spellings work
  const dirCopy = await runCli(["copy", "a.tar", "oci:newdir"], { dataHome: data, cwd });
  assertEquals(dirCopy.code, 0, dirCopy.stderr);
  const inspect = await runCli(["inspect", "./a.tar"], { dataHome: data, cwd });
  assertEquals(inspect.code, 0, inspect.stderr);
  assert(inspect.stdout.includes("example.com/greet:1"), inspect.stdout);
});

Deno.test("CLI: every command that takes an image accepts docker:// and the host's other spellings, and refuses a layout spelling in one line", async () => {
  const reg = await startRegistry();
  const tmp = await tempDir();
  try {
    const src = await samplePackage(join(tmp, "src"));
    const a = join(tmp, "a.tar");
    const port = reg.host.split(":")[1];
    await packDirectory(src, a, { name: `${reg.host}/one/greet:1` });
    const data = join(tmp, "store");
    const cli = (args: string[]) => runCli(args, { dataHome: data, cwd: tmp });
    const ok = async (args: string[]) => {
      const r = await cli(args);
      assertEquals(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      return r;
    };
    await ok(["push", "a.tar"]);
    const image = `docker://${reg.host}/one/greet:1`;
    await ok(["get", image]);
    // one identity: another spelling of the host is the same store entry
    const dir = (await ok(["image-directory", `docker://0x7f.0.0.1:${port}/one/greet:1`])).stdout;
    const dir2 = (await ok(["image-directory", `2130706433:${port}/one/greet:1`])).stdout;
    assertEquals(dir, dir2);
    assert(dir.includes(`127.0.0.1__${port}`), dir);
    await ok(["pull", image, "-o", "pulled.tar"]);
    await ok(["inspect", image]);
    await ok(["resolve", image]);
    assert((await ok(["tags", `docker://${reg.host}/one/greet`])).stdout.includes("1"));
    await ok(["tag", image, "2"]);
    await ok(["copy", image, "oci:copied"]);
    await ok(["rm", `docker://127.1:${port}/one/greet:1`]);
    const gone = await cli(["image-directory", image]);
    assertEquals(gone.code, 3, gone.stderr);
    // a layout where only an image fits: one line, exit 2, naming the argument
    for (const cmd of ["get", "tags", "rm", "image-directory", "pull"]) {
      const r = await cli([cmd, "oci:copied", ...(cmd === "pull" ? ["-o", "x.tar"] : [])]);
      assertEquals(r.code, 2, `${cmd}: ${r.stderr}`);
      assert(r.stderr.includes("'oci:copied' names a layout"), r.stderr);
      assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
  } finally {
    await reg.stop();
    await Deno.remove(tmp, { recursive: true });
  }
});
