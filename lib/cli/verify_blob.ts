/**
 * `ocipkg verify-blob`: check a file's Sigstore bundle (cosign v3's
 * `sign-blob --bundle`), keyless or with a key, as `cosign verify-blob` does.
 *
 * @module
 */
import { UsageError, verifyBlob } from "../../mod.ts";
import { defineCommand } from "./options.ts";
import { out } from "./output.ts";
import { jsonOption } from "./shared.ts";

/** The command. */
export default defineCommand({
  name: "verify-blob",
  usage: "verify-blob <file> --bundle <file.sigstore.json> " +
    "(--key <cosign.pub> | --certificate-identity[-regexp] <id> " +
    "--certificate-oidc-issuer[-regexp] <url>) [--trusted-root <root.json>] [--json]",
  summary:
    "Verify a file's Sigstore bundle (keyless or keyed, offline); exit 1 with the reason when it does not verify",
  positionals: [1, 1],
  options: {
    bundle: {
      type: "string",
      value: "file",
      required: true,
      description: "the Sigstore bundle (cosign sign-blob --bundle)",
    },
    key: {
      type: "string",
      value: "file",
      description: "the public key (PEM) of a bundle signed with a key",
    },
    "certificate-identity": {
      type: "string",
      value: "id",
      description: "the signing certificate's identity, exactly (a workflow URI, an email)",
    },
    "certificate-identity-regexp": {
      type: "string",
      value: "regexp",
      description: "or a regular expression it must match (anywhere: anchor it with ^…$)",
    },
    "certificate-oidc-issuer": {
      type: "string",
      value: "url",
      description: "the certificate's OIDC issuer, exactly",
    },
    "certificate-oidc-issuer-regexp": {
      type: "string",
      value: "regexp",
      description: "or a regular expression it must match",
    },
    "trusted-root": {
      type: "string",
      value: "file",
      description: "a Sigstore trusted root (JSON)",
      default: "the public-good root shipped with ocipkg",
    },
    ...jsonOption,
  },
  examples: [
    {
      command: "ocipkg verify-blob ocipkg-linux-x64 --bundle ocipkg-linux-x64.sigstore.json " +
        "--certificate-identity https://github.com/org/repo/.github/workflows/release.yml@refs/tags/v1.2 " +
        "--certificate-oidc-issuer https://token.actions.githubusercontent.com",
      description: "a keyless signature made in a GitHub Actions release workflow",
    },
    {
      command: "ocipkg verify-blob libfoo.tar.gz --bundle libfoo.tar.gz.sigstore.json " +
        "--certificate-identity-regexp '^https://github\\.com/org/repo/' " +
        "--certificate-oidc-issuer https://token.actions.githubusercontent.com",
      description: "any workflow of one repository",
    },
    {
      command: "ocipkg verify-blob libfoo.tar.gz --bundle libfoo.sigstore.json --key cosign.pub",
      description: "a bundle signed with 'cosign sign-blob --key'",
    },
  ],
  hints: [
    {
      when: /is signed with a key, not a certificate/,
      add: " (give --key)",
    },
    {
      when: /is signed with a certificate \(keyless\), not a key/,
      add: " (give --certificate-identity and --certificate-oidc-issuer)",
    },
    {
      when: /does not verify: .*(certificate chain|timestamp|checkpoint|inclusion)/,
      add: " (if it comes from another Sigstore instance, give that instance's --trusted-root)",
    },
  ],
  async run([file], opts) {
    const identity = opts.certificateIdentity ?? opts.certificateIdentityRegexp;
    const issuer = opts.certificateOidcIssuer ?? opts.certificateOidcIssuerRegexp;
    const flag = (exact: string | undefined, regexp: string | undefined, name: string) => {
      if (exact !== undefined && regexp !== undefined) {
        throw new UsageError(`give --${name} or --${name}-regexp, not both`);
      }
    };
    flag(opts.certificateIdentity, opts.certificateIdentityRegexp, "certificate-identity");
    flag(opts.certificateOidcIssuer, opts.certificateOidcIssuerRegexp, "certificate-oidc-issuer");
    if (opts.key !== undefined && (identity !== undefined || issuer !== undefined)) {
      throw new UsageError("give --key or --certificate-identity, not both");
    }
    if (opts.key === undefined && identity === undefined) {
      throw new UsageError(
        "give --key <cosign.pub>, or --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]",
      );
    }
    if (opts.key === undefined && issuer === undefined) {
      throw new UsageError(
        "give the OIDC issuer: --certificate-oidc-issuer or --certificate-oidc-issuer-regexp",
      );
    }
    const r = await verifyBlob(file!, {
      bundle: opts.bundle,
      key: opts.key,
      keyLabel: "--key",
      identity: opts.certificateIdentity,
      identityRegexp: opts.certificateIdentityRegexp,
      issuer: opts.certificateOidcIssuer,
      issuerRegexp: opts.certificateOidcIssuerRegexp,
      trustedRoot: opts.trustedRoot,
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
  },
});
