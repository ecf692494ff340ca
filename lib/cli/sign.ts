/**
 * `ocipkg sign`: sign an image with a cosign key.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption, registryHints, registryOptions } from "./shared.ts";

/** The command's table (its work: `sign_run.ts`). */
export default defineCommand({
  name: "sign",
  usage:
    "sign <image> --key <cosign.key> [-a key=value]... [--bundle | --referrers] [--identity repo] [--json]",
  summary: "Sign an image as cosign does (a registry image, or a layout before it is pushed)",
  positionals: [1, 1],
  options: {
    key: {
      type: "string",
      value: "file",
      required: true,
      description: "the private key (cosign's encrypted PEM; password from COSIGN_PASSWORD)",
    },
    annotation: {
      type: "string",
      multiple: true,
      short: "a",
      value: "key=value",
      description: "add an annotation to the signed payload",
    },
    referrers: {
      type: "boolean",
      description: "store the signature as an OCI 1.1 referrer, not under the sha256-<hex>.sig tag",
    },
    bundle: {
      type: "boolean",
      description:
        "write a Sigstore bundle referrer (cosign v3's format) instead of a legacy signature",
    },
    identity: {
      type: "string",
      value: "registry/repository",
      description: "the payload's docker-reference (default: the image's repository)",
    },
    ...jsonOption,
    ...registryOptions,
  },
  examples: [
    {
      command: "ocipkg sign ghcr.io/org/libfoo:1.2 --key cosign.key",
      description: "sign the manifest the tag names; the signature goes under sha256-<hex>.sig",
    },
    {
      command: "ocipkg sign libfoo.tar --key cosign.key -a build=42 && ocipkg push libfoo.tar",
      description: "sign a package before it is pushed (push carries the signature along)",
    },
    {
      command: "ocipkg sign localhost:5000/libfoo:1 --key cosign.key --referrers",
      description: "store it as a referrer (the referrers API, or the sha256-<hex> index)",
    },
    {
      command: "ocipkg sign localhost:5000/libfoo:1 --key cosign.key --bundle",
      description:
        "a keyed Sigstore bundle (no log entry): cosign v3 reads it with --insecure-ignore-tlog",
    },
  ],
  hints: registryHints,
});
