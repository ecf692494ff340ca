/**
 * `login` and `logout`: check credentials against a registry, save or remove them.
 *
 * @module
 */
import { OcipkgError, UsageError } from "../../util/errors.ts";
import type { ClientOptions } from "./client.ts";
import { AuthError } from "./errors.ts";
import { type Credential, removeCredential, saveCredential } from "./credentials.ts";
import { canonicalHost } from "../../oci/reference.ts";
import { RegistryTarget } from "./target.ts";

/**
 * Check credentials against a registry and save them (mode 0600), under the
 * registry's canonical name (see `canonicalRegistry`; Docker Hub's as
 * `https://index.docker.io/v1/`, the key docker reads).
 *
 * @param registry `host[:port]`, any spelling
 * @param credential user and password/token
 * @param options client options (scheme, CA)
 * @throws {AuthError} when the registry refuses them (nothing is saved)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AuthError, serve } from "@ocipkg/cli";
 * import { login, logout } from "@ocipkg/cli/transport";
 * const tmp = await Deno.makeTempDir();
 * const saved = Deno.env.get("OCIPKG_AUTH_FILE");
 * Deno.env.set("OCIPKG_AUTH_FILE", `${tmp}/config.json`); // default: ~/.ocipkg/config.json
 * // a registry that lets in user `me` with password `secret` (an `htpasswd -B` entry)
 * const entry = "me:$2b$04$TGFZdGzb1bEf7fWpjajvF.Y6d.QbWeJjneKVbGmAOVNi4xdMI3BVG";
 * await Deno.writeTextFile(`${tmp}/htpasswd`, `${entry}\n`);
 * const htpasswd = `${tmp}/htpasswd`;
 * const registry = await serve({ root: `${tmp}/root`, addr: "127.0.0.1:0", htpasswd });
 * await assert.rejects(login(registry.addr, { username: "me", password: "wrong" }), AuthError);
 * await login(registry.addr, { username: "me", password: "secret" }); // checked, then saved
 * const { auths } = JSON.parse(await Deno.readTextFile(`${tmp}/config.json`));
 * assert.deepEqual(Object.keys(auths), [registry.addr]);
 * await logout(registry.addr);
 * await registry.close();
 * if (saved === undefined) Deno.env.delete("OCIPKG_AUTH_FILE");
 * else Deno.env.set("OCIPKG_AUTH_FILE", saved);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function login(
  registry: string,
  credential: Credential,
  options: ClientOptions = {},
): Promise<void> {
  try {
    registry = canonicalHost(registry);
  } catch {
    throw new UsageError(`invalid registry '${registry}': use host[:port]`);
  }
  const t = new RegistryTarget(registry, "ocipkg/login-check", { ...options, credential });
  try {
    await t.ping();
  } catch (e) {
    if (e instanceof AuthError && (e.status === 401 || e.status === 403)) {
      // the credentials just given were refused: say that, not "run login"
      throw new AuthError(
        `login to ${registry} failed: it refused the ${
          credential.username ? `password for user '${credential.username}'` : "token"
        } (${e.status}); nothing was saved`,
        e.status,
        e.code,
        { cause: e },
      );
    }
    throw e;
  } finally {
    await t.close();
  }
  await saveCredential(registry, credential);
}

/**
 * Remove saved credentials (the registry's entries under every spelling).
 *
 * @param registry `host[:port]`, any spelling
 * @throws {OcipkgError} when none were saved
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OcipkgError } from "@ocipkg/cli";
 * import { logout } from "@ocipkg/cli/transport";
 * const tmp = await Deno.makeTempDir();
 * const saved = Deno.env.get("OCIPKG_AUTH_FILE");
 * Deno.env.set("OCIPKG_AUTH_FILE", `${tmp}/config.json`); // default: ~/.ocipkg/config.json
 * const auths = { "registry.example": { auth: btoa("me:secret") } }; // as `login` saves it
 * await Deno.writeTextFile(`${tmp}/config.json`, JSON.stringify({ auths }));
 * await logout("registry.example");
 * assert.deepEqual(JSON.parse(await Deno.readTextFile(`${tmp}/config.json`)).auths, {});
 * await assert.rejects(logout("registry.example"), OcipkgError); // not logged in
 * if (saved === undefined) Deno.env.delete("OCIPKG_AUTH_FILE");
 * else Deno.env.set("OCIPKG_AUTH_FILE", saved);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function logout(registry: string): Promise<void> {
  if (!(await removeCredential(registry))) throw new OcipkgError(`not logged in to ${registry}`);
}
