/**
 * The work of `ocipkg prune`: remove from the local store what nothing uses.
 * Its table (usage, options, examples) is `prune.ts`; this module is loaded
 * only when the command runs.
 *
 * @module
 */
import { type PrunedItem, Store } from "../store/store.ts";
import { formatPlatform } from "../oci/platform.ts";
import { implement } from "./options.ts";
import { humanBytes, out, outLines } from "./output.ts";
import command from "./prune.ts";

/** What a line says an item is. */
function describe(item: PrunedItem, root: string): string {
  const rel = item.path.startsWith(root) ? item.path.slice(root.length + 1) : item.path;
  switch (item.kind) {
    case "image": {
      const platform = item.platform ? ` (${formatPlatform(item.platform)})` : "";
      const used = item.lastUsed ? `, last used ${item.lastUsed.toISOString().slice(0, 10)}` : "";
      return `image ${item.name}${platform}${used}`;
    }
    case "version":
      return `stale version ${rel}`;
    case "temp":
      return `temp ${rel}`;
    case "record":
      return `verified record ${item.digest}`;
    case "directory":
      return `empty directory ${rel}`;
  }
}

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async (_args, opts) => {
  const store = new Store();
  const options: Parameters<Store["prune"]>[0] = { dryRun: opts.dryRun };
  if (opts.unusedFor !== undefined) options.unusedFor = opts.unusedFor;
  if (opts.keepLocked.length > 0) options.keepLocked = opts.keepLocked;
  const r = await store.prune(options);
  if (opts.json) {
    out(JSON.stringify({
      removed: r.removed.map((x) => ({
        kind: x.kind,
        path: x.path,
        bytes: x.bytes,
        ...(x.name ? { name: x.name.toString() } : {}),
        ...(x.kind === "image" ? { platform: x.platform ? formatPlatform(x.platform) : null } : {}),
        ...(x.lastUsed ? { lastUsed: x.lastUsed.toISOString() } : {}),
        ...(x.digest ? { digest: x.digest } : {}),
      })),
      freed: r.freed,
      dryRun: r.dryRun,
    }));
    return;
  }
  const verb = r.dryRun ? "would remove" : "removed";
  outLines(r.removed.map((x) => `${verb} ${describe(x, store.root)} (${humanBytes(x.bytes)})`));
  out(`${r.dryRun ? "would free" : "freed"} ${humanBytes(r.freed)}`);
});
