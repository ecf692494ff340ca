// Interop through a real registry: skopeo pulls what ocipkg pushes, and
// ocipkg gets/pulls/inspects what skopeo pushes.
import { join } from "node:path";
import { assertEquals } from "./_assert.ts";
import { getImage, inspectAny, packDirectory, pullImage, pushImage, Store } from "../mod.ts";
import { OCIPKG_ARTIFACT } from "../lib/oci/mod.ts";
import { have, listTree, run, samplePackage, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";

const ready = (await have("skopeo") && await have("umoci")) || !!Deno.env.get("CI");
const reg = ready ? await startRegistry() : undefined;
globalThis.addEventListener("unload", () => reg?.kill());

Deno.test({
  name: "interop: an artifact pushed by ocipkg is copied by skopeo docker:// → oci: and loads back",
  ignore: !ready,
  async fn() {
    const name = `${reg!.host}/interop/ours:1`;
    const src = await samplePackage(await tempDir());
    const archive = join(await tempDir(), "p.tar");
    const packed = await packDirectory(src, archive, { name });
    await pushImage(archive);
    const work = await tempDir();
    const raw = await run("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${name}`]);
    assertEquals(raw.code, 0, raw.stderr);
    assertEquals(JSON.parse(raw.stdout).artifactType, OCIPKG_ARTIFACT);
    const cp = await run("skopeo", [
      "copy",
      "--src-tls-verify=false",
      `docker://${name}`,
      `oci:${work}/sk:x`,
    ]);
    assertEquals(cp.code, 0, cp.stderr);
    const info = await inspectAny(`oci:${work}/sk:x`);
    assertEquals(info.digest, packed.digest);
  },
});

Deno.test({
  name: "interop: a container image pushed by skopeo is read by ocipkg get/pull/inspect",
  ignore: !ready,
  async fn() {
    const work = await tempDir();
    const lay = join(work, "um");
    for (
      const args of [["init", "--layout", lay], ["new", "--image", `${lay}:base`], [
        "unpack",
        "--rootless",
        "--image",
        `${lay}:base`,
        join(work, "b"),
      ]]
    ) {
      assertEquals((await run("umoci", args)).code, 0);
    }
    await Deno.mkdir(join(work, "b", "rootfs", "lib"), { recursive: true });
    await Deno.writeTextFile(join(work, "b", "rootfs", "lib", "libsk.so"), "ELF");
    assertEquals(
      (await run("umoci", ["repack", "--image", `${lay}:base`, join(work, "b")])).code,
      0,
    );
    const name = `${reg!.host}/interop/theirs:2`;
    // skopeo pushes it as a Docker v2 schema 2 image
    const cp = await run("skopeo", [
      "copy",
      "--dest-tls-verify=false",
      "--format",
      "v2s2",
      `oci:${lay}:base`,
      `docker://${name}`,
    ]);
    assertEquals(cp.code, 0, cp.stderr);
    const info = await inspectAny(name);
    assertEquals(info.mediaType, "application/vnd.docker.distribution.manifest.v2+json");
    assertEquals(info.manifests[0]!.layers[0]!.files.includes("lib/libsk.so"), true);
    const r = await getImage(name, { store: new Store(await tempDir()) });
    assertEquals(await listTree(r.dir), ["lib/", "lib/libsk.so"]);
    const d = await pullImage(name, join(work, "pulled.tar"));
    assertEquals(d, info.digest);
    const back = await run("skopeo", [
      "inspect",
      "--raw",
      `oci-archive:${join(work, "pulled.tar")}`,
    ]);
    assertEquals(back.code, 0, back.stderr);
  },
});
