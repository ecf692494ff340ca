/**
 * Lists a registry answers page by page: the repositories of the registry
 * (its catalog), the tags of one repository (each streamed page by page)
 * and the referrers of a manifest (the referrers API), with bounded `Link`
 * pagination — same origin only, no loops, each page at most
 * {@link MAX_BODY} (4 MiB) bytes:
 *
 * | limit                | default                                       |
 * | -------------------- | --------------------------------------------- |
 * | pages of tags        | {@link MAX_TAG_PAGES} (10,000; `maxTagPages`) |
 * | tags                 | {@link MAX_TAGS} (1,000,000; `maxTags`)       |
 * | pages of the catalog | {@link MAX_TAG_PAGES} (10,000; `maxPages`)    |
 * | repositories         | {@link MAX_TAGS} (1,000,000; `maxRepositories`) |
 * | pages of referrers   | {@link MAX_REFERRER_PAGES} (100)              |
 * | referrers            | {@link MAX_REFERRERS} (10,000)                |
 *
 * A referrers page that cannot be read (over the cap, broken, malformed) does
 * not hide the others: see {@link referrers}.
 *
 * @module
 */
import { parseDigest } from "../../oci/digest.ts";
import { readBodyCapped } from "../../util/body.ts";
import { FormatError, NotFoundError, OcipkgError, oneLine } from "../../util/errors.ts";
import { IncompleteReferrersError } from "../referrers.ts";
import type { RegistryClient, RegistryRequest } from "./client.ts";
import { type Descriptor, parseManifestDocument } from "../../oci/manifest.ts";
import { OCI_INDEX } from "../../oci/media_types.ts";
import { printable } from "../../util/text.ts";
import { RegistryError } from "./errors.ts";
import { MAX_BODY } from "./http.ts";
import { MAX_TAG_PAGES, MAX_TAGS, type Repository } from "./repository.ts";

/** At most this many referrers of one manifest are read. */
export const MAX_REFERRERS = 10_000;
/** At most this many pages of the referrers API are read for one manifest. */
export const MAX_REFERRER_PAGES = 100;

/**
 * Stream a repository's tags page by page (see {@link pages} for the caps).
 *
 * @param repo the repository
 * @returns an async iterator of pages of tags (each tag made printable)
 * @throws {NotFoundError} when the registry does not know the repository
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegistryClient } from "./client.ts";
 * import { tagPages } from "./listing.ts";
 * import { Repository } from "./repository.ts";
 * // a stand-in for a registry listing two pages of tags
 * const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
 * const server = Deno.serve(listen, (req) =>
 *   new URL(req.url).searchParams.has("last")
 *     ? Response.json({ tags: ["2"] })
 *     : Response.json({ tags: ["1"] }, { headers: { link: '</v2/org/x/tags/list?last=1>; rel="next"' } }));
 * const client = new RegistryClient(`127.0.0.1:${server.addr.port}`, { credential: null });
 * const pages = [];
 * for await (const page of tagPages(new Repository(client, "org/x", {}))) pages.push(page);
 * assert.deepEqual(pages, [["1"], ["2"]]);
 * client.close();
 * await server.shutdown();
 * ```
 */
export async function* tagPages(
  repo: Repository,
): AsyncGenerator<string[], void, undefined> {
  const what = `repository '${repo.description}'`;
  const maxTags = repo.options.maxTags ?? MAX_TAGS;
  let count = 0;
  const first = `/v2/${repo.repository}/tags/list?n=1000`;
  const list = {
    client: repo.client,
    scope: repo.scope(),
    maxPages: repo.options.maxTagPages ?? MAX_TAG_PAGES,
  };
  const parse = (res: Response, bytes: Uint8Array): string[] => {
    if (res.status === 404) {
      throw new NotFoundError(`${what} not found on ${repo.client.registry}`);
    }
    let tags: unknown;
    try {
      tags = JSON.parse(new TextDecoder().decode(bytes)).tags ?? [];
    } catch {
      throw new FormatError(
        `${what}: ${repo.client.registry} answered a tag list that is not JSON`,
      );
    }
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string")) {
      throw new FormatError(
        `${what}: ${repo.client.registry} answered a tag list whose 'tags' is not a list of strings`,
      );
    }
    return tags as string[];
  };
  for await (const tags of pages(list, first, what, "tags", parse)) {
    count += tags.length;
    if (count > maxTags) {
      throw new RegistryError(
        `${what}: ${repo.client.registry} lists more than ${maxTags} tags; stopped`,
        0,
      );
    }
    yield tags.map((t) => printable(t));
  }
}

/** What {@link pages} reads a list with: the client, the token scope, the most pages. */
interface PagedList {
  client: RegistryClient;
  scope: string;
  maxPages: number;
}

/** Longest next-page link followed (8 KiB; a real one holds a name of at most 255). */
export const MAX_LINK = 8 * 1024;

/** At most this many pages in a row may list nothing while linking to a next one. */
export const MAX_EMPTY_PAGES = 3;

/**
 * GET a paginated list: each page (at most {@link MAX_BODY} bytes), read by
 * `parse`, then the next one its `Link: <…>; rel="next"` names — same origin
 * only, no loops, at most `maxPages` pages. A list must make progress: a
 * page that repeats one already read (the same names, however its URL is
 * spelled) is a loop, and more than {@link MAX_EMPTY_PAGES} pages in a row
 * that list nothing but link on are a list that never ends. A 404 page is
 * parsed (the caller judges it), and ends the list.
 */
async function* pages(
  list: PagedList,
  first: string,
  what: string,
  of: string,
  parse: (res: Response, bytes: Uint8Array) => string[],
): AsyncGenerator<string[], void, undefined> {
  const { client, scope, maxPages } = list;
  const origin = new URL(client.baseUrl).origin;
  const seen = new Set<string>();
  const read = new Set<string>();
  let empty = 0;
  let url: URL | undefined = new URL(first, client.baseUrl);
  for (let page = 0; url; page++) {
    if (page >= maxPages) {
      throw new RegistryError(
        `${what}: ${client.registry} has more than ${maxPages} pages of ${of}; stopped`,
        0,
      );
    }
    seen.add(url.href);
    const { res, bytes }: { res: Response; bytes: Uint8Array } = await client.requestBytes(
      { method: "GET", url: url.href, scope, what, ok: [200, 404] },
      MAX_BODY,
      `${what}: page of ${of} from ${client.registry}`,
    );
    const names = parse(res, bytes);
    if (res.status !== 200) {
      yield names;
      return;
    }
    if (names.length > 0) {
      // a page is known by its names: a registry never lists a name on two pages
      const key = `${names.length}\0${names[0]}\0${names[names.length - 1]}`;
      if (read.has(key)) {
        throw new RegistryError(
          `${what}: ${client.registry} linked to a page of ${of} already read (a loop)`,
          0,
        );
      }
      read.add(key);
    }
    yield names;
    url = nextPage(res, url, origin, seen, what, of, client.registry);
    empty = names.length === 0 ? empty + 1 : 0;
    if (url !== undefined && empty > MAX_EMPTY_PAGES) {
      throw new RegistryError(
        `${what}: ${client.registry} linked more than ${MAX_EMPTY_PAGES} pages in a row that ` +
          `list no ${of} (a list that never ends); stopped`,
        0,
      );
    }
  }
}

/** Options of {@link catalogPages}. */
export interface CatalogLimits {
  /** Most pages read (default {@link MAX_TAG_PAGES}). */
  maxPages?: number;
  /** Most repositories listed (default {@link MAX_TAGS}); more is an error. */
  maxRepositories?: number;
}

/**
 * Stream a registry's repositories (`GET /v2/_catalog`) page by page, in
 * the registry's order (see {@link pages} for the caps); each name made
 * printable.
 *
 * @param client the registry's client
 * @param limits the most pages and repositories
 * @returns an async iterator of pages of repository names
 * @throws {RegistryError} when the registry has no catalog (it answers 404)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegistryClient } from "./client.ts";
 * import { catalogPages } from "./listing.ts";
 * // a stand-in for a registry listing two pages of repositories
 * const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
 * const server = Deno.serve(listen, (req) =>
 *   new URL(req.url).searchParams.has("last")
 *     ? Response.json({ repositories: ["b/c"] })
 *     : Response.json({ repositories: ["a"] }, { headers: { link: '</v2/_catalog?last=a>; rel="next"' } }));
 * const client = new RegistryClient(`127.0.0.1:${server.addr.port}`, { credential: null });
 * const pages = [];
 * for await (const page of catalogPages(client)) pages.push(page);
 * assert.deepEqual(pages, [["a"], ["b/c"]]);
 * client.close();
 * await server.shutdown();
 * ```
 */
export async function* catalogPages(
  client: RegistryClient,
  limits: CatalogLimits = {},
): AsyncGenerator<string[], void, undefined> {
  const what = `catalog of ${client.registry}`;
  const max = limits.maxRepositories ?? MAX_TAGS;
  const list = { client, scope: "registry:catalog:*", maxPages: limits.maxPages ?? MAX_TAG_PAGES };
  let count = 0;
  const parse = (res: Response, bytes: Uint8Array): string[] => {
    if (res.status === 404) {
      throw new RegistryError(
        `${client.registry} has no catalog: GET /v2/_catalog answered 404 (many public ` +
          `registries do not list their repositories)`,
        404,
      );
    }
    let names: unknown;
    try {
      names = JSON.parse(new TextDecoder().decode(bytes)).repositories ?? [];
    } catch {
      throw new FormatError(`${what}: ${client.registry} answered a catalog that is not JSON`);
    }
    if (!Array.isArray(names) || names.some((t) => typeof t !== "string")) {
      throw new FormatError(
        `${what}: ${client.registry} answered a catalog whose 'repositories' is not a list of strings`,
      );
    }
    return names as string[];
  };
  for await (const names of pages(list, "/v2/_catalog?n=1000", what, "repositories", parse)) {
    count += names.length;
    if (count > max) {
      throw new RegistryError(
        `${what}: ${client.registry} lists more than ${max} repositories; stopped`,
        0,
      );
    }
    yield names.map((t) => printable(t));
  }
}

/**
 * The next page a list's `Link: <…>; rel="next"` names, or undefined at the
 * end: on `origin` only, and never a page already `seen`.
 */
function nextPage(
  res: Response,
  url: URL,
  origin: string,
  seen: Set<string>,
  what: string,
  of: string,
  registry: string,
): URL | undefined {
  const link = /<([^>]*)>\s*;\s*rel="?next"?/.exec(res.headers.get("link") ?? "");
  if (!link) return undefined;
  if (link[1]!.length > MAX_LINK) {
    throw new RegistryError(
      `${what}: ${registry} sent a next-page link of ${link[1]!.length} characters (at most ` +
        `${MAX_LINK}); refused`,
      0,
    );
  }
  let next: URL;
  try {
    next = new URL(link[1]!, url);
  } catch {
    throw new RegistryError(`${what}: ${registry} sent an invalid next-page link`, 0);
  }
  if (next.origin !== origin) {
    throw new RegistryError(
      `${what}: ${registry} linked the next page of ${of} to another origin (${
        printable(next.origin)
      }); refused`,
      0,
    );
  }
  if (seen.has(next.href)) {
    throw new RegistryError(
      `${what}: ${registry} linked back to a page of ${of} already read (a loop)`,
      0,
    );
  }
  return next;
}

/**
 * The manifests that name `digest` as their `subject`, from the registry's
 * referrers API (`GET /v2/<name>/referrers/<digest>`, every page), or
 * `undefined` when the registry has no such API (it answers 404, as
 * `distribution` 2.x does): then the tag-schema fallback index holds them
 * (see `listReferrers`).
 *
 * Pages are bounded: each at most {@link MAX_BODY} bytes, at most
 * {@link MAX_REFERRER_PAGES} pages and {@link MAX_REFERRERS} referrers,
 * `Link`s to the same origin only and never back to a page already read. A
 * page that is over its cap, broken off, not an index or malformed is
 * skipped, and the next page its `Link` names is still read: then the
 * listing ends with an {@link IncompleteReferrersError} that holds every
 * referrer read and why each page was not (the verifier checks what it
 * holds; `listReferrers` keeps it with `partial`). When nothing was read and
 * one page failed, that page's own error is thrown.
 *
 * @param repo the repository
 * @param digest the subject's digest
 * @param artifactType only referrers of this type (asked of the registry
 *   and checked here: a registry may ignore the filter)
 * @returns descriptors (with `artifactType`, `annotations`), or undefined
 * @throws {FormatError} when the only page is not an image index
 * @throws {IncompleteReferrersError} when some pages could not be read
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegistryClient } from "./client.ts";
 * import { referrers } from "./listing.ts";
 * import { Repository } from "./repository.ts";
 * // a stand-in for a registry without the referrers API (distribution 2.x)
 * const listen = { hostname: "127.0.0.1", port: 0, onListen() {} };
 * const server = Deno.serve(listen, () => new Response(null, { status: 404 }));
 * const client = new RegistryClient(`127.0.0.1:${server.addr.port}`, { credential: null });
 * const subject = `sha256:${"0".repeat(64)}`;
 * assert.equal(await referrers(new Repository(client, "org/x", {}), subject), undefined);
 * client.close();
 * await server.shutdown();
 * ```
 */
export async function referrers(
  repo: Repository,
  digest: string,
  artifactType?: string,
): Promise<Descriptor[] | undefined> {
  parseDigest(digest);
  const registry = repo.client.registry;
  const what = `referrers of ${repo.description}@${digest}`;
  const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : "";
  const out: Descriptor[] = [];
  const failed: OcipkgError[] = [];
  const origin = new URL(repo.client.baseUrl).origin;
  const seen = new Set<string>();
  let url: URL | undefined = new URL(
    `/v2/${repo.repository}/referrers/${digest}${query}`,
    repo.client.baseUrl,
  );
  for (let page = 1; url; page++) {
    if (page > MAX_REFERRER_PAGES) {
      failed.push(
        new RegistryError(
          `${what}: ${registry} has more than ${MAX_REFERRER_PAGES} pages of referrers; stopped`,
          0,
        ),
      );
      break;
    }
    seen.add(url.href);
    const where = page === 1 ? what : `${what} (page ${page})`;
    const label = `${where}: the answer of ${registry}`;
    const req = { method: "GET", url: url.href, scope: repo.scope(), what, ok: [200, 404] };
    // the first answer says whether there is an API at all: its failure is the listing's
    const res = await repo.client.request(req);
    if (res.status === 404) {
      await res.body?.cancel().catch(() => {});
      if (page === 1) return undefined;
      break;
    }
    let next: URL | undefined;
    let bytes: Uint8Array | undefined;
    try {
      next = nextPage(res, url, origin, seen, where, "referrers", registry);
    } catch (e) {
      if (!(e instanceof OcipkgError)) throw e;
      failed.push(e);
    }
    try {
      bytes = await readPage(repo, req, res, label);
      const doc = parseManifestDocument(
        bytes,
        OCI_INDEX,
        page === 1 ? `${what} (from ${registry})` : `${what} (page ${page} from ${registry})`,
      );
      if (doc.kind !== "index") {
        throw new FormatError(`${where}: ${registry} answered a manifest, not an index`);
      }
      for (const d of doc.index.manifests) {
        if (artifactType && d.artifactType !== artifactType) continue;
        if (out.length >= MAX_REFERRERS) {
          throw new RegistryError(
            `${what}: ${registry} lists more than ${MAX_REFERRERS} referrers; stopped`,
            0,
          );
        }
        out.push(d);
      }
    } catch (e) {
      if (!(e instanceof OcipkgError)) throw e;
      failed.push(e);
      if (out.length >= MAX_REFERRERS) break;
    }
    url = next;
  }
  if (failed.length === 0) return out;
  if (failed.length === 1 && out.length === 0) throw failed[0]!;
  throw new IncompleteReferrersError(out, failed.map((e) => oneLine(e)));
}

/**
 * A referrers page's body, at most {@link MAX_BODY} bytes; a body that
 * broke off or stalled is asked for again (with the client's retries).
 */
async function readPage(
  repo: Repository,
  req: RegistryRequest,
  res: Response,
  label: string,
): Promise<Uint8Array> {
  let tooLarge: RegistryError | undefined;
  try {
    return await readBodyCapped(res, MAX_BODY, (declared) =>
      tooLarge = new RegistryError(
        declared === undefined
          ? `${label} is larger than the ${MAX_BODY}-byte cap`
          : `${label} is ${declared} bytes, over the ${MAX_BODY}-byte cap`,
        res.status,
      ));
  } catch (e) {
    if (tooLarge && e === tooLarge) throw e;
    return (await repo.client.requestBytes(req, MAX_BODY, label)).bytes;
  }
}
