/**
 * Key files and the config file read from disk, PEM blocks, and key
 * fingerprints — no cryptography library (the cached install path reads these).
 *
 * @module
 */
import { OcipkgError } from "../util/errors.ts";
import { readSmallFile as readFileCapped } from "../util/files.ts";
import { fromBase64, toBase64 } from "../util/text.ts";

/**
 * A key file is unreadable, of an unsupported kind, or its password is wrong.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyError } from "@ocipkg/cli";
 * import { readPublicKey } from "@ocipkg/cli/sign";
 * assert.throws(() => readPublicKey("not a key", "cosign.pub"), KeyError);
 * ```
 */
export class KeyError extends OcipkgError {}

/** Key files larger than this are refused before parsing (a key is under 4 KiB). */
export const MAX_KEY_FILE = 64 * 1024;

/**
 * A small regular file's text (a key file, the config file, a Sigstore
 * bundle or trusted root), at most `max` bytes ({@link MAX_KEY_FILE} unless
 * told); undefined when it does not exist. A fifo or a device is refused
 * unopened, so nothing waits on it.
 *
 * @param path the file
 * @param what names it in errors, e.g. `key cosign.pub (--verify-key)`
 * @param max the largest size accepted, in bytes
 * @returns its text, or undefined when absent
 * @throws {OcipkgError} naming `what` when it is not a regular file, too large or unreadable
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSmallFile } from "./pem.ts";
 * const tmp = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${tmp}/k.pub`, "text");
 * assert.equal(await readSmallFile(`${tmp}/k.pub`, "key k.pub"), "text");
 * assert.equal(await readSmallFile(`${tmp}/absent.pub`, "key absent.pub"), undefined);
 * await assert.rejects(readSmallFile(tmp, "key dir"), /^UnfitFileError: key dir is not a regular file$/);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function readSmallFile(
  path: string,
  what: string,
  max: number = MAX_KEY_FILE,
): Promise<string | undefined> {
  const read = await readFileCapped(path, what, max);
  return read === undefined ? undefined : new TextDecoder().decode(read.bytes);
}

/** A PEM block: its type and DER bytes. */
export interface PemBlock {
  /** Its type, e.g. `PUBLIC KEY`. */
  type: string;
  /** Its content. */
  der: Uint8Array;
}

/**
 * The first PEM block of `text`, as Go's `pem.Decode` finds it.
 * @param text the file's content
 * @param what names it in errors
 * @returns the block
 * @throws {KeyError} when there is none, or it is not base64
 */
export function decodePem(text: string, what: string): PemBlock {
  if (text.length > MAX_KEY_FILE) {
    throw new KeyError(`${what}: ${text.length} bytes is too large for a key file`);
  }
  const m = /-----BEGIN ([A-Z0-9 ]{1,64})-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) throw new KeyError(`${what}: not a PEM key file (no BEGIN/END block)`);
  const body = m[2]!.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (body.some((l) => l.includes(":"))) {
    throw new KeyError(`${what}: PEM headers (legacy OpenSSL encryption) are not supported`);
  }
  const b64 = body.join("").trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    throw new KeyError(`${what}: the ${m[1]} block is not valid base64`);
  }
  return { type: m[1]!, der: fromBase64(b64) };
}

/**
 * Encode DER bytes as a PEM block with 64-character lines (Go's `pem.EncodeToMemory`).
 * @param type the block's type
 * @param bytes its content
 * @returns the PEM text
 */
export function encodePem(type: string, bytes: Uint8Array): string {
  const b64 = toBase64(bytes);
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join("\n")}\n-----END ${type}-----\n`;
}

/**
 * A key file's fingerprint: `sha256:<hex>` of its first PEM block's DER
 * bytes (for a `PUBLIC KEY` file, the SubjectPublicKeyInfo). Cheap — no
 * `node:crypto` — so a cached install can check which keys verified it.
 *
 * @param text the key file's content
 * @param what names the key in errors
 * @returns the fingerprint
 * @throws {KeyError} when the text holds no PEM block
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodePublicKey, generateSigningKeyPair, keyFingerprint } from "@ocipkg/cli/sign";
 * const pem = encodePublicKey(generateSigningKeyPair().publicKey);
 * assert.match(await keyFingerprint(pem, "cosign.pub"), /^sha256:[0-9a-f]{64}$/);
 * ```
 */
export async function keyFingerprint(text: string, what: string): Promise<string> {
  const { der } = decodePem(text, what);
  const hash = new Uint8Array(
    await crypto.subtle.digest("SHA-256", der as Uint8Array<ArrayBuffer>),
  );
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
