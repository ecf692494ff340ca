/**
 * `ocipkg runnable`: a container image running an executable.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { artifactOptions, platformOption } from "./shared.ts";

/** The command's table (its work: `runnable_run.ts`). */
export default defineCommand({
  name: "runnable",
  usage:
    "runnable <executable> [-o out.tar] [-t name] [--platform p] [--arg a]... [--env K=V]... [--format archive|dir]",
  summary: "Make a container image running an executable (platform read from the binary)",
  positionals: [1, 1],
  options: {
    output: {
      type: "string",
      short: "o",
      value: "out.tar",
      default: "<executable name>.tar",
      description: "the oci-archive or oci-dir to write",
    },
    tag: {
      type: "string",
      short: "t",
      value: "name",
      default: "localhost/<executable name>:latest",
      description: "the image name recorded in the layout",
    },
    platform: platformOption("the executable's platform", "read from the binary"),
    arg: {
      type: "string",
      multiple: true,
      value: "a",
      description: "an argument the image passes to the executable",
    },
    env: {
      type: "string",
      multiple: true,
      value: "K=V",
      description: "an environment variable of the image (default: PATH=/)",
    },
    ...artifactOptions,
  },
  examples: [
    {
      command: "ocipkg runnable ./hello -t ghcr.io/org/hello:1 --arg world",
      description: "write hello.tar, an image running `hello world`",
    },
  ],
  hints: [{ when: /holds several platforms/, add: "; give --platform" }],
});
