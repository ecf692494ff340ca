/**
 * Containment on disk for `serve`: every directory from the root down to
 * what a request reads or writes is checked with `lstat` to be a real
 * directory ({@link containedDir}), and files to be regular files; a symlink
 * (or anything else) where one belongs is refused, never followed, with one
 * line naming the path under the root ({@link refused}, 500 `UNKNOWN`).
 *
 * @module
 */
import { join } from "../util/path.ts";
import { ServeError } from "./errors.ts";

/**
 * `lstat`, or undefined when nothing is there (or a component on the way is not a directory).
 * The call is synchronous: a few microseconds from the inode cache, where an asynchronous one
 * costs a hop to a worker thread and back (ten times as long on a loaded machine); a request
 * makes a dozen or so.
 * @param path a path
 * @returns what is there
 */
export function lstatOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return Promise.resolve(Deno.lstatSync(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      return Promise.resolve(undefined);
    }
    return Promise.reject(e);
  }
}

/** What a file that is not what it should be is, for messages. */
function kind(st: Deno.FileInfo): string {
  if (st.isSymlink) return "a symlink";
  if (st.isDirectory) return "a directory";
  if (st.isFile) return "a regular file";
  if (st.isFifo) return "a fifo";
  if (st.isSocket) return "a socket";
  if (st.isCharDevice) return "a character device";
  if (st.isBlockDevice) return "a block device";
  return "not a regular file";
}

/**
 * The refusal of something under the root that is not what it must be (500 `UNKNOWN`).
 * @param where its path under the root
 * @param st what is there
 * @param want what must be there ("a directory", "a regular file")
 * @returns the error
 */
export function refused(where: string, st: Deno.FileInfo, want: string): ServeError {
  return new ServeError(
    "UNKNOWN",
    `refused: '${where}' under the registry's root is ${kind(st)}, not ${want}`,
  );
}

/**
 * A directory under the root, checked on disk: the root and every component
 * on the way must be real directories (`lstat`, so a symlink is refused,
 * never followed).
 *
 * @param root the root (resolved with `realPath` at start)
 * @param parts the components under it
 * @param create make the missing ones
 * @param made receives the components of each directory made (for cleaning up)
 * @returns the directory's path, or undefined when one is missing (and not `create`)
 * @throws {ServeError} `UNKNOWN` (500) naming the component that is a symlink or not a directory
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { containedDir } from "./contained.ts";
 * const root = await Deno.realPath(await Deno.makeTempDir());
 * assert.equal(await containedDir(root, ["org", "app"], true), `${root}/org/app`);
 * assert.equal(await containedDir(root, ["org", "other"], false), undefined);
 * // a symlink where a directory belongs is refused, not followed
 * const elsewhere = await Deno.makeTempDir();
 * await Deno.symlink(elsewhere, `${root}/link`);
 * await assert.rejects(containedDir(root, ["link", "app"], true), {
 *   code: "UNKNOWN",
 *   message: "refused: 'link' under the registry's root is a symlink, not a directory",
 * });
 * assert.deepEqual([...Deno.readDirSync(elsewhere)], []); // nothing made there
 * await Deno.remove(root, { recursive: true });
 * await Deno.remove(elsewhere);
 * ```
 */
export async function containedDir(
  root: string,
  parts: readonly string[],
  create: boolean,
  made?: string[][],
): Promise<string | undefined> {
  const top = await lstatOrUndefined(root);
  if (!top) {
    throw new ServeError("UNKNOWN", "refused: the registry's root directory is gone");
  }
  if (!top.isDirectory) {
    throw new ServeError("UNKNOWN", `refused: the registry's root is now ${kind(top)}`);
  }
  let path = root;
  for (let i = 0; i < parts.length; i++) {
    path = join(path, parts[i]!);
    let st = await lstatOrUndefined(path);
    if (!st && create) {
      try {
        await Deno.mkdir(path);
        made?.push(parts.slice(0, i + 1));
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
      st = await lstatOrUndefined(path);
    }
    if (!st) return undefined;
    if (!st.isDirectory) throw refused(parts.slice(0, i + 1).join("/"), st, "a directory");
  }
  return path;
}
