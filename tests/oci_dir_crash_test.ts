// A copy into an oci-dir killed (SIGKILL) at different points: whatever it had done, the
// layout's index.json parses and names only images whose every blob is in place and hashes to
// its name, every file under a blob's name hashes to it (temp files aside), the image tagged
// before is untouched, and the same copy run again completes.
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { CLI, runCli, sha256, tempDir } from "./_helpers.ts";

interface Entry {
  digest: string;
  mediaType: string;
  annotations?: Record<string, string>;
}

/** Check the layout's invariants; the ref names index.json lists. */
async function checkLayout(dir: string): Promise<string[]> {
  const blobs = join(dir, "blobs", "sha256");
  for await (const e of Deno.readDir(blobs)) {
    if (!/^[0-9a-f]{64}$/.test(e.name)) {
      assert(e.name.includes(".tmp-"), `unexpected file ${e.name}`);
      continue;
    }
    assertEquals(await sha256(await Deno.readFile(join(blobs, e.name))), `sha256:${e.name}`);
  }
  const index = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
  const names: string[] = [];
  const visit = async (d: Entry) => {
    const bytes = await Deno.readFile(join(blobs, d.digest.slice(7)));
    assertEquals(await sha256(bytes), d.digest);
    const doc = JSON.parse(new TextDecoder().decode(bytes));
    for (
      const child of [
        ...(doc.manifests ?? []),
        ...(doc.config ? [doc.config] : []),
        ...(doc.layers ?? []),
      ]
    ) {
      if (child.mediaType.includes("manifest") || child.mediaType.includes("index")) {
        await visit(child);
      } else {
        const b = await Deno.readFile(join(blobs, child.digest.slice(7)));
        assertEquals(await sha256(b), child.digest);
      }
    }
  };
  for (const m of index.manifests as Entry[]) {
    await visit(m);
    names.push(m.annotations?.["org.opencontainers.image.ref.name"] ?? m.digest);
  }
  return names.sort();
}

Deno.test("oci-dir: a copy killed at any point leaves a consistent layout, and runs again", async () => {
  const work = await tempDir();
  const pkg = join(work, "pkg");
  await Deno.mkdir(pkg);
  const big = new Uint8Array(8 << 20);
  for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  await Deno.writeFile(join(pkg, "big.bin"), big);
  const archives: string[] = [];
  for (const n of [1, 2, 3]) {
    await Deno.writeTextFile(join(pkg, "n.txt"), String(n)); // another layer per archive
    const a = join(work, `a${n}.tar`);
    const r = await runCli(["pack", pkg, a, "-t", `example.com/foo:${n}`, "--compression", "none"]);
    assertEquals(r.code, 0, r.stderr);
    archives.push(a);
  }
  const dir = join(work, "lay");
  const first = await runCli(["copy", `oci-archive:${archives[0]}`, `oci:${dir}:t1`]);
  assertEquals(first.code, 0, first.stderr);
  const blobs = join(dir, "blobs", "sha256");
  // kill points: at once; once a blob is being written; once a blob of its own is in place
  const points: ((seen: Set<string>) => boolean)[] = [
    () => true,
    () => [...Deno.readDirSync(blobs)].some((e) => e.name.includes(".tmp-")),
    (seen) =>
      [...Deno.readDirSync(blobs)].some((e) => /^[0-9a-f]{64}$/.test(e.name) && !seen.has(e.name)),
  ];
  for (const [i, point] of points.entries()) {
    const seen = new Set([...Deno.readDirSync(blobs)].map((e) => e.name));
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        CLI,
        "copy",
        `oci-archive:${archives[i % 2 + 1]}`,
        `oci:${dir}:t2`,
      ],
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdout: "null",
      stderr: "null",
    }).spawn();
    let exited = false;
    const status = child.status.then((s) => {
      exited = true;
      return s;
    });
    while (!exited && !point(seen)) await new Promise((r) => setTimeout(r, 2));
    if (!exited) child.kill("SIGKILL");
    await status;
    const names = await checkLayout(dir);
    assert(names.includes("t1"), `kill point ${i}: ${names}`);
  }
  // the copy completes when run again; both images are whole
  const again = await runCli(["copy", `oci-archive:${archives[2]}`, `oci:${dir}:t2`]);
  assertEquals(again.code, 0, again.stderr);
  assertEquals(await checkLayout(dir), ["t1", "t2"]);
});
