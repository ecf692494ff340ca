/**
 * `ocipkg copy`: an image between registries, oci-dirs and oci-archives. Each
 * side may have its own connection settings and credentials (`--from-…`,
 * `--to-…`, as ORAS has them); `--plain-http` and `--ca-file` apply to both,
 * and the config file's `registries` entries where no flag is given.
 *
 * @module
 */
import { defineCommand, optionGroup } from "./options.ts";
import {
  platformSelection,
  progressOptions,
  registryHints,
  registryOptions,
  signaturesOption,
} from "./shared.ts";

/** `--from-…`: the source's own settings. */
const fromOptions = optionGroup({
  "from-plain-http": { type: "boolean", description: "talk http, not https, to the source" },
  "from-ca-file": {
    type: "string",
    value: "pem",
    description: "trust the CA (or self-signed certificate) in this PEM file for the source",
  },
  "from-username": {
    type: "string",
    value: "user",
    description: "the user at the source registry (with --from-password-stdin)",
  },
  "from-password-stdin": {
    type: "boolean",
    description: "read the password for the source registry from stdin",
  },
});

/** `--to-…`: the destination's own settings. */
const toOptions = optionGroup({
  "to-plain-http": { type: "boolean", description: "talk http, not https, to the destination" },
  "to-ca-file": {
    type: "string",
    value: "pem",
    description: "trust the CA (or self-signed certificate) in this PEM file for the destination",
  },
  "to-username": {
    type: "string",
    value: "user",
    description: "the user at the destination registry (with --to-password-stdin)",
  },
  "to-password-stdin": {
    type: "boolean",
    description: "read the password for the destination registry from stdin",
  },
});

/** The command's table (its work: `copy_run.ts`). */
export default defineCommand({
  name: "copy",
  usage: "copy <src> <dst>  (image, docker://image, oci:dir[:ref], oci-archive:file[:ref])",
  summary: "Copy an image between registries, oci-dirs and oci-archives",
  positionals: [2, 2],
  options: {
    ...platformSelection,
    ...signaturesOption,
    ...registryOptions,
    ...fromOptions,
    ...toOptions,
    ...progressOptions,
  },
  examples: [
    {
      command: "ocipkg copy oci-archive:libfoo.tar localhost:5000/libfoo:1.0",
      description: "push an oci-archive to a registry",
    },
    {
      command: "ocipkg copy docker://ghcr.io/org/libfoo:1.0 oci:./mirror:1.0",
      description: "copy an image from a registry into an oci-dir, tagged 1.0",
    },
    {
      command:
        "ocipkg copy localhost:5000/libfoo:1.0 registry.internal:5443/libfoo:1.0 --from-plain-http --to-ca-file ca.crt",
      description: "from a plain-http registry to one with a private CA",
    },
    {
      command:
        'echo "$TOKEN" | ocipkg copy ghcr.io/org/libfoo:1.0 registry.internal/libfoo:1.0 --to-username ci --to-password-stdin',
      description: "log in to the destination for this copy only",
    },
  ],
  hints: registryHints,
});
