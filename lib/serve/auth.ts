/**
 * Basic authentication from an htpasswd file of bcrypt entries (as
 * `htpasswd -B` writes them), checked with `bcryptjs` (vendored in lib/vendor/).
 *
 * @module
 */
import bcrypt from "../vendor/bcryptjs/index.js";
import { digestOf } from "../oci/digest.ts";
import { OcipkgError } from "../util/errors.ts";

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
   * Read an htpasswd file.
   *
   * @param path the file
   * @returns the users
   */
  static async read(path: string): Promise<Htpasswd> {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      throw new OcipkgError(`htpasswd file '${path}': ${(e as Error).message}`, { cause: e });
    }
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
