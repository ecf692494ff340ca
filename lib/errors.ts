/**
 * Error classes used across ocipkg. Every error carries a one-line message that
 * names the object at fault (a file, an image, a digest, a host).
 *
 * @module
 */
import { printable } from "./text.ts";

/**
 * Base class of all errors thrown on purpose by ocipkg.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName, OcipkgError, oneLine, UsageError } from "@ocipkg/cli";
 * try {
 *   ImageName.parse("no spaces allowed");
 *   assert.fail("parsed");
 * } catch (e) {
 *   assert.ok(e instanceof OcipkgError && e instanceof UsageError);
 *   assert.equal(e.exitCode, 2); // what the CLI exits with
 *   assert.match(oneLine(e), /^invalid image name 'no spaces allowed'/);
 * }
 * ```
 */
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
 * import assert from "node:assert/strict";
 * import { resolveLocation, UsageError } from "@ocipkg/cli";
 * // neither a path nor a registry host: ocipkg refuses to guess
 * await assert.rejects(resolveLocation("libfoo"), UsageError);
 * const e = new UsageError("invalid image name 'A:B'");
 * assert.equal(e.exitCode, 2);
 * assert.equal(e.name, "UsageError");
 * ```
 */
export class UsageError extends OcipkgError {
  /** Usage errors exit with 2. */
  override readonly exitCode = 2;
}

/**
 * Content did not match its descriptor (size or digest).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bytesStream, digestOf, MemoryTarget, VerificationError } from "@ocipkg/cli";
 * const t = new MemoryTarget();
 * const spec = { mediaType: "text/plain", digest: digestOf(new TextEncoder().encode("a")), size: 1 };
 * // other bytes than the descriptor promises are refused, and nothing is stored
 * await assert.rejects(t.push(spec, bytesStream(new TextEncoder().encode("b"))), VerificationError);
 * assert.equal(await t.exists(spec), false);
 * ```
 */
export class VerificationError extends OcipkgError {}

/**
 * A blob, manifest, image, file or tag does not exist.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget, NotFoundError } from "@ocipkg/cli";
 * await assert.rejects(new MemoryTarget().resolve("example.com/foo:1"), NotFoundError);
 * ```
 */
export class NotFoundError extends OcipkgError {}

/**
 * An archive or layer is malformed or unsafe to extract.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ArchiveError, bytesStream, extractLayer } from "@ocipkg/cli";
 * const dest = await Deno.makeTempDir();
 * const junk = bytesStream(new TextEncoder().encode("not gzip"));
 * await assert.rejects(
 *   extractLayer(junk, dest, { compression: "gzip", what: "layer" }),
 *   (e) => e instanceof ArchiveError && /layer is corrupt/.test(e.message),
 * );
 * await Deno.remove(dest, { recursive: true });
 * ```
 */
export class ArchiveError extends OcipkgError {}

/**
 * A manifest, index or config is not valid JSON of the expected shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FormatError, OCI_MANIFEST, parseManifestDocument } from "@ocipkg/cli";
 * const bytes = new TextEncoder().encode('{"schemaVersion": 2}'); // no config, no layers
 * assert.throws(() => parseManifestDocument(bytes, OCI_MANIFEST, "manifest"), FormatError);
 * ```
 */
export class FormatError extends OcipkgError {}

/**
 * Turn any thrown value into a one-line message for the user; control
 * characters (from remote or archive data) are escaped.
 *
 * @param e the thrown value
 * @returns a single line
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { oneLine } from "@ocipkg/cli";
 * assert.equal(oneLine(new Error("cannot read\n  the file")), "cannot read the file");
 * assert.equal(oneLine("tag \u001b[2J"), "tag \\u001b[2J"); // escape sequences are shown, not run
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
