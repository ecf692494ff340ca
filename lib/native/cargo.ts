/**
 * `ocipkg cargo build` / `publish`: build a crate with cargo, pack its
 * `staticlib` and `cdylib` outputs (and binaries on request) as an ocipkg
 * artifact named `{registry}:{git short revision}` (`…-dirty` when the sources
 * differ from that revision), with annotations from Cargo metadata — the
 * conventions of the Rust `cargo ocipkg` — and push what was just built.
 *
 * @module
 */
import { dirname, isAbsolute, join, relative, resolve, sep } from "../util/path.ts";
import { composeFiles } from "../ops/artifact.ts";
import { digestOf } from "../oci/digest.ts";
import { NotFoundError, OcipkgError, UsageError } from "../util/errors.ts";
import { pathExists } from "../util/files.ts";
import { currentOcipkg, writeLauncher } from "./launcher.ts";
import type { Platform } from "../oci/manifest.ts";
import {
  ANNOTATION_DESCRIPTION,
  ANNOTATION_TITLE,
  ANNOTATION_VERSION,
} from "../oci/media_types.ts";
import { hostPlatform, parsePlatform } from "../oci/platform.ts";
import { ImageName, imageName } from "../oci/reference.ts";
import { pushImage } from "../ops/transfer.ts";
import type { RemoteOptions } from "../transport/location.ts";

/** A build target of a Cargo package (from `cargo metadata`). */
export interface CargoTarget {
  /** Target name. */
  name: string;
  /** Kinds: `lib`, `staticlib`, `cdylib`, `bin`, … */
  kind: string[];
  /** Crate types. */
  crate_types: string[];
}

/** A Cargo package (from `cargo metadata`). */
export interface CargoPackage {
  /** Package name. */
  name: string;
  /** Version. */
  version: string;
  /** Package id. */
  id: string;
  /** Path of its Cargo.toml. */
  manifest_path: string;
  /** Its targets. */
  targets: CargoTarget[];
  /** `[package.metadata]`. */
  metadata: unknown;
  /** SPDX license expression. */
  license?: string | null;
  /** Description. */
  description?: string | null;
  /** Homepage URL. */
  homepage?: string | null;
  /** Repository URL. */
  repository?: string | null;
  /** Authors. */
  authors?: string[];
  /** Dependencies; `path` is set for path dependencies. */
  dependencies?: { name: string; path?: string }[];
}

/** The parts of `cargo metadata --format-version 1` ocipkg reads. */
export interface CargoMetadata {
  /** Workspace packages (with `--no-deps`). */
  packages: CargoPackage[];
  /** Ids of the workspace members. */
  workspace_members: string[];
  /** The target directory. */
  target_directory: string;
  /** The workspace root. */
  workspace_root: string;
}

/** Options of {@link cargoBuild} and {@link cargoPublish}. */
export interface CargoOptions extends RemoteOptions {
  /** Path of Cargo.toml (default: found from `cwd`). */
  manifestPath?: string;
  /** Directory to run in (default: the current one). */
  cwd?: string;
  /** Build the release profile. */
  release?: boolean;
  /** Package in the workspace (default: the one at `cwd`). */
  package?: string;
  /** Rust target triples (default: the host). Several are packed separately and published as one index. */
  targets?: string[];
  /** Image name (default: `{registry}:{git short revision}`, `{registry}:{revision}-dirty` when the sources have uncommitted changes). */
  tag?: string;
  /** Pack `bin` targets too. */
  bins?: boolean;
  /** The cargo program (default: `$CARGO` or `cargo`). */
  cargo?: string;
}

/** One packed build. */
export interface CargoBuildResult {
  /** Image name. */
  name: ImageName;
  /** Manifest digest. */
  digest: string;
  /** The oci-archive written. */
  archive: string;
  /** Files packed. */
  files: string[];
  /** The target triple, or undefined for the host. */
  triple?: string;
  /** Platform of the files. */
  platform: Platform;
  /** A path that differs from the git revision (the tag then ends in `-dirty`), if any. */
  dirty?: string;
}

function cargoProgram(options: CargoOptions): string {
  return options.cargo ?? Deno.env.get("CARGO") ?? "cargo";
}

async function runCargo(
  options: CargoOptions,
  args: string[],
  capture: boolean,
): Promise<string> {
  const program = cargoProgram(options);
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(program, {
      args,
      cwd: options.cwd,
      stdin: "null",
      stdout: capture ? "piped" : "inherit",
      stderr: capture ? "piped" : "inherit",
    }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new OcipkgError(`cargo not found: '${program}' is not on PATH (set $CARGO)`);
    }
    throw e;
  }
  if (!out.success) {
    const detail = capture ? new TextDecoder().decode(out.stderr).trim().split("\n").at(-1) : "";
    throw new OcipkgError(
      `cargo ${args[0]} failed (exit ${out.code})${detail ? `: ${detail}` : ""}`,
    );
  }
  return capture ? new TextDecoder().decode(out.stdout) : "";
}

/**
 * Run `cargo metadata --no-deps` and parse it.
 *
 * @param options manifest path, cwd, cargo program
 * @returns the metadata
 * @throws {OcipkgError} when cargo fails (no Cargo.toml, bad manifest)
 */
export async function cargoMetadata(options: CargoOptions = {}): Promise<CargoMetadata> {
  const args = ["metadata", "--format-version", "1", "--no-deps", "--offline"];
  if (options.manifestPath) args.push("--manifest-path", options.manifestPath);
  return JSON.parse(await runCargo(options, args, true)) as CargoMetadata;
}

/**
 * Pick the package to build: `-p name`, else the one whose directory holds
 * `cwd` (deepest first), else the only workspace member.
 *
 * @param meta cargo metadata
 * @param name package name from `-p`
 * @param cwd the working directory
 * @returns the package
 * @throws {UsageError} listing the members when none fits
 */
export function selectPackage(
  meta: CargoMetadata,
  name: string | undefined,
  cwd: string,
): CargoPackage {
  const members = meta.packages.filter((p) => meta.workspace_members.includes(p.id));
  const names = members.map((p) => p.name).join(", ");
  if (name !== undefined) {
    const p = members.find((m) => m.name === name);
    if (!p) throw new UsageError(`package '${name}' is not in the workspace (members: ${names})`);
    return p;
  }
  const here = resolve(cwd);
  const containing = members
    .filter((p) => !relative(dirname(p.manifest_path), here).startsWith(".."))
    .sort((a, b) => b.manifest_path.length - a.manifest_path.length);
  const p = containing[0] ?? (members.length === 1 ? members[0] : undefined);
  if (!p) throw new UsageError(`several packages in the workspace (${names})`);
  return p;
}

/**
 * The registry of `[package.metadata.ocipkg] registry = "…"`.
 *
 * @param pkg the package
 * @returns e.g. `ghcr.io/org/libfoo`
 * @throws {UsageError} naming the Cargo.toml when it is missing or not a string
 */
export function ocipkgRegistry(pkg: CargoPackage): string {
  const meta = pkg.metadata as { ocipkg?: { registry?: unknown } } | null;
  const registry = meta?.ocipkg?.registry;
  if (typeof registry !== "string" || registry === "") {
    throw new UsageError(
      `crate '${pkg.name}' has no [package.metadata.ocipkg] registry = "host/name" in ${pkg.manifest_path}`,
    );
  }
  return registry;
}

async function git(dir: string, args: string[]): Promise<Deno.CommandOutput | undefined> {
  try {
    return await new Deno.Command("git", {
      args: ["--no-optional-locks", ...args], // a read never writes the index
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch {
    return undefined; // no git
  }
}

/** The git state of a crate's sources (see {@link gitRevision}). */
export interface GitRevision {
  /** The short (7 hex digits) revision of HEAD, attached or detached. */
  commit: string;
  /** The first path (relative to the repository's top) that differs from HEAD, if any. */
  dirty?: string;
  /** The revision as the tag names it: `commit`, or `commit-dirty` when `dirty`. */
  tag: string;
}

/** What {@link gitRevision} counts as the sources. */
export interface GitSources {
  /** Directories (or files) whose changes make the tree dirty (default: `dir`). */
  sources?: string[];
  /** Paths whose changes do not count (the cargo target directory). */
  excluded?: string[];
  /** Files that do not count while untracked, as cargo writes them (an uncommitted Cargo.lock). */
  generated?: string[];
}

/**
 * The git revision of the repository holding `dir`, and whether the sources
 * differ from it: a tracked file changed (staged or not) or deleted, or an
 * untracked file that is not ignored — `excluded` and untracked `generated`
 * paths aside.
 *
 * @param dir a directory in a git work tree (a detached HEAD is fine)
 * @param paths the sources, and what does not count
 * @returns the revision, or undefined when `dir` is not in a git repository with a commit
 * @throws {OcipkgError} when `git status` fails in a repository
 */
export async function gitRevision(
  dir: string,
  paths: GitSources = {},
): Promise<GitRevision | undefined> {
  const head = await git(dir, ["rev-parse", "--short=7", "--show-toplevel", "HEAD"]);
  const [top, commit] = head?.success
    ? new TextDecoder().decode(head.stdout).trim().split("\n")
    : [];
  if (!top || !commit || !/^[0-9a-f]{7,}$/.test(commit)) return undefined;
  // git runs at the top, with paths relative to it, so that symlinked paths (/tmp, /var) match
  const root = await Deno.realPath(top);
  const inside = async (list: string[]) => {
    const out: string[] = [];
    for (const path of list) {
      const real = await Deno.realPath(path).catch(() => resolve(path));
      const rel = relative(root, real);
      if (rel.startsWith("..") || isAbsolute(rel)) continue; // outside this repository
      out.push(rel === "" ? "." : rel.replaceAll(sep, "/"));
    }
    return out;
  };
  const sources = await inside(paths.sources ?? [dir]);
  if (sources.length === 0) return { commit, tag: commit };
  const excluded = await inside(paths.excluded ?? []);
  const generated = new Set(await inside(paths.generated ?? []));
  const status = await git(root, [
    "status",
    "--porcelain=v1",
    "-z",
    "--untracked-files=normal",
    "--",
    ...sources.map((p) => `:(literal)${p}`),
    ...excluded.map((p) => `:(exclude,literal)${p}`),
  ]);
  if (!status?.success) {
    const detail = status ? new TextDecoder().decode(status.stderr).trim().split("\n")[0] : "";
    throw new OcipkgError(`git status failed in ${root}${detail ? `: ${detail}` : ""}`);
  }
  // entries `XY path`, NUL-terminated; a rename or copy is followed by its source path
  const fields = new TextDecoder().decode(status.stdout).split("\0");
  let dirty: string | undefined;
  for (let i = 0; i < fields.length && !dirty; i++) {
    const entry = fields[i]!;
    if (entry.length < 4) continue;
    const [xy, path] = [entry.slice(0, 2), entry.slice(3)];
    if (/[RC]/.test(xy)) i++;
    if (!(xy === "??" && generated.has(path))) dirty = path;
  }
  return dirty ? { commit, dirty, tag: `${commit}-dirty` } : { commit, tag: commit };
}

/** Annotations from Cargo metadata (DESIGN §2). */
function annotationsOf(pkg: CargoPackage, revision: string | undefined): Record<string, string> {
  const a: Record<string, string | null | undefined> = {
    [ANNOTATION_TITLE]: pkg.name,
    [ANNOTATION_VERSION]: pkg.version,
    "org.opencontainers.image.url": pkg.homepage ?? pkg.repository,
    "org.opencontainers.image.source": pkg.repository,
    "org.opencontainers.image.licenses": pkg.license,
    [ANNOTATION_DESCRIPTION]: pkg.description,
    "org.opencontainers.image.revision": revision,
    "org.opencontainers.image.authors": pkg.authors?.length ? pkg.authors.join(",") : undefined,
  };
  return Object.fromEntries(
    Object.entries(a).filter((e): e is [string, string] => typeof e[1] === "string"),
  );
}

function profileDir(meta: CargoMetadata, options: CargoOptions, triple?: string): string {
  const profile = options.release ? "release" : "debug";
  return triple
    ? join(meta.target_directory, triple, profile)
    : join(meta.target_directory, profile);
}

/**
 * The output files of a package's library (and, with `bins`, binary) targets
 * for a target OS.
 *
 * @param pkg the package
 * @param dir the profile directory (`target/[triple/]<profile>`)
 * @param triple the target triple (default: the host's)
 * @param bins include `bin` targets
 * @returns paths, in target order
 */
export function cargoOutputs(
  pkg: CargoPackage,
  dir: string,
  triple: string | undefined,
  bins: boolean,
): string[] {
  const os = triple ? parsePlatform(triple).os : hostPlatform().os;
  const msvc = triple ? triple.endsWith("-msvc") : Deno.build.target.endsWith("-msvc");
  const out: string[] = [];
  for (const t of pkg.targets) {
    const n = t.name.replaceAll("-", "_");
    if (t.crate_types.includes("staticlib")) {
      out.push(join(dir, os === "windows" && msvc ? `${n}.lib` : `lib${n}.a`));
    }
    if (t.crate_types.includes("cdylib")) {
      out.push(
        join(
          dir,
          os === "windows" ? `${n}.dll` : os === "darwin" ? `lib${n}.dylib` : `lib${n}.so`,
        ),
      );
      if (os === "windows") out.push(join(dir, msvc ? `${n}.dll.lib` : `lib${n}.dll.a`));
    }
    if (bins && t.kind.includes("bin")) {
      out.push(join(dir, os === "windows" ? `${t.name}.exe` : t.name));
    }
  }
  return out;
}

/**
 * Where `cargo ocipkg build` writes the archive of a package for a target:
 * `target/[triple/]<profile>/ocipkg_<hash>.tar`.
 *
 * @param meta cargo metadata
 * @param pkg the package
 * @param options release profile
 * @param triple the target triple (default: the host's)
 * @returns the archive path
 */
export function cargoArchivePath(
  meta: CargoMetadata,
  pkg: CargoPackage,
  options: CargoOptions,
  triple?: string,
): string {
  const hash = digestOf(new TextEncoder().encode(`${pkg.id}\n${triple ?? ""}`)).slice(7, 23);
  return join(profileDir(meta, options, triple), `ocipkg_${hash}.tar`);
}

async function context(options: CargoOptions) {
  const meta = await cargoMetadata(options);
  const pkg = selectPackage(meta, options.package, options.cwd ?? Deno.cwd());
  const triples: (string | undefined)[] = options.targets?.length ? options.targets : [undefined];
  for (const t of triples) if (t) parsePlatform(t); // a clear error for a bad triple
  return { meta, pkg, triples };
}

/**
 * Build a crate and pack its outputs, one oci-archive per target triple. The
 * image is named `{registry}:{git short revision}` (or `tag`); when the
 * sources (the workspace, its Cargo.lock, path dependencies; not the target
 * directory) have uncommitted changes or untracked, unignored files, the tag
 * is `{revision}-dirty` instead, so that it never names a commit the build
 * did not come from. Outside a git repository there is no revision: `tag` is
 * then needed (as with the Rust `cargo ocipkg`). Annotations come from Cargo
 * metadata (`org.opencontainers.image.revision` is the same revision, with
 * its `-dirty`); the platform is the target's.
 *
 * @param options manifest path, package, release, targets, tag, bins
 * @returns one result per target
 * @throws {UsageError} when the crate has no registry metadata and no tag is given
 * @throws {NotFoundError} when the crate has nothing to pack
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectAny } from "@ocipkg/cli";
 * import { cargoBuild } from "@ocipkg/cli/native";
 *
 * // a crate with a cdylib target (needs cargo)
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/src`);
 * const toml = '[package]\nname = "foo"\nversion = "0.1.0"\nedition = "2021"\n\n[lib]\ncrate-type = ["cdylib"]\n';
 * await Deno.writeTextFile(`${tmp}/Cargo.toml`, toml);
 * await Deno.writeTextFile(`${tmp}/src/lib.rs`, '#[no_mangle]\npub extern "C" fn foo() -> i32 { 42 }\n');
 *
 * // without `tag`: `{registry}:{git short revision}`, the registry from [package.metadata.ocipkg]
 * const [r] = await cargoBuild({ cwd: tmp, tag: "ghcr.io/org/foo:1.0" });
 * assert.equal(r!.name.toString(), "ghcr.io/org/foo:1.0");
 * assert.ok(r!.files.some((f) => /(lib)?foo\.(so|dylib|dll)$/.test(f)));
 * const info = await inspectAny(`oci-archive:${r!.archive}`);
 * assert.equal(info.manifests[0]?.annotations["org.opencontainers.image.title"], "foo");
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function cargoBuild(options: CargoOptions = {}): Promise<CargoBuildResult[]> {
  const { meta, pkg, triples } = await context(options);
  const manifestDir = dirname(pkg.manifest_path);
  // the sources: the workspace (members, Cargo.toml, Cargo.lock) and path dependencies, not target/
  const sources = [meta.workspace_root, ...(pkg.dependencies ?? []).flatMap((d) => d.path ?? [])];
  const rev = await gitRevision(manifestDir, {
    sources,
    excluded: [meta.target_directory],
    generated: [join(meta.workspace_root, "Cargo.lock")],
  });
  let name: ImageName;
  if (options.tag) name = imageName(options.tag);
  else {
    const registry = ocipkgRegistry(pkg);
    if (!rev) {
      throw new UsageError(
        `cannot name the image of '${pkg.name}': ${manifestDir} is not in a git repository with a commit`,
      );
    }
    name = ImageName.parse(`${registry}:${rev.tag}`);
  }
  const results: CargoBuildResult[] = [];
  for (const triple of triples) {
    const files = cargoOutputs(pkg, profileDir(meta, options, triple), triple, !!options.bins);
    if (files.length === 0) {
      throw new NotFoundError(
        `crate '${pkg.name}' has no staticlib or cdylib target${options.bins ? " or binary" : ""}`,
      );
    }
    const args = ["build", "--manifest-path", pkg.manifest_path, "-p", pkg.name];
    if (options.release) args.push("--release");
    if (triple) args.push("--target", triple);
    await runCargo(options, args, false);
    const present = [];
    for (const f of files) {
      if (await pathExists(f)) present.push(f);
      else if (!/\.(dll\.lib|dll\.a)$/.test(f)) {
        throw new NotFoundError(`cargo build did not produce '${f}'`);
      }
    }
    const archive = cargoArchivePath(meta, pkg, options, triple);
    const platform = triple ? parsePlatform(triple) : hostPlatform();
    await Deno.remove(archive).catch(() => {}); // a fresh archive, not an extension
    const r = await composeFiles(present, `oci-archive:${archive}`, {
      name,
      annotations: annotationsOf(pkg, rev?.tag),
      platform,
    });
    const result: CargoBuildResult = {
      name,
      digest: r.digest,
      archive,
      files: present,
      triple,
      platform,
    };
    if (rev?.dirty) result.dirty = rev.dirty;
    results.push(result);
  }
  return results;
}

/**
 * Build, pack and push: {@link cargoBuild}, then push the archives it just
 * packed — never an older build's — under the same name. Several target
 * triples are pushed under one tag as a multi-platform index. cargo's own
 * fingerprints decide what to recompile, so publishing right after a build
 * recompiles nothing and pushes the digest that build printed.
 *
 * @param options the same options as the build (package, release, targets, tag, bins)
 * @returns the image name and digest pushed, and what was built
 * @throws {UsageError} when the crate has no registry metadata and no tag is given
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serve } from "@ocipkg/cli";
 * import { cargoPublish } from "@ocipkg/cli/native";
 *
 * // a crate with a cdylib target (needs cargo)
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/src`);
 * const toml = '[package]\nname = "foo"\nversion = "0.1.0"\nedition = "2021"\n\n[lib]\ncrate-type = ["cdylib"]\n';
 * await Deno.writeTextFile(`${tmp}/Cargo.toml`, toml);
 * await Deno.writeTextFile(`${tmp}/src/lib.rs`, '#[no_mangle]\npub extern "C" fn foo() -> i32 { 42 }\n');
 *
 * const registry = await serve({ root: `${tmp}/root`, addr: "127.0.0.1:0" }); // or ghcr.io, …
 * // with `targets: [...]`, one archive per target, published under one tag as an index
 * const options = { cwd: tmp, tag: `${registry.addr}/org/foo:1.0` };
 * const pushed = await cargoPublish(options); // builds first
 * assert.equal(pushed.name.toString(), options.tag);
 * assert.equal(pushed.digest, pushed.built[0]!.digest);
 * await registry.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function cargoPublish(
  options: CargoOptions = {},
): Promise<{ name: ImageName; digest: string; built: CargoBuildResult[] }> {
  const built = await cargoBuild(options);
  const archives = built.map((b) => `oci-archive:${b.archive}`);
  const pushed = await pushImage(archives, built[0]!.name, options);
  return { ...pushed, built };
}

/**
 * Install a `cargo-ocipkg` command so that `cargo ocipkg build …` runs
 * `ocipkg cargo build …`: a shell script calling this ocipkg (the compiled
 * executable, or `deno run` of this module).
 *
 * @param dir where to write it (default: `$CARGO_HOME/bin` or `~/.cargo/bin`)
 * @returns the path written
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { installCargoShim } from "@ocipkg/cli/native";
 * const bin = await Deno.makeTempDir(); // default: ~/.cargo/bin
 * const path = await installCargoShim(bin);
 * assert.equal(path, `${bin}/cargo-ocipkg`);
 * const script = await Deno.readTextFile(path);
 * assert.ok(script.startsWith("#!/bin/sh\n"));
 * assert.ok(script.includes(" cargo \"$@\"")); // runs `ocipkg cargo …`
 * assert.equal((await Deno.stat(path)).mode! & 0o111, 0o111); // executable
 * await Deno.remove(bin, { recursive: true });
 * ```
 */
export async function installCargoShim(dir?: string): Promise<string> {
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
  const target = dir ?? join(Deno.env.get("CARGO_HOME") ?? join(home, ".cargo"), "bin");
  await Deno.mkdir(target, { recursive: true });
  const ocipkg = currentOcipkg();
  if (Deno.build.os === "windows") {
    if (ocipkg.cli) {
      throw new OcipkgError("on Windows the cargo shim needs the compiled ocipkg.exe");
    }
    const path = join(target, "cargo-ocipkg.exe");
    await Deno.copyFile(ocipkg.exe, path); // the executable notices its name (see cli.ts)
    return path;
  }
  return await writeLauncher(
    join(target, "cargo-ocipkg"),
    ocipkg,
    ["cargo"],
    "cargo-ocipkg: `cargo ocipkg build …` runs `ocipkg cargo build …` (written by ocipkg)",
  );
}
