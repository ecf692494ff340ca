/**
 * Registry errors: carry the HTTP method, URL path, status and the
 * distribution-spec error code (`BLOB_UNKNOWN`, `MANIFEST_INVALID`, …, see
 * `error_codes.ts`).
 *
 * @module
 */
import { OcipkgError } from "../../util/errors.ts";
import type { ErrorCode } from "./error_codes.ts";

/**
 * An error answered by a registry (or a failure to reach it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName, openRepository, RegistryError } from "@ocipkg/cli";
 * // a stand-in for a registry answering a distribution-spec error
 * const body = { errors: [{ code: "NAME_INVALID", message: "invalid repository name" }] };
 * const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
 * const server = Deno.serve(listen, () => Response.json(body, { status: 400 }));
 * const name = ImageName.parse(`127.0.0.1:${server.addr.port}/org/foo:1`);
 * const repo = openRepository(name, { credential: null });
 * await assert.rejects(
 *   repo.resolve("1"),
 *   (e) => e instanceof RegistryError && e.status === 400 && e.code === "NAME_INVALID",
 * );
 * await repo.close();
 * await server.shutdown();
 * ```
 */
export class RegistryError extends OcipkgError {
  /** HTTP status (0 when the registry could not be reached). */
  readonly status: number;
  /** First distribution-spec error code, if the body had one. */
  readonly code: string | undefined;
  /**
   * Create a RegistryError.
   * @param message one line naming the host and object
   * @param status HTTP status
   * @param code spec error code
   * @param options error options
   */
  constructor(message: string, status: number, code?: string, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
    this.code = code;
  }
}

/**
 * 401/403: credentials missing or refused.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AuthError, ImageName, openRepository } from "@ocipkg/cli";
 * // a stand-in for a registry that refuses everyone
 * const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
 * const server = Deno.serve(listen, () => new Response(null, { status: 401 }));
 * const name = ImageName.parse(`127.0.0.1:${server.addr.port}/org/foo:1`);
 * const repo = openRepository(name, { credential: { username: "me", password: "wrong" } });
 * await assert.rejects(repo.resolve("1"), (e) => e instanceof AuthError && e.status === 401);
 * await repo.close();
 * await server.shutdown();
 * ```
 */
export class AuthError extends RegistryError {}

/**
 * Whether a registry answered `e` with one of `codes` (a {@link RegistryError}
 * whose first spec error code is one of them).
 *
 * @param e the thrown value
 * @param codes spec error codes
 * @returns true when `e` carries one of the codes
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hasCode, RegistryError } from "./errors.ts";
 * const e = new RegistryError("blob x: host answered 404", 404, "BLOB_UNKNOWN");
 * assert.ok(hasCode(e, "BLOB_UNKNOWN", "MANIFEST_UNKNOWN"));
 * assert.ok(!hasCode(e, "DIGEST_INVALID"));
 * assert.ok(!hasCode(new Error("BLOB_UNKNOWN"), "BLOB_UNKNOWN"));
 * ```
 */
export function hasCode(e: unknown, ...codes: ErrorCode[]): boolean {
  return e instanceof RegistryError && codes.some((c) => c === e.code);
}
