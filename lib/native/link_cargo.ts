/**
 * Cargo build-script lines for a linked package. Cargo lines are
 * line-based: a value holding a control character is refused (a newline
 * would start another `cargo:` instruction).
 *
 * Besides the link lines, the package is described to the crates that
 * depend on the linking one (a `-sys` crate with `links = "foo"` in its
 * Cargo.toml; Cargo hands them `DEP_FOO_<KEY>`): `cargo:root=`, `lib_dir`,
 * `rpath`, `include`, `version`, `image`. These use the one-colon
 * `cargo:KEY=VALUE` form, which every Cargo reads (`cargo::metadata=` needs
 * Cargo 1.77, and the `cargo::` form would make a build script's MSRV 1.77),
 * like the other lines printed here.
 *
 * @module
 */
import type { Store } from "../store/store.ts";
import type { LinkResult } from "./link.ts";
import { checkLibrary, CONTROL, rpathDirs, unsafe } from "./link_checks.ts";
import { packageInfo } from "./link_config.ts";
import { stageSharedLibraries } from "./link_stage.ts";

/** What {@link cargoLinkLines} adds to a link result. */
export interface CargoLinesOptions {
  /**
   * The directory the shared libraries were placed in, inside `$OUT_DIR`
   * (what {@link cargoLink} does): searched instead of the store directories
   * that hold only shared libraries, and the `lib_dir` printed.
   */
  libDir?: string;
  /** The package's version, printed as `cargo:version=` (checked by the caller). */
  version?: string;
}

/**
 * Cargo build-script lines for a link result, as the Rust `link_package`
 * prints them (plus `native=` search paths, shared libraries and an rpath so
 * a binary linked to a shared library finds it when run).
 *
 * Then the package's metadata (see the module): `root` (its store
 * directory), `lib_dir` (`libDir`, else the store directories holding the
 * libraries, joined like `PATH`), `rpath` (the store directories of shared
 * libraries, `:`-separated), `include`, `version` and `image`.
 *
 * @param r what {@link linkPackage} returned
 * @param options the directory of the placed shared libraries, the version
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
 * // for crates depending on a `links = "greet"` crate: DEP_GREET_LIB_DIR
 * assert.ok(lines.includes(`cargo:lib_dir=${dir}`));
 * ```
 */
export function cargoLinkLines(r: LinkResult, options: CargoLinesOptions = {}): string[] {
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
  const dirs = searchDirs(r, options.libDir);
  const lines = dirs.map((d) => `cargo:rustc-link-search=native=${line("search directory", d)}`);
  for (const lib of r.libraries) {
    checkLibrary(r, out, lib);
    const kind = lib.kind === "static" ? "static" : "dylib";
    lines.push(
      lib.verbatim
        ? `cargo:rustc-link-lib=${kind}:+verbatim=${lib.file}`
        : `cargo:rustc-link-lib=${kind}=${lib.name}`,
    );
  }
  const rpath = rpathDirs(r, out);
  for (const d of rpath) lines.push(`cargo:rustc-link-arg=-Wl,-rpath,${d}`);
  lines.push(
    `cargo:rerun-if-changed=${line("image directory", r.dir)}`,
    "cargo:rerun-if-env-changed=XDG_DATA_HOME",
    "cargo:rerun-if-env-changed=OCIPKG_DATA_DIR",
    "cargo:rerun-if-env-changed=OCIPKG_CONFIG",
  );
  // the lock that pinned it: `ocipkg lock --update` relinks
  if (r.lock) lines.push(`cargo:rerun-if-changed=${line("lock file", r.lock)}`);
  for (const [k, v] of metadataLines(r, options, dirs, rpath)) {
    lines.push(`cargo:${k}=${line(`${k} metadata`, v)}`);
  }
  return lines;
}

/** The directories to search: `libDir` instead of those holding only shared libraries. */
function searchDirs(r: LinkResult, libDir: string | undefined): string[] {
  if (libDir === undefined) return r.searchDirs;
  const kept = new Set(r.libraries.filter((l) => l.kind === "static").map((l) => l.dir));
  return [libDir, ...r.searchDirs.filter((d) => kept.has(d))];
}

/** The `cargo:KEY=VALUE` metadata a dependent's build script sees as `DEP_<LINKS>_<KEY>`. */
function metadataLines(
  r: LinkResult,
  options: CargoLinesOptions,
  dirs: string[],
  rpath: string[],
): [string, string][] {
  const list = Deno.build.os === "windows" ? ";" : ":";
  const meta: [string, string][] = [
    ["root", r.dir],
    ["lib_dir", options.libDir ?? dirs.join(list)],
  ];
  if (rpath.length) meta.push(["rpath", rpath.join(":")]);
  if (r.includeDir) meta.push(["include", r.includeDir]);
  if (options.version) meta.push(["version", options.version]);
  meta.push(["image", r.image.toString()]);
  return meta;
}

/** Options of {@link cargoLink}. */
export interface CargoLinkOptions {
  /**
   * The build script's `$OUT_DIR`: shared libraries are placed in
   * `<outDir>/ocipkg-lib/<key>/` for `cargo run`/`cargo test` of dependents.
   * Without it nothing is placed.
   */
  outDir?: string;
  /** The store to read the version annotation from (default: the one `r.dir` is in). */
  store?: Store;
}

/**
 * What `ocipkg link --cargo` prints in a build script: places the shared
 * libraries of a link result in `$OUT_DIR` (hard links, else copies, under
 * their file names and the soname their binaries ask for), then the lines
 * of {@link cargoLinkLines} with that directory and the package's version.
 * Cargo puts a search directory inside the target directory on the dynamic
 * library path when it runs binaries and tests, so a crate depending on a
 * `-sys` crate that links a shared library runs with `cargo run` and
 * `cargo test`; the `-sys` crate's own targets also get an rpath to the
 * store.
 *
 * @param r what {@link linkPackage} returned
 * @param options `outDir` (the build script's `$OUT_DIR`), store
 * @returns lines to print from `build.rs`
 * @throws {OcipkgError} when a value cannot be written (see {@link cargoLinkLines})
 *   or the libraries cannot be placed
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linkPackage, loadImage, packDirectory, Store } from "@ocipkg/cli";
 * import { cargoLink } from "@ocipkg/cli/native";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg/lib`, { recursive: true });
 * await Deno.writeTextFile(`${tmp}/pkg/lib/libfoo.so`, "");
 * const annotations = { "org.opencontainers.image.version": "1.2.0" };
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1", annotations });
 * const store = new Store(`${tmp}/store`);
 * await loadImage(`${tmp}/foo.tar`, { store });
 * const r = await linkPackage("example.com/foo:1", { store, platform: { os: "linux", architecture: "amd64" } });
 * const lines = await cargoLink(r, { outDir: `${tmp}/out` }); // OUT_DIR in a build script
 * const libDir = lines[0]!.slice("cargo:rustc-link-search=native=".length);
 * assert.ok(libDir.startsWith(`${tmp}/out/ocipkg-lib/`));
 * assert.ok((await Deno.stat(`${libDir}/libfoo.so`)).isFile);
 * assert.ok(lines.includes(`cargo:lib_dir=${libDir}`)); // DEP_FOO_LIB_DIR with links = "foo"
 * assert.ok(lines.includes("cargo:version=1.2.0"));
 * assert.ok(lines.includes(`cargo:rustc-link-arg=-Wl,-rpath,${r.dir}/lib`));
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function cargoLink(r: LinkResult, options: CargoLinkOptions = {}): Promise<string[]> {
  const libDir = options.outDir === undefined
    ? undefined
    : await stageSharedLibraries(r, options.outDir);
  const { version } = await packageInfo(r, options.store);
  return cargoLinkLines(r, { libDir, version });
}
