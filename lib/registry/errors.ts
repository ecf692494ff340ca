/**
 * Registry errors: carry the HTTP method, URL path, status and the
 * distribution-spec error code (`BLOB_UNKNOWN`, `MANIFEST_INVALID`, …).
 *
 * @module
 */
import { OcipkgError } from "../errors.ts";

/** An error answered by a registry (or a failure to reach it). */
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

/** 401/403: credentials missing or refused. */
export class AuthError extends RegistryError {}
