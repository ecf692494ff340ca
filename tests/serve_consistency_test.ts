// `ocipkg serve` keeps every acknowledged write while reads of the same repository race it:
// many manifest PUTs with distinct tags, and HEADs of one tag in loops beside them. Every tag
// answered 201 must be listed afterwards (reads once reloaded the repository's index outside
// the write lock and a later write started from the stale copy, dropping tags).
import { assertEquals } from "./_assert.ts";
import { tempDir } from "./_helpers.ts";
import { serve } from "../mod.ts";

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

Deno.test("serve: every acknowledged tag survives manifest PUTs racing reads of the repository", async () => {
  const work = await tempDir();
  const s = await serve({ root: `${work}/root`, addr: "127.0.0.1:0", rate: 0 });
  try {
    const config = new TextEncoder().encode("{}");
    const configDigest = await sha256(config);
    const put = await fetch(`${s.url}/v2/r/x/blobs/uploads/?digest=${configDigest}`, {
      method: "POST",
      body: config,
    });
    await put.body?.cancel();
    assertEquals(put.status, 201);
    const manifest = (i: number) =>
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.empty.v1+json", digest: configDigest, size: 2 },
        layers: [],
        annotations: { n: String(i) },
      });
    const acked: string[] = [];
    let writing = true;
    const writer = async (w: number) => {
      for (let i = 0; i < 40; i++) {
        const tag = `t${w}-${i}`;
        const res = await fetch(`${s.url}/v2/r/x/manifests/${tag}`, {
          method: "PUT",
          headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
          body: manifest(w * 1000 + i),
        });
        await res.body?.cancel();
        if (res.status === 201) acked.push(tag);
      }
    };
    const reader = async () => {
      while (writing) {
        const res = await fetch(`${s.url}/v2/r/x/manifests/t0-0`, { method: "HEAD" });
        await res.body?.cancel();
      }
    };
    const readers = [reader(), reader(), reader()];
    await Promise.all([0, 1, 2, 3].map(writer));
    writing = false;
    await Promise.all(readers);
    const listed = (await (await fetch(`${s.url}/v2/r/x/tags/list?n=1000`)).json())
      .tags as string[];
    assertEquals(acked.length, 160);
    assertEquals(acked.filter((t) => !listed.includes(t)), []);
  } finally {
    await s.close();
    await Deno.remove(work, { recursive: true });
  }
});
