/**
 * `ocipkg tag`: more tags for an image, without uploading anything again.
 *
 * @module
 */
import { resolveLocation, tagImage } from "../../mod.ts";
import { defineCommand } from "./options.ts";
import { out } from "./output.ts";
import { jsonOption, registryHints, registryOptions, remote } from "./shared.ts";

/** The command. */
export default defineCommand({
  name: "tag",
  usage: "tag <image> <new-tag>... [--json]",
  summary: "Point more tags at an image (no blob is uploaded again)",
  positionals: [2, Infinity],
  options: { ...jsonOption, ...registryOptions },
  examples: [
    {
      command: "ocipkg tag ghcr.io/org/libfoo:1.0.3 1.0 latest",
      description: "also tag 1.0.3 as 1.0 and latest (the manifest is put again; blobs stay)",
    },
    {
      command: "ocipkg tag oci:./layout:example.com/foo:1 example.com/foo:stable",
      description: "add a ref name in an oci-dir",
    },
  ],
  hints: registryHints,
  async run([image, ...tags], opts) {
    const digest = await tagImage(await resolveLocation(image!), tags, remote(opts));
    out(opts.json ? JSON.stringify({ image, tags, digest }) : digest);
  },
});
