/**
 * The work of `ocipkg verify-blob`: check a file's Sigstore bundle (cosign
 * v3's `sign-blob --bundle`), keyless or with a key, as `cosign verify-blob`
 * does. Its table (usage, options, examples) is `verify_blob.ts`; this
 * module is loaded only when the command runs.
 *
 * @module
 */
import { verifyBlob } from "../sign/blob.ts";
import { identityFlags } from "./identity.ts";
import { implement } from "./options.ts";
import { out } from "./output.ts";
import command from "./verify_blob.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([file], opts) => {
  const id = identityFlags(opts, opts.key !== undefined, "--key", true);
  const r = await verifyBlob(file!, {
    bundle: opts.bundle,
    key: opts.key,
    keyLabel: "--key",
    ...id,
  });
  if (opts.json) {
    out(JSON.stringify({
      file: r.file,
      digest: r.digest,
      bundle: r.mediaType,
      signer: r.signer,
      predicateType: r.dsse?.statement.predicateType,
      timestamps: r.timestamps.map((t) => ({ source: t.source, time: t.time.toISOString() })),
      tlogEntries: r.tlogEntries,
    }));
    return;
  }
  const who = r.signer.kind === "certificate"
    ? `${r.signer.identity} (issuer ${r.signer.issuer})`
    : `key ${r.signer.path ?? ""} (${r.signer.fingerprint})`;
  const what = r.dsse ? `, in-toto ${r.dsse.statement.predicateType}` : "";
  const log = r.tlogEntries[0];
  const logged = log ? `, logged in ${log.log ?? "a transparency log"} #${log.logIndex}` : "";
  out(`Verified ${file} (${r.digest}): signed by ${who}${what}${logged}`);
});
