// The hostile-archive corpus (tests/fixtures/hostile/build.ts) run through the
// real CLI: each case's layers are wrapped into an oci-archive by hand (no
// library code, so a library bug cannot hide a case) and `ocipkg load`ed into
// a store beside a sentinel directory:
//
//   <tmp>/store/hostile.test/corpus/__1   the image (OCIPKG_DATA_DIR=<tmp>/store)
//   <tmp>/outside/{secret,sub/inner}      must never change
//   <tmp>/input/image.tar                 the archive (must not change either)
//
// A refused case must exit 1 with one `error: ` line naming the layer/entry,
// change nothing outside the store and leave no image or temp dir in it; an
// accepted case must produce exactly the expected tree with safe modes.
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import {
  type Case,
  CASES,
  type Compression,
  generateLayer,
  header,
  indexEntry,
  isDynamic,
  isGenerated,
  layerBytes,
  layerFile,
  sha256,
  type Vars,
} from "./fixtures/hostile/build.ts";
import { CLI, ROOT, withTempDir } from "./_helpers.ts";

const FIXTURES = join(ROOT, "tests", "fixtures", "hostile");
const IMAGE = "hostile.test/corpus:1";
const IMAGE_PATH = ["hostile.test", "corpus", "__1"];
/** Every case must finish within this. */
const BOUND_MS = 30_000;
/** A hung command is killed after this. */
const KILL_MS = 60_000;

const enc = new TextEncoder();
const dec = new TextDecoder();

// ---------------------------------------------------------------------------
// oci-archive, by hand

interface Blob {
  mediaType: string;
  bytes: Uint8Array;
}

function descriptor(b: Blob) {
  return { mediaType: b.mediaType, digest: `sha256:${sha256(b.bytes)}`, size: b.bytes.length };
}

function layerMediaType(image: Case["image"], c: Compression): string {
  if (image === "ocipkg" && c === "gzip") return "application/vnd.ocipkg.v1.layer.tar+gzip";
  return {
    gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
    zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
    none: "application/vnd.oci.image.layer.v1.tar",
  }[c];
}

/** The layers of a case as blobs, with the uncompressed tar's digest when known. */
async function caseLayers(c: Case, vars: Vars): Promise<{ blob: Uint8Array; diffId: string }[]> {
  const out: { blob: Uint8Array; diffId: string }[] = [];
  for (const [i, layer] of c.layers.entries()) {
    if (layer.generate) {
      out.push({ blob: await generateLayer(layer), diffId: "" });
      continue;
    }
    const built = layerBytes(layer, vars);
    let blob = built.blob;
    if (!isDynamic(c)) blob = await Deno.readFile(join(FIXTURES, layerFile(c, i)));
    out.push({ blob, diffId: `sha256:${sha256(built.tar)}` });
  }
  return out;
}

/** Write `<dir>/image.tar`: an oci-archive holding the case as one image named IMAGE. */
async function writeArchive(c: Case, vars: Vars, path: string): Promise<string[]> {
  const layers = await caseLayers(c, vars);
  const layerBlobs: Blob[] = layers.map((l, i) => ({
    mediaType: layerMediaType(c.image, c.layers[i]!.label ?? c.layers[i]!.compression),
    bytes: l.blob,
  }));
  const layerDescs = layerBlobs.map(descriptor);
  let config: Blob;
  let manifest: Record<string, unknown>;
  if (c.image === "ocipkg") {
    config = {
      mediaType: "application/vnd.ocipkg.v1.config+json",
      bytes: enc.encode(JSON.stringify({
        layers: Object.fromEntries(layerDescs.map((d) => [d.digest, []])),
      })),
    };
    manifest = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      artifactType: "application/vnd.ocipkg.v1.artifact",
      config: descriptor(config),
      layers: layerDescs,
    };
  } else {
    config = {
      mediaType: "application/vnd.oci.image.config.v1+json",
      bytes: enc.encode(JSON.stringify({
        architecture: "amd64",
        os: "linux",
        config: {},
        rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
      })),
    };
    manifest = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: descriptor(config),
      layers: layerDescs,
    };
  }
  const manifestBlob: Blob = {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    bytes: enc.encode(JSON.stringify(manifest)),
  };
  const index = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{
      ...descriptor(manifestBlob),
      annotations: { "org.opencontainers.image.ref.name": IMAGE },
    }],
  };
  const file = await Deno.open(path, { write: true, createNew: true });
  try {
    const put = async (b: Uint8Array) => {
      for (let off = 0; off < b.length;) off += await file.write(b.subarray(off));
    };
    const entry = async (name: string, data: Uint8Array) => {
      await put(header({ name, size: data.length }));
      await put(data);
      await put(new Uint8Array((512 - (data.length % 512)) % 512));
    };
    await entry("oci-layout", enc.encode(JSON.stringify({ imageLayoutVersion: "1.0.0" })));
    await entry("index.json", enc.encode(JSON.stringify(index)));
    await put(header({ name: "blobs/", typeflag: "5", mode: 0o755 }));
    await put(header({ name: "blobs/sha256/", typeflag: "5", mode: 0o755 }));
    const seen = new Set<string>();
    for (const b of [...layerBlobs, config, manifestBlob]) {
      const hex = sha256(b.bytes);
      if (seen.has(hex)) continue;
      seen.add(hex);
      await entry(`blobs/sha256/${hex}`, b.bytes);
    }
    await put(new Uint8Array(1024));
  } finally {
    file.close();
  }
  return layerDescs.map((d) => d.digest);
}

// ---------------------------------------------------------------------------
// Observing the file system

/** Everything under `root` except `skip` (top-level names): path → what it is. */
async function snapshot(root: string, skip: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (abs: string, rel: string) => {
    for await (const e of Deno.readDir(abs)) {
      if (rel === "" && skip.includes(e.name)) continue;
      const p = join(abs, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      const st = await Deno.lstat(p);
      let what =
        `${st.isDirectory ? "d" : st.isSymlink ? "l" : st.isFile ? "f" : "?"} size=${st.size}` +
        ` mode=${
          (st.mode ?? 0).toString(8)
        } mtime=${st.mtime?.getTime()} nlink=${st.nlink} ino=${st.ino}`;
      if (st.isSymlink) what += ` -> ${await Deno.readLink(p)}`;
      if (st.isFile && st.size <= 1 << 20) what += ` sha256=${sha256(await Deno.readFile(p))}`;
      out.set(r, what);
      if (st.isDirectory) await walk(p, r);
    }
  };
  await walk(root, "");
  return out;
}

function diffSnapshots(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) {
    if (!b.has(k)) out.push(`removed ${k} (${v})`);
    else if (b.get(k) !== v) out.push(`changed ${k}: ${v} → ${b.get(k)}`);
  }
  for (const [k, v] of b) if (!a.has(k)) out.push(`new ${k} (${v})`);
  return out;
}

/** Problems in the store after a refused load: any file, image dir or temp dir. */
async function storeLeftovers(store: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string, rel: string) => {
    for await (const e of Deno.readDir(abs)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (/^(__|\.tmp-|\.__)/.test(e.name)) out.push(`${r} (image or temp dir)`);
      else if (e.isDirectory) await walk(join(abs, e.name), r);
      else if (!(rel === "" && e.name === ".lock")) {
        out.push(`${r} (a ${e.isSymlink ? "link" : "file"})`);
      }
    }
  };
  await walk(store, "");
  return out;
}

/** Temp dirs left anywhere in the store. */
async function tempLeftovers(store: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string, rel: string) => {
    for await (const e of Deno.readDir(abs)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.name.startsWith(".tmp-")) out.push(r);
      else if (e.isDirectory && !e.name.startsWith("__") && !e.name.startsWith(".__")) {
        await walk(join(abs, e.name), r);
      }
    }
  };
  await walk(store, "");
  return out;
}

/** Bytes on disk under `dir` (best effort while it changes). */
async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  const walk = async (abs: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(abs));
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(abs, e.name);
      try {
        const st = await Deno.lstat(p);
        total += (st.blocks ?? Math.ceil(st.size / 512)) * 512;
        if (st.isDirectory) await walk(p);
      } catch { /* removed meanwhile */ }
    }
  };
  await walk(dir);
  return total;
}

/** The installed tree (without `.oci-dir`) in the notation of the expectations. */
async function installedTree(
  dir: string,
  expected: Record<string, string>,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (abs: string, rel: string) => {
    for await (const e of Deno.readDir(abs)) {
      if (rel === "" && e.name === ".oci-dir") continue;
      const p = join(abs, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      const st = await Deno.lstat(p);
      if (st.isSymlink) out[r] = `link:${await Deno.readLink(p)}`;
      else if (st.isDirectory) {
        out[r] = "dir";
        await walk(p, r);
      } else if (st.isFile) {
        const data = await Deno.readFile(p);
        out[r] = expected[r]?.startsWith("sha256:")
          ? `sha256:${sha256(data)}:${data.length}`
          : data.length <= 65536
          ? `file:${dec.decode(data)}`
          : `sha256:${sha256(data)}:${data.length}`;
      } else out[r] = "other";
    }
  };
  await walk(dir, "");
  return out;
}

/** Files and dirs (not links) that are group/other-writable or setuid/setgid/sticky. */
async function unsafeModes(dir: string): Promise<string[]> {
  const out: string[] = [];
  const check = async (p: string, rel: string) => {
    const st = await Deno.lstat(p);
    if (st.isSymlink) return;
    const mode = (st.mode ?? 0) & 0o7777;
    if (mode & 0o7022) out.push(`${rel || "."} ${mode.toString(8)}`);
    if (st.isDirectory) {
      for await (const e of Deno.readDir(p)) {
        await check(join(p, e.name), rel ? `${rel}/${e.name}` : e.name);
      }
    }
  };
  await check(dir, "");
  return out;
}

// ---------------------------------------------------------------------------
// Running the CLI

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
  peakStoreBytes: number;
}

async function load(archive: string, store: string, sample: boolean): Promise<Run> {
  const start = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CLI, "load", archive],
    env: { OCIPKG_DATA_DIR: store, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), KILL_MS);
  let done = false;
  let peak = 0;
  const sampler = (async () => {
    while (sample && !done) {
      peak = Math.max(peak, await diskUsage(store));
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  let r: Deno.CommandOutput;
  let ms = 0;
  try {
    r = await child.output();
    ms = Math.round(performance.now() - start);
  } finally {
    done = true;
    clearTimeout(killer);
    await sampler;
  }
  return {
    code: r.code,
    stdout: dec.decode(r.stdout),
    stderr: dec.decode(r.stderr),
    ms,
    peakStoreBytes: peak,
  };
}

// ---------------------------------------------------------------------------
// The cases

async function runCase(c: Case, t: Deno.TestContext): Promise<void> {
  await withTempDir(async (tmp) => {
    const vars: Vars = { TMP: tmp, OUTSIDE: join(tmp, "outside") };
    const store = join(tmp, "store");
    await Deno.mkdir(join(tmp, "outside", "sub"), { recursive: true });
    await Deno.writeTextFile(join(tmp, "outside", "secret"), "keep");
    await Deno.writeTextFile(join(tmp, "outside", "sub", "inner"), "inner");
    await Deno.writeTextFile(join(tmp, "top-secret"), "top");
    await Deno.mkdir(join(tmp, "input"));
    await Deno.mkdir(store);
    const archive = join(tmp, "input", "image.tar");
    const digests = await writeArchive(c, vars, archive);

    const before = await snapshot(tmp, ["store"]);
    const e = c.expect;
    const r = await load(archive, store, e.outcome === "refuse" && e.maxStoreBytes !== undefined);
    const after = await snapshot(tmp, ["store"]);
    const outcome = `exit ${r.code} after ${r.ms} ms; stderr: ${JSON.stringify(r.stderr)}`;
    if (Deno.env.get("HOSTILE_VERBOSE")) console.log(`${c.name}: ${outcome}`);
    if (c.group === "G") {
      const peak = r.peakStoreBytes
        ? `, store peak ${(r.peakStoreBytes / 2 ** 20).toFixed(1)} MiB`
        : "";
      await t.step(`took ${r.ms} ms (exit ${r.code}${peak})`, () => {});
    }

    assertEquals(diffSnapshots(before, after), [], `changed outside the store; ${outcome}`);
    assert(r.ms < BOUND_MS, `took ${r.ms} ms (bound ${BOUND_MS}); ${outcome}`);
    const refused = e.outcome === "refuse" || (e.outcome === "either" && r.code !== 0);
    if (refused) {
      assertEquals(r.code, 1, `expected a refusal (exit 1); ${outcome}; stdout: ${r.stdout}`);
      const lines = r.stderr.replace(/\n$/, "").split("\n");
      assertEquals(lines.length, 1, `stderr must be one line; ${outcome}`);
      const line = lines[0]!;
      assert(line.startsWith("error: "), `stderr must start with 'error: '; ${outcome}`);
      const mention = e.outcome === "refuse" ? e.mention : undefined;
      const named = digests.some((d) => line.includes(d)) || line.includes("hostile.test/corpus") ||
        (mention !== undefined && line.includes(mention));
      assert(named, `the error names neither the layer, the image nor the entry; ${outcome}`);
      if (e.outcome === "refuse" && e.mention !== undefined) {
        assert(line.includes(e.mention), `the error must name '${e.mention}'; ${outcome}`);
      }
      if (e.outcome === "refuse" && e.because) {
        assert(
          e.because.some((w) => line.toLowerCase().includes(w)),
          `the error must say why (${e.because.join(" / ")}); ${outcome}`,
        );
      }
      assertEquals(r.stdout, "", `nothing on stdout; ${outcome}`);
      assertEquals(await storeLeftovers(store), [], `the store must hold no image; ${outcome}`);
      if (e.outcome === "refuse" && e.maxStoreBytes !== undefined) {
        assert(
          r.peakStoreBytes <= e.maxStoreBytes,
          `the store grew to ${r.peakStoreBytes} bytes (bound ${e.maxStoreBytes}); ${outcome}`,
        );
      }
    } else {
      assertEquals(r.code, 0, `expected the image to be accepted; ${outcome}`);
      const dir = join(store, ...IMAGE_PATH);
      assert(r.stdout.includes(dir), `stdout names the image dir; ${outcome}`);
      const real = await Deno.realPath(dir);
      const tree = await installedTree(real, e.tree);
      const sorted = (o: Record<string, string>) =>
        Object.entries(o).sort(([a], [b]) => a < b ? -1 : 1);
      assertEquals(sorted(tree), sorted(e.tree), "installed tree");
      assertEquals(await unsafeModes(real), [], "unsafe modes in the installed image");
      const layoutIndex = JSON.parse(await Deno.readTextFile(join(real, ".oci-dir", "index.json")));
      assert(Array.isArray(layoutIndex.manifests), ".oci-dir/index.json is intact");
      assert(
        (await Deno.lstat(join(real, ".oci-dir", "oci-layout"))).isFile,
        ".oci-dir/oci-layout",
      );
      assertEquals(await tempLeftovers(store), [], "temp dirs left in the store");
    }
  });
}

for (const c of CASES) {
  const debatable = c.debatable ? " [debatable]" : "";
  Deno.test(`${c.name}: ${c.expect.outcome}${debatable} — ${c.title}`, (t) => runCase(c, t));
}

Deno.test("hostile corpus: committed fixtures and cases.json match the builder", async () => {
  const stale: string[] = [];
  for (const c of CASES) {
    if (isDynamic(c) || isGenerated(c)) continue;
    for (const [i, layer] of c.layers.entries()) {
      const file = join(FIXTURES, layerFile(c, i));
      const committed = await Deno.readFile(file).catch(() => undefined);
      const { blob } = layerBytes(layer);
      if (!committed || sha256(committed) !== sha256(blob)) stale.push(layerFile(c, i));
    }
  }
  const index = JSON.parse(await Deno.readTextFile(join(FIXTURES, "cases.json")));
  assertEquals(index, JSON.parse(JSON.stringify(CASES.map(indexEntry))), "cases.json");
  assertEquals(stale, [], "stale fixtures: run `deno run -A tests/fixtures/hostile/build.ts`");
  assert(CASES.length >= 60 && new Set(CASES.map((c) => c.name)).size === CASES.length);
});
