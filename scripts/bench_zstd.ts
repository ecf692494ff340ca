/**
 * gzip vs zstd layers on compressible data: pack time, packed size, and the
 * time of `get` (pull, verify, decompress, extract into a fresh store) from a
 * local docker-registry. The set is half text-like (words from a fixed
 * pseudo-random sequence) and half machine code (the start of the deno
 * executable, real ELF text and data). Runs are interleaved (gzip, zstd,
 * gzip, …) and reported as medians, with the zstd/gzip ratio of each.
 *
 *   deno run -A scripts/bench_zstd.ts [--size-mib 64] [--runs 5] [--json out.json]
 *
 * `benchZstd()` is exported for scripts/bench.ts.
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Compression, getImage, packDirectory, pushImage, Store } from "../mod.ts";
import { startRegistry } from "../tests/_registry.ts";

/** Options of {@link benchZstd}. */
export interface ZstdBenchOptions {
  /** Size of the input set in MiB (default 64). */
  sizeMiB?: number;
  /** Interleaved runs of each (default 5). */
  runs?: number;
  /** A running registry `host:port` to use (default: start a docker-registry). */
  registry?: string;
  /** zstd level (default: the library's, 3). */
  zstdLevel?: number;
}

/** One compression's results. */
export interface ZstdBenchRow {
  /** Compression of the layer. */
  compression: Compression;
  /** Layer size in bytes. */
  packedBytes: number;
  /** Median time of `packDirectory` into an oci-archive (ms). */
  packMs: number;
  /** Median time of `getImage` into a fresh store (ms). */
  getMs: number;
  /** Every `get` time (ms), in run order. */
  getSamples: number[];
  /** Every pack time (ms), in run order. */
  packSamples: number[];
}

/** What {@link benchZstd} measured. */
export interface ZstdBenchResult {
  /** Uncompressed input size. */
  inputBytes: number;
  /** gzip then zstd. */
  rows: ZstdBenchRow[];
  /** Median of the per-run ratios zstd/gzip. */
  ratios: { packedBytes: number; packMs: number; getMs: number };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Write the compressible set into `dir`: text files and machine code. */
async function writeSet(dir: string, bytes: number): Promise<number> {
  await Deno.mkdir(join(dir, "share"), { recursive: true });
  await Deno.mkdir(join(dir, "lib"), { recursive: true });
  const half = Math.floor(bytes / 2);
  // text: words of a small vocabulary from a fixed xorshift sequence
  const vocab = Array.from({ length: 4096 }, (_, i) => `w${(i * 2654435761 >>> 0).toString(36)}`);
  let x = 0x9e3779b9;
  const enc = new TextEncoder();
  const files = 8;
  let total = 0;
  for (let f = 0; f < files; f++) {
    const parts: string[] = [];
    let n = 0;
    while (n < half / files) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const w = vocab[(x >>> 0) % vocab.length]!;
      parts.push(w, (x & 15) === 0 ? "\n" : " ");
      n += w.length + 1;
    }
    const data = enc.encode(parts.join(""));
    await Deno.writeFile(join(dir, "share", `doc${f}.txt`), data);
    total += data.length;
  }
  // machine code: the start of the deno executable, in 4 "libraries"
  const exe = await Deno.open(Deno.execPath());
  try {
    for (let f = 0; f < 4; f++) {
      const buf = new Uint8Array(Math.floor((bytes - half) / 4));
      let off = 0;
      while (off < buf.length) {
        const n = await exe.read(buf.subarray(off));
        if (n === null) break;
        off += n;
      }
      await Deno.writeFile(join(dir, "lib", `libpart${f}.a`), buf.subarray(0, off));
      total += off;
    }
  } finally {
    exe.close();
  }
  return total;
}

/**
 * Measure gzip against zstd layers: pack, size, get from a registry.
 *
 * @param options size, runs, registry
 * @returns medians and ratios
 */
export async function benchZstd(options: ZstdBenchOptions = {}): Promise<ZstdBenchResult> {
  const runs = options.runs ?? 5;
  const tmp = await Deno.makeTempDir({ prefix: "ocipkg-bench-zstd-" });
  const reg = options.registry ? undefined : await startRegistry();
  const host = options.registry ?? reg!.host;
  try {
    const src = join(tmp, "src");
    const inputBytes = await writeSet(src, (options.sizeMiB ?? 64) * 1024 * 1024);
    const kinds: Compression[] = ["gzip", "zstd"];
    const rows = new Map<Compression, ZstdBenchRow>(kinds.map((k) => [k, {
      compression: k,
      packedBytes: 0,
      packMs: 0,
      getMs: 0,
      getSamples: [],
      packSamples: [],
    }]));
    // pack (timed), then push each once
    for (let i = 0; i < runs; i++) {
      for (const k of kinds) {
        const out = join(tmp, `${k}-${i}.tar`);
        const t = performance.now();
        await packDirectory(src, out, {
          name: `${host}/bench/${k}:1`,
          compression: k,
          compressionLevel: k === "zstd" ? options.zstdLevel : undefined,
        });
        rows.get(k)!.packSamples.push(performance.now() - t);
        if (i === 0) {
          await pushImage(out, `${host}/bench/${k}:1`);
          const info = await Deno.stat(out);
          rows.get(k)!.packedBytes = info.size; // the archive: layer + small JSON
        }
        await Deno.remove(out);
      }
    }
    // get into a fresh store, interleaved
    for (let i = 0; i < runs; i++) {
      for (const k of kinds) {
        const storeDir = join(tmp, `store-${k}-${i}`);
        const t = performance.now();
        const r = await getImage(`${host}/bench/${k}:1`, { store: new Store(storeDir) });
        rows.get(k)!.getSamples.push(performance.now() - t);
        if (r.status !== "installed") throw new Error(`get ${k}: ${r.status}`);
        await Deno.remove(storeDir, { recursive: true });
      }
    }
    for (const row of rows.values()) {
      row.packMs = median(row.packSamples);
      row.getMs = median(row.getSamples);
    }
    const g = rows.get("gzip")!;
    const z = rows.get("zstd")!;
    const per = (a: number[], b: number[]) => median(a.map((v, i) => v / b[i]!));
    return {
      inputBytes,
      rows: [g, z],
      ratios: {
        packedBytes: z.packedBytes / g.packedBytes,
        packMs: per(z.packSamples, g.packSamples),
        getMs: per(z.getSamples, g.getSamples),
      },
    };
  } finally {
    await reg?.stop();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      "size-mib": { type: "string", default: "64" },
      runs: { type: "string", default: "5" },
      "zstd-level": { type: "string" },
      json: { type: "string" },
    },
  });
  const r = await benchZstd({
    sizeMiB: Number(values["size-mib"]),
    runs: Number(values.runs),
    zstdLevel: values["zstd-level"] === undefined ? undefined : Number(values["zstd-level"]),
  });
  const mib = (b: number) => (b / 1024 / 1024).toFixed(1);
  console.log(`input ${mib(r.inputBytes)} MiB (half text, half machine code)`);
  console.log("compression  packed MiB  pack ms  get ms");
  for (const row of r.rows) {
    console.log(
      `${row.compression.padEnd(11)}  ${mib(row.packedBytes).padStart(10)}  ${
        row.packMs.toFixed(0).padStart(7)
      }  ${row.getMs.toFixed(0).padStart(6)}`,
    );
  }
  console.log(
    `zstd/gzip    size ${r.ratios.packedBytes.toFixed(2)}  pack ${
      r.ratios.packMs.toFixed(2)
    }  get ${r.ratios.getMs.toFixed(2)} (medians of per-run ratios)`,
  );
  if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(r, null, 2) + "\n");
}
