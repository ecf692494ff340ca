/**
 * `ocipkg pack`: a directory into an ocipkg artifact.
 *
 * @module
 */
import type { Compression } from "../../mod.ts";
import { defineCommand, oneOf, optionGroup } from "./options.ts";
import { jsonOption, packOptions, platformOption } from "./shared.ts";

/** `--compression gzip|zstd|none` (pack and compose). */
export const compressionOption = optionGroup({
  compression: {
    type: "string",
    ...oneOf<Compression>(["gzip", "zstd", "none"]),
    default: "gzip",
    description:
      "layer compression: gzip (the ocipkg layer type), zstd (OCI tar+zstd; --level 1-9, default 3) or none",
  },
});

/** `--allow-platform-mismatch` (pack and compose). */
export const platformMismatchOption = optionGroup({
  "allow-platform-mismatch": {
    type: "boolean",
    description:
      "pack binaries whose ELF, Mach-O or PE header names another platform than --platform (refused by default)",
  },
});

/** The hint for an output that holds other images. */
export const appendHint = {
  when: /already holds .*: packing .* would add an image beside it/,
  add: "; add it with --append, or pack into another output",
};

/** The hint for a binary of another platform. */
export const platformMismatchHint = {
  when: /^image '[^']*': .* is \S+, not \S+$/,
  add: " (--allow-platform-mismatch packs it anyway)",
};

/** The command's table (its work: `pack_run.ts`). */
export default defineCommand({
  name: "pack",
  usage:
    "pack <dir> <output> [-t name] [--platform os/arch|triple [--allow-platform-mismatch]] [--annotation k=v]... [--format archive|dir] [--compression gzip|zstd|none] [--level 0-9] [--append] [-q]",
  summary: "Pack a directory into an ocipkg artifact (oci-archive or oci-dir)",
  positionals: [2, 2],
  options: {
    ...jsonOption,
    tag: {
      type: "string",
      short: "t",
      value: "name",
      default: "localhost/<dir name>:latest",
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
      command: "ocipkg pack ./out libfoo.tar -t ghcr.io/org/libfoo:1.0",
      description: "pack ./out into the oci-archive libfoo.tar, named ghcr.io/org/libfoo:1.0",
    },
    {
      command:
        "ocipkg pack ./out ./libfoo-arm64 --format dir --platform aarch64-unknown-linux-gnu -t ghcr.io/org/libfoo:1.0",
      description: "pack into an oci-dir for one platform (push several such to make one index)",
    },
    {
      command: "ocipkg pack ./out libfoo.tar -t ghcr.io/org/libfoo:1.0 --compression zstd",
      description: "a zstd layer: smaller and faster to get; needs a reader that knows tar+zstd",
    },
  ],
  hints: [platformMismatchHint, appendHint],
});
