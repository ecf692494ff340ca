/**
 * `ocipkg copy`: an image between registries, oci-dirs and oci-archives.
 *
 * @module
 */
import { copyImage, resolveLocation } from "../../mod.ts";
import { defineCommand } from "./options.ts";
import { out } from "./output.ts";
import { progressOptions, withProgress } from "./progress.ts";
import {
  platformSelection,
  registryHints,
  registryOptions,
  remote,
  selectedPlatform,
  signaturesOption,
} from "./shared.ts";

/** The command. */
export default defineCommand({
  name: "copy",
  usage: "copy <src> <dst>  (image, docker://image, oci:dir[:ref], oci-archive:file[:ref])",
  summary: "Copy an image between registries, oci-dirs and oci-archives",
  positionals: [2, 2],
  options: { ...platformSelection, ...signaturesOption, ...registryOptions, ...progressOptions },
  examples: [
    {
      command: "ocipkg copy oci-archive:libfoo.tar localhost:5000/libfoo:1.0",
      description: "push an oci-archive to a registry",
    },
    {
      command: "ocipkg copy docker://ghcr.io/org/libfoo:1.0 oci:./mirror:1.0",
      description: "copy an image from a registry into an oci-dir, tagged 1.0",
    },
  ],
  hints: registryHints,
  async run([src, dst], opts) {
    // both arguments through the one resolver, here at the edge
    const from = await resolveLocation(src!);
    const to = await resolveLocation(dst!);
    const digest = await withProgress(
      opts,
      src!,
      (p) =>
        copyImage(from, to, {
          ...remote(opts),
          ...p,
          platform: selectedPlatform(opts),
          includeSignatures: opts.includeSignatures || undefined,
        }),
      () => "copied",
    );
    out(opts.json ? JSON.stringify({ source: src, destination: dst, digest }) : digest);
  },
});
