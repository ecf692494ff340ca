// The scale bench: what each command costs as a store or a served repository grows, every row a
// ratio to the same command at the smallest scale in the same run (interleaved pairs, median of
// the pairwise ratios), with memory.
//
//   deno task bench --scale [--quick] [--only store,tags,catalog] [--runs 7] [--http-runs 200]
//                           [--json bench-scale.json]
//
// - A store of 10 / 1,000 / 10,000 images (--quick: 10 / 100 / 1,000): one libgreet image
//   installed for real (`ocipkg link` from a registry), the others copies of its repository
//   directory under other names (hard links; each an entry linking to its version directory, as
//   installs make them). Rows: cached `get`, cached `link --cargo`, `list`, `prune --dry-run`,
//   each against the 10-image store, and `lock --check` of a lock of as many images (tags of
//   one repository in an `ocipkg serve`, each locked for the host's platform) against a lock of
//   10; `prune` and `lock` only when this tree has those commands (else a row saying so).
//   Memory: the command's peak RSS (`/usr/bin/time -f %M`).
// - A served repository of 100 / 10,000 / 100,000 tags (--quick: 100 / 1,000 / 10,000),
//   written straight to disk in serve's private-index form (tests/_scale_root.ts), beside a
//   one-tag repository in the same `ocipkg serve` (a subprocess per scale). Rows: a manifest
//   GET by tag (a random tag each time), a tag page (`?n=100&last=<random tag>`), a tag PUT
//   (one manifest under a new tag each time), a referrers answer (among a tenth as many
//   referrers of other subjects), each against the one-tag repository; the first manifest GET
//   after start (on the root as written, each private index checked whole once; then after a
//   restart); `ocipkg tags` (every tag, page by page: it grows with the tags by nature).
//   Memory: serve's peak RSS (VmHWM): after the read rows for those, then after the writes and
//   the index.json export they start (2 s after the last one) for the others.
// - A served root of 10 / 1,000 / 10,000 repositories (--quick: 10 / 100 / 1,000) of one tag each,
//   written straight to disk (tests/_scale_root.ts: no catalog index, so serve builds it from a
//   walk at its first catalog page), beside a root of one repository, each in its own
//   `ocipkg serve`. Rows: the first `_catalog` page after start (the walk; one sample each), the
//   first page again after a clean restart (the index trusted: no walk; one sample each), a
//   `_catalog` first page (n=100), a page at a random `last` (n=100), a manifest GET by tag and a
//   blob HEAD in a random repository (most of them not among the repositories kept open), each
//   against the root of one; `ocipkg catalog` (every name, page by page: grows by nature).
//   Memory: serve's peak RSS after the HTTP rows.
//
// --only picks the sections (store: the store rows; tags: the served repository of many tags;
// catalog: the served root of many repositories).
//
// Writes a table on stdout and everything as JSON to --json (default bench-scale.json).
import { join } from "node:path";
import { parseArgs } from "node:util";
import { imageName, packDirectory, pushImage, serve } from "../mod.ts";
import { formatPlatform, hostPlatform } from "../lib/oci/mod.ts";
import { scaleTag, writeScaleRepository, writeScaleRoot } from "../tests/_scale_root.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = join(ROOT, "cli.ts");
const DENO = Deno.execPath();
const CHILD_ENV = { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" };

/** Options of {@link benchScale}. */
export interface ScaleOptions {
  /** Smaller scales and fewer pairs. */
  quick?: boolean;
  /** Pairs per CLI row (after a warm-up pair). */
  runs?: number;
  /** Pairs per HTTP row (after a warm-up pair). */
  httpRuns?: number;
  /** Where the JSON goes. */
  json?: string;
  /** The sections to run (default all). */
  only?: Section[];
}

/** The bench's sections. */
export const SECTIONS = ["store", "tags", "catalog"] as const;
/** One of {@link SECTIONS}. */
export type Section = typeof SECTIONS[number];

/** The sections `--only a,b` names (exits 2 on one unknown); undefined: all. */
export function sectionsOf(text: string | undefined): Section[] | undefined {
  if (text === undefined) return undefined;
  const names = text.split(",").map((x) => x.trim()).filter(Boolean);
  for (const x of names) {
    if (!(SECTIONS as readonly string[]).includes(x)) {
      console.error(`error: --only: no section '${x}' of the scale bench (${SECTIONS.join(", ")})`);
      Deno.exit(2);
    }
  }
  return names as Section[];
}

interface Row {
  area: "store" | "serve" | "catalog";
  command: string;
  /** Images, tags or repositories. */
  scale: number;
  /** What the reference is (the same command at the smallest scale). */
  reference: string;
  ours_ms: number;
  ref_ms: number;
  /** Median of the pairwise ratios. */
  ratio: number;
  pairs: number;
  /** Peak RSS (MB) at this scale and at the reference's (a command's, or serve's). */
  rss_mb?: number;
  ref_rss_mb?: number;
  note?: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const TIME = await Deno.stat("/usr/bin/time").then(() => "/usr/bin/time", () => undefined);

/** Run a CLI command: wall ms and peak RSS MB; throws on failure. */
async function runCli(args: string[], env: Record<string, string>, work: string) {
  const rssFile = join(work, `rss-${crypto.randomUUID()}`);
  const argv = [DENO, "run", "-A", "--quiet", CLI, ...args];
  const full = TIME ? [TIME, "-f", "%M", "-o", rssFile, ...argv] : argv;
  const t0 = performance.now();
  const out = await new Deno.Command(full[0]!, {
    args: full.slice(1),
    env: { ...CHILD_ENV, ...env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t0;
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-2).join(" ⏎ ");
    throw new Error(`'ocipkg ${args.join(" ")}' exited ${out.code}: ${err}`);
  }
  let rss: number | undefined;
  if (TIME) {
    rss = Number((await Deno.readTextFile(rssFile)).trim().split("\n").pop()) / 1024;
    await Deno.remove(rssFile);
  }
  return { ms, rss };
}

/** Interleaved pairs (ref then ours, ours then ref, …) after one warm-up pair. */
async function pairs(
  runs: number,
  ref: () => Promise<{ ms: number; rss?: number }>,
  ours: () => Promise<{ ms: number; rss?: number }>,
) {
  const a: { ms: number; rss?: number }[] = [];
  const b: { ms: number; rss?: number }[] = [];
  await ref();
  await ours();
  for (let i = 0; i < runs; i++) {
    if (i % 2) {
      b.push(await ours());
      a.push(await ref());
    } else {
      a.push(await ref());
      b.push(await ours());
    }
  }
  const rssOf = (xs: { rss?: number }[]) => {
    const r = xs.map((x) => x.rss).filter((x): x is number => x !== undefined);
    return r.length ? Math.max(...r) : undefined;
  };
  return {
    ref_ms: median(a.map((x) => x.ms)),
    ours_ms: median(b.map((x) => x.ms)),
    ratio: median(b.map((x, i) => x.ms / a[i]!.ms)),
    rss: rssOf(b),
    refRss: rssOf(a),
  };
}

/** Copy a directory tree with hard links (an entry of the store under another name). */
function linkTree(from: string, to: string): void {
  Deno.mkdirSync(to, { recursive: true });
  for (const e of Deno.readDirSync(from)) {
    const a = join(from, e.name);
    const b = join(to, e.name);
    if (e.isDirectory) linkTree(a, b);
    else if (e.isSymlink) Deno.symlinkSync(Deno.readLinkSync(a), b);
    else Deno.linkSync(a, b);
  }
}

/** Whether this tree's CLI has a command. */
async function hasCommand(name: string): Promise<boolean> {
  const text = await Deno.readTextFile(join(ROOT, "lib", "cli", "commands.ts"));
  // a static import of the command (older trees) or its lazy loader
  return new RegExp(`from "\\./${name}\\.ts"|import\\("\\./${name}\\.ts"\\)`).test(text);
}

/** Peak RSS (MB) of a process (VmHWM). */
async function peakRss(pid: number): Promise<number | undefined> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return Number.isFinite(kb) ? kb / 1024 : undefined;
}

/** `ocipkg serve` as a subprocess on a root; its URL. */
async function startServe(root: string) {
  const child = new Deno.Command(DENO, {
    args: ["run", "-A", "--quiet", CLI, "serve", "--root", root, "--addr", "127.0.0.1:0"]
      .concat(["--quiet", "--rate", "0"]),
    env: CHILD_ENV,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/listening on (http:\/\/\S+)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`serve did not start: ${text}`);
    text += value;
  }
  reader.releaseLock();
  const url = /listening on (http:\/\/\S+)/.exec(text)![1]!;
  return {
    url,
    addr: new URL(url).host,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

async function timed(f: () => Promise<void>): Promise<{ ms: number }> {
  const t0 = performance.now();
  await f();
  return { ms: performance.now() - t0 };
}

async function expect(res: Response, status: number, what: string): Promise<void> {
  if (res.status !== status) {
    throw new Error(`${what}: ${res.status} ${(await res.text()).slice(0, 200)}`);
  }
  await res.arrayBuffer();
}

/**
 * Run the scale bench (see the module comment).
 * @param o the options
 * @returns the rows
 */
export async function benchScale(o: ScaleOptions = {}): Promise<Row[]> {
  const quick = o.quick ?? false;
  const runs = o.runs ?? (quick ? 3 : 7);
  const httpRuns = o.httpRuns ?? (quick ? 40 : 200);
  const storeScales = quick ? [10, 100, 1000] : [10, 1000, 10_000];
  const tagScales = quick ? [100, 1000, 10_000] : [100, 10_000, 100_000];
  const repoScales = quick ? [10, 100, 1000] : [10, 1000, 10_000];
  const only = new Set<Section>(o.only ?? SECTIONS);
  const out = o.json ?? "bench-scale.json";
  const started = new Date();
  const load = () => Deno.loadavg().map((x) => Number(x.toFixed(2)));
  const loadBefore = load();
  const rows: Row[] = [];
  const work = await Deno.makeTempDir({ prefix: "ocipkg-bench-scale-" });
  const say = (s: string) => console.error(`# ${s}`);
  say(
    `scale bench (${[...only].join(", ")}): stores of ${
      storeScales.join(" / ")
    } images, repositories of ${tagScales.join(" / ")} tags, roots of ${
      repoScales.join(" / ")
    } repositories; ${runs} CLI pairs, ${httpRuns} HTTP pairs; load ${loadBefore.join(" ")}`,
  );
  try {
    if (only.has("store")) await storeSection();
    if (only.has("tags")) await tagSection();
    if (only.has("catalog")) await catalogSection();
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }

  async function storeSection() {
    // ---- the store
    const pkg = join(work, "greet-pkg");
    const build = await new Deno.Command("sh", {
      args: [join(ROOT, "examples", "c-greet", "build.sh"), pkg],
    }).output();
    if (!build.success) throw new Error("examples/c-greet/build.sh failed (cc and ar needed)");
    const registry = await serve({ root: join(work, "registry"), addr: "127.0.0.1:0", log() {} });
    const image = `${registry.addr}/bench/greet:1.0`;
    const stores = new Map<number, string>();
    try {
      await packDirectory(pkg, join(work, "greet.tar"), { name: image });
      await pushImage(join(work, "greet.tar"));
      for (const n of storeScales) {
        const store = join(work, `store-${n}`);
        await runCli(["link", "--pkg-config", image], { OCIPKG_DATA_DIR: store }, work);
        const host = registry.addr.replace(":", "__");
        // the repository directory: its entry (a link) and the version directory it names
        const repo = join(store, host, "bench", "greet");
        for (let i = 1; i < n; i++) {
          linkTree(repo, join(store, host, "bench", `img-${String(i).padStart(5, "0")}`));
        }
        stores.set(n, store);
        say(`store of ${n} images ready`);
      }
    } finally {
      await registry.close();
    }
    const smallest = storeScales[0]!;
    // `lock --check` of a lock of as many images as the store holds: each entry a tag of one
    // repository in an `ocipkg serve`, resolved again (one request each, 4 at a time)
    const lockFiles = new Map<number, string>();
    let lockServe: Awaited<ReturnType<typeof startServe>> | undefined;
    if (await hasCommand("lock")) {
      const lockRoot = join(work, "lock-root");
      const max = storeScales[storeScales.length - 1]!;
      const app = await writeScaleRepository(lockRoot, "lock/app", max, "private");
      lockServe = await startServe(lockRoot);
      for (const n of storeScales) {
        const images: Record<string, { digest: string; platforms: Record<string, string> }> = {};
        const platforms = { [formatPlatform(hostPlatform())]: app.manifest.digest };
        for (let i = 0; i < n; i++) {
          const ref = imageName(`${lockServe.addr}/lock/app:${scaleTag(i)}`).toString();
          images[ref] = { digest: app.manifest.digest, platforms };
        }
        const file = join(work, `lock-${n}.json`);
        await Deno.writeTextFile(file, JSON.stringify({ version: 1, images }, null, 2) + "\n");
        lockFiles.set(n, file);
      }
    }
    const storeCommands: {
      command: string;
      args: (n: number) => string[];
      needs?: string;
      /** Fewer pairs for a command whose largest run takes a minute. */
      runs?: number;
    }[] = [
      { command: "cached get", args: () => ["get", image] },
      { command: "cached link --cargo", args: () => ["link", "--cargo", image] },
      { command: "list", args: () => ["list"] },
      // commands other branches added: measured when this tree has them
      { command: "prune --dry-run", args: () => ["prune", "--dry-run"], needs: "prune" },
      {
        command: "lock --check (a lock of as many images)",
        args: (n) => ["lock", "--check", "--lock", lockFiles.get(n)!],
        needs: "lock",
        runs: Math.min(runs, 3),
      },
    ];
    for (const c of storeCommands) {
      if (c.needs && !(await hasCommand(c.needs))) {
        say(`${c.command}: skipped (no '${c.needs}' command in this tree)`);
        rows.push({
          area: "store",
          command: c.command,
          scale: 0,
          reference: "-",
          ours_ms: NaN,
          ref_ms: NaN,
          ratio: NaN,
          pairs: 0,
          note: `skipped: no '${c.needs}' command in this tree`,
        });
        continue;
      }
      for (const n of storeScales) {
        const run = (k: number) => () =>
          runCli(c.args(k), { OCIPKG_DATA_DIR: stores.get(k)! }, work);
        try {
          const p = await pairs(c.runs ?? runs, run(smallest), run(n));
          rows.push({
            area: "store",
            command: c.command,
            scale: n,
            reference: `${smallest} images`,
            ours_ms: p.ours_ms,
            ref_ms: p.ref_ms,
            ratio: p.ratio,
            pairs: c.runs ?? runs,
            rss_mb: p.rss,
            ref_rss_mb: p.refRss,
          });
          say(`${c.command}, ${n} images: ${p.ours_ms.toFixed(0)} ms, ratio ${p.ratio.toFixed(2)}`);
        } catch (e) {
          rows.push({
            area: "store",
            command: c.command,
            scale: n,
            reference: `${smallest} images`,
            ours_ms: NaN,
            ref_ms: NaN,
            ratio: NaN,
            pairs: 0,
            note: `error: ${(e as Error).message}`,
          });
          say(`${c.command}, ${n} images: ${(e as Error).message}`);
        }
      }
    }
    await lockServe?.stop();
    for (const store of stores.values()) await Deno.remove(store, { recursive: true });
  }

  async function tagSection() {
    // ---- serve: a repository of many tags
    for (const n of tagScales) {
      const root = join(work, `serve-${n}`);
      await writeScaleRepository(root, "warm/up", 1, "private", 1);
      const one = await writeScaleRepository(root, "ref/one", 1, "private", 1);
      const big = await writeScaleRepository(root, "scale/big", n, "private", Math.ceil(n / 10));
      // the first GET by tag of a repository (one pair: the one-tag repository's first), after
      // that of a third repository (which pays for the code's first run): on a root another tool
      // wrote (each private index checked whole on its first use), then after a restart
      const first = (url: string, repo: string, tag: string) =>
        timed(async () =>
          expect(await fetch(`${url}/v2/${repo}/manifests/${tag}`), 200, "first GET")
        );
      const firsts = async (url: string) => {
        await first(url, "warm/up", scaleTag(0));
        const f1 = await first(url, "ref/one", scaleTag(0));
        const fn = await first(url, "scale/big", scaleTag(n >> 1));
        return { ref_ms: f1.ms, ours_ms: fn.ms, ratio: fn.ms / f1.ms };
      };
      // (a second apart: a base's mark vouches only for a base changed a whole second before)
      await new Promise((r) => setTimeout(r, 1100));
      const s0 = await startServe(root);
      const fresh = await firsts(s0.url).finally(() => s0.stop());
      await new Promise((r) => setTimeout(r, 1100)); // a second after the checks' marks
      const s = await startServe(root);
      try {
        const row = (command: string, p: Awaited<ReturnType<typeof pairs>>, note?: string) => {
          rows.push({
            area: "serve",
            command,
            scale: n,
            reference: "1 tag",
            ours_ms: p.ours_ms,
            ref_ms: p.ref_ms,
            ratio: p.ratio,
            pairs: httpRuns,
            ...(note ? { note } : {}),
          });
          say(`${command}, ${n} tags: ${p.ours_ms.toFixed(2)} ms, ratio ${p.ratio.toFixed(2)}`);
        };
        await expect(await fetch(`${s.url}/v2/`), 200, "ping");
        row("first manifest GET by tag (root written by another tool)", {
          ...fresh,
          rss: undefined,
          refRss: undefined,
        }, "one sample each");
        rows[rows.length - 1]!.pairs = 1;
        row("first manifest GET by tag after a restart", {
          ...(await firsts(s.url)),
          rss: undefined,
          refRss: undefined,
        }, "one sample each");
        rows[rows.length - 1]!.pairs = 1;
        const rnd = (k: number) => scaleTag(Math.floor(Math.random() * k));
        const get = (repo: string, k: number) => () =>
          timed(async () =>
            expect(await fetch(`${s.url}/v2/${repo}/manifests/${rnd(k)}`), 200, "GET")
          );
        row("manifest GET by tag", await pairs(httpRuns, get("ref/one", 1), get("scale/big", n)));
        const page = (repo: string, k: number) => () =>
          timed(async () =>
            expect(
              await fetch(`${s.url}/v2/${repo}/tags/list?n=100&last=${rnd(k)}`),
              200,
              "tag page",
            )
          );
        row("tag page (n=100)", await pairs(httpRuns, page("ref/one", 1), page("scale/big", n)));
        // serve's peak so far: reads only
        const readRss = await peakRss(s.pid);
        for (const r of rows) if (r.area === "serve" && r.scale === n) r.rss_mb = readRss;
        let k = 0;
        const put = (repo: string, bytes: Uint8Array<ArrayBuffer>) => () =>
          timed(async () =>
            expect(
              await fetch(`${s.url}/v2/${repo}/manifests/put-${k++}`, {
                method: "PUT",
                headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
                body: bytes,
              }),
              201,
              "tag PUT",
            )
          );
        row(
          "tag PUT",
          await pairs(
            httpRuns,
            put("ref/one", one.manifestBytes),
            put("scale/big", big.manifestBytes),
          ),
        );
        const referrers = (repo: string, digest: string) => () =>
          timed(async () => {
            const res = await fetch(`${s.url}/v2/${repo}/referrers/${digest}`);
            if ((await res.clone().json()).manifests.length !== 1) throw new Error("referrers");
            await expect(res, 200, "referrers");
          });
        row(
          "referrers",
          await pairs(
            httpRuns,
            referrers("ref/one", one.manifest.digest),
            referrers("scale/big", big.manifest.digest),
          ),
        );
        // serve's peak with the writes (and the export of index.json they start after 2 s idle)
        await new Promise((r) => setTimeout(r, 3000));
        const rss = await peakRss(s.pid);
        for (const r of rows) {
          if (r.area === "serve" && r.scale === n && r.rss_mb === undefined) r.rss_mb = rss;
        }
        // `ocipkg tags`: every tag, page by page
        const tags = (repo: string) => () => runCli(["tags", `${s.addr}/${repo}`], {}, work);
        const p = await pairs(runs, tags("ref/one"), tags("scale/big"));
        rows.push({
          area: "serve",
          command: "ocipkg tags (all, paged)",
          scale: n,
          reference: "1 tag",
          ours_ms: p.ours_ms,
          ref_ms: p.ref_ms,
          ratio: p.ratio,
          pairs: runs,
          rss_mb: p.rss,
          ref_rss_mb: p.refRss,
          note: "lists every tag: grows with them",
        });
        say(`ocipkg tags, ${n} tags: ${p.ours_ms.toFixed(0)} ms, ratio ${p.ratio.toFixed(2)}`);
      } finally {
        await s.stop();
        await Deno.remove(root, { recursive: true }).catch(() => {});
      }
    }
  }

  async function catalogSection() {
    // ---- serve: a root of many repositories, against a root of one
    const refRoot = join(work, "catalog-ref");
    const ref = await writeScaleRoot(refRoot, 1);
    for (const n of repoScales) {
      const root = join(work, `catalog-${n}`);
      const big = await writeScaleRoot(root, n);
      say(`root of ${n} repositories written`);
      // the reference's index is built anew for each scale too (its first page is a row)
      await Deno.remove(join(refRoot, ".ocipkg-catalog"), { recursive: true }).catch(() => {});
      let r = await startServe(refRoot);
      let s = await startServe(root);
      const row = (command: string, p: Awaited<ReturnType<typeof pairs>>, pairCount: number) => {
        rows.push({
          area: "catalog",
          command,
          scale: n,
          reference: "1 repository",
          ours_ms: p.ours_ms,
          ref_ms: p.ref_ms,
          ratio: p.ratio,
          pairs: pairCount,
          ...(pairCount === 1 ? { note: "one sample each" } : {}),
        });
        say(
          `${command}, ${n} repositories: ${p.ours_ms.toFixed(2)} ms, ratio ${p.ratio.toFixed(2)}`,
        );
      };
      const once = async (a: () => Promise<{ ms: number }>, b: () => Promise<{ ms: number }>) => {
        const x = await a();
        const y = await b();
        return {
          ref_ms: x.ms,
          ours_ms: y.ms,
          ratio: y.ms / x.ms,
          rss: undefined,
          refRss: undefined,
        };
      };
      const catalog = (url: string, names: string[], query: (names: string[]) => string) => () =>
        timed(async () => {
          const res = await fetch(`${url}/v2/_catalog?${query(names)}`);
          if (res.status === 200 && !(await res.clone().json()).repositories.length) {
            throw new Error("an empty catalog page");
          }
          await expect(res, 200, "catalog page");
        });
      const firstPage = () => "n=100";
      const rnd = (names: string[]) => names[Math.floor(Math.random() * names.length)]!;
      // a random name but the last (so that the page is never empty)
      const randomPage = (names: string[]) =>
        `n=100&last=${encodeURIComponent(names.length > 1 ? rnd(names.slice(0, -1)) : "")}`;
      try {
        for (const x of [r, s]) await expect(await fetch(`${x.url}/v2/`), 200, "ping");
        row(
          "first _catalog page after start (index built by a walk)",
          await once(catalog(r.url, ref.names, firstPage), catalog(s.url, big.names, firstPage)),
          1,
        );
        row(
          "_catalog first page (n=100)",
          await pairs(
            httpRuns,
            catalog(r.url, ref.names, firstPage),
            catalog(s.url, big.names, firstPage),
          ),
          httpRuns,
        );
        row(
          "_catalog page at a random last (n=100)",
          await pairs(
            httpRuns,
            catalog(r.url, ref.names, randomPage),
            catalog(s.url, big.names, randomPage),
          ),
          httpRuns,
        );
        const get = (url: string, names: string[]) => () =>
          timed(async () =>
            expect(await fetch(`${url}/v2/${rnd(names)}/manifests/${scaleTag(0)}`), 200, "GET")
          );
        row(
          "manifest GET by tag, random repository",
          await pairs(httpRuns, get(r.url, ref.names), get(s.url, big.names)),
          httpRuns,
        );
        const head = (url: string, names: string[], digest: string) => () =>
          timed(async () =>
            expect(
              await fetch(`${url}/v2/${rnd(names)}/blobs/${digest}`, { method: "HEAD" }),
              200,
              "blob HEAD",
            )
          );
        row(
          "blob HEAD, random repository",
          await pairs(
            httpRuns,
            head(r.url, ref.names, ref.repository.config),
            head(s.url, big.names, big.repository.config),
          ),
          httpRuns,
        );
        const rss = await peakRss(s.pid);
        const refRss = await peakRss(r.pid);
        for (const x of rows) {
          if (x.area === "catalog" && x.scale === n) {
            x.rss_mb = rss;
            x.ref_rss_mb = refRss;
          }
        }
        // a clean stop leaves the index trusted: the next start's first page reads it (no walk)
        await r.stop();
        await s.stop();
        r = await startServe(refRoot);
        s = await startServe(root);
        for (const x of [r, s]) await expect(await fetch(`${x.url}/v2/`), 200, "ping");
        row(
          "first _catalog page after a clean restart (index trusted)",
          await once(catalog(r.url, ref.names, firstPage), catalog(s.url, big.names, firstPage)),
          1,
        );
        const all = (addr: string) => () => runCli(["catalog", addr], {}, work);
        const p = await pairs(runs, all(r.addr), all(s.addr));
        rows.push({
          area: "catalog",
          command: "ocipkg catalog (all, paged)",
          scale: n,
          reference: "1 repository",
          ours_ms: p.ours_ms,
          ref_ms: p.ref_ms,
          ratio: p.ratio,
          pairs: runs,
          rss_mb: p.rss,
          ref_rss_mb: p.refRss,
          note: "lists every repository: grows with them",
        });
        say(
          `ocipkg catalog, ${n} repositories: ${p.ours_ms.toFixed(0)} ms, ratio ${
            p.ratio.toFixed(2)
          }`,
        );
      } finally {
        await r.stop();
        await s.stop();
        await Deno.remove(root, { recursive: true }).catch(() => {});
      }
    }
  }
  const loadAfter = load();
  const fmt = (ms: number) => Number.isNaN(ms) ? "-" : ms < 10 ? ms.toFixed(2) : ms.toFixed(0);
  const mb = (x?: number) => x === undefined ? "-" : x.toFixed(0);
  const lines = [
    "| area | command | scale | ms | reference | ref ms | ratio (median of pairs) | pairs | peak RSS MB |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    if (r.note?.startsWith("skipped") || r.note?.startsWith("error")) {
      lines.push(
        `| ${r.area} | ${r.command} | ${r.scale || "-"} | - | - | - | - | - | ${r.note} |`,
      );
      continue;
    }
    const unit = r.area === "store" ? "images" : r.area === "serve" ? "tags" : "repositories";
    lines.push(
      `| ${r.area} | ${r.command} | ${r.scale.toLocaleString("en")} ${unit} | ${
        fmt(r.ours_ms)
      } | ${r.reference} | ${fmt(r.ref_ms)} | ${r.ratio.toFixed(2)} | ${r.pairs} | ${mb(r.rss_mb)}${
        r.ref_rss_mb !== undefined ? ` / ${mb(r.ref_rss_mb)}` : ""
      } |`,
    );
  }
  console.log(
    `ocipkg scale bench ${started.toISOString()}; deno ${Deno.version.deno}; ` +
      `${navigator.hardwareConcurrency} cpus; load average ${loadBefore.join(" ")} → ${
        loadAfter.join(" ")
      }\n\n${lines.join("\n")}`,
  );
  await Deno.writeTextFile(
    out,
    JSON.stringify(
      {
        date: started.toISOString(),
        seconds: Number(((Date.now() - started.getTime()) / 1000).toFixed(1)),
        options: { quick, runs, httpRuns, storeScales, tagScales, repoScales, only: [...only] },
        deno: Deno.version.deno,
        cpus: navigator.hardwareConcurrency,
        kernel: Deno.osRelease(),
        load_average: { before: loadBefore, after: loadAfter },
        rows,
      },
      null,
      2,
    ) + "\n",
  );
  console.error(`wrote ${out}`);
  return rows;
}

if (import.meta.main) {
  const args = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean" },
      runs: { type: "string" },
      "http-runs": { type: "string" },
      json: { type: "string" },
      only: { type: "string" },
    },
  });
  const only = sectionsOf(args.values.only);
  await benchScale({
    quick: args.values.quick,
    runs: args.values.runs ? Number(args.values.runs) : undefined,
    httpRuns: args.values["http-runs"] ? Number(args.values["http-runs"]) : undefined,
    json: args.values.json,
    only,
  });
}
