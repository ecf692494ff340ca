/**
 * `ocipkg cargo`: build a crate and pack its libraries, or publish them.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { registryHints, registryOptions } from "./shared.ts";

const usage =
  "cargo build|publish [--release] [-p pkg] [--target triple]... [-t image] [--bin] [--manifest-path p] | cargo install-shim [--dir d]";

/** The command's table (its work: `cargo_run.ts`). */
export default defineCommand({
  name: "cargo",
  usage,
  summary:
    "Build a crate and pack its libraries (build), build and push them (publish); also as `cargo ocipkg`",
  positionals: [1, 1],
  subcommands: { what: "subcommand", words: ["build", "publish", "install-shim"] },
  options: {
    release: { type: "boolean", short: "r", description: "build with the release profile" },
    package: {
      type: "string",
      short: "p",
      value: "pkg",
      default: "the package of the current directory",
      description: "the workspace package to build",
    },
    target: {
      type: "string",
      multiple: true,
      value: "triple",
      description: "build for this target (repeat for several; default: the host)",
    },
    tag: {
      type: "string",
      short: "t",
      value: "image",
      default:
        "[package.metadata.ocipkg] registry, tagged with the git short revision, <rev>-dirty with uncommitted changes or untracked files",
      description: "the image name",
    },
    bin: { type: "boolean", description: "pack binaries too" },
    "manifest-path": {
      type: "string",
      value: "p",
      default: "Cargo.toml of the current directory",
      description: "the Cargo.toml to build",
    },
    dir: {
      type: "string",
      value: "d",
      default: "$CARGO_HOME/bin, else ~/.cargo/bin",
      description: "install-shim: where to put cargo-ocipkg",
    },
    ...registryOptions,
  },
  examples: [
    {
      command: "ocipkg cargo build --release",
      description: "build the crate and pack its libraries into an oci-archive per target",
    },
    {
      command:
        "ocipkg cargo publish --release --target x86_64-unknown-linux-gnu --target aarch64-unknown-linux-gnu",
      description: "build for two targets and push them as one multi-platform image",
    },
    {
      command: "ocipkg cargo publish",
      description:
        "build (cargo recompiles what changed), pack and push; tagged <rev>, or <rev>-dirty when the sources differ from git HEAD",
    },
    {
      command: "ocipkg cargo install-shim",
      description: "install cargo-ocipkg so that `cargo ocipkg build` works",
    },
  ],
  hints: [
    { when: /several packages in the workspace/, add: "; choose one with -p" },
    { when: /has no \[package\.metadata\.ocipkg\] registry/, add: " (or give -t)" },
    { when: /^cannot name the image of/, add: " (give -t)" },
    { when: /has no staticlib or cdylib target$/, add: " (use --bin to pack binaries)" },
    ...registryHints,
  ],
});
