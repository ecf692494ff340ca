// Test images built from random bytes, pushed to a registry (for the abort and red-team suites).
import { join } from "node:path";
import { OciDir, pushImage } from "../mod.ts";
import { encodeJson, OCI_MANIFEST } from "../lib/oci/mod.ts";
import { OCI_EMPTY } from "../lib/oci/media_types.ts";
import { pushBytes } from "../lib/transport/mod.ts";
import { tempDir } from "./_helpers.ts";

/** An image whose layers have these sizes (random bytes), made in an oci-dir tagged `1`. */
export async function makeRandomImage(sizes: number[]) {
  const dir = join(await tempDir(), "layout");
  const t = await OciDir.open(dir, { create: true });
  const layers = [];
  for (const size of sizes) {
    const b = new Uint8Array(size);
    for (let off = 0; off < size; off += 65536) {
      crypto.getRandomValues(b.subarray(off, off + 65536));
    }
    layers.push(await pushBytes(t, "application/vnd.oci.image.layer.v1.tar", b));
  }
  const config = await pushBytes(t, OCI_EMPTY, encodeJson({}));
  const doc = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers };
  const manifest = await pushBytes(t, OCI_MANIFEST, encodeJson(doc));
  await t.tag(manifest, "1");
  await t.close();
  return { layers, manifest, dir };
}

/**
 * An image whose layers have these sizes (random bytes), made in an oci-dir and pushed to
 * `registry/repo:1` (anonymous); returns its layers, manifest and the oci-dir.
 */
export async function pushRandomImage(sizes: number[], registry: string, repo: string) {
  const { layers, manifest, dir } = await makeRandomImage(sizes);
  await pushImage(`oci:${dir}:1`, `${registry}/${repo}:1`, { credential: null, backoffMs: 10 });
  return { layers, manifest, dir };
}
