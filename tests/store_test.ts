import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { gzipSync } from "node:zlib";
import {
  ArchiveError,
  type CopyEvent,
  encodeJson,
  ImageName,
  loadImage,
  NotFoundError,
  OCI_MANIFEST,
  OciArchive,
  OciDir,
  OCIPKG_ARTIFACT,
  OCIPKG_CONFIG,
  OCIPKG_LAYER,
  packDirectory,
  pushBytes,
  Store,
  TAR_END,
  tarHeader,
  tarPadding,
  VerificationError,
} from "./_internal.ts";
import { listTree, ROOT, runCli, sampleGraph, samplePackage, tempDir } from "./_helpers.ts";

const FIX = join(ROOT, "tests", "fixtures");

Deno.test("store: the Rust ocipkg v1 archive loads into the Rust store layout", async () => {
  const store = new Store(await tempDir());
  const r = await loadImage(join(FIX, "rust_v1.tar"), { store });
  assertEquals(r.status, "installed");
  const dir = join(store.root, "ghcr.io", "termoshtt", "ocipkg", "static", "rust", "__be7f108");
  assertEquals(r.dir, dir);
  assertEquals(await listTree(dir), ["README.md", "libocipkg_static_rust.a"]);
  // .oci-dir holds the image's layout, tagged with its name
  const layout = await OciDir.open(join(dir, ".oci-dir"));
  assertEquals(
    (await layout.resolve("ghcr.io/termoshtt/ocipkg/static/rust:be7f108")).digest,
    r.digest,
  );
  assertEquals((await store.list()).map(String), ["ghcr.io/termoshtt/ocipkg/static/rust:be7f108"]);
});

Deno.test("store: v0 archives (plain image layers) load too", async () => {
  const store = new Store(await tempDir());
  const r = await loadImage(join(FIX, "rust_v0.tar"), { store });
  assertEquals(await listTree(r.dir), ["libold.a"]);
});

Deno.test("store: pack → load round trip keeps every file, link and mode; rm removes it", async () => {
  const src = await samplePackage(await tempDir());
  await Deno.chmod(join(src, "README"), 0o600);
  const out = join(await tempDir(), "pkg.tar");
  const packed = await packDirectory(src, out, { name: "localhost:5000/org/pkg:1.0" });
  const store = new Store(await tempDir());
  const r = await loadImage(out, { store });
  assertEquals(r.digest, packed.digest);
  assertEquals(await listTree(r.dir), await listTree(src));
  assertEquals(
    await Deno.readFile(join(r.dir, "lib/libfoo.a")),
    await Deno.readFile(join(src, "lib/libfoo.a")),
  );
  assertEquals(await Deno.readLink(join(r.dir, "libfoo-link.a")), "lib/libfoo.a");
  assertEquals((await Deno.stat(join(r.dir, "README"))).mode! & 0o777, 0o600);
  // second load is a no-op; force reinstalls
  assertEquals((await loadImage(out, { store })).status, "present");
  assertEquals((await loadImage(out, { store, force: true })).status, "installed");
  await store.remove("localhost:5000/org/pkg:1.0");
  assertEquals(await store.list(), []);
  await assertRejects(
    () => store.remove("localhost:5000/org/pkg:1.0"),
    NotFoundError,
    "not in the store",
  );
});

Deno.test("store: oci-dir input, -t rename and a digest reference", async () => {
  const src = await samplePackage(await tempDir());
  const layout = join(await tempDir(), "layout");
  const packed = await packDirectory(src, layout, { name: "example.com/a:1", format: "dir" });
  const store = new Store(await tempDir());
  const r = await loadImage(layout, { store, name: "example.com/renamed@" + packed.digest });
  assertEquals(r.name.toString(), `example.com/renamed@${packed.digest}`);
  assert(r.dir.endsWith(`__sha256__${packed.digest.slice(7)}`));
});

Deno.test("store: a rejected archive leaves the store unchanged", async () => {
  const store = new Store(await tempDir());
  await loadImage(join(FIX, "rust_v1.tar"), { store });
  const before = await listTree(store.root);
  // an archive whose layer has a symlink escaping the image directory
  const evil = await tempDir();
  await Deno.symlink("../../../../etc", join(evil, "escape"));
  const out = join(await tempDir(), "evil.tar");
  await packDirectory(evil, out, { name: "example.com/evil:1" });
  await assertRejects(() => loadImage(out, { store }), ArchiveError, "points outside");
  assertEquals(await listTree(store.root), before);
});

Deno.test("store: two processes loading the same image at once both succeed, one copy", async () => {
  const src = await samplePackage(await tempDir(), 8 * 1024 * 1024);
  const out = join(await tempDir(), "big.tar");
  await packDirectory(src, out, { name: "example.com/race:1" });
  const data = await tempDir();
  const results = await Promise.all([1, 2, 3].map(() => runCli(["load", out], { dataHome: data })));
  for (const r of results) assertEquals(r.code, 0, r.stderr);
  const store = new Store(data);
  assertEquals((await store.list()).map(String), ["example.com/race:1"]);
  const dir = store.imageDir("example.com/race:1");
  assertEquals(await listTree(dir), await listTree(src));
  // no temp directories left beside it: the image link and the one version it names
  const names = (await Array.fromAsync(Deno.readDir(join(dir, "..")))).map((e) => e.name).sort();
  assertEquals(names, ["__1", await Deno.readLink(dir)].sort());
});

Deno.test("store: an index picks the host platform; a missing platform lists what exists", async () => {
  const p = join(await tempDir(), "multi.tar");
  const w = await OciArchive.open(p, { write: true });
  const g = await sampleGraph(w);
  await w.tag(g.idx, "example.com/multi:1");
  await w.close();
  const store = new Store(await tempDir());
  const r = await loadImage(p, { store, platform: { os: "linux", architecture: "arm64" } });
  assertEquals(r.digest, g.m2.digest);
  await assertRejects(
    () =>
      loadImage(p, {
        store,
        name: "example.com/m:2",
        platform: { os: "windows", architecture: "amd64" },
      }),
    NotFoundError,
    "available: linux/amd64, linux/arm64",
  );
  assertEquals(ImageName.parse("example.com/m:2").toString(), "example.com/m:2");
});

Deno.test("store: a pinned digest only ever names bytes that hash to it", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "ocipkg-pin-" });
  try {
    const src = await samplePackage(join(tmp, "src"));
    const archive = join(tmp, "p.tar");
    const packed = await packDirectory(src, archive, { name: "example.com/pin:1" });
    const other = "sha256:" + "ab".repeat(32);
    const store = new Store(join(tmp, "store"));
    // a tag spelled like a digest would share the digest's store directory: refused (exit 2)
    const hex = packed.digest.slice("sha256:".length);
    const r = await runCli(["load", archive, "-t", `example.com/pin:sha256__${hex}`], {
      dataHome: store.root,
    });
    assertEquals(r.code, 2, r.stderr);
    assert(r.stderr.includes("it would share a store directory with a digest"), r.stderr);
    // a digest name for other bytes: refused, nothing installed
    await assertRejects(
      () => loadImage(archive, { store, name: `example.com/pin@${other}` }),
      VerificationError,
      `pinned to ${other}`,
    );
    assertEquals(await store.list(), []);
    // the right digest installs, under its own directory
    const ok = await loadImage(archive, { store, name: `example.com/pin@${packed.digest}` });
    assert(ok.dir.endsWith(`__sha256__${hex}`));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("store: layers are extracted as the one copy routine moves them (progress, repeats)", async () => {
  const tmp = await tempDir();
  const layer = (name: string, text: string) => {
    const data = new TextEncoder().encode(text);
    const h = tarHeader({
      name,
      type: "file",
      size: data.length,
      mode: 0o644,
      mtime: 0,
      linkname: "",
    });
    return new Uint8Array(
      gzipSync(new Uint8Array([...h, ...data, ...tarPadding(data.length), ...TAR_END])),
    );
  };
  // layers A, A, B: the repeated layer is read back from the layout, no deadlock
  const dir = join(tmp, "layout");
  const layout = await OciDir.open(dir, { create: true });
  const a = await pushBytes(layout, OCIPKG_LAYER, layer("a.txt", "A"));
  const b = await pushBytes(layout, OCIPKG_LAYER, layer("b.txt", "B"));
  const config = await pushBytes(layout, OCIPKG_CONFIG, encodeJson({ layers: {} }));
  const m = await pushBytes(
    layout,
    OCI_MANIFEST,
    encodeJson({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: OCIPKG_ARTIFACT,
      config,
      layers: [a, a, b],
    }),
  );
  await layout.tag(m, "example.com/rep:1");
  await layout.close();
  const events: CopyEvent[] = [];
  const store = new Store(join(tmp, "store"));
  const r = await loadImage(`oci:${dir}`, { store, onProgress: (e) => events.push(e) });
  assertEquals(await listTree(r.dir), ["a.txt", "b.txt"]);
  for (const d of [a.digest, b.digest, config.digest, m.digest]) {
    assert(events.some((e) => e.kind === "done" && e.desc.digest === d), `no progress for ${d}`);
  }
  assert(!events.some((e) => e.kind === "skip"), "nothing is skipped into a fresh layout");
});
