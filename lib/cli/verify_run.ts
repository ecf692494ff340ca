/**
 * The work of `ocipkg verify`: check an image's signatures — legacy cosign
 * signatures with a public key, Sigstore bundles (cosign v3) with a key or a
 * keyless identity. Its table (usage, options, examples) is `verify.ts`;
 * this module is loaded only when the command runs.
 *
 * @module
 */
import { resolveLocation } from "../transport/location.ts";
import { verifyReference } from "../sign/flow.ts";
import { identityFlags } from "./identity.ts";
import { implement } from "./options.ts";
import { out } from "./output.ts";
import { remote } from "./shared.ts";
import type { BundleSigner } from "../sign/mod.ts";
import command from "./verify.ts";

/** A bundle's signer, in one phrase. */
export function signerText(s: BundleSigner): string {
  return s.kind === "certificate"
    ? `${s.identity} (issuer ${s.issuer})`
    : `key ${s.path ?? ""} (${s.fingerprint})`;
}

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([image], opts) => {
  const id = identityFlags(opts, opts.key.length > 0, "--key", true);
  const r = await verifyReference(await resolveLocation(image!), {
    ...remote(opts),
    keys: opts.key,
    keysLabel: "--key",
    ...id,
  });
  if (opts.json) {
    out(JSON.stringify({
      image,
      digest: r.digest,
      key: r.key ?? null,
      fingerprint: r.fingerprint ?? null,
      signatures: r.signatures.map((s) => ({
        source: s.source,
        manifest: s.manifest.digest,
        layer: s.layer,
        payload: s.payloadDigest,
        dockerReference: s.dockerReference,
        annotations: s.annotations,
      })),
      bundles: r.bundles.map((b) => ({
        manifest: b.manifest.digest,
        bundle: b.mediaType,
        signer: b.signer,
        predicateType: b.predicateType ?? null,
        timestamps: b.timestamps.map((t) => ({ source: t.source, time: t.time.toISOString() })),
        tlogEntries: b.tlogEntries,
      })),
    }));
    return;
  }
  for (const s of r.signatures) {
    const from = s.source === "tag" ? "tag scheme" : "referrer";
    out(
      `Verified ${r.digest} with ${r.key}: ${from} signature ${s.manifest.digest} layer ${
        s.layer + 1
      }, docker-reference ${s.dockerReference}`,
    );
  }
  for (const b of r.bundles) {
    const log = b.tlogEntries[0];
    const logged = log ? `, logged in ${log.log ?? "a transparency log"} #${log.logIndex}` : "";
    out(
      `Verified ${r.digest}: Sigstore bundle ${b.manifest.digest} signed by ${
        signerText(b.signer)
      }${logged}`,
    );
  }
});
