/**
 * The work of `ocipkg copy`: an image between registries, oci-dirs and
 * oci-archives. Its table (usage, options, examples) is `copy.ts`; this
 * module is loaded only when the command runs.
 *
 * @module
 */
import { copyImage } from "../ops/transfer.ts";
import {
  isStdio,
  type Location,
  type RemoteOptions,
  resolveLocation,
} from "../transport/location.ts";
import type { ClientOptions } from "../transport/registry/client.ts";
import { UsageError } from "../util/errors.ts";
import { readStdinSecret } from "../util/stdio.ts";
import { implement, type OptionValues } from "./options.ts";
import { out } from "./output.ts";
import { withProgress } from "./progress.ts";
import { remote, selectedPlatform } from "./shared.ts";
import command from "./copy.ts";

type Opts = OptionValues<typeof command.options>;

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

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([src, dst], opts) => {
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
});
