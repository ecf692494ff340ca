/**
 * When `serve` writes a repository's `index.json` from its private index
 * (`repo_index.ts`): a write marks the repository; it is exported once no
 * write has come for {@link EXPORT_DEFAULTS}`.idleMs` (2 s), or at the
 * latest `maxMs` (30 s) after its first write not exported, or at once after
 * `pending` (4,096) writes; and every marked repository is exported when
 * `serve` stops ({@link ExportSchedule.close}). An export runs beside the
 * requests (one at a time per repository); a write made meanwhile marks the
 * repository again. Repositories are told apart by name (two objects of one
 * repository share its mark; the last one marked exports it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ExportSchedule } from "./export_schedule.ts";
 * let exported = 0;
 * const repo = { name: "app", export: () => Promise.resolve(void exported++) };
 * const schedule = new ExportSchedule({ exportIdleMs: 60_000 });
 * schedule.wrote(repo);
 * schedule.wrote(repo);
 * assert.equal(exported, 0); // not idle yet
 * await schedule.close(); // a stop exports what trails
 * assert.equal(exported, 1);
 * ```
 *
 * @module
 */
import { oneLine } from "../util/errors.ts";

/** When `index.json` files are written, and where their failures go. */
export interface StorageOptions {
  /** Export a repository this long after its last write (ms, default 2,000). */
  exportIdleMs?: number;
  /** Export a repository written to without pause this long after its first write (ms, default 30,000). */
  exportMaxMs?: number;
  /** Export a repository at once after this many writes (default 4,096). */
  exportPending?: number;
  /** Receives one line per export that failed (it is tried again after the next write). */
  onError?: (line: string) => void;
  /**
   * Write nothing (`--read-only`): no export, and an `index.json` another tool wrote is not
   * merged into the private index (which is served as it is).
   */
  readOnly?: boolean;
  /** Most repositories kept open (default `OPEN_REPOSITORIES` of `storage.ts`, 256). */
  maxOpenRepositories?: number;
}

/** The defaults of {@link StorageOptions}. */
export const EXPORT_DEFAULTS = { idleMs: 2000, maxMs: 30_000, pending: 4096 } as const;

/** What can be exported. */
export interface Exportable {
  /** Its name (for messages). */
  readonly name: string;
  /** Write its `index.json`. */
  export(): Promise<unknown>;
}

interface Mark {
  repo: Exportable;
  first: number;
  writes: number;
  timer?: ReturnType<typeof setTimeout>;
}

/** The repositories whose `index.json` trails their writes, and their timers. */
export class ExportSchedule {
  #marked = new Map<string, Mark>();
  #running = new Map<string, Promise<void>>();
  #idle: number;
  #max: number;
  #pending: number;
  #onError: (line: string) => void;
  #closed = false;
  #readOnly: boolean;

  /** @param options the delays and where failures go */
  constructor(options: StorageOptions = {}) {
    this.#idle = options.exportIdleMs ?? EXPORT_DEFAULTS.idleMs;
    this.#max = options.exportMaxMs ?? EXPORT_DEFAULTS.maxMs;
    this.#pending = options.exportPending ?? EXPORT_DEFAULTS.pending;
    this.#onError = options.onError ?? (() => {});
    this.#readOnly = options.readOnly ?? false;
  }

  /**
   * A repository was written to.
   * @param repo the repository
   */
  wrote(repo: Exportable): void {
    if (this.#readOnly) return;
    const now = Date.now();
    let mark = this.#marked.get(repo.name);
    if (!mark) this.#marked.set(repo.name, mark = { repo, first: now, writes: 0 });
    mark.repo = repo;
    mark.writes++;
    if (this.#closed) return; // the stop's flush exports it
    if (mark.timer !== undefined) clearTimeout(mark.timer);
    const delay = mark.writes >= this.#pending
      ? 0
      : Math.min(this.#idle, Math.max(0, mark.first + this.#max - now));
    const timer = setTimeout(() => this.#run(repo.name), delay);
    Deno.unrefTimer(timer);
    mark.timer = timer;
  }

  /** Export a marked repository (after its export in progress, if any). */
  #run(name: string): Promise<void> {
    const mark = this.#marked.get(name);
    if (!mark) return this.#running.get(name) ?? Promise.resolve();
    if (mark.timer !== undefined) clearTimeout(mark.timer);
    this.#marked.delete(name);
    const before = this.#running.get(name) ?? Promise.resolve();
    const p = before.then(async () => void await mark.repo.export()).catch((e) => {
      // one line, escaped: the failure may quote what a hostile index file holds
      this.#onError(`export of '${name}' failed: ${oneLine(e)}`);
    });
    this.#running.set(name, p);
    p.finally(() => {
      if (this.#running.get(name) === p) this.#running.delete(name);
    });
    return p;
  }

  /** Export every marked repository now. */
  async flush(): Promise<void> {
    await Promise.all([...this.#marked.keys()].map((r) => this.#run(r)));
    await Promise.all([...this.#running.values()]);
  }

  /** No more timers; export every marked repository. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }
}
