/**
 * `ocipkg verify`: check an image's cosign signatures with a public key.
 *
 * @module
 */
import { resolveLocation, UsageError, verifyReference } from "../../mod.ts";
import { defineCommand } from "./options.ts";
import { out } from "./output.ts";
import { jsonOption, registryHints, registryOptions, remote } from "./shared.ts";

/** The command. */
export default defineCommand({
  name: "verify",
  usage: "verify <image> --key <cosign.pub> [--key …] [--json]",
  summary:
    "Verify an image's cosign signatures (tag scheme and referrers); exit 1 when none verifies",
  positionals: [1, 1],
  options: {
    key: {
      type: "string",
      multiple: true,
      value: "file",
      description: "a public key (PEM); repeat it: one of them must verify",
    },
    ...jsonOption,
    ...registryOptions,
  },
  examples: [
    {
      command: "ocipkg verify ghcr.io/org/libfoo:1.2 --key cosign.pub",
      description: "prints what verified; exits 1 with the reason when nothing does",
    },
    {
      command: "ocipkg verify libfoo.tar --key cosign.pub --json",
      description: "verify a package file before it is loaded",
    },
  ],
  hints: [
    ...registryHints,
    { when: /^no signature of/, add: " (sign it with 'ocipkg sign' or cosign)" },
  ],
  async run([image], opts) {
    if (opts.key.length === 0) throw new UsageError("give the public key with --key <file>");
    const r = await verifyReference(await resolveLocation(image!), {
      ...remote(opts),
      keys: opts.key,
      keysLabel: "--key",
    });
    if (opts.json) {
      out(JSON.stringify({
        image,
        digest: r.digest,
        key: r.key,
        fingerprint: r.fingerprint,
        signatures: r.signatures.map((s) => ({
          source: s.source,
          manifest: s.manifest.digest,
          layer: s.layer,
          payload: s.payloadDigest,
          dockerReference: s.dockerReference,
          annotations: s.annotations,
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
  },
});
