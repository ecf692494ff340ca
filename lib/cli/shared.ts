/**
 * Option groups several commands share, in one place: registry options
 * (`--plain-http`, `--ca-file`, `--concurrency`, `--parallel`, the timeouts with their
 * `OCIPKG_*` fallbacks), the platform, the layout format and compression level,
 * annotations, the lock — and their conversion into library options. Those of
 * the commands that install (extraction limits, signature checks) are in
 * `install_options.ts`: the others need not load what they import.
 *
 * @module
 */
import type { LockOptions, PackOptions, PackResult, RemoteOptions } from "../../mod.ts";
import { UsageError } from "../util/errors.ts";
import type { Platform } from "../oci/mod.ts";
import { parsePlatform } from "../oci/platform.ts";
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_LARGE_TRANSFERS,
  DEFAULT_RANGE_PARTS,
  DEFAULT_RANGE_THRESHOLD,
  DEFAULT_TIMEOUTS,
  LARGE_BLOB,
} from "../transport/defaults.ts";
import { type Hint, oneOf, optionGroup, type OptionValues } from "./options.ts";
import { debugLog, info, out } from "./output.ts";
import { parseSize } from "../util/text.ts";

export { parseSize };

function seconds(text: string, flag: string): number {
  const n = Number(text);
  if (!(n > 0) || !Number.isFinite(n)) {
    throw new UsageError(`invalid ${flag} '${text}': use a positive number of seconds`);
  }
  return n * 1000;
}

function rate(text: string, flag: string): number {
  const n = parseSize(text);
  if (n === undefined || !(n > 0)) {
    throw new UsageError(`invalid ${flag} '${text}': use a positive number of bytes per second`);
  }
  return n;
}

function concurrency(text: string, flag: string): number {
  if (!/^[1-9]\d{0,2}$/.test(text)) throw new UsageError(`invalid ${flag} '${text}': use 1-999`);
  return Number(text);
}

function parts(text: string, flag: string): number {
  if (!/^\d{1,2}$/.test(text)) throw new UsageError(`invalid ${flag} '${text}': use 0-99`);
  return Number(text);
}

/**
 * Registry options: `--plain-http`, `--ca-file`, `--concurrency`, `--parallel`, timeouts. The
 * config file's `registries` entry of a registry applies where a flag is not given.
 */
export const registryOptions = optionGroup({
  "plain-http": {
    type: "boolean",
    description:
      'talk http, not https (the default for loopback hosts without --ca-file; per registry: "plainHttp" in the config file)',
  },
  "ca-file": {
    type: "string",
    value: "pem",
    description:
      'also trust the CA (or self-signed certificate) in this PEM file (per registry: "caFile" in the config file)',
  },
  concurrency: {
    type: "string",
    value: "n",
    default: `${DEFAULT_CONCURRENCY}`,
    parse: concurrency,
    description:
      `requests in flight at once, 1-999; by default at most ${DEFAULT_LARGE_TRANSFERS} of them move blobs of ${
        LARGE_BLOB / 1024 ** 2
      } MiB or more`,
  },
  parallel: {
    type: "string",
    value: "n",
    env: "OCIPKG_PARALLEL",
    default: `${DEFAULT_RANGE_PARTS}; 1 for a loopback registry`,
    parse: parts,
    description: `ranged requests in flight for one blob of ${
      DEFAULT_RANGE_THRESHOLD / 1024 ** 2
    } MiB or more; 0 or 1: one stream`,
  },
  "connect-timeout": {
    type: "string",
    value: "seconds",
    env: "OCIPKG_CONNECT_TIMEOUT",
    default: `${DEFAULT_TIMEOUTS.connectTimeoutMs / 1000}`,
    parse: seconds,
    description:
      "time to connect and receive response headers; a request's retries share 1.5 × this",
  },
  "idle-timeout": {
    type: "string",
    value: "seconds",
    env: "OCIPKG_IDLE_TIMEOUT",
    default: `${DEFAULT_TIMEOUTS.idleTimeoutMs / 1000}`,
    parse: seconds,
    description: "time a response body may stall",
  },
  timeout: {
    type: "string",
    value: "seconds",
    env: "OCIPKG_TIMEOUT",
    default: `${DEFAULT_TIMEOUTS.totalTimeoutMs / 1000}`,
    parse: seconds,
    description: "time for a whole request, except blob downloads",
  },
  "min-rate": {
    type: "string",
    value: "bytes/s",
    env: "OCIPKG_MIN_RATE",
    default: `${DEFAULT_TIMEOUTS.minBytesPerSecond / 1024}K`,
    parse: rate,
    description: "slowest average rate of a blob download; K, M, G suffixes allowed",
  },
  "speed-limit": {
    type: "string",
    value: "bytes/s",
    env: "OCIPKG_SPEED_LIMIT",
    default: `${DEFAULT_TIMEOUTS.speedLimit / 1024}K`,
    parse: rate,
    description: "a response body slower than this over --speed-time fails; K, M suffixes allowed",
  },
  "speed-time": {
    type: "string",
    value: "seconds",
    env: "OCIPKG_SPEED_TIME",
    default: `${DEFAULT_TIMEOUTS.speedTimeMs / 1000}`,
    parse: seconds,
    description: "the window of --speed-limit",
  },
  "retry-budget": {
    type: "string",
    value: "seconds",
    env: "OCIPKG_RETRY_BUDGET",
    default: `${DEFAULT_TIMEOUTS.retryBudgetMs / 1000}`,
    parse: seconds,
    description: "time spent waiting between retries, in all",
  },
});

/**
 * Hints for registry errors (the library names the TLS flags itself: {@link remote} passes
 * their names).
 */
export const registryHints: Hint[] = [
  { when: /if it speaks TLS, do not use plain http/, add: " (drop --plain-http, give --ca-file)" },
];

/** How library messages name the TLS flags of {@link registryOptions}. */
export const FLAG_NAMES = { plainHttp: "--plain-http", caFile: "--ca-file" } as const;

/**
 * Library options from the registry group.
 * @param opts parsed values
 * @returns client options (with the `--debug` sink when on)
 */
export function remote(opts: OptionValues<typeof registryOptions>): RemoteOptions {
  const o: RemoteOptions = { optionNames: FLAG_NAMES };
  if (opts.plainHttp) o.plainHttp = true;
  if (opts.caFile) o.caFile = opts.caFile;
  if (opts.concurrency !== undefined) o.concurrency = opts.concurrency;
  if (opts.parallel !== undefined) o.rangeParts = opts.parallel;
  if (opts.connectTimeout !== undefined) o.connectTimeoutMs = opts.connectTimeout;
  if (opts.idleTimeout !== undefined) o.idleTimeoutMs = opts.idleTimeout;
  if (opts.timeout !== undefined) o.totalTimeoutMs = opts.timeout;
  if (opts.minRate !== undefined) o.minBytesPerSecond = opts.minRate;
  if (opts.speedLimit !== undefined) o.speedLimit = opts.speedLimit;
  if (opts.speedTime !== undefined) o.speedTimeMs = opts.speedTime;
  if (opts.retryBudget !== undefined) o.retryBudgetMs = opts.retryBudget;
  const debug = debugLog();
  if (debug) o.debug = debug;
  return o;
}

/**
 * The `--platform` option.
 * @param description what it chooses
 * @param byDefault the default, as shown in help
 * @returns the option
 */
export function platformOption(description: string, byDefault?: string) {
  return {
    type: "string",
    value: "os/arch[/variant]|triple",
    parse: parsePlatform,
    description,
    default: byDefault,
  } as const;
}

/** A platform to pick from an image: the one to install or link. */
export const pickPlatform = platformOption(
  "the platform to pick from a multi-platform image",
  "this host's",
);

/** `--platform` / `--all-platforms` of pull and copy: one platform, or (the default) all. */
export const platformSelection = optionGroup({
  platform: platformOption("copy only this platform's manifest of a multi-platform image", "all"),
  "all-platforms": {
    type: "boolean",
    description: "copy every platform of a multi-platform image (the default)",
  },
});

/**
 * The platform asked for with `--platform`, refusing it with `--all-platforms`.
 * @param opts parsed values
 * @returns the platform, or undefined for all
 */
export function selectedPlatform(
  opts: OptionValues<typeof platformSelection>,
): Platform | undefined {
  if (opts.platform && opts.allPlatforms) {
    throw new UsageError("give --platform or --all-platforms, not both");
  }
  return opts.platform;
}

function compressionLevel(text: string, flag: string): number {
  if (!/^[0-9]$/.test(text)) throw new UsageError(`invalid ${flag} '${text}': use 0-9`);
  return Number(text);
}

/** Writing a layout: `--format` (archive or dir). */
export const formatOptions = optionGroup({
  format: {
    type: "string",
    ...oneOf(["archive", "dir"]),
    default: "archive; dir for an existing directory",
    description: "write a plain output path as an oci-archive file or an oci-dir",
  },
});

/** Building an artifact: `--annotation`, `--format`. */
export const artifactOptions = optionGroup({
  annotation: {
    type: "string",
    multiple: true,
    short: "a",
    value: "key=value",
    description: "add a manifest annotation",
  },
  ...formatOptions,
});

/** Building a package: `--level` (gzip level), `--append`, `-q` besides the artifact options. */
export const packOptions = optionGroup({
  ...artifactOptions,
  append: {
    type: "boolean",
    description:
      "add the image to an output that already holds others (refused by default: one image per output)",
  },
  quiet: { type: "boolean", short: "q", description: "print only errors and the result" },
  level: {
    type: "string",
    value: "0-9",
    default: "1 for gzip, 3 for zstd",
    parse: compressionLevel,
    description: "compression level (gzip 0-9; zstd 1-9, 0 for its default 3)",
  },
});

/**
 * Annotations from `--annotation key=value` options.
 * @param list the values given
 * @returns the annotations
 * @throws {UsageError} naming a value without `=` or without a key
 */
export function annotations(list: string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const a of list) {
    const eq = a.indexOf("=");
    if (eq <= 0) throw new UsageError(`invalid annotation '${a}': use key=value`);
    result[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return result;
}

/** `-f`: replace what the store holds. */
export const overwriteOption = optionGroup({
  overwrite: {
    type: "boolean",
    short: "f",
    description: "replace the image if the store already holds it",
  },
});

/** `--lock`: the project's lock file (`lock` itself, and the group below). */
export const lockFileOption = optionGroup({
  lock: {
    type: "string",
    value: "path",
    env: "OCIPKG_LOCK",
    default: "the first ocipkg.lock from the working directory up",
    description: "the lock file pinning each tag to a digest",
  },
});

/** `--lock`, `--locked`: installs follow the project's lock (`get`, `link`, `load`). */
export const lockOptions = optionGroup({
  ...lockFileOption,
  locked: {
    type: "boolean",
    description:
      "refuse to change the lock: an image or platform it lacks fails (for CI; or OCIPKG_LOCKED=1)",
  },
});

/**
 * Library lock options from the lock group: the lock named, else the
 * project's (found); `--locked`, else `OCIPKG_LOCKED` (read by the library).
 * @param opts parsed values
 * @returns what getImage, linkPackage and loadImage take
 */
export function lockSettings(opts: OptionValues<typeof lockOptions>): LockOptions {
  const o: LockOptions = { lock: opts.lock ?? true };
  if (opts.locked) o.locked = true;
  return o;
}

/** `--include-signatures`: copy attached signatures and referrers too. */
export const signaturesOption = optionGroup({
  "include-signatures": {
    type: "boolean",
    description:
      "copy the image's cosign signatures and OCI referrers too (the default when the source is named by digest)",
  },
});

/** `--json`: print JSON. */
export const jsonOption = optionGroup({
  json: { type: "boolean", description: "print JSON" },
});

/**
 * Library options from the pack group (`pack`, `compose`).
 * @param opts parsed values
 * @returns what packDirectory/composeFiles take
 */
export function packing(
  opts: OptionValues<typeof packOptions> & { tag?: string; platform?: Platform },
): PackOptions {
  return {
    name: opts.tag,
    annotations: annotations(opts.annotation),
    format: opts.format,
    compressionLevel: opts.level,
    platform: opts.platform,
    append: opts.append,
  };
}

/**
 * Report a packed artifact: its name and digest on stdout, what was done on
 * stderr, and the name chosen when no `-t` was given.
 * @param r the result
 * @param done e.g. "packed ./build into libfoo.tar"
 * @param tag the `-t` value, if any
 * @param json `--json`: one JSON document, nothing on stderr
 * @param quiet `-q`: the result only
 */
export function reportPacked(
  r: PackResult,
  done: string,
  tag: string | undefined,
  json = false,
  quiet = false,
): void {
  if (json) {
    out(JSON.stringify({ name: String(r.name), digest: r.digest, output: r.output }));
    return;
  }
  out(`${r.name} ${r.digest}`);
  if (quiet) return;
  info(`${done} into ${r.output}`);
  if (tag === undefined) info(`no -t given: the image is named '${r.name}'`);
}

/** Options every transferring command takes. */
export const progressOptions = optionGroup({
  progress: {
    type: "string",
    ...oneOf(["auto", "tty", "json", "none"]),
    default: "auto",
    description: "how to show progress on stderr (auto: live lines on a terminal, else none)",
  },
  quiet: { type: "boolean", short: "q", description: "print only errors and the result" },
  verbose: {
    type: "boolean",
    description: "off a terminal, one line per blob transferred or skipped",
  },
  json: { type: "boolean", description: "print the result as one JSON document on stdout" },
});
