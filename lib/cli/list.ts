/**
 * `ocipkg list`: the images in the local store (with `--size`, their sizes).
 *
 * @module
 */
import { Store, type StoreEntry } from "../../mod.ts";
import { formatPlatform } from "../oci/mod.ts";
import { defineCommand } from "./options.ts";
import { humanBytes, out, outLines } from "./output.ts";
import { jsonOption } from "./shared.ts";

/** The name of an entry as listed: another platform's install is followed by it. */
const label = (e: StoreEntry) =>
  e.platform ? `${e.name} (${formatPlatform(e.platform)})` : e.name.toString();

/** An entry as JSON. */
const json = (e: StoreEntry) => ({
  name: e.name.toString(),
  platform: e.platform ? formatPlatform(e.platform) : null,
  dir: e.dir,
});

/** The command. */
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
  async run(_args, opts) {
    const store = new Store();
    if (!opts.size) {
      const entries = await store.list();
      if (opts.json) out(JSON.stringify(entries.map(json)));
      else outLines(entries.map(label));
      return;
    }
    const usage = await store.usage();
    if (opts.json) {
      out(JSON.stringify({
        images: usage.entries.map((u) => ({ ...json(u.entry), bytes: u.bytes })),
        other: usage.other,
        total: usage.total,
      }));
      return;
    }
    const size = (n: number) => humanBytes(n).padStart(10);
    outLines(usage.entries.map((u) => `${size(u.bytes)}  ${label(u.entry)}`));
    out(`${size(usage.other)}  (the rest: directories, records, what prune removes)`);
    out(`${size(usage.total)}  total`);
  },
});
