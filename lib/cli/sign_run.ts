/**
 * The work of `ocipkg sign`: sign an image with a cosign key. Its table
 * (usage, options, examples) is `sign.ts`; this module is loaded only when
 * the command runs.
 *
 * @module
 */
import { resolveLocation } from "../transport/location.ts";
import { signReference } from "../sign/flow.ts";
import { implement } from "./options.ts";
import { info, out } from "./output.ts";
import { keyPassword } from "./password.ts";
import { annotations, remote } from "./shared.ts";
import command from "./sign.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([image], opts) => {
  const r = await signReference(await resolveLocation(image!), {
    ...remote(opts),
    key: opts.key,
    password: keyPassword(),
    annotations: annotations(opts.annotation),
    referrers: opts.referrers,
    bundle: opts.bundle,
    identity: opts.identity,
  });
  if (opts.json) {
    out(JSON.stringify({
      image,
      digest: r.digest,
      mode: r.mode,
      tag: r.tag ?? null,
      manifest: r.manifest.digest,
      ...(r.mode === "bundle"
        ? { bundle: r.bundle.digest, predicateType: r.predicateType }
        : { payload: r.payload.digest, signature: r.signature }),
      existed: r.existed,
    }));
    return;
  }
  const where = r.tag ? `${r.mode === "tag" ? "tag" : "referrers index"} ${r.tag}` : "referrer";
  info(r.existed ? `already signed (${where})` : `signed ${r.digest} (${where})`);
  out(r.manifest.digest);
});
