/**
 * The Sigstore client libraries ocipkg verifies bundles with — sigstore-js's
 * `@sigstore/bundle`, `@sigstore/verify`, `@sigstore/core` and
 * `@sigstore/protobuf-specs`, exact versions pinned in deno.json's imports —
 * loaded on first use by a dynamic `import()` of a literal specifier here and
 * nowhere else: `deno compile` embeds them, and a command that verifies no
 * bundle (a cached `get`, `link`) never loads them.
 *
 * One fix is applied at load, {@link withDefaultDigest}: `@sigstore/core`
 * verifies DSSE signatures, Rekor's signed entry timestamps and checkpoints
 * with `crypto.verify(undefined, data, key, signature)`, leaving the digest to
 * the key's default. Node gives an ECDSA key SHA-256 there; Deno's
 * `node:crypto` throws "no default digest", which `@sigstore/core` turns into
 * "invalid signature" — valid bundles would be refused.
 *
 * @module
 */
import type { KeyLike } from "node:crypto";

/** `@sigstore/bundle`: the bundle's protobuf-JSON reader and its shape checks. */
export type BundleLib = typeof import("@sigstore/bundle");
/** `@sigstore/verify`: the verifier of the Sigstore client specification. */
export type VerifyLib = typeof import("@sigstore/verify");
/** `@sigstore/core`: ASN.1, X.509, RFC 3161 and the crypto helper. */
export type CoreLib = typeof import("@sigstore/core");
/** `@sigstore/protobuf-specs`: the trusted root's protobuf-JSON reader. */
export type SpecsLib = typeof import("@sigstore/protobuf-specs");

/** The loaded libraries. */
export interface SigstoreLib {
  /** `@sigstore/bundle`. */
  bundle: BundleLib;
  /** `@sigstore/verify`. */
  verify: VerifyLib;
  /** `@sigstore/core`. */
  core: CoreLib;
  /** `@sigstore/protobuf-specs`. */
  specs: SpecsLib;
}

/** `@sigstore/core`'s `crypto.verify`: data, key, signature, optional digest name. */
export type VerifyFunction = CoreLib["crypto"]["verify"];

/**
 * The digest an ECDSA key signs with, as Sigstore's algorithm registry pairs
 * them (P-256/SHA-256, P-384/SHA-384, P-521/SHA-512); undefined for keys whose
 * algorithm fixes the hash (Ed25519) or that need none named.
 *
 * @param key a public key (a PEM text or DER bytes have no type to go by: undefined)
 * @returns the digest name for `node:crypto`, or undefined
 */
export function defaultDigest(key: KeyLike): string | undefined {
  if (typeof key === "string" || !("asymmetricKeyType" in key)) return undefined;
  if (key.asymmetricKeyType !== "ec") return undefined;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return curve === "secp384r1" ? "sha384" : curve === "secp521r1" ? "sha512" : "sha256";
}

/**
 * Wrap a `crypto.verify` helper so that a call without a digest name gets the
 * key's ({@link defaultDigest}) instead of the runtime's default — which Deno
 * does not have for ECDSA keys. A call that names its digest is passed on as
 * it is.
 *
 * @param verify `@sigstore/core`'s `crypto.verify`
 * @returns the same function, with the digest filled in
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Buffer } from "node:buffer";
 * import { generateKeyPairSync, type KeyLike, sign, verify } from "node:crypto";
 * import { withDefaultDigest } from "./sigstore_lib.ts";
 * // @sigstore/core's helper, in short: node:crypto's verify, the digest left to the key
 * const coreVerify = (data: Buffer, key: KeyLike, sig: Buffer, alg?: string) => {
 *   try {
 *     return verify(alg, data, key, sig);
 *   } catch {
 *     return false; // Deno: "no default digest" for an ECDSA key
 *   }
 * };
 * const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
 * const data = Buffer.from("payload");
 * const sig = sign("sha256", data, privateKey);
 * const fixed = withDefaultDigest(coreVerify);
 * assert.equal(fixed(data, publicKey, sig), true);
 * assert.equal(fixed(Buffer.from("other"), publicKey, sig), false);
 * ```
 */
export function withDefaultDigest(verify: VerifyFunction): VerifyFunction {
  return (data, key, signature, algorithm) =>
    verify(data, key, signature, algorithm ?? defaultDigest(key));
}

/** `@sigstore/core` helpers already wrapped (the module is loaded once, but be sure). */
const wrapped = new WeakSet<object>();

let loading: Promise<SigstoreLib> | undefined;

/**
 * Load the Sigstore libraries (once) and wrap `@sigstore/core`'s
 * `crypto.verify` with {@link withDefaultDigest}. The wrap is on that
 * package's own helper object, which only the Sigstore packages use — no
 * global (`node:crypto`, `globalThis`) is touched.
 *
 * @returns the libraries
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Buffer } from "node:buffer";
 * import { generateKeyPairSync, sign } from "node:crypto";
 * import { loadSigstore } from "./sigstore_lib.ts";
 * const { core } = await loadSigstore();
 * const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-384" });
 * const data = Buffer.from("checkpoint");
 * // as @sigstore/core verifies a DSSE envelope or a checkpoint: no digest named
 * assert.equal(core.crypto.verify(data, publicKey, sign("sha384", data, privateKey)), true);
 * assert.equal(await loadSigstore(), await loadSigstore()); // loaded once
 * ```
 */
export function loadSigstore(): Promise<SigstoreLib> {
  return loading ??= (async () => {
    const [bundle, verify, core, specs] = await Promise.all([
      import("@sigstore/bundle"),
      import("@sigstore/verify"),
      import("@sigstore/core"),
      import("@sigstore/protobuf-specs"),
    ]);
    if (!wrapped.has(core.crypto)) {
      // the namespace's members are read-only to TypeScript; the CommonJS exports object is not
      Object.defineProperty(core.crypto, "verify", {
        value: withDefaultDigest(core.crypto.verify),
        writable: true,
        enumerable: true,
        configurable: true,
      });
      wrapped.add(core.crypto);
    }
    return { bundle, verify, core, specs };
  })();
}
