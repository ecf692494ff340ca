/**
 * A repository on a distribution-spec registry as a {@link Target}: a thin
 * class over its parts — manifests (`manifests.ts`), blob downloads
 * (`download.ts`: resumable, or in parallel ranges), blob uploads
 * (`upload.ts`: monolithic, streamed, chunked, mounts), and tag and referrers
 * listings (`listing.ts`) — which share one `Repository` (`repository.ts`:
 * the client, names for messages, scopes, the options). And
 * {@link openRepository}, the one way from an image name to its repository.
 *
 * The uploads and the listings are loaded on first use (`import()`): a pull
 * needs neither, and every module loaded costs its start-up.
 *
 * @module
 */
import { isDigest, parseDigest } from "../../oci/digest.ts";
import { NotFoundError, UsageError } from "../../util/errors.ts";
import { RegistryError } from "./errors.ts";
import { type Descriptor, isManifestType, MAX_MANIFEST_SIZE } from "../../oci/manifest.ts";
import type {
  BlobSpec,
  FetchOptions,
  PushOptions,
  ReadTarget,
  TagOptions,
  Target,
} from "../target.ts";
import { type ImageName, isRepositoryName } from "../../oci/reference.ts";
import { printable } from "../../util/text.ts";
import { RegistryClient } from "./client.ts";
import { readCapped, timeoutOf } from "./http.ts";
import { BlobDownloads } from "./download.ts";
import type { BlobUploads } from "./upload.ts";
import { MANIFEST_ACCEPT, Manifests } from "./manifests.ts";
import { type RegistryTargetOptions, Repository } from "./repository.ts";
import type { Mirrors } from "./mirrors.ts";

/**
 * One repository of a registry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegistryTarget } from "@ocipkg/cli";
 * const t = new RegistryTarget("localhost:5000", "org/libfoo", { credential: null });
 * assert.equal(t.description, "localhost:5000/org/libfoo");
 * assert.equal(t.repository, "org/libfoo");
 * assert.equal(t.client.baseUrl, "http://localhost:5000"); // a loopback host: plain http
 * await t.close();
 * ```
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { OciArchive, RegistryTarget } from "@ocipkg/cli";
 * import { copy, withTarget } from "@ocipkg/cli/transport";
 * const src = await OciArchive.open("libfoo.tar");
 * const root = await withTarget(
 *   new RegistryTarget("ghcr.io", "org/libfoo"), // credentials from `ocipkg login`, docker, podman
 *   (dst) => copy(src, dst, { dstRef: "1.2" }), // the archive's only image, tagged 1.2
 * );
 * await src.close();
 * const again = new RegistryTarget("ghcr.io", "org/libfoo");
 * assert.equal((await again.resolve("1.2")).digest, root.digest);
 * await again.close();
 * ```
 */
export class RegistryTarget implements Target {
  readonly description: string;
  /**
   * The HTTP client: its own, or one passed in that targets of the same
   * registry share (the target does not close a client passed in).
   */
  readonly client: RegistryClient;
  #ownClient: boolean;
  /** Repository path, e.g. `org/libfoo`. */
  readonly repository: string;
  #repo: Repository;
  #manifests: Manifests;
  #downloads: BlobDownloads;
  #uploads: Promise<BlobUploads> | undefined;
  #mirrors: Promise<Mirrors<RegistryTarget>> | undefined;

  /**
   * Create a RegistryTarget.
   * @param registry `host[:port]` (any spelling: made canonical) or an existing client
   * @param repository repository path
   * @param options client and transfer options
   * @throws {UsageError} naming the repository when it is not a valid repository name
   */
  constructor(
    registry: string | RegistryClient,
    repository: string,
    options: RegistryTargetOptions = {},
  ) {
    if (!isRepositoryName(repository)) {
      throw new UsageError(
        `invalid repository name '${
          printable(repository.slice(0, 300))
        }' (lower-case letters, digits, '.', '_', '-', '/')`,
      );
    }
    this.#ownClient = typeof registry === "string";
    this.client = typeof registry === "string" ? new RegistryClient(registry, options) : registry;
    this.repository = repository;
    this.description = `${this.client.registry}/${repository}`;
    this.#repo = new Repository(this.client, repository, options);
    this.#manifests = new Manifests(this.#repo);
    this.#downloads = new BlobDownloads(this.#repo);
    const mirrors = options.mirrors ?? this.client.settings?.mirrors ?? [];
    if (mirrors.length > 0) {
      // mirrors.ts loads only when mirrors are configured
      this.#mirrors = import("./mirrors.ts").then((m) =>
        new m.Mirrors(
          mirrors,
          (host) => new RegistryTarget(host, repository, mirrorOptions(options)),
          options.debug,
        )
      );
      this.#mirrors.catch(() => {}); // a failure is thrown where the mirrors are asked
    }
  }

  /** The first mirror's answer (see `Mirrors.first`); undefined without mirrors. */
  #fromMirror<T>(
    need: "pull" | "resolve",
    ask: (mirror: RegistryTarget) => Promise<T>,
  ): Promise<T | undefined> | undefined {
    return this.#mirrors?.then((m) => m.first(need, ask));
  }

  /**
   * Check that the registry speaks the v2 API (and that credentials work).
   *
   * @throws {RegistryError} naming the host
   */
  async ping(): Promise<void> {
    const res = await this.client.request({
      method: "GET",
      url: "/v2/",
      what: `registry ${this.client.registry}`,
    });
    await res.body?.cancel();
  }

  /**
   * Resolve a tag or digest to the descriptor of its manifest.
   *
   * @param reference a tag or digest (default `latest`)
   * @returns the descriptor
   * @throws {NotFoundError} when the registry has no such manifest
   */
  async resolve(reference = "latest"): Promise<Descriptor> {
    // a digest whose manifest is at hand already needs no one; else a digest from any mirror
    // (verified); a tag only from a mirror trusted to resolve it
    if (isDigest(reference) && this.#manifests.has(reference)) {
      return await this.#manifests.resolve(reference);
    }
    const need = isDigest(reference) ? "pull" : "resolve";
    return await this.#fromMirror(need, (m) => m.resolve(reference)) ??
      await this.#manifests.resolve(reference);
  }

  /**
   * Stream a manifest or blob, verified against `desc` (size and digest): a
   * mismatch is a {@link VerificationError} naming the digest and the
   * repository (a blob's stream errors with it, as soon as too many bytes
   * arrive or at its end). `options.signal` stops its requests and its
   * stream (they fail with the signal's reason).
   */
  async fetch(desc: Descriptor, options: FetchOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const manifest = isManifestType(desc.mediaType);
    // a mirror first, unless the manifest is at hand already
    if (!(manifest && this.#manifests.has(desc.digest))) {
      const fromMirror = await this.#fromMirror("pull", (m) => m.fetchAnswered(desc, options));
      if (fromMirror) return fromMirror;
    }
    options.signal?.throwIfAborted();
    if (manifest) return await this.#manifests.fetch(desc, options);
    return this.#downloads.fetch(desc, options);
  }

  /**
   * Like {@link fetch}, but the registry has answered before this returns (a
   * manifest is read whole and verified; a blob's download has begun): a
   * manifest or blob the registry does not have, or a registry it cannot
   * reach, throws here rather than from the stream. How a mirror is asked.
   *
   * @param desc the manifest or blob
   * @param options `signal`: stops its requests and its stream
   * @returns its bytes, verified as {@link fetch}'s
   * @throws {NotFoundError} when the registry does not have it
   */
  async fetchAnswered(
    desc: Descriptor,
    options: FetchOptions = {},
  ): Promise<ReadableStream<Uint8Array>> {
    if (isManifestType(desc.mediaType)) return await this.#manifests.fetch(desc, options);
    return await this.#downloads.fetchAnswered(desc, options);
  }

  /**
   * Whether the registry has a manifest or blob (a `HEAD` request).
   * `options.signal` stops the request (it rejects with the signal's reason).
   */
  async exists(desc: Descriptor, options: FetchOptions = {}): Promise<boolean> {
    const kind = isManifestType(desc.mediaType) ? "manifests" : "blobs";
    const res = await this.client.request({
      method: "HEAD",
      url: `/v2/${this.repository}/${kind}/${desc.digest}`,
      headers: kind === "manifests" ? { accept: MANIFEST_ACCEPT } : {},
      scope: this.#repo.scope(),
      what: this.#repo.what(desc.digest),
      ok: [200, 404],
      signal: options.signal,
    });
    await res.body?.cancel();
    return res.status === 200;
  }

  /**
   * The descriptor of a blob, from a `HEAD` request: its size is the
   * `Content-Length` the registry answered (what is fetched with it is then
   * verified against both), its media type `application/octet-stream`.
   *
   * @param digest the blob's digest
   * @returns the descriptor
   * @throws {NotFoundError} when the registry has no such blob
   * @throws {RegistryError} when the answer has no usable `Content-Length`
   */
  async blobDescriptor(digest: string): Promise<Descriptor> {
    parseDigest(digest);
    const what = `blob ${digest} of ${this.description}`;
    const res = await this.client.request({
      method: "HEAD",
      url: `/v2/${this.repository}/blobs/${digest}`,
      scope: this.#repo.scope(),
      what,
      ok: [200, 404],
    });
    await res.body?.cancel();
    if (res.status === 404) throw new NotFoundError(`${what} not found on ${this.client.registry}`);
    await this.#repo.checkAnswered(res, digest, what);
    const length = res.headers.get("content-length") ?? "";
    if (!/^\d{1,16}$/.test(length) || !Number.isSafeInteger(Number(length))) {
      throw new RegistryError(
        `${what}: ${this.client.registry} answered no usable Content-Length ('${
          printable(length.slice(0, 40))
        }')`,
        res.status,
      );
    }
    return { mediaType: "application/octet-stream", digest, size: Number(length) };
  }

  /**
   * The digest a tag points at, from a `HEAD` request (see `Manifests.digestOf`).
   *
   * @param reference a tag or digest
   * @returns the digest, or undefined when there is no such manifest
   */
  digestOf(reference: string): Promise<string | undefined> {
    return this.#manifests.digestOf(reference);
  }

  /**
   * Delete a manifest by digest (its tags go with it), or a tag alone where
   * the registry allows it (distribution 2.x does not).
   *
   * @param reference a digest or tag
   * @throws {NotFoundError} when there is no such manifest or tag
   * @throws {RegistryError} naming the registry when it refuses
   */
  delete(reference: string): Promise<void> {
    return this.#manifests.delete(reference);
  }

  /**
   * Cross-repository mount: when `src` is another repository of the same
   * registry, ask the registry to link the blob instead of uploading it.
   *
   * @param desc the blob
   * @param src the copy's source
   * @param options `signal`: stops the request (it rejects with the signal's reason)
   * @returns true when the registry mounted it
   */
  async mount(desc: Descriptor, src: ReadTarget, options: PushOptions = {}): Promise<boolean> {
    if (
      !(src instanceof RegistryTarget) || src.client.registry !== this.client.registry ||
      src.repository === this.repository
    ) return false;
    return await (await this.#uploader()).mount(desc, src.repository, options.signal);
  }

  /**
   * Push a blob or manifest. `options.signal` stops it: its requests end,
   * an upload session it opened is cancelled, and it rejects with the
   * signal's reason.
   */
  async push(
    spec: BlobSpec,
    content: ReadableStream<Uint8Array>,
    options: PushOptions = {},
  ): Promise<Descriptor> {
    const signal = options.signal;
    let uploads: BlobUploads | undefined;
    try {
      signal?.throwIfAborted();
      if (!isManifestType(spec.mediaType)) uploads = await this.#uploader();
    } catch (e) {
      await content.cancel(e).catch(() => {});
      throw e;
    }
    if (!uploads) return await this.#manifests.push(spec, content, signal);
    return await uploads.push(spec, content, signal);
  }

  /** The blob uploads, loaded with their module on first use; one per target (they learn). */
  #uploader(): Promise<BlobUploads> {
    return this.#uploads ??= import("./upload.ts").then((m) => new m.BlobUploads(this.#repo));
  }

  async tag(desc: Descriptor, reference: string, options: TagOptions = {}): Promise<void> {
    const signal = options.signal;
    signal?.throwIfAborted();
    if (isDigest(reference)) return;
    this.#repo.checkReference(reference);
    // fetch answers from the cache when it can, verified against desc either way
    const bytes = await readCapped(
      new Response(await this.fetch(desc, { signal })),
      MAX_MANIFEST_SIZE,
      `manifest ${desc.digest} of ${this.description}`,
    );
    await this.#manifests.put(bytes, desc.mediaType, reference, desc.digest, signal);
  }

  /**
   * Stream a repository's tags page by page (see `tagPages` in `listing.ts`
   * for the caps).
   *
   * @returns an async iterator of pages of tags (each tag made printable)
   */
  async *tagPages(): AsyncGenerator<string[], void, undefined> {
    yield* (await import("./listing.ts")).tagPages(this.#repo);
  }

  /**
   * The manifests that name `digest` as their `subject`, from the registry's
   * referrers API (`GET /v2/<name>/referrers/<digest>`, every page), or
   * `undefined` when the registry has no such API (it answers 404, as
   * `distribution` 2.x does): then the tag-schema fallback index holds them
   * (see `listReferrers`).
   *
   * @param digest the subject's digest
   * @param artifactType only referrers of this type (asked of the registry
   *   and checked here: a registry may ignore the filter)
   * @returns descriptors (with `artifactType`, `annotations`), or undefined
   * @throws {FormatError} when a page is not an image index
   */
  async referrers(digest: string, artifactType?: string): Promise<Descriptor[] | undefined> {
    return await (await import("./listing.ts")).referrers(this.#repo, digest, artifactType);
  }

  /**
   * List the repository's tags (all pages, see {@link tagPages} for the caps).
   *
   * @returns tags
   */
  async tags(): Promise<string[]> {
    const out: string[] = [];
    for await (const page of this.tagPages()) for (const t of page) out.push(t);
    return out;
  }

  async close(): Promise<void> {
    await (await this.#mirrors?.catch(() => undefined))?.close();
    if (this.#ownClient) this.client.close();
  }

  /**
   * Give up: stop the requests in flight (downloads and uploads fail with a
   * {@link RegistryError} saying they were stopped) and close. A client
   * passed in, which other targets share, is not stopped.
   */
  async abort(): Promise<void> {
    if (this.#ownClient) this.client.abort();
    await (await this.#mirrors?.catch(() => undefined))?.abort();
    await this.close();
  }
}

/**
 * How long a mirror may take to answer (connect and send its headers), and
 * to ask to be retried (`Retry-After`), before the registry is asked
 * instead: 5 s each. A mirror is a shortcut; one that hangs must not cost
 * more than asking the registry.
 */
export const MIRROR_ANSWER_MS = 5_000;

/**
 * The options of a mirror's target: the caller's limits and logs, but its
 * own connection settings (its `registries` entry) and credentials, one
 * attempt and a shorter wait for an answer (the registry is the fallback:
 * see {@link MIRROR_ANSWER_MS}), and no mirrors of its own.
 */
function mirrorOptions(options: RegistryTargetOptions): RegistryTargetOptions {
  const {
    plainHttp: _plainHttp,
    caFile: _caFile,
    credential: _credential,
    optionNames: _optionNames,
    image: _image,
    ...rest
  } = options;
  return {
    ...rest,
    mirrors: [],
    maxAttempts: 1,
    connectTimeoutMs: Math.min(timeoutOf(options, "connectTimeoutMs"), MIRROR_ANSWER_MS),
    retryBudgetMs: Math.min(timeoutOf(options, "retryBudgetMs"), MIRROR_ANSWER_MS),
  };
}

/**
 * Open the repository of an image on its registry.
 *
 * @param name image name
 * @param options client options
 * @returns the registry target
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName, openRepository } from "@ocipkg/cli";
 * const t = openRepository(ImageName.parse("localhost:5000/a/b:1"), { credential: null });
 * assert.equal(t.repository, "a/b");
 * await t.close();
 * ```
 */
export function openRepository(
  name: ImageName,
  options: RegistryTargetOptions = {},
  client?: RegistryClient,
): RegistryTarget {
  return new RegistryTarget(client ?? name.registry, name.name, {
    image: name.toString(),
    ...options,
  });
}

/**
 * The repositories of many images at once (`lock --check` of a lock of
 * 10,000), opened over one client per registry: its credentials are looked
 * up once, its tokens kept per scope, its connections reused. Each
 * repository opened is closed as usual (its client stays open); the clients
 * close with {@link RegistryClients.close}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName } from "@ocipkg/cli";
 * import { RegistryClients } from "./target.ts";
 * const clients = new RegistryClients({ credential: null });
 * const a = clients.open(ImageName.parse("localhost:5000/a:1"));
 * const b = clients.open(ImageName.parse("localhost:5000/b:1"));
 * assert.equal(a.client, b.client);
 * assert.notEqual(clients.open(ImageName.parse("localhost:5001/a:1")).client, a.client);
 * await a.close();
 * await b.close();
 * clients.close();
 * ```
 */
export class RegistryClients {
  #options: RegistryTargetOptions;
  #clients = new Map<string, RegistryClient>();

  /**
   * Create the clients (each made when its registry is first opened).
   * @param options client and transfer options
   */
  constructor(options: RegistryTargetOptions = {}) {
    this.#options = options;
  }

  /**
   * Open the repository of an image over its registry's shared client, as
   * {@link openRepository} does.
   *
   * @param name image name
   * @returns the registry target
   */
  open(name: ImageName): RegistryTarget {
    let client = this.#clients.get(name.registry);
    if (client === undefined) {
      client = new RegistryClient(name.registry, this.#options);
      this.#clients.set(name.registry, client);
    }
    return openRepository(name, this.#options, client);
  }

  /** Close every client. */
  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}

/**
 * Open the repository of an image to change it (push, tag, delete): reading
 * from the registry alone, never from a mirror. What a tag names decides
 * what is changed, and a mirror's answer may be stale or, trusted to
 * resolve, still not the registry's; nothing is ever sent to a mirror.
 * Every command that writes to a registry opens it here.
 *
 * @param name image name
 * @param options client options (`mirrors` is ignored)
 * @returns the registry target, without mirrors
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ImageName } from "@ocipkg/cli";
 * import { openRepositoryToWrite } from "./target.ts";
 * const mirrors = [{ host: "mirror.internal", resolve: true }];
 * const t = openRepositoryToWrite(ImageName.parse("localhost:5000/a/b:1"), { credential: null, mirrors });
 * assert.equal(t.description, "localhost:5000/a/b");
 * await t.close();
 * ```
 */
export function openRepositoryToWrite(
  name: ImageName,
  options: RegistryTargetOptions = {},
): RegistryTarget {
  return openRepository(name, { ...options, mirrors: [] });
}
