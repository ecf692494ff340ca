// The main job end to end on an embedded default: pack sample files, inspect
// the archive, load it into a temporary store, list the store, and link the
// package (Cargo lines, pkg-config, CMake) from the store without a network.
// Run: npx -y deno task demo
import { join } from "node:path";
import {
  cargoLinkLines,
  formatPlatform,
  inspectAny,
  linkPackage,
  loadImage,
  packDirectory,
  Store,
  writeCmakeConfig,
  writePkgConfig,
} from "../mod.ts";

const work = await Deno.makeTempDir({ prefix: "ocipkg-demo-" });
const store = new Store(join(work, "store"));
try {
  const pkg = join(work, "libdemo");
  await Deno.mkdir(join(pkg, "lib"), { recursive: true });
  await Deno.mkdir(join(pkg, "include"), { recursive: true });
  await Deno.writeTextFile(join(pkg, "include", "demo.h"), "int demo_answer(void);\n");
  await Deno.writeFile(join(pkg, "lib", "libdemo.a"), new TextEncoder().encode("!<arch>\n"));
  console.log(`1. sample package at ${pkg}`);

  const archive = join(work, "libdemo.tar");
  const packed = await packDirectory(pkg, archive, {
    name: "localhost:5000/demo/libdemo:1.0",
    annotations: { "org.opencontainers.image.description": "ocipkg demo" },
  });
  console.log(`2. packed ${packed.name} → ${archive}\n   manifest ${packed.digest}`);

  const info = await inspectAny(archive);
  for (const m of info.manifests) {
    console.log(`3. inspect: ${m.artifactType} (${formatPlatform(m.platform)})`);
    for (const l of m.layers) {
      console.log(`   layer ${l.digest.slice(0, 19)}… ${l.files.join(" ")}`);
    }
  }

  const r = await loadImage(archive, { store });
  console.log(`4. loaded into ${r.dir}`);
  console.log(`5. store lists: ${(await store.list()).join(", ")}`);

  // already in the store: linking makes no request
  const linked = await linkPackage(packed.name, { store });
  console.log("6. ocipkg link --cargo prints:");
  for (const line of cargoLinkLines(linked)) console.log(`   ${line}`);
  const pc = await writePkgConfig(linked, { store });
  const cmake = await writeCmakeConfig(linked, { store });
  console.log(`7. pkg-config file ${pc.path}\n   CMake config ${cmake.path}`);
} finally {
  await Deno.remove(work, { recursive: true });
}
