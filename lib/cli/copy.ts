/**
 * `ocipkg copy`: an image between registries, oci-dirs and oci-archives. Each
 * side may have its own connection settings and credentials (`--from-…`,
 * `--to-…`, as ORAS has them); `--plain-http` and `--ca-file` apply to both,
 * and the config file's `registries` entries where no flag is given.
 *
 * @module
 */
import {
  copyImage,
  type Location,
  type RemoteOptions,
  resolveLocation,
  UsageError,
} from "../../mod.ts";
import type { ClientOptions } from "../transport/mod.ts";
import { readStdinSecret } from "../util/stdio.ts";
import { isStdio } from "../transport/mod.ts";
import { defineCommand, optionGroup, type OptionValues } from "./options.ts";
import { out } from "./output.ts";
import { progressOptions, withProgress } from "./progress.ts";
import {
  platformSelection,
  registryHints,
  registryOptions,
  remote,
  selectedPlatform,
  signaturesOption,
} from "./shared.ts";

/** `--from-…`: the source's own settings. */
const fromOptions = optionGroup({
  "from-plain-http": { type: "boolean", description: "talk http, not https, to the source" },
  "from-ca-file": {
    type: "string",
    value: "pem",
    description: "trust the CA (or self-signed certificate) in this PEM file for the source",
  },
  "from-username": {
    type: "string",
    value: "user",
    description: "the user at the source registry (with --from-password-stdin)",
  },
  "from-password-stdin": {
    type: "boolean",
    description: "read the password for the source registry from stdin",
  },
});

/** `--to-…`: the destination's own settings. */
const toOptions = optionGroup({
  "to-plain-http": { type: "boolean", description: "talk http, not https, to the destination" },
  "to-ca-file": {
    type: "string",
    value: "pem",
    description: "trust the CA (or self-signed certificate) in this PEM file for the destination",
  },
  "to-username": {
    type: "string",
    value: "user",
    description: "the user at the destination registry (with --to-password-stdin)",
  },
  "to-password-stdin": {
    type: "boolean",
    description: "read the password for the destination registry from stdin",
  },
});

type Opts = OptionValues<typeof fromOptions & typeof toOptions>;

/**
 * One side's client options from its flags, over the shared ones.
 * @param side `from` or `to`
 * @param opts the parsed values
 * @param shared what `--plain-http`/`--ca-file` gave both sides
 * @param loc the side's location: its flags need a registry
 * @returns the side's own options (the password, from stdin, is added by the caller)
 */
function sideOf(
  side: "from" | "to",
  opts: Opts,
  shared: RemoteOptions,
  loc: Location,
): ClientOptions {
  const v = side === "from"
    ? {
      plainHttp: opts.fromPlainHttp,
      caFile: opts.fromCaFile,
      username: opts.fromUsername,
      stdin: opts.fromPasswordStdin,
    }
    : {
      plainHttp: opts.toPlainHttp,
      caFile: opts.toCaFile,
      username: opts.toUsername,
      stdin: opts.toPasswordStdin,
    };
  const given = [
    v.plainHttp && "plain-http",
    v.caFile !== undefined && "ca-file",
    v.username !== undefined && "username",
    v.stdin && "password-stdin",
  ].filter((f): f is string => typeof f === "string");
  if (given.length && loc.kind !== "registry") {
    throw new UsageError(
      `--${side}-${given[0]} applies to a registry; the ${
        side === "from" ? "source" : "destination"
      } is ${loc.kind} '${loc.path}'`,
    );
  }
  if (v.plainHttp && v.caFile !== undefined) {
    throw new UsageError(`give --${side}-plain-http or --${side}-ca-file, not both`);
  }
  if ((v.username === undefined) !== !v.stdin) {
    throw new UsageError(
      v.stdin
        ? `--${side}-password-stdin needs --${side}-username`
        : `--${side}-username needs its password on stdin: add --${side}-password-stdin`,
    );
  }
  const o: ClientOptions = {
    // a message names the flag that chose, else the side's own to suggest
    optionNames: {
      plainHttp: !v.plainHttp && shared.plainHttp ? "--plain-http" : `--${side}-plain-http`,
      caFile: v.caFile === undefined && shared.caFile !== undefined
        ? "--ca-file"
        : `--${side}-ca-file`,
    },
  };
  if (v.plainHttp) o.plainHttp = true;
  if (v.caFile !== undefined) {
    o.caFile = v.caFile;
    // this side's CA file says it speaks TLS, whatever --plain-http says for both
    if (shared.plainHttp) o.plainHttp = false;
  }
  if (v.username !== undefined) {
    o.credential = { username: v.username, source: `--${side}-username` };
  }
  return o;
}

/** The command. */
export default defineCommand({
  name: "copy",
  usage: "copy <src> <dst>  (image, docker://image, oci:dir[:ref], oci-archive:file[:ref])",
  summary: "Copy an image between registries, oci-dirs and oci-archives",
  positionals: [2, 2],
  options: {
    ...platformSelection,
    ...signaturesOption,
    ...registryOptions,
    ...fromOptions,
    ...toOptions,
    ...progressOptions,
  },
  examples: [
    {
      command: "ocipkg copy oci-archive:libfoo.tar localhost:5000/libfoo:1.0",
      description: "push an oci-archive to a registry",
    },
    {
      command: "ocipkg copy docker://ghcr.io/org/libfoo:1.0 oci:./mirror:1.0",
      description: "copy an image from a registry into an oci-dir, tagged 1.0",
    },
    {
      command:
        "ocipkg copy localhost:5000/libfoo:1.0 registry.internal:5443/libfoo:1.0 --from-plain-http --to-ca-file ca.crt",
      description: "from a plain-http registry to one with a private CA",
    },
    {
      command:
        'echo "$TOKEN" | ocipkg copy ghcr.io/org/libfoo:1.0 registry.internal/libfoo:1.0 --to-username ci --to-password-stdin',
      description: "log in to the destination for this copy only",
    },
  ],
  hints: registryHints,
  async run([src, dst], opts) {
    // both arguments through the one resolver, here at the edge
    const from = await resolveLocation(src!);
    const to = await resolveLocation(dst!);
    if (opts.fromPasswordStdin && opts.toPasswordStdin) {
      throw new UsageError(
        "stdin holds one password: give --from-password-stdin or --to-password-stdin, not both " +
          "(log in to the other registry with 'ocipkg login')",
      );
    }
    const shared = remote(opts);
    const sides = { from: sideOf("from", opts, shared, from), to: sideOf("to", opts, shared, to) };
    if (opts.fromPasswordStdin || opts.toPasswordStdin) {
      const flag = opts.fromPasswordStdin ? "--from-password-stdin" : "--to-password-stdin";
      if (isStdio(from)) {
        throw new UsageError(
          `stdin carries the source oci-archive ('-'), not also the password (${flag}); ` +
            "log in with 'ocipkg login' first",
        );
      }
      const password = await readStdinSecret(`the password (${flag})`);
      const side = opts.fromPasswordStdin ? sides.from : sides.to;
      side.credential = { ...side.credential, password };
    }
    const digest = await withProgress(
      opts,
      src!,
      (p) =>
        copyImage(from, to, {
          ...shared,
          ...sides,
          ...p,
          platform: selectedPlatform(opts),
          includeSignatures: opts.includeSignatures || undefined,
        }),
      () => "copied",
    );
    out(opts.json ? JSON.stringify({ source: src, destination: dst, digest }) : digest);
  },
});
