/**
 * The blob endpoints of `serve`: `GET`/`HEAD` (whole or one `Range`) and
 * `DELETE` of `/v2/<name>/blobs/<digest>`, and uploads — `POST` (monolithic
 * with `?digest=`, or a session; `?mount=&from=` links a blob from another
 * repository), then `PATCH` chunks, `PUT` the last one with the digest,
 * `GET` the progress, `DELETE` to cancel. Sessions and their verification are
 * `uploads.ts`; a verified upload is renamed into the repository here.
 *
 * An upload the registry's disk fails (full, over quota, refusing) is
 * answered with one line naming the system's reason and no path of the
 * registry's: 507 `UNKNOWN` for no space (`ENOSPC`, `EDQUOT`), 500 `UNKNOWN`
 * otherwise; its temp file is removed, so nothing of it is kept.
 *
 * @module
 */
import { systemReason } from "../util/errors.ts";
import { releaseTemp } from "../util/temp.ts";
import { openFileRange, openFileStream } from "../util/files.ts";
import { ServeError } from "./errors.ts";
import { allow, checkDigest, type Ctx, empty, knownRepository, type Served } from "./http.ts";
import { checkName, type Storage } from "./storage.ts";
import type { Upload, Uploads } from "./uploads.ts";

/** A system failure while storing an upload, as its answer (anything else unchanged). */
function diskFailure(e: unknown, name: string): unknown {
  if (e instanceof ServeError) return e;
  const reason = systemReason(e);
  if (reason === undefined) return e;
  const full = /\((ENOSPC|EDQUOT)\)$/.test(reason);
  return new ServeError(
    "UNKNOWN",
    `the registry could not store the blob for '${name}': ${reason}; nothing of it was kept`,
    { status: full ? 507 : 500 },
  );
}

/**
 * The blob and upload endpoints of one served root.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestOf } from "@ocipkg/cli/oci";
 * import { BlobEndpoints } from "./blobs.ts";
 * import { Storage } from "./storage.ts";
 * import { Uploads } from "./uploads.ts";
 * const root = await Deno.makeTempDir();
 * const storage = await Storage.open(root);
 * const uploads = new Uploads(storage.uploads);
 * const blobs = new BlobEndpoints({ storage, uploads, options: {} });
 * const data = new TextEncoder().encode("hello");
 * const digest = digestOf(data);
 * // a monolithic upload: POST with the digest and the bytes
 * const url = new URL(`http://x/v2/app/blobs/uploads/?digest=${digest}`);
 * const post = new Request(url, { method: "POST", body: data });
 * assert.equal((await blobs.startUpload(post, url, "app", { bytesIn: 0 })).status, 201);
 * const range = new Request(`http://x/v2/app/blobs/${digest}`, { headers: { range: "bytes=1-3" } });
 * const got = await blobs.blob(range, "app", digest);
 * assert.equal(got.status, 206);
 * assert.equal(await got.text(), "ell");
 * await uploads.close();
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export class BlobEndpoints {
  #storage: Storage;
  #uploads: Uploads;
  #options: Served["options"];

  /** @param served the root, its upload sessions and the modes */
  constructor(served: Served) {
    this.#storage = served.storage;
    this.#uploads = served.uploads;
    this.#options = served.options;
  }

  // ---- blobs

  /**
   * `GET`, `HEAD` or `DELETE` a blob.
   * @param req the request
   * @param name the repository
   * @param digest the blob's digest (checked)
   * @returns the response
   */
  async blob(req: Request, name: string, digest: string): Promise<Response> {
    if (req.method === "DELETE") {
      if (!this.#options.delete) {
        throw new ServeError("UNSUPPORTED", "deleting is not enabled on this registry");
      }
      const repo = await knownRepository(this.#storage, name);
      if ((await repo.blobSize(digest)) === undefined) {
        throw new ServeError("BLOB_UNKNOWN", `blob ${digest} is not in '${name}'`);
      }
      await Deno.remove(repo.blobPath(digest));
      repo.forget(digest);
      return empty(202);
    }
    allow(req, ["GET", "HEAD", "DELETE"]);
    const repo = await knownRepository(this.#storage, name);
    const size = await repo.blobSize(digest);
    if (size === undefined) {
      throw new ServeError("BLOB_UNKNOWN", `blob ${digest} is not in '${name}'`);
    }
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      "docker-content-digest": digest,
      "accept-ranges": "bytes",
      etag: `"${digest}"`,
    };
    const range = req.headers.get("range");
    let start = 0;
    let end = size - 1;
    let partial = false;
    if (range !== null) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (m && (m[1] || m[2])) {
        if (m[1]) {
          start = Number(m[1]);
          end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
        } else {
          start = Math.max(0, size - Number(m[2]));
        }
        if (start > end || start >= size || (m[1] && m[2] && Number(m[2]) < start)) {
          throw new ServeError("RANGE_INVALID", `range '${range}' is outside the blob`, {
            headers: { "content-range": `bytes */${size}` },
          });
        }
        partial = true;
      } else if (!/,/.test(range)) {
        throw new ServeError("RANGE_INVALID", `malformed range '${range.slice(0, 100)}'`, {
          headers: { "content-range": `bytes */${size}` },
        });
      } // several ranges: the whole blob (allowed)
    }
    const length = end - start + 1;
    headers["content-length"] = String(Math.max(length, 0));
    if (partial) headers["content-range"] = `bytes ${start}-${end}/${size}`;
    const status = partial ? 206 : 200;
    if (req.method === "HEAD") return new Response(null, { status, headers });
    if (!partial) {
      const { stream, found } = await openFileStream(repo.blobPath(digest), size).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        throw new ServeError("BLOB_UNKNOWN", `blob ${digest} is not in '${name}'`);
      });
      if (found !== size) {
        await stream.cancel();
        throw new ServeError("BLOB_UNKNOWN", `blob ${digest} changed while it was read`);
      }
      return new Response(stream, { status, headers });
    }
    const stream = await openFileRange(
      repo.blobPath(digest),
      start,
      length,
      () => new Error("file ended early"),
    );
    return new Response(stream, { status, headers });
  }

  // ---- uploads

  #uploadHeaders(name: string, u: Upload): Record<string, string> {
    return {
      location: `/v2/${name}/blobs/uploads/${u.id}`,
      range: `0-${Math.max(0, u.size - 1)}`,
      "docker-upload-uuid": u.id,
    };
  }

  async #commit(name: string, digest: string, tmp: { path: string; size: number }) {
    try {
      const repo = await this.#storage.repository(name, true);
      if (!repo) throw new Error("unreachable");
      await repo.blobDir(digest);
      if ((await repo.blobSize(digest)) === tmp.size) {
        await this.#uploads.release(tmp.path); // the same bytes are there already
      } else {
        await Deno.rename(tmp.path, repo.blobPath(digest));
        releaseTemp(tmp.path);
      }
    } catch (e) {
      await this.#uploads.release(tmp.path);
      throw e;
    }
    return empty(201, {
      location: `/v2/${name}/blobs/${digest}`,
      "docker-content-digest": digest,
    });
  }

  #contentLength(req: Request): number | undefined {
    const v = req.headers.get("content-length");
    return v !== null && /^\d+$/.test(v) ? Number(v) : undefined;
  }

  /**
   * `POST /v2/<name>/blobs/uploads/`: mount, upload monolithically or open a session.
   * @param req the request
   * @param url its URL
   * @param name the repository
   * @param ctx counts the bytes received
   * @returns the response
   */
  async startUpload(req: Request, url: URL, name: string, ctx: Ctx): Promise<Response> {
    try {
      return await this.#startUpload(req, url, name, ctx);
    } catch (e) {
      throw diskFailure(e, name);
    }
  }

  async #startUpload(req: Request, url: URL, name: string, ctx: Ctx): Promise<Response> {
    checkName(name);
    const mount = url.searchParams.get("mount");
    const from = url.searchParams.get("from");
    if (mount !== null && from !== null) {
      const digest = checkDigest(mount);
      checkName(from);
      const mounted = await this.#mount(name, from, digest);
      if (mounted) {
        await req.body?.cancel().catch(() => {});
        return mounted;
      }
    }
    const digestParam = url.searchParams.get("digest");
    const digest = digestParam === null ? undefined : checkDigest(digestParam);
    const u = await this.#uploads.start(name);
    if (digest === undefined) {
      await req.body?.cancel().catch(() => {});
      return empty(202, {
        ...this.#uploadHeaders(name, u),
        "oci-chunk-min-length": String(this.#options.chunkMinLength ?? 0),
      });
    }
    try {
      await this.#append(u, req, ctx);
    } catch (e) {
      await this.#uploads.discard(u);
      throw e;
    }
    return await this.#commit(name, digest, await this.#uploads.finish(u, digest));
  }

  async #mount(name: string, from: string, digest: string): Promise<Response | undefined> {
    const src = await this.#storage.repository(from);
    const size = await src?.blobSize(digest);
    if (!src || size === undefined) return undefined;
    const dst = await this.#storage.repository(name, true);
    if (!dst) return undefined;
    if ((await dst.blobSize(digest)) !== size) {
      await dst.blobDir(digest);
      const tmp = await this.#uploads.tempPath("mount");
      try {
        await Deno.link(src.blobPath(digest), tmp);
        await Deno.rename(tmp, dst.blobPath(digest));
      } catch {
        await this.#uploads.release(tmp);
        return undefined; // not linkable: the client uploads it
      }
    }
    return empty(201, { location: `/v2/${name}/blobs/${digest}`, "docker-content-digest": digest });
  }

  #checkContentRange(req: Request, name: string, u: Upload): void {
    const cr = req.headers.get("content-range");
    if (cr === null) return;
    const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(cr.trim());
    const length = this.#contentLength(req);
    if (
      !m || Number(m[1]) !== u.size || Number(m[2]) < Number(m[1]) ||
      (length !== undefined && Number(m[2]) - Number(m[1]) + 1 !== length)
    ) {
      req.body?.cancel().catch(() => {});
      throw new ServeError(
        "RANGE_INVALID",
        `Content-Range '${cr.slice(0, 100)}' does not continue the upload at ${u.size}`,
        { headers: this.#uploadHeaders(name, u) },
      );
    }
  }

  /**
   * `GET`, `PATCH`, `PUT` or `DELETE` an upload session.
   * @param req the request
   * @param url its URL
   * @param name the repository
   * @param id the session
   * @param ctx counts the bytes received
   * @returns the response
   */
  async upload(req: Request, url: URL, name: string, id: string, ctx: Ctx): Promise<Response> {
    try {
      return await this.#upload(req, url, name, id, ctx);
    } catch (e) {
      throw diskFailure(e, name);
    }
  }

  /** Append a request body to a session, counting what arrived (all of it, even when it fails). */
  async #append(u: Upload, req: Request, ctx: Ctx): Promise<void> {
    const before = u.size;
    try {
      await this.#uploads.append(u, req.body, this.#contentLength(req));
    } finally {
      ctx.bytesIn += u.size - before;
    }
  }

  async #upload(req: Request, url: URL, name: string, id: string, ctx: Ctx): Promise<Response> {
    checkName(name);
    const u = this.#uploads.get(id, name);
    switch (req.method) {
      case "GET":
        return empty(204, this.#uploadHeaders(name, u));
      case "DELETE":
        await this.#uploads.discard(u);
        return empty(204);
      case "PATCH": {
        this.#checkContentRange(req, name, u);
        await this.#append(u, req, ctx);
        return empty(202, this.#uploadHeaders(name, u));
      }
      case "PUT": {
        const param = url.searchParams.get("digest");
        if (param === null) {
          await req.body?.cancel().catch(() => {});
          throw new ServeError("DIGEST_INVALID", "the digest query parameter is missing");
        }
        const digest = checkDigest(param);
        this.#checkContentRange(req, name, u);
        await this.#append(u, req, ctx);
        return await this.#commit(name, digest, await this.#uploads.finish(u, digest));
      }
    }
    allow(req, ["GET", "PATCH", "PUT", "DELETE"]);
    throw new Error("unreachable");
  }
}
