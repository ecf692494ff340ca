/**
 * `ocipkg compose`: files into an ocipkg artifact.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import {
  appendHint,
  compressionOption,
  platformMismatchHint,
  platformMismatchOption,
} from "./pack.ts";
import { jsonOption, packOptions, platformOption } from "./shared.ts";

/** The command's table (its work: `compose_run.ts`). */
export default defineCommand({
  name: "compose",
  usage:
    "compose <file>... -o <output> [-t name] [--platform os/arch|triple [--allow-platform-mismatch]] [--annotation k=v]... [--format archive|dir] [--compression gzip|zstd|none] [--level 0-9]",
  summary: "Compose files into an ocipkg artifact",
  positionals: [1, Infinity],
  options: {
    ...jsonOption,
    output: {
      type: "string",
      short: "o",
      value: "output",
      required: true,
      description: "the oci-archive or oci-dir to write",
    },
    tag: {
      type: "string",
      short: "t",
      value: "name",
      default: "localhost/<first file's name>:latest",
      description: "the image name recorded in the layout",
    },
    platform: platformOption(
      "the platform the files are built for (binaries for another are refused)",
      "none: any platform",
    ),
    ...platformMismatchOption,
    ...packOptions,
    ...compressionOption,
  },
  examples: [
    {
      command: "ocipkg compose libfoo.so include/foo.h -o libfoo.tar -t ghcr.io/org/libfoo:1.0",
      description: "put two files (at the top level of the layer) into libfoo.tar",
    },
  ],
  hints: [platformMismatchHint, appendHint],
});
