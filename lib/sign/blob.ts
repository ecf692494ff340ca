/**
 * `verify-blob` by file names, as the CLI does it: read the artifact, the
 * bundle, the key and the trusted root, then {@link verifyBundle}.
 *
 * @module
 */
import { fsError, OcipkgError, UsageError } from "../util/errors.ts";
import { resolve } from "../util/path.ts";
import { nodeCrypto } from "../util/lazy_node.ts";
import { readBundle } from "./bundle.ts";
import { type BundlePolicy, type VerifiedBundle, verifyBundle } from "./bundle_verify.ts";
import type { IdentityPolicy } from "./signers.ts";
import { readPublicKeyFile } from "./keys.ts";
import { readTrustedRoot } from "./trusted_root.ts";

/** Options of {@link verifyBlob}: the bundle, and a key or an identity and issuer. */
export interface VerifyBlobOptions extends IdentityPolicy {
  /** The Sigstore bundle file (`cosign sign-blob --bundle`). */
  bundle: string;
  /** A public key file (PEM), for a bundle signed with a key. */
  key?: string;
  /** A trusted root file; default the Sigstore public-good root shipped with ocipkg. */
  trustedRoot?: string;
  /** Names `key` in messages; default `key option` (the CLI passes `--key`). */
  keyLabel?: string;
}

/** What {@link verifyBlob} verified: {@link VerifiedBundle}, with the file. */
export interface VerifiedBlob extends VerifiedBundle {
  /** The artifact (absolute path). */
  file: string;
}

/** The artifact's bytes: a regular file only (a fifo or a device would never end). */
async function readArtifact(path: string): Promise<Uint8Array> {
  try {
    const st = await Deno.stat(path);
    if (!st.isFile) throw new OcipkgError(`artifact '${path}' is not a regular file`);
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof OcipkgError) throw e;
    throw fsError(e, "artifact", path);
  }
}

/** The artifact's SHA-256 and SHA-512 digests, read as a stream: a regular file only. */
async function hashArtifact(path: string): Promise<{ digest: string; sha512: string }> {
  try {
    const st = await Deno.stat(path);
    if (!st.isFile) throw new OcipkgError(`artifact '${path}' is not a regular file`);
    const crypto = nodeCrypto();
    const h256 = crypto.createHash("sha256");
    const h512 = crypto.createHash("sha512");
    using file = await Deno.open(path);
    for await (const chunk of file.readable) {
      h256.update(chunk);
      h512.update(chunk);
    }
    return { digest: `sha256:${h256.digest("hex")}`, sha512: `sha512:${h512.digest("hex")}` };
  } catch (e) {
    if (e instanceof OcipkgError) throw e;
    throw fsError(e, "artifact", path);
  }
}

/**
 * Verify a file with its Sigstore bundle, as `cosign verify-blob --bundle`
 * does: with `key` for a bundle signed with a key, or with the certificate's
 * identity and issuer (exactly or by regular expression) for a keyless one;
 * against the shipped public-good trusted root or `trustedRoot`. A DSSE
 * bundle verifies when its in-toto statement names the file's digest.
 *
 * @param file the artifact
 * @param options the bundle, the key or identity and issuer, the trusted root
 * @returns what verified
 * @throws {UsageError} for neither or both of a key and an identity, or an identity without issuer
 * @throws {SignatureError} when it does not verify, with the reason
 * @throws {OcipkgError} naming a file that is absent or unreadable
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SignatureError, UsageError, verifyBlob } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${tmp}/a.txt`, "hello\n");
 * await Deno.writeTextFile(`${tmp}/a.sigstore.json`, '{"mediaType": "text/plain"}');
 * await assert.rejects(verifyBlob(`${tmp}/a.txt`, { bundle: `${tmp}/a.sigstore.json` }), UsageError);
 * await assert.rejects(
 *   verifyBlob(`${tmp}/a.txt`, {
 *     bundle: `${tmp}/a.sigstore.json`,
 *     identity: "https://github.com/org/repo/.github/workflows/release.yml@refs/tags/v1.2",
 *     issuer: "https://token.actions.githubusercontent.com",
 *   }),
 *   (e) => e instanceof SignatureError && e.reason === "malformed" && /has media type 'text\/plain'/.test(e.message),
 * );
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function verifyBlob(file: string, options: VerifyBlobOptions): Promise<VerifiedBlob> {
  const identity = options.identity !== undefined || options.identityRegexp !== undefined;
  const issuer = options.issuer !== undefined || options.issuerRegexp !== undefined;
  if (options.key !== undefined && (identity || issuer)) {
    throw new UsageError("verify with a key or with a certificate identity, not both");
  }
  if (options.key === undefined && !identity) {
    throw new UsageError("give a public key, or the certificate identity the bundle must name");
  }
  const path = resolve(file);
  const bundle = await readBundle(resolve(options.bundle));
  let policy: BundlePolicy;
  if (options.key !== undefined) {
    policy = { key: await readPublicKeyFile(options.key, options.keyLabel ?? "key option") };
  } else {
    const { identity, identityRegexp, issuer, issuerRegexp } = options;
    policy = { identity, identityRegexp, issuer, issuerRegexp };
  }
  const trustedRoot = options.trustedRoot === undefined
    ? undefined
    : await readTrustedRoot(resolve(options.trustedRoot));
  // a DSSE bundle names the file by digest: hashed as it streams, never whole in memory
  const artifact = bundle.content === "dsseEnvelope"
    ? await hashArtifact(path)
    : await readArtifact(path);
  const verified = await verifyBundle(bundle, artifact, policy, {
    trustedRoot,
    artifactName: path,
  });
  return { file: path, ...verified };
}
