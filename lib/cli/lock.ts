/**
 * `ocipkg lock`: pin the tags a project uses to digests in its `ocipkg.lock`,
 * re-resolve them (`--update`), or check them against their registries
 * (`--check`, for CI).
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { lockFileOption, registryHints, registryOptions } from "./shared.ts";
import { verifyOption } from "./install_options.ts";

/** The command's table (its work: `lock_run.ts`). */
export default defineCommand({
  name: "lock",
  usage:
    "lock [<image>...] [--update] [--check] [--platform os/arch]... [--lock path] [--verify-key pub]... [--plain-http] [--ca-file pem]",
  summary:
    "Pin tags to digests in the project's ocipkg.lock; --update moves them, --check compares",
  positionals: [0, Infinity],
  options: {
    update: {
      type: "boolean",
      description: "re-resolve the tags of locked images (every entry when no image is named)",
    },
    check: {
      type: "boolean",
      description:
        "compare each entry with its registry: one line per mismatch and exit 1 (for CI); nothing is written",
    },
    platform: {
      type: "string",
      multiple: true,
      value: "os/arch[/variant]|triple",
      description: "lock this platform's manifest too, besides the host's (repeatable)",
    },
    ...lockFileOption,
    ...verifyOption,
    ...registryOptions,
  },
  examples: [
    {
      command: "ocipkg lock",
      description:
        "create ./ocipkg.lock (empty): from now on get, link and the FFI loader record what they install",
    },
    {
      command: "ocipkg lock ghcr.io/org/libfoo:1.2 --platform linux/arm64",
      description: "pin the tag's digest, for this host and linux/arm64 (no layer is fetched)",
    },
    {
      command: "ocipkg lock --update ghcr.io/org/libfoo:1.2",
      description: "move the entry to what the tag names now (all entries without an image)",
    },
    {
      command: "ocipkg lock --check",
      description: "in CI: exit 1, one line each, when a locked tag moved on its registry",
    },
  ],
  hints: registryHints,
});
