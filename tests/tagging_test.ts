// `ocipkg resolve` and `ocipkg tag` (registry and oci-dir), and `tags` in
// version order for people, registry order in --json. Real docker-registry,
// with the fault proxy in front only to log what was sent.
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { runCli, samplePackage, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";
import { startFaultProxy } from "./_fault_proxy.ts";

Deno.test("tag and resolve: new tags without re-uploading, tags in version order", async () => {
  const reg = await startRegistry();
  const proxy = startFaultProxy(reg.host);
  const work = await tempDir();
  const repo = `${proxy.host}/tagging/pkg`;
  try {
    await samplePackage(`${work}/pkg`);
    assertEquals(
      (await runCli(["pack", `${work}/pkg`, `${work}/p.tar`, "-t", `${repo}:1.0.3`])).code,
      0,
    );
    assertEquals((await runCli(["push", `${work}/p.tar`, `${repo}:1.0.3`])).code, 0);
    const resolved = await runCli(["resolve", `${repo}:1.0.3`]);
    assertEquals(resolved.code, 0, resolved.stderr);
    const digest = resolved.stdout.trim();
    assert(/^sha256:[0-9a-f]{64}$/.test(digest), digest);

    proxy.reset();
    const tagged = await runCli([
      "tag",
      `${repo}:1.0.3`,
      "1.10",
      "1.9",
      "1.0-rc1",
      "1.0",
      "latest",
    ]);
    assertEquals(tagged.code, 0, tagged.stderr);
    assertEquals(tagged.stdout.trim(), digest);
    // no blob moved: only manifest requests
    assert(proxy.log.length > 0);
    for (const l of proxy.log) assert(l.path.includes("/manifests/"), `${l.method} ${l.path}`);
    assertEquals(proxy.log.filter((l) => l.method === "PUT").length, 5);
    for (const t of ["1.10", "latest"]) {
      assertEquals((await runCli(["resolve", `${repo}:${t}`])).stdout.trim(), digest);
    }

    const human = await runCli(["tags", repo]);
    assertEquals(human.stdout.trim().split("\n"), [
      "1.0-rc1",
      "1.0",
      "1.0.3",
      "1.9",
      "1.10",
      "latest",
    ]);
    const json = await runCli(["tags", repo, "--json"]);
    assertEquals(
      new Set(JSON.parse(json.stdout)),
      new Set(["1.0-rc1", "1.0", "1.0.3", "1.9", "1.10", "latest"]),
    );

    // bad input: a malformed tag is a usage error, a missing image exits 3
    const bad = await runCli(["tag", `${repo}:1.0.3`, "no/slash"]);
    assertEquals(bad.code, 2);
    assertStringIncludes(bad.stderr, "invalid tag 'no/slash'");
    const missing = await runCli(["resolve", `${repo}:nope`]);
    assertEquals(missing.code, 3, missing.stderr);

    // an oci-dir gets ref names; an oci-archive is not rewritten in place
    assertEquals((await runCli(["pull", `${repo}:1.0.3`, "-o", `oci:${work}/lay`])).code, 0);
    const ref = `${repo}:1.0.3`;
    const local = await runCli(["tag", `oci:${work}/lay:${ref}`, "example.com/pkg:stable"]);
    assertEquals(local.code, 0, local.stderr);
    assertEquals(
      (await runCli(["resolve", `oci:${work}/lay:example.com/pkg:stable`])).stdout.trim(),
      digest,
    );
    const archive = await runCli(["tag", `${work}/p.tar`, "x"]);
    assertEquals(archive.code, 2);
    assertStringIncludes(archive.stderr, "cannot tag inside oci-archive");
  } finally {
    await proxy.stop();
    await reg.stop();
  }
});
