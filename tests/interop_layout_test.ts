// Interop with real tools: skopeo and umoci read what ocipkg writes, and
// ocipkg reads what skopeo writes.
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { inspectLayout, loadImage, OCIPKG_ARTIFACT, packDirectory, Store } from "./_internal.ts";
import { have, listTree, run, samplePackage, tempDir } from "./_helpers.ts";

const skopeo = await have("skopeo");
const umoci = await have("umoci");

Deno.test({
  name: "interop: skopeo inspects and copies what pack writes; the round trip loads back",
  ignore: !skopeo && !Deno.env.get("CI"),
  async fn() {
    const src = await samplePackage(await tempDir());
    const work = await tempDir();
    const archive = join(work, "pkg.tar");
    const packed = await packDirectory(src, archive, { name: "localhost:5000/org/pkg:1.0" });
    const raw = await run("skopeo", ["inspect", "--raw", `oci-archive:${archive}`]);
    assertEquals(raw.code, 0, raw.stderr);
    assertEquals(JSON.parse(raw.stdout).artifactType, OCIPKG_ARTIFACT);
    // oci-archive → oci dir (skopeo), → oci-archive again
    const cp = await run("skopeo", [
      "copy",
      `oci-archive:${archive}`,
      `oci:${join(work, "sk")}:pkg`,
    ]);
    assertEquals(cp.code, 0, cp.stderr);
    const cp2 = await run("skopeo", [
      "copy",
      `oci:${join(work, "sk")}:pkg`,
      `oci-archive:${join(work, "sk.tar")}:localhost:5000/org/pkg:1.0`,
    ]);
    assertEquals(cp2.code, 0, cp2.stderr);
    // what skopeo wrote is read by ocipkg
    const info = await inspectLayout(`oci:${join(work, "sk")}:pkg`);
    assertEquals(info.digest, packed.digest);
    const store = new Store(await tempDir());
    const r = await loadImage(`oci:${join(work, "sk")}:pkg`, {
      store,
      name: "localhost:5000/org/pkg:1.0",
    });
    assertEquals(await listTree(r.dir), await listTree(src));
    const r2 = await loadImage(join(work, "sk.tar"), { store: new Store(await tempDir()) });
    assertEquals(r2.name.toString(), "localhost:5000/org/pkg:1.0");
    assertEquals(await listTree(r2.dir), await listTree(src));
  },
});

Deno.test({
  name: "interop: a container image built by umoci, archived by skopeo, loads (v0 layers)",
  ignore: (!skopeo || !umoci) && !Deno.env.get("CI"),
  async fn() {
    const work = await tempDir();
    const lay = join(work, "um");
    const bundle = join(work, "bundle");
    for (
      const args of [
        ["init", "--layout", lay],
        ["new", "--image", `${lay}:base`],
        ["unpack", "--rootless", "--image", `${lay}:base`, bundle],
      ]
    ) {
      const r = await run("umoci", args);
      assertEquals(r.code, 0, r.stderr);
    }
    await Deno.mkdir(join(bundle, "rootfs", "lib"), { recursive: true });
    await Deno.writeTextFile(join(bundle, "rootfs", "lib", "libx.a"), "!<arch>\n");
    const rp = await run("umoci", ["repack", "--image", `${lay}:base`, bundle]);
    assertEquals(rp.code, 0, rp.stderr);
    const archive = join(work, "um.tar");
    const cp = await run("skopeo", [
      "copy",
      `oci:${lay}:base`,
      `oci-archive:${archive}:example.com/um:1`,
    ]);
    assertEquals(cp.code, 0, cp.stderr);
    const info = await inspectLayout(archive);
    assertEquals(info.manifests[0]!.format, "v0");
    const r = await loadImage(archive, { store: new Store(await tempDir()) });
    assertEquals(r.name.toString(), "example.com/um:1");
    assertEquals(await Deno.readTextFile(join(r.dir, "lib", "libx.a")), "!<arch>\n");
  },
});

Deno.test({
  name: "interop: umoci lists the tags of an oci-dir that pack writes",
  ignore: !umoci && !Deno.env.get("CI"),
  async fn() {
    const src = await samplePackage(await tempDir());
    const dir = join(await tempDir(), "layout");
    await packDirectory(src, `oci:${dir}`, { name: "example.com/umoci:2" });
    const ls = await run("umoci", ["ls", "--layout", dir]);
    assertEquals(ls.code, 0, ls.stderr);
    assertStringIncludes(ls.stdout, "example.com/umoci:2");
    // umoci stat reads the manifest and walks blobs (config is not an image config: it may refuse)
    const stat = await run("umoci", ["stat", "--image", `${dir}:example.com/umoci:2`]);
    assert(stat.code === 0 || stat.stderr.includes("config"), stat.stderr);
  },
});
