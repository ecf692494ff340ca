// Served roots with many tags or many repositories, written straight to disk (no API round
// trips): a repository in serve's private-index form (`<repo>/.ocipkg-index`, see
// lib/serve/repo_index.ts), or a plain layout whose index.json lists every tag (a root from
// before the private index); a root of many one-tag repositories (hard links of one). Used by
// tests/serve_scale_test.ts, tests/serve_catalog_test.ts and scripts/bench_scale.ts.
import { join } from "../lib/util/path.ts";
import { OCI_LAYOUT_FILE } from "../lib/transport/layout/index_file.ts";
import { descriptorJson, FORMAT_FILE, INDEX_DIR } from "../lib/serve/repo_index.ts";
import { writeSortedFile } from "../lib/serve/sorted_file.ts";
import type { Descriptor } from "../lib/oci/manifest.ts";
import { OCI_MANIFEST } from "../lib/oci/media_types.ts";

const enc = new TextEncoder();

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The `i`-th tag of a scale repository: sorted as numbers are. */
export function scaleTag(i: number): string {
  return `nightly-${String(i).padStart(7, "0")}`;
}

/** A repository made by {@link writeScaleRepository}. */
export interface ScaleRepository {
  /** Its directory. */
  dir: string;
  /** The manifest every tag names. */
  manifest: Descriptor;
  /** Its bytes. */
  manifestBytes: Uint8Array<ArrayBuffer>;
  /** The config blob's digest. */
  config: string;
  /** The tags, sorted. */
  tags: string[];
}

/**
 * A repository of `count` tags (`scaleTag(0…count-1)`), each naming one small image manifest,
 * written straight to disk.
 *
 * @param root the served root
 * @param name the repository's name
 * @param count how many tags
 * @param form `private`: serve's private index (index.json a stale placeholder until an export);
 *   `plain`: an index.json listing every tag, as a root from before the private index
 * @param referrers (private form) this many referrers of other subjects in the referrers table,
 *   and one of the manifest (its `referrer` digest)
 * @returns what was written
 */
export async function writeScaleRepository(
  root: string,
  name: string,
  count: number,
  form: "private" | "plain",
  referrers = 0,
): Promise<ScaleRepository> {
  const dir = join(root, ...name.split("/"));
  await Deno.mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  const configBytes = enc.encode("{}");
  const config = await sha256(configBytes);
  await Deno.writeFile(join(dir, "blobs", "sha256", config.slice(7)), configBytes);
  const manifestBytes = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.empty.v1+json", digest: config, size: 2 },
    layers: [],
    annotations: { scale: name },
  }));
  const digest = await sha256(manifestBytes);
  await Deno.writeFile(join(dir, "blobs", "sha256", digest.slice(7)), manifestBytes);
  const manifest: Descriptor = {
    mediaType: OCI_MANIFEST,
    digest,
    size: manifestBytes.byteLength,
    artifactType: "application/vnd.oci.empty.v1+json",
  };
  const tags = Array.from({ length: count }, (_, i) => scaleTag(i));
  const value = descriptorJson(manifest);
  if (form === "plain") {
    const entries = tags.map((t) =>
      JSON.stringify({ ...manifest, annotations: { "org.opencontainers.image.ref.name": t } })
    );
    await Deno.writeTextFile(
      join(dir, "index.json"),
      `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[${
        entries.join(",")
      }]}`,
    );
  } else {
    const index = join(dir, INDEX_DIR);
    await Deno.mkdir(index, { recursive: true });
    for (const t of ["tags", "manifests", "referrers"]) await Deno.mkdir(join(index, t));
    await writeSortedFile(join(index, "tags.base"), tags.map((t) => [t, value]));
    await writeSortedFile(join(index, "manifests.base"), [[digest, value]]);
    const lines: [string, string][] = [];
    const hex = (i: number) => `sha256:${i.toString(16).padStart(64, "0")}`;
    for (let i = 1; i <= referrers; i++) {
      const d = { ...manifest, digest: hex(i), artifactType: "application/vnd.example.sig" };
      lines.push([`${hex(i + referrers)} ${d.digest}`, descriptorJson(d)]);
    }
    if (referrers) {
      const d = { ...manifest, digest: hex(0), artifactType: "application/vnd.example.sig" };
      lines.push([`${digest} ${d.digest}`, descriptorJson(d)]);
    }
    lines.sort(([a], [b]) => a < b ? -1 : 1);
    await writeSortedFile(join(index, "referrers.base"), lines);
    // a placeholder index.json, known as our own export: serve reads the private index
    await Deno.writeTextFile(join(dir, "index.json"), '{"schemaVersion":2,"manifests":[]}');
    await Deno.link(join(dir, "index.json"), join(index, "exported.json"));
    await Deno.writeTextFile(
      join(index, FORMAT_FILE),
      '{"format":"ocipkg serve index","version":1}',
    );
  }
  await Deno.writeFile(join(dir, "oci-layout"), OCI_LAYOUT_FILE);
  return { dir, manifest, manifestBytes, config, tags };
}

/** The `i`-th repository of a scale root: 100 to a namespace directory, sorted as numbers are. */
export function scaleRepositoryName(i: number): string {
  return `scale${String(Math.floor(i / 100)).padStart(4, "0")}/repo${String(i).padStart(6, "0")}`;
}

/** A root made by {@link writeScaleRoot}. */
export interface ScaleRoot {
  /** The repositories, sorted. */
  names: string[];
  /** What each of them holds (one tag, `scaleTag(0)`). */
  repository: ScaleRepository;
}

/** A directory tree's directories (parents first) and files, relative to it. */
function treeOf(dir: string, rel = "", out = { dirs: [] as string[], files: [] as string[] }) {
  for (const e of Deno.readDirSync(join(dir, rel))) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) {
      out.dirs.push(r);
      treeOf(dir, r, out);
    } else out.files.push(r);
  }
  return out;
}

/**
 * A root of `count` repositories (`scaleRepositoryName(0…count-1)`), each of one tag in
 * serve's private-index form, written straight to disk: one made by {@link writeScaleRepository},
 * the others hard links of its files (serve replaces a file by a rename, never writes one in
 * place, so they stay apart). No catalog index is written: serve builds it at its first page.
 *
 * @param root the served root
 * @param count how many repositories
 * @returns their names and what each holds
 */
export async function writeScaleRoot(root: string, count: number): Promise<ScaleRoot> {
  const names = Array.from({ length: count }, (_, i) => scaleRepositoryName(i));
  const repository = await writeScaleRepository(root, names[0]!, 1, "private");
  const tree = treeOf(repository.dir);
  for (const name of names.slice(1)) {
    const dir = join(root, ...name.split("/"));
    Deno.mkdirSync(dir, { recursive: true });
    for (const d of tree.dirs) Deno.mkdirSync(join(dir, d));
    for (const f of tree.files) Deno.linkSync(join(repository.dir, f), join(dir, f));
  }
  return { names, repository };
}
