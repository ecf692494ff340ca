/**
 * The work of `ocipkg inspect`: an image's name, digest, annotations,
 * platforms and files. Its table (usage, options, examples) is `inspect.ts`;
 * this module is loaded only when the command runs.
 *
 * @module
 */
import { type ImageInfo, inspectAny } from "../ops/inspect.ts";
import { resolveLocation } from "../transport/location.ts";
import { formatPlatform } from "../oci/platform.ts";
import { implement } from "./options.ts";
import { out } from "./output.ts";
import { remote } from "./shared.ts";
import command from "./inspect.ts";

function printInspect(i: ImageInfo): void {
  out(`name:        ${i.name ?? "(none)"}`);
  out(`digest:      ${i.digest}`);
  out(`media type:  ${i.mediaType}`);
  for (const m of i.manifests) {
    if (i.manifests.length > 1 || m.digest !== i.digest) {
      out(`manifest ${m.digest} (${formatPlatform(m.platform)})`);
    }
    out(`  format:        ${m.format}`);
    out(`  artifact type: ${m.artifactType ?? "(none)"}`);
    for (const [k, v] of Object.entries(m.annotations)) out(`  annotation:    ${k}=${v}`);
    for (const l of m.layers) {
      out(`  layer ${l.digest} (${l.mediaType}, ${l.size} bytes)`);
      for (const f of l.files) out(`    ${f}`);
    }
  }
}

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([location], opts) => {
  const r = await inspectAny(await resolveLocation(location!), {
    files: !opts.noFiles,
    ...remote(opts),
  });
  if (opts.json) out(JSON.stringify(r, null, 2));
  else printInspect(r);
});
