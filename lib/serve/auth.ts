/**
 * Basic authentication from an htpasswd file of bcrypt entries (as
 * `htpasswd -B` writes them), checked with `bcryptjs` (vendored in lib/vendor/),
 * and the one reader of `serve`'s option files ({@link readOptionFile}: the
 * htpasswd file, the TLS certificate and key). An option file must be a
 * regular file (a symlink to one is followed) of at most
 * {@link MAX_OPTION_FILE} bytes (1 MiB); a fifo, device, socket or directory
 * is refused without being opened (nothing waits on it, nothing reads it
 * without end), a larger file before it is read — one line naming the file
 * and its flag, a usage error (exit 2), before anything listens.
 *
 * @module
 */
import bcrypt from "../vendor/bcryptjs/index.js";
import { digestOf } from "../oci/digest.ts";
import { OcipkgError, systemReason, UsageError } from "../util/errors.ts";

/** Most bytes of an option file of `serve` (htpasswd, TLS certificate, TLS key): 1 MiB. */
export const MAX_OPTION_FILE = 1024 * 1024;

/** What a file that is not a regular file is, for messages. */
function kind(st: Deno.FileInfo): string {
  if (st.isDirectory) return "a directory";
  if (st.isFifo) return "a fifo";
  if (st.isSocket) return "a socket";
  if (st.isCharDevice) return "a character device";
  if (st.isBlockDevice) return "a block device";
  return "not a regular file";
}

/**
 * Read an option file of `serve` (the htpasswd file, the TLS certificate or
 * key) as UTF-8 text: a regular file of at most {@link MAX_OPTION_FILE} bytes.
 * Anything else is refused before it is opened or read whole, so a fifo does
 * not hang the start and `/dev/zero` is not read into memory.
 *
 * @param path the file (a symlink to a regular file is followed)
 * @param what what it is, e.g. `htpasswd file`
 * @param flag the flag that named it, e.g. `--htpasswd`
 * @returns its text
 * @throws {UsageError} one line naming `what`, the path and the flag
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readOptionFile } from "./auth.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/cert.pem`, "-----BEGIN CERTIFICATE-----");
 * assert.equal(await readOptionFile(`${dir}/cert.pem`, "TLS certificate", "--tls-cert"), "-----BEGIN CERTIFICATE-----");
 * await assert.rejects(readOptionFile("/dev/zero", "TLS key", "--tls-key"), {
 *   name: "UsageError",
 *   message: "TLS key '/dev/zero' (--tls-key) is a character device, not a regular file",
 * });
 * await assert.rejects(readOptionFile(dir, "htpasswd file", "--htpasswd"), /is a directory/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readOptionFile(path: string, what: string, flag: string): Promise<string> {
  const where = `${what} '${path}' (${flag})`;
  const check = (st: Deno.FileInfo) => {
    if (!st.isFile) throw new UsageError(`${where} is ${kind(st)}, not a regular file`);
    if (st.size > MAX_OPTION_FILE) {
      throw new UsageError(`${where} is ${st.size} bytes, over the ${MAX_OPTION_FILE}-byte cap`);
    }
  };
  let file: Deno.FsFile | undefined;
  try {
    check(await Deno.stat(path)); // before opening: a fifo's open would wait for a writer
    file = await Deno.open(path);
    check(await file.stat()); // what was opened, in case it was swapped meanwhile
    const buf = new Uint8Array(MAX_OPTION_FILE + 1);
    let n = 0;
    while (n < buf.byteLength) {
      const r = await file.read(buf.subarray(n));
      if (r === null) break;
      n += r;
    }
    if (n > MAX_OPTION_FILE) {
      throw new UsageError(`${where} is over the ${MAX_OPTION_FILE}-byte cap`);
    }
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(0, n));
    } catch {
      throw new UsageError(`${where} is not UTF-8 text`);
    }
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if (e instanceof Deno.errors.NotFound) throw new UsageError(`${where} does not exist`);
    const reason = systemReason(e) ?? (e instanceof Error ? e.message : String(e));
    throw new UsageError(`${where} cannot be read: ${reason.split("\n")[0]}`, { cause: e });
  } finally {
    file?.close();
  }
}

/**
 * Users and their bcrypt hashes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import bcrypt from "../vendor/bcryptjs/index.js";
 * import { Htpasswd } from "./auth.ts";
 * const users = Htpasswd.parse(`alice:${bcrypt.hashSync("secret", 4)}\n`, "htpasswd");
 * assert.equal(await users.check(`Basic ${btoa("alice:secret")}`), "alice");
 * assert.equal(await users.check(`Basic ${btoa("alice:wrong")}`), undefined);
 * assert.equal(await users.check(null), undefined);
 * ```
 */
export class Htpasswd {
  #users: Map<string, string>;
  // credentials already checked (keyed by their sha256): bcrypt is slow on purpose
  #good = new Set<string>();

  private constructor(users: Map<string, string>) {
    this.#users = users;
  }

  /**
   * Parse an htpasswd file's text.
   *
   * @param text the content
   * @param where names the file in errors
   * @returns the users
   * @throws {OcipkgError} naming the line of an entry that is not `user:bcrypt-hash`
   */
  static parse(text: string, where: string): Htpasswd {
    const users = new Map<string, string>();
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (!line || line.startsWith("#")) return;
      const colon = line.indexOf(":");
      const user = line.slice(0, colon);
      const hash = line.slice(colon + 1);
      if (colon <= 0) throw new OcipkgError(`${where} line ${i + 1}: expected 'user:hash'`);
      if (!/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
        throw new OcipkgError(
          `${where} line ${
            i + 1
          }: user '${user}' has no bcrypt hash (make entries with 'htpasswd -B')`,
        );
      }
      users.set(user, hash);
    });
    if (users.size === 0) throw new OcipkgError(`${where} has no users`);
    return new Htpasswd(users);
  }

  /**
   * Read an htpasswd file ({@link readOptionFile}: a regular file of at most 1 MiB).
   *
   * @param path the file
   * @returns the users
   * @throws {UsageError} when it is not a regular file, too large or unreadable
   */
  static async read(path: string): Promise<Htpasswd> {
    const text = await readOptionFile(path, "htpasswd file", "--htpasswd");
    return Htpasswd.parse(text, `htpasswd file '${path}'`);
  }

  /**
   * Check an `Authorization` header.
   *
   * @param header the header value (or null)
   * @returns the user name, or undefined when the credentials are missing or wrong
   */
  async check(header: string | null): Promise<string | undefined> {
    if (!header || !/^basic /i.test(header)) return undefined;
    let decoded: string;
    try {
      const bytes = Uint8Array.from(atob(header.slice(6).trim()), (c) => c.charCodeAt(0));
      decoded = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      return undefined;
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) return undefined;
    const user = decoded.slice(0, colon);
    const hash = this.#users.get(user);
    if (!hash) return undefined;
    const key = digestOf(new TextEncoder().encode(`${hash}\0${decoded}`));
    if (this.#good.has(key)) return user;
    if (!(await bcrypt.compare(decoded.slice(colon + 1), hash))) return undefined;
    if (this.#good.size > 1000) this.#good.clear();
    this.#good.add(key);
    return user;
  }
}
