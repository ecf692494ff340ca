/**
 * Platforms: the host's, parsing `os/arch[/variant]` and Rust target triples,
 * and choosing a manifest from an index.
 *
 * @module
 */
import { NotFoundError, UsageError } from "../util/errors.ts";
import type { Descriptor, Index, Platform } from "./manifest.ts";

const ARCH: Record<string, string> = {
  x86_64: "amd64",
  amd64: "amd64",
  aarch64: "arm64",
  arm64: "arm64",
  i686: "386",
  i386: "386",
  armv7: "arm",
  arm: "arm",
  riscv64gc: "riscv64",
  riscv64: "riscv64",
  powerpc64le: "ppc64le",
  s390x: "s390x",
};
const OS: Record<string, string> = {
  linux: "linux",
  darwin: "darwin",
  macos: "darwin",
  windows: "windows",
  freebsd: "freebsd",
  netbsd: "netbsd",
  openbsd: "openbsd",
  dragonfly: "dragonfly",
  illumos: "illumos",
  solaris: "solaris",
  // systems that share a word with another in a triple: each is its own platform
  android: "android",
  androideabi: "android",
  ohos: "ohos",
  ios: "ios",
  tvos: "tvos",
  watchos: "watchos",
  visionos: "visionos",
  fuchsia: "fuchsia",
  wasi: "wasip1",
  emscripten: "emscripten",
};
/** Systems that win over `linux` when a triple names both (`aarch64-linux-android`). */
const OVER_LINUX = new Set(["android", "ohos"]);

/**
 * The platform this process runs on, in OCI terms.
 *
 * @returns e.g. `{ os: "linux", architecture: "amd64" }`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hostPlatform } from "@ocipkg/cli/oci";
 * const p = hostPlatform();
 * assert.equal(p.os, Deno.build.os); // linux, darwin, windows, …
 * assert.equal(p.architecture, Deno.build.arch === "x86_64" ? "amd64" : "arm64");
 * ```
 */
export function hostPlatform(): Platform {
  return {
    os: OS[Deno.build.os] ?? Deno.build.os,
    architecture: ARCH[Deno.build.arch] ?? Deno.build.arch,
  };
}

/**
 * Parse `os/arch[/variant]` or a Rust target triple (`x86_64-unknown-linux-gnu`).
 *
 * @param s the platform text
 * @returns the platform
 * @throws {UsageError} when it cannot be understood
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UsageError } from "@ocipkg/cli";
 * import { parsePlatform } from "@ocipkg/cli/oci";
 * assert.deepEqual(parsePlatform("linux/arm64/v8"), {
 *   os: "linux",
 *   architecture: "arm64",
 *   variant: "v8",
 * });
 * assert.deepEqual(parsePlatform("aarch64-apple-darwin"), { os: "darwin", architecture: "arm64" });
 * assert.equal(parsePlatform("aarch64-linux-android").os, "android"); // not linux
 * assert.equal(parsePlatform("aarch64-apple-ios").os, "ios"); // not darwin
 * assert.throws(() => parsePlatform("x86_64-unknown-linux-gnux32"), UsageError); // not amd64 code
 * assert.throws(() => parsePlatform("amiga"), UsageError);
 * ```
 */
export function parsePlatform(s: string): Platform {
  const slash = s.split("/");
  if (slash.length >= 2 && slash.length <= 3 && slash.every((p) => /^[a-z0-9_.-]+$/.test(p))) {
    const p: Platform = { os: slash[0]!, architecture: slash[1]! };
    if (slash[2]) p.variant = slash[2];
    return p;
  }
  const parts = s.split("-");
  const arch = parts[0]
    ? ARCH[parts[0]] ?? (parts[0].startsWith("armv7") ? "arm" : undefined)
    : undefined;
  const systems = parts.slice(1).map((x) => OS[x]).filter((x) => x !== undefined);
  const os = systems.find((x) => OVER_LINUX.has(x)) ?? systems[0];
  // a 32-bit ABI on a 64-bit machine (x32, ILP32) is neither amd64 nor arm64 code
  const abi = parts.slice(2).some((x) => /x32|ilp32/.test(x));
  if (parts.length >= 2 && arch && os && !abi) {
    const p: Platform = { os, architecture: arch };
    if (parts[0]!.startsWith("armv7")) p.variant = "v7";
    return p;
  }
  throw new UsageError(`invalid platform '${s}': use os/arch[/variant] or a Rust target triple`);
}

/**
 * Format a platform as `os/arch[/variant]`.
 *
 * @param p the platform
 * @returns its text form
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatPlatform, parsePlatform } from "@ocipkg/cli/oci";
 * assert.equal(formatPlatform({ os: "linux", architecture: "arm", variant: "v7" }), "linux/arm/v7");
 * assert.equal(formatPlatform(parsePlatform("x86_64-pc-windows-msvc")), "windows/amd64");
 * assert.equal(formatPlatform(undefined), "(any)");
 * ```
 */
export function formatPlatform(p: Platform | undefined): string {
  if (!p) return "(any)";
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/**
 * Whether a platform satisfies a wanted one (same os and architecture; a
 * variant only has to agree when both name one).
 *
 * @param have the platform of an image
 * @param want the wanted platform
 * @returns true when `have` can serve `want`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePlatform, platformMatches } from "@ocipkg/cli/oci";
 * const arm64 = parsePlatform("linux/arm64");
 * assert.ok(platformMatches(parsePlatform("linux/arm64/v8"), arm64));
 * assert.ok(!platformMatches(parsePlatform("linux/amd64"), arm64));
 * assert.ok(!platformMatches(parsePlatform("linux/arm/v6"), parsePlatform("linux/arm/v7")));
 * ```
 */
export function platformMatches(have: Platform, want: Platform): boolean {
  return have.os === want.os && have.architecture === want.architecture &&
    (!want.variant || !have.variant || have.variant === want.variant);
}

/**
 * Pick the manifest for `want` from an index.
 *
 * @param index the index
 * @param want the wanted platform (the host's by default)
 * @param where names the image in errors
 * @returns the matching entry
 * @throws {NotFoundError} listing the available platforms
 */
export function selectPlatform(index: Index, want: Platform, where: string): Descriptor {
  const candidates = index.manifests.filter((m) => m.platform && platformMatches(m.platform, want));
  const match = candidates[0] ??
    (index.manifests.length === 1 && !index.manifests[0]!.platform
      ? index.manifests[0]
      : undefined);
  if (match) return match;
  const have = index.manifests.map((m) => formatPlatform(m.platform)).join(", ");
  throw new NotFoundError(
    `${where} has no manifest for platform ${formatPlatform(want)} (available: ${have || "none"})`,
  );
}
