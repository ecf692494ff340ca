/**
 * ocipkg's config file — `$OCIPKG_CONFIG`, else `~/.ocipkg/config.json` — and
 * its one reader: the file is read once per process (again only when it
 * changes), checked, and shared by the `verify` rules of the trust path
 * (`sign/policy.ts`) and the `registries` section of the registry client.
 *
 * ```json
 * {
 *   "verify": [{ "prefix": "ghcr.io/org/", "key": "keys/org.pub" }],
 *   "registries": {
 *     "localhost:5000": { "plainHttp": true },
 *     "registry.internal:5443": { "caFile": "certs/internal-ca.pem" },
 *     "docker.io": {
 *       "mirrors": ["mirror.internal:5000", { "host": "cache.internal", "resolve": true }]
 *     }
 *   }
 * }
 * ```
 *
 * A `registries` key is a registry `host[:port]`, any spelling: it is read in
 * canonical form (see {@link canonicalRegistry}: `Docker.IO:443` is
 * `docker.io`), and every loopback name of one port (`localhost:5000`,
 * `127.0.0.1:5000`, `[::1]:5000`) is one registry. Two keys for one registry
 * are refused. An entry holds:
 *
 * | key         | value                                                                  |
 * | ----------- | ---------------------------------------------------------------------- |
 * | `plainHttp` | `true`: talk http; `false`: https even on loopback                     |
 * | `caFile`    | a PEM file of the CA (or the self-signed certificate) to trust, relative to the config file |
 * | `mirrors`   | hosts tried before the registry for pulls, each `"host[:port]"` or `{ "host": "host[:port]", "resolve": true }` |
 *
 * A mirror serves what is named by digest — manifests by digest and blobs,
 * each verified against its digest as from any registry — and is skipped
 * (the registry asked instead) when it fails. It resolves tags only with
 * `"resolve": true`: a mirror may be stale or not trusted to say what a tag
 * names (containerd's `hosts.toml` calls these capabilities `pull` and
 * `resolve`, and advises never to trust a public mirror to resolve). Nothing
 * is ever pushed to a mirror. A mirror's own connection settings are its own
 * `registries` entry; its repositories have the registry's names
 * (`docker.io/library/alpine` is `library/alpine` on the mirror).
 *
 * Command-line flags (`--plain-http`, `--ca-file`, `copy`'s `--from-…` and
 * `--to-…`) override an entry. Other keys of the file are left to their
 * readers (`auths` of ocipkg's auth file, which by default is the same file);
 * a key one or two letters off `verify` or `registries` is refused, since a
 * misspelt section would be a setting that silently does nothing.
 *
 * @module
 */
import { OcipkgError } from "../util/errors.ts";
import { readSmallFileSync } from "../util/files.ts";
import { dirname, isAbsolute, join, resolve } from "../util/path.ts";
import { printable } from "../util/text.ts";
import { canonicalRegistry, isLoopbackHost } from "../oci/reference.ts";

/** Largest config file read (1 MiB). */
export const MAX_CONFIG_FILE = 1024 * 1024;

/** A mirror of a registry (see the module doc). */
export interface Mirror {
  /** `host[:port]`, canonical. */
  host: string;
  /** Whether tags are resolved on it too (containerd's `resolve` capability). */
  resolve: boolean;
}

/** The `registries` entry of one registry, checked. */
export interface RegistrySettings {
  /** The registry, canonical `host[:port]` (as the key was written, made canonical). */
  registry: string;
  /** Talk plain http (true) or https (false); undefined: the default. */
  plainHttp?: boolean;
  /** The CA file to trust, absolute. */
  caFile?: string;
  /** Mirrors tried before the registry for pulls, in order. */
  mirrors: Mirror[];
  /** Names the entry in messages: `registries entry 'localhost:5000' of /home/u/.ocipkg/config.json`. */
  source: string;
}

/** A config file, read and checked. */
export interface Config {
  /** Its path, absolute. */
  file: string;
  /** Whether it exists (a missing file is an empty config). */
  exists: boolean;
  /** Its JSON object (`{}` when it does not exist), for the readers of its other sections. */
  doc: Record<string, unknown>;
  /** The `registries` entries by registry identity (see {@link registrySettings}). */
  registries: Map<string, RegistrySettings>;
}

/**
 * ocipkg's config file: `$OCIPKG_CONFIG`, else `~/.ocipkg/config.json`.
 *
 * @returns its path
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { configFile } from "@ocipkg/cli/transport";
 * assert.match(configFile(), /config\.json$/);
 * ```
 */
export function configFile(): string {
  const own = Deno.env.get("OCIPKG_CONFIG");
  if (own) return resolve(own);
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
  return resolve(join(home, ".ocipkg", "config.json"));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return `a ${typeof v}`;
}

/** Edit distance of two short strings (insertions, deletions, substitutions). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(
        d[i - 1]![j]! + 1,
        d[i]![j - 1]! + 1,
        d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
  }
  return d[a.length]![b.length]!;
}

/** The section a key misspells (case, or one or two letters off), if any. */
function misspelt(key: string): string | undefined {
  const k = key.toLowerCase();
  for (const section of ["verify", "registries"]) {
    if (key === section) return undefined;
    if (distance(k, section) <= 2) return section;
  }
  return /^regist/.test(k) ? "registries" : undefined;
}

/**
 * The identity of a registry for its settings: its canonical `host[:port]`,
 * and one for every loopback name of a port (they reach the same server).
 */
function identity(registry: string): string {
  const { hostname, port } = canonicalRegistry(registry);
  if (isLoopbackHost(hostname)) return `[loopback]:${port ?? 80}`;
  return port === undefined ? hostname : `${hostname}:${port}`;
}

function canonicalText(host: string): string {
  const { hostname, port } = canonicalRegistry(host);
  return port === undefined ? hostname : `${hostname}:${port}`;
}

/** A `host[:port]` of the file, canonical; throws naming `where` when it is not one. */
function hostOf(text: string, where: string, role: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new OcipkgError(
      `${where}: ${role} '${printable(text)}' has a scheme: write the host[:port] alone ` +
        `(its scheme comes from "plainHttp")`,
    );
  }
  if (text.includes("/")) {
    throw new OcipkgError(
      `${where}: ${role} '${printable(text)}' is not a registry host[:port] (no path: ` +
        `repositories keep their names)`,
    );
  }
  try {
    return canonicalText(text);
  } catch (e) {
    throw new OcipkgError(`${where}: ${role} '${printable(text)}': ${(e as Error).message}`);
  }
}

const ENTRY_KEYS = ["plainHttp", "caFile", "mirrors"];

function readMirror(v: unknown, where: string): Mirror {
  if (typeof v === "string") return { host: hostOf(v, where, "mirror"), resolve: false };
  if (!isObject(v) || typeof v.host !== "string") {
    throw new OcipkgError(
      `${where}: a mirror is "host[:port]" or {"host": "host[:port]", "resolve": true}, not ${
        kindOf(v)
      }`,
    );
  }
  const unknown = Object.keys(v).filter((k) => k !== "host" && k !== "resolve");
  if (unknown.length) {
    throw new OcipkgError(
      `${where}: mirror '${printable(v.host)}' has ${
        unknown.map((k) => `'${printable(k)}'`).join(", ")
      }: a mirror holds only 'host' and 'resolve'`,
    );
  }
  if (v.resolve !== undefined && typeof v.resolve !== "boolean") {
    throw new OcipkgError(
      `${where}: mirror '${printable(v.host)}': 'resolve' must be true or false, not ${
        kindOf(v.resolve)
      }`,
    );
  }
  return { host: hostOf(v.host, where, "mirror"), resolve: v.resolve === true };
}

function readEntry(key: string, v: unknown, file: string): RegistrySettings {
  const where = `config file ${file}: registries entry '${printable(key)}'`;
  const registry = hostOf(key, `config file ${file}: registries`, "key");
  if (!isObject(v)) {
    throw new OcipkgError(
      `${where} must be an object such as {"plainHttp": true}, not ${kindOf(v)}`,
    );
  }
  const unknown = Object.keys(v).filter((k) => !ENTRY_KEYS.includes(k));
  if (unknown.length) {
    throw new OcipkgError(
      `${where} has ${unknown.map((k) => `'${printable(k)}'`).join(", ")}: an entry holds ` +
        `only 'plainHttp', 'caFile' and 'mirrors'`,
    );
  }
  const out: RegistrySettings = {
    registry,
    mirrors: [],
    source: `registries entry '${printable(key)}' of ${file}`,
  };
  if (v.plainHttp !== undefined) {
    if (typeof v.plainHttp !== "boolean") {
      throw new OcipkgError(
        `${where}: 'plainHttp' must be true or false, not ${kindOf(v.plainHttp)}`,
      );
    }
    out.plainHttp = v.plainHttp;
  }
  if (v.caFile !== undefined) {
    if (typeof v.caFile !== "string" || v.caFile === "") {
      throw new OcipkgError(`${where}: 'caFile' must name a PEM file, not ${kindOf(v.caFile)}`);
    }
    if (out.plainHttp) {
      throw new OcipkgError(
        `${where} has both 'plainHttp': true and a 'caFile': plain http uses no certificate; give one`,
      );
    }
    out.caFile = isAbsolute(v.caFile) ? v.caFile : join(dirname(file), v.caFile);
  }
  if (v.mirrors !== undefined) {
    if (!Array.isArray(v.mirrors)) {
      throw new OcipkgError(`${where}: 'mirrors' must be a list, not ${kindOf(v.mirrors)}`);
    }
    const seen = new Set<string>([identity(registry)]);
    for (const [i, m] of v.mirrors.entries()) {
      const mirror = readMirror(m, `${where}: mirror ${i + 1}`);
      const id = identity(mirror.host);
      if (seen.has(id)) {
        throw new OcipkgError(
          `${where}: mirror ${i + 1} '${mirror.host}' is ${
            id === identity(registry) ? "the registry itself" : "listed twice"
          }`,
        );
      }
      seen.add(id);
      out.mirrors.push(mirror);
    }
  }
  return out;
}

/**
 * Check a config file's text (the reader of {@link loadConfig}).
 *
 * @param text the file's text
 * @param file its absolute path, for messages and relative paths
 * @returns the config
 * @throws {OcipkgError} one line naming the file and the key at fault
 */
function parseConfig(text: string, file: string): Config {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new OcipkgError(`config file ${file} is not valid JSON`);
  }
  if (!isObject(doc)) {
    throw new OcipkgError(
      `config file ${file} must be a JSON object such as {"verify": [...]}, not ${kindOf(doc)}`,
    );
  }
  for (const key of Object.keys(doc)) {
    const near = misspelt(key);
    if (near !== undefined) {
      throw new OcipkgError(
        `config file ${file}: unknown key '${printable(key)}' (did you mean '${near}'?)`,
      );
    }
  }
  const registries = new Map<string, RegistrySettings>();
  if (doc.registries !== undefined) {
    if (!isObject(doc.registries)) {
      throw new OcipkgError(
        `config file ${file}: 'registries' must be an object such as ` +
          `{"localhost:5000": {"plainHttp": true}}, not ${kindOf(doc.registries)}`,
      );
    }
    const keyOf = new Map<string, string>();
    for (const [key, value] of Object.entries(doc.registries)) {
      const entry = readEntry(key, value, file);
      const id = identity(entry.registry);
      const before = keyOf.get(id);
      if (before !== undefined) {
        throw new OcipkgError(
          `config file ${file}: registries entries '${printable(before)}' and '${
            printable(key)
          }' name one registry; merge them`,
        );
      }
      keyOf.set(id, key);
      registries.set(id, entry);
    }
  }
  return { file, exists: true, doc, registries };
}

/** Read the file, refusing what is not a small regular file; undefined when it does not exist. */
function readText(file: string): { text: string; stat: Deno.FileInfo } | undefined {
  // a fifo or a device is refused, never waited on; a file swapped or grown meanwhile too
  const read = readSmallFileSync(file, `config file ${file}`, MAX_CONFIG_FILE);
  return read && { text: new TextDecoder().decode(read.bytes), stat: read.stat };
}

/** Read configs by path, with what identified the file's version when it was read. */
const cache = new Map<string, { config: Config; version: string; readAt: number }>();

/** A file's version as `stat` tells it (the modification time has a resolution of 1 ms). */
function versionOf(stat: Deno.FileInfo | undefined): string {
  return stat ? `${stat.ino}:${stat.size}:${stat.mtime?.getTime()}` : "none";
}

/**
 * Read and check a config file, once per process: later calls answer from
 * memory after a `stat` shows the file unchanged (a file changed in the same
 * few seconds as it was read is read again, since its modification time
 * cannot tell). A file that does not exist is an empty config.
 *
 * @param file the file (default {@link configFile})
 * @returns the config
 * @throws {OcipkgError} one line naming the file (and the key) when it is
 *   not a JSON object, not a small regular file, or an entry is wrong
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig } from "./config.ts";
 * const tmp = await Deno.makeTempDir();
 * const file = `${tmp}/config.json`;
 * assert.equal(loadConfig(file).exists, false); // no file: nothing configured
 * await Deno.writeTextFile(file, JSON.stringify({
 *   registries: { "LocalHost:5000": { plainHttp: true }, "Docker.IO": { mirrors: ["mirror.internal:5000"] } },
 * }));
 * const config = loadConfig(file);
 * assert.deepEqual([...config.registries.values()].map((r) => r.registry), ["localhost:5000", "registry-1.docker.io"]);
 * await Deno.writeTextFile(file, JSON.stringify({ registries: { "localhost:5000": { plainHttp: "yes" } } }));
 * assert.throws(() => loadConfig(file), /registries entry 'localhost:5000': 'plainHttp' must be true or false, not a string$/);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export function loadConfig(file: string = configFile()): Config {
  file = resolve(file);
  const known = cache.get(file);
  if (known) {
    let stat: Deno.FileInfo | undefined;
    try {
      stat = Deno.statSync(file);
    } catch { /* gone, or unreadable: read again below */ }
    const racy = stat?.mtime && stat.mtime.getTime() > known.readAt - 2000;
    if (versionOf(stat) === known.version && !racy) return known.config;
  }
  const read = readText(file);
  const config = read ? parseConfig(read.text, file) : {
    file,
    exists: false,
    doc: {},
    registries: new Map(),
  };
  cache.set(file, { config, version: versionOf(read?.stat), readAt: Date.now() });
  return config;
}

/**
 * The `registries` entry of a registry, if the config file has one: the
 * entry of its canonical `host[:port]`, or of any loopback name of the same
 * port for a loopback registry.
 *
 * @param registry `host[:port]`, any spelling
 * @param file the config file (default {@link configFile})
 * @returns the entry, or undefined
 * @throws {OcipkgError} when the config file is not valid (see {@link loadConfig})
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { registrySettings } from "./config.ts";
 * const tmp = await Deno.makeTempDir();
 * const file = `${tmp}/config.json`;
 * await Deno.writeTextFile(file, JSON.stringify({
 *   registries: { "localhost:5000": { plainHttp: true }, "reg.internal": { caFile: "ca.pem" } },
 * }));
 * assert.equal(registrySettings("127.0.0.1:5000", file)?.plainHttp, true); // the same server
 * assert.equal(registrySettings("REG.internal:443", file)?.caFile, `${tmp}/ca.pem`); // relative to the file
 * assert.equal(registrySettings("localhost:5001", file), undefined);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export function registrySettings(
  registry: string,
  file: string = configFile(),
): RegistrySettings | undefined {
  const { registries } = loadConfig(file);
  if (registries.size === 0) return undefined;
  let id: string;
  try {
    id = identity(registry);
  } catch {
    return undefined; // not a registry host: the client names it
  }
  return registries.get(id);
}
