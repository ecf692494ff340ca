// Benchmark: parallel ranged pull of one large blob.
//
//   deno run -A scripts/bench_ranged.ts [--size-mb 256] [--runs 3] [--rate-mb 25]
//       [--parts 1,4] [--plain] [--json bench_ranged.json]
//
// Starts docker-registry and the fault proxy throttled to --rate-mb MB/s (10^6 bytes) per
// connection, pushes an image with one random --size-mb MiB layer, then times, through the
// proxy, `ocipkg pull --format dir --parallel N` for each N of --parts, `skopeo copy
// docker://… oci:…` and `curl -o` of the layer: --runs rounds, interleaved (each round in
// another order), median wall seconds and the peak RSS of each (`/usr/bin/time -f %M`).
// With --plain it also times the same pulls straight from the registry (no proxy, no
// throttle), to see whether ranged pull helps or hurts there. Prints a table and JSON.
//
// `measureRanged()` is exported for scripts/bench.ts.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { OciDir, packDirectory, pushImage } from "../mod.ts";
import { startFaultProxy } from "../tests/_fault_proxy.ts";
import { startRegistry } from "../tests/_registry.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = join(ROOT, "cli.ts");
const CHILD_ENV = { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" };

/** What {@link measureRanged} measures. */
export interface RangedBenchOptions {
  /** Size of the blob in MiB (default 256). */
  sizeMb?: number;
  /** Interleaved rounds (default 3). */
  runs?: number;
  /** Per-connection rate of the proxy in MB/s (10^6 bytes; default 25). */
  rateMb?: number;
  /** `--parallel` values timed (default [1, 4]). */
  parts?: number[];
  /** Also time every tool straight from the registry, unthrottled. */
  plain?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** One measured row. */
export interface RangedRow {
  /** e.g. `ocipkg pull --parallel 4`, `skopeo copy`, `curl -o`. */
  name: string;
  /** `throttled` (through the proxy) or `plain` (straight from the registry). */
  path: "throttled" | "plain";
  /** Wall seconds of each run. */
  seconds: number[];
  /** Median wall seconds. */
  median: number;
  /** Median MiB/s. */
  mibPerS: number;
  /** Largest peak RSS (MiB) of the runs, when /usr/bin/time is there. */
  rssMb?: number;
}

/** What {@link measureRanged} found. */
export interface RangedReport {
  sizeMb: number;
  runs: number;
  rateMb: number;
  rows: RangedRow[];
  /** median(--parallel 1) / median(--parallel N) through the proxy, for the largest N. */
  speedup?: number;
  loadavg: { before: number[]; after: number[] };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Run a command; wall seconds and peak RSS (MiB). */
async function timed(argv: string[], work: string): Promise<{ s: number; rssMb?: number }> {
  const time = await exists("/usr/bin/time");
  const rssFile = join(work, "rss");
  const full = time ? ["/usr/bin/time", "-f", "%M", "-o", rssFile, ...argv] : argv;
  const t0 = performance.now();
  const out = await new Deno.Command(full[0]!, {
    args: full.slice(1),
    env: CHILD_ENV,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const s = (performance.now() - t0) / 1000;
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" ⏎ ");
    throw new Error(`'${argv.join(" ")}' exited ${out.code}: ${err}`);
  }
  let rssMb: number | undefined;
  if (time) {
    const kb = Number((await Deno.readTextFile(rssFile)).trim().split("\n").pop());
    if (kb > 0) rssMb = kb / 1024;
  }
  return { s, rssMb };
}

/**
 * Start a registry and a throttled proxy, push a random blob, time ranged
 * pulls against one stream, skopeo and curl, interleaved; stop everything.
 *
 * @param o sizes, rounds, rate, parts
 * @returns the rows and the speed-up of the most parts over one stream
 */
export async function measureRanged(o: RangedBenchOptions = {}): Promise<RangedReport> {
  const sizeMb = o.sizeMb ?? 256;
  const runs = o.runs ?? 3;
  const rateMb = o.rateMb ?? 25;
  const parts = o.parts ?? [1, 4];
  const log = o.log ?? (() => {});
  const before = Deno.loadavg();
  const work = await Deno.makeTempDir({ prefix: "ocipkg-bench-ranged-" });
  const reg = await startRegistry();
  const proxy = startFaultProxy(reg.host);
  try {
    // one layer of random bytes (level 0: the layer is as large as the data)
    const src = join(work, "src");
    await Deno.mkdir(src);
    const f = await Deno.open(join(src, "blob.bin"), { write: true, create: true });
    const chunk = new Uint8Array(1 << 20);
    for (let i = 0; i < sizeMb; i++) {
      for (let k = 0; k < chunk.length; k += 65536) {
        crypto.getRandomValues(chunk.subarray(k, k + 65536));
      }
      for (let off = 0; off < chunk.length;) off += await f.write(chunk.subarray(off));
    }
    f.close();
    const lay = join(work, "layout");
    const packed = await packDirectory(src, `oci:${lay}`, {
      name: `${reg.host}/bench/ranged:1`,
      compressionLevel: 0,
    });
    const layout = await OciDir.open(lay);
    const m = JSON.parse(await Deno.readTextFile(layout.blobPath(packed.digest)));
    await layout.close();
    const layer: string = m.layers[0].digest;
    await Deno.remove(src, { recursive: true });
    await pushImage(`oci:${lay}`, undefined, { credential: null });
    await Deno.remove(lay, { recursive: true });
    log(`pushed a ${sizeMb} MiB layer ${layer}`);

    type Job = { name: string; path: RangedRow["path"]; argv: (out: string) => string[] };
    const jobs: Job[] = [];
    const paths: [RangedRow["path"], string][] = [["throttled", proxy.host]];
    if (o.plain) paths.push(["plain", reg.host]);
    for (const [path, host] of paths) {
      const image = `${host}/bench/ranged:1`;
      for (const n of parts) {
        jobs.push({
          name: `ocipkg pull --parallel ${n}`,
          path,
          argv: (
            out,
          ) => [
            Deno.execPath(),
            "run",
            "-A",
            "--quiet",
            CLI,
            "pull",
            image,
            "-o",
            out,
            "--format",
            "dir",
            "--parallel",
            `${n}`,
          ],
        });
      }
      jobs.push({
        name: "skopeo copy",
        path,
        argv: (out) => [
          "skopeo",
          "copy",
          "-q",
          "--src-tls-verify=false",
          `docker://${image}`,
          `oci:${out}:x`,
        ],
      });
      jobs.push({
        name: "curl -o",
        path,
        argv: (out) => ["curl", "-sSf", "-o", out, `http://${host}/v2/bench/ranged/blobs/${layer}`],
      });
    }
    proxy.rules.throttle = { bytesPerSecond: rateMb * 1e6 };
    const samples = jobs.map(() => ({ s: [] as number[], rss: [] as number[] }));
    for (let r = 0; r < runs; r++) {
      // each round in another order: no tool always runs first or on a warmer cache
      const order = jobs.map((_, i) => i);
      for (let k = 0; k < r; k++) order.push(order.shift()!);
      if (r % 2) order.reverse();
      for (const i of order) {
        const out = join(work, `out-${r}-${i}`);
        const t = await timed(jobs[i]!.argv(out), work);
        await Deno.remove(out, { recursive: true });
        samples[i]!.s.push(t.s);
        if (t.rssMb !== undefined) samples[i]!.rss.push(t.rssMb);
        log(`round ${r + 1}: ${jobs[i]!.name} (${jobs[i]!.path}) ${t.s.toFixed(2)} s`);
      }
    }
    const rows: RangedRow[] = jobs.map((j, i) => {
      const med = median(samples[i]!.s);
      const row: RangedRow = {
        name: j.name,
        path: j.path,
        seconds: samples[i]!.s.map((s) => Number(s.toFixed(3))),
        median: Number(med.toFixed(3)),
        mibPerS: Number((sizeMb / med).toFixed(1)),
      };
      if (samples[i]!.rss.length) row.rssMb = Math.round(Math.max(...samples[i]!.rss));
      return row;
    });
    const one = rows.find((r) => r.path === "throttled" && r.name.endsWith("--parallel 1"));
    const most = rows.find((r) =>
      r.path === "throttled" && r.name.endsWith(`--parallel ${Math.max(...parts)}`)
    );
    const report: RangedReport = {
      sizeMb,
      runs,
      rateMb,
      rows,
      loadavg: { before, after: Deno.loadavg() },
    };
    if (one && most && one !== most) report.speedup = Number((one.median / most.median).toFixed(2));
    return report;
  } finally {
    await proxy.stop();
    await reg.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** The report as a table. */
export function rangedTable(r: RangedReport): string {
  const lines = [
    `ranged pull of a ${r.sizeMb} MiB blob, ${r.runs} interleaved runs, median ` +
    `(throttled: ${r.rateMb} MB/s per connection)`,
    `${"tool".padEnd(28)} ${"path".padEnd(10)} ${"median s".padStart(9)} ${"MiB/s".padStart(7)} ${
      "peak RSS MiB".padStart(12)
    }  runs`,
  ];
  for (const row of r.rows) {
    lines.push(
      `${row.name.padEnd(28)} ${row.path.padEnd(10)} ${row.median.toFixed(2).padStart(9)} ${
        row.mibPerS.toFixed(1).padStart(7)
      } ${`${row.rssMb ?? "-"}`.padStart(12)}  ${row.seconds.join(" ")}`,
    );
  }
  if (r.speedup !== undefined) {
    lines.push(`speed-up, most parts over one (throttled): ${r.speedup} ×`);
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const args = parseArgs({
    args: Deno.args,
    options: {
      "size-mb": { type: "string", default: "256" },
      runs: { type: "string", default: "3" },
      "rate-mb": { type: "string", default: "25" },
      parts: { type: "string", default: "1,4" },
      plain: { type: "boolean" },
      json: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (args.values.help) {
    console.log(
      "usage: deno run -A scripts/bench_ranged.ts [--size-mb 256] [--runs 3] [--rate-mb 25] " +
        "[--parts 1,4] [--plain] [--json file]",
    );
    Deno.exit(0);
  }
  const num = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) {
      console.error(`error: --${name} must be a number ≥ ${min}, got '${v}'`);
      Deno.exit(2);
    }
    return n;
  };
  const partsList = args.values.parts.split(",").map((p) => num("parts", p.trim(), 0));
  const report = await measureRanged({
    sizeMb: num("size-mb", args.values["size-mb"], 1),
    runs: num("runs", args.values.runs, 1),
    rateMb: num("rate-mb", args.values["rate-mb"], 0.001),
    parts: partsList,
    plain: args.values.plain ?? false,
    log: (l) => console.error(l),
  });
  console.log(rangedTable(report));
  const json = JSON.stringify(report, null, 2);
  console.log(json);
  if (args.values.json) await Deno.writeTextFile(args.values.json, json + "\n");
}
