/**
 * `ocipkg list`: the images in the local store (with `--size`, their sizes).
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption } from "./shared.ts";

/** The command's table (its work: `list_run.ts`). */
export default defineCommand({
  name: "list",
  usage: "list [--size] [--json]",
  summary: "List images in the local store",
  positionals: [0, 0],
  options: {
    size: {
      type: "boolean",
      description:
        "also the disk usage of each image (its version directory, hard links once, links not followed) and of the whole store",
    },
    ...jsonOption,
  },
  examples: [
    {
      command: "ocipkg list",
      description:
        "one image a line; an install for another platform than the host's is followed by it, e.g. `ghcr.io/org/libfoo:1.0 (linux/arm64)`",
    },
    {
      command: "ocipkg list --size",
      description:
        "sizes (as du counts them) before each image, then the rest of the store (directories, records, what prune removes) and the total",
    },
    {
      command: "ocipkg list --json",
      description:
        'a JSON array of {"name", "platform", "dir"}; platform is null for the host\'s entry; with --size {"images": [… "bytes"], "other", "total"} in bytes',
    },
  ],
});
