// A copy into an oci-dir killed (SIGKILL) at different points: whatever it had done, the
// layout's index.json parses and names only images whose every blob is in place and hashes to
// its name, every file under a blob's name hashes to it (temp files aside), the image tagged
// before is untouched, and the same copy run again completes.
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { CLI, have, run, runCli, sha256, tempDir } from "./_helpers.ts";
import { OciDir, OcipkgError, pushBytes } from "./_internal.ts";

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

/** The temp files in a layout's blobs/sha256. */
function temps(dir: string): string[] {
  return [...Deno.readDirSync(join(dir, "blobs", "sha256"))]
    .filter((e) => e.name.includes(".tmp-"))
    .map((e) => join(dir, "blobs", "sha256", e.name));
}

Deno.test("oci-dir: temps a killed copy left are removed by a later writer once stale, read around meanwhile", async () => {
  const work = await tempDir();
  const pkg = join(work, "pkg");
  await Deno.mkdir(pkg);
  const archives: string[] = [];
  for (const n of [1, 2]) {
    const big = new Uint8Array(8 << 20);
    for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
    await Deno.writeFile(join(pkg, "big.bin"), big);
    const a = join(work, `a${n}.tar`);
    const r = await runCli(["pack", pkg, a, "-t", `example.com/foo:${n}`, "--compression", "none"]);
    assertEquals(r.code, 0, r.stderr);
    archives.push(a);
  }
  const dir = join(work, "lay");
  const first = await runCli(["copy", `oci-archive:${archives[0]}`, `oci:${dir}:t1`]);
  assertEquals(first.code, 0, first.stderr);
  // killed while its big blob is half written
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CLI, "copy", `oci-archive:${archives[1]}`, `oci:${dir}:t2`],
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  const status = child.status.then(() => exited = true);
  while (!exited && !temps(dir).some((t) => Deno.statSync(t).size > 0)) {
    await new Promise((r) => setTimeout(r, 2));
  }
  if (!exited) child.kill("SIGKILL");
  await status;
  const left = temps(dir);
  assert(left.length > 0, "the killed copy left a temp file");
  // what reads the layout walks around it: inspect, a copy out, skopeo
  const inspected = await runCli(["inspect", `oci:${dir}:t1`]);
  assertEquals(inspected.code, 0, inspected.stderr);
  const out = await runCli(["copy", `oci:${dir}:t1`, `oci-archive:${join(work, "out.tar")}`]);
  assertEquals(out.code, 0, out.stderr);
  if (await have("skopeo")) {
    const sk = await run("skopeo", ["inspect", "--raw", `oci:${dir}:t1`]);
    assertEquals(sk.code, 0, sk.stderr);
  }
  // a writer now keeps them: they may be another writer's, still being written
  const keep = await OciDir.open(dir);
  await keep.tag(await keep.resolve("t1"), "t1-again");
  await keep.close();
  assertEquals(temps(dir), left);
  // the next write removes them once older than the stale age (set to 0 here)
  const sweeping = await OciDir.open(dir, { staleTempAge: 0 });
  await sweeping.tag(await sweeping.resolve("t1"), "t1-again");
  await sweeping.close();
  assertEquals(temps(dir), []);
  assertEquals(await checkLayout(dir), ["t1", "t1-again"]);
});

Deno.test("oci-dir: a temp untouched for over an hour goes at the next CLI write; a writer keeps its own fresh", async () => {
  const work = await tempDir();
  const pkg = join(work, "pkg");
  await Deno.mkdir(pkg);
  await Deno.writeTextFile(join(pkg, "a.txt"), "a");
  const dir = join(work, "lay");
  const packed = await runCli(["pack", pkg, `oci:${dir}`, "-t", "example.com/foo:1"]);
  assertEquals(packed.code, 0, packed.stderr);
  const blobs = join(dir, "blobs", "sha256");
  const old = new Date(Date.now() - 2 * 3600 * 1000);
  const recent = new Date(Date.now() - 30 * 60 * 1000);
  for (
    const [name, time] of [[".blob.tmp-0000dead", old], [".blob.tmp-0000beef", recent]] as const
  ) {
    await Deno.writeTextFile(join(blobs, name), "partial");
    await Deno.utime(join(blobs, name), time, time);
  }
  await Deno.writeTextFile(join(dir, ".index.json.tmp-0000dead"), "{");
  await Deno.utime(join(dir, ".index.json.tmp-0000dead"), old, old);
  // a name that is not a temp's is never touched
  await Deno.writeTextFile(join(blobs, "notes.txt"), "mine");
  await Deno.utime(join(blobs, "notes.txt"), old, old);
  const tagged = await runCli(["tag", `oci:${dir}:example.com/foo:1`, "example.com/foo:2"]);
  assertEquals(tagged.code, 0, tagged.stderr);
  assertEquals(
    [...Deno.readDirSync(blobs)].map((e) => e.name).filter((n) => !/^[0-9a-f]{64}$/.test(n)).sort(),
    [".blob.tmp-0000beef", "notes.txt"],
  );
  assert(!(await Deno.stat(join(dir, ".index.json.tmp-0000dead")).catch(() => undefined)));

  // a writer touches the temps it holds while they wait to be renamed (here every 100 ms)
  const w = await OciDir.open(dir, { staleTempAge: 600 });
  const d = await pushBytes(w, "text/plain", new TextEncoder().encode("pending"));
  const [mine] = temps(dir).filter((t) => !t.endsWith("0000beef"));
  assert(mine, "the pushed blob waits in a temp file");
  await Deno.utime(mine, old, old);
  for (let i = 0; (await Deno.stat(mine)).mtime!.getTime() === old.getTime(); i++) {
    assert(i < 1000, "the writer never touched the temp it holds");
    await new Promise((r) => setTimeout(r, 20));
  }
  await w.tag(d, "pending");
  await w.close();
  assert((await Deno.stat(w.blobPath(d.digest))).isFile);
});

Deno.test("oci-dir: a writer whose waiting blob was removed as stale fails naming the blob", async () => {
  const dir = join(await tempDir(), "lay");
  const w = await OciDir.open(dir, { create: true });
  await w.close();
  const r = await OciDir.open(dir);
  const d = await pushBytes(r, "text/plain", new TextEncoder().encode("waiting"));
  for (const t of temps(dir)) await Deno.remove(t); // what a sweep does to a writer stopped for an hour
  await assertRejects(
    () => r.tag(d, "t"),
    OcipkgError,
    `blob ${d.digest} for oci-dir '${dir}': its temp file`,
  );
  await r.abort();
  assertEquals((await OciDir.open(dir).then((l) => l.list())).length, 0);
});
