// What an oci-dir makes durable, and when: a pushed blob waits, written and verified, in a temp
// file beside its place (the layout serves it from there); tagging (before index.json is
// written) or closing syncs all waiting blobs in one round, renames each into place once it is
// synced, and syncs their directory; then index.json is written, synced, renamed, and the layout
// directory synced.
// A file under a blob's name is never one that was not synced first.
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { tempDir } from "./_helpers.ts";
import { digestOf, encodeJson, OCI_MANIFEST, OciDir, pushBytes } from "./_internal.ts";

const LAYER = "application/vnd.oci.image.layer.v1.tar";
const enc = new TextEncoder();

/** The names in a layout's blobs/sha256: blobs in place, and temp files. */
async function blobFiles(layout: string): Promise<{ placed: string[]; temps: string[] }> {
  const names: string[] = [];
  for await (const e of Deno.readDir(join(layout, "blobs", "sha256"))) names.push(e.name);
  return {
    placed: names.filter((n) => /^[0-9a-f]{64}$/.test(n)).sort(),
    temps: names.filter((n) => n.includes(".tmp-")),
  };
}

/** A manifest over one layer, pushed, with an empty config. */
async function pushImage(t: OciDir, layerBytes: Uint8Array) {
  const layer = await pushBytes(t, LAYER, layerBytes);
  const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", enc.encode("{}"));
  const manifest = await pushBytes(
    t,
    OCI_MANIFEST,
    encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] }),
  );
  return { layer, config, manifest };
}

Deno.test("oci-dir: pushed blobs wait in temp files, served from there, until the layout is tagged", async () => {
  const dir = join(await tempDir(), "lay");
  const t = await OciDir.open(dir, { create: true });
  const { layer, config, manifest } = await pushImage(t, enc.encode("layer bytes"));
  const before = await blobFiles(dir);
  assertEquals(before.placed, [], "nothing under a blob's name before it is synced");
  assertEquals(before.temps.length, 3);
  assert(await t.exists(layer));
  assertEquals(await new Response(await t.fetch(layer)).text(), "layer bytes");
  await t.tag(manifest, "v1");
  const after = await blobFiles(dir);
  assertEquals(after.temps, []);
  assertEquals(
    after.placed,
    [layer, config, manifest].map((d) => d.digest.slice("sha256:".length)).sort(),
  );
  assertEquals(await Deno.readTextFile(t.blobPath(layer.digest)), "layer bytes");
  // the index names the image only now that its blobs are in place
  const index = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
  assertEquals(index.manifests.map((m: { digest: string }) => m.digest), [manifest.digest]);
  await t.close();
});

Deno.test("oci-dir: close puts pending blobs in place; abort deletes them", async () => {
  const dir = join(await tempDir(), "lay");
  const t = await OciDir.open(dir, { create: true });
  const kept = await pushBytes(t, LAYER, enc.encode("kept"));
  await t.close();
  assertEquals((await blobFiles(dir)).placed, [kept.digest.slice(7)]);
  assertEquals((await blobFiles(dir)).temps, []);
  // an existing layout: abort leaves it as it was
  const u = await OciDir.open(dir);
  const dropped = await pushBytes(u, LAYER, enc.encode("dropped"));
  assert(await u.exists(dropped));
  await u.abort();
  assertEquals(await blobFiles(dir), { placed: [kept.digest.slice(7)], temps: [] });
  // a layout this object made: abort removes it
  const fresh = join(await tempDir(), "fresh");
  const v = await OciDir.open(fresh, { create: true });
  await pushBytes(v, LAYER, enc.encode("gone"));
  await v.abort();
  assert(!(await Deno.stat(fresh).then(() => true, () => false)));
});

Deno.test("oci-dir: the same blob pushed twice while pending is kept once", async () => {
  const dir = join(await tempDir(), "lay");
  const t = await OciDir.open(dir, { create: true });
  const bytes = enc.encode("twice");
  const [a, b] = await Promise.all([pushBytes(t, LAYER, bytes), pushBytes(t, LAYER, bytes)]);
  assertEquals(a.digest, b.digest);
  assertEquals((await blobFiles(dir)).temps.length, 1);
  await t.close();
  assertEquals(await blobFiles(dir), { placed: [a.digest.slice(7)], temps: [] });
});

// The order is the guarantee: each blob's sync done before it is renamed into place (all syncs
// started in one round), every rename (and its directory) synced before index.json is written,
// index.json synced before its rename.
// Recorded by wrapping Deno.open/rename and FsFile.sync/syncData for the duration of the test.
Deno.test("oci-dir: tag syncs all blobs, then renames them and syncs their directory, then writes index.json", async () => {
  const dir = join(await tempDir(), "lay");
  const t = await OciDir.open(dir, { create: true });
  const { manifest } = await pushImage(t, crypto.getRandomValues(new Uint8Array(60_000)));
  const events: string[] = [];
  const paths = new WeakMap<Deno.FsFile, string>();
  const synced = new Set<string>(); // files whose sync has returned
  const early: string[] = []; // renamed before their own sync returned
  const open = Deno.open;
  const rename = Deno.rename;
  const proto = Deno.FsFile.prototype;
  const { sync, syncData } = proto;
  const name = (p: string) =>
    p.endsWith("/blobs/sha256")
      ? "blobs-dir"
      : p === dir
      ? "layout-dir"
      : p.includes("index.json")
      ? "index"
      : p.includes(".blob.tmp-")
      ? "blob-tmp"
      : /\/[0-9a-f]{64}$/.test(p)
      ? "blob"
      : p;
  try {
    Deno.open = async (path, options) => {
      const f = await open(path, options);
      paths.set(f, String(path));
      return f;
    };
    Deno.rename = async (from, to) => {
      events.push(`rename ${name(String(from))} -> ${name(String(to))}`);
      if (!synced.has(String(from))) early.push(String(from));
      await rename(from, to);
    };
    proto.syncData = async function (this: Deno.FsFile) {
      events.push(`sync ${name(paths.get(this) ?? "?")}`);
      await syncData.call(this);
      synced.add(paths.get(this) ?? "?");
    };
    proto.sync = async function (this: Deno.FsFile) {
      events.push(`sync ${name(paths.get(this) ?? "?")}`);
      await sync.call(this);
      synced.add(paths.get(this) ?? "?");
    };
    await t.tag(manifest, "v1");
  } finally {
    Deno.open = open;
    Deno.rename = rename;
    proto.sync = sync;
    proto.syncData = syncData;
  }
  const compact = events.filter((e, i) => e !== events[i - 1]);
  assertEquals(compact, [
    "sync blob-tmp", // all three, in one round
    "rename blob-tmp -> blob",
    "sync blobs-dir",
    "sync index",
    "rename index -> index",
    "sync layout-dir",
  ]);
  assertEquals(events.filter((e) => e === "sync blob-tmp").length, 3);
  assertEquals(events.filter((e) => e === "rename blob-tmp -> blob").length, 3);
  assertEquals(early, []);
  await t.close();
  const index = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
  assertEquals(index.manifests[0].digest, manifest.digest);
  assertEquals(digestOf(await Deno.readFile(t.blobPath(manifest.digest))), manifest.digest);
});

Deno.test("oci-dir: a layout this object made answers exists() from what it put there, no disk lookups", async () => {
  const dir = join(await tempDir(), "lay");
  const t = await OciDir.open(dir, { create: true });
  const a = await pushBytes(t, LAYER, enc.encode("a"));
  assert(await t.exists(a)); // pending
  await t.close();
  assert(await t.exists(a)); // put in place by this object
  assert(!(await t.exists({ ...a, size: a.size + 1 })));
  // opened again, the layout is not this object's making: the disk answers
  const again = await OciDir.open(dir);
  assert(await again.exists(a));
  await again.close();
});
