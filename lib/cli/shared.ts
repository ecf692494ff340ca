/**
 * Option groups several commands share, in one place: registry options
 * (`--plain-http`, `--ca-file`, `--concurrency`, `--parallel`, the timeouts with their
 * `OCIPKG_*` fallbacks), extraction limits (`--max-*`, `OCIPKG_MAX_*`), the
 * platform, the layout format and compression level, annotations — and their
 * conversion into library options.
 *
 * @module
 */
import { type PackOptions, type PackResult, type RemoteOptions, UsageError } from "../../mod.ts";
import { parsePlatform, type Platform } from "../oci/mod.ts";
import {
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_ENTRIES,
  DEFAULT_MAX_RATIO,
  type ExtractLimits,
} from "../archive/mod.ts";
import { DEFAULT_TIMEOUTS } from "../transport/mod.ts";
import { type Hint, optionGroup, type OptionValues } from "./options.ts";
import { debugLog, info, out } from "./output.ts";

/**
 * A size: digits with an optional K, M, G or T suffix (powers of 1024).
 * @param v text, e.g. `512M`
 * @returns the number, or undefined when malformed or too large
 */
export function parseSize(v: string): number | undefined {
  const m = /^(\d+)([KMGT]i?B?)?$/i.exec(v.trim());
  if (!m) return undefined;
  const unit = m[2] ? 1024 ** ("KMGT".indexOf(m[2][0]!.toUpperCase()) + 1) : 1;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) ? n : undefined;
}

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

function count(text: string, flag: string): number {
  const n = parseSize(text);
  if (n === undefined || n < 1) {
    throw new UsageError(
      `invalid ${flag} '${text}': use a positive number (K, M, G suffixes allowed)`,
    );
  }
  return n;
}

/** Registry options: `--plain-http`, `--ca-file`, `--concurrency`, `--parallel`, timeouts. */
export const registryOptions = optionGroup({
  "plain-http": {
    type: "boolean",
    description: "talk http, not https (the default for loopback hosts without --ca-file)",
  },
  "ca-file": { type: "string", value: "pem", description: "also trust the CA in this PEM file" },
  concurrency: {
    type: "string",
    value: "n",
    default: "8, of which 4 move blobs of 1 MiB or more",
    parse: concurrency,
    description: "requests in flight at once, 1-999 (given, it bounds large blobs too)",
  },
  parallel: {
    type: "string",
    value: "n",
    env: "OCIPKG_PARALLEL",
    default: "4; 1 for a loopback registry",
    parse: parts,
    description: "ranged requests in flight for one blob of 32 MiB or more; 0 or 1: one stream",
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

/** Hints for registry errors. */
export const registryHints: Hint[] = [
  { when: /TLS certificate not trusted/, add: " (use --ca-file)" },
  { when: /if it speaks TLS, do not use plain http/, add: " (drop --plain-http, give --ca-file)" },
];

/**
 * Library options from the registry group.
 * @param opts parsed values
 * @returns client options (with the `--debug` sink when on)
 */
export function remote(opts: OptionValues<typeof registryOptions>): RemoteOptions {
  const o: RemoteOptions = {};
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

/** Extraction limits: `--max-bytes`, `--max-entries`, `--max-ratio`, else `OCIPKG_MAX_*`. */
export const limitOptions = optionGroup({
  "max-bytes": {
    type: "string",
    value: "n",
    env: "OCIPKG_MAX_BYTES",
    default: `${DEFAULT_MAX_BYTES / 1024 ** 3}G`,
    parse: count,
    description: "cap on the bytes an image extracts to; K, M, G suffixes allowed",
  },
  "max-entries": {
    type: "string",
    value: "n",
    env: "OCIPKG_MAX_ENTRIES",
    default: `${DEFAULT_MAX_ENTRIES}`,
    parse: count,
    description: "cap on the entries of an image's layers",
  },
  "max-ratio": {
    type: "string",
    value: "n",
    env: "OCIPKG_MAX_RATIO",
    default: `${DEFAULT_MAX_RATIO}`,
    parse: count,
    description: "cap on a layer's decompressed ÷ compressed size",
  },
});

/**
 * Library extraction limits from the limits group.
 * @param opts parsed values
 * @returns the limits given
 */
export function limits(opts: OptionValues<typeof limitOptions>): ExtractLimits {
  const o: ExtractLimits = {};
  if (opts.maxBytes !== undefined) o.maxBytes = opts.maxBytes;
  if (opts.maxEntries !== undefined) o.maxEntries = opts.maxEntries;
  if (opts.maxRatio !== undefined) o.maxRatio = opts.maxRatio;
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

function layoutFormat(text: string, flag: string): "archive" | "dir" {
  if (text === "archive" || text === "dir") return text;
  throw new UsageError(`invalid ${flag} '${text}': use archive or dir`);
}

function compressionLevel(text: string, flag: string): number {
  if (!/^[0-9]$/.test(text)) throw new UsageError(`invalid ${flag} '${text}': use 0-9`);
  return Number(text);
}

/** Writing a layout: `--format` (archive or dir). */
export const formatOptions = optionGroup({
  format: {
    type: "string",
    value: "archive|dir",
    default: "archive; dir for an existing directory",
    parse: layoutFormat,
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

/** Building a package: `--level` (gzip level) besides the artifact options. */
export const packOptions = optionGroup({
  ...artifactOptions,
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

/** `--verify-key`: install only what verifies (besides the config file's `verify` rules). */
export const verifyOption = optionGroup({
  "verify-key": {
    type: "string",
    multiple: true,
    value: "cosign.pub",
    description:
      "install only if a signature verifies with this public key (repeatable: any one); the config file's verify rules apply too",
  },
});

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
  };
}

/**
 * Report a packed artifact: its name and digest on stdout, what was done on
 * stderr, and the name chosen when no `-t` was given.
 * @param r the result
 * @param done e.g. "packed ./build into libfoo.tar"
 * @param tag the `-t` value, if any
 */
export function reportPacked(
  r: PackResult,
  done: string,
  tag: string | undefined,
  json = false,
): void {
  if (json) {
    out(JSON.stringify({ name: String(r.name), digest: r.digest, output: r.output }));
    return;
  }
  out(`${r.name} ${r.digest}`);
  info(`${done} into ${r.output}`);
  if (tag === undefined) info(`no -t given: the image is named '${r.name}'`);
}
