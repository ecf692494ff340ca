/**
 * Where images live, by name: `oci:<dir>[:<ref>]`, `oci-archive:<file>[:<ref>]`,
 * or a plain path (an existing directory is an oci-dir, anything else an
 * oci-archive).
 *
 * @module
 */
import { OcipkgError, UsageError } from "./errors.ts";
import { pathExists } from "./fs_util.ts";
import { OciArchive } from "./layout/oci_archive.ts";
import { OciDir } from "./layout/oci_dir.ts";
import type { ListableTarget, Target } from "./target.ts";

/** A parsed location of a layout. */
export interface LayoutLocation {
  /** Layout kind. */
  kind: "oci-dir" | "oci-archive";
  /** File system path. */
  path: string;
  /** Reference inside the layout (ref name or digest), if given. */
  ref?: string;
}

/**
 * Parse a layout location.
 *
 * @param s `oci:dir[:ref]`, `oci-archive:file[:ref]` or a path
 * @param format for plain paths that do not exist yet: `archive` (default) or `dir`
 * @returns the location
 * @example
 * ```ts
 * import { parseLayoutLocation } from "./location.ts";
 * const l = await parseLayoutLocation("oci:out:v1");
 * console.assert(l.kind === "oci-dir" && l.path === "out" && l.ref === "v1");
 * ```
 */
export async function parseLayoutLocation(
  s: string,
  format: "archive" | "dir" = "archive",
): Promise<LayoutLocation> {
  const m = /^(oci|oci-dir|oci-archive):(.*)$/.exec(s);
  if (m) {
    const rest = m[2]!;
    const colon = rest.indexOf(":");
    const path = colon < 0 ? rest : rest.slice(0, colon);
    const ref = colon < 0 ? undefined : rest.slice(colon + 1);
    if (!path) throw new UsageError(`location '${s}' has no path`);
    const loc: LayoutLocation = { kind: m[1] === "oci-archive" ? "oci-archive" : "oci-dir", path };
    if (ref) loc.ref = ref;
    return loc;
  }
  if (!s) throw new UsageError("empty path");
  let isDir = format === "dir";
  if (await pathExists(s)) {
    try {
      isDir = (await Deno.stat(s)).isDirectory;
    } catch { /* let open report it */ }
  }
  return { kind: isDir ? "oci-dir" : "oci-archive", path: s };
}

/**
 * Open a layout for reading.
 *
 * @param loc the location
 * @returns the target
 */
export function openLayout(loc: LayoutLocation): Promise<ListableTarget & Target> {
  return loc.kind === "oci-dir" ? OciDir.open(loc.path) : OciArchive.open(loc.path);
}

/**
 * Open (create) a layout for writing.
 *
 * @param loc the location
 * @returns the target; call `close()` to commit (archives) or `abort()`
 */
export async function createLayout(loc: LayoutLocation): Promise<Target> {
  if (loc.kind === "oci-dir") {
    if (await pathExists(loc.path) && !(await Deno.stat(loc.path)).isDirectory) {
      throw new OcipkgError(`output '${loc.path}' exists and is not a directory`);
    }
    return OciDir.open(loc.path, { create: true });
  }
  if (await pathExists(loc.path) && (await Deno.stat(loc.path)).isDirectory) {
    throw new OcipkgError(
      `output '${loc.path}' is a directory; use --format dir or oci:${loc.path}`,
    );
  }
  return OciArchive.open(loc.path, { write: true });
}
