/**
 * Listing a registry's repositories (its catalog, `GET /v2/_catalog`), page
 * by page.
 *
 * @module
 */
import { UsageError } from "../../util/errors.ts";
import { canonicalHost } from "../../oci/reference.ts";
import { printable } from "../../util/text.ts";
import { type ClientOptions, RegistryClient } from "./client.ts";
import { catalogPages } from "./listing.ts";

/** Options of {@link listCatalogPages}: the client's, and the caps of the listing. */
export interface CatalogOptions extends ClientOptions {
  /** Most pages read (default 10,000). */
  maxPages?: number;
  /** Most repositories listed (default 1,000,000); more is an error. */
  maxRepositories?: number;
}

/**
 * The registry a user named for its catalog: a host (`ghcr.io`,
 * `localhost:5000`, `docker://localhost:5000`), made canonical.
 *
 * @param registry the text
 * @returns `host[:port]`, canonical
 * @throws {UsageError} for a repository (has a `/`) or an invalid host
 */
function registryHost(registry: string): string {
  const host = (registry.startsWith("docker://") ? registry.slice(9) : registry).replace(
    /\/+$/,
    "",
  );
  const shown = printable(registry.slice(0, 300));
  const scheme = /^([a-z][a-z0-9+.-]*):\/\/([^/]*)/i.exec(host);
  if (scheme) {
    throw new UsageError(
      `'${shown}' has a scheme: give the registry's host alone ('${
        printable(scheme[2]!.slice(0, 300))
      }'; for plain http, --plain-http)`,
    );
  }
  if (host.includes("/")) {
    throw new UsageError(
      `'${shown}' names a repository; the catalog lists a registry's repositories: give its host ` +
        `alone ('${
          printable(host.split("/")[0]!.slice(0, 300))
        }'); a repository's tags: ocipkg tags ${shown}`,
    );
  }
  try {
    return canonicalHost(host);
  } catch {
    throw new UsageError(`invalid registry '${shown}': use host[:port]`);
  }
}

/**
 * Stream a registry's repositories page by page, in the registry's order:
 * memory stays at one page (4 MiB); pages and names are capped
 * (`maxPages`, `maxRepositories`). Registries that do not list their
 * repositories (many public ones) answer 404 or refuse: an error naming the
 * registry.
 *
 * @param registry `host[:port]`, e.g. `ghcr.io`, `localhost:5000`
 * @param options client options and caps
 * @returns an async iterator of pages of repository names
 * @throws {UsageError} when `registry` is not a host (a repository, say)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { packDirectory, pushImage, serve } from "@ocipkg/cli";
 * import { listCatalogPages } from "@ocipkg/cli/transport";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * const registry = await serve({ root: `${tmp}/root`, addr: "127.0.0.1:0" });
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: `${registry.addr}/org/libfoo:1` });
 * await pushImage(`${tmp}/foo.tar`);
 * await pushImage(`${tmp}/foo.tar`, `${registry.addr}/org/libbar:1`);
 * const names: string[] = [];
 * for await (const page of listCatalogPages(registry.addr)) names.push(...page);
 * assert.deepEqual(names, ["org/libbar", "org/libfoo"]);
 * await registry.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function* listCatalogPages(
  registry: string,
  options: CatalogOptions = {},
): AsyncGenerator<string[], void, undefined> {
  const client = new RegistryClient(registryHost(registry), options);
  try {
    yield* catalogPages(client, options);
  } finally {
    client.close();
  }
}

/**
 * List a registry's repositories (all pages; see {@link listCatalogPages}).
 *
 * @param registry `host[:port]`
 * @param options client options and caps
 * @returns repository names, in the registry's order
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serve } from "@ocipkg/cli";
 * import { listCatalog } from "@ocipkg/cli/transport";
 * const tmp = await Deno.makeTempDir();
 * const registry = await serve({ root: `${tmp}/root`, addr: "127.0.0.1:0" });
 * assert.deepEqual(await listCatalog(registry.addr), []); // nothing pushed yet
 * await assert.rejects(listCatalog(`${registry.addr}/org/x`), /names a repository/);
 * await registry.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function listCatalog(
  registry: string,
  options: CatalogOptions = {},
): Promise<string[]> {
  const out: string[] = [];
  for await (const page of listCatalogPages(registry, options)) for (const r of page) out.push(r);
  return out;
}
