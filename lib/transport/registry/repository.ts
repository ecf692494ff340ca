/**
 * What the parts of a `RegistryTarget` share: the target's options
 * (and their defaults), and one repository of a registry as its manifests,
 * downloads, uploads and listings see it — its client, its names in
 * messages, its token scopes, the check of a tag or digest before it goes
 * into a URL, and the check of the `Docker-Content-Digest` a registry
 * answered.
 *
 * @module
 */
import { isDigest, parseDigest, verifyBytes } from "../../oci/digest.ts";
import { UsageError, VerificationError } from "../../util/errors.ts";
import { isTag } from "../../oci/reference.ts";
import { printable } from "../../util/text.ts";
import type { ClientOptions, RegistryClient } from "./client.ts";
import type { Mirror } from "../config.ts";

/** Default chunk for chunked uploads. */
export const DEFAULT_CHUNK = 8 * 1024 * 1024;
/** Most pages read when listing tags (default of `maxTagPages`). */
export const MAX_TAG_PAGES = 10_000;
/** Most tags listed (default of `maxTags`); listing more fails. */
export const MAX_TAGS = 1_000_000;
/** Options of `RegistryTarget`. */
export interface RegistryTargetOptions extends ClientOptions {
  /**
   * The image as the user wrote it (e.g. `ghcr.io/org/x:1.0`): errors about
   * its manifests name it, not only the digest they resolved to.
   */
  image?: string;
  /**
   * Chunk size for uploads of large blobs (default 8 MiB). Setting it uploads
   * large blobs in chunks instead of one streamed `PUT`.
   */
  chunkSize?: number;
  /** Attempts to resume an interrupted download (default 5), across all of a blob's parts. */
  resumeAttempts?: number;
  /**
   * Ranged requests in flight at once for one blob of at least
   * `rangeThreshold` bytes; 0 or 1 downloads every blob as one stream.
   * Default: {@link DEFAULT_RANGE_PARTS}, but 1 for a loopback registry (no
   * per-connection cap to get around, and parts cost CPU a local link lacks).
   */
  rangeParts?: number;
  /** Smallest blob fetched in parallel ranges (default {@link DEFAULT_RANGE_THRESHOLD}). */
  rangeThreshold?: number;
  /** Bytes per ranged request (default {@link DEFAULT_RANGE_SEGMENT}). */
  rangeSegmentSize?: number;
  /**
   * Hash large blobs (32 MiB or more) of downloads on a worker thread while
   * the next bytes arrive (default false). Measured on a 2-core VM, a 1 GiB
   * pull with the worker took as long or longer (quiet: 2.17–2.33 s against
   * 2.16–2.28 s; loaded: mixed), spent 0.3 s more CPU copying into the
   * worker's ring, and peaked at 107 MB instead of 74 MB.
   */
  hashOffThread?: boolean;
  /** Most pages of a tag list read (default {@link MAX_TAG_PAGES}). */
  maxTagPages?: number;
  /** Most tags listed (default {@link MAX_TAGS}); more is an error. */
  maxTags?: number;
  /**
   * Mirrors tried before the registry for pulls (see `config.ts`). Default:
   * the config file's `registries` entry for the registry; `[]` for none, as
   * every writer passes (a tag it reads must be the registry's own).
   */
  mirrors?: Mirror[];
}

/**
 * One repository of a registry, as the parts of a `RegistryTarget` share it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegistryClient } from "./client.ts";
 * import { Repository } from "./repository.ts";
 * const client = new RegistryClient("localhost:5000", { credential: null });
 * const repo = new Repository(client, "org/libfoo", { image: "localhost:5000/org/libfoo:1" });
 * assert.equal(repo.description, "localhost:5000/org/libfoo");
 * assert.equal(repo.scope(true), "repository:org/libfoo:pull,push");
 * assert.equal(repo.what("1"), "image 'localhost:5000/org/libfoo:1'");
 * assert.throws(() => repo.checkReference("../x"), /not a tag or a digest/);
 * client.close();
 * ```
 */
export class Repository {
  /** The HTTP client of the registry. */
  readonly client: RegistryClient;
  /** Repository path, e.g. `org/libfoo`. */
  readonly repository: string;
  /** `host[:port]/path`, for messages. */
  readonly description: string;
  /** The target's options. */
  readonly options: RegistryTargetOptions;

  /**
   * Create a Repository (its name already checked).
   * @param client the registry's client
   * @param repository repository path
   * @param options the target's options
   */
  constructor(client: RegistryClient, repository: string, options: RegistryTargetOptions) {
    this.client = client;
    this.repository = repository;
    this.description = `${client.registry}/${repository}`;
    this.options = options;
  }

  /**
   * The token scope of a request.
   * @param push whether it writes
   * @returns `repository:<path>:pull` or `…:pull,push`
   */
  scope(push = false): string {
    return `repository:${this.repository}:${push ? "pull,push" : "pull"}`;
  }

  /**
   * Name an image in messages: as the user wrote it, when a digest they never
   * wrote stands for it.
   * @param ref a tag or digest of the repository
   * @returns e.g. `image 'host/x:1'`
   */
  what(ref: string): string {
    const named = `${this.description}${isDigest(ref) ? "@" : ":"}${ref}`;
    const image = this.options.image;
    // a digest the user never wrote: name the image as they wrote it
    if (image && isDigest(ref) && !image.endsWith(`@${ref}`)) return `image '${image}' (${ref})`;
    return `image '${named}'`;
  }

  /**
   * A tag or digest, checked before it goes into a URL path.
   * @param reference the tag or digest
   * @throws {UsageError} when it is neither
   */
  checkReference(reference: string): void {
    if (!isTag(reference) && !isDigest(reference)) {
      throw new UsageError(
        `invalid reference '${
          printable(reference.slice(0, 300))
        }' for ${this.description}: not a tag or a digest`,
      );
    }
  }

  /**
   * Check the `Docker-Content-Digest` a registry answered against the digest
   * of the content. One of another algorithm is checked on `bytes` when given
   * (manifests), and otherwise skipped; one of an algorithm ocipkg does not
   * know is ignored.
   *
   * @param res the answer
   * @param digest the digest of the content
   * @param what names the content in errors
   * @param bytes the content, when at hand
   * @throws {VerificationError} naming `what`, both digests and the registry
   */
  async checkAnswered(
    res: Response,
    digest: string,
    what: string,
    bytes?: Uint8Array,
  ): Promise<void> {
    const answered = res.headers.get("docker-content-digest")?.trim();
    if (!answered || answered === digest || !/^sha(256|512):/.test(answered)) return;
    const label = `${what} (Docker-Content-Digest from ${this.client.registry})`;
    if (isDigest(answered)) {
      if (bytes) {
        await verifyBytes(bytes, { digest: answered }, label);
        return;
      }
      if (parseDigest(answered).algorithm !== parseDigest(digest).algorithm) return;
    }
    throw new VerificationError(
      `${label}: digest mismatch, expected ${printable(answered.slice(0, 200))} but got ${digest}`,
    );
  }
}
