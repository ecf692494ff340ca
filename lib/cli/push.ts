/**
 * `ocipkg push`: oci-archives/oci-dirs to a registry.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { progressOptions, registryHints, registryOptions } from "./shared.ts";

/** The command's table (its work: `push_run.ts`). */
export default defineCommand({
  name: "push",
  usage: "push <layout>... [image | -t image] [--plain-http] [--ca-file pem] [--concurrency n]",
  summary: "Push oci-archives/oci-dirs to a registry; several platform packages become one index",
  positionals: [1, Infinity],
  options: {
    tag: {
      type: "string",
      short: "t",
      value: "image",
      default: "the last argument when it names an image, else the layout's ref name",
      description: "the image to push to",
    },
    ...registryOptions,
    ...progressOptions,
  },
  examples: [
    {
      command: "ocipkg push libfoo.tar ghcr.io/org/libfoo:1.0",
      description: "push an oci-archive to a registry",
    },
    {
      command: "ocipkg push libfoo-amd64.tar libfoo-arm64.tar -t ghcr.io/org/libfoo:1.0",
      description: "push two platform packages as one multi-platform index",
    },
    {
      command: "ssh build-host cat libfoo.tar | ocipkg push - ghcr.io/org/libfoo:1.0",
      description: "push an oci-archive read from stdin",
    },
  ],
  hints: [{ when: /has no platform/, add: "; pack it with --platform" }, ...registryHints],
});
