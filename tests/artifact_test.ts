import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { assertEquals } from "./_assert.ts";
import {
  composeFiles,
  gzipStream,
  inspectLayout,
  OciArchive,
  OCIPKG_ARTIFACT,
  OCIPKG_CONFIG,
  OCIPKG_LAYER,
  packDirectory,
} from "./_internal.ts";
import { samplePackage, tempDir } from "./_helpers.ts";

Deno.test("gzipStream: mixed random and compressible data round-trips as one gzip member", async () => {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < 40; i++) {
    const c = new Uint8Array(1024 * 1024);
    if (i % 10 < 5) {
      for (let j = 0; j < c.length; j += 65536) crypto.getRandomValues(c.subarray(j, j + 65536));
    } else c.fill(i);
    parts.push(c);
  }
  const gz = new Uint8Array(await new Response(gzipStream(parts, 6)).arrayBuffer());
  const back = new Uint8Array(gunzipSync(gz));
  assertEquals(back.length, 40 * 1024 * 1024);
  let off = 0;
  for (const p of parts) {
    assertEquals(Buffer.compare(back.subarray(off, off + p.length), p), 0);
    off += p.length;
  }
  // the compressible half was compressed, the random half stored
  assertEquals(gz.length < 22 * 1024 * 1024, true);
});

Deno.test("pack: Rust ocipkg v1 format — artifactType, config JSON, layer media type", async () => {
  const src = await samplePackage(await tempDir());
  const out = join(await tempDir(), "p.tar");
  const r = await packDirectory(src, out, {
    name: "ghcr.io/o/p:1",
    annotations: { "org.opencontainers.image.version": "1" },
  });
  const ar = await OciArchive.open(out);
  const root = await ar.resolve();
  assertEquals(root.annotations?.["org.opencontainers.image.ref.name"], "ghcr.io/o/p:1");
  assertEquals(root.digest, r.digest);
  const m = JSON.parse(
    new TextDecoder().decode(await new Response(await ar.fetch(root)).arrayBuffer()),
  );
  assertEquals(m.artifactType, OCIPKG_ARTIFACT);
  assertEquals(m.config.mediaType, OCIPKG_CONFIG);
  assertEquals(m.layers.map((l: { mediaType: string }) => l.mediaType), [OCIPKG_LAYER]);
  assertEquals(m.annotations, { "org.opencontainers.image.version": "1" });
  const cfg = JSON.parse(
    new TextDecoder().decode(await new Response(await ar.fetch(m.config)).arrayBuffer()),
  );
  assertEquals(cfg, {
    layers: { [m.layers[0].digest]: ["README", "include", "lib", "libfoo-link.a"] },
  });
  await ar.close();
});

Deno.test("pack is reproducible with SOURCE_DATE_EPOCH; compose puts files at the top", async () => {
  const src = await samplePackage(await tempDir());
  Deno.env.set("SOURCE_DATE_EPOCH", "1700000000");
  try {
    const a = await packDirectory(src, join(await tempDir(), "a.tar"), { name: "x.io/a:1" });
    const b = await packDirectory(src, join(await tempDir(), "b.tar"), { name: "x.io/a:1" });
    assertEquals(a.digest, b.digest);
  } finally {
    Deno.env.delete("SOURCE_DATE_EPOCH");
  }
  const out = join(await tempDir(), "c.tar");
  await composeFiles([join(src, "lib", "libfoo.a"), join(src, "include", "foo.h")], out, {
    name: "x.io/c:1",
  });
  const info = await inspectLayout(out);
  assertEquals(info.manifests[0]!.layers[0]!.files, ["libfoo.a", "foo.h"]);
});
