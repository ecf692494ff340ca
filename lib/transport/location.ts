/**
 * The one resolver from a user's string to a location — a repository on a
 * registry, or an OCI layout (oci-dir or oci-archive) — and opening it as a
 * target. Every command and every high-level library function goes through
 * {@link resolveLocation}.
 *
 * | input                                  | location                          |
 * | -------------------------------------- | --------------------------------- |
 * | `docker://<image>`                     | image                             |
 * | `oci:<dir>[:<ref>]`, `oci-dir:…`       | oci-dir                           |
 * | `oci-archive:<file>[:<ref>]`           | oci-archive                       |
 * | `-`, `oci-archive:-[:<ref>]`           | oci-archive on stdin (reading) or stdout (writing) |
 * | anything, when only an image fits      | image (Docker Hub by default)     |
 * | an existing path                       | layout (a directory is an oci-dir) |
 * | ends in `.tar`; starts `./` `../` `/`  | layout                            |
 * | first component a registry host (has `.` or `:`, or is `localhost`), then `/` | image |
 * | anything else, when only a layout fits | layout                            |
 * | anything else                          | usage error: ambiguous            |
 *
 * @module
 */
import { OcipkgError, UsageError } from "../util/errors.ts";
import { pathExists } from "../util/files.ts";
import { OciDir } from "./layout/oci_dir.ts";
import { ImageName, imageName, isHostComponent, LAYOUT_SCHEME } from "../oci/reference.ts";
import { STDIO_PATH } from "../util/stdio.ts";

import { openRepository, openRepositoryToWrite } from "./registry/target.ts";
import type { RegistryTargetOptions } from "./registry/repository.ts";
import type { ListableTarget, ReadTarget, Target } from "./target.ts";
import type { CopyOptions } from "./copy.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { ANNOTATION_REF_NAME } from "../oci/media_types.ts";

/**
 * Options of every operation that may talk to a registry: the registry
 * client's (credentials, TLS, timeouts, retries) and the copy's
 * (concurrency, progress).
 */
export interface RemoteOptions
  extends
    RegistryTargetOptions,
    Pick<CopyOptions, "concurrency" | "onProgress" | "progressBytes"> {}

/** A repository on a registry, with the tag or digest asked for. */
export interface RegistryLocation {
  /** Kind. */
  kind: "registry";
  /** The image. */
  name: ImageName;
}

/** An OCI layout on disk (or an oci-archive on stdin or stdout). */
export interface LayoutLocation {
  /** Layout kind. */
  kind: "oci-dir" | "oci-archive";
  /** File system path; `-` (an oci-archive only) for stdin when read, stdout when written. */
  path: string;
  /** Reference inside the layout (ref name or digest), if given. */
  ref?: string;
}

/** Where an image is: a registry, or a layout. */
export type Location = RegistryLocation | LayoutLocation;

/** Options of {@link resolveLocation}. */
export interface ResolveOptions {
  /** What the caller can use: `image`, `layout`, or `any` (default). */
  accept?: "image" | "layout" | "any";
  /** For a layout path that does not exist yet: `archive` (default) or `dir`. */
  format?: "archive" | "dir";
}

const SCHEME = LAYOUT_SCHEME;

function hostFirst(s: string): boolean {
  const slash = s.indexOf("/");
  if (slash <= 0) return false;
  return isHostComponent(s.slice(0, slash));
}

function pathLike(s: string): boolean {
  return s.endsWith(".tar") || s.startsWith("./") || s.startsWith("../") || s.startsWith("/") ||
    s === "." || s === ".." || /^[A-Za-z]:[\\/]/.test(s) || s.startsWith(".\\");
}

/**
 * Turn a user's string into a location (the rule table is in this module's
 * doc). Makes no network request.
 *
 * @param s e.g. `ghcr.io/org/libfoo:1`, `docker://alpine`, `oci:out:v1`, `pkg.tar`, `./dir`
 * @param options what the caller accepts, and the format of a new layout path
 * @returns the location
 * @throws {UsageError} naming the string when it is ambiguous, empty, or of a
 *   kind the caller cannot use
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveLocation } from "@ocipkg/cli";
 * assert.equal((await resolveLocation("ghcr.io/org/libfoo:1")).kind, "registry");
 * assert.deepEqual(await resolveLocation("oci:out:v1"), { kind: "oci-dir", path: "out", ref: "v1" });
 * assert.equal((await resolveLocation("pkg.tar")).kind, "oci-archive");
 * await assert.rejects(() => resolveLocation("newdir"), /ambiguous/);
 * assert.equal((await resolveLocation("newdir", { accept: "layout" })).kind, "oci-archive");
 * assert.deepEqual(await resolveLocation("-"), { kind: "oci-archive", path: "-" }); // stdin/stdout
 * ```
 */
export async function resolveLocation(
  s: string,
  options: ResolveOptions = {},
): Promise<Location> {
  const accept = options.accept ?? "any";
  if (!s) throw new UsageError("empty location: give an image name or a layout path");
  const image = (text: string): Location => {
    if (accept === "layout") {
      throw new UsageError(
        `'${s}' names an image; a layout (oci-archive or oci-dir) is needed here`,
      );
    }
    return { kind: "registry", name: ImageName.parse(text) };
  };
  const layout = (loc: LayoutLocation): Location => {
    if (accept === "image") {
      throw new UsageError(`'${s}' names a layout; an image name is needed here`);
    }
    return loc;
  };
  if (accept === "image") return { kind: "registry", name: imageName(s) };
  if (s.startsWith("docker://")) return image(s.slice("docker://".length));
  const stdio = (ref?: string): Location => {
    if (options.format === "dir") {
      throw new UsageError(
        `'${s}' is an oci-archive on stdin or stdout; --format dir needs a path`,
      );
    }
    return layout({ kind: "oci-archive", path: STDIO_PATH, ...(ref ? { ref } : {}) });
  };
  if (s === STDIO_PATH) return stdio();
  const m = SCHEME.exec(s);
  if (m) {
    const rest = m[2]!;
    const colon = rest.indexOf(":");
    const path = colon < 0 ? rest : rest.slice(0, colon);
    const ref = colon < 0 ? undefined : rest.slice(colon + 1);
    if (!path) throw new UsageError(`location '${s}' has no path`);
    if (path === STDIO_PATH) {
      if (m[1] !== "oci-archive") {
        throw new UsageError(
          `'${s}': an oci-dir cannot be read from stdin or written to stdout; '-' is an oci-archive`,
        );
      }
      return stdio(ref);
    }
    const loc: LayoutLocation = { kind: m[1] === "oci-archive" ? "oci-archive" : "oci-dir", path };
    if (ref) loc.ref = ref;
    return layout(loc);
  }
  if (await pathExists(s)) {
    const isDir = await Deno.stat(s).then((st) => st.isDirectory, () => false);
    return layout({ kind: isDir ? "oci-dir" : "oci-archive", path: s });
  }
  const newLayout = (): Location =>
    layout({ kind: options.format === "dir" ? "oci-dir" : "oci-archive", path: s });
  if (pathLike(s)) return newLayout();
  if (hostFirst(s)) return image(s);
  if (accept === "layout") return newLayout();
  throw new UsageError(
    `'${s}' is ambiguous: for a layout write './${s}' or 'oci:${s}' (oci-archive:${s} for an archive); ` +
      `for an image write its registry, e.g. 'docker.io/${
        s.includes("/") ? s : `library/${s}`
      }' or 'docker://${s}'`,
  );
}

/**
 * A location from what a caller holds: a string goes through
 * {@link resolveLocation}, an `ImageName` is a registry location, a
 * `Location` is returned as it is.
 *
 * @param at a string, image name or location
 * @param options what the caller accepts (strings only)
 * @returns the location
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName, toLocation } from "@ocipkg/cli";
 * const name = ImageName.parse("ghcr.io/org/libfoo:1");
 * assert.deepEqual(await toLocation(name), { kind: "registry", name });
 * assert.equal((await toLocation("oci:out:v1")).kind, "oci-dir");
 * ```
 */
export async function toLocation(
  at: string | ImageName | Location,
  options: ResolveOptions = {},
): Promise<Location> {
  if (typeof at === "string") return await resolveLocation(at, options);
  if (at instanceof ImageName) return { kind: "registry", name: at };
  return at;
}

/** An image opened from a location: its target, manifest or index, and name. */
export interface OpenedImage<T extends ReadTarget> {
  /** Where it is; close it when done (`abort()` a writable one to leave it unchanged). */
  target: T;
  /** Its manifest or index. */
  subject: Descriptor;
  /** Its name: the registry image, or a layout image's ref name when that is one. */
  name?: ImageName;
  /** The location. */
  location: Location;
}

/**
 * The one way to open the image a location names and resolve its reference:
 * every command that reads (or, with `write`, changes) one image by name goes
 * through it. A layout must exist when `write` is set (nothing is created).
 *
 * @param at a string (through {@link resolveLocation}), image name or location
 * @param options client options; `write` for a writable target
 * @returns the target (close it) and the image
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openImage, packDirectory } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * const packed = await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * const { target, subject, name } = await openImage(`${tmp}/foo.tar`);
 * assert.equal(subject.digest, packed.digest);
 * assert.equal(name?.toString(), "example.com/foo:1");
 * await target.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function openImage<W extends boolean = false>(
  at: string | ImageName | Location,
  options: RegistryTargetOptions & { write?: W; accept?: ResolveOptions["accept"] } = {},
): Promise<OpenedImage<W extends true ? Target : ReadTarget>> {
  const location = await toLocation(at, { accept: options.accept ?? "any" });
  if (options.write && isStdio(location)) {
    throw new UsageError("an oci-archive on stdin cannot be changed in place; copy it to a file");
  }
  if (options.write && location.kind !== "registry" && !(await pathExists(location.path))) {
    throw new OcipkgError(`${location.kind} '${location.path}' does not exist`);
  }
  const target: ReadTarget = options.write
    ? await createLocation(location, options)
    : await openLocation(location, options);
  try {
    const subject = await target.resolve(referenceOf(location));
    let name: ImageName | undefined;
    if (location.kind === "registry") name = location.name;
    else {
      const ref = subject.annotations?.[ANNOTATION_REF_NAME] ?? location.ref;
      try {
        name = ref ? ImageName.parse(ref) : undefined;
      } catch { /* a bare tag: no repository name */ }
    }
    return { target, subject, name, location } as OpenedImage<
      W extends true ? Target : ReadTarget
    >;
  } catch (e) {
    await ("abort" in target ? (target as Target).abort() : target.close()).catch(() => {});
    throw e;
  }
}

/**
 * Open a location for reading: a registry repository or a layout.
 *
 * @param loc the location
 * @param options registry client options
 * @returns the target; close it when done
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openLocation, packDirectory, resolveLocation } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "a");
 * const packed = await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * const layout = await openLocation(await resolveLocation(`${tmp}/foo.tar`));
 * assert.equal((await layout.resolve("example.com/foo:1")).digest, packed.digest);
 * await layout.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function openLocation(
  loc: Location,
  options: RegistryTargetOptions = {},
): Promise<ListableTarget | ReadTarget> {
  if (loc.kind === "registry") return openRepository(loc.name, options);
  // the archive modules (and the tar stack under them) load only when an archive is opened
  if (isStdio(loc)) return await (await import("./layout/stdio_archive.ts")).openStdinArchive();
  if (loc.kind === "oci-dir") return await OciDir.open(loc.path);
  return await (await import("./layout/oci_archive.ts")).OciArchive.open(loc.path);
}

/**
 * Open (create) a location for writing.
 *
 * @param loc the location
 * @param options registry client options; for a layout, `soleImage`: the
 *   images written must be alone in it (see `OciDirOptions.soleImage`)
 * @returns the target; call `close()` to commit (archives) or `abort()`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLocation, openLocation, resolveLocation } from "@ocipkg/cli";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * const tmp = await Deno.makeTempDir();
 * const loc = await resolveLocation(`${tmp}/new.tar`);
 * assert.equal(loc.kind, "oci-archive");
 * const w = await createLocation(loc);
 * const d = await pushBytes(w, "text/plain", new TextEncoder().encode("hi"));
 * await w.close(); // writes the archive
 * const r = await openLocation(loc);
 * assert.ok(await r.exists(d));
 * await r.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function createLocation(
  loc: Location,
  options: RegistryTargetOptions & { soleImage?: boolean } = {},
): Promise<Target> {
  // a target written to reads from its registry alone: a mirror's tag may be stale
  if (loc.kind === "registry") return openRepositoryToWrite(loc.name, options);
  if (isStdio(loc)) return await (await import("./layout/stdio_archive.ts")).createStdoutArchive();
  const st = await pathExists(loc.path) ? await Deno.stat(loc.path) : undefined;
  if (loc.kind === "oci-dir") {
    if (st && !st.isDirectory) {
      throw new OcipkgError(`output '${loc.path}' exists and is not a directory`);
    }
    return OciDir.open(loc.path, { create: true, soleImage: options.soleImage });
  }
  if (st?.isDirectory) {
    throw new OcipkgError(`output '${loc.path}' is a directory, not an oci-archive file`);
  }
  const { OciArchive } = await import("./layout/oci_archive.ts");
  return OciArchive.open(loc.path, { write: true, soleImage: options.soleImage });
}

/**
 * Whether a location is the oci-archive on stdin (read) or stdout (written): `-`.
 *
 * @param loc the location
 * @returns true for `-` and `oci-archive:-[:ref]`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isStdio, resolveLocation } from "./location.ts";
 * assert.ok(isStdio(await resolveLocation("oci-archive:-:v1")));
 * assert.ok(!isStdio(await resolveLocation("./-"))); // a file named '-'
 * ```
 */
export function isStdio(loc: Location): boolean {
  return loc.kind === "oci-archive" && loc.path === STDIO_PATH;
}

/**
 * The reference a location asks for: the image's tag or digest, or the
 * layout's `:<ref>` (undefined: the layout's only image).
 *
 * @param loc the location
 * @returns the reference
 */
export function referenceOf(loc: Location): string | undefined {
  return loc.kind === "registry" ? loc.name.reference : loc.ref;
}
