/**
 * The mirrors of a registry, tried before it for pulls (see `config.ts`):
 * manifests by digest and blobs from every mirror, tags only from a mirror
 * trusted to resolve them. A mirror that fails is skipped and the next one
 * (at last the registry) asked; one that fails otherwise than by not having
 * the content (unreachable, refusing, serving bytes that do not match their
 * digest) is not asked again by the same target. What a mirror serves is
 * verified against its digest like anything else: a mirror can make a pull
 * fail, never change what it gets.
 *
 * @module
 */
import { NotFoundError, oneLine } from "../../util/errors.ts";
import type { Mirror } from "../config.ts";

/** What ocipkg asks of a mirror: the reading half of a registry target. */
export interface MirrorSource {
  /** `host[:port]/repository`, for messages. */
  readonly description: string;
  /** Resolve a tag or digest (verified). */
  resolve(reference: string): Promise<unknown>;
  /** Release it. */
  close(): Promise<void>;
  /** Give up (requests in flight stop); optional. */
  abort?(): Promise<void>;
}

/**
 * The mirrors of one repository, opened when first asked.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NotFoundError } from "@ocipkg/cli";
 * import { Mirrors } from "./mirrors.ts";
 * const asked: string[] = [];
 * const mirrors = new Mirrors(
 *   [{ host: "a.example", resolve: false }, { host: "b.example", resolve: true }],
 *   (host) => ({
 *     description: `${host}/x`,
 *     resolve(ref: string) {
 *       asked.push(`${host} ${ref}`);
 *       return host === "a.example" ? Promise.reject(new NotFoundError("absent")) : Promise.resolve(ref);
 *     },
 *     close: () => Promise.resolve(),
 *   }),
 * );
 * // by digest: every mirror may serve it, in order
 * assert.equal(await mirrors.first("pull", (m) => m.resolve("sha256:…")), "sha256:…");
 * // a tag: only a mirror trusted to resolve
 * assert.equal(await mirrors.first("resolve", (m) => m.resolve("1.0")), "1.0");
 * assert.deepEqual(asked, ["a.example sha256:…", "b.example sha256:…", "b.example 1.0"]);
 * await mirrors.close();
 * ```
 */
export class Mirrors<S extends MirrorSource> {
  #entries: { mirror: Mirror; source?: S; down?: boolean }[];
  #open: (host: string) => S;
  #log: ((line: string) => void) | undefined;

  /**
   * Create the Mirrors of a repository.
   * @param mirrors the mirrors, in order
   * @param open opens the repository on a mirror host
   * @param log told when a mirror is skipped, and why
   */
  constructor(mirrors: Mirror[], open: (host: string) => S, log?: (line: string) => void) {
    this.#entries = mirrors.map((mirror) => ({ mirror }));
    this.#open = open;
    this.#log = log;
  }

  /**
   * Ask the mirrors in order, as far as they may serve `need`: the first
   * answer, or undefined when none gave one (then ask the registry).
   *
   * @param need `pull` (content by digest) or `resolve` (a tag)
   * @param ask the request, of one mirror
   * @returns the first mirror's answer, or undefined
   */
  async first<T>(need: "pull" | "resolve", ask: (source: S) => Promise<T>): Promise<T | undefined> {
    for (const entry of this.#entries) {
      if (entry.down || (need === "resolve" && !entry.mirror.resolve)) continue;
      try {
        entry.source ??= this.#open(entry.mirror.host);
        return await ask(entry.source);
      } catch (e) {
        // not there: ask on; anything else: this mirror is not asked again
        if (!(e instanceof NotFoundError)) entry.down = true;
        this.#log?.(`mirror ${entry.mirror.host} skipped: ${oneLine(e)}`);
      }
    }
    return undefined;
  }

  /** Release the mirrors opened. */
  async close(): Promise<void> {
    for (const entry of this.#entries) await entry.source?.close().catch(() => {});
  }

  /** Give up: the mirrors opened stop their requests in flight, and close. */
  async abort(): Promise<void> {
    for (const entry of this.#entries) {
      await (entry.source?.abort ?? entry.source?.close)?.call(entry.source).catch(() => {});
    }
  }
}
