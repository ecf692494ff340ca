/**
 * `ocipkg manifest`: an image's manifest as stored (or its descriptor);
 * `ocipkg manifest put`: push a manifest file as given.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption, registryHints, registryOptions } from "./shared.ts";

/** The command's table (its work: `manifest_run.ts`). */
export default defineCommand({
  name: "manifest",
  usage:
    "manifest <image> [--descriptor] [--json] | manifest put <image> <file|-> [--media-type type] [--json]",
  summary: "Print an image's manifest as stored (or its descriptor); 'put' pushes one as given",
  positionals: [1, 3],
  options: {
    descriptor: {
      type: "boolean",
      description: "print the manifest's descriptor (media type, digest, size) instead",
    },
    "media-type": {
      type: "string",
      value: "type",
      default: "the manifest's own mediaType",
      description: "put: the manifest's media type (an OCI or Docker manifest or index)",
    },
    ...jsonOption,
    ...registryOptions,
  },
  examples: [
    {
      command: "ocipkg manifest ghcr.io/org/libfoo:1.0",
      description: "the manifest (or index) byte for byte, verified against its digest",
    },
    {
      command: "ocipkg manifest ghcr.io/org/libfoo:1.0 --descriptor",
      description: "its descriptor as JSON: mediaType, digest, size (for only the digest: resolve)",
    },
    {
      command: "ocipkg manifest put localhost:5000/org/libfoo:1.0 manifest.json",
      description:
        "check a manifest file, push it (its blobs must be there) and tag it; prints its digest",
    },
    {
      command:
        "ocipkg manifest ghcr.io/org/libfoo:1.0 | ocipkg manifest put localhost:5000/org/libfoo:1.0 -",
      description: "the same manifest under another name, from stdin",
    },
  ],
  hints: [{ when: /has no mediaType field/, add: " with --media-type" }, ...registryHints],
});
