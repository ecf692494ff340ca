/**
 * `ocipkg prune`: remove from the local store what nothing uses.
 *
 * @module
 */
import { type PrunedItem, Store, UsageError } from "../../mod.ts";
import { formatPlatform } from "../oci/mod.ts";
import { defineCommand } from "./options.ts";
import { humanBytes, out, outLines } from "./output.ts";
import { jsonOption } from "./shared.ts";

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };

/**
 * A duration: a whole number and a unit, `s`, `m`, `h`, `d` or `w`.
 * @param text e.g. `30d`
 * @param flag the flag, for the error
 * @returns milliseconds
 * @throws {UsageError} for anything else
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDuration } from "./prune.ts";
 * assert.equal(parseDuration("12h", "--unused-for"), 12 * 3600 * 1000);
 * assert.throws(() => parseDuration("12", "--unused-for"), /use a number and a unit/);
 * ```
 */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d{1,6})([smhdw])$/.exec(text);
  if (!m) {
    throw new UsageError(
      `invalid ${flag} '${text}': use a number and a unit (s, m, h, d, w), e.g. 30d or 12h`,
    );
  }
  return Number(m[1]) * UNITS[m[2]!]! * 1000;
}

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

/** The command. */
export default defineCommand({
  name: "prune",
  usage: "prune [--unused-for duration] [--keep-locked ocipkg.lock]... [--dry-run] [--json]",
  summary: "Remove what nothing uses from the local store (and unused or unlocked images)",
  positionals: [0, 0],
  options: {
    "unused-for": {
      type: "string",
      value: "duration",
      description:
        "also remove images not used (by get or link) for this long: 30d, 12h, 2w; uses are recorded to the hour",
      parse: parseDuration,
    },
    "keep-locked": {
      type: "string",
      multiple: true,
      value: "ocipkg.lock",
      description:
        "also remove images these lock files do not hold (by reference or digest); with --unused-for, only those also unused",
    },
    "dry-run": { type: "boolean", description: "print what would be removed; remove nothing" },
    ...jsonOption,
  },
  examples: [
    {
      command: "ocipkg prune",
      description:
        "remove version directories no image links to, temp directories of processes that are gone, records of what verified for images no longer there",
    },
    {
      command: "ocipkg prune --unused-for 30d --dry-run",
      description: "also list the images no get or link used for 30 days, and the bytes they hold",
    },
    {
      command: "ocipkg prune --keep-locked app/ocipkg.lock --keep-locked tool/ocipkg.lock",
      description: "also remove every image neither project's lock file holds",
    },
    {
      command: "ocipkg prune --unused-for 12h --keep-locked ocipkg.lock",
      description:
        "remove images that are both unused for 12 hours and not locked (each option keeps)",
    },
  ],
  async run(_args, opts) {
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
          ...(x.kind === "image"
            ? { platform: x.platform ? formatPlatform(x.platform) : null }
            : {}),
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
  },
});
