/**
 * Content as stored, for people who manage a registry by hand (as with
 * `oras manifest`, `oras blob`, `crane manifest`, `crane blob`): a
 * manifest's bytes exactly as the registry (or layout) holds them, verified
 * against their digest; a manifest put as given, once it is checked to be a
 * manifest of a known media type; a blob streamed, verified, to a file or
 * stdout.
 *
 * @module
 */
import { FormatError, fsError, NotFoundError, UsageError } from "../util/errors.ts";
import { dirname, resolve } from "../util/path.ts";
import { releaseTemp, tempPathFor } from "../util/temp.ts";
import { claimStdout, STDIO_PATH } from "../util/stdio.ts";
import { readBodyCapped } from "../util/body.ts";
import { digestOf, isDigest } from "../oci/digest.ts";
import {
  type Descriptor,
  isManifestType,
  MAX_MANIFEST_SIZE,
  parseManifestDocument,
} from "../oci/manifest.ts";
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_INDEX,
  OCI_MANIFEST,
} from "../oci/media_types.ts";
import { type ImageName, imageName } from "../oci/reference.ts";
import { printable } from "../util/text.ts";
import {
  createLocation,
  type Location,
  openImage,
  referenceOf,
  type RemoteOptions,
  toLocation,
} from "../transport/location.ts";
import { openRepository } from "../transport/registry/target.ts";
import { bytesStream, fetchBytes, withTarget } from "../transport/target.ts";

/** A manifest (or index) as stored. */
export interface RawManifest {
  /** Its descriptor: media type, digest, size. */
  descriptor: Descriptor;
  /** Its bytes, exactly as stored (verified against the digest). */
  bytes: Uint8Array;
}

/**
 * The manifest (or index) an image names, byte for byte as the registry or
 * layout holds it, verified against its digest (and capped at 4 MiB).
 *
 * @param image e.g. `ghcr.io/org/libfoo:1.0`, `oci:./layout:v1`, `libfoo.tar`
 * @param options client options
 * @returns its descriptor and bytes
 * @throws {NotFoundError} when there is no such image
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fetchManifest, packDirectory, pushImage, serve } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * const registry = await serve({ root: `${tmp}/root`, addr: "127.0.0.1:0" }); // or ghcr.io, …
 * const name = `${registry.addr}/org/libfoo:1`;
 * const packed = await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name });
 * await pushImage(`${tmp}/foo.tar`);
 * const { descriptor, bytes } = await fetchManifest(name);
 * assert.equal(descriptor.digest, packed.digest);
 * assert.equal(JSON.parse(new TextDecoder().decode(bytes)).schemaVersion, 2);
 * await registry.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function fetchManifest(
  image: string | ImageName | Location,
  options: RemoteOptions = {},
): Promise<RawManifest> {
  const { target, subject } = await openImage(image, options);
  return await withTarget(target, async (t) => {
    const descriptor: Descriptor = {
      mediaType: subject.mediaType,
      digest: subject.digest,
      size: subject.size,
    };
    const bytes = await fetchBytes(t, descriptor, `manifest ${subject.digest} of ${t.description}`);
    return { descriptor, bytes };
  });
}

/** Options of {@link putManifest}. */
export interface PutManifestOptions extends RemoteOptions {
  /** The manifest's media type (default: its own `mediaType` field). */
  mediaType?: string;
}

/**
 * Put a manifest (or index) as given: checked to be a manifest or index of a
 * known media type (its own `mediaType` field, or `mediaType`; the two must
 * agree), at most 4 MiB, then pushed by digest and tagged with the image's
 * tag (`latest` when none is given). The blobs and manifests it names must
 * already be there (a registry refuses it otherwise). A digest in the image
 * name must be the manifest's.
 *
 * @param image where to put it: `host/repo:tag`, `host/repo@digest`, `oci:dir:tag`
 * @param content the manifest's bytes, or a stream of them
 * @param options client options and the media type
 * @returns its descriptor
 * @throws {FormatError} when it is not a valid manifest or index, or too large
 * @throws {UsageError} for an unknown or missing media type, or another digest
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fetchManifest, packDirectory, putManifest, pushImage, serve } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * const registry = await serve({ root: `${tmp}/root`, addr: "127.0.0.1:0" }); // or ghcr.io, …
 * const name = `${registry.addr}/org/libfoo:1`;
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name });
 * await pushImage(`${tmp}/foo.tar`);
 * const { bytes, descriptor } = await fetchManifest(name);
 * // the same manifest under another tag, byte for byte
 * const put = await putManifest(`${registry.addr}/org/libfoo:stable`, bytes);
 * assert.equal(put.digest, descriptor.digest);
 * await assert.rejects(putManifest(`${registry.addr}/org/libfoo:x`, new TextEncoder().encode("{}")));
 * await registry.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function putManifest(
  image: string | ImageName | Location,
  content: Uint8Array | ReadableStream<Uint8Array>,
  options: PutManifestOptions = {},
): Promise<Descriptor> {
  const loc = await toLocation(image);
  const bytes = content instanceof Uint8Array ? content : await readBodyCapped(
    new Response(content),
    MAX_MANIFEST_SIZE,
    () => new FormatError(`the manifest is larger than ${MAX_MANIFEST_SIZE} bytes`),
  );
  if (bytes.byteLength > MAX_MANIFEST_SIZE) {
    throw new FormatError(`the manifest is larger than ${MAX_MANIFEST_SIZE} bytes`);
  }
  let declared: unknown;
  try {
    declared = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)).mediaType;
  } catch {
    throw new FormatError("the manifest is not valid JSON");
  }
  const mediaType = options.mediaType ?? (typeof declared === "string" ? declared : undefined);
  if (mediaType === undefined) {
    throw new UsageError("the manifest has no mediaType field: name its media type");
  }
  if (!isManifestType(mediaType)) {
    throw new UsageError(
      `unknown manifest media type '${printable(mediaType.slice(0, 200))}': use one of ${
        [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST].join(", ")
      }`,
    );
  }
  parseManifestDocument(bytes, mediaType, "the manifest");
  const digest = digestOf(bytes);
  const ref = referenceOf(loc);
  if (ref && isDigest(ref) && ref !== digest) {
    throw new UsageError(`the manifest's digest is ${digest}, not ${ref} as named`);
  }
  return await withTarget(await createLocation(loc, options), async (t) => {
    const desc = await t.push({ mediaType, digest, size: bytes.byteLength }, bytesStream(bytes));
    if (ref && !isDigest(ref)) await t.tag(desc, ref);
    return { mediaType, digest: desc.digest, size: desc.size };
  });
}

/**
 * Save a blob of a registry: streamed (never whole in memory), verified
 * against its digest and size as it arrives, to a file (written beside it
 * and renamed into place once verified: nothing is left on failure) or, for
 * `-`, to stdout (a terminal is refused; bytes go out as they arrive, so a
 * blob that fails verification ends with an error after part of it was
 * written).
 *
 * @param image the blob: `host/repo@sha256:…`
 * @param output a file path, or `-` for stdout
 * @param options client options
 * @returns the blob's descriptor
 * @throws {NotFoundError} when the registry has no such blob
 * @throws {UsageError} when the image names no digest
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fetchManifest, packDirectory, pushImage, saveBlob, serve } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * const registry = await serve({ root: `${tmp}/root`, addr: "127.0.0.1:0" }); // or ghcr.io, …
 * const name = `${registry.addr}/org/libfoo:1`;
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name });
 * await pushImage(`${tmp}/foo.tar`);
 * const manifest = JSON.parse(new TextDecoder().decode((await fetchManifest(name)).bytes));
 * const config = manifest.config.digest;
 * const saved = await saveBlob(`${registry.addr}/org/libfoo@${config}`, `${tmp}/config.json`);
 * assert.equal(saved.size, (await Deno.stat(`${tmp}/config.json`)).size);
 * await registry.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function saveBlob(
  image: string | ImageName,
  output: string,
  options: RemoteOptions = {},
): Promise<Descriptor> {
  const name = imageName(image);
  const digest = name.digest;
  if (!digest) {
    throw new UsageError(`'${name}' names no blob: give its digest, ${name.repository}@sha256:…`);
  }
  if (!output) throw new UsageError("no output: give a file, or '-' for stdout");
  const toStdout = output === STDIO_PATH;
  const sink = toStdout ? claimStdout("a blob") : undefined;
  if (!toStdout && (await Deno.stat(output).then((s) => s.isDirectory, () => false))) {
    throw new UsageError(`output '${output}' is a directory; give a file path`);
  }
  return await withTarget(openRepository(name, options), async (repo) => {
    const desc = await repo.blobDescriptor(digest);
    // the registry target verifies what it streams, size and digest
    const stream = await repo.fetch(desc);
    if (sink) {
      await stream.pipeTo(sink);
      return desc;
    }
    const tmp = tempPathFor(output);
    try {
      let file: Deno.FsFile;
      try {
        file = await Deno.open(tmp, { write: true, createNew: true });
      } catch (e) {
        await stream.cancel().catch(() => {});
        // the temp file beside it could not be made: say which directory is missing
        if (e instanceof Deno.errors.NotFound) {
          throw new NotFoundError(
            `output '${output}': directory '${dirname(resolve(output))}' does not exist`,
          );
        }
        throw fsError(e, "output", output);
      }
      await stream.pipeTo(file.writable);
      await Deno.rename(tmp, output);
      releaseTemp(tmp);
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      releaseTemp(tmp);
      throw fsError(e, "output", output);
    }
    return desc;
  });
}
