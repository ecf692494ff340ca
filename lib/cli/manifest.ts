/**
 * `ocipkg manifest`: an image's manifest as stored (or its descriptor);
 * `ocipkg manifest put`: push a manifest file as given.
 *
 * @module
 */
import { fetchManifest, FormatError, putManifest, UsageError } from "../../mod.ts";
import { claimStdin, STDIO_PATH } from "../util/stdio.ts";
import { fsError } from "../util/errors.ts";
import { defineCommand } from "./options.ts";
import { out } from "./output.ts";
import { jsonOption, registryHints, registryOptions, remote } from "./shared.ts";

/** Write bytes to stdout as they are, or escaped when stdout is a terminal. */
async function writeRaw(bytes: Uint8Array): Promise<void> {
  if (Deno.stdout.isTerminal()) {
    out(new TextDecoder().decode(bytes)); // escaped: a manifest may hold control characters
    return;
  }
  for (let off = 0; off < bytes.length;) off += await Deno.stdout.write(bytes.subarray(off));
}

/** The manifest to put: a file, or stdin for `-`. */
async function manifestInput(file: string): Promise<ReadableStream<Uint8Array>> {
  if (file === STDIO_PATH) return claimStdin("a manifest");
  try {
    const st = await Deno.stat(file);
    if (!st.isFile) throw new UsageError(`manifest '${file}' is not a file`);
    return (await Deno.open(file)).readable;
  } catch (e) {
    throw fsError(e, "manifest", file);
  }
}

/** The command. */
export default defineCommand({
  name: "manifest",
  usage:
    "manifest <image> [--descriptor] [--json] | manifest put <image> <file|-> [--media-type type] [--json]",
  summary: "Print an image's manifest as stored (or its descriptor); 'put' pushes one as given",
  positionals: [1, 3],
  options: {
    descriptor: {
      type: "boolean",
      description: "print the manifest's descriptor (media type, digest, size) instead",
    },
    "media-type": {
      type: "string",
      value: "type",
      default: "the manifest's own mediaType",
      description: "put: the manifest's media type (an OCI or Docker manifest or index)",
    },
    ...jsonOption,
    ...registryOptions,
  },
  examples: [
    {
      command: "ocipkg manifest ghcr.io/org/libfoo:1.0",
      description: "the manifest (or index) byte for byte, verified against its digest",
    },
    {
      command: "ocipkg manifest ghcr.io/org/libfoo:1.0 --descriptor",
      description: "its descriptor as JSON: mediaType, digest, size (for only the digest: resolve)",
    },
    {
      command: "ocipkg manifest put localhost:5000/org/libfoo:1.0 manifest.json",
      description:
        "check a manifest file, push it (its blobs must be there) and tag it; prints its digest",
    },
    {
      command:
        "ocipkg manifest ghcr.io/org/libfoo:1.0 | ocipkg manifest put localhost:5000/org/libfoo:1.0 -",
      description: "the same manifest under another name, from stdin",
    },
  ],
  hints: [{ when: /has no mediaType field/, add: " with --media-type" }, ...registryHints],
  async run(args, opts) {
    if (args[0] === "put") {
      if (args.length !== 3) {
        throw new UsageError(
          `missing ${
            args.length === 1 ? "<image>" : "<file|->"
          } (usage: ocipkg manifest put <image> <file|->)`,
        );
      }
      if (opts.descriptor) {
        throw new UsageError("--descriptor is for reading a manifest, not 'put'");
      }
      const [, image, file] = args as [string, string, string];
      const desc = await putManifest(image, await manifestInput(file), {
        ...remote(opts),
        mediaType: opts.mediaType,
      });
      out(opts.json ? JSON.stringify({ image, ...desc }) : desc.digest);
      return;
    }
    if (args.length > 1) {
      throw new UsageError(
        `unexpected argument '${
          args[1]
        }' (usage: ocipkg manifest <image>; to push one: manifest put)`,
      );
    }
    if (opts.mediaType !== undefined) throw new UsageError("--media-type is for 'manifest put'");
    const image = args[0]!;
    const { descriptor, bytes } = await fetchManifest(image, remote(opts));
    if (opts.json) {
      let manifest: unknown;
      try {
        manifest = JSON.parse(new TextDecoder().decode(bytes));
      } catch {
        throw new FormatError(`manifest ${descriptor.digest} of '${image}' is not JSON`);
      }
      out(JSON.stringify(opts.descriptor ? descriptor : { image, descriptor, manifest }));
    } else if (opts.descriptor) out(JSON.stringify(descriptor));
    else await writeRaw(bytes);
  },
});
