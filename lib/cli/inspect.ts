/**
 * `ocipkg inspect`: an image's name, digest, annotations, platforms and files.
 *
 * @module
 */
import { type ImageInfo, inspectAny, resolveLocation } from "../../mod.ts";
import { formatPlatform } from "../oci/mod.ts";
import { defineCommand } from "./options.ts";
import { out } from "./output.ts";
import { jsonOption, registryHints, registryOptions, remote } from "./shared.ts";

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

/** The command. */
export default defineCommand({
  name: "inspect",
  usage: "inspect <image|archive|dir|oci:dir[:ref]|oci-archive:file[:ref]|-> [--json] [--no-files]",
  summary: "Show an image's name, digest, artifact type, annotations, platforms and files",
  positionals: [1, 1],
  options: {
    ...jsonOption,
    "no-files": { type: "boolean", description: "do not list the files of each layer" },
    ...registryOptions,
  },
  examples: [
    { command: "ocipkg inspect libfoo.tar", description: "show what an oci-archive holds" },
    {
      command: "ocipkg inspect ghcr.io/org/libfoo:1.0 --json --no-files",
      description: "describe an image on a registry as JSON, without file lists",
    },
    {
      command: "ocipkg inspect - < libfoo.tar",
      description: "show an oci-archive read from stdin",
    },
  ],
  hints: registryHints,
  async run([location], opts) {
    const r = await inspectAny(await resolveLocation(location!), {
      files: !opts.noFiles,
      ...remote(opts),
    });
    if (opts.json) out(JSON.stringify(r, null, 2));
    else printInspect(r);
  },
});
