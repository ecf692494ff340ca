// The main job of ocipkg, end to end, on a machine with nothing installed: an
// embedded registry (`ocipkg serve`) on a free loopback port, then pack, push,
// tags, inspect, get (and get again from the cache, with no request), link.
// Each step is one line; everything is removed at the end.
// Run: npx -y deno task demo
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  getImage,
  inspectAny,
  linkPackage,
  packDirectory,
  pushImage,
  serve,
  Store,
} from "../mod.ts";
import { listTags } from "../lib/transport/mod.ts";
import { cargoLinkLines, writeCmakeConfig, writePkgConfig } from "../lib/native/mod.ts";

const t0 = performance.now();
const ms = () => `${Math.round(performance.now() - t0)} ms`;
const work = await Deno.makeTempDir({ prefix: "ocipkg-demo-" });
let requests = 0;
const registry = await serve({
  root: join(work, "registry"),
  addr: "127.0.0.1:0",
  log: () => requests++,
});
const store = new Store(join(work, "store"));
const say = (step: string, text: string) => console.log(`${step.padEnd(8)} ${text}`);
try {
  say("serve", `registry at ${registry.url} (root ${registry.root})  $ ocipkg serve --root …`);

  // the package the README's commands pack too: include/demo.h, lib/libdemo.a
  const pkg = fileURLToPath(new URL("../examples/libdemo", import.meta.url));
  const image = `${registry.addr}/demo/libdemo:1.0`;
  const archive = join(work, "libdemo.tar");
  const packed = await packDirectory(pkg, archive, {
    name: image,
    annotations: {
      "org.opencontainers.image.version": "1.0",
      "org.opencontainers.image.description": "ocipkg demo",
    },
  });
  say(
    "pack",
    `examples/libdemo/ → libdemo.tar  ${
      packed.digest.slice(0, 19)
    }…  $ ocipkg pack examples/libdemo libdemo.tar -t ${image}`,
  );

  const pushed = await pushImage(archive, image);
  say("push", `${pushed.name}  $ ocipkg push libdemo.tar ${image}`);

  const tags = await listTags(`${registry.addr}/demo/libdemo`);
  say("tags", `${tags.join(", ")}  $ ocipkg tags ${registry.addr}/demo/libdemo`);

  const info = await inspectAny(image);
  const files = info.manifests.flatMap((m) => m.layers.flatMap((l) => l.files));
  say(
    "inspect",
    `${info.manifests[0]?.artifactType}: ${files.join(" ")}  $ ocipkg inspect ${image}`,
  );

  const got = await getImage(image, { store });
  say("get", `${got.status} into ${got.dir}  $ ocipkg get ${image}`);

  const before = requests;
  const again = await getImage(image, { store });
  say("get", `${again.status}: from the cache, ${requests - before} requests made`);
  if (requests !== before) throw new Error("the cached get made a request");

  const linked = await linkPackage(image, { store });
  const cargo = cargoLinkLines(linked).filter((l) => l.startsWith("cargo:rustc-link-lib"));
  say("link", `${cargo.join(" ")} (and search paths)  $ ocipkg link --cargo ${image}`);
  const pc = await writePkgConfig(linked, { store });
  say("link", `pkg-config file ${pc.path}  $ ocipkg link --pkg-config ${image}`);
  const cmake = await writeCmakeConfig(linked, { store });
  say("link", `CMake config ${cmake.path}  $ ocipkg link --cmake ${image}`);
  say("done", `in ${ms()}; ${requests} requests to the registry in all`);
} finally {
  await registry.close();
  await Deno.remove(work, { recursive: true });
}
