/**
 * `ocipkg pack`: a directory into an ocipkg artifact.
 *
 * @module
 */
import { packDirectory } from "../../mod.ts";
import { defineCommand } from "./options.ts";
import { packing, packOptions, platformOption, reportPacked } from "./shared.ts";

/** The command. */
export default defineCommand({
  name: "pack",
  usage:
    "pack <dir> <output> [-t name] [--platform os/arch|triple] [--annotation k=v]... [--format archive|dir] [--level 0-9]",
  summary: "Pack a directory into an ocipkg artifact (oci-archive or oci-dir)",
  positionals: [2, 2],
  options: {
    tag: {
      type: "string",
      short: "t",
      value: "name",
      default: "localhost/<dir name>:latest",
      description: "the image name recorded in the layout",
    },
    platform: platformOption("the platform the files are built for", "none: any platform"),
    ...packOptions,
  },
  examples: [
    {
      command: "ocipkg pack ./out libfoo.tar -t ghcr.io/org/libfoo:1.0",
      description: "pack ./out into the oci-archive libfoo.tar, named ghcr.io/org/libfoo:1.0",
    },
    {
      command:
        "ocipkg pack ./out ./libfoo-arm64 --format dir --platform aarch64-unknown-linux-gnu -t ghcr.io/org/libfoo:1.0",
      description: "pack into an oci-dir for one platform (push several such to make one index)",
    },
  ],
  async run([dir, output], opts) {
    const r = await packDirectory(dir!, output!, packing(opts));
    reportPacked(r, `packed ${dir}`, opts.tag);
  },
});
