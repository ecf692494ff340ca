// Pushing a hostile oci-archive (`ocipkg push x.tar host/repo:tag`), whose blobs go up as byte
// ranges of the tar: a blob entry with other bytes than its digest, shorter than its descriptor,
// there twice (the last entry counts, as for every reader of the archive), a hard link or symlink
// under a blob's name, a file cut short after it was opened — small blobs (hashed before they are
// sent) and large ones (one streamed PUT whose digest the registry checks) alike: the push fails
// with one line naming the blob, and the registry holds no such blob.
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import { CLI, concat, sha256, tempDir } from "./_helpers.ts";
import { ArchiveError, OciArchive, pushImage, serve } from "../mod.ts";
import { TAR_END, tarHeader, tarPadding } from "./_internal.ts";

const enc = new TextEncoder();
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";

interface Entry {
  name: string;
  bytes?: Uint8Array;
  type?: "file" | "hardlink" | "symlink";
  linkname?: string;
}

function tar(entries: Entry[]): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    const type = e.type ?? "file";
    const bytes = type === "file" ? e.bytes ?? new Uint8Array() : new Uint8Array();
    parts.push(
      tarHeader({
        name: e.name,
        type,
        size: bytes.length,
        mode: 0o644,
        mtime: 0,
        linkname: e.linkname ?? "",
      }),
      bytes,
      tarPadding(bytes.length),
    );
  }
  parts.push(TAR_END);
  return concat(parts);
}

/** An archive of one image whose layer entries are `layerEntries(name, good, bad)`. */
async function archive(
  size: number,
  layerEntries: (name: string, good: Uint8Array, bad: Uint8Array) => Entry[],
) {
  const layer = new Uint8Array(size);
  crypto.getRandomValues(layer.subarray(0, 65536));
  const bad = layer.slice();
  bad[size - 1]! ^= 1;
  const config = enc.encode("{}");
  const ld = await sha256(layer);
  const cd = await sha256(config);
  const manifest = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: cd, size: 2 },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: ld, size }],
  }));
  const md = await sha256(manifest);
  const index = enc.encode(JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: MANIFEST, digest: md, size: manifest.length }],
  }));
  const blob = (d: string) => `blobs/sha256/${d.slice(7)}`;
  const bytes = tar([
    { name: "oci-layout", bytes: enc.encode('{"imageLayoutVersion":"1.0.0"}') },
    { name: blob(cd), bytes: config },
    ...layerEntries(blob(ld), layer, bad),
    { name: blob(md), bytes: manifest },
    { name: "index.json", bytes: index },
  ]);
  return { bytes, layer: ld };
}

const CASES: {
  what: string;
  entries: (name: string, good: Uint8Array, bad: Uint8Array) => Entry[];
  refused?: RegExp;
}[] = [
  {
    what: "other bytes",
    entries: (n, _g, b) => [{ name: n, bytes: b }],
    refused: /digest mismatch/,
  },
  {
    what: "shorter than its descriptor",
    entries: (n, g) => [{ name: n, bytes: g.subarray(0, g.length - 10) }],
    refused: /size mismatch/,
  },
  {
    what: "twice, the last one wrong",
    entries: (n, g, b) => [{ name: n, bytes: g }, { name: n, bytes: b }],
    refused: /digest mismatch/,
  },
  {
    what: "a hard link under its name",
    entries: (n, g) => [{ name: "x", bytes: g }, { name: n, type: "hardlink", linkname: "x" }],
    refused: /is missing from oci-archive/,
  },
  {
    what: "a symlink under its name",
    entries: (n, g) => [{ name: "x", bytes: g }, { name: n, type: "symlink", linkname: "x" }],
    refused: /is missing from oci-archive/,
  },
  {
    what: "twice, the last one right",
    entries: (n, g, b) => [{ name: n, bytes: b }, { name: n, bytes: g }],
  },
];

Deno.test("push from a hostile oci-archive: no blob the archive lies about reaches the registry", async () => {
  const work = await tempDir();
  const s = await serve({ root: join(work, "root"), addr: "127.0.0.1:0", log: () => {} });
  try {
    // 3000 bytes: one monolithic upload, hashed here; 6 MiB: one streamed PUT the registry checks
    for (const size of [3000, 6 << 20]) {
      for (const [i, c] of CASES.entries()) {
        const what = `${c.what} (${size} bytes)`;
        const { bytes, layer } = await archive(size, c.entries);
        const path = join(work, `x-${size}-${i}.tar`);
        await Deno.writeFile(path, bytes);
        const repo = `org/x${size}-${i}`;
        if (c.refused) {
          const e = await assertRejects(() => pushImage(path, `${s.addr}/${repo}:1`));
          const message = (e as Error).message;
          assert(!message.includes("\n"), what);
          assertStringIncludes(message, `blob ${layer}`, what);
          assert(c.refused.test(message), `${what}: ${message}`);
        } else {
          await pushImage(path, `${s.addr}/${repo}:1`);
        }
        const got = await fetch(`${s.url}/v2/${repo}/blobs/${layer}`);
        const body = new Uint8Array(await got.arrayBuffer());
        if (c.refused) assertEquals(got.status, 404, what);
        else assertEquals([got.status, await sha256(body)], [200, layer], what);
      }
    }
    // through the CLI: one line naming the blob, exit 1
    const { bytes, layer } = await archive(6 << 20, (n, _g, b) => [{ name: n, bytes: b }]);
    await Deno.writeFile(join(work, "bad.tar"), bytes);
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", CLI, "push", join(work, "bad.tar"), `${s.addr}/org/cli:1`],
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", OCIPKG_DATA_DIR: join(work, "data") },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr).trim();
    assertEquals(r.code, 1, stderr);
    assertEquals(stderr.split("\n").length, 1, stderr);
    assertStringIncludes(stderr, `error: blob ${layer}`);
  } finally {
    await s.close();
  }
});

Deno.test("push from an oci-archive cut short after it was opened: the blob is refused as truncated", async () => {
  const work = await tempDir();
  const { bytes, layer } = await archive(6 << 20, (n, g) => [{ name: n, bytes: g }]);
  const path = join(work, "x.tar");
  await Deno.writeFile(path, bytes);
  const src = await OciArchive.open(path);
  await Deno.truncate(path, 4 << 20); // cut inside the layer's range
  const stream = await src.fetch({ mediaType: "x/y", digest: layer, size: 6 << 20 });
  await assertRejects(() => new Response(stream).arrayBuffer(), ArchiveError, "is truncated");
  await src.close();
});
