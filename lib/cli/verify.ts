/**
 * `ocipkg verify`: check an image's signatures — legacy cosign signatures
 * with a public key, Sigstore bundles (cosign v3) with a key or a keyless
 * identity.
 *
 * @module
 */
import { resolveLocation, verifyReference } from "../../mod.ts";
import { bundleHints, identityFlags, identityOptions } from "./identity.ts";
import { defineCommand } from "./options.ts";
import { out } from "./output.ts";
import { jsonOption, registryHints, registryOptions, remote } from "./shared.ts";
import type { BundleSigner } from "../sign/mod.ts";

/** A bundle's signer, in one phrase. */
export function signerText(s: BundleSigner): string {
  return s.kind === "certificate"
    ? `${s.identity} (issuer ${s.issuer})`
    : `key ${s.path ?? ""} (${s.fingerprint})`;
}

/** The command. */
export default defineCommand({
  name: "verify",
  usage: "verify <image> (--key <cosign.pub> [--key …] | --certificate-identity[-regexp] <id> " +
    "--certificate-oidc-issuer[-regexp] <url> [--trusted-root <root.json>]) [--json]",
  summary:
    "Verify an image's signatures (legacy .sig and referrers, Sigstore bundles); exit 1 when none verifies",
  positionals: [1, 1],
  options: {
    key: {
      type: "string",
      multiple: true,
      value: "file",
      description: "a public key (PEM); repeat it: one of them must verify",
    },
    ...identityOptions,
    ...jsonOption,
    ...registryOptions,
  },
  examples: [
    {
      command: "ocipkg verify ghcr.io/org/libfoo:1.2 --key cosign.pub",
      description: "prints what verified; exits 1 with the reason when nothing does",
    },
    {
      command: "ocipkg verify ghcr.io/org/libfoo:1.2 " +
        "--certificate-identity-regexp '^https://github\\.com/org/libfoo/\\.github/workflows/' " +
        "--certificate-oidc-issuer https://token.actions.githubusercontent.com",
      description: "a keyless signature (cosign v3 bundle) made by a workflow of org/libfoo",
    },
    {
      command: "ocipkg verify libfoo.tar --key cosign.pub --json",
      description: "verify a package file before it is loaded",
    },
  ],
  hints: [
    ...registryHints,
    ...bundleHints,
    {
      when: /^no (signature|Sigstore bundle signature) of/,
      add: " (sign it with 'ocipkg sign' or cosign)",
    },
  ],
  async run([image], opts) {
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
  },
});
