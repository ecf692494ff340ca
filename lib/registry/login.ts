/**
 * `login` and `logout`: check credentials against a registry, save or remove them.
 *
 * @module
 */
import { OcipkgError, UsageError } from "../errors.ts";
import type { ClientOptions } from "./client.ts";
import { type Credential, removeCredential, saveCredential } from "./credentials.ts";
import { RegistryTarget } from "./target.ts";

/**
 * Check credentials against a registry and save them (mode 0600).
 *
 * @param registry `host[:port]`
 * @param credential user and password/token
 * @param options client options (scheme, CA)
 * @throws {AuthError} when the registry refuses them (nothing is saved)
 */
export async function login(
  registry: string,
  credential: Credential,
  options: ClientOptions = {},
): Promise<void> {
  if (!/^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9a-fA-F:]+\](:\d+)?$/.test(registry)) {
    throw new UsageError(`invalid registry '${registry}': use host[:port]`);
  }
  const t = new RegistryTarget(registry, "ocipkg/login-check", { ...options, credential });
  try {
    await t.ping();
  } finally {
    await t.close();
  }
  await saveCredential(registry, credential);
}

/**
 * Remove saved credentials.
 *
 * @param registry `host[:port]`
 * @throws {OcipkgError} when none were saved
 */
export async function logout(registry: string): Promise<void> {
  if (!(await removeCredential(registry))) throw new OcipkgError(`not logged in to ${registry}`);
}
