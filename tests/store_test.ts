import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { gzipSync } from "node:zlib";
import {
  ArchiveError,
  composeFiles,
  type CopyEvent,
  encodeJson,
  formatPlatform,
  hostPlatform,
  ImageName,
  loadImage,
  NotFoundError,
  OCI_MANIFEST,
  OciArchive,
  OciDir,
  OCIPKG_ARTIFACT,
  OCIPKG_CONFIG,
  OCIPKG_LAYER,
  OcipkgError,
  packDirectory,
  pushBytes,
  Store,
  TAR_END,
  tarHeader,
  tarPadding,
  UsageError,
  VerificationError,
} from "./_internal.ts";
import {
  listTree,
  ROOT,
  runCli,
  sampleGraph,
  samplePackage,
  tempDir,
  withTempDir,
} from "./_helpers.ts";
import { arArchive, elfHeader, EM } from "./_binaries.ts";

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
  assertEquals((await store.list()).map((e) => String(e.name)), [
    "ghcr.io/termoshtt/ocipkg/static/rust:be7f108",
  ]);
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
  assertEquals((await store.list()).map((e) => String(e.name)), ["example.com/race:1"]);
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
  await withTempDir(async (tmp) => {
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
  });
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

/** linux/amd64 or linux/arm64: the one of the two that is not this host's. */
const OTHER = {
  os: "linux",
  architecture: hostPlatform().architecture === "amd64" ? "arm64" : "amd64",
};
const RISCV = { os: "linux", architecture: "riscv64" };

Deno.test("store: each platform's install is its own entry beside the host's; list shows it; rm one or all", async () => {
  const src = await samplePackage(await tempDir()); // no binaries: fits every platform
  const out = join(await tempDir(), "pkg.tar");
  await packDirectory(src, out, { name: "localhost:5000/org/pkg:1.0" });
  const store = new Store(await tempDir());
  const host = await loadImage(out, { store });
  const riscv = await loadImage(out, { store, platform: RISCV });
  const win = await loadImage(out, { store, platform: { os: "windows", architecture: "amd64" } });
  // the host's keeps the path of the Rust ocipkg and older stores; the others sit beside it
  const parent = join(store.root, "localhost__5000", "org", "pkg");
  assertEquals(host.dir, join(parent, "__1.0"));
  assertEquals(riscv.dir, join(parent, "__1.0+linux-riscv64"));
  assertEquals(win.dir, join(parent, "__1.0+windows-amd64"));
  assertEquals(store.imageDir("localhost:5000/org/pkg:1.0", hostPlatform()), host.dir);
  for (const r of [host, riscv, win]) {
    assertEquals(r.status, "installed");
    assertEquals(await listTree(r.dir), await listTree(src));
  }
  // each is cached for its own platform only
  assertEquals((await loadImage(out, { store, platform: RISCV })).status, "present");
  assertEquals((await loadImage(out, { store })).status, "present");
  assertEquals(
    (await store.installedDescriptor("localhost:5000/org/pkg:1.0", RISCV))?.platform,
    RISCV,
  );
  assertEquals(
    await store.has("localhost:5000/org/pkg:1.0", { os: "linux", architecture: "s390x" }),
    false,
  );
  const listed = (await store.list()).map((
    e,
  ) => [String(e.name), formatPlatform(e.platform), e.dir]);
  assertEquals(listed, [
    ["localhost:5000/org/pkg:1.0", "(any)", host.dir],
    ["localhost:5000/org/pkg:1.0", "linux/riscv64", riscv.dir],
    ["localhost:5000/org/pkg:1.0", "windows/amd64", win.dir],
  ]);
  // the CLI lists them too, and removes one platform's or every entry
  const data = { dataHome: store.root };
  const cli = await runCli(["list"], data);
  assertEquals(cli.stdout.trim().split("\n"), [
    "localhost:5000/org/pkg:1.0",
    "localhost:5000/org/pkg:1.0 (linux/riscv64)",
    "localhost:5000/org/pkg:1.0 (windows/amd64)",
  ]);
  const json = JSON.parse((await runCli(["list", "--json"], data)).stdout);
  assertEquals(json[1], {
    name: "localhost:5000/org/pkg:1.0",
    platform: "linux/riscv64",
    dir: riscv.dir,
  });
  assertEquals(json[0].platform, null);
  const dir = await runCli([
    "image-directory",
    "localhost:5000/org/pkg:1.0",
    "--platform",
    "riscv64gc-unknown-linux-gnu",
  ], data);
  assertEquals(dir.stdout.trim(), riscv.dir);
  const rm = await runCli(
    ["rm", "localhost:5000/org/pkg:1.0", "--platform", "linux/riscv64"],
    data,
  );
  assertEquals(rm.code, 0, rm.stderr);
  assertEquals((await store.list()).map((e) => formatPlatform(e.platform)), [
    "(any)",
    "windows/amd64",
  ]);
  const again = await runCli(
    ["rm", "localhost:5000/org/pkg:1.0", "--platform", "linux/riscv64"],
    data,
  );
  assertEquals(again.code, 3);
  assertEquals(
    again.stderr.trim(),
    "error: image 'localhost:5000/org/pkg:1.0' for linux/riscv64 is not in the store",
  );
  assertEquals((await runCli(["rm", "localhost:5000/org/pkg:1.0"], data)).code, 0);
  assertEquals(await store.list(), []);
  assertEquals(await listTree(store.root), [".lock"]); // every entry and its parents are gone
});

Deno.test("store: a platform that cannot name a directory is refused before anything is written", async () => {
  const out = join(await tempDir(), "pkg.tar");
  await packDirectory(await samplePackage(await tempDir()), out, { name: "example.com/pkg:1" });
  const store = new Store(await tempDir());
  for (const architecture of ["AMD64", "../x", "a-b", "a+b", "a,b", ""]) {
    const platform = { os: "linux", architecture };
    assertThrows(
      () => Store.entryPath("example.com/pkg:1", platform),
      UsageError,
      "invalid platform",
    );
    await assertRejects(() => loadImage(out, { store, platform }), UsageError, "invalid platform");
  }
  assertEquals(await listTree(store.root), []);
});

Deno.test("store: removing x:1 keeps the versions of x:1.v-2 (a tag may hold '.v-')", async () => {
  const out = join(await tempDir(), "pkg.tar");
  const src = await samplePackage(await tempDir());
  await packDirectory(src, out, { name: "example.com/v:1" });
  const store = new Store(await tempDir());
  await loadImage(out, { store });
  await loadImage(out, { store, name: "example.com/v:1.v-2" });
  await loadImage(out, { store, name: "example.com/v:1", force: true });
  await store.remove("example.com/v:1");
  assertEquals(await listTree(store.imageDir("example.com/v:1.v-2")), await listTree(src));
});

Deno.test("store: a manifest declaring no platform is checked by its binaries before the install is committed", async () => {
  const pkg = await tempDir();
  await Deno.mkdir(join(pkg, "lib"));
  await Deno.writeFile(join(pkg, "lib", "libfoo.so"), elfHeader(EM.x86_64));
  await Deno.writeTextFile(join(pkg, "README"), "docs\n");
  const out = join(await tempDir(), "pkg.tar");
  await packDirectory(pkg, out, { name: "example.com/elf:1" });
  const store = new Store(await tempDir());
  const windows = { os: "windows", architecture: "amd64" };
  const e = await assertRejects(() => loadImage(out, { store, platform: windows }), OcipkgError);
  assertEquals(
    e.message,
    "image 'example.com/elf:1': lib/libfoo.so is linux/amd64, not windows/amd64",
  );
  assertEquals(await listTree(store.root), []);
  // the platform it is built for installs, and records it
  const amd64 = { os: "linux", architecture: "amd64" };
  const ok = await loadImage(out, { store, platform: amd64 });
  assertEquals(ok.status, "installed");
  assertEquals((await store.installedDescriptor("example.com/elf:1", amd64))?.platform, amd64);
  // a static library is judged by its objects
  const a = join(await tempDir(), "libbar.a");
  await Deno.writeFile(a, arArchive([{ name: "bar.o", data: elfHeader(EM.aarch64) }]));
  const ar = join(await tempDir(), "ar.tar");
  await composeFiles([a], ar, { name: "example.com/ar:1" });
  await assertRejects(
    () => loadImage(ar, { store, platform: amd64 }),
    OcipkgError,
    "image 'example.com/ar:1': libbar.a (member bar.o) is linux/arm64/v8, not linux/amd64",
  );
  assertEquals(
    (await loadImage(ar, { store, platform: { os: "linux", architecture: "arm64" } })).status,
    "installed",
  );
});

Deno.test("store: a manifest declaring another platform is refused when none is asked for", async () => {
  const out = join(await tempDir(), "pkg.tar");
  await packDirectory(await samplePackage(await tempDir()), out, {
    name: "example.com/other:1",
    platform: OTHER,
  });
  const store = new Store(await tempDir());
  await assertRejects(
    () => loadImage(out, { store }),
    NotFoundError,
    `no manifest for platform ${formatPlatform(hostPlatform())} (available: ${
      formatPlatform(OTHER)
    })`,
  );
  assertEquals(await listTree(store.root), []);
  assertEquals((await loadImage(out, { store, platform: OTHER })).status, "installed");
});

Deno.test("store: an entry is present only for the platform it records; an older store's host entry of another platform is replaced", async () => {
  const p = join(await tempDir(), "multi.tar");
  const digests: Record<string, string> = {};
  for (const architecture of ["amd64", "arm64"]) {
    const pkg = await tempDir();
    await Deno.writeTextFile(join(pkg, "arch.txt"), architecture);
    const platform = { os: "linux", architecture };
    digests[architecture] =
      (await packDirectory(pkg, p, { name: "example.com/multi:1", platform })).digest;
  }
  const store = new Store(await tempDir());
  const other = await loadImage(p, { store, platform: OTHER });
  // what an older version left: the host's path holding the other platform's install
  const hostDir = store.imageDir("example.com/multi:1");
  await Deno.rename(other.dir, hostDir);
  assertEquals(await store.has("example.com/multi:1"), false);
  assertEquals(
    (await store.installedDescriptor("example.com/multi:1"))?.platform?.architecture,
    OTHER.architecture,
  );
  if (hostPlatform().os === "linux") {
    const host = await loadImage(p, { store });
    assertEquals(host.status, "installed");
    assertEquals(host.dir, hostDir);
    assertEquals(host.digest, digests[hostPlatform().architecture]);
    assertEquals(await Deno.readTextFile(join(host.dir, "arch.txt")), hostPlatform().architecture);
    assertEquals(await store.has("example.com/multi:1"), true);
  }
});
