/**
 * Error classes used across ocipkg. Every error carries a one-line message that
 * names the object at fault (a file, an image, a digest, a host).
 *
 * @module
 */
import { printable } from "./text.ts";

/** Base class of all errors thrown on purpose by ocipkg. */
export class OcipkgError extends Error {
  /** Process exit code the CLI uses for this error (1 = runtime failure). */
  readonly exitCode: number = 1;
  /**
   * Create an OcipkgError.
   * @param message one line naming the thing at fault
   * @param options standard error options (`cause`)
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The user asked for something malformed: a bad image name, an unknown flag,
 * a missing argument. The CLI exits with code 2.
 *
 * @example
 * ```ts
 * import { UsageError } from "./errors.ts";
 * const e = new UsageError("invalid image name 'A:B'");
 * console.assert(e.exitCode === 2);
 * ```
 */
export class UsageError extends OcipkgError {
  /** Usage errors exit with 2. */
  override readonly exitCode = 2;
}

/** Content did not match its descriptor (size or digest). */
export class VerificationError extends OcipkgError {}

/** A blob, manifest, image, file or tag does not exist. */
export class NotFoundError extends OcipkgError {}

/** An archive or layer is malformed or unsafe to extract. */
export class ArchiveError extends OcipkgError {}

/** A manifest, index or config is not valid JSON of the expected shape. */
export class FormatError extends OcipkgError {}

/**
 * Turn any thrown value into a one-line message for the user; control
 * characters (from remote or archive data) are escaped.
 *
 * @param e the thrown value
 * @returns a single line
 * @example
 * ```ts
 * import { oneLine } from "./errors.ts";
 * console.assert(oneLine(new Error("a\nb")) === "a b");
 * ```
 */
export function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return printable(msg.replace(/\s*\n\s*/g, " ").trim());
}

/**
 * Wrap a file system error with a message that names the path.
 *
 * @param e the error thrown by a Deno file API
 * @param what what the path is, e.g. "input directory"
 * @param path the path
 * @returns an {@link OcipkgError} (or {@link NotFoundError}) naming the path
 */
export function fsError(e: unknown, what: string, path: string): OcipkgError {
  if (e instanceof OcipkgError) return e;
  if (e instanceof Deno.errors.NotFound) {
    return new NotFoundError(`${what} '${path}' does not exist`, { cause: e });
  }
  if (e instanceof Deno.errors.PermissionDenied) {
    return new OcipkgError(`${what} '${path}' is not readable: permission denied`, { cause: e });
  }
  if (e instanceof Deno.errors.IsADirectory) {
    return new OcipkgError(`${what} '${path}' is a directory, expected a file`, { cause: e });
  }
  if (e instanceof Deno.errors.NotADirectory) {
    return new OcipkgError(`${what} '${path}' is not a directory`, { cause: e });
  }
  return new OcipkgError(`${what} '${path}': ${oneLine(e)}`, { cause: e });
}
