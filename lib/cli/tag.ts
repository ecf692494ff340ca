/**
 * `ocipkg tag`: more tags for an image, without uploading anything again.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption, registryHints, registryOptions } from "./shared.ts";

/** The command's table (its work: `tag_run.ts`). */
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
});
