// Properties of extraction containment: generated layers (benign and hostile entries, links,
// whiteouts) never write outside the destination or into .oci-dir, and what they leave is safe.
import fc from "fast-check";
import { join } from "node:path";
import { ArchiveError, OcipkgError } from "../lib/util/errors.ts";
import { ExtractBudget } from "../lib/archive/budget.ts";
import { checkLinks, extractLayer } from "../lib/archive/extract.ts";
import { TAR_END, tarHeader, tarPadding } from "../lib/archive/tar_writer.ts";
import { concat, withTempDir } from "./_helpers.ts";
import { errorName, fail, w } from "./_property_kit.ts";
import { sameJson } from "./_properties_names.ts";

const enc = new TextEncoder();

/** One generated tar entry. */
export interface GenEntry {
  type: "file" | "dir" | "symlink" | "hardlink" | "fifo" | "char-device";
  name: string;
  mode: number;
  /** symlink/hardlink target; `@OUT@` is replaced by the absolute path of `<tmp>/root`. */
  target?: string;
  data?: string;
}

/**
 * Tar entries over a small alphabet of path components. A "hostile" layer
 * often has names and targets that must be refused (`..`, `.oci-dir`, absolute
 * paths, links out of dest, devices); a "plausible" one has only ordinary
 * names, whiteouts, and relative links with a few `..` — so that many runs
 * extract completely and the checks of the result matter, and escapes can
 * only come from combining links, replacing directories, and whiteouts.
 */
export function entryArb(hostile: boolean): fc.Arbitrary<GenEntry> {
  const bad = hostile ? 1 : 0;
  const nameComponent = fc.oneof(
    w(40, fc.constantFrom("a", "b", "c")),
    w(4, fc.constantFrom(".wh.a", ".wh.b", ".wh..wh..opq")),
    w(3 * bad, fc.constantFrom(".", "..", ".oci-dir", ".wh..", ".wh.", ".wh..oci-dir", "")),
  );
  const targetComponent = fc.oneof(
    w(30, fc.constantFrom("a", "b", "c", "f", "g")),
    w(hostile ? 10 : 1, fc.constant("..")),
    w(2, fc.constantFrom(".", "")),
    w(2 * bad, fc.constantFrom("outside", "sentinel", "dest", ".oci-dir")),
    w(1, fc.constantFrom(".wh.a", ".wh..wh..opq")),
  );
  const pathArb = (part: fc.Arbitrary<string>, max: number) =>
    fc.tuple(
      fc.oneof(w(30, fc.constant("")), w(5, fc.constant("./")), w(bad, fc.constant("/"))),
      fc.array(part, { minLength: 1, maxLength: max }),
      fc.constantFrom("", "", "", "/"),
    ).map(([pre, p, post]) => pre + p.join("/") + post);
  // relative targets: a few `../` (in hostile layers sometimes a long chain), then components
  const relTarget = fc.tuple(
    fc.oneof(
      w(hostile ? 5 : 40, fc.constant(0)),
      w(hostile ? 5 : 2, fc.integer({ min: 1, max: 2 })),
      w(bad, fc.integer({ min: 3, max: 12 })),
    ),
    fc.array(targetComponent, { minLength: 1 - bad, maxLength: 4 }),
  ).map(([up, p]) => "../".repeat(up) + p.join("/"));
  const linkTarget = fc.oneof(
    w(20, relTarget),
    w(bad, pathArb(targetComponent, 4)),
    w(bad, fc.array(targetComponent, { maxLength: 3 }).map((p) => `@OUT@/${p.join("/")}`)),
    w(bad, fc.constantFrom("/", "/tmp", "", "a\\..\\..", "C:/x", "a\0b")),
  );
  const mode = fc.oneof(
    fc.constantFrom(0o644, 0o755, 0o777, 0o7777, 0o4755, 0o2755, 0o1777, 0o666, 0o000, 0o200),
    fc.integer({ min: 0, max: 0o7777 }),
  );
  const name = pathArb(nameComponent, 3);
  // in plausible layers, files and links mostly get leaf names (`f`, `g`) that no
  // entry uses as a directory, so fewer runs stop at "needs 'a' to be a directory"
  const leafName = hostile ? name : fc.oneof(
    w(1, name),
    w(
      3,
      fc.tuple(fc.array(nameComponent, { maxLength: 2 }), fc.constantFrom("f", "g", ".wh.f"))
        .map(([dirs, leaf]) => [...dirs, leaf].join("/")),
    ),
  );
  return fc.oneof(
    w(
      30,
      fc.record({
        type: fc.constant("file" as const),
        name: leafName,
        mode,
        data: fc.oneof(fc.constantFrom("", "x"), fc.string({ maxLength: 600 })),
      }),
    ),
    w(25, fc.record({ type: fc.constant("dir" as const), name, mode })),
    w(
      30,
      fc.record({
        type: fc.constant("symlink" as const),
        // a link may replace a directory (`a`) as often as it gets a leaf name
        name: fc.oneof(name, leafName),
        mode,
        target: linkTarget,
      }),
    ),
    w(
      12,
      fc.record({
        type: fc.constant("hardlink" as const),
        name: leafName,
        mode,
        // `@FILE<n>@`: the name of an earlier file entry (see scenarioArb)
        target: fc.oneof(w(8, fc.nat().map((n) => `@FILE${n}@`)), w(1, name), w(bad, linkTarget)),
      }),
    ),
    w(
      bad,
      fc.record({
        type: fc.constantFrom("fifo" as const, "char-device" as const),
        name: pathArb(nameComponent, 2),
        mode,
      }),
    ),
  );
}

/** One extraction scenario: layers sharing a budget, whiteouts on or off. */
export interface Scenario {
  /** Whether entries were drawn from the hostile alphabet (informational). */
  hostile: boolean;
  layers: GenEntry[][];
  whiteouts: boolean;
  maxEntries?: number;
  /** Chunk size the tar stream is cut into. */
  chunk: number;
}

export const scenarioFor = (hostile: boolean): fc.Arbitrary<Scenario> =>
  fc.record({
    layers: fc.array(fc.array(entryArb(hostile), { minLength: 1, maxLength: 10 }), {
      minLength: 1,
      maxLength: 3,
    }),
    whiteouts: fc.boolean(),
    maxEntries: fc.oneof(
      w(10, fc.constant(undefined)),
      w(1, fc.integer({ min: 0, max: 12 })),
    ),
    chunk: fc.constantFrom(1 << 20, 512, 100, 7),
  }, { requiredKeys: ["layers", "whiteouts", "chunk"] }).map((sc) => {
    // hardlinks to `@FILE<n>@` link to the name of an earlier file entry (else become a file)
    const files: string[] = [];
    const layers = sc.layers.map((layer) =>
      layer.map((e) => {
        if (e.type === "file") files.push(e.name);
        const m = /^@FILE(\d+)@$/.exec(e.target ?? "");
        if (e.type !== "hardlink" || !m) return e;
        if (files.length) return { ...e, target: files[Number(m[1]) % files.length]! };
        return { type: "file" as const, name: e.name, mode: e.mode, data: "" };
      })
    );
    return { hostile, ...sc, layers };
  });

/** Extraction scenarios: half from plausible layers, half from hostile ones. */
export const scenarioArb: fc.Arbitrary<Scenario> = fc.oneof(scenarioFor(false), scenarioFor(true));

export function rawTypeFix(h: Uint8Array, flag: string): Uint8Array {
  h[156] = flag.charCodeAt(0);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return h;
}

/** Encode generated entries as a tar stream. */
export function buildTar(entries: GenEntry[], outRoot: string): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    const linkname = (e.target ?? "").replace("@OUT@", outRoot);
    if (e.type === "fifo" || e.type === "char-device") {
      const h = tarHeader({
        name: e.name,
        type: "file",
        size: 0,
        mode: e.mode,
        mtime: 0,
        linkname,
      });
      parts.push(h.length === 512 ? rawTypeFix(h, e.type === "fifo" ? "6" : "3") : h);
      continue;
    }
    const data = enc.encode(e.data ?? "");
    const size = e.type === "file" ? data.length : 0;
    const type = e.type === "dir" ? "directory" : e.type;
    parts.push(tarHeader({ name: e.name, type, size, mode: e.mode, mtime: 0, linkname }));
    if (size) parts.push(data, tarPadding(size));
  }
  parts.push(TAR_END);
  return concat(parts);
}

export function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

export interface Snap {
  kind: string;
  mode: number;
  size: number;
  nlink: number;
  mtime: number | undefined;
  ino: number | null;
  link?: string;
  data?: string;
}

/** Everything observable about a tree, except what is under `skip`. */
export function snapshot(dir: string, skip?: string): Map<string, Snap> {
  const out = new Map<string, Snap>();
  const walk = (rel: string) => {
    const full = rel ? join(dir, rel) : dir;
    if (skip !== undefined && full === skip) return;
    const st = Deno.lstatSync(full);
    const kind = st.isSymlink ? "symlink" : st.isDirectory ? "dir" : st.isFile ? "file" : "other";
    const snap: Snap = {
      kind,
      mode: st.mode ?? 0,
      size: st.size,
      nlink: st.nlink ?? 0,
      mtime: st.mtime?.getTime(),
      ino: st.ino,
    };
    if (st.isSymlink) snap.link = Deno.readLinkSync(full);
    if (st.isFile) snap.data = new TextDecoder().decode(Deno.readFileSync(full));
    out.set(rel || ".", snap);
    if (st.isDirectory) {
      for (const e of [...Deno.readDirSync(full)].sort((a, b) => a.name < b.name ? -1 : 1)) {
        walk(rel ? `${rel}/${e.name}` : e.name);
      }
    }
  };
  walk("");
  return out;
}

export function diffSnaps(before: Map<string, Snap>, after: Map<string, Snap>): string[] {
  const diffs: string[] = [];
  for (const [k, v] of before) {
    const w = after.get(k);
    if (!w) diffs.push(`removed ${k}`);
    else if (!sameJson(v, w)) diffs.push(`changed ${k}: ${fc.stringify(v)} → ${fc.stringify(w)}`);
  }
  for (const k of after.keys()) if (!before.has(k)) diffs.push(`added ${k}`);
  return diffs;
}

export const MAX_HOPS = 40;

/**
 * Where a symlink in `dest` leads, resolved component by component against the
 * disk; past a missing (or non-directory) component the rest is taken
 * lexically. Returns "escape" when it leaves dest, "reserved" when it enters
 * `.oci-dir`, else "inside".
 */
export function resolveOnDisk(
  dest: string,
  linkRel: string,
): "escape" | "reserved" | "inside" | "loop" {
  const stack = linkRel.split("/").slice(0, -1);
  const queue = Deno.readLinkSync(join(dest, linkRel)).split("/").reverse();
  if (queue[queue.length - 1] === "") return "escape"; // absolute
  let hops = 0;
  let lexical = false;
  while (queue.length) {
    const c = queue.pop()!;
    if (c === "" || c === ".") continue;
    if (c === "..") {
      if (stack.length === 0) return "escape";
      stack.pop();
      continue;
    }
    stack.push(c);
    if (stack.length === 1 && c === ".oci-dir") return "reserved";
    if (lexical) continue;
    let st: Deno.FileInfo;
    try {
      st = Deno.lstatSync(join(dest, ...stack));
    } catch {
      lexical = true;
      continue;
    }
    if (st.isSymlink) {
      if (++hops > MAX_HOPS) return "loop";
      const next = Deno.readLinkSync(join(dest, ...stack));
      if (next.startsWith("/")) return "escape";
      stack.pop();
      queue.push(...next.split("/").reverse());
    } else if (!st.isDirectory) {
      lexical = true;
    }
  }
  return "inside";
}

/**
 * Extract a scenario into `<tmp>/root/dest` and check every invariant; throws
 * naming the broken one. Returns what happened ("ok" or the error's message).
 */
export async function checkScenario(sc: Scenario): Promise<string> {
  return await withTempDir(async (tmp) => {
    const root = join(tmp, "root");
    const dest = join(root, "dest");
    const outside = join(root, "outside");
    Deno.mkdirSync(join(outside, "a"), { recursive: true });
    Deno.writeFileSync(join(outside, "sentinel"), enc.encode("outside sentinel"));
    Deno.writeFileSync(join(outside, "a", "sentinel"), enc.encode("outside a sentinel"));
    Deno.mkdirSync(join(dest, ".oci-dir", "blobs"), { recursive: true });
    Deno.writeFileSync(join(dest, ".oci-dir", "sentinel"), enc.encode("layout sentinel"));
    Deno.writeFileSync(join(dest, ".oci-dir", "blobs", "b"), enc.encode("blob"));
    Deno.chmodSync(join(dest, ".oci-dir", "sentinel"), 0o644);
    const before = snapshot(tmp, dest);
    const layoutBefore = snapshot(join(dest, ".oci-dir"));

    const budget = new ExtractBudget(
      sc.maxEntries === undefined ? {} : { maxEntries: sc.maxEntries },
    );
    let error: unknown;
    try {
      for (const [i, layer] of sc.layers.entries()) {
        await extractLayer(chunked(buildTar(layer, root), sc.chunk), dest, {
          compression: "none",
          what: `layer ${i}`,
          reserved: [".oci-dir"],
          budget,
          whiteouts: sc.whiteouts,
        });
      }
      checkLinks(dest, budget, "image", [".oci-dir"]);
    } catch (e) {
      error = e;
    }

    const outsideDiffs = diffSnaps(before, snapshot(tmp, dest));
    if (outsideDiffs.length) fail(`outside dest changed (${errorName(error)})`, outsideDiffs);
    const layoutDiffs = diffSnaps(layoutBefore, snapshot(join(dest, ".oci-dir")));
    if (layoutDiffs.length) fail(`dest/.oci-dir changed (${errorName(error)})`, layoutDiffs);
    if (error !== undefined) {
      if (!(error instanceof OcipkgError)) fail(`extraction threw ${errorName(error)}`);
      if (!(error instanceof ArchiveError)) {
        fail(`extraction threw a non-ArchiveError ${errorName(error)}`);
      }
      return error.message;
    }
    // success: every link stays inside dest, no unsafe modes, no odd file types
    const tree = snapshot(dest, join(dest, ".oci-dir"));
    for (const [rel, s] of tree) {
      if (rel === ".") continue;
      if (s.kind === "symlink") {
        const where = resolveOnDisk(dest, rel);
        if (where === "escape" || where === "reserved") {
          fail(
            `symlink '${rel}' → '${s.link}' leads ${
              where === "escape" ? "outside dest" : "into .oci-dir"
            }`,
          );
        }
      } else if (s.kind === "other") {
        fail(`'${rel}' is neither file, directory nor symlink`);
      } else if (s.mode & 0o7022) {
        fail(`${s.kind} '${rel}' has mode ${(s.mode & 0o7777).toString(8)}`);
      }
    }
    return "ok";
  });
}

export const extractContained = fc.asyncProperty(scenarioArb, async (sc) => {
  await checkScenario(sc);
  return true;
});
