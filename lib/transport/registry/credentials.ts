/**
 * Registry credentials: read from ocipkg's own auth file, docker's
 * `config.json` (`auths`, `credsStore`, `credHelpers` via
 * `docker-credential-<name>`), and podman/containers `auth.json`; written to
 * ocipkg's own file (mode 0600) by `login`.
 *
 * Every key is read as the registry it names, in canonical form (see
 * `canonicalRegistry`): `GHCR.io`, `ghcr.io:443`, `https://ghcr.io/v2/` are one
 * registry, and `https://index.docker.io/v1/`, `docker.io` and
 * `registry-1.docker.io` are Docker Hub, whichever spelling the file or the
 * caller used.
 *
 * @module
 */
import { dirname, join } from "../../util/path.ts";
import { OcipkgError } from "../../util/errors.ts";
import { atomicWriteFile, readSmallFile, UnfitFileError, withFileLock } from "../../util/files.ts";
import { canonicalHost, DEFAULT_HOST } from "../../oci/reference.ts";

/** Credentials for one registry. */
export interface Credential {
  /** User name (absent with an identity token). */
  username?: string;
  /** Password or personal access token. */
  password?: string;
  /** OAuth2 refresh token ("identity token"). */
  identityToken?: string;
  /**
   * Where it came from, for messages: e.g. `ocipkg's auth file /home/u/.ocipkg/config.json`,
   * `docker config /home/u/.docker/config.json`, `credential helper docker-credential-pass`.
   */
  source?: string;
}

/** How an auth file is named in messages. */
function fileSource(path: string): string {
  if (path === ocipkgAuthFile()) return `ocipkg's auth file ${path}`;
  if (/[\\/]containers[\\/]auth\.json$/.test(path)) return `podman auth file ${path}`;
  if (/config\.json$/.test(path) && path.includes("docker")) return `docker config ${path}`;
  return `auth file ${path}`;
}

interface AuthEntry {
  auth?: string;
  identitytoken?: string;
  username?: string;
  password?: string;
}

interface AuthFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [k: string]: unknown;
}

const DOCKER_HUB_KEY = "https://index.docker.io/v1/";

function home(): string {
  return Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
}

/**
 * Path of ocipkg's own auth file: `$OCIPKG_AUTH_FILE`, else
 * `~/.ocipkg/config.json` (as the Rust ocipkg).
 *
 * @returns absolute path
 */
export function ocipkgAuthFile(): string {
  return Deno.env.get("OCIPKG_AUTH_FILE") ?? join(home(), ".ocipkg", "config.json");
}

/** Auth files read, in order of precedence. */
export function authFiles(): string[] {
  const files = [ocipkgAuthFile()];
  const dockerConfig = Deno.env.get("DOCKER_CONFIG");
  files.push(join(dockerConfig ?? join(home(), ".docker"), "config.json"));
  const reg = Deno.env.get("REGISTRY_AUTH_FILE");
  if (reg) files.push(reg);
  const runtime = Deno.env.get("XDG_RUNTIME_DIR");
  if (runtime) files.push(join(runtime, "containers", "auth.json"));
  files.push(
    join(Deno.env.get("XDG_CONFIG_HOME") ?? join(home(), ".config"), "containers", "auth.json"),
  );
  return files;
}

/** Largest auth file read (4 MiB; one holds a few hundred bytes a registry). */
export const MAX_AUTH_FILE = 4 * 1024 * 1024;

async function readAuthFile(path: string): Promise<AuthFile | undefined> {
  let text: string;
  try {
    // a fifo or a device is refused unopened, never waited on or read without end
    const read = await readSmallFile(path, `auth file '${path}'`, MAX_AUTH_FILE);
    if (read === undefined) return undefined;
    text = new TextDecoder().decode(read.bytes);
  } catch (e) {
    if (e instanceof UnfitFileError) throw e;
    return undefined; // unreadable: as if absent
  }
  try {
    const v = JSON.parse(text);
    return typeof v === "object" && v !== null ? v as AuthFile : undefined;
  } catch {
    throw new OcipkgError(`auth file '${path}' is not valid JSON`);
  }
}

/**
 * The registry an auth file's key names, in canonical form; undefined for a
 * key that names none. Keys are `host[:port]` (podman, ocipkg) or a URL such
 * as `https://host/v1/` or `http://host:port/v2/` (docker, whose path is
 * ignored). A key without a scheme but with a path (`quay.io/org`) is podman's
 * credential for one namespace only: it is not the registry's.
 *
 * @param key a key of `auths` or `credHelpers`
 * @returns `host[:port]`, canonical, or undefined
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { registryOfKey } from "./credentials.ts";
 * assert.equal(registryOfKey("https://index.docker.io/v1/"), "registry-1.docker.io");
 * assert.equal(registryOfKey("HTTP://LocalHost:05000/v2/"), "localhost:5000");
 * assert.equal(registryOfKey("ghcr.io:443"), "ghcr.io");
 * assert.equal(registryOfKey("quay.io/org"), undefined); // one namespace only
 * assert.equal(registryOfKey("not a host"), undefined);
 * ```
 */
export function registryOfKey(key: string): string | undefined {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(key);
  let host = key;
  if (scheme) {
    host = key.slice(scheme[0].length);
    const slash = host.indexOf("/");
    if (slash >= 0) host = host.slice(0, slash);
  } else if (key.includes("/")) return undefined;
  try {
    return canonicalHost(host);
  } catch {
    return undefined;
  }
}

/** The keys of a record that name `registry` (canonical), in the file's order. */
function keysOf(record: Record<string, unknown> | undefined, registry: string): string[] {
  if (typeof record !== "object" || record === null || Array.isArray(record)) return [];
  return Object.keys(record).filter((k) => registryOfKey(k) === registry);
}

function decodeEntry(e: AuthEntry, path: string): Credential | undefined {
  if (typeof e !== "object" || e === null) return undefined;
  if (e.identitytoken) return { identityToken: e.identitytoken, username: e.username };
  if (e.auth) {
    let plain: string;
    try {
      plain = atob(e.auth);
    } catch {
      throw new OcipkgError(`auth file '${path}' has an invalid 'auth' value`);
    }
    const colon = plain.indexOf(":");
    if (colon < 0) throw new OcipkgError(`auth file '${path}' has an invalid 'auth' value`);
    return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
  }
  if (e.username && e.password) return { username: e.username, password: e.password };
  return undefined;
}

/**
 * Ask a docker credential helper (`docker-credential-<name> get`).
 *
 * @param helper helper name, e.g. `pass`, `secretservice`, `ecr-login`
 * @param registry server URL/host to look up
 * @returns the credential, or undefined when the helper has none
 */
export async function credentialFromHelper(
  helper: string,
  registry: string,
): Promise<Credential | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) {
    throw new OcipkgError(`credential helper name '${helper}' is not valid`);
  }
  let out: Deno.CommandOutput;
  try {
    const child = new Deno.Command(`docker-credential-${helper}`, {
      args: ["get"],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(registry));
    await w.close();
    out = await child.output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new OcipkgError(`credential helper 'docker-credential-${helper}' is not installed`);
    }
    throw e;
  }
  if (!out.success) return undefined; // "credentials not found"
  try {
    const v = JSON.parse(new TextDecoder().decode(out.stdout));
    if (v.Username === "<token>") return { identityToken: v.Secret };
    return { username: v.Username, password: v.Secret };
  } catch {
    throw new OcipkgError(`credential helper 'docker-credential-${helper}' answered invalid JSON`);
  }
}

/**
 * Find credentials for a registry in every known auth file. The registry and
 * each key of the files are compared in canonical form, so any spelling finds
 * an entry written with any other (`LocalHost:5000` finds `localhost:5000`,
 * `docker.io` finds `https://index.docker.io/v1/`). A credential helper is
 * asked with the key as its file spells it.
 *
 * @param registry `host[:port]`, any spelling
 * @returns the first credential found, or undefined
 * @throws {UsageError} naming the registry when it is not a host[:port]
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findCredential, saveCredential } from "./credentials.ts";
 * const tmp = await Deno.makeTempDir();
 * const saved = Deno.env.get("OCIPKG_AUTH_FILE");
 * Deno.env.set("OCIPKG_AUTH_FILE", `${tmp}/config.json`); // ocipkg's own file, read first
 * await saveCredential("registry.example:5000", { username: "me", password: "secret" });
 * const c = await findCredential("registry.example:5000");
 * assert.deepEqual(c, {
 *   username: "me",
 *   password: "secret",
 *   source: `ocipkg's auth file ${tmp}/config.json`, // named in auth errors
 * });
 * // the same registry, spelled otherwise
 * assert.deepEqual(await findCredential("Registry.Example:05000"), c);
 * if (saved === undefined) Deno.env.delete("OCIPKG_AUTH_FILE");
 * else Deno.env.set("OCIPKG_AUTH_FILE", saved);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function findCredential(registry: string): Promise<Credential | undefined> {
  const wanted = canonicalHost(registry);
  for (const path of authFiles()) {
    const f = await readAuthFile(path);
    if (!f) continue;
    const helpers = f.credHelpers;
    for (const key of keysOf(helpers, wanted)) {
      const helper = helpers?.[key];
      if (typeof helper === "string" && helper) {
        const c = await credentialFromHelper(helper, key);
        if (c) return { ...c, source: `credential helper docker-credential-${helper} (${path})` };
      }
    }
    const keys = keysOf(f.auths, wanted);
    for (const key of keys) {
      const c = decodeEntry(f.auths![key]!, path);
      if (c) return { ...c, source: fileSource(path) };
    }
    if (typeof f.credsStore === "string" && f.credsStore) {
      for (const key of keys) {
        const c = await credentialFromHelper(f.credsStore, key);
        if (c) {
          return { ...c, source: `credential helper docker-credential-${f.credsStore} (${path})` };
        }
      }
    }
  }
  return undefined;
}

/** The key ocipkg writes for a registry: Docker Hub's is docker's own, so docker reads it too. */
function keyFor(registry: string): string {
  return registry === DEFAULT_HOST ? DOCKER_HUB_KEY : registry;
}

async function writeAuthFile(path: string, f: AuthFile): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await atomicWriteFile(path, new TextEncoder().encode(JSON.stringify(f, null, 2) + "\n"), 0o600);
  await Deno.chmod(path, 0o600).catch(() => {});
}

/**
 * Save credentials in ocipkg's own auth file (atomically, mode 0600), under
 * the registry's canonical name (Docker Hub's under
 * `https://index.docker.io/v1/`, as docker writes it); entries of other
 * spellings of the same registry are replaced.
 *
 * @param registry `host[:port]`, any spelling
 * @param cred the credential
 * @param path the auth file (default {@link ocipkgAuthFile}); read, changed
 *   and replaced under its lock (`withFileLock`), so logins at once keep all
 * @throws {UsageError} naming the registry when it is not a host[:port]
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { saveCredential } from "./credentials.ts";
 * const tmp = await Deno.makeTempDir();
 * const saved = Deno.env.get("OCIPKG_AUTH_FILE");
 * Deno.env.set("OCIPKG_AUTH_FILE", `${tmp}/config.json`);
 * await Deno.writeTextFile(`${tmp}/config.json`, JSON.stringify({ auths: { "GHCR.io:443": {} } }));
 * await saveCredential("ghcr.io", { username: "me", password: "secret" });
 * await saveCredential("Docker.IO", { username: "me", password: "hub" });
 * const { auths } = JSON.parse(await Deno.readTextFile(`${tmp}/config.json`));
 * assert.deepEqual(Object.keys(auths), ["ghcr.io", "https://index.docker.io/v1/"]);
 * if (saved === undefined) Deno.env.delete("OCIPKG_AUTH_FILE");
 * else Deno.env.set("OCIPKG_AUTH_FILE", saved);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function saveCredential(
  registry: string,
  cred: Credential,
  path: string = ocipkgAuthFile(),
): Promise<void> {
  const wanted = canonicalHost(registry);
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  // read, changed and replaced under the file's lock: two logins at once keep both
  await withFileLock(path, async () => {
    const f = (await readAuthFile(path)) ?? {};
    if (typeof f.auths !== "object" || f.auths === null || Array.isArray(f.auths)) f.auths = {};
    for (const key of keysOf(f.auths, wanted)) delete f.auths[key];
    f.auths[keyFor(wanted)] = cred.identityToken
      ? { identitytoken: cred.identityToken }
      : { auth: btoa(`${cred.username ?? ""}:${cred.password ?? ""}`) };
    await writeAuthFile(path, f);
  });
}

/**
 * Remove a registry's credentials from ocipkg's own auth file: its entries
 * under every spelling.
 *
 * @param registry `host[:port]`, any spelling
 * @param path the auth file (default {@link ocipkgAuthFile}), changed under its lock
 * @returns whether an entry was removed
 * @throws {UsageError} naming the registry when it is not a host[:port]
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { removeCredential } from "./credentials.ts";
 * const tmp = await Deno.makeTempDir();
 * const saved = Deno.env.get("OCIPKG_AUTH_FILE");
 * Deno.env.set("OCIPKG_AUTH_FILE", `${tmp}/config.json`);
 * const auths = { "localhost:5000": {}, "http://LOCALHOST:5000/v2/": {}, "localhost:5001": {} };
 * await Deno.writeTextFile(`${tmp}/config.json`, JSON.stringify({ auths }));
 * assert.equal(await removeCredential("localhost:05000"), true);
 * const after = JSON.parse(await Deno.readTextFile(`${tmp}/config.json`)).auths;
 * assert.deepEqual(Object.keys(after), ["localhost:5001"]);
 * assert.equal(await removeCredential("localhost:5000"), false); // none left
 * if (saved === undefined) Deno.env.delete("OCIPKG_AUTH_FILE");
 * else Deno.env.set("OCIPKG_AUTH_FILE", saved);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function removeCredential(
  registry: string,
  path: string = ocipkgAuthFile(),
): Promise<boolean> {
  const wanted = canonicalHost(registry);
  const holds = async () => keysOf((await readAuthFile(path))?.auths, wanted).length > 0;
  if (!(await holds())) return false; // nothing to remove: no lock taken, nothing made
  return await withFileLock(path, async () => {
    const f = await readAuthFile(path);
    const keys = keysOf(f?.auths, wanted);
    if (!f?.auths || keys.length === 0) return false;
    for (const key of keys) delete f.auths[key];
    await writeAuthFile(path, f);
    return true;
  });
}
