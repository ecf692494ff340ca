/**
 * The distribution spec's error codes, in one table: each code's HTTP status
 * and the spec's message for it, and the JSON error document they travel in
 * (`{"errors":[{"code","message","detail"}]}`). The client reads error
 * documents with {@link firstError} and checks codes against the table
 * (`hasCode` in `errors.ts`); `ocipkg serve` writes them with
 * {@link errorDocument}.
 *
 * @module
 */

/** What the table says of one code. */
export interface ErrorCodeInfo {
  /** The HTTP status the code is sent with. */
  status: number;
  /** The spec's message: what the code means. */
  message: string;
  /** The code written in its place, for one the OCI spec does not list. */
  sentAs?: string;
}

const TABLE = {
  BLOB_UNKNOWN: { status: 404, message: "blob unknown to registry" },
  BLOB_UPLOAD_INVALID: { status: 400, message: "blob upload invalid" },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: "blob upload unknown to registry" },
  DIGEST_INVALID: { status: 400, message: "provided digest did not match uploaded content" },
  MANIFEST_BLOB_UNKNOWN: {
    status: 400,
    message: "manifest references a manifest or blob unknown to registry",
  },
  MANIFEST_INVALID: { status: 400, message: "manifest invalid" },
  MANIFEST_UNKNOWN: { status: 404, message: "manifest unknown to registry" },
  NAME_INVALID: { status: 400, message: "invalid repository name" },
  NAME_UNKNOWN: { status: 404, message: "repository name not known to registry" },
  SIZE_INVALID: { status: 400, message: "provided length did not match content length" },
  UNAUTHORIZED: { status: 401, message: "authentication required" },
  DENIED: { status: 403, message: "requested access to the resource is denied" },
  UNSUPPORTED: { status: 405, message: "the operation is unsupported" },
  TOOMANYREQUESTS: { status: 429, message: "too many requests" },
  // distribution's code for a bad Content-Range; the OCI spec has none, so it
  // goes out as BLOB_UPLOAD_INVALID (with its own status, 416)
  RANGE_INVALID: { status: 416, message: "invalid content range", sentAs: "BLOB_UPLOAD_INVALID" },
  // distribution's code for a failure of the registry itself (storage refused,
  // disk full); the OCI spec has none
  UNKNOWN: { status: 500, message: "unknown error" },
} as const satisfies Record<string, ErrorCodeInfo>;

/** One of the spec's error codes (and distribution's `RANGE_INVALID` and `UNKNOWN`). */
export type ErrorCode = keyof typeof TABLE;

/**
 * The spec's error codes: each one's HTTP status and message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ERROR_CODES } from "./error_codes.ts";
 * assert.equal(ERROR_CODES.MANIFEST_UNKNOWN.status, 404);
 * assert.equal(ERROR_CODES.DENIED.message, "requested access to the resource is denied");
 * ```
 */
export const ERROR_CODES: Readonly<Record<ErrorCode, ErrorCodeInfo>> = TABLE;

/**
 * The JSON error document for one error, as a registry answers it. A code the
 * OCI spec does not list goes out as the one the table names instead.
 *
 * @param code the code
 * @param message one line for the client
 * @returns the JSON text
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorDocument } from "./error_codes.ts";
 * assert.equal(
 *   errorDocument("NAME_UNKNOWN", "repository 'a' is not known"),
 *   '{"errors":[{"code":"NAME_UNKNOWN","message":"repository \'a\' is not known","detail":null}]}',
 * );
 * assert.equal(JSON.parse(errorDocument("RANGE_INVALID", "bad")).errors[0].code, "BLOB_UPLOAD_INVALID");
 * ```
 */
export function errorDocument(code: ErrorCode, message: string): string {
  const sent = ERROR_CODES[code].sentAs ?? code;
  return JSON.stringify({ errors: [{ code: sent, message, detail: null }] });
}

/**
 * The first error of an error document a registry answered: its code and
 * message, where they are strings (unchecked otherwise: any text a registry
 * sent, not necessarily a code of the table).
 *
 * @param document the parsed JSON body
 * @returns the first error's code and message, each when it is a string
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { firstError } from "./error_codes.ts";
 * const body = { errors: [{ code: "DENIED", message: "no" }, { code: "UNAUTHORIZED" }] };
 * assert.deepEqual(firstError(body), { code: "DENIED", message: "no" });
 * assert.deepEqual(firstError({ errors: [{ code: 7 }] }), {});
 * assert.deepEqual(firstError("not a document"), {});
 * ```
 */
export function firstError(document: unknown): { code?: string; message?: string } {
  const first = at(at(document, "errors"), 0);
  const code = at(first, "code");
  const message = at(first, "message");
  const out: { code?: string; message?: string } = {};
  if (typeof code === "string") out.code = code;
  if (typeof message === "string") out.message = message;
  return out;
}

/** `v?.[k]`, for a value of any JSON type. */
function at(v: unknown, k: string | number): unknown {
  return v === null || v === undefined ? undefined : (v as Record<string | number, unknown>)[k];
}
