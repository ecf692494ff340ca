// The registry suite: the same tests against docker-registry (registry_test.ts) and
// against `ocipkg serve` (registry_serve_test.ts), anonymous.
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import {
  copyImage,
  getImage,
  ImageName,
  inspectAny,
  NotFoundError,
  OciArchive,
  packDirectory,
  pullImage,
  pushImage,
  Store,
} from "../mod.ts";
import { listTags } from "../lib/transport/mod.ts";
import { listTree, runCli, sampleGraph, samplePackage, tempDir } from "./_helpers.ts";

async function packed(name: string, bytes = 4096) {
  const src = await samplePackage(await tempDir(), bytes);
  const archive = join(await tempDir(), "pkg.tar");
  const r = await packDirectory(src, archive, { name });
  return { src, archive, digest: r.digest };
}

/**
 * Register the suite against one registry.
 * @param kind names the registry in test names
 * @param reg where it listens
 */
export function registrySuite(kind: string, reg: { host: string }): void {
  Deno.test(`${kind}: registry: push, tags, get into the store, pull to archive and dir`, async () => {
    const name = `${reg.host}/org/libfoo:1.0`;
    const p = await packed(name);
    const pushed = await pushImage(p.archive);
    assertEquals(pushed.digest, p.digest);
    assertEquals(await listTags(`${reg.host}/org/libfoo`), ["1.0"]);
    const store = new Store(await tempDir());
    const got = await getImage(name, { store });
    assertEquals(got.status, "installed");
    assertEquals(await listTree(got.dir), await listTree(p.src));
    const out = join(await tempDir(), "pulled.tar");
    assertEquals(await pullImage(name, out), p.digest);
    const ar = await OciArchive.open(out);
    assertEquals((await ar.resolve(name)).digest, p.digest);
    await ar.close();
    const dir = join(await tempDir(), "pulled-dir");
    await pullImage(name, `oci:${dir}`);
    const info = await inspectAny(`oci:${dir}`);
    assertEquals(info.digest, p.digest);
  });

  Deno.test(`${kind}: registry: a cached get makes no network request; --refresh re-resolves the tag`, async () => {
    const name = `${reg.host}/org/cached:1`;
    const p = await packed(name);
    await pushImage(p.archive);
    const data = await tempDir();
    const first = await runCli(["get", name], { dataHome: data });
    assertEquals(first.code, 0, first.stderr);
    // Point the name at a port where nothing listens: a cached get must not notice.
    const dead = await runCli(["get", name, "--debug"], { dataHome: data });
    assertEquals(dead.code, 0, dead.stderr);
    assert(!dead.stderr.includes("debug: GET"), "no request expected: " + dead.stderr);
    // a new push to the same tag is picked up only with --refresh
    const p2 = await packed(name, 8192);
    await pushImage(p2.archive);
    const store = new Store(data);
    const stale = await getImage(name, { store });
    assertEquals(stale.status, "present");
    const fresh = await getImage(name, { store, refresh: true });
    assertEquals(fresh.status, "installed");
    assertEquals(fresh.digest, p2.digest);
    assertEquals((await Deno.stat(join(fresh.dir, "lib", "libfoo.a"))).size, 8192);
    // a digest reference is always enough
    const byDigest = await getImage(`${reg.host}/org/cached@${p.digest}`, { store });
    assertEquals(byDigest.status, "installed");
    assertEquals((await Deno.stat(join(byDigest.dir, "lib", "libfoo.a"))).size, 4096);
  });

  Deno.test(`${kind}: registry: copy in every combination of registry, oci-dir and oci-archive`, async () => {
    const name = `${reg.host}/org/copy-src:1`;
    const p = await packed(name);
    const work = await tempDir();
    // archive → registry, registry → registry (cross-repo mount), registry → dir, dir → archive, archive → registry
    assertEquals(await copyImage(`oci-archive:${p.archive}`, name), p.digest);
    assertEquals(await copyImage(name, `${reg.host}/other/copy-dst:2`), p.digest);
    assertEquals(
      await copyImage(`docker://${reg.host}/other/copy-dst:2`, `oci:${work}/d`),
      p.digest,
    );
    assertEquals(await copyImage(`oci:${work}/d`, `oci-archive:${work}/a.tar:x.io/a:1`), p.digest);
    assertEquals(await copyImage(`${work}/a.tar`, `${reg.host}/third/copy:3`), p.digest);
    const info = await inspectAny(`${reg.host}/third/copy:3`);
    assertEquals(info.digest, p.digest);
    assertEquals(info.name, `${reg.host}/third/copy:3`);
  });

  Deno.test(`${kind}: registry: multi-platform index is pushed whole; get picks a platform; inspect shows platforms`, async () => {
    const archive = join(await tempDir(), "multi.tar");
    const w = await OciArchive.open(archive, { write: true });
    const g = await sampleGraph(w);
    await w.tag(g.idx, `${reg.host}/org/multi:1`);
    await w.close();
    await pushImage(archive);
    const info = await inspectAny(`${reg.host}/org/multi:1`, { files: false });
    assertEquals(info.manifests.map((m) => `${m.platform?.os}/${m.platform?.architecture}`), [
      "linux/amd64",
      "linux/arm64",
    ]);
    const store = new Store(await tempDir());
    const r = await getImage(`${reg.host}/org/multi:1`, {
      store,
      platform: { os: "linux", architecture: "arm64" },
    });
    assertEquals(r.digest, g.m2.digest);
    await assertRejects(
      () =>
        getImage(`${reg.host}/org/multi:1`, {
          store,
          force: true,
          platform: { os: "darwin", architecture: "arm64" },
        }),
      NotFoundError,
      "available: linux/amd64, linux/arm64",
    );
  });

  Deno.test(`${kind}: registry: a 40 MiB blob goes up in chunks and comes back verified`, async () => {
    const name = `${reg.host}/org/big:1`;
    const p = await packed(name, 40 * 1024 * 1024);
    const pushed = await pushImage(p.archive, undefined, {
      chunkSize: 5 * 1024 * 1024,
      concurrency: 8,
    });
    assertEquals(pushed.digest, p.digest);
    const r = await getImage(name, { store: new Store(await tempDir()) });
    assertEquals(
      await Deno.readFile(join(r.dir, "lib", "libfoo.a")),
      await Deno.readFile(join(p.src, "lib", "libfoo.a")),
    );
  });

  // A blob inside an oci-archive is a byte range of the tar: it goes up in one streamed PUT
  // through JavaScript (1 MiB chunks freed once sent), where an oci-dir's goes as a native file.
  Deno.test(`${kind}: registry: a 12 MiB blob inside an oci-archive streams up from its byte range, whole`, async () => {
    const name = `${reg.host}/org/ranged:1`;
    const p = await packed(name, 12 * 1024 * 1024 + 777);
    assertEquals((await pushImage(p.archive)).digest, p.digest);
    const r = await getImage(name, { store: new Store(await tempDir()) });
    assertEquals(
      await Deno.readFile(join(r.dir, "lib", "libfoo.a")),
      await Deno.readFile(join(p.src, "lib", "libfoo.a")),
    );
  });

  Deno.test(`${kind}: registry CLI: push/get/pull/tags/inspect --json, one line per error`, async () => {
    const name = `${reg.host}/cli/pkg:7`;
    const p = await packed(name);
    const data = await tempDir();
    const push = await runCli(["push", p.archive], { dataHome: data });
    assertEquals(push.code, 0, push.stderr);
    assertStringIncludes(push.stdout, p.digest);
    const tags = await runCli(["tags", `${reg.host}/cli/pkg`, "--json"], { dataHome: data });
    assertEquals(JSON.parse(tags.stdout), ["7"]);
    const get = await runCli(["get", name], { dataHome: data });
    assertEquals(get.stdout.trim(), new Store(data).imageDir(ImageName.parse(name)));
    const insp = await runCli(["inspect", name, "--json"], { dataHome: data });
    assertEquals(JSON.parse(insp.stdout).digest, p.digest);
    const missing = await runCli(["get", `${reg.host}/cli/pkg:nope`], { dataHome: data });
    assertEquals(missing.code, 3);
    assertEquals(
      missing.stderr.trim(),
      `error: image '${reg.host}/cli/pkg:nope' not found on ${reg.host} (no such tag or repository)`,
    );
  });
}
