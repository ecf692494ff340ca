/**
 * The work of `ocipkg attach`: attach files to an image as an OCI 1.1
 * referrer. Its table (usage, options, examples) is `attach.ts`; this module
 * is loaded only when the command runs.
 *
 * @module
 */
import { openImage, resolveLocation } from "../transport/location.ts";
import { attachArtifact } from "../transport/referrers.ts";
import { implement } from "./options.ts";
import { info, out } from "./output.ts";
import { annotations, remote } from "./shared.ts";
import command from "./attach.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([image, ...files], opts) => {
  const { target, subject } = await openImage(await resolveLocation(image!), {
    ...remote(opts),
    write: true,
  });
  let r;
  try {
    r = await attachArtifact(target, subject, files, {
      artifactType: opts.artifactType,
      mediaType: opts.mediaType,
      annotations: annotations(opts.annotation),
    });
    await target.close();
  } catch (e) {
    await target.abort().catch(() => {});
    throw e;
  }
  if (opts.json) {
    out(JSON.stringify({
      image,
      subject: subject.digest,
      digest: r.manifest.digest,
      fallbackTag: r.fallbackTag ?? null,
    }));
    return;
  }
  info(`attached to ${subject.digest}${r.fallbackTag ? ` (listed in ${r.fallbackTag})` : ""}`);
  out(r.manifest.digest);
});
