/**
 * `ocipkg link`: get a package and link its libraries.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import {
  jsonOption,
  lockOptions,
  platformOption,
  registryHints,
  registryOptions,
} from "./shared.ts";
import { limitOptions, verifyOption } from "./install_options.ts";

/** The command's table (its work: `link_run.ts`). */
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
});
