/**
 * Sigstore trusted roots: the certificate authorities (Fulcio), transparency
 * logs (Rekor), certificate-transparency logs and timestamp authorities a
 * bundle must chain to, each with the time it was valid
 * (`application/vnd.dev.sigstore.trustedroot+json`). The Sigstore public-good
 * root ships with ocipkg — taken from `@sigstore/tuf`'s embedded TUF seed
 * (loaded on first use, no network); `--trusted-root` gives another one, or a
 * newer one fetched by hand.
 *
 * @module
 */
import { OcipkgError } from "../util/errors.ts";
import { printable } from "../util/text.ts";
import { readSmallFile } from "./pem.ts";

/** A trusted root file larger than this is refused unread (the public-good one is ≈ 7 KiB). */
export const MAX_TRUSTED_ROOT = 4 << 20;

/** The media type a trusted root starts with. */
export const TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json";

/** A parsed trusted root: its protobuf-JSON, checked for the fields the verifier relies on. */
export interface TrustedRoot {
  /** What it is, for messages: a path, or `the shipped Sigstore public-good trusted root`. */
  readonly what: string;
  /** Its media type, e.g. `application/vnd.dev.sigstore.trustedroot+json;version=0.1`. */
  readonly mediaType: string;
  /** The document (protobuf-JSON), as `@sigstore/protobuf-specs`' `TrustedRoot.fromJSON` takes it. */
  readonly json: Readonly<Record<string, unknown>>;
  /** The file's `sha256:` digest, when read from a file: what a verified record names it by. */
  readonly digest?: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function validStart(range: unknown): boolean {
  return isObject(range) && typeof range.start === "string" && !isNaN(Date.parse(range.start));
}

/**
 * Parse a trusted root and check what the Sigstore client specification
 * requires of it: its media type, and a `validFor.start` for every
 * certificate authority, timestamp authority, transparency log key and CT log
 * key — a missing start is refused, not read as "valid since ever".
 *
 * @param text the file's content
 * @param what names it in errors (its path)
 * @returns the trusted root
 * @throws {OcipkgError} naming `what` and the first fault
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTrustedRoot } from "@ocipkg/cli/sign";
 * const doc = {
 *   mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
 *   tlogs: [{ baseUrl: "https://rekor.example", publicKey: { validFor: { start: "2025-01-01T00:00:00Z" } } }],
 * };
 * assert.equal(parseTrustedRoot(JSON.stringify(doc), "root.json").mediaType, doc.mediaType);
 * delete (doc.tlogs[0]!.publicKey.validFor as { start?: string }).start;
 * assert.throws(
 *   () => parseTrustedRoot(JSON.stringify(doc), "root.json"),
 *   /^OcipkgError: trusted root root\.json: tlogs\[0\] \(https:\/\/rekor\.example\) has no validFor\.start$/,
 * );
 * ```
 */
export function parseTrustedRoot(text: string, what: string): TrustedRoot {
  const where = `trusted root ${what}`;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new OcipkgError(`${where} is not valid JSON`);
  }
  if (!isObject(json)) throw new OcipkgError(`${where} is not a JSON object`);
  const mediaType = json.mediaType;
  if (typeof mediaType !== "string" || !mediaType.startsWith(TRUSTED_ROOT_MEDIA_TYPE)) {
    throw new OcipkgError(
      `${where} has media type '${
        printable(String(mediaType)).slice(0, 80)
      }', not ${TRUSTED_ROOT_MEDIA_TYPE}`,
    );
  }
  const lists: [string, (e: Record<string, unknown>) => unknown, string][] = [
    ["certificateAuthorities", (e) => e.validFor, "uri"],
    ["timestampAuthorities", (e) => e.validFor, "uri"],
    ["tlogs", (e) => isObject(e.publicKey) ? e.publicKey.validFor : undefined, "baseUrl"],
    ["ctlogs", (e) => isObject(e.publicKey) ? e.publicKey.validFor : undefined, "baseUrl"],
  ];
  for (const [field, range, label] of lists) {
    const list = json[field];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new OcipkgError(`${where}: ${field} is not a list`);
    list.forEach((entry: unknown, i) => {
      if (!isObject(entry)) throw new OcipkgError(`${where}: ${field}[${i}] is not an object`);
      if (!validStart(range(entry))) {
        const name = typeof entry[label] === "string"
          ? ` (${printable(entry[label] as string).slice(0, 100)})`
          : "";
        throw new OcipkgError(`${where}: ${field}[${i}]${name} has no validFor.start`);
      }
    });
  }
  return { what, mediaType, json };
}

/**
 * Read a trusted root file (`--trusted-root`): at most
 * {@link MAX_TRUSTED_ROOT} bytes, then {@link parseTrustedRoot}.
 *
 * @param path the file
 * @returns the trusted root
 * @throws {OcipkgError} naming the file when it is absent, too large, or not a valid trusted root
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readTrustedRoot } from "@ocipkg/cli/sign";
 * await assert.rejects(readTrustedRoot("/nonexistent/root.json"), /trusted root \/nonexistent\/root\.json does not exist/);
 * ```
 */
export async function readTrustedRoot(path: string): Promise<TrustedRoot> {
  const text = await readSmallFile(path, `trusted root ${path}`, MAX_TRUSTED_ROOT);
  if (text === undefined) throw new OcipkgError(`trusted root ${path} does not exist`);
  const root = parseTrustedRoot(text, path);
  const bytes = new TextEncoder().encode(text);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const digest = `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  return { ...root, digest };
}

/** The TUF repository whose seed holds the public-good root. */
const PUBLIC_GOOD_TUF = "https://tuf-repo-cdn.sigstore.dev";

let publicGood: TrustedRoot | undefined;

/**
 * The Sigstore public-good trusted root (Fulcio, Rekor v1 and v2, the CT log,
 * the timestamp authority) as shipped with ocipkg: the `trusted_root.json`
 * target of the TUF seed embedded in `@sigstore/tuf` (5.0.1, pinned in
 * deno.json) — as fresh as that release. Loaded on first use; no network.
 *
 * @returns the trusted root
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { publicGoodTrustedRoot } from "@ocipkg/cli/sign";
 * const root = await publicGoodTrustedRoot();
 * assert.match(root.mediaType, /^application\/vnd\.dev\.sigstore\.trustedroot\+json/);
 * assert.ok(JSON.stringify(root.json.tlogs).includes("https://rekor.sigstore.dev"));
 * ```
 */
export async function publicGoodTrustedRoot(): Promise<TrustedRoot> {
  if (publicGood) return publicGood;
  const seeds: { default: Record<string, { targets?: Record<string, string> }> } = await import(
    "@sigstore/tuf/seeds.json",
    { with: { type: "json" } }
  );
  const b64 = seeds.default[PUBLIC_GOOD_TUF]?.targets?.["trusted_root.json"];
  if (typeof b64 !== "string") {
    throw new OcipkgError("the shipped Sigstore trusted root is missing from @sigstore/tuf");
  }
  const text = new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  return publicGood = parseTrustedRoot(text, "(the shipped Sigstore public-good root)");
}
