/**
 * The work of `ocipkg tags`: the tags of a repository, printed page by page.
 * Its table (usage, options, examples) is `tags.ts`; this module is loaded
 * only when the command runs.
 *
 * @module
 */
import { listTagPages } from "../transport/registry/tags.ts";
import { implement } from "./options.ts";
import { write } from "./output.ts";
import { remote } from "./shared.ts";
import command from "./tags.ts";

// created on first use: setting up ICU costs ≈ 6 ms, paid by every command if done at load
let collatorCache: Intl.Collator | undefined;

function collator(): Intl.Collator {
  return collatorCache ??= new Intl.Collator("en", { numeric: true });
}

/** Tags in version order: numbers compare as numbers, a release after its pre-releases. */
function byVersion(a: string, b: string): number {
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

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([repository], opts) => {
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
});
