/**
 * `ocipkg runnable`: a container image running an executable.
 *
 * @module
 */
import { basename } from "../util/path.ts";
import { formatPlatform } from "../oci/mod.ts";
import { buildRunnable } from "../native/mod.ts";
import { defineCommand } from "./options.ts";
import { info, out } from "./output.ts";
import { annotations, artifactOptions, platformOption } from "./shared.ts";

/** The command. */
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
  async run([exe], opts) {
    const r = await buildRunnable(exe!, opts.output ?? `${basename(exe!)}.tar`, {
      name: opts.tag,
      platform: opts.platform,
      args: opts.arg,
      env: opts.env,
      annotations: annotations(opts.annotation),
      format: opts.format,
    });
    if (r.binary.dynamic) {
      info(
        `warning: '${exe}' is dynamically linked; it will not run in an image without its loader and libraries`,
      );
    }
    out(`${r.name} ${r.digest}`);
    info(`wrote ${r.output} (${formatPlatform(r.platform)}, ${r.binary.format})`);
  },
});
