/**
 * The work of `ocipkg push`: oci-archives/oci-dirs to a registry. Its table
 * (usage, options, examples) is `push.ts`; this module is loaded only when
 * the command runs.
 *
 * @module
 */
import { imageName } from "../oci/reference.ts";
import { pushImage } from "../ops/transfer.ts";
import { type LayoutLocation, resolveLocation } from "../transport/location.ts";
import { implement } from "./options.ts";
import { out } from "./output.ts";
import { withProgress } from "./progress.ts";
import { remote } from "./shared.ts";
import command from "./push.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async (args, opts) => {
  let image = opts.tag === undefined ? undefined : imageName(opts.tag);
  let layouts = args;
  // the last argument is the image when the one resolver says it names one
  const last = args.length >= 2 ? await resolveLocation(args.at(-1)!) : undefined;
  if (!image && last?.kind === "registry") {
    image = last.name;
    layouts = args.slice(0, -1);
  }
  const from = await Promise.all(
    layouts.map((l) => resolveLocation(l, { accept: "layout" }) as Promise<LayoutLocation>),
  );
  const r = await withProgress(
    opts,
    image?.toString() ?? layouts.join(" "),
    (p) => pushImage(from, image, { ...remote(opts), ...p }),
    () => "pushed",
  );
  out(
    opts.json
      ? JSON.stringify({ name: String(r.name), digest: r.digest })
      : `${r.name} ${r.digest}`,
  );
});
