/**
 * What every endpoint of `serve` shares: the state it works with
 * ({@link Served}), JSON and empty responses, the checks of a URL's digest and
 * percent-encoding, the method check, and the lookup of a repository that
 * must exist. Errors are `ServeError`s of `errors.ts`, answered with the
 * spec's codes.
 *
 * @module
 */
import { parseDigest } from "../oci/digest.ts";
import { encodeJson } from "../oci/manifest.ts";
import { ServeError } from "./errors.ts";
import type { Repository, Storage } from "./storage.ts";
import type { Uploads } from "./uploads.ts";

/** What the endpoints work with: the root, its upload sessions, the modes they obey. */
export interface Served {
  /** The root and its repositories. */
  readonly storage: Storage;
  /** The open upload sessions. */
  readonly uploads: Uploads;
  /** The modes of `ServeOptions` the endpoints obey. */
  readonly options: {
    /** Allow deleting manifests, tags and blobs. */
    readonly delete?: boolean;
    /** Advertised as `OCI-Chunk-Min-Length` (default 0: any chunk size). */
    readonly chunkMinLength?: number;
  };
}

/** What a request did, for its log line. */
export interface Ctx {
  /** Bytes of request bodies received (uploads). */
  bytesIn: number;
  /** Why the request failed, when it did (for the log line). */
  failure?: unknown;
  /** The request body broke off before its end (its connection ended under it). */
  bodyBroke?: boolean;
}

const JSON_TYPE = "application/json";

/**
 * A JSON response with its length.
 *
 * @param body the value
 * @param status the status (200)
 * @param headers more headers (a `content-type` here wins)
 * @returns the response
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { json } from "./http.ts";
 * const r = json({ tags: ["1"] }, 200, { link: "<next>" });
 * assert.equal(r.headers.get("content-type"), "application/json");
 * assert.equal(r.headers.get("content-length"), "14");
 * assert.deepEqual(await r.json(), { tags: ["1"] });
 * ```
 */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  const bytes = encodeJson(body);
  return new Response(bytes as Uint8Array<ArrayBuffer>, {
    status,
    headers: { "content-type": JSON_TYPE, "content-length": String(bytes.byteLength), ...headers },
  });
}

/**
 * A response without a body (`Content-Length: 0`).
 *
 * @param status the status
 * @param headers more headers
 * @returns the response
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { empty } from "./http.ts";
 * const r = empty(202, { location: "/v2/a/blobs/uploads/1" });
 * assert.equal(r.status, 202);
 * assert.equal(r.headers.get("content-length"), "0");
 * ```
 */
export function empty(status: number, headers: Record<string, string> = {}): Response {
  return new Response(null, { status, headers: { "content-length": "0", ...headers } });
}

/**
 * A digest from a URL, checked.
 *
 * @param s the text
 * @returns the same text
 * @throws {ServeError} `DIGEST_INVALID`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkDigest } from "./http.ts";
 * const d = "sha256:" + "0".repeat(64);
 * assert.equal(checkDigest(d), d);
 * assert.throws(() => checkDigest("sha256:xyz"), { code: "DIGEST_INVALID" });
 * ```
 */
export function checkDigest(s: string): string {
  try {
    parseDigest(s);
    return s;
  } catch (e) {
    throw new ServeError("DIGEST_INVALID", (e as Error).message.slice(0, 300));
  }
}

/**
 * A percent-encoded path component, decoded.
 *
 * @param s the component
 * @returns the text
 * @throws {ServeError} `NAME_INVALID` for malformed percent-encoding
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode } from "./http.ts";
 * assert.equal(decode("sha256%3Aabc"), "sha256:abc");
 * assert.throws(() => decode("%zz"), { code: "NAME_INVALID" });
 * ```
 */
export function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ServeError("NAME_INVALID", "malformed percent-encoding in the URL");
  }
}

/**
 * Refuse a method an endpoint does not serve (the body is cancelled).
 *
 * @param req the request
 * @param methods the methods served
 * @throws {ServeError} `UNSUPPORTED` with an `Allow` header
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allow } from "./http.ts";
 * allow(new Request("http://x/v2/"), ["GET", "HEAD"]);
 * assert.throws(() => allow(new Request("http://x/v2/", { method: "POST" }), ["GET"]), {
 *   code: "UNSUPPORTED",
 *   headers: { allow: "GET" },
 * });
 * ```
 */
export function allow(req: Request, methods: string[]): void {
  if (!methods.includes(req.method)) {
    req.body?.cancel().catch(() => {});
    throw new ServeError("UNSUPPORTED", `${req.method} is not supported here`, {
      headers: { allow: methods.join(", ") },
    });
  }
}

/**
 * A repository that must exist.
 *
 * @param storage the root
 * @param name its name
 * @returns the repository
 * @throws {ServeError} `NAME_UNKNOWN`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { knownRepository } from "./http.ts";
 * import { Storage } from "./storage.ts";
 * const root = await Deno.makeTempDir();
 * const storage = await Storage.open(root);
 * await storage.repository("org/app", true);
 * assert.equal((await knownRepository(storage, "org/app")).name, "org/app");
 * await assert.rejects(knownRepository(storage, "org/other"), { code: "NAME_UNKNOWN" });
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function knownRepository(storage: Storage, name: string): Promise<Repository> {
  const repo = await storage.repository(name);
  if (!repo) throw new ServeError("NAME_UNKNOWN", `repository '${name}' is not known`);
  return repo;
}
