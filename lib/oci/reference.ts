/**
 * Image names: `[host[:port]/]name[:tag|@digest]`, formatting, and the local
 * store path (`<host>[__<port>]/<name>/__<reference>`).
 *
 * @module
 */
import { UsageError } from "../util/errors.ts";
import { isDigest } from "./digest.ts";

/** Registry host used when an image name has none. */
export const DEFAULT_HOST = "registry-1.docker.io";
/** Docker Hub's registry answers to all of these names. */
const DOCKER_HUB_ALIASES = new Set([
  "docker.io",
  "index.docker.io",
  "registry.hub.docker.com",
  DEFAULT_HOST,
]);

// the distribution spec's grammar (the one place it is written: serve, tagging and
// the registry client ask isRepositoryName / isTag)
const COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const DIGEST_LIKE_TAG = /^(sha256|sha512)__/i;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const HOST_RE =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])$/;

/** Longest repository name (`org/libfoo`, without the registry) accepted. */
export const MAX_REPOSITORY_NAME_LENGTH = 255;

/**
 * Whether a string is a repository name by the distribution spec's grammar:
 * `/`-separated components of lower-case letters and digits, joined inside a
 * component by one `.`, one `_`, `__` or any number of `-`; at most 255
 * characters. No registry host, tag or digest.
 *
 * @param s any string
 * @returns true for a valid repository name
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isRepositoryName } from "@ocipkg/cli/oci";
 * assert.ok(isRepositoryName("org/lib-foo__x.y"));
 * assert.ok(!isRepositoryName("Org/LibFoo")); // upper case
 * assert.ok(!isRepositoryName("org//x") && !isRepositoryName("-x") && !isRepositoryName("a._b"));
 * assert.ok(!isRepositoryName("a".repeat(256)));
 * ```
 */
export function isRepositoryName(s: string): boolean {
  return s.length <= MAX_REPOSITORY_NAME_LENGTH && NAME_RE.test(s);
}

/**
 * Whether a string is a tag by the distribution spec's grammar:
 * `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
 *
 * @param s any string
 * @returns true for a valid tag
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isTag } from "@ocipkg/cli/oci";
 * assert.ok(isTag("1.2.3") && isTag("_x") && isTag("V1-rc.2"));
 * assert.ok(!isTag("") && !isTag("-x") && !isTag(".x") && !isTag("a/b") && !isTag("a:b"));
 * assert.ok(isTag("x".repeat(128)) && !isTag("x".repeat(129)));
 * ```
 */
export function isTag(s: string): boolean {
  return TAG_RE.test(s);
}

/**
 * Whether a registry host is a loopback address, where plain http is the
 * default: exactly `localhost`, an IPv4 address in `127.0.0.0/8`, or `[::1]`
 * (any spelling the URL parser normalizes to these, e.g. `LOCALHOST`,
 * `[0:0::1]`). Other names that merely start with `localhost`, such as
 * `localhost.example.com`, are ordinary hosts and use https.
 *
 * @param host host name, optionally with `:port`
 * @returns true for a loopback host
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLoopbackHost } from "./reference.ts";
 * assert.ok(isLoopbackHost("localhost:5000") && isLoopbackHost("127.0.0.2"));
 * assert.ok(isLoopbackHost("[::1]:5000"));
 * assert.ok(!isLoopbackHost("localhost.example.com"));
 * ```
 */
export function isLoopbackHost(host: string): boolean {
  if (/[@/\\?#\s]/.test(host)) return false; // not a bare host[:port]
  let name: string;
  try {
    name = new URL(`http://${host}/`).hostname;
  } catch {
    return false;
  }
  if (name === "localhost" || name === "[::1]") return true;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(name);
  return m !== null && m[1] === "127" && m.slice(2).every((o) => Number(o) <= 255);
}

/**
 * Whether the part of an image name before its first `/` is a registry host
 * rather than the start of a Docker Hub repository: it has a `.` or a `:`,
 * is bracketed IPv6, or is `localhost` (any case). The one host-first rule,
 * used by {@link ImageName.parse}, the location resolver and verify rules.
 *
 * @param first the text before the first `/`
 * @returns true for a registry host
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isHostComponent } from "./reference.ts";
 * assert.ok(isHostComponent("ghcr.io") && isHostComponent("LocalHost") && isHostComponent("[::1]"));
 * assert.ok(!isHostComponent("library"));
 * ```
 */
export function isHostComponent(first: string): boolean {
  return first.includes(".") || first.includes(":") || first.startsWith("[") ||
    first.toLowerCase() === "localhost";
}

/**
 * The canonical form of a registry host, so that every spelling that reaches
 * the same registry is one identity (verify rules, credentials, the store,
 * records and messages all key on it):
 *
 * | spelling                                        | canonical              |
 * | ----------------------------------------------- | ---------------------- |
 * | `GHCR.io`, `ghcr.io:443`                        | `ghcr.io`              |
 * | `LocalHost:5000`, `localhost:80`                | `localhost:5000`, `localhost` |
 * | `127.1`, `2130706433`, `0x7f.0.0.1`, `0177.1`   | `127.0.0.1`            |
 * | `0.0.0.0`, `0` (reach the local host)           | `127.0.0.1`            |
 * | `[0:0::1]`, `[::]`                              | `[::1]`                |
 * | `[::ffff:127.0.0.1]` (IPv4-mapped)              | `127.0.0.1`            |
 * | `docker.io`, `Index.Docker.IO:443`, `registry-1.docker.io` | `registry-1.docker.io` |
 * | `ghcr.io:0443`, `localhost:05000` (leading zeros)  | `ghcr.io`, `localhost:5000` |
 * | `myreg`, `MyReg:443` (one label, not `localhost`)  | `myreg:443`            |
 *
 * The default port of the host's scheme is dropped: `:80` for loopback hosts
 * (plain http by default), `:443` for every other host — except on a one-label
 * name other than `localhost`, which an image name reads as a registry only
 * with a port (`myreg:443/x`; `myreg/x` is a Docker Hub repository), so it
 * keeps its port, given or not. Docker Hub's aliases merge only on that
 * default port (`docker.io:5000` stays itself). Different names stay different
 * even when they may reach one machine: `localhost` is not `127.0.0.1`, and
 * `127.0.0.2` is not `127.0.0.1`.
 *
 * @param host `host[:port]` as a user wrote it
 * @returns `{ hostname, port }` in canonical form (port undefined when default)
 * @throws {UsageError} naming the host when it is not a valid registry host
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalRegistry } from "@ocipkg/cli";
 * assert.deepEqual(canonicalRegistry("LocalHost:5000"), { hostname: "localhost", port: 5000 });
 * assert.deepEqual(canonicalRegistry("2130706433:5000"), { hostname: "127.0.0.1", port: 5000 });
 * assert.deepEqual(canonicalRegistry("Docker.IO:443"), { hostname: "registry-1.docker.io", port: undefined });
 * ```
 */
export function canonicalRegistry(host: string): { hostname: string; port: number | undefined } {
  // a store walk or a lock file names the same few hosts thousands of times: each is
  // worked out (a URL parsed, twice) once
  let known = CANONICAL_HOSTS.get(host);
  if (known === undefined) {
    known = canonicalRegistryOnce(host);
    if (CANONICAL_HOSTS.size >= 256) CANONICAL_HOSTS.clear();
    CANONICAL_HOSTS.set(host, known);
  }
  return { ...known };
}

/** {@link canonicalRegistry}'s answers so far (a few hosts; cleared when it holds 256). */
const CANONICAL_HOSTS = new Map<string, { hostname: string; port: number | undefined }>();

function canonicalRegistryOnce(host: string): { hostname: string; port: number | undefined } {
  const bad = (why: string) => new UsageError(`invalid registry host '${host}': ${why}`);
  // a port may have leading zeros (`:05000` is port 5000, as the URL parser reads it)
  const m = /^(.*?)(?::(\d+))?$/.exec(host)!;
  const raw = m[1]!;
  if (!HOST_RE.test(raw)) throw bad("not a host name or IP address");
  let port: number | undefined;
  if (m[2] !== undefined) {
    port = Number(m[2]);
    if (!(port > 0 && port < 65536)) throw bad(`port '${m[2]}' is out of range`);
  }
  let hostname: string;
  try {
    // the WHATWG URL parser is what fetch uses: it lower-cases, reads IPv4 in
    // every form (`127.1`, `2130706433`, hex, octal) and compresses IPv6
    hostname = new URL(`http://${raw}/`).hostname;
  } catch {
    throw bad("not a host name or IP address");
  }
  if (!HOST_RE.test(hostname)) throw bad("not a host name or IP address");
  const mapped = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(hostname);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16), lo = parseInt(mapped[2]!, 16);
    hostname = `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  if (hostname === "0.0.0.0") hostname = "127.0.0.1";
  if (hostname === "[::]") hostname = "[::1]";
  const defaultPort = isLoopbackHost(hostname) ? 80 : 443;
  if (!hostname.includes(".") && !hostname.startsWith("[") && hostname !== "localhost") {
    // a one-label name (`myreg`) is read as a registry only with its port: it keeps it
    port ??= defaultPort;
  } else if (port === defaultPort) port = undefined;
  // Docker Hub's names are one registry on its https port; `docker.io:5000` is another server
  if (DOCKER_HUB_ALIASES.has(hostname) && port === undefined) hostname = DEFAULT_HOST;
  return { hostname, port };
}

/**
 * {@link canonicalRegistry} as text: `host[:port]`, the key credentials,
 * clients and messages use.
 *
 * @param host `host[:port]` as a user wrote it
 * @returns `host[:port]`, canonical
 * @throws {UsageError} naming the host when it is not a valid registry host
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalHost } from "./reference.ts";
 * assert.equal(canonicalHost("Index.Docker.IO:443"), "registry-1.docker.io");
 * assert.equal(canonicalHost("[0:0::1]:05000"), "[::1]:5000");
 * ```
 */
export function canonicalHost(host: string): string {
  const { hostname, port } = canonicalRegistry(host);
  return port === undefined ? hostname : `${hostname}:${port}`;
}

/**
 * Whether a string is a bare registry host — `ghcr.io`, `localhost:5000`,
 * `[::1]:5000` — rather than an image name: no `/`, a host the host-first
 * rule ({@link isHostComponent}) takes for one, and nothing after it but a
 * numeric port. An image name read without this check would make such a
 * string a Docker Hub repository (`localhost:5000` → `library/localhost`,
 * tag `5000`). `alpine:3.19` is an image, and so is `myreg:5000` (a one-label
 * name is a registry only before a `/`, as in `myreg:5000/x`).
 *
 * @param s the text
 * @returns true for a registry host alone
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isRegistryHost } from "./reference.ts";
 * assert.ok(isRegistryHost("localhost:5000") && isRegistryHost("ghcr.io") && isRegistryHost("[::1]:5000"));
 * assert.ok(!isRegistryHost("alpine:3.19") && !isRegistryHost("ghcr.io/org/x") && !isRegistryHost("myreg:5000"));
 * ```
 */
export function isRegistryHost(s: string): boolean {
  const m = /^(\[[^\]/]*\]|[^:/[\]]+)(:\d{1,5})?$/.exec(s);
  if (!m || !isHostComponent(m[1]!)) return false;
  try {
    canonicalHost(s);
    return true;
  } catch {
    return false;
  }
}

/**
 * A parsed image name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName } from "@ocipkg/cli";
 * const n = ImageName.parse("localhost:5000/org/libfoo:1.2");
 * assert.equal(n.registry, "localhost:5000");
 * assert.equal(n.name, "org/libfoo");
 * assert.equal(n.reference, "1.2");
 * assert.equal(n.repository, "localhost:5000/org/libfoo");
 * // without a host it is a Docker Hub name; a single name gets `library/`
 * assert.equal(ImageName.parse("alpine").toString(), "registry-1.docker.io/library/alpine:latest");
 * ```
 */
export class ImageName {
  /** Registry host name (no port). */
  readonly hostname: string;
  /** Registry port, if given. */
  readonly port: number | undefined;
  /** Repository path, e.g. `org/libfoo` (Docker Hub single names get `library/`). */
  readonly name: string;
  /** Tag, if given (or `latest` when neither tag nor digest is given). */
  readonly tag: string | undefined;
  /** Digest, if given. */
  readonly digest: string | undefined;

  /**
   * Create an ImageName.
   * @param parts the components; prefer {@link ImageName.parse}
   */
  constructor(
    parts: { hostname: string; port?: number; name: string; tag?: string; digest?: string },
  ) {
    this.hostname = parts.hostname;
    this.port = parts.port;
    this.name = parts.name;
    this.digest = parts.digest;
    this.tag = parts.tag ?? (parts.digest ? undefined : "latest");
  }

  /**
   * Parse an image name.
   *
   * @param input e.g. `ghcr.io/org/libfoo:1.2`, `alpine`, `localhost:5000/x@sha256:…`
   * @returns the parsed name
   * @throws {UsageError} naming the input when it is not a valid image name
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ImageName, UsageError } from "@ocipkg/cli";
   * const n = ImageName.parse("ghcr.io/org/libfoo@sha256:" + "a".repeat(64));
   * assert.equal(n.hostname, "ghcr.io");
   * assert.equal(n.tag, undefined);
   * assert.equal(n.reference, n.digest);
   * assert.throws(() => ImageName.parse("ghcr.io/Org/LibFoo:1"), UsageError); // upper case
   * ```
   */
  static parse(input: string): ImageName {
    const bad = (why: string) => new UsageError(`invalid image name '${input}': ${why}`);
    if (input.length === 0) throw bad("empty");
    if (input.length > 1024) throw bad("longer than 1024 characters");
    let rest = input;
    let digest: string | undefined;
    const at = rest.indexOf("@");
    if (at >= 0) {
      digest = rest.slice(at + 1);
      rest = rest.slice(0, at);
      if (!isDigest(digest)) throw bad(`'${digest}' is not a valid digest`);
    }
    let hostname = DEFAULT_HOST;
    let port: number | undefined;
    const slash = rest.indexOf("/");
    if (slash >= 0) {
      const first = rest.slice(0, slash);
      if (isHostComponent(first)) {
        rest = rest.slice(slash + 1);
        try {
          ({ hostname, port } = canonicalRegistry(first));
        } catch {
          throw bad(`'${first}' is not a valid registry host`);
        }
      }
    }
    let tag: string | undefined;
    const colon = rest.lastIndexOf(":");
    if (colon >= 0) {
      tag = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
      if (!isTag(tag)) throw bad(`'${tag}' is not a valid tag`);
    }
    if (!NAME_RE.test(rest)) {
      throw bad(
        `'${rest}' is not a valid repository name (lower-case letters, digits, '.', '_', '-', '/')`,
      );
    }
    if (hostname === DEFAULT_HOST && port === undefined && !rest.includes("/")) {
      rest = `library/${rest}`;
    }
    // checked on the canonical name (with `library/`), so toString() always parses again
    if (rest.length > MAX_REPOSITORY_NAME_LENGTH) {
      throw bad(`repository name is longer than ${MAX_REPOSITORY_NAME_LENGTH} characters`);
    }
    return new ImageName({ hostname, port, name: rest, tag, digest });
  }

  /** The digest if given, else the tag. */
  get reference(): string {
    return this.digest ?? this.tag ?? "latest";
  }

  /** `host[:port]`. */
  get registry(): string {
    return this.port === undefined ? this.hostname : `${this.hostname}:${this.port}`;
  }

  /** `host[:port]/name`, without tag or digest. */
  get repository(): string {
    return `${this.registry}/${this.name}`;
  }

  /** Whether plain http is the default for this host: see {@link isLoopbackHost}. */
  get isLoopback(): boolean {
    return isLoopbackHost(this.hostname);
  }

  /**
   * Same repository with another tag or digest.
   *
   * @param reference a tag, or a digest
   * @returns the new name
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ImageName } from "@ocipkg/cli";
   * import { digestOf } from "@ocipkg/cli/oci";
   * const n = ImageName.parse("ghcr.io/org/libfoo:1.2");
   * assert.equal(n.withReference("1.3").toString(), "ghcr.io/org/libfoo:1.3");
   * const pinned = n.withReference(digestOf(new Uint8Array()));
   * assert.equal(pinned.toString(), `ghcr.io/org/libfoo@${pinned.digest}`);
   * ```
   */
  withReference(reference: string): ImageName {
    return isDigest(reference)
      ? new ImageName({ ...this, tag: undefined, digest: reference })
      : new ImageName({ ...this, tag: reference, digest: undefined });
  }

  /** Full name, `host[:port]/name:tag` or `host[:port]/name@digest`. */
  toString(): string {
    return this.digest ? `${this.repository}@${this.digest}` : `${this.repository}:${this.tag}`;
  }

  /**
   * Relative path of this image in the local store, as path segments:
   * `<host>[__<port>]`, the name's segments, `__<reference with ':' → '__'>`.
   *
   * @throws {UsageError} for a tag spelled like a digest (`sha256__…`), which
   *   would share its directory with that digest
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ImageName } from "@ocipkg/cli";
   * const n = ImageName.parse("localhost:5000/org/libfoo:1.2");
   * const segments = n.storePath();
   * assert.deepEqual(segments, ["localhost__5000", "org", "libfoo", "__1.2"]);
   * assert.equal(ImageName.fromStorePath(segments).toString(), n.toString());
   * ```
   */
  storePath(): string[] {
    if (this.digest === undefined && DIGEST_LIKE_TAG.test(this.reference)) {
      // `x:sha256__<hex>` would share `__sha256__<hex>` with `x@sha256:<hex>`
      throw new UsageError(
        `image '${this}': a tag of the form '<algorithm>__…' cannot be stored; it would share a store directory with a digest`,
      );
    }
    const host = this.port === undefined ? this.hostname : `${this.hostname}__${this.port}`;
    return [host, ...this.name.split("/"), `__${this.reference.replaceAll(":", "__")}`];
  }

  /**
   * Inverse of {@link storePath}.
   *
   * @param segments path segments relative to the store root
   * @returns the image name
   * @throws {UsageError} when the segments are not an image path
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ImageName } from "@ocipkg/cli";
   * const n = ImageName.fromStorePath(["ghcr.io", "org", "libfoo", "__1.2"]);
   * assert.equal(n.toString(), "ghcr.io/org/libfoo:1.2");
   * ```
   */
  static fromStorePath(segments: string[]): ImageName {
    const last = segments[segments.length - 1];
    if (segments.length < 3 || !last?.startsWith("__")) {
      throw new UsageError(`'${segments.join("/")}' is not an image directory of the store`);
    }
    const [hostPart, ...nameParts] = segments.slice(0, -1);
    const [host, port] = hostPart!.split("__");
    let ref = last.slice(2);
    const dm = /^(sha256|sha512)__([a-f0-9]+)$/.exec(ref);
    if (dm) ref = `${dm[1]}:${dm[2]}`;
    const sep = isDigest(ref) ? "@" : ":";
    return ImageName.parse(`${host}${port ? `:${port}` : ""}/${nameParts.join("/")}${sep}${ref}`);
  }
}

/** The prefixes that name an OCI layout (`oci:`, `oci-dir:`, `oci-archive:`). */
export const LAYOUT_SCHEME = /^(oci|oci-dir|oci-archive):(.*)$/s;

/**
 * The image a user's string names, where only an image fits (`get`, `link`,
 * `tags`, `rm`, …): the same rules as `resolveLocation` with
 * `accept: "image"` — `docker://` is allowed, a layout spelling is refused.
 * Synchronous: no file system is consulted. An `ImageName` is returned as it is.
 *
 * @param s e.g. `ghcr.io/org/libfoo:1`, `docker://alpine:3`, `LocalHost:5000/x:1`
 * @returns the canonical image name
 * @throws {UsageError} naming the string when it is not an image name
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { imageName } from "@ocipkg/cli";
 * assert.equal(imageName("docker://alpine:3").toString(), "registry-1.docker.io/library/alpine:3");
 * assert.equal(imageName("LocalHost:5000/x:1").toString(), "localhost:5000/x:1");
 * assert.throws(() => imageName("oci:out:v1"), /names a layout/);
 * ```
 */
export function imageName(s: string | ImageName): ImageName {
  if (s instanceof ImageName) return s;
  if (!s) throw new UsageError("empty image name");
  if (s.startsWith("docker://")) return ImageName.parse(s.slice("docker://".length));
  if (LAYOUT_SCHEME.test(s)) {
    throw new UsageError(`'${s}' names a layout; an image name is needed here`);
  }
  return ImageName.parse(s);
}
