/**
 * The distribution spec's error codes, as JSON responses
 * (`{"errors":[{"code","message","detail"}]}`).
 *
 * @module
 */

/** The spec's error codes and the HTTP status each is sent with. */
export const ERROR_STATUS = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  RANGE_INVALID: 416,
} as const;

/** One of the spec's error codes. */
export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * A request the registry refuses: answered with the code's status (or
 * `status`) and a JSON error body.
 */
export class RegistryError extends Error {
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
    this.name = "RegistryError";
    this.code = code;
    this.status = options.status ?? ERROR_STATUS[code];
    this.headers = options.headers ?? {};
  }
}

/**
 * The response for an error.
 *
 * @param e the error
 * @param head no body (a HEAD request)
 * @returns the response
 */
export function errorResponse(e: RegistryError, head = false): Response {
  const code = e.code === "RANGE_INVALID" ? "BLOB_UPLOAD_INVALID" : e.code;
  const body = JSON.stringify({ errors: [{ code, message: e.message, detail: null }] });
  const headers = new Headers(e.headers);
  headers.set("content-type", "application/json");
  headers.set("content-length", String(new TextEncoder().encode(body).byteLength));
  return new Response(head ? null : body, { status: e.status, headers });
}
