/**
 * `ocipkg tags`: the tags of a repository, printed page by page.
 *
 * @module
 */
import { listTagPages } from "../transport/mod.ts";
import { defineCommand } from "./options.ts";
import { write } from "./output.ts";
import { jsonOption, registryHints, registryOptions, remote } from "./shared.ts";

// created on first use: setting up ICU costs ≈ 6 ms, paid by every command if done at load
let collatorCache: Intl.Collator | undefined;
function collator(): Intl.Collator {
  return collatorCache ??= new Intl.Collator("en", { numeric: true });
}

/** Tags in version order: numbers compare as numbers, a release after its pre-releases. */
export function byVersion(a: string, b: string): number {
  const [ma, pa] = splitPre(a), [mb, pb] = splitPre(b);
  const main = collator().compare(ma, mb);
  if (main !== 0) return main;
  if (pa === pb) return 0;
  if (pa === undefined) return 1; // 1.0 after 1.0-rc1
  if (pb === undefined) return -1;
  return collator().compare(pa, pb);
}

function splitPre(tag: string): [string, string | undefined] {
  const m = /^(v?\d+(?:\.\d+)*)-(.+)$/.exec(tag);
  return m ? [m[1]!, m[2]!] : [tag, undefined];
}

/** The command. */
export default defineCommand({
  name: "tags",
  usage: "tags <repository> [--json]",
  summary: "List the tags of a repository (a registry's repositories: catalog)",
  positionals: [1, 1],
  options: { ...jsonOption, ...registryOptions },
  examples: [
    {
      command: "ocipkg tags ghcr.io/org/libfoo",
      description: "one tag a line, in version order (1.9 before 1.10, 1.0-rc1 before 1.0)",
    },
    {
      command: "ocipkg tags localhost:5000/libfoo --json",
      description: "a JSON array, in the registry's order",
    },
  ],
  hints: registryHints,
  async run([repository], opts) {
    const name = repository!; // a registry host alone is refused, pointing to 'catalog'
    if (opts.json) {
      // the registry's order, printed as pages arrive: memory stays at one page
      let first = true;
      await write("[");
      for await (const page of listTagPages(name, remote(opts))) {
        const items = page.map((t) => JSON.stringify(t)).join(",");
        if (items) await write(`${first ? "" : ","}${items}`);
        if (items) first = false;
      }
      await write("]\n");
      return;
    }
    // for people: sorted by version (1.9 before 1.10), within the listing caps
    const all: string[] = [];
    for await (const page of listTagPages(name, remote(opts))) all.push(...page);
    all.sort(byVersion);
    if (all.length) await write(`${all.join("\n")}\n`);
  },
});
