/**
 * The work of `ocipkg manifest`: an image's manifest as stored (or its
 * descriptor); `ocipkg manifest put`: push a manifest file as given. Its
 * table (usage, options, examples) is `manifest.ts`; this module is loaded
 * only when the command runs.
 *
 * @module
 */
import { fetchManifest, putManifest } from "../ops/raw.ts";
import { claimStdin, STDIO_PATH } from "../util/stdio.ts";
import { FormatError, fsError, UsageError } from "../util/errors.ts";
import { implement } from "./options.ts";
import { out } from "./output.ts";
import { remote } from "./shared.ts";
import command from "./manifest.ts";

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

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async (args, opts) => {
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
});
