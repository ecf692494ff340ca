// --json on every command that reports something: one JSON document on
// stdout with the documented shape, nothing else on stdout.
import { assert, assertEquals } from "./_assert.ts";
import { runCli, samplePackage, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";

function one(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split("\n");
  assertEquals(lines.length, 1, stdout);
  return JSON.parse(lines[0]!);
}

Deno.test("--json: pack, compose, push, pull, copy, get, load, image-directory, rm, resolve, tag", async () => {
  const reg = await startRegistry();
  const work = await tempDir();
  const data = `${work}/data`;
  const image = `${reg.host}/json/pkg:1`;
  const digest = /^sha256:[0-9a-f]{64}$/;
  try {
    await samplePackage(`${work}/pkg`);
    const pack = one(
      (await runCli(["pack", `${work}/pkg`, `${work}/p.tar`, "-t", image, "--json"])).stdout,
    );
    assertEquals(pack.name, image);
    assert(digest.test(pack.digest as string));
    assertEquals(pack.output, `${work}/p.tar`);
    await Deno.writeTextFile(`${work}/f.txt`, "f");
    const comp = one(
      (await runCli(["compose", `${work}/f.txt`, "-o", `${work}/c.tar`, "--json"])).stdout,
    );
    assertEquals(comp.name, "localhost/f:latest");

    const push = one((await runCli(["push", `${work}/p.tar`, image, "--json"])).stdout);
    assertEquals(push, { name: image, digest: pack.digest });
    const pull = one((await runCli(["pull", image, "-o", `${work}/out.tar`, "--json"])).stdout);
    assertEquals(pull, { image, digest: pack.digest, output: `${work}/out.tar` });
    const copy = one((await runCli(["copy", image, `oci:${work}/lay`, "--json"])).stdout);
    assertEquals(copy, { source: image, destination: `oci:${work}/lay`, digest: pack.digest });

    const get = await runCli(["get", image, "--json"], { dataHome: data });
    assertEquals(get.stderr, "", "no human lines with --json");
    const g = one(get.stdout);
    assertEquals(g.name, image);
    assertEquals(g.status, "installed");
    assert(typeof g.dir === "string" && digest.test(g.digest as string));
    assertEquals(
      one((await runCli(["get", image, "--json"], { dataHome: data })).stdout).status,
      "present",
    );
    const load = one(
      (await runCli(["load", `${work}/p.tar`, "--json", "-t", "example.com/x:1"], {
        dataHome: data,
      })).stdout,
    );
    assertEquals(load.name, "example.com/x:1");
    const dir = one(
      (await runCli(["image-directory", image, "--json"], { dataHome: data })).stdout,
    );
    assertEquals(dir.dir, g.dir);
    assertEquals(one((await runCli(["resolve", image, "--json"])).stdout), {
      image,
      digest: pack.digest,
    });
    assertEquals(one((await runCli(["tag", image, "2", "--json"])).stdout), {
      image,
      tags: ["2"],
      digest: pack.digest,
    });
    assertEquals(
      one((await runCli(["rm", image, "example.com/x:1", "--json"], { dataHome: data })).stdout),
      { removed: [image, "example.com/x:1"] },
    );
  } finally {
    await reg.stop();
  }
});
