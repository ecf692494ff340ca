/**
 * Where the store keeps things: its root (the data dir of "ocipkg"), the
 * layout directory inside each entry, the prefix of temp directories, and
 * the platform part of an entry's directory name (`__<reference>+<key>` for
 * another platform than the host's).
 *
 * @module
 */
import { join } from "../util/path.ts";
import { UsageError } from "../util/errors.ts";
import type { Platform } from "../oci/manifest.ts";
import { formatPlatform, hostPlatform } from "../oci/platform.ts";
import { printable } from "../util/text.ts";

/** Name of the layout directory kept inside every installed image. */
export const LAYOUT_DIR = ".oci-dir";
/** Prefix of the temp directories installs and removals make beside an entry. */
export const TMP_PREFIX = ".tmp-";

/**
 * The data directory of "ocipkg": `$OCIPKG_DATA_DIR` if set; else on Linux
 * `$XDG_DATA_HOME/ocipkg` or `~/.local/share/ocipkg`; on macOS
 * `~/Library/Application Support/ocipkg`; on Windows `%APPDATA%\ocipkg\data`.
 *
 * @returns absolute path
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dataDir, Store } from "@ocipkg/cli";
 * const saved = Deno.env.get("OCIPKG_DATA_DIR");
 * Deno.env.set("OCIPKG_DATA_DIR", "/srv/ocipkg"); // e.g. a cache shared by CI jobs
 * assert.equal(dataDir(), "/srv/ocipkg");
 * assert.equal(new Store().root, "/srv/ocipkg"); // the default store
 * if (saved === undefined) Deno.env.delete("OCIPKG_DATA_DIR");
 * else Deno.env.set("OCIPKG_DATA_DIR", saved);
 * ```
 */
export function dataDir(): string {
  const env = (k: string) => Deno.env.get(k) || undefined;
  const own = env("OCIPKG_DATA_DIR");
  if (own) return own;
  const home = env("HOME") ?? env("USERPROFILE") ?? ".";
  switch (Deno.build.os) {
    case "darwin":
      return join(home, "Library", "Application Support", "ocipkg");
    case "windows":
      return join(env("APPDATA") ?? join(home, "AppData", "Roaming"), "ocipkg", "data");
    default:
      return join(env("XDG_DATA_HOME") ?? join(home, ".local", "share"), "ocipkg");
  }
}

/**
 * One part of a platform (os, architecture, variant) in a store path:
 * lower-case letters, digits, `.` and `_` (what OCI platforms use).
 */
const KEY_PART = /^[a-z0-9][a-z0-9._]{0,31}$/;

/**
 * The platform part of a non-host entry's directory name: `os-arch[-variant]`,
 * the variant `v8` of arm64 (its only one) left out. The directory is
 * `__<reference>+<key>`, chosen so that
 *
 * - no tag or digest directory can be one: `+` is outside the tag grammar
 *   (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`) and digest directories
 *   (`sha256__<hex>`), so the reference ends at the first `+`;
 * - it is portable: no character that Windows, macOS or Linux file systems
 *   reserve, and lower-case only (no clash on case-insensitive ones);
 * - it is safe in linker flags and build files: no `,` (the compiler splits
 *   `-Wl,` at commas), `:` (rpath and PKG_CONFIG_PATH separator), `;`, `$`
 *   (loader tokens, pkg-config variables), quotes or spaces.
 *
 * @throws {UsageError} for a platform whose parts are not {@link KEY_PART}
 */
export function platformKey(p: Platform): string {
  const variant = p.architecture === "arm64" && p.variant === "v8" ? undefined : p.variant;
  const parts = variant ? [p.os, p.architecture, variant] : [p.os, p.architecture];
  if (!parts.every((x) => KEY_PART.test(x))) {
    throw new UsageError(
      `invalid platform '${
        printable(formatPlatform(p))
      }': its os, architecture and variant must be lower-case letters, digits, '.' or '_'`,
    );
  }
  return parts.join("-");
}

/** The platform of a key, or undefined when it is not one. */
export function parsePlatformKey(key: string): Platform | undefined {
  const parts = key.split("-");
  if (parts.length < 2 || parts.length > 3 || !parts.every((x) => KEY_PART.test(x))) {
    return undefined;
  }
  const p: Platform = { os: parts[0]!, architecture: parts[1]! };
  if (parts[2]) p.variant = parts[2];
  return p;
}

/** Whether a platform's entry is the host's (`__<reference>`). */
export function isHost(p: Platform | undefined): boolean {
  return p === undefined || platformKey(p) === platformKey(hostPlatform());
}
