// Benchmarks: every ocipkg job beside its reference tool in one run, as interleaved pairs.
//
//   deno task bench [--quick] [--size-mb 1024] [--runs 5] [--only pack,push,...] [--json bench.json]
//                   [--ladder-mb 256,4096] [--cli ../old/cli.ts]
//   deno task bench --scale [--quick] [--only store,tags,catalog] [--runs 7] [--http-runs 200]
//                           [--json bench-scale.json]
//
// --scale runs scripts/bench_scale.ts instead: each command as a store, a served repository or
// a served root grows (10 / 1,000 / 10,000 images; 100 / 10,000 / 100,000 tags; 10 / 1,000 /
// 10,000 repositories), as ratios to the smallest.
//
// Each row is (ocipkg command, reference command) run as interleaved pairs after a warm-up
// round (A,B then B,A, alternating, so neither side always runs on a warmer cache); it reports
// the median of each side, the median of the pairwise ratios A/B (< 1: ocipkg is faster) and
// the peak RSS of each side (the child's ru_maxrss, read with `/usr/bin/time -f %M`).
// Rows whose feature is not in this tree are reported as "skipped (not available)".
//
// Needs: docker-registry, skopeo, curl, tar, gzip, cc + ar (the cached `link` row) on PATH,
// and /usr/bin/time (Debian package `time`) for peak RSS — without it RSS columns show "-".
// Writes: a table on stdout, everything as JSON to --json (default bench.json); sizes in MiB.
// Every child runs with DENO_NO_UPDATE_CHECK=1. The machine should be quiet: the JSON keeps
// the load average before and after.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { copyImage, OciDir, packDirectory } from "../mod.ts";
import { encodeJson, OCI_MANIFEST } from "../lib/oci/mod.ts";
import { pushBytes } from "../lib/transport/mod.ts";
import { OCI_EMPTY } from "../lib/oci/media_types.ts";
import { type Registry, startRegistry } from "../tests/_registry.ts";
import { measureRanged, type RangedRow } from "./bench_ranged.ts";
import { benchZstd } from "./bench_zstd.ts";

const GROUPS = [
  "pack",
  "push",
  "pull",
  "get",
  "small",
  "cached",
  "rss",
  "ranged",
  "zstd",
  "serve",
] as const;
type GroupName = typeof GROUPS[number];

const USAGE = `usage: deno task bench [options]
  --quick            small sizes, 2 pairs, 5 cached pairs (a smoke test, < 2 minutes)
  --size-mb <n>      size of the large jobs in MiB (default 1024; --quick 64)
  --runs <n>         measured pairs per row after one warm-up round (default 5; --quick 2)
  --cached-runs <n>  pairs for the ~50 ms cached get/link rows (default 20; --quick 5)
  --only <a,b>       groups: ${GROUPS.join(",")}
  --kinds <a,b>      data for pack and get: random,compressible (default both)
  --ladder-mb <a,b>  the peak-RSS ladder's other sizes, beside --size-mb (default a quarter
                     and four times it: 256,4096 for 1 GiB)
  --json <file>      write everything as JSON here (default bench.json; --out is the same)
  --cli <cli.ts>     run ocipkg's side from another checkout's cli.ts (a "before" run of an
                     older commit against the same references; fixtures still come from here)
  --scale            the scale bench instead (scripts/bench_scale.ts; --quick, --runs, --json
                     apply; --http-runs <n> pairs per HTTP row, default 200; --only picks its
                     sections: store,tags,catalog)`;

const args = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean" },
    "size-mb": { type: "string" },
    runs: { type: "string" },
    "cached-runs": { type: "string" },
    only: { type: "string" },
    kinds: { type: "string" },
    "ladder-mb": { type: "string" },
    json: { type: "string" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
    scale: { type: "boolean" },
    "http-runs": { type: "string" },
    cli: { type: "string" },
  },
});
if (args.values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
if (args.values.scale) {
  const { benchScale, sectionsOf } = await import("./bench_scale.ts");
  await benchScale({
    only: sectionsOf(args.values.only),
    quick: args.values.quick,
    runs: args.values.runs ? Number(args.values.runs) : undefined,
    httpRuns: args.values["http-runs"] ? Number(args.values["http-runs"]) : undefined,
    json: args.values.json ?? args.values.out,
  });
  Deno.exit(0);
}
const QUICK = args.values.quick ?? false;

function intOption(name: string, value: string | undefined, dflt: number, min: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    console.error(`error: --${name} must be an integer ≥ ${min}, got '${value}'`);
    Deno.exit(2);
  }
  return n;
}
const SIZE_MB = intOption("size-mb", args.values["size-mb"], QUICK ? 64 : 1024, 16);
const RUNS = intOption("runs", args.values.runs, QUICK ? 2 : 5, 1);
const CACHED_RUNS = intOption("cached-runs", args.values["cached-runs"], QUICK ? 5 : 20, 1);
const OUT = args.values.json ?? args.values.out ?? "bench.json";
const ONLY = args.values.only?.split(",").map((s) => s.trim()).filter(Boolean);
for (const g of ONLY ?? []) {
  if (!(GROUPS as readonly string[]).includes(g)) {
    console.error(`error: --only: unknown group '${g}' (groups: ${GROUPS.join(",")})`);
    Deno.exit(2);
  }
}
type Kind = "random" | "compressible";
const KINDS = (args.values.kinds ?? "random,compressible").split(",") as Kind[];
for (const k of KINDS) {
  if (k !== "random" && k !== "compressible") {
    console.error(`error: --kinds: unknown kind '${k}' (random, compressible)`);
    Deno.exit(2);
  }
}
const want = (g: GroupName) => !ONLY || ONLY.includes(g);
/** The sizes (MiB) of the peak-RSS ladder besides SIZE_MB. */
const LADDER_MB = (args.values["ladder-mb"] ?? `${Math.round(SIZE_MB / 4)},${SIZE_MB * 4}`)
  .split(",").map((s) => intOption("ladder-mb", s.trim(), 0, 1));

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = args.values.cli ?? join(ROOT, "cli.ts");
const DENO = Deno.execPath();
/** Every child gets these (and inherits the rest of our environment). */
const CHILD_ENV = { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" };
Deno.env.set("DENO_NO_UPDATE_CHECK", "1");

// ---------------------------------------------------------------------------------------------
// Running commands

/** One command of a pair: argv, extra environment, and untimed clean-up after it. */
interface Spec {
  argv: string[];
  env?: Record<string, string>;
  after?: () => Promise<void>;
}
/** Makes the spec of one run; `n` is unique over the whole bench (fresh repos, fresh dirs). */
type Step = (n: number) => Spec;

interface Sample {
  s: number;
  rssMb?: number;
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

const TIME = await exists("/usr/bin/time") ? "/usr/bin/time" : undefined;
let seq = 0;
let WORK = "";

/**
 * Write back what earlier runs left dirty (`sync`, untimed) before each run: every job starts from
 * the same disk state, whichever ran before it. Without it the order of a round decided part of a
 * row — a job that syncs (ocipkg's pull, `curl && sync -d`) paid for the gigabyte a job before it
 * left unsynced (`curl -o`, skopeo), and only some rounds put it there.
 */
async function settle(): Promise<void> {
  await new Deno.Command("sync", { stdout: "null", stderr: "null" }).output().catch(() => {});
}

/** Run once: wall seconds (spawn to exit) and the child's peak RSS; throws on failure. */
async function runOnce(spec: Spec): Promise<Sample> {
  const rssFile = TIME ? join(WORK, `rss-${seq}`) : "";
  const argv = TIME ? [TIME, "-f", "%M", "-o", rssFile, ...spec.argv] : spec.argv;
  await settle();
  try {
    const t0 = performance.now();
    const out = await new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      env: { ...CHILD_ENV, ...spec.env },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    const s = (performance.now() - t0) / 1000;
    if (!out.success) {
      const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-2).join(" ⏎ ");
      throw new Error(`'${short(spec.argv)}' exited ${out.code}: ${err}`);
    }
    let rssMb: number | undefined;
    if (TIME) {
      const last = (await Deno.readTextFile(rssFile)).trim().split("\n").pop() ?? "";
      const kb = Number(last);
      if (Number.isFinite(kb) && kb > 0) rssMb = kb / 1024;
    }
    return { s, rssMb };
  } finally {
    if (TIME) await Deno.remove(rssFile).catch(() => {});
    await spec.after?.();
  }
}

function short(argv: string[]): string {
  return argv.map((a) => a.replace(ROOT, "").replace(WORK, "$W")).join(" ").slice(0, 160);
}

async function sh(script: string): Promise<void> {
  const r = await new Deno.Command("bash", {
    args: ["-c", script],
    env: CHILD_ENV,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) {
    throw new Error(`'${script.slice(0, 120)}' failed: ${new TextDecoder().decode(r.stderr)}`);
  }
}

async function capture(cmd: string, ...a: string[]): Promise<string> {
  try {
    const r = await new Deno.Command(cmd, { args: a, env: CHILD_ENV, stderr: "piped" }).output();
    return (new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr)).trim();
  } catch (e) {
    return `unavailable (${e instanceof Error ? e.message : e})`;
  }
}

const rm = (p: string) => () => Deno.remove(p, { recursive: true }).catch(() => {});
const ocipkg = (...a: string[]) => [DENO, "run", "-A", "--quiet", CLI, ...a];

// ---------------------------------------------------------------------------------------------
// Rows

type Bar =
  | { ratio: number } // median pairwise ratio ≤ this
  | { ms: number } // ocipkg median ≤ this many ms
  | { none: true };

interface Stats {
  median_s: number;
  runs_s: number[];
  peak_rss_mb?: number;
}

interface Row {
  group: GroupName;
  job: string;
  data: string;
  status: "ok" | "skipped" | "error";
  note?: string;
  reference?: string;
  ocipkg?: Stats;
  ref?: Stats;
  /** Median of the pairwise ratios ocipkg/reference. */
  ratio?: number;
  ratios?: number[];
  bar: string;
  pass?: boolean;
}
const rows: Row[] = [];

/** The jobs of the peak-RSS ladder: push from an oci-dir, from an oci-archive, pull, get. */
const LADDER_JOBS = ["push", "push from archive", "pull", "get"] as const;
type LadderJob = typeof LADDER_JOBS[number];
/** Peak RSS (MB) of ocipkg's ladder jobs by data size (MiB). */
const rssLadder: Record<LadderJob, Record<number, number>> = {
  push: {},
  "push from archive": {},
  pull: {},
  get: {},
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function stats(samples: Sample[]): Stats {
  const rss = samples.map((x) => x.rssMb).filter((x): x is number => x !== undefined);
  return {
    median_s: Number(median(samples.map((x) => x.s)).toFixed(4)),
    runs_s: samples.map((x) => Number(x.s.toFixed(4))),
    peak_rss_mb: rss.length ? Number(Math.max(...rss).toFixed(1)) : undefined,
  };
}

function barText(bar: Bar): string {
  if ("ratio" in bar) return `≤ ${bar.ratio} ×`;
  if ("ms" in bar) return `≤ ${bar.ms} ms`;
  return "-";
}

interface Ref {
  name: string;
  step: Step;
  bar: Bar;
}

interface Pairs {
  group: GroupName;
  job: string;
  data: string;
  ours: Step;
  refs: Ref[];
  runs: number;
  /** Also record ocipkg's peak RSS in the ladder under this job at this size. */
  ladder?: { job: LadderJob; mb: number };
}

/**
 * Interleaved pairs: one warm-up round, then `runs` rounds of ocipkg and each reference,
 * ocipkg first in even rounds and last in odd ones. One row per reference.
 */
async function runPairs(p: Pairs): Promise<void> {
  const label = `${p.job} (${p.data})`;
  console.error(
    `# ${label}: ${p.runs} rounds + warm-up, vs ${p.refs.map((r) => r.name).join(", ")}`,
  );
  const ours: Sample[] = [];
  const refs: Sample[][] = p.refs.map(() => []);
  try {
    for (let round = -1; round < p.runs; round++) {
      const order = round % 2 === 0 ? [-1, ...p.refs.keys()] : [...p.refs.keys(), -1];
      const got = new Map<number, Sample>();
      for (const i of order) {
        const step = i < 0 ? p.ours : p.refs[i]!.step;
        got.set(i, await runOnce(step(++seq)));
      }
      if (round < 0) continue; // warm-up
      ours.push(got.get(-1)!);
      p.refs.forEach((_, i) => refs[i]!.push(got.get(i)!));
    }
  } catch (e) {
    const note = e instanceof Error ? e.message : String(e);
    console.error(`  error: ${note}`);
    for (const r of p.refs) {
      rows.push({
        group: p.group,
        job: p.job,
        data: p.data,
        status: "error",
        note,
        reference: r.name,
        bar: barText(r.bar),
      });
    }
    return;
  }
  const o = stats(ours);
  if (p.ladder && o.peak_rss_mb !== undefined) rssLadder[p.ladder.job][p.ladder.mb] = o.peak_rss_mb;
  p.refs.forEach((r, i) => {
    const ratios = ours.map((x, k) => x.s / refs[i]![k]!.s);
    const ratio = median(ratios);
    const pass = "ratio" in r.bar
      ? ratio <= r.bar.ratio
      : "ms" in r.bar
      ? o.median_s * 1000 <= r.bar.ms
      : undefined;
    rows.push({
      group: p.group,
      job: p.job,
      data: p.data,
      status: "ok",
      reference: r.name,
      ocipkg: o,
      ref: stats(refs[i]!),
      ratio: Number(ratio.toFixed(4)),
      ratios: ratios.map((x) => Number(x.toFixed(4))),
      bar: barText(r.bar),
      pass,
    });
    console.error(
      `  ${r.name}: ${fmtS(o.median_s)} vs ${fmtS(median(refs[i]!.map((x) => x.s)))}, ratio ${
        ratio.toFixed(2)
      }`,
    );
  });
}

/**
 * A row from pairs another script measured (interleaved, same order of runs): `ours[k]`
 * and `ref[k]` are round k's seconds.
 */
function externalRow(
  group: GroupName,
  job: string,
  data: string,
  reference: string,
  ours: Sample[],
  ref: Sample[],
  bar: Bar,
): void {
  const o = stats(ours);
  const ratios = ours.map((x, k) => x.s / ref[k]!.s);
  const ratio = median(ratios);
  const pass = "ratio" in bar ? ratio <= bar.ratio : undefined;
  rows.push({
    group,
    job,
    data,
    status: "ok",
    reference,
    ocipkg: o,
    ref: stats(ref),
    ratio: Number(ratio.toFixed(4)),
    ratios: ratios.map((x) => Number(x.toFixed(4))),
    bar: barText(bar),
    pass,
  });
  console.error(`  ${reference}: ratio ${ratio.toFixed(2)}`);
}

/** Ranged pull through the fault proxy (25 MB/s per connection): scripts/bench_ranged.ts. */
async function benchRanged(): Promise<void> {
  const sizeMb = Math.min(SIZE_MB, 256);
  console.error(`# ranged pull of ${sizeMb} MiB through the throttled proxy (${RUNS} runs)`);
  const r = await measureRanged({ sizeMb, runs: RUNS, log: (l) => console.error(`  ${l}`) });
  const row = (name: string) => r.rows.find((x) => x.name === name && x.path === "throttled");
  const samples = (x: RangedRow) => x.seconds.map((s) => ({ s, rssMb: x.rssMb }));
  const four = row("ocipkg pull --parallel 4");
  const data = `${sizeMb} MiB, 25 MB/s/conn`;
  if (!four) return skip("ranged", "ranged pull", "bench_ranged.ts gave no 4-part row");
  for (
    const [name, bar] of [
      ["ocipkg pull --parallel 1", { ratio: 0.33 }],
      ["skopeo copy", { ratio: 1 }],
      ["curl -o", { ratio: 1 }],
    ] as const
  ) {
    const ref = row(name);
    if (ref) {
      externalRow("ranged", "ranged pull, 4 parts", data, name, samples(four), samples(ref), bar);
    }
  }
}

/** get of a zstd layer vs a gzip layer on the compressible set: scripts/bench_zstd.ts. */
async function benchZstdRows(reg: Registry): Promise<void> {
  const sizeMiB = Math.min(SIZE_MB, 64);
  console.error(`# zstd vs gzip get, ${sizeMiB} MiB compressible set (${RUNS} runs)`);
  const r = await benchZstd({ sizeMiB, runs: RUNS, registry: reg.host });
  const [gzip, zstd] = r.rows;
  if (!gzip || !zstd) return skip("zstd", "get zstd vs gzip layer", "bench_zstd.ts gave no rows");
  const data = `${sizeMiB} MiB compressible (gzip ${
    (gzip.packedBytes / 2 ** 20).toFixed(1)
  } MiB, zstd ${(zstd.packedBytes / 2 ** 20).toFixed(1)} MiB)`;
  const ms = (xs: number[]) => xs.map((x) => ({ s: x / 1000 }));
  externalRow(
    "zstd",
    "get, zstd layer",
    data,
    "get, gzip layer",
    ms(zstd.getSamples),
    ms(gzip.getSamples),
    {
      none: true,
    },
  );
  externalRow(
    "zstd",
    "pack, zstd",
    data,
    "pack, gzip",
    ms(zstd.packSamples),
    ms(gzip.packSamples),
    {
      none: true,
    },
  );
}

/** Start `ocipkg serve` on a free loopback port; resolves once it listens. */
async function startServe(root: string): Promise<{ host: string; stop: () => Promise<void> }> {
  const child = new Deno.Command(DENO, {
    args: ["run", "-A", "--quiet", CLI, "serve", "--addr", "127.0.0.1:0", "--root", root],
    env: CHILD_ENV,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/listening on http:\/\/(\S+)/.test(text)) {
    const r = await reader.read();
    if (r.done) throw new Error(`ocipkg serve did not start: ${text}`);
    text += r.value;
  }
  const host = /listening on http:\/\/(\S+)/.exec(text)![1]!;
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  child.stderr.cancel().catch(() => {});
  return {
    host,
    stop: async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
    },
  };
}

/** ocipkg serve vs docker-registry, the same client (ocipkg) against each. */
async function benchServe(reg: Registry): Promise<void> {
  const root = join(WORK, "serve-root");
  const srv = await startServe(root);
  try {
    const mb = SIZE_MB;
    const lay = join(WORK, `serve-lay-${mb}`);
    const src = join(WORK, `serve-src-${mb}`);
    await makeData(src, mb, "random");
    await packLayout(src, lay, `x/serve:1`);
    await rm(src)();
    const data = `${mb} MiB random`;
    await runPairs({
      group: "serve",
      job: "push to ocipkg serve",
      data,
      runs: RUNS,
      ours: (n) => ({
        argv: ocipkg("push", `oci:${lay}`, `${srv.host}/bench/serve-${n}:1`),
        after: rm(join(root, "bench", `serve-${n}`)),
      }),
      refs: [{
        name: "push to docker-registry",
        bar: { none: true },
        step: (n) => ({ argv: ocipkg("push", `oci:${lay}`, `${reg.host}/bench/dr-${n}:1`) }),
      }],
    });
    const onServe = `${srv.host}/bench/pull:1`;
    const onReg = `${reg.host}/bench/pull:1`;
    await runOnce({ argv: ocipkg("push", `oci:${lay}`, onServe) });
    await runOnce({ argv: ocipkg("push", `oci:${lay}`, onReg) });
    await rm(lay)();
    const pullStep = (image: string, n: number) => {
      const out = join(WORK, `serve-pull-${n}`);
      return { argv: ocipkg("pull", image, "-o", out, "--format", "dir"), after: rm(out) };
    };
    await runPairs({
      group: "serve",
      job: "pull from ocipkg serve",
      data,
      runs: RUNS,
      ours: (n) => pullStep(onServe, n),
      refs: [{
        name: "pull from docker-registry",
        bar: { none: true },
        step: (n) => pullStep(onReg, n),
      }],
    });
  } finally {
    await srv.stop();
    await rm(root)();
  }
}

function skip(group: GroupName, job: string, note: string, bar = "-"): void {
  console.error(`# ${job}: skipped (${note})`);
  rows.push({ group, job, data: "-", status: "skipped", note, bar });
}

// ---------------------------------------------------------------------------------------------
// Data

/** The files that make "compressible" data: real static/shared libraries and executables. */
let libFiles: string[] | undefined;
async function libraryFiles(): Promise<string[]> {
  if (libFiles) return libFiles;
  const found: string[] = [];
  for (
    const top of [
      "/usr/lib/x86_64-linux-gnu",
      "/usr/lib/aarch64-linux-gnu",
      "/usr/lib/gcc",
      "/usr/bin",
    ]
  ) {
    const walk = async (d: string) => {
      let entries: Deno.DirEntry[];
      try {
        entries = await Array.fromAsync(Deno.readDir(d));
      } catch {
        return;
      }
      for (const e of entries.sort((a, b) => a.name < b.name ? -1 : 1)) {
        const p = join(d, e.name);
        if (e.isDirectory) await walk(p);
        else if (e.isFile && /(\.a|\.so[.\d]*)$|^[^.]+$/.test(e.name)) {
          const st = await Deno.stat(p).catch(() => undefined);
          if (st && st.size >= 16384) found.push(p);
        }
      }
    };
    await walk(top);
  }
  if (found.length === 0) throw new Error("no library files under /usr/lib or /usr/bin");
  return libFiles = found;
}

/** A package dir of `mb` MiB in 16 files under lib/: random (incompressible) or real libraries. */
async function makeData(dir: string, mb: number, kind: Kind): Promise<void> {
  await Deno.mkdir(join(dir, "lib"), { recursive: true });
  const files = 16;
  const per = Math.ceil(mb * 1048576 / files);
  for (let i = 0; i < files; i++) {
    const f = join(dir, "lib", `libpart${i}.a`);
    if (kind === "random") {
      await sh(`head -c ${per} /dev/urandom > '${f}'`);
      continue;
    }
    const src = await libraryFiles();
    const out = await Deno.open(f, { write: true, create: true, truncate: true });
    try {
      let left = per;
      for (let k = (i * 7919) % src.length; left > 0; k = (k + 1) % src.length) {
        const bytes = await Deno.readFile(src[k]!).catch(() => new Uint8Array());
        const part = bytes.subarray(0, left);
        for (let off = 0; off < part.length;) off += await out.write(part.subarray(off));
        left -= part.length;
      }
    } finally {
      out.close();
    }
  }
  await sh("sync");
}

/** Pack `src` into an oci-dir; return the layer's digest and blob path and the ref name. */
async function packLayout(src: string, lay: string, name: string) {
  const packed = await packDirectory(src, `oci:${lay}`, { name });
  const layout = await OciDir.open(lay);
  const m = JSON.parse(await Deno.readTextFile(layout.blobPath(packed.digest)));
  const digest: string = m.layers[0].digest;
  const blobs: string[] = [m.config.digest, ...m.layers.map((l: { digest: string }) => l.digest)];
  return { digest, path: layout.blobPath(digest), size: Number(m.layers[0].size), blobs };
}

/**
 * Unlink blobs from a repository (untimed, after a skopeo push): skopeo remembers where it
 * pushed a blob (its blob-info cache) and would mount it from there instead of uploading.
 */
function unlinkBlobs(host: string, repo: string, digests: string[]): () => Promise<void> {
  return async () => {
    for (const d of digests) {
      const r = await fetch(`http://${host}/v2/${repo}/blobs/${d}`, { method: "DELETE" });
      await r.body?.cancel();
      if (r.status !== 202 && r.status !== 404) {
        throw new Error(`DELETE ${repo} blob ${d}: HTTP ${r.status}`);
      }
    }
  };
}

const curlPut = (host: string, repo: string, file: string, digest: string) => [
  "bash",
  "-c",
  `set -eo pipefail; loc=$(curl -sSf -i -X POST http://${host}/v2/${repo}/blobs/uploads/ | tr -d '\\r' | sed -n 's/^Location: //Ip'); ` +
  `case "$loc" in http*) ;; *) loc="http://${host}$loc";; esac; ` +
  `curl -sSf -X PUT -H 'Content-Type: application/octet-stream' --upload-file '${file}' "$loc&digest=${digest}" -o /dev/null`,
];

// ---------------------------------------------------------------------------------------------
// Groups

async function benchPack(kind: Kind): Promise<void> {
  const dir = join(WORK, `pack-${kind}`);
  await makeData(dir, SIZE_MB, kind);
  try {
    await runPairs({
      group: "pack",
      job: "pack",
      data: `${SIZE_MB} MiB ${kind}`,
      runs: RUNS,
      ours: (n) => {
        const out = join(WORK, `pack-${n}.tar`);
        return { argv: ocipkg("pack", dir, out, "-t", "bench.local/x:1"), after: rm(out) };
      },
      refs: [{
        name: "tar -czf",
        bar: { ratio: 0.5 },
        step: (n) => {
          const out = join(WORK, `ref-${n}.tgz`);
          return { argv: ["tar", "-czf", out, "-C", dir, "."], after: rm(out) };
        },
      }],
    });
  } finally {
    await rm(dir)();
  }
}

/** push, pull (random) and get (each kind) of `mb` MiB against one docker-registry. */
async function benchRegistry(reg: Registry, mb: number, kind: Kind, ladderOnly = false) {
  const host = reg.host;
  const src = join(WORK, `src-${mb}-${kind}`);
  const lay = join(WORK, `lay-${mb}-${kind}`);
  const data = `${mb} MiB ${kind}`;
  const image = `${host}/bench/pkg-${mb}-${kind}:1`;
  await makeData(src, mb, kind);
  const layer = await packLayout(src, lay, image);
  await rm(src)();
  // the same image as an oci-archive (`ocipkg pack … x.tar`, the README's path)
  const archive = join(WORK, `ar-${mb}-${kind}.tar`);
  if (kind === "random" && want("push")) await copyImage(`oci:${lay}`, archive);
  await runOnce({ argv: ocipkg("push", `oci:${lay}`, image) }); // the image the pulls read
  const runs = ladderOnly ? Math.min(RUNS, 2) : RUNS;
  const blobUrl = `http://${host}/v2/bench/pkg-${mb}-${kind}/blobs/${layer.digest}`;
  try {
    if (ladderOnly) {
      // peak RSS only: ocipkg alone, `runs` times
      for (const job of LADDER_JOBS) {
        const samples: Sample[] = [];
        for (let i = 0; i < runs; i++) {
          const n = ++seq;
          const dir = join(WORK, `out-${n}`);
          const argv = job === "push"
            ? ocipkg("push", `oci:${lay}`, `${host}/bench/ladder-${n}:1`)
            : job === "push from archive"
            ? ocipkg("push", archive, `${host}/bench/ladder-${n}:1`)
            : job === "pull"
            ? ocipkg("pull", image, "-o", dir, "--format", "dir")
            : ocipkg("get", image);
          samples.push(await runOnce({ argv, env: { OCIPKG_DATA_DIR: dir }, after: rm(dir) }));
        }
        const rss = stats(samples).peak_rss_mb;
        if (rss !== undefined) rssLadder[job][mb] = rss;
      }
      return;
    }
    if (kind === "random" && want("push")) {
      await runPairs({
        group: "push",
        job: "push from an oci-archive",
        data,
        runs,
        ladder: { job: "push from archive", mb },
        ours: (n) => ({ argv: ocipkg("push", archive, `${host}/bench/ar-${n}:1`) }),
        refs: [
          {
            name: "ocipkg push from an oci-dir",
            bar: { ratio: 1.1 },
            step: (n) => ({ argv: ocipkg("push", `oci:${lay}`, `${host}/bench/dir-${n}:1`) }),
          },
          {
            name: "skopeo copy oci-archive:",
            bar: { ratio: 0.6 },
            step: (n) => ({
              argv: [
                "skopeo",
                "copy",
                "-q",
                "--dest-tls-verify=false",
                `oci-archive:${archive}:${image}`,
                `docker://${host}/bench/skar-${n}:1`,
              ],
              after: unlinkBlobs(host, `bench/skar-${n}`, layer.blobs),
            }),
          },
        ],
      });
      await runPairs({
        group: "push",
        job: "push",
        data,
        runs,
        ladder: { job: "push", mb },
        ours: (n) => ({ argv: ocipkg("push", `oci:${lay}`, `${host}/bench/ours-${n}:1`) }),
        refs: [
          {
            name: "curl -T (monolithic PUT of the layer)",
            bar: { ratio: 1.1 },
            step: (n) => ({ argv: curlPut(host, `bench/curl-${n}`, layer.path, layer.digest) }),
          },
          {
            name: "skopeo copy",
            bar: { ratio: 0.6 },
            step: (n) => ({
              argv: [
                "skopeo",
                "copy",
                "-q",
                "--dest-tls-verify=false",
                `oci:${lay}:${image}`,
                `docker://${host}/bench/skopeo-${n}:1`,
              ],
              after: unlinkBlobs(host, `bench/skopeo-${n}`, layer.blobs),
            }),
          },
        ],
      });
    }
    if (kind === "random" && want("pull")) {
      await runPairs({
        group: "pull",
        job: "pull to an oci-dir (verified)",
        data,
        runs,
        ladder: { job: "pull", mb },
        ours: (n) => {
          const out = join(WORK, `pull-${n}`);
          return { argv: ocipkg("pull", image, "-o", out, "--format", "dir"), after: rm(out) };
        },
        refs: [
          {
            // durable like ocipkg's pull: the fair reference
            name: "curl -o F && sync -d F",
            bar: { ratio: 1 },
            step: (n) => {
              const out = join(WORK, `blob-${n}`);
              return {
                argv: ["bash", "-c", `curl -sSf -o '${out}' '${blobUrl}' && sync -d '${out}'`],
                after: rm(out),
              };
            },
          },
          {
            name: "curl -o (the layer, not synced)",
            bar: { none: true },
            step: (n) => {
              const out = join(WORK, `blob-${n}`);
              return { argv: ["curl", "-sSf", "-o", out, blobUrl], after: rm(out) };
            },
          },
          {
            name: "skopeo copy",
            bar: { none: true },
            step: (n) => {
              const out = join(WORK, `skpull-${n}`);
              return {
                argv: [
                  "skopeo",
                  "copy",
                  "-q",
                  "--src-tls-verify=false",
                  `docker://${image}`,
                  `oci:${out}:x`,
                ],
                after: rm(out),
              };
            },
          },
        ],
      });
    }
    if (want("get")) {
      await runPairs({
        group: "get",
        job: "get (pull, verify, extract)",
        data,
        runs,
        ladder: kind === "random" ? { job: "get", mb } : undefined,
        ours: (n) => {
          const store = join(WORK, `store-${n}`);
          return { argv: ocipkg("get", image), env: { OCIPKG_DATA_DIR: store }, after: rm(store) };
        },
        refs: [{
          name: "curl | tar -xz",
          bar: { ratio: 1.1 },
          step: (n) => {
            const x = join(WORK, `x-${n}`);
            return {
              argv: [
                "bash",
                "-c",
                `set -eo pipefail; mkdir -p '${x}'; curl -sSf '${blobUrl}' | tar -xz -C '${x}'`,
              ],
              after: rm(x),
            };
          },
        }],
      });
    }
  } finally {
    await rm(lay)();
    await rm(archive)();
  }
}

async function benchRssLadder(reg: Registry): Promise<void> {
  const sizes = [...new Set(LADDER_MB)].filter((mb) => mb !== SIZE_MB);
  for (const mb of sizes) {
    console.error(`# peak RSS at ${mb} MiB (ocipkg push/pull/get alone)`);
    await benchRegistry(reg, mb, "random", true);
  }
  const all = [...sizes, SIZE_MB].sort((a, b) => a - b);
  const bars = { push: 100, "push from archive": 100, pull: 150, get: 150 };
  for (const job of LADDER_JOBS) {
    const v = all.map((mb) => rssLadder[job][mb]);
    const have = v.filter((x): x is number => x !== undefined);
    const data = all.map((mb) => `${mb}`).join(" / ") + " MiB";
    if (have.length < all.length) {
      rows.push({
        group: "rss",
        job: `peak RSS ${job}`,
        data,
        status: TIME ? "error" : "skipped",
        note: TIME ? `missing sizes: ${v.map((x) => x ?? "-").join(" / ")}` : "no /usr/bin/time",
        bar: `≤ ${bars[job]} MB, flat`,
      });
      continue;
    }
    // flat: the largest size needs at most 25% (and 10 MB) more than the smallest
    const flat = have.at(-1)! <= Math.max(have[0]! * 1.25, have[0]! + 10);
    rows.push({
      group: "rss",
      job: `peak RSS ${job}`,
      data,
      status: "ok",
      note: `${have.map((x) => x.toFixed(0)).join(" / ")} MB`,
      bar: `≤ ${bars[job]} MB, flat`,
      pass: Math.max(...have) <= bars[job] && flat,
    });
  }
}

async function benchSmall(reg: Registry): Promise<void> {
  const host = reg.host;
  const lay = join(WORK, "small");
  const t = await OciDir.open(lay, { create: true });
  const layers: Awaited<ReturnType<typeof pushBytes>>[] = [];
  for (let i = 0; i < 200; i++) {
    const b = new Uint8Array(64 * 1024);
    crypto.getRandomValues(b);
    layers.push(await pushBytes(t, "application/vnd.oci.image.layer.v1.tar", b));
  }
  const cfg = await pushBytes(t, OCI_EMPTY, encodeJson({}));
  const m = await pushBytes(
    t,
    OCI_MANIFEST,
    encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: cfg, layers }),
  );
  await t.tag(m, "small");
  const image = `${host}/small/pkg:1`;
  await runOnce({ argv: ocipkg("push", `oci:${lay}:small`, image) });
  const data = "200 × 64 KiB random";
  try {
    await runPairs({
      group: "small",
      job: "push 200 blobs",
      data,
      runs: RUNS,
      ours: (n) => ({ argv: ocipkg("push", `oci:${lay}:small`, `${host}/small/ours-${n}:1`) }),
      refs: [{
        name: "skopeo copy",
        bar: { ratio: 0.5 },
        step: (n) => ({
          argv: [
            "skopeo",
            "copy",
            "-q",
            "--dest-tls-verify=false",
            `oci:${lay}:small`,
            `docker://${host}/small/skopeo-${n}:1`,
          ],
          after: unlinkBlobs(host, `small/skopeo-${n}`, [
            cfg.digest,
            ...layers.map((l) => l.digest),
          ]),
        }),
      }],
    });
    await runPairs({
      group: "small",
      job: "pull 200 blobs to an oci-dir",
      data,
      runs: RUNS,
      ours: (n) => {
        const out = join(WORK, `sp-${n}`);
        return { argv: ocipkg("pull", image, "-o", out, "--format", "dir"), after: rm(out) };
      },
      refs: [{
        name: "skopeo copy",
        bar: { ratio: 0.6 },
        step: (n) => {
          const out = join(WORK, `skp-${n}`);
          return {
            argv: [
              "skopeo",
              "copy",
              "-q",
              "--src-tls-verify=false",
              `docker://${image}`,
              `oci:${out}:x`,
            ],
            after: rm(out),
          };
        },
      }],
    });
  } finally {
    await rm(lay)();
  }
}

/** Cached `get` and `link` (the image is in the store) beside `deno run` of an empty file. */
async function benchCached(reg: Registry): Promise<void> {
  const host = reg.host;
  const pkg = join(WORK, "greet-pkg");
  await sh(`sh '${join(ROOT, "examples", "c-greet", "build.sh")}' '${pkg}'`);
  const image = `${host}/bench/greet:1.0`;
  const store = join(WORK, "cached-store");
  const env = { OCIPKG_DATA_DIR: store };
  await runOnce({ argv: ocipkg("pack", pkg, join(WORK, "greet.tar"), "-t", image) });
  await runOnce({ argv: ocipkg("push", join(WORK, "greet.tar")) });
  await runOnce({ argv: ocipkg("link", "--pkg-config", image), env }); // gets it into the store
  const empty = join(WORK, "empty.ts");
  await Deno.writeTextFile(empty, "");
  const ref: Ref = {
    name: "deno run (empty file)",
    bar: { ms: 40 },
    step: () => ({ argv: [DENO, "run", "-A", "--quiet", empty] }),
  };
  const data = "libgreet, in the store";
  await runPairs({
    group: "cached",
    job: "cached get",
    data,
    runs: CACHED_RUNS,
    ours: () => ({ argv: ocipkg("get", image), env }),
    refs: [ref],
  });
  await runPairs({
    group: "cached",
    job: "cached link --cargo",
    data,
    runs: CACHED_RUNS,
    ours: () => ({ argv: ocipkg("link", "--cargo", image), env }),
    refs: [ref],
  });
  await rm(store)();
}

// ---------------------------------------------------------------------------------------------
// Main

function fmtS(s: number): string {
  return s < 1 ? `${(s * 1000).toFixed(0)} ms` : `${s.toFixed(2)} s`;
}

function loadavg(): number[] {
  return Deno.loadavg().map((x) => Number(x.toFixed(2)));
}

async function machine() {
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const memKb = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0);
  return {
    nproc: navigator.hardwareConcurrency,
    cpu: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    mem_total_mb: Math.round(memKb / 1024),
    kernel: Deno.osRelease(),
    hostname: Deno.hostname(),
  };
}

async function versions() {
  const first = (s: string) => s.split("\n")[0] ?? "";
  return {
    deno: Deno.version.deno,
    skopeo: first(await capture("skopeo", "--version")),
    curl: first(await capture("curl", "--version")),
    "docker-registry": first(await capture("docker-registry", "--version")),
    tar: first(await capture("tar", "--version")),
    gzip: first(await capture("gzip", "--version")),
    time: TIME ? first(await capture(TIME, "--version")) : "missing (apt-get install time)",
  };
}

const started = new Date();
const loadBefore = loadavg();
async function ocipkgCommit(): Promise<string> {
  const dir = join(CLI, "..");
  const out = await capture("git", "-C", dir, "describe", "--always", "--dirty");
  return `${out} (${CLI})`;
}
const meta = {
  machine: await machine(),
  versions: { ...(await versions()), ocipkg: await ocipkgCommit() },
};
console.error(
  `# ocipkg bench: ${SIZE_MB} MiB, ${RUNS} pairs (+ warm-up), ${CACHED_RUNS} cached pairs; ` +
    `${meta.machine.nproc} cpus, ${meta.machine.mem_total_mb} MB; load ${loadBefore.join(" ")}`,
);
if (!TIME) console.error("# /usr/bin/time missing (apt-get install time): no peak RSS");

WORK = await Deno.makeTempDir({ prefix: "ocipkg-bench-" });
const reg = await startRegistry();
try {
  for (const kind of KINDS) if (want("pack")) await benchPack(kind);
  if (want("push") || want("pull") || want("get")) {
    for (const kind of KINDS) {
      if (kind === "random" || want("get")) await benchRegistry(reg, SIZE_MB, kind);
    }
  }
  if (want("rss")) {
    if (!(want("push") && want("pull") && want("get") && KINDS.includes("random"))) {
      skip("rss", "peak RSS push/pull/get", "needs the push, pull and get groups on random data");
    } else await benchRssLadder(reg);
  }
  if (want("small")) await benchSmall(reg);
  if (want("cached")) await benchCached(reg);
  if (want("ranged")) await benchRanged();
  if (want("zstd")) await benchZstdRows(reg);
  if (want("serve")) await benchServe(reg);
} finally {
  await reg.stop();
  await Deno.remove(WORK, { recursive: true }).catch(() => {});
}
const loadAfter = loadavg();

// ---------------------------------------------------------------------------------------------
// Report

const mb = (x?: number) => x === undefined ? "-" : x.toFixed(0);
const lines = [
  "| job | data | ocipkg | reference | ref | ratio (median of pairs) | bar | result | peak RSS MB ocipkg / ref |",
  "|---|---|---|---|---|---|---|---|---|",
];
/** A markdown table cell: a `|` in a tool's name would split it. */
const cell = (x: string) => x.replaceAll("|", "\\|");
for (const r of rows) {
  const result = r.status !== "ok"
    ? r.status
    : r.pass === undefined
    ? "-"
    : r.pass
    ? "pass"
    : "FAIL";
  if (r.status !== "ok" || r.group === "rss") {
    lines.push(
      `| ${cell(r.job)} | ${r.data} | ${r.group === "rss" && r.note ? r.note : "-"} | ${
        cell(r.reference ?? "-")
      } | - | - | ${r.bar} | ${result}${r.status !== "ok" && r.note ? ` (${r.note})` : ""} | - |`,
    );
    continue;
  }
  lines.push(
    `| ${cell(r.job)} | ${r.data} | ${fmtS(r.ocipkg!.median_s)} | ${cell(r.reference!)} | ${
      fmtS(r.ref!.median_s)
    } | ${r.ratio!.toFixed(2)} | ${r.bar} | ${result} | ${mb(r.ocipkg!.peak_rss_mb)} / ${
      mb(r.ref!.peak_rss_mb)
    } |`,
  );
}
const head =
  `ocipkg bench ${started.toISOString()}: ${meta.machine.cpu}, ${meta.machine.nproc} cpus, ` +
  `${meta.machine.mem_total_mb} MB, Linux ${meta.machine.kernel}; deno ${meta.versions.deno}; ` +
  `${SIZE_MB} MiB, ${RUNS} pairs + warm-up (cached rows ${CACHED_RUNS}); ` +
  `load average ${loadBefore.join(" ")} → ${loadAfter.join(" ")}`;
console.log(head + "\n\n" + lines.join("\n"));
await Deno.writeTextFile(
  OUT,
  JSON.stringify(
    {
      date: started.toISOString(),
      seconds: Number(((Date.now() - started.getTime()) / 1000).toFixed(1)),
      options: {
        sizeMb: SIZE_MB,
        runs: RUNS,
        cachedRuns: CACHED_RUNS,
        quick: QUICK,
        only: ONLY,
        kinds: KINDS,
      },
      ...meta,
      load_average: { before: loadBefore, after: loadAfter },
      rss_ladder_mb: rssLadder,
      rows,
    },
    null,
    2,
  ) + "\n",
);
console.error(`wrote ${OUT}`);
if (rows.some((r) => r.status === "error")) Deno.exitCode = 1;
