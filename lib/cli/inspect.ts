/**
 * `ocipkg inspect`: an image's name, digest, annotations, platforms and files.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption, registryHints, registryOptions } from "./shared.ts";

/** The command's table (its work: `inspect_run.ts`). */
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
});
