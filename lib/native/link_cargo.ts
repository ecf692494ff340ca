/**
 * Cargo build-script lines for a linked package. Cargo lines are
 * line-based: a value holding a control character is refused (a newline
 * would start another `cargo:` instruction).
 *
 * @module
 */
import type { LinkResult } from "./link.ts";
import { checkLibrary, CONTROL, rpathDirs, unsafe } from "./link_checks.ts";

/**
 * Cargo build-script lines for a link result, as the Rust `link_package`
 * prints them (plus `native=` search paths, shared libraries and an rpath so
 * a binary linked to a shared library finds it when run).
 *
 * @param r what {@link linkPackage} returned
 * @returns lines to print from `build.rs`
 * @throws {OcipkgError} when a path or name holds a control character, or an
 *   rpath directory holds `,`, `:` or a `$ORIGIN`-style token
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName } from "@ocipkg/cli";
 * import { cargoLinkLines } from "@ocipkg/cli/native";
 * // what linkPackage("ghcr.io/org/greet:1") returns, e.g. in a build.rs helper
 * const dir = "/data/ocipkg/ghcr.io/org/greet/__1";
 * const lines = cargoLinkLines({
 *   image: ImageName.parse("ghcr.io/org/greet:1"),
 *   dir,
 *   platform: { os: "linux", architecture: "amd64" },
 *   libraries: [{ name: "greet", kind: "static", file: "libgreet.a", path: `${dir}/libgreet.a`, dir }],
 *   searchDirs: [dir],
 * });
 * assert.equal(lines[0], `cargo:rustc-link-search=native=${dir}`);
 * assert.equal(lines[1], "cargo:rustc-link-lib=static=greet");
 * ```
 */
export function cargoLinkLines(r: LinkResult): string[] {
  const out = "Cargo build-script lines";
  const line = (what: string, v: string) => {
    if (CONTROL.test(v)) {
      throw unsafe(
        r,
        out,
        what,
        v,
        "it holds a control character (a newline would start another cargo: instruction)",
      );
    }
    return v;
  };
  const lines = r.searchDirs.map((d) =>
    `cargo:rustc-link-search=native=${line("search directory", d)}`
  );
  for (const lib of r.libraries) {
    checkLibrary(r, out, lib);
    const kind = lib.kind === "static" ? "static" : "dylib";
    lines.push(
      lib.verbatim
        ? `cargo:rustc-link-lib=${kind}:+verbatim=${lib.file}`
        : `cargo:rustc-link-lib=${kind}=${lib.name}`,
    );
  }
  for (const d of rpathDirs(r, out)) lines.push(`cargo:rustc-link-arg=-Wl,-rpath,${d}`);
  lines.push(
    `cargo:rerun-if-changed=${line("image directory", r.dir)}`,
    "cargo:rerun-if-env-changed=XDG_DATA_HOME",
    "cargo:rerun-if-env-changed=OCIPKG_DATA_DIR",
    "cargo:rerun-if-env-changed=OCIPKG_CONFIG",
  );
  // the lock that pinned it: `ocipkg lock --update` relinks
  if (r.lock) lines.push(`cargo:rerun-if-changed=${line("lock file", r.lock)}`);
  return lines;
}
