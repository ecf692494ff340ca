/**
 * `ocipkg load`: an image from an oci-archive or oci-dir into the local store.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { lockOptions, overwriteOption, pickPlatform, progressOptions } from "./shared.ts";
import { limitOptions, verifyOption } from "./install_options.ts";

/** The command's table (its work: `load_run.ts`). */
export default defineCommand({
  name: "load",
  usage:
    "load <archive|dir|-> [-f] [-t name] [--platform os/arch] [--lock path] [--locked] [--verify-key pub... | --certificate-identity id --certificate-oidc-issuer url] [--max-bytes n] [--max-entries n] [--max-ratio n]",
  summary: "Load an image from an oci-archive/oci-dir into the local store",
  positionals: [1, 1],
  options: {
    ...overwriteOption,
    tag: {
      type: "string",
      short: "t",
      value: "name",
      default: "the layout's ref name",
      description: "the name to install the image under",
    },
    platform: pickPlatform,
    ...verifyOption,
    ...lockOptions,
    ...limitOptions,
    ...progressOptions,
  },
  examples: [
    {
      command: "ocipkg load libfoo.tar",
      description: "install an oci-archive; prints its directory",
    },
    {
      command: "ocipkg load oci:./layout:v1 -t example.com/libfoo:1 -f",
      description: "install the image tagged v1 of an oci-dir under another name, replacing it",
    },
    {
      command: "ocipkg pull ghcr.io/org/libfoo:1.0 -o - | ocipkg load -",
      description: "install an oci-archive read from stdin (spooled to a temp file, removed after)",
    },
  ],
  hints: [{ when: /has no ref name/, add: "; give one with -t" }],
});
