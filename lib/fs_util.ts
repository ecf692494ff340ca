/**
 * File helpers: verified streaming writes to a temp file, atomic replace.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { type Expected, type Measured, Verifier } from "./digest.ts";

/**
 * A unique temporary path next to `path` (same file system, so rename is atomic).
 *
 * @param path the final path
 * @returns e.g. `/dir/.name.tmp-<uuid>`
 */
export function tempPathFor(path: string): string {
  const base = path.slice(dirname(path).length + 1);
  return trackTemp(join(dirname(path), `.${base}.tmp-${crypto.randomUUID().slice(0, 8)}`));
}

const liveTemps = new Set<string>();

/**
 * Remember a temp file or directory, so that {@link removeTempsSync} can
 * delete it when the process is interrupted. Call {@link releaseTemp} once it
 * is renamed or removed.
 *
 * @param path a temp path
 * @returns the same path
 */
export function trackTemp(path: string): string {
  liveTemps.add(path);
  return path;
}

/**
 * Forget a temp path (it was renamed into place or removed).
 *
 * @param path a path given to {@link trackTemp}
 */
export function releaseTemp(path: string): void {
  liveTemps.delete(path);
}

/**
 * Delete every temp path still in use — for a signal handler that is about to
 * exit (Ctrl-C), so an interrupted command leaves nothing behind.
 *
 * @returns how many were removed
 */
export function removeTempsSync(): number {
  let n = 0;
  for (const p of liveTemps) {
    try {
      Deno.removeSync(p, { recursive: true });
      n++;
    } catch { /* already gone */ }
  }
  liveTemps.clear();
  return n;
}

/**
 * Write all of `data` to an open file (handles short writes).
 *
 * @param file open file
 * @param data bytes
 */
export async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.byteLength) off += await file.write(data.subarray(off));
}

/**
 * Stream `content` into `file` through the verifier, then flush it to disk.
 * The caller owns `file` (open and close).
 *
 * @param content the bytes
 * @param file open, writable file
 * @param expected expected digest/size (either may be absent)
 * @param what names the content in errors
 * @returns the measured digest and size
 * @throws {VerificationError} when size or digest differ
 */
export async function writeVerified(
  content: ReadableStream<Uint8Array>,
  file: Deno.FsFile,
  expected: Expected,
  what: string,
): Promise<Measured> {
  const v = new Verifier(expected, what);
  for await (const chunk of content) {
    v.update(chunk);
    await writeAll(file, chunk);
  }
  const measured = v.finish();
  await file.syncData();
  return measured;
}

/**
 * Write a small file atomically: temp file, fsync, rename.
 *
 * @param path destination
 * @param data content
 * @param mode file mode (e.g. 0o600 for secrets)
 */
export async function atomicWriteFile(path: string, data: Uint8Array, mode = 0o644): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    const f = await Deno.open(tmp, { write: true, createNew: true, mode });
    try {
      await writeAll(f, data);
      await f.syncData();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  } finally {
    releaseTemp(tmp);
  }
}

/**
 * Whether a path exists (without following a final symlink).
 *
 * @param path any path
 * @returns true when lstat succeeds
 */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return false;
    throw e;
  }
}

/** A simple mutex: run tasks one at a time, in order. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  /**
   * @param fn the critical section
   * @returns its result
   */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#tail.then(fn, fn);
    this.#tail = p.catch(() => {});
    return p;
  }
}
