/**
 * `ocipkg get`: pull an image into the local store (cached).
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import {
  lockOptions,
  overwriteOption,
  pickPlatform,
  progressOptions,
  registryHints,
  registryOptions,
} from "./shared.ts";
import { limitOptions, verifyOption } from "./install_options.ts";

/** The command's table (its work: `get_run.ts`). */
export default defineCommand({
  name: "get",
  usage:
    "get <image> [-f] [--refresh] [--platform os/arch] [--lock path] [--locked] [--verify-key pub... | --certificate-identity id --certificate-oidc-issuer url] [--plain-http] [--ca-file pem] [--max-bytes n] [--max-entries n] [--max-ratio n]",
  summary: "Pull an image into the local store, verify and extract it (cached)",
  positionals: [1, 1],
  options: {
    ...overwriteOption,
    refresh: {
      type: "boolean",
      description: "ask the registry whether a tag moved, even if the store holds it",
    },
    platform: pickPlatform,
    ...verifyOption,
    ...lockOptions,
    ...registryOptions,
    ...limitOptions,
    ...progressOptions,
  },
  examples: [
    {
      command: "ocipkg get ghcr.io/org/libfoo:1.0",
      description: "install an image (no request if the store holds it); prints its directory",
    },
    {
      command: "OCIPKG_LOCKED=1 ocipkg get ghcr.io/org/libfoo:1.0",
      description: "in CI: install exactly what ocipkg.lock pins; an image it lacks fails",
    },
    {
      command: "ocipkg get localhost:5000/libfoo:1.0 --plain-http --platform linux/arm64",
      description: "install the arm64 image of a multi-platform index from a plain-http registry",
    },
  ],
  hints: registryHints,
});
