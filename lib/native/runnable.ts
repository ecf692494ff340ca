/**
 * `runnable`: a container image holding one (static) executable as its
 * entrypoint, with the platform read from the binary's header. Any OCI
 * runtime can run it; skopeo and umoci read it.
 *
 * @module
 */
import { basename } from "../util/path.ts";
import type { PackResult } from "../ops/artifact.ts";
import { defaultImageName, fileEntries, gzipStream, tarEntries } from "../ops/artifact.ts";
import { type BinaryInfo, readBinaryInfo } from "../oci/binary_platform.ts";
import { Digester } from "../oci/digest.ts";
import { UsageError } from "../util/errors.ts";
import { createLocation, type LayoutLocation, resolveLocation } from "../transport/location.ts";
import { type Descriptor, encodeJson, type Manifest, type Platform } from "../oci/manifest.ts";
import { OCI_CONFIG, OCI_LAYER_TAR_GZIP, OCI_MANIFEST } from "../oci/media_types.ts";
import { type ImageName, imageName } from "../oci/reference.ts";
import { pushBytes, type Target, withTarget } from "../transport/target.ts";

/** Options of {@link buildRunnable}. */
export interface RunnableOptions {
  /** Image name (default: from the executable's name). */
  name?: string | ImageName;
  /** Platform (default: read from the executable). */
  platform?: Platform;
  /** Extra arguments after the entrypoint (the image's `Cmd`). */
  args?: string[];
  /** Environment, `KEY=value`. */
  env?: string[];
  /** Manifest annotations. */
  annotations?: Record<string, string>;
  /** For plain output paths: `archive` (default) or `dir`. */
  format?: "archive" | "dir";
}

/** What {@link buildRunnable} produced. */
export interface RunnableResult extends PackResult {
  /** Platform of the image. */
  platform: Platform;
  /** What the executable's header said. */
  binary: BinaryInfo;
}

/** An OCI image config (the parts ocipkg writes). */
export interface ImageConfig {
  /** CPU architecture. */
  architecture: string;
  /** Operating system. */
  os: string;
  /** CPU variant. */
  variant?: string;
  /** Execution parameters. */
  config: { Entrypoint: string[]; Cmd?: string[]; Env?: string[] };
  /** Uncompressed layer digests. */
  rootfs: { type: "layers"; diff_ids: string[] };
  /** Build history. */
  history?: { created_by: string }[];
}

async function writeRunnable(
  target: Target,
  exe: string,
  name: ImageName,
  platform: Platform,
  options: RunnableOptions,
): Promise<Descriptor> {
  const [entry] = await fileEntries([exe]);
  const file = basename(exe);
  const tar = new Digester();
  const entries = tarEntries([{ ...entry!, info: { ...entry!.info, mode: 0o755 } }]);
  const counted = (async function* () {
    for await (const c of entries) {
      tar.update(c);
      yield c;
    }
  })();
  const layer = await target.push({ mediaType: OCI_LAYER_TAR_GZIP }, gzipStream(counted, 6));
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    config: { Entrypoint: [`/${file}`] },
    rootfs: { type: "layers", diff_ids: [tar.digest()] },
    history: [{ created_by: `ocipkg runnable ${file}` }],
  };
  if (platform.variant) config.variant = platform.variant;
  if (options.args?.length) config.config.Cmd = options.args;
  config.config.Env = options.env?.length ? options.env : ["PATH=/"];
  const configDesc = await pushBytes(target, OCI_CONFIG, encodeJson(config));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: configDesc,
    layers: [layer],
  };
  if (options.annotations && Object.keys(options.annotations).length) {
    manifest.annotations = options.annotations;
  }
  const desc = { ...(await pushBytes(target, OCI_MANIFEST, encodeJson(manifest))), platform };
  await target.tag(desc, name.toString());
  return desc;
}

/**
 * Make a container image whose entrypoint is `exe`, at `/<file name>` in a
 * single layer, with the platform read from the ELF/Mach-O/PE header.
 *
 * @param exe the executable (a static one runs in the otherwise empty image)
 * @param output `out.tar`, `oci-archive:out.tar`, `oci:dir` (see `packDirectory`)
 * @param options name, platform override, args, env, annotations
 * @returns name, digest, output, platform, and what the header said
 * @throws {FormatError} when `exe` is not an ELF, Mach-O or PE executable
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectAny } from "@ocipkg/cli";
 * import { buildRunnable } from "@ocipkg/cli/native";
 * const tmp = await Deno.makeTempDir();
 * // the header of a static linux/arm64 executable (a real one comes from a compiler)
 * const elf = new Uint8Array(64);
 * elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]); // ELF, 64-bit, little-endian, System V
 * elf[18] = 0xb7; // EM_AARCH64
 * await Deno.writeFile(`${tmp}/hello`, elf);
 * const r = await buildRunnable(`${tmp}/hello`, `${tmp}/hello.tar`, { name: "example.com/hello:1" });
 * assert.deepEqual(r.platform, { os: "linux", architecture: "arm64", variant: "v8" });
 * const { manifests: [m] } = await inspectAny(`${tmp}/hello.tar`);
 * assert.deepEqual(m?.layers[0]?.files, ["hello"]); // run as /hello
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function buildRunnable(
  exe: string,
  output: string,
  options: RunnableOptions = {},
): Promise<RunnableResult> {
  for (const e of options.env ?? []) {
    if (!/^[^=\s]+=/.test(e)) {
      throw new UsageError(`invalid environment variable '${e}': use KEY=value`);
    }
  }
  const binary = await readBinaryInfo(exe);
  const platform = options.platform ?? binary.platform;
  if (options.platform && options.platform.os !== binary.platform.os) {
    throw new UsageError(
      `platform ${options.platform.os} does not fit '${exe}', a ${binary.platform.os} executable`,
    );
  }
  const name = options.name === undefined ? defaultImageName(exe) : imageName(options.name);
  const loc = await resolveLocation(output, { accept: "layout", format: options.format });
  const desc = await withTarget(
    await createLocation(loc),
    (t) => writeRunnable(t, exe, name, platform, options),
  );
  return { name, digest: desc.digest, output: (loc as LayoutLocation).path, platform, binary };
}
