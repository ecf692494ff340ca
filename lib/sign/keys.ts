/**
 * Signing keys in cosign's formats: an ECDSA P-256 key pair, the private key
 * as cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` PEM (scrypt-derived key,
 * NaCl secretbox, the PKCS#8 DER inside — the format of
 * `github.com/secure-systems-lab/go-securesystemslib/encrypted` that
 * `cosign generate-key-pair` writes), the public key as a PEM
 * SubjectPublicKeyInfo. Reading also takes plain PKCS#8 / SEC1 / PKCS#1 PEM
 * private keys, as `cosign import-key-pair` does.
 *
 * No cryptographic primitive is written here: scrypt, ECDSA and the PEM/DER
 * codecs are `node:crypto`'s (loaded on first use), secretbox is `tweetnacl`'s
 * (vendored in lib/vendor/).
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import type { KeyObject } from "node:crypto";
import nacl from "../vendor/tweetnacl/nacl.js";
import { nodeCrypto } from "../util/lazy_node.ts";
import { resolve } from "../util/path.ts";
import { fromBase64, toBase64 } from "../util/text.ts";
import { decodePem, encodePem, KeyError, keyFingerprint, readSmallFile } from "./pem.ts";
export { KeyError, keyFingerprint, MAX_KEY_FILE } from "./pem.ts";

/** PEM type cosign writes for encrypted private keys (cosign ≥ 2.0). */
export const SIGSTORE_PRIVATE_KEY_PEM = "ENCRYPTED SIGSTORE PRIVATE KEY";
/** PEM type older cosign wrote for encrypted private keys; still read. */
export const COSIGN_PRIVATE_KEY_PEM = "ENCRYPTED COSIGN PRIVATE KEY";

/** The scrypt cost parameters go-securesystemslib accepts (legacy, standard, OWASP). */
const SCRYPT_N = [32768, 65536, 131072] as const;
/** scrypt N a new key is written with: go-securesystemslib's `Standard`, cosign's default. */
export const DEFAULT_SCRYPT_N = 65536;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const SALT_SIZE = 32;
const NONCE_SIZE = 24;
const BOX_KEY_SIZE = 32;

/** A password, or a function asked for it only when a key is encrypted. */
export type PasswordSource =
  | string
  | Uint8Array
  | (() => string | Uint8Array | Promise<string | Uint8Array>);

/** A key pair as node:crypto key objects. */
export interface KeyPair {
  /** The private (signing) key. */
  privateKey: KeyObject;
  /** The public (verifying) key. */
  publicKey: KeyObject;
}

/**
 * Generate an ECDSA P-256 key pair, the kind `cosign generate-key-pair` makes.
 *
 * @returns the key pair
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateSigningKeyPair } from "@ocipkg/cli/sign";
 * const { privateKey, publicKey } = generateSigningKeyPair();
 * assert.equal(privateKey.asymmetricKeyType, "ec");
 * assert.equal(publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
 * ```
 */
export function generateSigningKeyPair(): KeyPair {
  return nodeCrypto().generateKeyPairSync("ec", { namedCurve: "P-256" });
}

/**
 * Encode a public key as PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`),
 * cosign's `cosign.pub` format.
 *
 * @param key a public key (or a private key, whose public half is taken)
 * @returns the PEM text, ending in a newline
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodePublicKey, generateSigningKeyPair, readPublicKey } from "@ocipkg/cli/sign";
 * const { publicKey } = generateSigningKeyPair();
 * const pem = encodePublicKey(publicKey);
 * assert.match(pem, /^-----BEGIN PUBLIC KEY-----\n/);
 * assert.ok(readPublicKey(pem, "cosign.pub").equals(publicKey));
 * ```
 */
export function encodePublicKey(key: KeyObject): string {
  const pub = key.type === "private" ? nodeCrypto().createPublicKey(key) : key;
  return pub.export({ format: "pem", type: "spki" }).toString();
}

function toBytes(p: string | Uint8Array): Uint8Array {
  return typeof p === "string" ? new TextEncoder().encode(p) : p;
}

function scryptKey(password: Uint8Array, salt: Uint8Array, n: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    // 128·N·r bytes of work memory: 128 MiB at the largest accepted N
    const maxmem = 128 * n * SCRYPT_R + 16 * 1024 * 1024;
    nodeCrypto().scrypt(
      password,
      salt,
      BOX_KEY_SIZE,
      { N: n, r: SCRYPT_R, p: SCRYPT_P, maxmem },
      (e, key) => {
        if (e) reject(e);
        else resolve(new Uint8Array(key));
      },
    );
  });
}

/** Options of {@link encryptPrivateKey}. */
export interface EncryptOptions {
  /** scrypt cost N: 32768, 65536 (default, as cosign) or 131072. */
  scryptN?: 32768 | 65536 | 131072;
  /** PEM type; cosign writes `ENCRYPTED SIGSTORE PRIVATE KEY` (the default). */
  pemType?: "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY";
}

/**
 * Encrypt a private key the way `cosign generate-key-pair` does: PKCS#8 DER,
 * sealed with NaCl secretbox under a key derived by scrypt (N=65536, r=8,
 * p=1, 32-byte salt, 24-byte nonce), as go-securesystemslib's JSON envelope,
 * in an `ENCRYPTED SIGSTORE PRIVATE KEY` PEM block.
 *
 * @param key the private key
 * @param password the password (may be empty, as cosign allows)
 * @param options scrypt cost and PEM type
 * @returns the PEM text
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encryptPrivateKey, generateSigningKeyPair, readPrivateKey } from "@ocipkg/cli/sign";
 * const { privateKey } = generateSigningKeyPair();
 * const pem = await encryptPrivateKey(privateKey, "s3cret", { scryptN: 32768 });
 * assert.match(pem, /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
 * const back = await readPrivateKey(pem, "cosign.key", { password: "s3cret" });
 * assert.ok(back.equals(privateKey));
 * ```
 */
export async function encryptPrivateKey(
  key: KeyObject,
  password: string | Uint8Array,
  options: EncryptOptions = {},
): Promise<string> {
  if (key.type !== "private") throw new KeyError("encryptPrivateKey needs a private key");
  const n = options.scryptN ?? DEFAULT_SCRYPT_N;
  if (!(SCRYPT_N as readonly number[]).includes(n)) {
    throw new KeyError(`scrypt N=${n} is not one cosign accepts (${SCRYPT_N.join(", ")})`);
  }
  const der = new Uint8Array(key.export({ format: "der", type: "pkcs8" }));
  const salt = crypto.getRandomValues(new Uint8Array(SALT_SIZE));
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_SIZE));
  const boxKey = await scryptKey(toBytes(password), salt, n);
  const sealed = nacl.secretbox(der, nonce, boxKey);
  const b64 = toBase64;
  // go-securesystemslib's field order: kdf{name, params{N,r,p}, salt}, cipher{name, nonce}, ciphertext
  const envelope = JSON.stringify({
    kdf: { name: "scrypt", params: { N: n, r: SCRYPT_R, p: SCRYPT_P }, salt: b64(salt) },
    cipher: { name: "nacl/secretbox", nonce: b64(nonce) },
    ciphertext: b64(sealed),
  });
  return encodePem(options.pemType ?? SIGSTORE_PRIVATE_KEY_PEM, new TextEncoder().encode(envelope));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function b64Field(v: unknown, field: string, what: string): Uint8Array {
  if (typeof v !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) {
    throw new KeyError(`${what}: encrypted key field '${field}' is not base64`);
  }
  return fromBase64(v);
}

/** Open go-securesystemslib's encrypted envelope; the plaintext is the PKCS#8 DER. */
async function decryptEnvelope(
  envelope: Uint8Array,
  password: Uint8Array,
  what: string,
): Promise<Uint8Array> {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(envelope));
  } catch {
    throw new KeyError(`${what}: encrypted key is not valid JSON`);
  }
  if (!isObject(v) || !isObject(v.kdf) || !isObject(v.cipher)) {
    throw new KeyError(`${what}: encrypted key lacks its kdf or cipher`);
  }
  const { kdf, cipher } = v;
  if (kdf.name !== "scrypt") {
    throw new KeyError(`${what}: unknown key derivation '${String(kdf.name).slice(0, 40)}'`);
  }
  if (cipher.name !== "nacl/secretbox") {
    throw new KeyError(`${what}: unknown cipher '${String(cipher.name).slice(0, 40)}'`);
  }
  const params = isObject(kdf.params) ? kdf.params : {};
  // only the three parameter sets go-securesystemslib accepts: a hostile N
  // cannot make us spend unbounded memory or time
  if (
    !(SCRYPT_N as readonly unknown[]).includes(params.N) || params.r !== SCRYPT_R ||
    params.p !== SCRYPT_P
  ) {
    throw new KeyError(`${what}: unsupported scrypt parameters`);
  }
  const salt = b64Field(kdf.salt, "salt", what);
  const nonce = b64Field(cipher.nonce, "nonce", what);
  const sealed = b64Field(v.ciphertext, "ciphertext", what);
  if (nonce.length !== NONCE_SIZE) throw new KeyError(`${what}: secretbox nonce is not 24 bytes`);
  const boxKey = await scryptKey(password, salt, params.N as number);
  const der = nacl.secretbox.open(sealed, nonce, boxKey);
  if (!der) throw new KeyError(`${what}: wrong password (the key did not decrypt)`);
  return der;
}

/** Options of {@link readPrivateKey}. */
export interface ReadKeyOptions {
  /**
   * The password of an encrypted key, or a function asked for it only when
   * the key is encrypted (e.g. reading `$COSIGN_PASSWORD` or a TTY prompt).
   * Absent, an encrypted key is tried with the empty password, as cosign does.
   */
  password?: PasswordSource;
}

/**
 * Read a private key: cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` (or the older
 * `ENCRYPTED COSIGN PRIVATE KEY`) decrypted with the password, or a plain
 * `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` or `RSA PRIVATE KEY` PEM.
 *
 * @param text the key file's content
 * @param what names the key in errors (its path)
 * @param options the password
 * @returns the private key
 * @throws {KeyError} for a wrong password, a malformed file or an unsupported key
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyError } from "@ocipkg/cli";
 * import { encryptPrivateKey, generateSigningKeyPair, readPrivateKey } from "@ocipkg/cli/sign";
 * const { privateKey } = generateSigningKeyPair();
 * const pem = await encryptPrivateKey(privateKey, "right", { scryptN: 32768 });
 * await assert.rejects(
 *   readPrivateKey(pem, "cosign.key", { password: () => "wrong" }),
 *   (e) => e instanceof KeyError && e.message === "cosign.key: wrong password (the key did not decrypt)",
 * );
 * // plain PKCS#8 PEM keys need no password
 * const plain = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
 * assert.ok((await readPrivateKey(plain, "key.pem")).equals(privateKey));
 * ```
 */
export async function readPrivateKey(
  text: string,
  what: string,
  options: ReadKeyOptions = {},
): Promise<KeyObject> {
  const block = decodePem(text, what);
  let key: KeyObject;
  if (block.type === SIGSTORE_PRIVATE_KEY_PEM || block.type === COSIGN_PRIVATE_KEY_PEM) {
    const p = options.password;
    const password = toBytes(typeof p === "function" ? await p() : p ?? "");
    const der = await decryptEnvelope(block.der, password, what);
    try {
      key = nodeCrypto().createPrivateKey({ key: der as Buffer, format: "der", type: "pkcs8" });
    } catch {
      throw new KeyError(`${what}: the decrypted key is not a PKCS#8 private key`);
    }
  } else if (
    block.type === "PRIVATE KEY" || block.type === "EC PRIVATE KEY" ||
    block.type === "RSA PRIVATE KEY"
  ) {
    const type = block.type === "PRIVATE KEY"
      ? "pkcs8"
      : block.type === "EC PRIVATE KEY"
      ? "sec1"
      : "pkcs1";
    try {
      key = nodeCrypto().createPrivateKey({ key: block.der as Buffer, format: "der", type });
    } catch {
      throw new KeyError(`${what}: the ${block.type} block is not a valid key`);
    }
  } else if (block.type === "ENCRYPTED PRIVATE KEY") {
    throw new KeyError(`${what}: PKCS#8-encrypted keys are not supported; use cosign's format`);
  } else {
    throw new KeyError(`${what}: a ${block.type} block is not a private key`);
  }
  signatureAlgorithm(key, what);
  return key;
}

/**
 * Read a PEM public key (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo),
 * as `cosign.pub` holds.
 *
 * @param text the key file's content
 * @param what names the key in errors
 * @returns the public key
 * @throws {KeyError} when it is not a supported public key
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyError } from "@ocipkg/cli";
 * import { encodePublicKey, generateSigningKeyPair, readPublicKey } from "@ocipkg/cli/sign";
 * const { publicKey } = generateSigningKeyPair();
 * assert.equal(readPublicKey(encodePublicKey(publicKey), "cosign.pub").type, "public");
 * assert.throws(
 *   () => readPublicKey("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "c.pem"),
 *   (e) => e instanceof KeyError && /c\.pem: a CERTIFICATE block is not a public key/.test(e.message),
 * );
 * ```
 */
export function readPublicKey(text: string, what: string): KeyObject {
  const block = decodePem(text, what);
  if (block.type !== "PUBLIC KEY") {
    throw new KeyError(`${what}: a ${block.type} block is not a public key`);
  }
  let key: KeyObject;
  try {
    key = nodeCrypto().createPublicKey({ key: block.der as Buffer, format: "der", type: "spki" });
  } catch {
    throw new KeyError(`${what}: the PUBLIC KEY block is not a valid key`);
  }
  signatureAlgorithm(key, what);
  return key;
}

/**
 * A public key file, read once: its path, text and fingerprint. The
 * `node:crypto` key object is built on the first call of `key()` — only when
 * a signature is checked, so a cached install that trusts the store's record
 * never loads `node:crypto`.
 */
export interface PublicKeyFile {
  /** The file (absolute). */
  readonly path: string;
  /** Its content: a `PUBLIC KEY` PEM block. */
  readonly text: string;
  /** Its fingerprint ({@link keyFingerprint}). */
  readonly fingerprint: string;
  /**
   * The key, built on first use.
   * @throws {KeyError} when the block is not a supported public key
   */
  key(): KeyObject;
}

/**
 * Read a public key file (cosign's `cosign.pub`): the one reader of public
 * keys, for `verify` and for the keys an install must verify with. Cheap — no
 * `node:crypto` until {@link PublicKeyFile.key} is called.
 *
 * @param path the file (made absolute)
 * @param label who named it, for messages (e.g. `--verify-key`, a rule)
 * @returns the key file
 * @throws {OcipkgError} naming the file and `label` when it is absent, not a
 *   regular file or not a `PUBLIC KEY` PEM block ({@link KeyError})
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodePublicKey, generateSigningKeyPair, keyFingerprint } from "@ocipkg/cli/sign";
 * import { readPublicKeyFile } from "./keys.ts";
 * const tmp = await Deno.makeTempDir();
 * const { publicKey } = generateSigningKeyPair();
 * await Deno.writeTextFile(`${tmp}/cosign.pub`, encodePublicKey(publicKey));
 * const k = await readPublicKeyFile(`${tmp}/cosign.pub`, "--key");
 * assert.equal(k.fingerprint, await keyFingerprint(encodePublicKey(publicKey), "cosign.pub"));
 * assert.ok(k.key().equals(publicKey));
 * await assert.rejects(
 *   readPublicKeyFile(`${tmp}/absent.pub`, "--key"),
 *   /^KeyError: key .*absent\.pub \(--key\) does not exist$/,
 * );
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function readPublicKeyFile(path: string, label: string): Promise<PublicKeyFile> {
  const abs = resolve(path);
  const what = `key ${abs} (${label})`;
  const text = await readSmallFile(abs, what);
  if (text === undefined) throw new KeyError(`${what} does not exist`);
  const { type } = decodePem(text, what);
  if (type !== "PUBLIC KEY") throw new KeyError(`${what}: a ${type} block is not a public key`);
  const fingerprint = await keyFingerprint(text, what);
  let key: KeyObject | undefined;
  return {
    path: abs,
    text,
    fingerprint,
    key: () => key ??= readPublicKey(text, abs),
  };
}

/**
 * The hash cosign uses with a key (sigstore's default algorithm details):
 * ECDSA P-256/SHA-256, P-384/SHA-384, P-521/SHA-512, RSA ≥ 2048 bits with
 * PKCS#1 v1.5 SHA-256. Ed25519 is refused (cosign signs with Ed25519ph, which
 * node:crypto does not offer).
 *
 * @param key a public or private key
 * @param what names the key in errors
 * @returns the digest name for node:crypto `sign`/`verify`
 */
export function signatureAlgorithm(key: KeyObject, what: string): "sha256" | "sha384" | "sha512" {
  const type = key.asymmetricKeyType;
  if (type === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === "prime256v1") return "sha256";
    if (curve === "secp384r1") return "sha384";
    if (curve === "secp521r1") return "sha512";
    throw new KeyError(`${what}: ECDSA curve ${curve ?? "(unknown)"} is not supported`);
  }
  if (type === "rsa") {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048 || bits > 4096) {
      throw new KeyError(`${what}: an RSA key of ${bits} bits is not supported (2048-4096)`);
    }
    return "sha256";
  }
  throw new KeyError(`${what}: ${type ?? "unknown"} keys are not supported (ECDSA or RSA)`);
}
