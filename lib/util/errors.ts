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
 * import { ImageName, OcipkgError, UsageError } from "@ocipkg/cli";
 * import { oneLine } from "./errors.ts";
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
 * import { MemoryTarget, VerificationError } from "@ocipkg/cli";
 * import { digestOf } from "@ocipkg/cli/oci";
 * const t = new MemoryTarget();
 * const spec = { mediaType: "text/plain", digest: digestOf(new TextEncoder().encode("a")), size: 1 };
 * // other bytes than the descriptor promises are refused, and nothing is stored
 * await assert.rejects(t.push(spec, ReadableStream.from([new TextEncoder().encode("b")])), VerificationError);
 * assert.equal(await t.exists(spec), false);
 * ```
 */
export class VerificationError extends OcipkgError {}

/**
 * A blob, manifest, image, file or tag does not exist. The CLI exits with 3.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget, NotFoundError } from "@ocipkg/cli";
 * await assert.rejects(new MemoryTarget().resolve("example.com/foo:1"), NotFoundError);
 * assert.equal(new NotFoundError("no such tag").exitCode, 3);
 * ```
 */
export class NotFoundError extends OcipkgError {
  /** Not found exits with 3. */
  override readonly exitCode = 3;
}

/**
 * An archive or layer is malformed or unsafe to extract.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ArchiveError } from "@ocipkg/cli";
 * import { extractLayer } from "@ocipkg/cli/archive";
 * const dest = await Deno.makeTempDir();
 * const junk = ReadableStream.from([new TextEncoder().encode("not gzip")]);
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
 * import { FormatError } from "@ocipkg/cli";
 * import { OCI_MANIFEST, parseManifestDocument } from "@ocipkg/cli/oci";
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
 * import { oneLine } from "./errors.ts";
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
  const reason = systemReason(e);
  if (reason) {
    return new ResourceError(`${what} '${path}': ${reason}`, { cause: e });
  }
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

/**
 * The machine, not the content, stopped the work: out of disk space, quota,
 * a read-only file system, permission denied, too many open files, an I/O
 * error. Never reported as corruption.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OcipkgError, OciDir, ResourceError } from "@ocipkg/cli";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * const dir = await Deno.makeTempDir();
 * const layout = await OciDir.open(`${dir}/lay`, { create: true });
 * await Deno.chmod(`${dir}/lay/blobs/sha256`, 0o500); // nothing can be written there
 * const e = await pushBytes(layout, "text/plain", new Uint8Array(1)).catch((e) => e);
 * if (Deno.uid() !== 0) { // root writes anyway
 *   assert.ok(e instanceof ResourceError && e instanceof OcipkgError);
 *   assert.match(e.message, /permission denied/);
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class ResourceError extends OcipkgError {}

const SYSTEM_REASONS: Record<string, string> = {
  ENOSPC: "out of disk space",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EMFILE: "too many open files",
  ENFILE: "too many open files in the system",
  EIO: "input/output error",
  EFBIG: "file too large for the file system",
};

/**
 * What a system error means for the user, when it is one of the resource
 * failures {@link ResourceError} stands for (looked up along `cause`).
 *
 * @param e any error
 * @returns e.g. `out of disk space (ENOSPC)`, or undefined
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { systemReason } from "./errors.ts";
 * const e = Object.assign(new Error("Read-only file system (os error 30)"), { code: "EROFS" });
 * assert.equal(systemReason(new Error("wrapped", { cause: e })), "read-only file system (EROFS)");
 * assert.equal(systemReason(new Error("other")), undefined);
 * ```
 */
export function systemReason(e: unknown): string | undefined {
  for (let i = 0; i < 8 && e instanceof Error; i++, e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code in SYSTEM_REASONS) {
      return `${SYSTEM_REASONS[code]} (${code})`;
    }
    if (e instanceof Deno.errors.PermissionDenied) return "permission denied (EACCES)";
  }
  return undefined;
}
