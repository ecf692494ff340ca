/**
 * Build ocipkg artifacts (the Rust ocipkg v1 format) from directories and
 * files: a tar layer, compressed as it streams straight into any
 * {@link Target}, an ocipkg config listing each layer's paths, and a manifest
 * with `artifactType: application/vnd.ocipkg.v1.artifact`.
 *
 * Layer media types by compression: gzip (the default) writes the ocipkg
 * type `application/vnd.ocipkg.v1.layer.tar+gzip`, exactly what the Rust
 * ocipkg writes and reads. zstd and no compression write the OCI types
 * `application/vnd.oci.image.layer.v1.tar+zstd` and `…v1.tar`: the Rust
 * ocipkg knows only its gzip layer type, so an ocipkg-specific `+zstd` type
 * would be readable by no other tool, while the OCI types are known to
 * skopeo, containerd, ORAS and to this tool's `get`/`link`, which extract
 * every tar layer of an ocipkg artifact whatever its compression (the config
 * still lists each layer's paths).
 *
 * @module
 */
import { basename, join } from "../util/path.ts";
import { checkBinaryPlatforms } from "../oci/binary_platform.ts";
import type { Gzip } from "node:zlib";
import { nodeZlib } from "../util/lazy_node.ts";
import { fsError, OcipkgError, UsageError } from "../util/errors.ts";
import { type Descriptor, encodeJson, type Manifest, type Platform } from "../oci/manifest.ts";
import {
  ANNOTATION_PLATFORM,
  ANNOTATION_REF_NAME,
  OCI_LAYER_TAR,
  OCI_LAYER_TAR_ZSTD,
  OCI_MANIFEST,
  OCIPKG_ARTIFACT,
  OCIPKG_CONFIG,
  OCIPKG_LAYER,
} from "../oci/media_types.ts";
import { formatPlatform } from "../oci/platform.ts";
import { ImageName, imageName } from "../oci/reference.ts";
import type { TarHeader } from "../archive/tar_header.ts";
import { TAR_END, tarHeader, tarPadding } from "../archive/tar_writer.ts";
import { pushBytes, type Target, withTarget } from "../transport/target.ts";
import {
  createLocation,
  type LayoutLocation,
  openLocation,
  resolveLocation,
} from "../transport/location.ts";
import { imageEntries, imageSpelling, SoleImageError } from "../transport/layout/index_file.ts";
import { pathExists } from "../util/files.ts";
import { tagVariant } from "../transport/variants.ts";

/** A file system object to put in a layer, under an archive path. */
export interface LayerEntry {
  /** Path on disk. */
  source: string;
  /** Path inside the layer (`/`-separated, relative). */
  name: string;
  /** lstat of the source. */
  info: Deno.FileInfo;
}

/** Options for building an artifact. */
export interface ArtifactOptions {
  /** Annotations of the manifest. */
  annotations?: Record<string, string>;
  /**
   * How layers are compressed: `gzip` (default; the ocipkg layer type the Rust
   * ocipkg reads), `zstd` (OCI `tar+zstd`), or `none` (OCI `tar`).
   */
  compression?: Compression;
  /**
   * Level: gzip 0–9 (default 1: fast; see the README's benchmark), zstd 1–19
   * (default 3, zstd's own; 0 also means 3). Ignored without compression.
   */
  compressionLevel?: number;
  /**
   * Platform of the contents. The manifest's descriptor records it, and a tag
   * that already holds other platforms becomes (or stays) an index of all.
   * Binaries whose headers name another platform (ELF, Mach-O, PE, static
   * libraries) are refused before anything is written.
   */
  platform?: Platform;
  /** Pack binaries whose headers name another platform than `platform` all the same. */
  allowPlatformMismatch?: boolean;
}

/** A layer compression {@link buildArtifact} writes. */
export type Compression = "gzip" | "zstd" | "none";

/**
 * List a directory's contents recursively (sorted, for reproducible layers),
 * with names relative to it.
 *
 * @param dir the directory to pack
 * @returns entries, parents before children
 * @throws {OcipkgError} naming the path when it is missing or not a directory
 */
export async function walkDirectory(dir: string): Promise<LayerEntry[]> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(dir);
  } catch (e) {
    throw fsError(e, "input directory", dir);
  }
  if (!st.isDirectory) throw new UsageError(`input '${dir}' is not a directory`);
  const out: LayerEntry[] = [];
  const walk = async (abs: string, rel: string) => {
    const names: string[] = [];
    try {
      for await (const e of Deno.readDir(abs)) names.push(e.name);
    } catch (e) {
      throw fsError(e, "directory", abs);
    }
    names.sort();
    for (const n of names) {
      const source = join(abs, n);
      const name = rel ? `${rel}/${n}` : n;
      const info = await Deno.lstat(source);
      out.push({ source, name, info });
      if (info.isDirectory) await walk(source, name);
    }
  };
  await walk(dir, "");
  return out;
}

/**
 * Check and list files given one by one (for `compose`): each at the top level
 * under its base name.
 *
 * @param files paths of files
 * @returns entries
 * @throws {OcipkgError} naming a missing path, a directory, or a duplicate name
 */
export async function fileEntries(files: string[]): Promise<LayerEntry[]> {
  const seen = new Set<string>();
  const out: LayerEntry[] = [];
  for (const f of files) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(f);
    } catch (e) {
      throw fsError(e, "input file", f);
    }
    if (!info.isFile) throw new UsageError(`input '${f}' is not a regular file`);
    const name = basename(f);
    if (seen.has(name)) throw new UsageError(`input '${f}': another input is also named '${name}'`);
    seen.add(name);
    out.push({ source: f, name, info });
  }
  return out;
}

function mtimeOf(info: Deno.FileInfo): number {
  const epoch = Deno.env.get("SOURCE_DATE_EPOCH");
  if (epoch && /^\d+$/.test(epoch)) return Number(epoch);
  return Math.floor((info.mtime?.getTime() ?? 0) / 1000);
}

/**
 * Stream entries as an uncompressed tar.
 *
 * @param entries what to archive
 * @returns tar chunks
 */
export async function* tarEntries(entries: LayerEntry[]): AsyncGenerator<Uint8Array> {
  for (const e of entries) {
    const base = { mode: e.info.mode ?? 0o644, mtime: mtimeOf(e.info), linkname: "" };
    let header: TarHeader;
    if (e.info.isDirectory) header = { ...base, name: `${e.name}/`, type: "directory", size: 0 };
    else if (e.info.isSymlink) {
      header = {
        ...base,
        name: e.name,
        type: "symlink",
        size: 0,
        linkname: await Deno.readLink(e.source),
      };
    } else if (e.info.isFile) header = { ...base, name: e.name, type: "file", size: e.info.size };
    else throw new OcipkgError(`input '${e.source}' is not a file, directory or symlink`);
    yield tarHeader(header);
    if (header.type !== "file") continue;
    let file: Deno.FsFile;
    try {
      file = await Deno.open(e.source);
    } catch (err) {
      throw fsError(err, "input file", e.source);
    }
    try {
      let left = header.size;
      while (left > 0) {
        const buf = new Uint8Array(Math.min(left, 1 << 20));
        const n = await file.read(buf);
        if (n === null) throw new OcipkgError(`input file '${e.source}' shrank while being packed`);
        left -= n;
        yield buf.subarray(0, n);
      }
    } finally {
      file.close();
    }
    yield tarPadding(header.size);
  }
  yield TAR_END;
}

const WINDOW = 8 * 1024 * 1024;

/** Wait for a Node writable's `drain` (what `once(w, "drain")` of node:events does). */
function drained(w: { once(event: "drain", listener: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => w.once("drain", () => resolve()));
}

/** Estimated deflate ratio of a sample (compressed / original). */
function sampleRatio(chunk: Uint8Array): number {
  const sample = chunk.subarray(0, 64 * 1024);
  return nodeZlib().deflateRawSync(sample, { level: 1 }).length / Math.max(1, sample.length);
}

/**
 * Gzip a chunk source as a Web stream (Node zlib inside, with backpressure).
 * Adaptive: a window of input that does not compress (ratio > 0.97: already
 * compressed or random data) is stored (level 0) instead of being deflated
 * for nothing; compressible input switches back to `level`. The output is a
 * single gzip member, readable by every gzip reader.
 *
 * @param chunks input
 * @param level gzip level 1–9 for compressible data (0 stores everything)
 * @returns compressed stream
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gunzipSync } from "node:zlib";
 * import { gzipStream } from "./artifact.ts";
 * const gz = await new Response(gzipStream([new TextEncoder().encode("hi")])).bytes();
 * assert.deepEqual([...gz.subarray(0, 2)], [0x1f, 0x8b]); // the gzip magic
 * assert.equal(new TextDecoder().decode(gunzipSync(gz)), "hi");
 * ```
 */
export function gzipStream(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  level = 1,
): ReadableStream<Uint8Array> {
  // Gzip streams have params() at run time like every zlib stream; the types omit it.
  const { constants: zlibConstants, createGzip } = nodeZlib();
  const gz = createGzip({ level, chunkSize: 256 * 1024 }) as Gzip & {
    params(level: number, strategy: number, callback: () => void): void;
  };
  let outBytes = 0;
  let current = level;
  const setLevel = (l: number) =>
    new Promise<void>((resolve) => {
      current = l;
      gz.params(l, zlibConstants.Z_DEFAULT_STRATEGY, () => resolve());
    });
  const pump = async () => {
    let inBytes = 0;
    let windowIn = 0;
    let windowOut = 0;
    for await (const c of chunks) {
      if (!gz.write(c)) await drained(gz);
      inBytes += c.byteLength;
      if (level > 0 && inBytes - windowIn >= WINDOW) {
        const ratio = (outBytes - windowOut) / (inBytes - windowIn);
        if (current !== 0 && ratio > 0.97) await setLevel(0);
        else if (current === 0 && sampleRatio(c) < 0.9) await setLevel(level);
        windowIn = inBytes;
        windowOut = outBytes;
      }
    }
    gz.end();
  };
  pump().catch((e) => gz.destroy(e));
  return ReadableStream.from((async function* () {
    for await (const c of gz) {
      outBytes += (c as Uint8Array).byteLength;
      yield c as Uint8Array;
    }
  })());
}

/** zstd's own default level. */
const ZSTD_DEFAULT_LEVEL = 3;

/**
 * Zstd-compress a chunk source as a Web stream (Node zlib inside, with
 * backpressure): one zstd frame, readable by every zstd reader. zstd stores
 * incompressible blocks raw by itself, so no adaptive switching is needed.
 *
 * @param chunks input
 * @param level zstd level 1–19 (0: zstd's default, 3)
 * @returns compressed stream
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { zstdDecompressSync } from "node:zlib";
 * import { zstdStream } from "./artifact.ts";
 * const z = await new Response(zstdStream([new TextEncoder().encode("hi")])).bytes();
 * assert.deepEqual([...z.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd]); // the zstd magic
 * assert.equal(new TextDecoder().decode(zstdDecompressSync(z)), "hi");
 * ```
 */
export function zstdStream(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  level = ZSTD_DEFAULT_LEVEL,
): ReadableStream<Uint8Array> {
  if (!Number.isInteger(level) || level < 0 || level > 19) {
    throw new UsageError(`invalid zstd level '${level}': use 1-19`);
  }
  const { constants: zlibConstants, createZstdCompress } = nodeZlib();
  const zs = createZstdCompress({
    chunkSize: 256 * 1024,
    params: {
      [zlibConstants.ZSTD_c_compressionLevel]: level || ZSTD_DEFAULT_LEVEL,
      [zlibConstants.ZSTD_c_checksumFlag]: 1,
    },
  });
  const pump = async () => {
    for await (const c of chunks) {
      if (!zs.write(c)) await drained(zs);
    }
    zs.end();
  };
  pump().catch((e) => zs.destroy(e));
  return ReadableStream.from((async function* () {
    for await (const c of zs) yield c as Uint8Array;
  })());
}

/**
 * The layer stream and media type for a compression.
 *
 * @param chunks the tar
 * @param compression gzip, zstd or none
 * @param level the level, when given
 * @returns what to push
 */
function layerStream(
  chunks: AsyncIterable<Uint8Array>,
  compression: Compression,
  level: number | undefined,
): { mediaType: string; stream: ReadableStream<Uint8Array> } {
  switch (compression) {
    case "gzip":
      return { mediaType: OCIPKG_LAYER, stream: gzipStream(chunks, level ?? 1) };
    case "zstd":
      return { mediaType: OCI_LAYER_TAR_ZSTD, stream: zstdStream(chunks, level) };
    case "none":
      return { mediaType: OCI_LAYER_TAR, stream: ReadableStream.from(chunks) };
    default:
      throw new UsageError(`invalid compression '${compression}': use gzip, zstd or none`);
  }
}

/**
 * Build an ocipkg v1 artifact from layers of entries into `target` and tag it.
 *
 * @param target where to write (oci-archive, oci-dir, memory, registry)
 * @param layers one list of entries per layer
 * @param name image name to tag with (the layout's ref name)
 * @param options annotations, compression and its level, platform
 * @returns the descriptor tagged: the manifest, or an index with `platform`
 * @throws {OcipkgError} before anything is pushed, when a binary is built for
 *   another platform than `platform` (unless `allowPlatformMismatch`)
 */
export async function buildArtifact(
  target: Target,
  layers: LayerEntry[][],
  name: ImageName,
  options: ArtifactOptions = {},
): Promise<Descriptor> {
  await checkPlatform(layers, name, options);
  const config: { layers: Record<string, string[]> } = { layers: {} };
  const layerDescs: Descriptor[] = [];
  for (const entries of layers) {
    const { mediaType, stream } = layerStream(
      tarEntries(entries),
      options.compression ?? "gzip",
      options.compressionLevel,
    );
    const desc = await target.push({ mediaType }, stream);
    layerDescs.push(desc);
    config.layers[desc.digest] = entries.filter((e) => !e.name.includes("/")).map((e) => e.name);
  }
  const configDesc = await pushBytes(target, OCIPKG_CONFIG, encodeJson(config));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: OCIPKG_ARTIFACT,
    config: configDesc,
    layers: layerDescs,
  };
  const annotations = { ...options.annotations };
  // the platform is part of the package's identity: same files, other platform, other digest
  if (options.platform) annotations[ANNOTATION_PLATFORM] = formatPlatform(options.platform);
  if (Object.keys(annotations).length) manifest.annotations = annotations;
  const desc = await pushBytes(target, OCI_MANIFEST, encodeJson(manifest));
  const withType = { ...desc, artifactType: OCIPKG_ARTIFACT };
  if (options.platform) {
    return await tagVariant(target, { ...withType, platform: options.platform }, name.toString());
  }
  await target.tag(withType, name.toString());
  return withType;
}

/**
 * Default image name for a packed input when none is given: its base name
 * under `localhost` — never a Docker Hub name the user did not write (a push
 * needs a real name given explicitly).
 *
 * @param input a path
 * @returns e.g. `localhost/libfoo:latest` for `./libfoo`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultImageName } from "./artifact.ts";
 * assert.equal(defaultImageName("./libfoo/").toString(), "localhost/libfoo:latest");
 * assert.equal(defaultImageName("build/My Lib.tar").toString(), "localhost/my-lib:latest");
 * ```
 */
export function defaultImageName(input: string): ImageName {
  const base = basename(input.replace(/[\\/]+$/, "")).toLowerCase().replace(/\.[a-z0-9]+$/, "")
    .replace(/[^a-z0-9._-]+/g, "-").replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "");
  return ImageName.parse(`localhost/${base || "ocipkg"}`);
}

/** Options of {@link packDirectory} and {@link composeFiles}. */
export interface PackOptions extends ArtifactOptions {
  /** Image name recorded as the layout's ref name (default: from the input's name). */
  name?: string | ImageName;
  /** For plain output paths: `archive` (default) or `dir`. */
  format?: "archive" | "dir";
  /**
   * Add the image to an output layout that already holds other images
   * (default: refused — one image per output, so `push`/`inspect` need no
   * ref name). An image of the same name is replaced either way.
   */
  append?: boolean;
}

/** What pack/compose produced. */
export interface PackResult {
  /** Image name. */
  name: ImageName;
  /** Manifest digest. */
  digest: string;
  /** Output location. */
  output: string;
}

/** Refuse binaries of another platform than the one packed for (see {@link ArtifactOptions}). */
async function checkPlatform(
  layers: LayerEntry[][],
  name: ImageName,
  options: ArtifactOptions,
): Promise<void> {
  if (!options.platform || options.allowPlatformMismatch) return;
  const files = layers.flat().filter((e) => e.info.isFile).map((e) => ({
    path: e.source,
    name: e.name,
  }));
  await checkBinaryPlatforms(files, options.platform, `image '${name}'`);
}

/**
 * Refuse to add `name` beside the other images of an existing layout (see
 * {@link PackOptions.append}); the error shows how each would be named.
 */
async function refuseSecondImage(loc: LayoutLocation, name: ImageName): Promise<void> {
  if (!(await pathExists(loc.path))) return;
  let entries;
  try {
    const layout = await openLocation(loc);
    try {
      entries = "list" in layout ? await layout.list() : [];
    } finally {
      await layout.close();
    }
  } catch {
    return; // not a readable layout: creating the output says what is wrong with it
  }
  const ref = name.toString();
  const others = imageEntries(entries).filter((e) => e.annotations?.[ANNOTATION_REF_NAME] !== ref);
  if (others.length > 0) throw secondImage(loc, others, ref);
}

/** The refusal of an image beside `others` (see {@link PackOptions.append}). */
function secondImage(loc: LayoutLocation, others: Descriptor[], ref: string): UsageError {
  const spelling = `${loc.kind === "oci-dir" ? "oci" : "oci-archive"}:${loc.path}`;
  const held = others.map((e) => e.annotations?.[ANNOTATION_REF_NAME] ?? e.digest);
  const named = [...others.map((e) => imageSpelling(spelling, e)), `${spelling}:${ref}`];
  return new UsageError(
    `${loc.kind} '${loc.path}' already holds ${
      held.join(", ")
    }: packing ${ref} would add an image ` +
      `beside it (each then named: ${named.join(", ")})`,
  );
}

async function writeArtifact(
  output: string,
  layers: Parameters<typeof buildArtifact>[1],
  name: ImageName,
  options: PackOptions,
): Promise<PackResult> {
  const loc = await resolveLocation(output, { accept: "layout", format: options.format });
  // before the output is created: a refused pack leaves nothing behind
  if (!options.append) await refuseSecondImage(loc as LayoutLocation, name);
  await checkPlatform(layers, name, options);
  // checked again as the index is written, under the layout's lock: another writer may
  // have added an image since (two packs into one new output at once)
  let desc: Descriptor;
  try {
    desc = await withTarget(
      await createLocation(loc, { soleImage: !options.append }),
      (t) => buildArtifact(t, layers, name, { ...options, allowPlatformMismatch: true }),
    );
  } catch (e) {
    if (e instanceof SoleImageError) {
      throw secondImage(loc as LayoutLocation, e.others, name.toString());
    }
    throw e;
  }
  return { name, digest: desc.digest, output: (loc as LayoutLocation).path };
}

/**
 * Pack a directory into an ocipkg artifact (one layer).
 *
 * @param dir input directory
 * @param output `out.tar`, `oci-archive:out.tar`, `oci:dir` or a dir with `format: "dir"`
 * @param options name, annotations, format, compression (`gzip`, `zstd`, `none`) and level,
 *   platform (binaries built for another are refused unless `allowPlatformMismatch`)
 * @returns name, digest, output path
 * @throws {OcipkgError} naming a binary built for another platform than `platform`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectAny, packDirectory } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg/include`, { recursive: true });
 * await Deno.writeTextFile(`${tmp}/pkg/include/foo.h`, "int foo(void);\n");
 * await Deno.writeTextFile(`${tmp}/pkg/libfoo.a`, "!<arch>\n");
 * const r = await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * assert.equal(r.name.toString(), "example.com/foo:1");
 * assert.equal(r.output, `${tmp}/foo.tar`);
 * const info = await inspectAny(r.output);
 * assert.equal(info.digest, r.digest);
 * assert.deepEqual(info.manifests[0]?.layers[0]?.files, ["include/", "include/foo.h", "libfoo.a"]);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function packDirectory(
  dir: string,
  output: string,
  options: PackOptions = {},
): Promise<PackResult> {
  const name = toName(options.name) ?? defaultImageName(dir);
  return await writeArtifact(output, [await walkDirectory(dir)], name, options);
}

/**
 * Compose files into an ocipkg artifact (one layer, files at its top).
 *
 * @param files input files
 * @param output output location (see {@link packDirectory})
 * @param options name, annotations, format, compression and level, platform
 *   (binaries built for another are refused unless `allowPlatformMismatch`)
 * @returns name, digest, output path
 * @throws {OcipkgError} naming a binary built for another platform than `platform`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { composeFiles, inspectAny } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/lib`);
 * await Deno.writeTextFile(`${tmp}/lib/libfoo.a`, "!<arch>\n");
 * await Deno.writeTextFile(`${tmp}/foo.h`, "int foo(void);\n");
 * const files = [`${tmp}/lib/libfoo.a`, `${tmp}/foo.h`];
 * const annotations = { "org.opencontainers.image.version": "1.0.0" };
 * await composeFiles(files, `oci:${tmp}/out`, { name: "example.com/foo:1", annotations });
 * const { manifests: [m] } = await inspectAny(`oci:${tmp}/out`);
 * assert.deepEqual(m?.layers[0]?.files, ["libfoo.a", "foo.h"]); // each file at the top
 * assert.equal(m?.annotations["org.opencontainers.image.version"], "1.0.0");
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function composeFiles(
  files: string[],
  output: string,
  options: PackOptions = {},
): Promise<PackResult> {
  if (files.length === 0) throw new OcipkgError("compose needs at least one input file");
  const name = toName(options.name) ?? defaultImageName(files[0]!);
  return await writeArtifact(output, [await fileEntries(files)], name, options);
}

function toName(n: string | ImageName | undefined): ImageName | undefined {
  return n === undefined ? undefined : imageName(n);
}
