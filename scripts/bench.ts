// Benchmarks: ocipkg beside reference tools in the same run, as ratios.
// Usage: deno task bench [--size-mb 1024] [--only pack,registry,small,link] [--out bench.json]
// Prints a table and writes JSON. Ratios < 1 mean ocipkg is faster.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { encodeJson, OCI_MANIFEST, OciDir, packDirectory, pushBytes } from "../mod.ts";
import { OCI_EMPTY } from "../lib/media_types.ts";
import { startRegistry } from "../tests/_registry.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    "size-mb": { type: "string" },
    only: { type: "string" },
    out: { type: "string" },
    kinds: { type: "string" },
  },
});
const SIZE_MB = Number(args.values["size-mb"] ?? 1024);
const ONLY = args.values.only?.split(",");
const OUT = args.values.out ?? "bench.json";
const KINDS = (args.values.kinds ?? "random,compressible").split(",");
const ROOT = new URL("..", import.meta.url).pathname;
const CLI = join(ROOT, "cli.ts");

interface Row {
  job: string;
  data: string;
  ocipkg_s: number;
  reference: string;
  reference_s: number;
  ratio: number;
  bar: string;
  peak_rss_mb?: number;
}
const rows: Row[] = [];

/** Run a command, return wall seconds and peak RSS (MB) via /usr/bin/time when available. */
async function timed(
  cmd: string[],
  env: Record<string, string> = {},
): Promise<{ s: number; rss?: number }> {
  const useTime = await exists("/usr/bin/time");
  const full = useTime ? ["/usr/bin/time", "-f", "%M", ...cmd] : cmd;
  const t0 = performance.now();
  const r = await new Deno.Command(full[0]!, {
    args: full.slice(1),
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  const s = (performance.now() - t0) / 1000;
  const err = new TextDecoder().decode(r.stderr).trim().split("\n");
  if (!r.success) throw new Error(`${cmd.join(" ")} failed: ${err.slice(-3).join(" ")}`);
  const rss = useTime ? Number(err[err.length - 1]) / 1024 : undefined;
  return { s, rss };
}

async function exists(p: string) {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

async function sh(script: string) {
  const r = await new Deno.Command("bash", {
    args: ["-c", script],
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (!r.success) throw new Error(`failed: ${script}`);
}

/** Make a package dir of `mb` MiB: random (incompressible) or static-library-like (compressible). */
async function makeData(dir: string, mb: number, kind: "random" | "compressible") {
  await Deno.mkdir(join(dir, "lib"), { recursive: true });
  const files = 16;
  const per = Math.ceil(mb / files);
  for (let i = 0; i < files; i++) {
    const f = join(dir, "lib", `libpart${i}.a`);
    if (kind === "random") await sh(`head -c ${per}M /dev/urandom > ${f}`);
    else {await sh(
        `for j in $(seq 1 ${per}); do cat /usr/bin/* 2>/dev/null | head -c 1048576; done > ${f}`,
      );}
  }
}

const deno = Deno.execPath();
const ocipkg = (...a: string[]) => [deno, "run", "-A", "--quiet", CLI, ...a];

async function benchPack(work: string, kind: "random" | "compressible") {
  const dir = join(work, `pkg-${kind}`);
  await makeData(dir, SIZE_MB, kind);
  await sh("sync");
  const ours = await timed(ocipkg("pack", dir, join(work, "out.tar"), "-t", "bench.local/x:1"));
  const ref = await timed(["tar", "-czf", join(work, "ref.tgz"), "-C", dir, "."]);
  rows.push({
    job: "pack",
    data: `${SIZE_MB} MiB ${kind}`,
    ocipkg_s: ours.s,
    reference: "tar -czf",
    reference_s: ref.s,
    ratio: ours.s / ref.s,
    bar: "≤ 0.5",
    peak_rss_mb: ours.rss,
  });
  await Deno.remove(join(work, "out.tar"));
  await Deno.remove(join(work, "ref.tgz"));
  await Deno.remove(dir, { recursive: true });
}

function row(
  job: string,
  data: string,
  ours: { s: number; rss?: number },
  reference: string,
  ref: { s: number },
  bar: string,
) {
  rows.push({
    job,
    data,
    ocipkg_s: ours.s,
    reference,
    reference_s: ref.s,
    ratio: ours.s / ref.s,
    bar,
    peak_rss_mb: ours.rss,
  });
}

/** The layer blob path inside an oci-dir made by pack. */
async function layerOf(dir: string, digest: string): Promise<{ digest: string; path: string }> {
  const layout = await OciDir.open(dir);
  const m = JSON.parse(await Deno.readTextFile(layout.blobPath(digest)));
  return { digest: m.layers[0].digest, path: layout.blobPath(m.layers[0].digest) };
}

async function benchRegistry(work: string, mb: number, kind: "random" | "compressible") {
  const reg = await startRegistry();
  try {
    const src = join(work, `src-${mb}-${kind}`);
    await makeData(src, mb, kind);
    const lay = join(work, `lay-${mb}-${kind}`);
    const packed = await packDirectory(src, `oci:${lay}`, { name: `${reg.host}/bench/pkg:1` });
    const layer = await layerOf(lay, packed.digest);
    const data = `${mb} MiB ${kind}`;
    await sh("sync");
    // push: ours vs skopeo copy of the same layout, and vs a curl upload of the layer
    const push = await timed(ocipkg("push", `oci:${lay}`, `${reg.host}/bench/ours:1`));
    const sk = await timed([
      "skopeo",
      "copy",
      "--dest-tls-verify=false",
      `oci:${lay}:${reg.host}/bench/pkg:1`,
      `docker://${reg.host}/bench/skopeo:1`,
    ]);
    const curlUp = await timed([
      "bash",
      "-c",
      `loc=$(curl -s -i -X POST http://${reg.host}/v2/bench/curl/blobs/uploads/ | tr -d '\\r' | sed -n 's/^Location: //Ip'); curl -s -f -X PUT -H 'Content-Type: application/octet-stream' --upload-file ${layer.path} "$loc&digest=${layer.digest}" -o /dev/null`,
    ]);
    row("push", data, push, "curl -T (layer)", curlUp, "≤ 1.1");
    row("push", data, push, "skopeo copy", sk, "≤ 0.75");
    // pull the blob, verified, to disk vs curl -o
    const out = join(work, "pulled");
    const pull = await timed(ocipkg("pull", `${reg.host}/bench/ours:1`, "-o", `oci:${out}`));
    const curlDown = await timed([
      "curl",
      "-s",
      "-f",
      "-o",
      join(work, "blob"),
      `http://${reg.host}/v2/bench/ours/blobs/${layer.digest}`,
    ]);
    row("pull", data, pull, "curl -o (layer)", curlDown, "≤ 1.05");
    const skPull = await timed([
      "skopeo",
      "copy",
      "--src-tls-verify=false",
      `docker://${reg.host}/bench/ours:1`,
      `oci:${join(work, "skpull")}:x`,
    ]);
    row("pull", data, pull, "skopeo copy", skPull, "-");
    // get = pull + verify + extract vs curl | tar -xz
    const store = join(work, "store");
    const get = await timed(ocipkg("get", `${reg.host}/bench/ours:1`), {
      OCIPKG_DATA_DIR: store,
      PATH: Deno.env.get("PATH")!,
    });
    await Deno.mkdir(join(work, "x"));
    const curlTar = await timed([
      "bash",
      "-c",
      `curl -s -f http://${reg.host}/v2/bench/ours/blobs/${layer.digest} | tar -xz -C ${
        join(work, "x")
      }`,
    ]);
    row("get", data, get, "curl | tar -xz", curlTar, "≤ 1.1");
    const cached = await median(ocipkg("get", `${reg.host}/bench/ours:1`), {
      OCIPKG_DATA_DIR: store,
      PATH: Deno.env.get("PATH")!,
    });
    rows.push({
      job: "get (cached, median of 20)",
      data,
      ocipkg_s: cached.s,
      reference: "-",
      reference_s: 0,
      ratio: 0,
      bar: "≤ 0.1 s",
      peak_rss_mb: cached.rss,
    });
    for (
      const p of [out, join(work, "blob"), join(work, "skpull"), store, join(work, "x"), src, lay]
    ) {
      await Deno.remove(p, { recursive: true }).catch(() => {});
    }
  } finally {
    await reg.stop();
  }
}

async function benchSmall(work: string) {
  const reg = await startRegistry();
  try {
    const lay = join(work, "small");
    const t = await OciDir.open(lay, { create: true });
    const layers = [];
    for (let i = 0; i < 200; i++) {
      const b = new Uint8Array(64 * 1024);
      crypto.getRandomValues(b.subarray(0, 65536));
      layers.push(await pushBytes(t, "application/vnd.oci.image.layer.v1.tar", b));
    }
    const cfg = await pushBytes(t, OCI_EMPTY, encodeJson({}));
    const m = await pushBytes(
      t,
      OCI_MANIFEST,
      encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: cfg, layers }),
    );
    await t.tag(m, "small");
    const ours = await timed(
      ocipkg("push", `oci:${lay}:small`, `${reg.host}/small/ours:1`, "--concurrency", "8"),
    );
    const sk = await timed([
      "skopeo",
      "copy",
      "--dest-tls-verify=false",
      `oci:${lay}:small`,
      `docker://${reg.host}/small/skopeo:1`,
    ]);
    row("push 200×64 KiB", "random", ours, "skopeo copy", sk, "≤ 0.5");
    const pull = await timed(
      ocipkg(
        "pull",
        `${reg.host}/small/ours:1`,
        "-o",
        `oci:${join(work, "sp")}`,
        "--concurrency",
        "8",
      ),
    );
    const skp = await timed([
      "skopeo",
      "copy",
      "--src-tls-verify=false",
      `docker://${reg.host}/small/ours:1`,
      `oci:${join(work, "skp")}:x`,
    ]);
    row("pull 200×64 KiB", "random", pull, "skopeo copy", skp, "≤ 0.5");
  } finally {
    await reg.stop();
  }
}

/** Median wall time of `n` runs (after one warm-up run). */
async function median(cmd: string[], env: Record<string, string>, n = 20) {
  await timed(cmd, env);
  const times: number[] = [];
  let rss = 0;
  for (let i = 0; i < n; i++) {
    const t = await timed(cmd, env);
    times.push(t.s);
    rss = Math.max(rss, t.rss ?? 0);
  }
  times.sort((a, b) => a - b);
  return { s: times[Math.floor(n / 2)]!, rss: rss || undefined };
}

/** Cached `ocipkg link` (the package is in the store) beside pkg-config reading the same package. */
async function benchLink(work: string) {
  const reg = await startRegistry();
  try {
    const pkg = join(work, "greet-pkg");
    await sh(`sh ${join(ROOT, "examples", "c-greet", "build.sh")} ${pkg}`);
    const image = `${reg.host}/bench/greet:1.0`;
    const env = { OCIPKG_DATA_DIR: join(work, "link-store"), PATH: Deno.env.get("PATH") ?? "" };
    await sh(`${deno} run -A --quiet ${CLI} pack ${pkg} ${work}/greet.tar -t ${image} 2>/dev/null`);
    await sh(`${deno} run -A --quiet ${CLI} push ${work}/greet.tar >/dev/null`);
    await timed(ocipkg("link", "--pkg-config", image), env); // gets it and writes greet.pc
    const cargo = await median(ocipkg("link", "--cargo", image), env);
    const pcPath = join(
      env.OCIPKG_DATA_DIR,
      reg.host.replace(":", "__"),
      "bench/greet/__1.0/pkgconfig",
    );
    const pc = await median(["pkg-config", "--cflags", "--libs", "greet"], {
      ...env,
      PKG_CONFIG_PATH: pcPath,
    });
    row(
      "cached link --cargo (median of 20)",
      "libgreet",
      cargo,
      "pkg-config --libs",
      pc,
      "≤ 0.100 s",
    );
    const cmake = await median(ocipkg("link", "--cmake", image), env);
    row(
      "cached link --cmake (median of 20)",
      "libgreet",
      cmake,
      "pkg-config --libs",
      pc,
      "≤ 0.100 s",
    );
  } finally {
    await reg.stop();
  }
}

const work = await Deno.makeTempDir({ prefix: "ocipkg-bench-" });
try {
  for (const kind of ["random", "compressible"] as const) {
    if ((!ONLY || ONLY.includes("pack")) && KINDS.includes(kind)) await benchPack(work, kind);
  }
  if (!ONLY || ONLY.includes("registry")) {
    if (KINDS.includes("random")) {
      await benchRegistry(work, SIZE_MB, "random");
      await benchRegistry(work, SIZE_MB / 2, "random");
    }
    if (KINDS.includes("compressible")) await benchRegistry(work, SIZE_MB, "compressible");
  }
  if (!ONLY || ONLY.includes("small")) await benchSmall(work);
  if (!ONLY || ONLY.includes("link")) await benchLink(work);
} finally {
  await Deno.remove(work, { recursive: true });
}

console.log("| job | data | ocipkg s | reference | ref s | ratio | bar | peak RSS MB |");
console.log("|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(
    `| ${r.job} | ${r.data} | ${r.ocipkg_s.toFixed(2)} | ${r.reference} | ${
      r.reference_s.toFixed(2)
    } | ${r.ratio.toFixed(2)} | ${r.bar} | ${r.peak_rss_mb?.toFixed(0) ?? "-"} |`,
  );
}
await Deno.writeTextFile(
  OUT,
  JSON.stringify({ sizeMb: SIZE_MB, date: new Date().toISOString(), rows }, null, 2),
);
console.log(`wrote ${OUT}`);
