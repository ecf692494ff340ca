/**
 * `ocipkg delete`: delete an image (a manifest, and the tags pointing to
 * it) or a tag alone from a registry.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption, registryHints, registryOptions } from "./shared.ts";

/** The command's table (its work: `delete_run.ts`). */
export default defineCommand({
  name: "delete",
  usage: "delete <image> [--force] [--tag-only] [--dry-run] [--json]",
  summary:
    "Delete an image's manifest (and the tags pointing to it), or a tag alone, from a registry",
  positionals: [1, 1],
  options: {
    force: {
      type: "boolean",
      short: "f",
      description: "delete by tag even though other tags point to the same manifest (they go too)",
    },
    "tag-only": {
      type: "boolean",
      description:
        "delete the tag alone, not its manifest (the OCI spec allows it; docker-registry 2.x, Docker Hub do not)",
    },
    "dry-run": {
      type: "boolean",
      description:
        "say what would be deleted (the manifest and every tag pointing to it); delete nothing",
    },
    ...jsonOption,
    ...registryOptions,
  },
  examples: [
    {
      command: "ocipkg delete localhost:5000/org/libfoo:1.0-rc1",
      description:
        "resolve the tag, delete its manifest; refused (nothing deleted) when other tags point to it",
    },
    {
      command: "ocipkg delete localhost:5000/org/libfoo@sha256:… --dry-run",
      description: "list the tags deleting that manifest would remove, and stop",
    },
    {
      command: "ocipkg delete localhost:5000/org/libfoo:nightly --tag-only",
      description:
        "remove one tag, keeping the manifest and its other tags (ocipkg serve, OCI 1.1 registries)",
    },
  ],
  hints: [
    {
      when: /which also removes tags? |which are not known/,
      add: " (give --force to delete them too, or --tag-only to remove only this tag)",
    },
    ...registryHints,
  ],
});
