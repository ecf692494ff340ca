/**
 * The work of `ocipkg pull`: save an image from a registry as an oci-archive
 * or oci-dir. Its table (usage, options, examples) is `pull.ts`; this module
 * is loaded only when the command runs.
 *
 * @module
 */
import { imageName } from "../oci/reference.ts";
import { pullImage } from "../ops/transfer.ts";
import { type LayoutLocation, resolveLocation } from "../transport/location.ts";
import { implement } from "./options.ts";
import { out } from "./output.ts";
import { withProgress } from "./progress.ts";
import { remote, selectedPlatform } from "./shared.ts";
import command from "./pull.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([image], opts) => {
  const name = imageName(image!);
  const output = await resolveLocation(opts.output, {
    accept: "layout",
    format: opts.format,
  }) as LayoutLocation;
  const digest = await withProgress(
    opts,
    image!,
    (p) =>
      pullImage(name, output, {
        ...remote(opts),
        ...p,
        format: opts.format,
        platform: selectedPlatform(opts),
        includeSignatures: opts.includeSignatures || undefined,
      }),
    () => "pulled",
  );
  out(opts.json ? JSON.stringify({ image, digest, output: opts.output }) : digest);
});
