// Several writers in one oci-dir at once (two pulls, copies or packs into the same layout, in
// one process or several): each tag is applied to index.json as it is on disk, under a lock on
// the layout's directory, so no writer's tag is lost to another's older view of the index; a
// writer that aborts removes a layout it made only when nobody else has put anything in it.
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { runCli, samplePackage, tempDir } from "./_helpers.ts";
import {
  encodeJson,
  OCI_MANIFEST,
  OciDir,
  packDirectory,
  pushBytes,
  SoleImageError,
  UsageError,
} from "./_internal.ts";

const LAYER = "application/vnd.oci.image.layer.v1.tar";
const enc = new TextEncoder();

async function pushImage(t: OciDir, text: string) {
  const layer = await pushBytes(t, LAYER, enc.encode(text));
  const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", enc.encode("{}"));
  return await pushBytes(
    t,
    OCI_MANIFEST,
    encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] }),
  );
}

async function refNames(dir: string): Promise<string[]> {
  const index = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
  return index.manifests
    .map((m: { annotations?: Record<string, string> }) =>
      m.annotations?.["org.opencontainers.image.ref.name"]
    )
    .sort();
}

Deno.test("oci-dir: two writers opened on one layout both keep their tags", async () => {
  const dir = join(await tempDir(), "lay");
  await (await OciDir.open(dir, { create: true })).close();
  // both read the (empty) index before either tags
  const a = await OciDir.open(dir);
  const b = await OciDir.open(dir);
  const ma = await pushImage(a, "a");
  const mb = await pushImage(b, "b");
  await a.tag(ma, "a");
  await b.tag(mb, "b");
  await a.close();
  await b.close();
  assertEquals(await refNames(dir), ["a", "b"]);
  // a third writer moves one tag and removes nothing of the other
  const c = await OciDir.open(dir);
  await c.tag(mb, "a");
  await c.close();
  const after = await OciDir.open(dir);
  assertEquals((await after.resolve("a")).digest, mb.digest);
  assertEquals((await after.resolve("b")).digest, mb.digest);
  await after.close();
});

Deno.test("oci-dir: a writer that aborts keeps a layout another writer created beside it", async () => {
  const dir = join(await tempDir(), "lay");
  // both find no layout and make it
  const [a, b] = await Promise.all([
    OciDir.open(dir, { create: true }),
    OciDir.open(dir, { create: true }),
  ]);
  const ma = await pushImage(a, "a");
  await a.tag(ma, "a");
  await a.close();
  await pushImage(b, "b"); // pushed, never tagged
  await b.abort();
  assertEquals(await refNames(dir), ["a"]);
  const r = await OciDir.open(dir);
  assertEquals((await r.resolve("a")).digest, ma.digest);
  assert((await Deno.stat(r.blobPath(ma.digest))).isFile);
  await r.close();
});

// `pack` without --append into an oci-dir: checked again under the layout's lock as index.json
// is written, so a pack beside it that tagged another image first makes this one fail.
Deno.test("oci-dir: a sole-image writer that finds another's image under the lock fails and changes no tag", async () => {
  const dir = join(await tempDir(), "l");
  const a = await OciDir.open(dir, { create: true, soleImage: true });
  const b = await OciDir.open(dir, { create: true, soleImage: true });
  const ma = await pushImage(a, "a");
  const mb = await pushImage(b, "b");
  await a.tag(ma, "example.com/a:1");
  const e =
    (await assertRejects(() => b.tag(mb, "example.com/b:1"), SoleImageError)) as SoleImageError;
  assertEquals(e.others.map((d) => d.digest), [ma.digest]);
  await b.abort();
  await a.close();
  assertEquals(await refNames(dir), ["example.com/a:1"]);
  // the same name again is no second image
  const c = await OciDir.open(dir, { soleImage: true });
  await c.tag(await pushImage(c, "a2"), "example.com/a:1");
  await c.close();
  assertEquals(await refNames(dir), ["example.com/a:1"]);
});

Deno.test("oci-dir: two packs of other names into one new layout at once: one image, the other pack refused", async () => {
  const work = await tempDir();
  const out = join(work, "out");
  const pkgs = await Promise.all([1, 2].map((n) => samplePackage(join(work, `p${n}`), 4096 * n)));
  const runs = await Promise.allSettled(
    pkgs.map((p, i) => packDirectory(p, `oci:${out}`, { name: `example.com/p:${i + 1}` })),
  );
  const refused = runs.filter((r) => r.status === "rejected");
  assertEquals(refused.length, 1);
  const e = (refused[0] as PromiseRejectedResult).reason;
  assert(e instanceof UsageError, String(e));
  assert(/already holds example\.com\/p:\d: packing/.test(e.message), e.message);
  assertEquals((await refNames(out)).length, 1);
});

Deno.test("oci-dir: concurrent copies into one layout (CLI) keep every tag", async () => {
  const work = await tempDir();
  const pkg = await samplePackage(join(work, "pkg"));
  const archive = join(work, "foo.tar");
  const packed = await runCli(["pack", pkg, archive, "-t", "example.com/foo:1"], {
    dataHome: join(work, "data"),
  });
  assertEquals(packed.code, 0, packed.stderr);
  const dir = join(work, "lay");
  const tags = ["t1", "t2", "t3", "t4"];
  const runs = await Promise.all(
    tags.map((t) =>
      runCli(["copy", `oci-archive:${archive}`, `oci:${dir}:${t}`], {
        dataHome: join(work, "data"),
      })
    ),
  );
  for (const r of runs) assertEquals(r.code, 0, r.stderr);
  assertEquals(await refNames(dir), tags);
});

Deno.test("oci-dir: a manifest is put in place only after every blob it names", async () => {
  // another writer in the layout that finds the manifest (it asks the disk) skips its whole
  // graph and tags it: the blobs must already be there, or a crash leaves a tag naming none
  const dir = join(await tempDir(), "lay");
  await (await OciDir.open(dir, { create: true })).close();
  const a = await OciDir.open(dir);
  const manifest = await pushImage(a, "layer bytes");
  const doc = JSON.parse(await new Response(await a.fetch(manifest)).text());
  const children = [doc.config.digest, doc.layers[0].digest];
  const rename = Deno.rename;
  const missingAtManifest: string[] = [];
  try {
    Deno.rename = async (from, to) => {
      if (String(to) === a.blobPath(manifest.digest)) {
        for (const d of children) {
          if (!(await Deno.stat(a.blobPath(d)).catch(() => undefined))) missingAtManifest.push(d);
        }
      } else if (String(to).includes("/blobs/")) {
        await new Promise((r) => setTimeout(r, 20)); // a slow rename of a layer or config
      }
      await rename(from, to);
    };
    await a.tag(manifest, "v1");
  } finally {
    Deno.rename = rename;
  }
  assertEquals(missingAtManifest, []);
  await a.close();
  const b = await OciDir.open(dir);
  assert(await b.exists(manifest));
  await b.close();
});

Deno.test("oci-dir: many writers creating one layout at once all open it", async () => {
  const dir = join(await tempDir(), "a", "lay");
  const all = await Promise.all(
    Array.from({ length: 8 }, () => OciDir.open(dir, { create: true })),
  );
  const images = await Promise.all(all.map((t, i) => pushImage(t, `image ${i}`)));
  await Promise.all(all.map((t, i) => t.tag(images[i]!, `t${i}`)));
  await Promise.all(all.map((t) => t.close()));
  assertEquals(await refNames(dir), all.map((_, i) => `t${i}`));
});

// The lock another process holds: flock of the directory (Linux, macOS), or the lock file
// Windows uses (forced here with `lockFile`). The child holds the lock across its read and
// replace of index.json; a tag made meanwhile waits for it, and starts from what it wrote.
for (const lockFile of [false, true]) {
  Deno.test(
    `oci-dir: a tag waits for a writer in another process holding the lock${
      lockFile ? " (lock file, as on Windows)" : ""
    }`,
    async () => {
      const dir = join(await tempDir(), "lay");
      const made = await OciDir.open(dir, { create: true, lockFile });
      const m = await pushImage(made, "x");
      await made.tag(m, "first");
      await made.close();
      const files = new URL("../lib/util/files.ts", import.meta.url).href;
      const script = `
      import { withDirectoryLock } from ${JSON.stringify(files)};
      const dir = ${JSON.stringify(dir)};
      await withDirectoryLock(dir, async () => {
        const index = JSON.parse(await Deno.readTextFile(dir + "/index.json"));
        console.log("held");
        await new Response(Deno.stdin.readable).text(); // until the parent says
        const entry = structuredClone(index.manifests[0]);
        entry.annotations["org.opencontainers.image.ref.name"] = "child";
        index.manifests.push(entry);
        await Deno.writeTextFile(dir + "/.index.json.child", JSON.stringify(index));
        await Deno.rename(dir + "/.index.json.child", dir + "/index.json");
      }, { lockFile: ${lockFile} });
    `;
      const child = new Deno.Command(Deno.execPath(), {
        args: ["eval", script],
        env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const out = child.stdout.getReader();
      const { value } = await out.read();
      assertEquals(new TextDecoder().decode(value).trim(), "held");
      const w = await OciDir.open(dir, { lockFile });
      const tagged = w.tag(m, "parent");
      // give a tag that did not wait time to write before the child does (it then lost its tag)
      await new Promise((r) => setTimeout(r, 300));
      await child.stdin.close();
      assert((await child.status).success);
      await out.cancel();
      await tagged;
      await w.close();
      assertEquals(await refNames(dir), ["child", "first", "parent"]);
      assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
        "blobs",
        "index.json",
        "oci-layout",
      ]);
    },
  );
}

Deno.test("oci-dir: the Windows lock file — many writers at once, one left by a killed writer, one planted", async () => {
  const dir = join(await tempDir(), "a", "lay");
  const all = await Promise.all(
    Array.from({ length: 6 }, () => OciDir.open(dir, { create: true, lockFile: true })),
  );
  const images = await Promise.all(all.map((t, i) => pushImage(t, `image ${i}`)));
  await Promise.all(all.map((t, i) => t.tag(images[i]!, `t${i}`)));
  await Promise.all(all.map((t) => t.close()));
  assertEquals(await refNames(dir), all.map((_, i) => `t${i}`));
  // a writer killed while it held the lock left the file, unlocked: the next takes it over
  await Deno.writeTextFile(join(dir, ".ocipkg-lock"), "");
  const next = await OciDir.open(dir, { lockFile: true });
  await next.tag(images[0]!, "after");
  await next.close();
  assert(!(await Deno.lstat(join(dir, ".ocipkg-lock")).catch(() => undefined)));
  // a symlink planted in its place is refused, never followed
  const target = join(dir, "..", "victim");
  await Deno.writeTextFile(target, "keep");
  await Deno.symlink(target, join(dir, ".ocipkg-lock"));
  const planted = await OciDir.open(dir, { lockFile: true });
  await assertRejects(() => planted.tag(images[0]!, "refused"), Error, "not a regular file");
  assertEquals(await Deno.readTextFile(target), "keep");
  assert(!(await refNames(dir)).includes("refused"));
});

Deno.test("oci-dir: readers opening a layout while a writer tags read index.json whole", async () => {
  // index.json is replaced by a rename at each tag: a reader that found one file at its stat
  // and another at its open refused it as "not a regular file"
  const dir = join(await tempDir(), "lay");
  const w = await OciDir.open(dir, { create: true });
  const m = await pushImage(w, "x");
  let tagging = true;
  const writer = (async () => {
    for (let i = 0; i < 60; i++) await w.tag(m, `t${i}`);
    tagging = false;
  })();
  let reads = 0;
  while (tagging) {
    const r = await OciDir.open(dir);
    assert((await r.list()).length >= 0);
    await r.close();
    reads++;
  }
  await writer;
  await w.close();
  assert(reads > 0);
  assertEquals((await refNames(dir)).length, 60);
});
