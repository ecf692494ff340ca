/**
 * The answers `ocipkg serve` gives to requests it refuses: a {@link ServeError}
 * names a spec error code (see `error_codes.ts` for the table of codes and
 * statuses) and becomes a JSON error response.
 *
 * @module
 */
import { ERROR_CODES, type ErrorCode, errorDocument } from "../transport/registry/error_codes.ts";

/**
 * A request the registry refuses: answered with the code's status (or
 * `status`) and a JSON error body.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorResponse, ServeError } from "./errors.ts";
 * const res = errorResponse(new ServeError("BLOB_UNKNOWN", "blob sha256:… is not in 'a'"));
 * assert.equal(res.status, 404);
 * assert.equal((await res.json()).errors[0].code, "BLOB_UNKNOWN");
 * ```
 */
export class ServeError extends Error {
  /** The spec code. */
  readonly code: ErrorCode;
  /** The HTTP status. */
  readonly status: number;
  /** Extra response headers. */
  readonly headers: Record<string, string>;

  /**
   * @param code spec code
   * @param message one line for the client
   * @param options a status other than the code's, extra headers
   */
  constructor(
    code: ErrorCode,
    message: string,
    options: { status?: number; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = "ServeError";
    this.code = code;
    this.status = options.status ?? ERROR_CODES[code].status;
    this.headers = options.headers ?? {};
  }
}

/**
 * The response for an error.
 *
 * @param e the error
 * @param head no body (a HEAD request)
 * @returns the response
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorResponse, ServeError } from "./errors.ts";
 * const e = new ServeError("TOOMANYREQUESTS", "busy", { headers: { "retry-after": "1" } });
 * const res = errorResponse(e, true);
 * assert.equal(res.status, 429);
 * assert.equal(res.headers.get("retry-after"), "1");
 * assert.equal(res.body, null); // HEAD: no body, its length in content-length
 * ```
 */
export function errorResponse(e: ServeError, head = false): Response {
  const body = errorDocument(e.code, e.message);
  const headers = new Headers(e.headers);
  headers.set("content-type", "application/json");
  headers.set("content-length", String(new TextEncoder().encode(body).byteLength));
  return new Response(head ? null : body, { status: e.status, headers });
}
