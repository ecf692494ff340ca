/**
 * The work of `ocipkg attest`: attach an in-toto attestation to an image,
 * signed with a cosign key, in a Sigstore bundle (cosign v3's `attest
 * --key`). Its table (usage, options, examples) is `attest.ts`; this module
 * is loaded only when the command runs.
 *
 * @module
 */
import { resolveLocation } from "../transport/location.ts";
import { attestReference } from "../sign/attest.ts";
import { implement } from "./options.ts";
import { info, out } from "./output.ts";
import { keyPassword } from "./password.ts";
import { remote } from "./shared.ts";
import command from "./attest.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([image], opts) => {
  const r = await attestReference(await resolveLocation(image!), {
    ...remote(opts),
    key: opts.key,
    password: keyPassword(),
    predicate: opts.predicate,
    type: opts.type,
  });
  if (opts.json) {
    out(JSON.stringify({
      image,
      digest: r.digest,
      manifest: r.manifest.digest,
      bundle: r.bundle.digest,
      predicateType: r.predicateType,
      tag: r.tag ?? null,
    }));
    return;
  }
  info(
    `attested ${r.digest}: ${r.predicateType} (${r.tag ? `referrers index ${r.tag}` : "referrer"})`,
  );
  out(r.manifest.digest);
});
