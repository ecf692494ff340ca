/**
 * High-level operations, one per CLI command. Each opens what it needs,
 * does the work through the shared mechanisms (targets, copy, store) and
 * leaves nothing half-written on failure.
 *
 * @module
 */
import {
  type ArtifactOptions,
  buildArtifact,
  defaultImageName,
  fileEntries,
  walkDirectory,
} from "./artifact.ts";
import { OcipkgError } from "./errors.ts";
import { type ImageInfo, inspectImage, type InspectOptions } from "./inspect.ts";
import { createLayout, openLayout, parseLayoutLocation } from "./location.ts";
import { ANNOTATION_REF_NAME } from "./media_types.ts";
import { ImageName } from "./reference.ts";
import { type InstallOptions, type InstallResult, Store } from "./store.ts";
import { using } from "./target.ts";

/** Options of {@link packDirectory} and {@link composeFiles}. */
export interface PackOptions extends ArtifactOptions {
  /** Image name recorded as the layout's ref name (default: from the input's name). */
  name?: string | ImageName;
  /** For plain output paths: `archive` (default) or `dir`. */
  format?: "archive" | "dir";
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

async function writeArtifact(
  output: string,
  layers: Parameters<typeof buildArtifact>[1],
  name: ImageName,
  options: PackOptions,
): Promise<PackResult> {
  const loc = await parseLayoutLocation(output, options.format);
  const desc = await using(await createLayout(loc), (t) => buildArtifact(t, layers, name, options));
  return { name, digest: desc.digest, output: loc.path };
}

/**
 * Pack a directory into an ocipkg artifact (one layer).
 *
 * @param dir input directory
 * @param output `out.tar`, `oci-archive:out.tar`, `oci:dir` or a dir with `format: "dir"`
 * @param options name, annotations, format, compression level
 * @returns name, digest, output path
 * @example
 * ```ts
 * import { packDirectory } from "../mod.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.txt`, "a");
 * const r = await packDirectory(dir, `${dir}.tar`, { name: "example.com/a:1" });
 * console.assert(r.digest.startsWith("sha256:"));
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
 * @param options name, annotations, format
 * @returns name, digest, output path
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
  return n === undefined ? undefined : typeof n === "string" ? ImageName.parse(n) : n;
}

/**
 * Inspect an image in a layout.
 *
 * @param location `file.tar`, `dir`, `oci:dir[:ref]`, `oci-archive:file[:ref]`
 * @param options `files: false` to skip reading layers
 * @returns what {@link inspectImage} returns
 */
export async function inspectLayout(
  location: string,
  options: InspectOptions & { ref?: string } = {},
): Promise<ImageInfo> {
  const loc = await parseLayoutLocation(location);
  return await using(
    await openLayout(loc),
    (t) => inspectImage(t, options.ref ?? loc.ref, options),
  );
}

/** Options of {@link loadImage}. */
export interface LoadOptions extends InstallOptions {
  /** Reference in the layout (default: its only image). */
  ref?: string;
  /** Name to install under (default: the layout's ref name). */
  name?: string | ImageName;
  /** The store (default: the data dir). */
  store?: Store;
}

/**
 * Load an image from an oci-archive or oci-dir into the local store.
 *
 * @param location the layout
 * @param options reference, name, force, platform, store
 * @returns the install result
 * @throws {OcipkgError} when the layout names no image and no name is given
 */
export async function loadImage(
  location: string,
  options: LoadOptions = {},
): Promise<InstallResult> {
  const loc = await parseLayoutLocation(location);
  const store = options.store ?? new Store();
  const given = toName(options.name);
  return await using(await openLayout(loc), async (src) => {
    const root = await src.resolve(options.ref ?? loc.ref);
    const refName = root.annotations?.[ANNOTATION_REF_NAME];
    const name = given ?? (refName ? ImageName.parse(refName) : undefined);
    if (!name) {
      throw new OcipkgError(`${src.description}: the image has no ref name; give one with -t`);
    }
    return await store.install(src, root, name, options);
  });
}
