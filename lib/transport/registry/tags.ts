/**
 * Listing a repository's tags, page by page.
 *
 * @module
 */
import { type ImageName, imageName, isRegistryHost } from "../../oci/reference.ts";
import { UsageError } from "../../util/errors.ts";
import { printable } from "../../util/text.ts";
import { openRepository } from "./target.ts";
import type { RegistryTargetOptions } from "./repository.ts";

/**
 * List a repository's tags (all pages; see {@link listTagPages} to stream them).
 *
 * @param repository `host[:port]/name` (a tag, if given, is ignored)
 * @param options client options
 * @returns tags
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { packDirectory, pushImage, serve } from "@ocipkg/cli";
 * import { listTags } from "@ocipkg/cli/transport";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * const registry = await serve({ root: `${tmp}/root`, addr: "127.0.0.1:0" }); // or ghcr.io, …
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: `${registry.addr}/org/libfoo:1.2` });
 * await pushImage(`${tmp}/foo.tar`);
 * await pushImage(`${tmp}/foo.tar`, `${registry.addr}/org/libfoo:1.3`);
 * assert.deepEqual(await listTags(`${registry.addr}/org/libfoo`), ["1.2", "1.3"]);
 * await registry.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function listTags(
  repository: string | ImageName,
  options: RegistryTargetOptions = {},
): Promise<string[]> {
  const out: string[] = [];
  for await (const page of listTagPages(repository, options)) for (const t of page) out.push(t);
  return out;
}

/**
 * Stream a repository's tags page by page: memory stays bounded by one page
 * (4 MiB) however many tags there are; pages and tags are capped
 * (`maxTagPages`, `maxTags`). A registry host alone (`localhost:5000`,
 * `ghcr.io`) is refused rather than read as a Docker Hub repository.
 *
 * @param repository `host[:port]/name` (a tag, if given, is ignored)
 * @param options client options
 * @returns an async iterator of pages of tags
 * @throws {UsageError} for a registry host alone (its repositories: `listCatalog`)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { packDirectory, pushImage, serve } from "@ocipkg/cli";
 * import { listTagPages } from "@ocipkg/cli/transport";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * const registry = await serve({ root: `${tmp}/root`, addr: "127.0.0.1:0" }); // or ghcr.io, …
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: `${registry.addr}/org/libfoo:1.2` });
 * await pushImage(`${tmp}/foo.tar`);
 * let count = 0;
 * for await (const page of listTagPages(`${registry.addr}/org/libfoo`, { maxTags: 100_000 })) {
 *   count += page.length; // one page in memory at a time
 * }
 * assert.equal(count, 1);
 * // a registry alone is not a repository (its repositories: listCatalog)
 * await assert.rejects(listTagPages(registry.addr).next(), /is a registry, not a repository/);
 * await registry.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function* listTagPages(
  repository: string | ImageName,
  options: RegistryTargetOptions = {},
): AsyncGenerator<string[], void, undefined> {
  if (typeof repository === "string" && isRegistryHost(repository)) {
    const host = printable(repository);
    throw new UsageError(
      `'${host}' is a registry, not a repository: list its repositories with 'ocipkg catalog ${host}', ` +
        `a repository's tags with 'ocipkg tags ${host}/<repository>'`,
    );
  }
  const t = openRepository(imageName(repository), options);
  try {
    yield* t.tagPages();
  } finally {
    await t.close();
  }
}
