/**
 * Registry credentials: read from ocipkg's own auth file, docker's
 * `config.json` (`auths`, `credsStore`, `credHelpers` via
 * `docker-credential-<name>`), and podman/containers `auth.json`; written to
 * ocipkg's own file (mode 0600) by `login`.
 *
 * @module
 */
import { dirname, join } from "../path.ts";
import { OcipkgError } from "../errors.ts";
import { atomicWriteFile } from "../fs_util.ts";

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

async function readAuthFile(path: string): Promise<AuthFile | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text);
    return typeof v === "object" && v !== null ? v as AuthFile : undefined;
  } catch {
    throw new OcipkgError(`auth file '${path}' is not valid JSON`);
  }
}

/** Keys under which a registry may appear in `auths`. */
function keysFor(registry: string): string[] {
  const keys = [
    registry,
    `https://${registry}`,
    `http://${registry}`,
    `https://${registry}/v1/`,
    `https://${registry}/v2/`,
  ];
  if (
    registry === "registry-1.docker.io" || registry === "docker.io" ||
    registry === "index.docker.io"
  ) {
    keys.push(DOCKER_HUB_KEY, "docker.io", "index.docker.io", "registry-1.docker.io");
  }
  return keys;
}

function decodeEntry(e: AuthEntry, path: string): Credential | undefined {
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
 * Find credentials for a registry in every known auth file.
 *
 * @param registry `host[:port]`
 * @returns the first credential found, or undefined
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
 * if (saved === undefined) Deno.env.delete("OCIPKG_AUTH_FILE");
 * else Deno.env.set("OCIPKG_AUTH_FILE", saved);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function findCredential(registry: string): Promise<Credential | undefined> {
  for (const path of authFiles()) {
    const f = await readAuthFile(path);
    if (!f) continue;
    for (const key of keysFor(registry)) {
      const helper = f.credHelpers?.[key];
      if (helper) {
        const c = await credentialFromHelper(helper, key);
        if (c) return { ...c, source: `credential helper docker-credential-${helper} (${path})` };
      }
    }
    for (const key of keysFor(registry)) {
      const e = f.auths?.[key];
      const c = e ? decodeEntry(e, path) : undefined;
      if (c) return { ...c, source: fileSource(path) };
    }
    if (f.credsStore && f.auths && keysFor(registry).some((k) => k in f.auths!)) {
      const c = await credentialFromHelper(f.credsStore, registry);
      if (c) {
        return { ...c, source: `credential helper docker-credential-${f.credsStore} (${path})` };
      }
    }
  }
  return undefined;
}

/**
 * Save credentials in ocipkg's own auth file (atomically, mode 0600).
 *
 * @param registry `host[:port]`
 * @param cred the credential
 */
export async function saveCredential(registry: string, cred: Credential): Promise<void> {
  const path = ocipkgAuthFile();
  const f = (await readAuthFile(path)) ?? {};
  f.auths ??= {};
  f.auths[registry] = cred.identityToken
    ? { identitytoken: cred.identityToken }
    : { auth: btoa(`${cred.username ?? ""}:${cred.password ?? ""}`) };
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await atomicWriteFile(path, new TextEncoder().encode(JSON.stringify(f, null, 2) + "\n"), 0o600);
  await Deno.chmod(path, 0o600).catch(() => {});
}

/**
 * Remove a registry's credentials from ocipkg's own auth file.
 *
 * @param registry `host[:port]`
 * @returns whether an entry was removed
 */
export async function removeCredential(registry: string): Promise<boolean> {
  const path = ocipkgAuthFile();
  const f = await readAuthFile(path);
  if (!f?.auths?.[registry]) return false;
  delete f.auths[registry];
  await atomicWriteFile(path, new TextEncoder().encode(JSON.stringify(f, null, 2) + "\n"), 0o600);
  return true;
}
