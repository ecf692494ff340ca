/**
 * Signing by name, as the CLI does it: open the image a user's string names
 * (a registry image or a layout), then sign it, verify it, or write a key
 * pair's files.
 *
 * @module
 */
import { OcipkgError, UsageError } from "../util/errors.ts";
import { resolve } from "../util/path.ts";
import { atomicWriteFile, pathExists, withFileLock } from "../util/files.ts";
import { type Location, openImage } from "../transport/location.ts";
import type { ImageName } from "../oci/reference.ts";
import type { RemoteOptions } from "../transport/location.ts";
import { signImage, type SignResult, type VerifiedSignature } from "./image.ts";
import { type BundleSignResult, signImageBundle } from "./bundle_sign.ts";
import type { IdentityPolicy } from "./signers.ts";
import type { VerifiedImageBundle } from "./image_bundle.ts";
import { verifyImage } from "./image_verify.ts";
import { readTrustedRoot, type TrustedRoot } from "./trusted_root.ts";
import {
  encodePublicKey,
  encryptPrivateKey,
  generateSigningKeyPair,
  type PasswordSource,
  type PublicKeyFile,
  readPrivateKey,
  readPublicKeyFile,
} from "./keys.ts";
import { readSmallFile } from "./pem.ts";
import { dockerReference } from "./payload.ts";

/** A private key file's text: the one small-file reader, a missing file a usage error. */
async function readPrivateKeyText(path: string): Promise<string> {
  const text = await readSmallFile(path, `key ${path}`);
  if (text === undefined) throw new UsageError(`key file '${path}' does not exist`);
  return text;
}

/** Options of {@link signReference}. */
export interface SignReferenceOptions extends RemoteOptions {
  /** The private key file (cosign's encrypted PEM, or PKCS#8 PEM). */
  key: string;
  /** Its password, asked only when the key is encrypted. */
  password?: PasswordSource;
  /** Payload annotations (`-a k=v`). */
  annotations?: Record<string, string>;
  /** Store the signature as an OCI 1.1 referrer instead of under `sha256-<hex>.sig`. */
  referrers?: boolean;
  /**
   * Write a Sigstore bundle referrer (cosign v3's format: a DSSE statement
   * of `https://sigstore.dev/cosign/sign/v1` about the image) instead of a
   * legacy signature; see {@link signImageBundle}.
   */
  bundle?: boolean;
  /**
   * The payload's `docker-reference`; default the image's repository (for a
   * layout, its ref name's). Legacy signatures only.
   */
  identity?: string;
}

/**
 * Sign the image `image` names — on a registry, or in a layout before it is
 * pushed — with a cosign key: see {@link signImage}.
 *
 * @param image e.g. `ghcr.io/org/libfoo:1.2`, `oci-archive:libfoo.tar`
 * @param options the key, its password, annotations, where to store
 * @returns what was written, with the signed digest
 * @throws {UsageError} when a layout image has no repository name and no `identity` is given
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { packDirectory, signReference, verifyReference } from "@ocipkg/cli";
 * import { encodePublicKey, generateSigningKeyPair } from "@ocipkg/cli/sign";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/libfoo.a`, "!<arch>\n");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * const { privateKey, publicKey } = generateSigningKeyPair();
 * await Deno.writeTextFile(`${tmp}/k.pem`, privateKey.export({ format: "pem", type: "pkcs8" }).toString());
 * await Deno.writeTextFile(`${tmp}/k.pub`, encodePublicKey(publicKey));
 * const signed = await signReference(`${tmp}/foo.tar`, { key: `${tmp}/k.pem` }); // before a push
 * const ok = await verifyReference(`${tmp}/foo.tar`, { keys: [`${tmp}/k.pub`] });
 * assert.equal(ok.digest, signed.digest);
 * assert.equal(ok.signatures[0]?.dockerReference, "example.com/foo");
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function signReference(
  image: string | ImageName | Location,
  options: SignReferenceOptions,
): Promise<(SignResult | BundleSignResult) & { digest: string }> {
  const key = await readPrivateKey(await readPrivateKeyText(options.key), options.key, {
    password: options.password,
  });
  if (options.bundle && (options.referrers || options.identity !== undefined)) {
    throw new UsageError(
      "a bundle is always a referrer and names the image by digest: drop --referrers and --identity",
    );
  }
  const { target, subject, name, location } = await openImage(image, { ...options, write: true });
  if (options.bundle) {
    try {
      const r = await signImageBundle(target, subject, key, { annotations: options.annotations });
      await target.close();
      return { ...r, digest: subject.digest };
    } catch (e) {
      await target.abort().catch(() => {});
      throw e;
    }
  }
  try {
    const identity = options.identity ?? (name ? dockerReference(name) : undefined);
    if (!identity) {
      throw new UsageError(
        `the image in ${location.kind} '${
          location.kind === "registry" ? "" : location.path
        }' has no repository name; give --identity <registry/repository>`,
      );
    }
    const r = await signImage(target, subject, key, {
      dockerReference: identity,
      annotations: options.annotations,
      referrers: options.referrers,
    });
    await target.close();
    return { ...r, digest: subject.digest };
  } catch (e) {
    await target.abort().catch(() => {});
    throw e;
  }
}

/** Options of {@link verifyReference}: public keys, or a keyless identity. */
export interface VerifyReferenceOptions extends RemoteOptions, IdentityPolicy {
  /** Public key files: the image verifies when one of them verifies a signature. */
  keys?: string[];
  /** Names `keys` in messages; default `keys option` (the CLI passes `--key`). */
  keysLabel?: string;
  /** The trusted root file of bundles; default the shipped Sigstore public-good root. */
  trustedRoot?: string;
}

/** What {@link verifyReference} verified. */
export interface VerifiedImage {
  /** The image's digest. */
  digest: string;
  /** The key file that verified a legacy signature (absolute). */
  key?: string;
  /** Its fingerprint (`sha256:` of the key's DER). */
  fingerprint?: string;
  /** Every legacy signature that verified with it. */
  signatures: VerifiedSignature[];
  /** Every Sigstore bundle signature that verified (with any of the keys, or the identity). */
  bundles: VerifiedImageBundle[];
}

/**
 * The signers of a verify call: key files read (labelled), or an identity
 * with its trusted root; a usage error for neither or both.
 */
export async function readSigners(
  options: VerifyReferenceOptions,
): Promise<{ keys: PublicKeyFile[]; identities: IdentityPolicy[]; trustedRoot?: TrustedRoot }> {
  const paths = options.keys ?? [];
  const { identity, identityRegexp, issuer, issuerRegexp } = options;
  const hasIdentity = identity !== undefined || identityRegexp !== undefined;
  if (paths.length > 0 && (hasIdentity || issuer !== undefined || issuerRegexp !== undefined)) {
    throw new UsageError("verify with a key or with a certificate identity, not both");
  }
  if (paths.length === 0 && !hasIdentity) {
    throw new UsageError("give a public key, or the certificate identity the signature must name");
  }
  const label = options.keysLabel ?? "keys option";
  const keys: PublicKeyFile[] = [];
  for (const path of paths) keys.push(await readPublicKeyFile(path, label));
  const identities = hasIdentity ? [{ identity, identityRegexp, issuer, issuerRegexp }] : [];
  const trustedRoot = options.trustedRoot === undefined
    ? undefined
    : await readTrustedRoot(resolve(options.trustedRoot));
  return { keys, identities, ...(trustedRoot ? { trustedRoot } : {}) };
}

/**
 * Verify the signatures of the image `image` names — legacy cosign
 * signatures with one of `keys`, and Sigstore bundle signatures (cosign v3)
 * with one of `keys` or the keyless identity and issuer — each key file
 * read once ({@link verifyImage}, the routine `get`, `link` and `load` use
 * too). Succeeds when at least one signature verifies; returns every one.
 *
 * @param image a registry image or a layout
 * @param options the public key files and their label, or an identity and
 *   issuer (exact or regular expressions) and a trusted root; client options
 * @returns the digest, the key and the legacy signatures, the bundles that verified
 * @throws {SignatureError} with the reason when none verifies
 * @throws {KeyError} naming a key file (and `keysLabel`) that is absent or not a public key
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyError, packDirectory, verifyReference } from "@ocipkg/cli";
 * import { encodePublicKey, generateSigningKeyPair } from "@ocipkg/cli/sign";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * await Deno.writeTextFile(`${tmp}/k.pub`, encodePublicKey(generateSigningKeyPair().publicKey));
 * await assert.rejects(verifyReference(`${tmp}/foo.tar`, { keys: [`${tmp}/k.pub`] }), /no signature of/);
 * await assert.rejects(
 *   verifyReference(`${tmp}/foo.tar`, { keys: [`${tmp}/absent.pub`], keysLabel: "--key" }),
 *   (e) => e instanceof KeyError && /absent\.pub \(--key\) does not exist/.test(e.message),
 * );
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function verifyReference(
  image: string | ImageName | Location,
  options: VerifyReferenceOptions,
): Promise<VerifiedImage> {
  const signers = await readSigners(options);
  const { target, subject } = await openImage(image, options);
  try {
    const v = await verifyImage(target, subject, signers);
    return {
      digest: subject.digest,
      ...(v.key ? { key: v.key.path, fingerprint: v.key.fingerprint } : {}),
      signatures: v.signatures,
      bundles: v.bundles,
    };
  } finally {
    await target.close();
  }
}

/** Options of {@link generateKeyFiles}. */
export interface KeyFilesOptions {
  /** The private key's password (cosign's `COSIGN_PASSWORD`); may be empty. */
  password: string | Uint8Array;
  /** Replace existing files. */
  force?: boolean;
}

/**
 * Write a new key pair as `cosign generate-key-pair` does: `<prefix>.key`
 * (cosign's encrypted PEM, mode 0600) and `<prefix>.pub` (PEM
 * SubjectPublicKeyInfo). Existing files are kept unless `force`.
 *
 * @param prefix e.g. `cosign` for `cosign.key` and `cosign.pub`
 * @param options the password, whether to replace
 * @returns the two paths
 * @throws {OcipkgError} when a file exists and `force` is not given
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateKeyFiles } from "@ocipkg/cli";
 * import { readPrivateKey } from "@ocipkg/cli/sign";
 * const tmp = await Deno.makeTempDir();
 * const { key } = await generateKeyFiles(`${tmp}/cosign`, { password: "pw" });
 * assert.match(await Deno.readTextFile(key), /ENCRYPTED SIGSTORE PRIVATE KEY/);
 * await readPrivateKey(await Deno.readTextFile(key), key, { password: "pw" });
 * await assert.rejects(generateKeyFiles(`${tmp}/cosign`, { password: "pw" }), /exists/);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function generateKeyFiles(
  prefix: string,
  options: KeyFilesOptions,
): Promise<{ key: string; pub: string }> {
  if (!prefix) throw new UsageError("the key prefix is empty");
  const key = `${prefix}.key`;
  const pub = `${prefix}.pub`;
  const refuseExisting = async () => {
    if (options.force) return;
    for (const p of [key, pub]) {
      if (await pathExists(p)) throw new OcipkgError(`'${p}' exists; give --force to replace it`);
    }
  };
  await refuseExisting();
  const pair = generateSigningKeyPair();
  const pem = await encryptPrivateKey(pair.privateKey, options.password);
  // checked again and written under the key's lock: of two generations at once, one writes
  // both files (never one's key beside the other's public key), the other finds them there
  await withFileLock(key, async () => {
    await refuseExisting();
    await atomicWriteFile(key, new TextEncoder().encode(pem), 0o600);
    await Deno.chmod(key, 0o600).catch(() => {}); // Windows has no modes
    await atomicWriteFile(pub, new TextEncoder().encode(encodePublicKey(pair.publicKey)));
  });
  return { key, pub };
}
