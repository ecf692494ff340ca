/**
 * `ocipkg link`: get a package and link its libraries.
 *
 * @module
 */
import { imageName, linkPackage, UsageError } from "../../mod.ts";
import { parsePlatform } from "../oci/mod.ts";
import { cargoLink, writeCmakeConfig, writePkgConfig } from "../native/mod.ts";
import { defineCommand } from "./options.ts";
import { info, out } from "./output.ts";
import {
  jsonOption,
  limitOptions,
  limits,
  lockOptions,
  lockSettings,
  platformOption,
  registryHints,
  registryOptions,
  remote,
  verifyOption,
  verifyPolicy,
} from "./shared.ts";

/** The command. */
export default defineCommand({
  name: "link",
  usage:
    "link <image> [--cargo] [--pkg-config] [--cmake] [--static|--dynamic] [--lib name]... [--platform p] [--name pkg] [--lock path] [--locked] [--verify-key pub... | --certificate-identity id --certificate-oidc-issuer url] [--json]",
  summary: "Get a package and link its libraries: Cargo lines, a .pc file, a CMake config",
  positionals: [1, 1],
  options: {
    cargo: {
      type: "boolean",
      description:
        "print cargo:rustc-link-* lines and metadata (in a build script: the platform from $TARGET, shared libraries also placed in $OUT_DIR)",
    },
    "pkg-config": { type: "boolean", description: "write a pkg-config .pc file" },
    cmake: { type: "boolean", description: "write a CMake package config" },
    static: { type: "boolean", description: "link the static libraries" },
    dynamic: { type: "boolean", description: "link the shared libraries" },
    lib: {
      type: "string",
      multiple: true,
      value: "name",
      description: "link this library only (default: every library of the package)",
    },
    platform: platformOption("the platform to link for", "$TARGET with --cargo, else this host's"),
    ...verifyOption,
    ...lockOptions,
    name: {
      type: "string",
      value: "pkg",
      default: "from the image name",
      description: "the package name of the .pc file and the CMake config",
    },
    ...jsonOption,
    refresh: {
      type: "boolean",
      description: "ask the registry whether a tag moved, even if the store holds it",
    },
    ...registryOptions,
    ...limitOptions,
  },
  examples: [
    {
      command: "ocipkg link ghcr.io/org/libfoo:1.0 --cargo --static",
      description: "from build.rs: link libfoo statically",
    },
    {
      command: "ocipkg link ghcr.io/org/libfoo:1.0 --pkg-config",
      description: "write libfoo.pc; prints the PKG_CONFIG_PATH to use",
    },
    {
      command: "ocipkg link ghcr.io/org/libfoo:1.0 --cmake --lib foo",
      description: "write a CMake config for find_package(libfoo) with the library foo only",
    },
  ],
  hints: registryHints,
  async run([image], opts) {
    if (opts.static && opts.dynamic) throw new UsageError("give --static or --dynamic, not both");
    // in a build script, cargo's TARGET is the platform to link for
    const cargoTarget = opts.cargo ? Deno.env.get("TARGET") : undefined;
    const platform = opts.platform ?? (cargoTarget ? parsePlatform(cargoTarget) : undefined);
    const r = await linkPackage(imageName(image!), {
      ...verifyPolicy(opts),
      ...lockSettings(opts),
      ...limits(opts),
      ...remote(opts),
      refresh: opts.refresh,
      platform,
      prefer: opts.static ? "static" : opts.dynamic ? "dynamic" : undefined,
      libs: opts.lib,
    });
    const name = opts.name;
    for (const s of r.skipped ?? []) info(`warning: skipped '${s.path}': ${s.reason}`);
    if (opts.cargo) {
      // in a build script: shared libraries also go into $OUT_DIR, for dependents' cargo run/test
      const lines = await cargoLink(r, { outDir: Deno.env.get("OUT_DIR") || undefined });
      for (const line of lines) out(line);
    }
    if (opts.pkgConfig) {
      const pc = await writePkgConfig(r, { name });
      out(`PKG_CONFIG_PATH=${pc.searchPath}`);
      info(
        `wrote ${pc.path}; use: PKG_CONFIG_PATH=${pc.searchPath} pkg-config --cflags --libs ${pc.name}`,
      );
    }
    if (opts.cmake) {
      const c = await writeCmakeConfig(r, { name });
      out(`CMAKE_PREFIX_PATH=${c.prefix}`);
      info(
        `wrote ${c.path}; use: cmake -DCMAKE_PREFIX_PATH=${c.prefix} with find_package(${c.name}) and ${c.name}::${c.name}`,
      );
    }
    if (opts.json) out(JSON.stringify({ ...r, image: r.image.toString() }, null, 2));
    else if (!opts.cargo && !opts.pkgConfig && !opts.cmake) {
      for (const l of r.libraries) out(l.path);
    }
  },
});
