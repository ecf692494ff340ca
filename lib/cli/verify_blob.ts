/**
 * `ocipkg verify-blob`: check a file's Sigstore bundle (cosign v3's
 * `sign-blob --bundle`), keyless or with a key, as `cosign verify-blob` does.
 *
 * @module
 */
import { bundleHints, identityOptions } from "./identity.ts";
import { defineCommand } from "./options.ts";
import { jsonOption } from "./shared.ts";

/** The command's table (its work: `verify_blob_run.ts`). */
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
    ...identityOptions,
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
  hints: bundleHints,
});
