/**
 * Filling an entry's temp directory: {@link extractImage} extracts an
 * image's layers (tar layers, and files titled by annotation) with the one
 * extractor; `streamInstall` does it while the one copy writes the image's
 * graph into the entry's layout, teeing each layer into the extractor. What a
 * manifest declares about its platform, and the files an extracted package
 * holds, are read here for the install's platform check.
 *
 * @module
 */
import { join } from "../util/path.ts";
import { copyGraph } from "../transport/copy.ts";
import type { CopyEvent, CopyOptions } from "../transport/copy.ts";
import { OcipkgError, VerificationError } from "../util/errors.ts";
import { vouch, vouchedFor } from "../oci/digest.ts";
import { ExtractBudget, type ExtractLimits } from "../archive/budget.ts";
import { checkLinks, extractFile, extractLayer } from "../archive/extract.ts";
import type { OciDir } from "../transport/layout/oci_dir.ts";
import {
  type Descriptor,
  type Manifest,
  parseManifestDocument,
  type Platform,
} from "../oci/manifest.ts";
import {
  ANNOTATION_PLATFORM,
  layerCompression,
  OCIPKG_ARTIFACT,
  OCIPKG_CONFIG,
} from "../oci/media_types.ts";
import { parsePlatform } from "../oci/platform.ts";
import type { ImageName } from "../oci/reference.ts";
import { fetchBytes, type ReadTarget } from "../transport/target.ts";
import { type BoundedTee, teeBounded } from "../util/tee.ts";
import { RegistryError } from "../transport/registry/errors.ts";
import { LAYOUT_DIR } from "./paths.ts";

/** Options of {@link Store.install}. */
export interface InstallOptions
  extends Pick<CopyOptions, "concurrency" | "onProgress" | "progressBytes">, ExtractLimits {
  /** Replace an installed copy (of this platform). */
  force?: boolean;
  /**
   * Platform to install for (the host's by default): picked from an index;
   * a manifest that declares another is refused; one that declares none has
   * its binaries checked. Each platform has its own store entry.
   */
  platform?: Platform;
  /**
   * The digest the platform's manifest must have (what a project's lock
   * pinned): another is refused before a layer is fetched.
   */
  manifestDigest?: string;
}

/**
 * Bytes per chunk of the install's tee (1 MiB). Chunks are freed as soon as
 * both sides are past them, so the size hardly moves memory; larger chunks
 * mean fewer trips through the streams (a 1 GiB get: 64 KiB chunks 4.6–5.2
 * s and 83–85 MB, 256 KiB 3.8–4.1 s and 82 MB, 1 MiB 3.6–3.8 s and 86 MB).
 */
const TEE_CHUNK = 1 << 20;

/**
 * Copy the image into the layout with the one copy routine, extracting each
 * layer from the bytes on their way (a bounded tee: the layout branch is
 * verified, the other feeds the extractor), so every layer is fetched once
 * and concurrency, retries and progress cover every blob. Any failure fails
 * both sides and the whole call; bytes that fail their digest, or a transfer
 * that broke, are reported before the extractor's complaint about them.
 */
export async function streamInstall(
  src: ReadTarget,
  layout: OciDir,
  manifestDesc: Descriptor,
  dest: string,
  name: ImageName,
  options: InstallOptions,
): Promise<Manifest> {
  const where = `image '${name}'`;
  const manifest = await readManifest(src, manifestDesc, where);
  const slots = new Map<string, LayerSlot>();
  for (const layer of manifest.layers) {
    if (extracts(layer)) slots.set(layer.digest, slot());
  }
  const tees: BoundedTee[] = [];
  const onProgress = (e: CopyEvent) => {
    if (e.kind === "done") slots.get(e.desc.digest)?.pushed.resolve();
    options.onProgress?.(e);
  };
  const copying = copyGraph(src, layout, manifestDesc, {
    ...options,
    onProgress,
    onBlob: (desc, content) => {
      const s = slots.get(desc.digest);
      if (!s) return content;
      if (s.given) throw new OcipkgError(`${where}: layer ${desc.digest} cannot be fetched twice`);
      s.given = true;
      // fresh 1 MiB chunks, freed once the layout's writer and the decompressor
      // have both consumed them (each takes one chunk at a time): left to the
      // garbage collector they kept a 1 GiB get above 150 MB
      const tee = teeBounded(content, 4, { release: { chunkSize: TEE_CHUNK } });
      tees.push(tee);
      s.stream.resolve(tee.branches[1]);
      // the same bytes: the copy's verified stream vouches for its branch too
      return vouch(tee.branches[0], vouchedFor(content) ?? {});
    },
  });
  copying.catch((e) => {
    for (const s of slots.values()) s.stream.reject(e), s.pushed.reject(e);
  });
  try {
    await extractImage(src, manifestDesc, dest, name, {
      ...options,
      manifest,
      fetchLayer: async (layer) => {
        const s = slots.get(layer.digest)!;
        if (!s.used) {
          s.used = true;
          return await s.stream.promise;
        }
        // the same layer again: read it back from the layout once it is there
        await s.pushed.promise;
        return await layout.fetch(layer);
      },
    });
    await copying;
  } catch (e) {
    // let the verifying side finish: its error is the real fault behind an extraction error
    for (const tee of tees) tee.detach(1);
    const copied = await copying.then(() => undefined, (reason: unknown) => reason);
    if (copied instanceof VerificationError || copied instanceof RegistryError) throw copied;
    throw e;
  }
  return manifest;
}

/** The platform a manifest declares in its `vnd.ocipkg.platform` annotation, if any. */
export function declaredPlatform(manifest: Manifest): Platform | undefined {
  const packed = manifest.annotations?.[ANNOTATION_PLATFORM];
  try {
    return packed ? parsePlatform(packed) : undefined;
  } catch {
    return undefined; // not a platform: the manifest says nothing we can use
  }
}

/**
 * The regular files of an extracted package (not its `.oci-dir`), sorted,
 * each with its `/`-separated name in the package.
 */
export async function packageFiles(dir: string): Promise<{ path: string; name: string }[]> {
  const out: { path: string; name: string }[] = [];
  const walk = async (abs: string, rel: string) => {
    for await (const e of Deno.readDir(abs)) {
      if (rel === "" && e.name === LAYOUT_DIR) continue;
      const name = rel ? `${rel}/${e.name}` : e.name;
      if (e.isFile) out.push({ path: join(abs, e.name), name });
      else if (e.isDirectory) await walk(join(abs, e.name), name);
    }
  };
  await walk(dir, "");
  return out.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

/** A layer being extracted while it is copied. */
interface LayerSlot {
  /** The extractor's branch of the tee, once the copy starts the blob. */
  stream: Deferred<ReadableStream<Uint8Array>>;
  /** Settles when the layout holds the blob (verified). */
  pushed: Deferred<void>;
  /** The copy handed out the stream. */
  given: boolean;
  /** The extractor took it. */
  used: boolean;
}

function slot(): LayerSlot {
  const s = {
    stream: Promise.withResolvers<ReadableStream<Uint8Array>>(),
    pushed: Promise.withResolvers<void>(),
    given: false,
    used: false,
  };
  s.stream.promise.catch(() => {});
  s.pushed.promise.catch(() => {});
  return s;
}

async function readManifest(src: ReadTarget, desc: Descriptor, where: string): Promise<Manifest> {
  const doc = parseManifestDocument(
    await fetchBytes(src, desc, where),
    desc.mediaType,
    `manifest of ${where}`,
  );
  if (doc.kind !== "manifest") throw new OcipkgError(`${where}: expected a manifest`);
  return doc.manifest;
}

/** Whether {@link extractImage} extracts a layer: a tar layer, or a file titled by annotation. */
function extracts(layer: Descriptor): boolean {
  return layerCompression(layer.mediaType) !== undefined || !!layer.annotations?.[TITLE];
}

const TITLE = "org.opencontainers.image.title";

/** Options of {@link extractImage}. */
export interface ExtractImageOptions extends ExtractLimits {
  /** The manifest, when the caller has read it already. */
  manifest?: Manifest;
  /** Where layer bytes come from (default: `layout.fetch`). */
  fetchLayer?: (layer: Descriptor) => Promise<ReadableStream<Uint8Array>>;
}

/**
 * Extract an image's layers from a layout into `dest`: tar layers
 * (ocipkg v1, v0 and container layers, with whiteouts for the latter), and
 * non-tar layers titled with `org.opencontainers.image.title` (ORAS files)
 * written as files. The blobs must be verified — before extraction, or (as
 * {@link Store.install} does) before the extracted directory is used.
 *
 * @param layout where the blobs are
 * @param manifestDesc the manifest
 * @param dest destination directory
 * @param name names the image in errors
 * @param caps optional byte/entry caps, and a layer fetcher
 */
export async function extractImage(
  layout: ReadTarget,
  manifestDesc: Descriptor,
  dest: string,
  name: ImageName,
  caps: ExtractImageOptions = {},
): Promise<void> {
  const fetchLayer = caps.fetchLayer ?? ((l: Descriptor) => layout.fetch(l));
  const where = `image '${name}'`;
  const m: Manifest = caps.manifest ?? await readManifest(layout, manifestDesc, where);
  const isOcipkg = m.artifactType === OCIPKG_ARTIFACT || m.config.mediaType === OCIPKG_CONFIG;
  const budget = new ExtractBudget(caps);
  for (const layer of m.layers) {
    if (!extracts(layer)) continue;
    const what = `layer ${layer.digest} of ${where}`;
    const compression = layerCompression(layer.mediaType);
    if (compression) {
      await extractLayer(await fetchLayer(layer), dest, {
        compression,
        what,
        reserved: [LAYOUT_DIR],
        budget,
        whiteouts: !isOcipkg,
      });
      continue;
    }
    const title = layer.annotations![TITLE]!;
    await extractFile(await fetchLayer(layer), dest, title, layer.size, {
      what,
      reserved: [LAYOUT_DIR],
      budget,
    });
  }
  checkLinks(dest, budget, where, [LAYOUT_DIR]);
}
