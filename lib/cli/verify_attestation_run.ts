/**
 * The work of `ocipkg verify-attestation`: check the in-toto attestations of
 * a type attached to an image in Sigstore bundles (cosign v3, GitHub's
 * `actions/attest`), with a key or a keyless identity, and print their
 * predicates. Its table (usage, options, examples) is
 * `verify_attestation.ts`; this module is loaded only when the command runs.
 *
 * @module
 */
import { resolveLocation } from "../transport/location.ts";
import { verifyAttestationReference } from "../sign/attest.ts";
import { identityFlags } from "./identity.ts";
import { implement } from "./options.ts";
import { info, out } from "./output.ts";
import { remote } from "./shared.ts";
import { signerText } from "./verify_run.ts";
import command from "./verify_attestation.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([image], opts) => {
  const id = identityFlags(opts, opts.key.length > 0, "--key", true);
  const r = await verifyAttestationReference(await resolveLocation(image!), {
    ...remote(opts),
    keys: opts.key,
    keysLabel: "--key",
    ...id,
    type: opts.type,
  });
  if (opts.json) {
    out(JSON.stringify({
      image,
      digest: r.digest,
      attestations: r.attestations.map((a) => ({
        manifest: a.manifest.digest,
        predicateType: a.predicateType,
        signer: a.signer,
        subject: a.dsse?.subject,
        predicate: a.dsse?.statement.predicate ?? null,
        timestamps: a.timestamps.map((t) => ({ source: t.source, time: t.time.toISOString() })),
        tlogEntries: a.tlogEntries,
      })),
    }));
    return;
  }
  for (const a of r.attestations) {
    info(
      `Verified ${r.digest}: ${a.predicateType} attestation ${a.manifest.digest} signed by ${
        signerText(a.signer)
      }`,
    );
    out(JSON.stringify(a.dsse?.statement.predicate ?? null));
  }
});
