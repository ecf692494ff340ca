/**
 * The work of `ocipkg list`: the images in the local store (with `--size`,
 * their sizes). Its table (usage, options, examples) is `list.ts`; this
 * module is loaded only when the command runs.
 *
 * @module
 */
import { Store, type StoreEntry } from "../store/store.ts";
import { formatPlatform } from "../oci/platform.ts";
import { implement } from "./options.ts";
import { humanBytes, out, outLines } from "./output.ts";
import command from "./list.ts";

/** The name of an entry as listed: another platform's install is followed by it. */
const label = (e: StoreEntry) =>
  e.platform ? `${e.name} (${formatPlatform(e.platform)})` : e.name.toString();

/** An entry as JSON. */
const json = (e: StoreEntry) => ({
  name: e.name.toString(),
  platform: e.platform ? formatPlatform(e.platform) : null,
  dir: e.dir,
});

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async (_args, opts) => {
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
});
