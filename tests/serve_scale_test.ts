// `ocipkg serve` with many tags: a repository's tags live in its private index
// (`<repo>/.ocipkg-index`: sorted base files plus one small file per key written since, see
// lib/serve/repo_index.ts), not in one index.json read and rewritten whole. Here: a
// repository of 5,000 tags (written straight to disk) answers tag pages, GETs by tag, a tag
// overwrite and a tag delete correctly, and after the documented step (`exportRoot`, i.e.
// `ocipkg serve --export`; a running serve does it by itself) skopeo and umoci read its
// index.json; a plain root (index.json only) is served as it is and moved to the private index
// on its first write, nothing lost; an index.json another tool wrote is merged in; a storm of
// tag PUTs killed with SIGKILL keeps every tag answered 201.
import { assert, assertEquals } from "./_assert.ts";
import { CLI, runCli, sha256, tempDir } from "./_helpers.ts";
import { scaleTag, writeScaleRepository } from "./_scale_root.ts";
import { exportRoot, serve, type ServeHandle } from "../mod.ts";
import { OCI_MANIFEST } from "../lib/oci/mod.ts";

const enc = new TextEncoder();
const REF = "org.opencontainers.image.ref.name";

async function have(cmd: string): Promise<boolean> {
  try {
    return (await new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[]) {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** Every tag, page by page (n at a time, following Link). */
async function allTags(url: string, name: string, n: number): Promise<string[]> {
  const tags: string[] = [];
  let next: string | undefined = `/v2/${name}/tags/list?n=${n}`;
  while (next) {
    const res: Response = await fetch(new URL(next, url));
    assertEquals(res.status, 200);
    const body = await res.json();
    assert(body.tags.length <= n);
    tags.push(...body.tags);
    next = /<([^>]+)>; rel="next"/.exec(res.headers.get("link") ?? "")?.[1];
  }
  return tags;
}

async function digestOfTag(url: string, name: string, tag: string): Promise<string | number> {
  const res = await fetch(`${url}/v2/${name}/manifests/${tag}`, { method: "HEAD" });
  await res.body?.cancel();
  return res.status === 200 ? res.headers.get("docker-content-digest")! : res.status;
}

/** A small image manifest (over the config blob `config`), distinct per `n`. */
function manifestBytes(config: string, n: string): Uint8Array<ArrayBuffer> {
  return enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.empty.v1+json", digest: config, size: 2 },
    layers: [],
    annotations: { n },
  }));
}

async function putManifest(url: string, name: string, ref: string, bytes: Uint8Array<ArrayBuffer>) {
  const res = await fetch(`${url}/v2/${name}/manifests/${ref}`, {
    method: "PUT",
    headers: { "content-type": OCI_MANIFEST },
    body: bytes,
  });
  await res.body?.cancel();
  return res.status;
}

Deno.test("serve scale: 5,000 tags — pages, GET by tag, overwrite, delete; skopeo and umoci read the root after the export", async () => {
  const root = await tempDir();
  const repo = await writeScaleRepository(root, "big/app", 5000, "private");
  const s: ServeHandle = await serve({ root, addr: "127.0.0.1:0", rate: 0, delete: true });
  try {
    // every tag, in order, through pages of 700 (the last one short) and of 10,000 (the cap)
    assertEquals(await allTags(s.url, "big/app", 700), repo.tags);
    assertEquals(await allTags(s.url, "big/app", 10_000), repo.tags);
    // a page from the middle: the tags after `last`, and a Link on
    const mid = await fetch(`${s.url}/v2/big/app/tags/list?n=3&last=${scaleTag(2499)}`);
    assertEquals((await mid.json()).tags, [scaleTag(2500), scaleTag(2501), scaleTag(2502)]);
    assertEquals(
      mid.headers.get("link"),
      `</v2/big/app/tags/list?n=3&last=${scaleTag(2502)}>; rel="next"`,
    );
    const past = await fetch(`${s.url}/v2/big/app/tags/list?n=3&last=${scaleTag(4999)}`);
    assertEquals([(await past.json()).tags, past.headers.get("link")], [[], null]);
    // GET by tag: first, middle, last; a tag that is not there
    for (const i of [0, 2500, 4999]) {
      assertEquals(await digestOfTag(s.url, "big/app", scaleTag(i)), repo.manifest.digest);
    }
    assertEquals(await digestOfTag(s.url, "big/app", "nightly-9999999"), 404);
    const got = await fetch(`${s.url}/v2/big/app/manifests/${scaleTag(1234)}`);
    assertEquals(new Uint8Array(await got.arrayBuffer()), repo.manifestBytes);

    // a tag moved to another manifest, a new tag, a tag deleted
    const other = manifestBytes(repo.config, "other");
    const otherDigest = await sha256(other);
    assertEquals(await putManifest(s.url, "big/app", scaleTag(2500), other), 201);
    assertEquals(await putManifest(s.url, "big/app", "zz-new", other), 201);
    const del = await fetch(`${s.url}/v2/big/app/manifests/${scaleTag(10)}`, { method: "DELETE" });
    await del.body?.cancel();
    assertEquals(del.status, 202);
    assertEquals(await digestOfTag(s.url, "big/app", scaleTag(2500)), otherDigest);
    assertEquals(await digestOfTag(s.url, "big/app", scaleTag(2501)), repo.manifest.digest);
    assertEquals(await digestOfTag(s.url, "big/app", scaleTag(10)), 404);
    const want = [...repo.tags.filter((t) => t !== scaleTag(10)), "zz-new"];
    assertEquals(await allTags(s.url, "big/app", 1000), want);
    // the old manifest is still served by digest
    assertEquals(await digestOfTag(s.url, "big/app", repo.manifest.digest), repo.manifest.digest);
  } finally {
    await s.close(); // a stop writes every index.json that trails its writes
  }
  // index.json: every tag with its manifest, written on the stop
  const index = JSON.parse(await Deno.readTextFile(`${root}/big/app/index.json`));
  const byTag = new Map<string, string>(
    index.manifests.filter((d: { annotations?: Record<string, string> }) => d.annotations?.[REF])
      .map((
        d: { digest: string; annotations: Record<string, string> },
      ) => [d.annotations[REF], d.digest]),
  );
  assertEquals(byTag.size, 5000);
  assertEquals(byTag.get(scaleTag(2500)), await sha256(manifestBytes(repo.config, "other")));
  assertEquals(byTag.get(scaleTag(10)), undefined);
  // the documented step (nothing trails here: it rewrites the same content)
  assertEquals(await exportRoot(root), ["big/app"]);
  if (await have("skopeo")) {
    const r = await run("skopeo", ["inspect", "--raw", `oci:${root}/big/app:${scaleTag(4999)}`]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(enc.encode(r.stdout), repo.manifestBytes);
  }
  if (await have("umoci")) {
    const r = await run("umoci", ["ls", "--layout", `${root}/big/app`]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stdout.trim().split("\n").length, 5000);
  }
});

Deno.test("serve scale: a plain root (index.json only) is served, then moved to the private index on its first write", async () => {
  const root = await tempDir();
  const repo = await writeScaleRepository(root, "old/app", 3000, "plain");
  // an untagged entry and one with a ref name that is not a tag, as other tools write them
  const extra = manifestBytes(repo.config, "untagged");
  const extraDigest = await sha256(extra);
  await Deno.writeFile(`${repo.dir}/blobs/sha256/${extraDigest.slice(7)}`, extra);
  const plain = JSON.parse(await Deno.readTextFile(`${repo.dir}/index.json`));
  plain.manifests.push({ mediaType: OCI_MANIFEST, digest: extraDigest, size: extra.byteLength });
  plain.manifests.push({
    mediaType: OCI_MANIFEST,
    digest: extraDigest,
    size: extra.byteLength,
    annotations: { [REF]: "example.com/old/app:1" },
  });
  await Deno.writeTextFile(`${repo.dir}/index.json`, JSON.stringify(plain));
  // index.json written only when flushed here (a timed export could land between two steps)
  const s = await serve({ root, addr: "127.0.0.1:0", rate: 0, exportIdleMs: 600_000 });
  try {
    assertEquals(await allTags(s.url, "old/app", 1000), repo.tags);
    assertEquals(await digestOfTag(s.url, "old/app", scaleTag(1500)), repo.manifest.digest);
    assert(!(await Deno.stat(`${repo.dir}/.ocipkg-index`).catch(() => undefined)));
    // the first write moves it: every tag kept, the new one added
    assertEquals(await putManifest(s.url, "old/app", "new", extra), 201);
    assert((await Deno.stat(`${repo.dir}/.ocipkg-index/format`)).isFile);
    assertEquals(await allTags(s.url, "old/app", 1000), ["new", ...repo.tags]);
    assertEquals(await digestOfTag(s.url, "old/app", scaleTag(2999)), repo.manifest.digest);
    await s.flush();
    const index = JSON.parse(await Deno.readTextFile(`${repo.dir}/index.json`));
    assertEquals(index.manifests.length, 3001 + 1); // 3,001 tags, the other ref name's entry
    assert(
      index.manifests.some((d: { annotations?: Record<string, string> }) =>
        d.annotations?.[REF] === "example.com/old/app:1"
      ),
    );

    // another tool writes index.json (a tag added, one removed); meanwhile serve moved a tag
    const theirs = JSON.parse(await Deno.readTextFile(`${repo.dir}/index.json`));
    theirs.manifests = theirs.manifests.filter((d: { annotations?: Record<string, string> }) =>
      d.annotations?.[REF] !== scaleTag(0)
    );
    theirs.manifests.push({ ...repo.manifest, annotations: { [REF]: "from-skopeo" } });
    assertEquals(await putManifest(s.url, "old/app", scaleTag(1), extra), 201);
    const changed = theirs.manifests.find((d: { annotations?: Record<string, string> }) =>
      d.annotations?.[REF] === scaleTag(1)
    );
    assertEquals(changed.digest, repo.manifest.digest); // theirs still has the old one
    await Deno.writeTextFile(`${repo.dir}/.index.json.tmp`, JSON.stringify(theirs));
    await Deno.rename(`${repo.dir}/.index.json.tmp`, `${repo.dir}/index.json`);
    assertEquals(await digestOfTag(s.url, "old/app", "from-skopeo"), repo.manifest.digest);
    assertEquals(await digestOfTag(s.url, "old/app", scaleTag(0)), 404);
    assertEquals(await digestOfTag(s.url, "old/app", scaleTag(1)), extraDigest); // ours stands
  } finally {
    await s.close();
  }
});

Deno.test("serve scale: tag PUTs killed with SIGKILL mid-storm keep every tag answered 201", async () => {
  const root = await tempDir();
  const start = async () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        CLI,
        "serve",
        "--root",
        root,
        "--addr",
        "127.0.0.1:0",
        "--quiet",
        "--rate",
        "0",
      ],
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!/listening on (http:\/\/\S+)/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    reader.releaseLock();
    const url = /listening on (http:\/\/\S+)/.exec(text)?.[1];
    assert(url, text);
    return { child, url };
  };
  const first = await start();
  const config = enc.encode("{}");
  const configDigest = await sha256(config);
  const blob = await fetch(`${first.url}/v2/storm/app/blobs/uploads/?digest=${configDigest}`, {
    method: "POST",
    body: config,
  });
  await blob.body?.cancel();
  assertEquals(blob.status, 201);
  const acked = new Map<string, string>();
  let killed = false;
  const writer = async (w: number) => {
    for (let i = 0; !killed; i++) {
      const tag = `w${w}-${String(i).padStart(5, "0")}`;
      const bytes = manifestBytes(configDigest, tag);
      let status: number;
      try {
        status = await putManifest(first.url, "storm/app", tag, bytes);
      } catch {
        return; // the connection died with the server
      }
      if (status === 201) acked.set(tag, await sha256(bytes));
    }
  };
  const writers = [0, 1, 2, 3].map(writer);
  while (acked.size < 80) await new Promise((r) => setTimeout(r, 10));
  first.child.kill("SIGKILL");
  killed = true;
  await first.child.status;
  await first.child.stdout.cancel().catch(() => {});
  await Promise.all(writers);

  // the documented step after a crash: `ocipkg serve --export` writes index.json
  const exported = await runCli(["serve", "--export", "--root", root]);
  assertEquals(exported.code, 0, exported.stderr);
  assertEquals(exported.stdout.trim(), `exported 1 repository under ${root}`);
  const afterCrash = JSON.parse(await Deno.readTextFile(`${root}/storm/app/index.json`));
  const exportedTags = new Map<string, string>(
    afterCrash.manifests.map((d: { digest: string; annotations?: Record<string, string> }) => [
      d.annotations?.[REF],
      d.digest,
    ]),
  );
  for (const [tag, digest] of acked) assertEquals(exportedTags.get(tag), digest, tag);
  if (await have("umoci")) {
    const r = await run("umoci", ["ls", "--layout", `${root}/storm/app`]);
    assertEquals(r.code, 0, r.stderr);
    assert(r.stdout.trim().split("\n").length >= acked.size);
  }

  // restarted on the same root: every acknowledged tag there, with its manifest
  const second = await start();
  try {
    for (const [tag, digest] of acked) {
      assertEquals(await digestOfTag(second.url, "storm/app", tag), digest, tag);
    }
    const listed = new Set(await allTags(second.url, "storm/app", 10_000));
    assertEquals([...acked.keys()].filter((t) => !listed.has(t)), []);
  } finally {
    second.child.kill("SIGTERM");
    assertEquals((await second.child.status).code, 0);
    await second.child.stdout.cancel().catch(() => {});
  }
  // the graceful stop wrote index.json: every acknowledged tag in it
  const index = JSON.parse(await Deno.readTextFile(`${root}/storm/app/index.json`));
  const inIndex = new Set(
    index.manifests.map((d: { annotations?: Record<string, string> }) => d.annotations?.[REF]),
  );
  assertEquals([...acked.keys()].filter((t) => !inIndex.has(t)), []);
});

Deno.test("serve scale: exports (compaction, index.json) racing tag PUTs and reads lose nothing", async () => {
  const root = await tempDir();
  // an export after every pause of 1 ms: compactions and index.json writes all through the storm
  const s = await serve({ root, addr: "127.0.0.1:0", rate: 0, exportIdleMs: 1 });
  const acked = new Map<string, string>();
  try {
    const config = enc.encode("{}");
    const configDigest = await sha256(config);
    const blob = await fetch(`${s.url}/v2/race/app/blobs/uploads/?digest=${configDigest}`, {
      method: "POST",
      body: config,
    });
    await blob.body?.cancel();
    let writing = true;
    const writer = async (w: number) => {
      for (let i = 0; i < 20; i++) {
        // half the PUTs move a tag written before
        const tag = i % 2 ? `t${w}-${i}` : `t${w}-${i >> 2}`;
        const bytes = manifestBytes(configDigest, `${w}-${i}`);
        if ((await putManifest(s.url, "race/app", tag, bytes)) === 201) {
          acked.set(tag, await sha256(bytes));
        }
      }
    };
    const reader = async () => {
      while (writing) await allTags(s.url, "race/app", 7);
    };
    const readers = [reader(), reader()];
    await Promise.all([0, 1, 2, 3].map(writer));
    writing = false;
    await Promise.all(readers);
    for (const [tag, digest] of acked) {
      assertEquals(await digestOfTag(s.url, "race/app", tag), digest, tag);
    }
    assertEquals(await allTags(s.url, "race/app", 1000), [...acked.keys()].sort());
  } finally {
    await s.close();
  }
  const index = JSON.parse(await Deno.readTextFile(`${root}/race/app/index.json`));
  const byTag = new Map(
    index.manifests.filter((d: { annotations?: Record<string, string> }) => d.annotations?.[REF])
      .map((
        d: { digest: string; annotations: Record<string, string> },
      ) => [d.annotations[REF], d.digest]),
  );
  assertEquals(byTag, acked);
  // everything was compacted into the base files: the overlays are empty
  for (const t of ["tags", "manifests"]) {
    assertEquals([...Deno.readDirSync(`${root}/race/app/.ocipkg-index/${t}`)], [], t);
  }
});

Deno.test("sorted table: random puts, removes, compactions and scans agree with a Map", async () => {
  const { SortedTable } = await import("../lib/serve/sorted_table.ts");
  const dir = await tempDir();
  const table = new SortedTable("t", () => Promise.resolve(dir), "t");
  const model = new Map<string, string>();
  let seed = 42;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const keys = Array.from({ length: 150 }, (_, i) => `k${String(i * 7919 % 150).padStart(3, "0")}`);
  for (let step = 0; step < 300; step++) {
    const key = keys[rand(keys.length)]!;
    const op = rand(10);
    if (op < 6) {
      const v = JSON.stringify({ step });
      await table.put(key, v);
      model.set(key, v);
    } else if (op < 8) {
      await table.remove(key);
      model.delete(key);
    } else if (op < 9) {
      assertEquals(await table.get(key), model.get(key), `get ${key} at ${step}`);
    } else if (step % 20 === 9) {
      await table.compact((fn) => fn());
    }
    if (step % 25 === 0) {
      const after = rand(2) ? keys[rand(keys.length)] : undefined;
      const got: [string, string][] = [];
      for await (const e of table.scan({ after })) got.push(e);
      const want = [...model].filter(([k]) => after === undefined || k > after).sort(([a], [b]) =>
        a < b ? -1 : 1
      );
      assertEquals(got, want, `scan after ${after} at ${step}`);
    }
  }
  await table.compact((fn) => fn());
  assertEquals(await table.overlaySize(), 0);
  const all: [string, string][] = [];
  for await (const e of table.scan({ prefix: "k1" })) all.push(e);
  assertEquals(
    all,
    [...model].filter(([k]) => k.startsWith("k1")).sort(([a], [b]) => a < b ? -1 : 1),
  );
});
