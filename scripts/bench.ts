// Benchmarks: ocipkg beside reference tools in the same run, as ratios.
// Usage: deno task bench [--size-mb 1024] [--only pack,get,...] [--out bench.json]
// Prints a table and writes JSON. Ratios < 1 mean ocipkg is faster.
import { join } from "node:path";
import { parseArgs } from "node:util";

const args = parseArgs({
  args: Deno.args,
  options: { "size-mb": { type: "string" }, only: { type: "string" }, out: { type: "string" } },
});
const SIZE_MB = Number(args.values["size-mb"] ?? 1024);
const ONLY = args.values.only?.split(",");
const OUT = args.values.out ?? "bench.json";
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
  return dir;
}

const work = await Deno.makeTempDir({ prefix: "ocipkg-bench-" });
try {
  for (const kind of ["random", "compressible"] as const) {
    if (!ONLY || ONLY.includes("pack")) await benchPack(work, kind);
  }
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
