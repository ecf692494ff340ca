/**
 * `serve`: a distribution-spec v1.1 registry on `Deno.serve`, storing one OCI
 * image layout per repository under a root (see `storage.ts`). Pull (manifests
 * by tag and digest, blobs with `Range`), push (monolithic, `POST`+`PUT`,
 * chunked `PATCH`, cross-repository mount), tag lists, referrers, deletes,
 * htpasswd Basic auth, TLS, read-only mode.
 *
 * @module
 */
import { VerificationError } from "../util/errors.ts";
import { digestOf, isDigest, parseDigest } from "../oci/digest.ts";
import { OcipkgError, ResourceError, UsageError } from "../util/errors.ts";
import { readBodyCapped } from "../util/body.ts";
import { releaseTemp } from "../util/temp.ts";
import {
  type Descriptor,
  encodeJson,
  MAX_MANIFEST_SIZE,
  parseManifestDocument,
} from "../oci/manifest.ts";
import { INDEX_TYPES, MANIFEST_TYPES, OCI_INDEX } from "../oci/media_types.ts";
import { isTag } from "../oci/reference.ts";
import { bytesStream } from "../transport/target.ts";
import { Htpasswd } from "./auth.ts";
import { errorResponse, RegistryError } from "./errors.ts";
import { checkName, type Repository, Storage } from "./storage.ts";
import { type Upload, Uploads } from "./uploads.ts";

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Directory holding one OCI layout per repository (made when missing). */
  root: string;
  /** `host:port` to listen on (default `127.0.0.1:5000`; port 0 picks a free one). */
  addr?: string;
  /** An htpasswd file of bcrypt entries: Basic auth required for everything. */
  htpasswd?: string;
  /** PEM certificate (chain) file: serve https (with `tlsKey`). */
  tlsCert?: string;
  /** PEM private key file. */
  tlsKey?: string;
  /** Refuse every write with `DENIED`. */
  readOnly?: boolean;
  /** Allow deleting manifests, tags and blobs. */
  delete?: boolean;
  /** Receives one line per request (method, path, status, bytes, ms). */
  log?: (line: string) => void;
  /** Most upload sessions at once (default 32). */
  maxUploads?: number;
  /** An upload idle this long is dropped (default 15 min). */
  uploadIdleMs?: number;
  /** Advertised as `OCI-Chunk-Min-Length` (default 0: any chunk size). */
  chunkMinLength?: number;
}

/** A running registry. */
export interface ServeHandle {
  /** e.g. `http://127.0.0.1:5000` */
  readonly url: string;
  /** `host:port` as clients name it, e.g. `127.0.0.1:5000` */
  readonly addr: string;
  /** The port (the real one when 0 was asked). */
  readonly port: number;
  /** The root directory (resolved). */
  readonly root: string;
  /** Stop: no new requests, uploads in flight discarded, in-flight downloads finished. */
  close(): Promise<void>;
}

/** Longest request URL accepted (bytes). */
export const MAX_URL_LENGTH = 8192;
/** Most request header bytes accepted. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** Most tags or repositories in one list response. */
export const MAX_LIST = 10_000;

/**
 * Parse `host:port`, `[v6]:port` or `:port`.
 *
 * @param addr the address
 * @returns hostname and port
 * @throws {UsageError} when malformed
 */
export function parseAddr(addr: string): { hostname: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new UsageError(`invalid address '${addr}': expected host:port, e.g. 127.0.0.1:5000`);
  }
  return { hostname: m[1] ?? (m[2] || "0.0.0.0"), port };
}

interface Ctx {
  bytesIn: number;
}

const JSON_TYPE = "application/json";

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  const bytes = encodeJson(body);
  return new Response(bytes as Uint8Array<ArrayBuffer>, {
    status,
    headers: { "content-type": JSON_TYPE, "content-length": String(bytes.byteLength), ...headers },
  });
}

function empty(status: number, headers: Record<string, string> = {}): Response {
  return new Response(null, { status, headers: { "content-length": "0", ...headers } });
}

function checkDigest(s: string): string {
  try {
    parseDigest(s);
    return s;
  } catch (e) {
    throw new RegistryError("DIGEST_INVALID", (e as Error).message.slice(0, 300));
  }
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new RegistryError("NAME_INVALID", "malformed percent-encoding in the URL");
  }
}

/** A stream of `length` bytes of a file from `start` (the file is closed at the end). */
function rangeStream(file: Deno.FsFile, start: number, length: number): ReadableStream<Uint8Array> {
  let left = length;
  let positioned = false;
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: 256 * 1024,
    async pull(c) {
      try {
        if (!positioned) {
          await file.seek(start, Deno.SeekMode.Start);
          positioned = true;
        }
        const req = c.byobRequest!;
        const view = req.view!;
        const want = Math.min(view.byteLength, left);
        const n = want === 0
          ? null
          : await file.read(new Uint8Array(view.buffer, view.byteOffset, want));
        if (n === null || n === 0) {
          file.close();
          if (left > 0) c.error(new Error("file ended early"));
          else {
            c.close();
            req.respond(0);
          }
          return;
        }
        left -= n;
        req.respond(n);
        if (left === 0) {
          file.close();
          c.close();
        }
      } catch (e) {
        try {
          file.close();
        } catch { /* closed */ }
        c.error(e);
      }
    },
    cancel() {
      try {
        file.close();
      } catch { /* closed */ }
    },
  });
}

/** One served root (the request handler and its state). */
class Registry {
  #storage: Storage;
  #uploads: Uploads;
  #auth: Htpasswd | undefined;
  #options: ServeOptions;

  constructor(storage: Storage, uploads: Uploads, auth: Htpasswd | undefined, o: ServeOptions) {
    this.#storage = storage;
    this.#uploads = uploads;
    this.#auth = auth;
    this.#options = o;
  }

  async handle(req: Request, ctx: Ctx): Promise<Response> {
    if (req.url.length > MAX_URL_LENGTH) {
      await req.body?.cancel().catch(() => {});
      return empty(414);
    }
    let headerBytes = 0;
    req.headers.forEach((v, k) => headerBytes += k.length + v.length + 4);
    if (headerBytes > MAX_HEADER_BYTES) {
      await req.body?.cancel().catch(() => {});
      return empty(431);
    }
    const url = new URL(req.url);
    const path = url.pathname;
    if (path !== "/v2" && !path.startsWith("/v2/")) {
      throw new RegistryError("UNSUPPORTED", `no such endpoint '${path.slice(0, 200)}'`, {
        status: 404,
      });
    }
    if (this.#auth && !(await this.#auth.check(req.headers.get("authorization")))) {
      await req.body?.cancel().catch(() => {});
      throw new RegistryError("UNAUTHORIZED", "authentication required", {
        headers: { "www-authenticate": 'Basic realm="ocipkg"' },
      });
    }
    const method = req.method;
    const write = !["GET", "HEAD", "OPTIONS"].includes(method);
    if (write && this.#options.readOnly) {
      await req.body?.cancel().catch(() => {});
      throw new RegistryError("DENIED", "the registry is read-only");
    }
    if (path === "/v2/" || path === "/v2") {
      this.#allow(req, ["GET", "HEAD"]);
      return json({}, 200);
    }
    if (path === "/v2/_catalog") {
      this.#allow(req, ["GET"]);
      const names = await this.#storage.catalog();
      return this.#page(url, names, "repositories", {}, "/v2/_catalog");
    }
    let m: RegExpExecArray | null;
    if ((m = /^\/v2\/(.+)\/tags\/list$/.exec(path))) {
      this.#allow(req, ["GET"]);
      const name = m[1]!;
      const repo = await this.#repo(name);
      return this.#page(url, await repo.tags(), "tags", { name }, `/v2/${name}/tags/list`);
    }
    if ((m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path))) {
      return await this.#manifest(req, m[1]!, decode(m[2]!));
    }
    if ((m = /^\/v2\/(.+)\/blobs\/uploads\/?$/.exec(path))) {
      this.#allow(req, ["POST"]);
      return await this.#startUpload(req, url, m[1]!, ctx);
    }
    if ((m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/.exec(path))) {
      return await this.#upload(req, url, m[1]!, decode(m[2]!), ctx);
    }
    if ((m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path))) {
      return await this.#blob(req, m[1]!, checkDigest(decode(m[2]!)));
    }
    if ((m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(path))) {
      this.#allow(req, ["GET"]);
      return await this.#referrers(url, m[1]!, checkDigest(decode(m[2]!)));
    }
    throw new RegistryError("UNSUPPORTED", `no such endpoint '${path.slice(0, 200)}'`, {
      status: 404,
    });
  }

  #allow(req: Request, methods: string[]): void {
    if (!methods.includes(req.method)) {
      req.body?.cancel().catch(() => {});
      throw new RegistryError("UNSUPPORTED", `${req.method} is not supported here`, {
        headers: { allow: methods.join(", ") },
      });
    }
  }

  async #repo(name: string): Promise<Repository> {
    const repo = await this.#storage.repository(name);
    if (!repo) throw new RegistryError("NAME_UNKNOWN", `repository '${name}' is not known`);
    return repo;
  }

  #page(
    url: URL,
    all: string[],
    key: string,
    extra: Record<string, string>,
    base: string,
  ): Response {
    const nText = url.searchParams.get("n");
    const last = url.searchParams.get("last");
    let n = MAX_LIST;
    if (nText !== null) {
      if (!/^\d{1,9}$/.test(nText)) {
        throw new RegistryError("UNSUPPORTED", `invalid n '${nText.slice(0, 20)}'`, {
          status: 400,
        });
      }
      n = Math.min(Number(nText), MAX_LIST);
    }
    const after = last === null ? all : all.filter((t) => t > last);
    const page = after.slice(0, n);
    const headers: Record<string, string> = {};
    if (after.length > page.length && page.length > 0) {
      const next = new URLSearchParams({ n: String(n), last: page[page.length - 1]! });
      headers.link = `<${base}?${next}>; rel="next"`;
    }
    return json({ ...extra, [key]: page }, 200, headers);
  }

  // ---- manifests

  async #manifest(req: Request, name: string, ref: string): Promise<Response> {
    if (req.method === "GET" || req.method === "HEAD") {
      return await this.#getManifest(req, name, ref);
    }
    if (req.method === "PUT") return await this.#putManifest(req, name, ref);
    if (req.method === "DELETE") return await this.#deleteManifest(name, ref);
    this.#allow(req, ["GET", "HEAD", "PUT", "DELETE"]);
    throw new Error("unreachable");
  }

  #checkRef(ref: string): void {
    if (ref.includes(":")) checkDigest(ref);
    else if (!isTag(ref)) {
      throw new RegistryError("MANIFEST_INVALID", `invalid tag '${ref.slice(0, 200)}'`);
    }
  }

  async #findManifest(
    repo: Repository,
    ref: string,
  ): Promise<{ digest: string; mediaType: string; bytes: Uint8Array } | undefined> {
    const entries = await repo.entries(ref);
    const entry = entries[entries.length - 1];
    const digest = entry?.digest ?? (isDigest(ref) ? ref : undefined);
    if (!digest) return undefined;
    const info = await repo.info(digest, entry?.mediaType);
    const bytes = info && await repo.readManifest(digest);
    if (!info || !bytes) return undefined;
    return { digest, mediaType: entry?.mediaType ?? info.mediaType, bytes };
  }

  async #getManifest(req: Request, name: string, ref: string): Promise<Response> {
    this.#checkRef(ref);
    const repo = await this.#repo(name);
    const found = await this.#findManifest(repo, ref);
    if (!found) {
      throw new RegistryError("MANIFEST_UNKNOWN", `manifest '${ref}' is not in '${name}'`);
    }
    const headers = {
      "content-type": found.mediaType,
      "content-length": String(found.bytes.byteLength),
      "docker-content-digest": found.digest,
      etag: `"${found.digest}"`,
    };
    return new Response(req.method === "HEAD" ? null : found.bytes as Uint8Array<ArrayBuffer>, {
      status: 200,
      headers,
    });
  }

  async #putManifest(req: Request, name: string, ref: string): Promise<Response> {
    checkName(name);
    this.#checkRef(ref);
    const mediaType = (req.headers.get("content-type") ?? "").split(";")[0]!.trim();
    const bytes = await readBodyCapped(
      req,
      MAX_MANIFEST_SIZE,
      () =>
        new RegistryError("SIZE_INVALID", `manifest is over the ${MAX_MANIFEST_SIZE}-byte cap`, {
          status: 413,
        }),
    );
    if (![...MANIFEST_TYPES, ...INDEX_TYPES].includes(mediaType)) {
      throw new RegistryError(
        "MANIFEST_INVALID",
        `Content-Type '${mediaType.slice(0, 100)}' is not a manifest or index media type`,
      );
    }
    let doc;
    try {
      doc = parseManifestDocument(bytes, mediaType, "manifest");
    } catch (e) {
      throw new RegistryError("MANIFEST_INVALID", (e as Error).message.slice(0, 300));
    }
    const algorithm = isDigest(ref) ? parseDigest(ref).algorithm : "sha256";
    const digest = digestOf(bytes, algorithm);
    if (isDigest(ref) && ref !== digest) {
      throw new RegistryError("DIGEST_INVALID", `manifest has digest ${digest}, not ${ref}`);
    }
    const repo = await this.#storage.repository(name, true);
    if (!repo) throw new Error("unreachable");
    // every blob (and child manifest) it names must be in the repository
    const needs: Descriptor[] = doc.kind === "manifest"
      ? [doc.manifest.config, ...doc.manifest.layers]
      : doc.index.manifests;
    for (const d of needs) {
      if (d.urls?.length) continue; // a foreign layer, served elsewhere
      if ((await repo.blobSize(d.digest)) !== d.size) {
        throw new RegistryError(
          "MANIFEST_BLOB_UNKNOWN",
          `manifest references ${d.digest} (${d.size} bytes), which '${name}' does not have`,
        );
      }
    }
    const subject = doc.kind === "manifest" ? doc.manifest.subject : doc.index.subject;
    const artifactType = doc.kind === "manifest"
      ? doc.manifest.artifactType
      : doc.index.artifactType;
    const desc: Descriptor = {
      mediaType,
      digest,
      size: bytes.byteLength,
      ...(artifactType ? { artifactType } : {}),
    };
    await repo.mutex.run(async () => {
      const layout = await repo.layout();
      await repo.blobDir(digest);
      await layout.push({ mediaType, digest, size: bytes.byteLength }, bytesStream(bytes));
      const before = isDigest(ref) ? [] : await repo.entries(ref);
      await layout.tag(desc, ref);
      // a manifest a moved tag leaves behind stays listed (untagged)
      for (const old of before) {
        if (old.digest !== digest && (await repo.entries(old.digest)).length === 0) {
          const { annotations: _, ...plain } = old;
          await layout.tag(plain, old.digest);
        }
      }
      await repo.wrote();
    });
    const headers: Record<string, string> = {
      location: `/v2/${name}/manifests/${digest}`,
      "docker-content-digest": digest,
    };
    if (subject) headers["oci-subject"] = subject.digest;
    return empty(201, headers);
  }

  async #deleteManifest(name: string, ref: string): Promise<Response> {
    if (!this.#options.delete) {
      throw new RegistryError("UNSUPPORTED", "deleting is not enabled on this registry");
    }
    this.#checkRef(ref);
    const repo = await this.#repo(name);
    await repo.mutex.run(async () => {
      const layout = await repo.layout();
      const entries = await repo.entries(ref);
      if (isDigest(ref)) {
        const size = await repo.blobSize(ref);
        if (!entries.length && (size === undefined || !(await repo.info(ref)))) {
          throw new RegistryError("MANIFEST_UNKNOWN", `manifest '${ref}' is not in '${name}'`);
        }
        await layout.untag((d) => d.digest === ref);
        await Deno.remove(repo.blobPath(ref)).catch(() => {});
        repo.forget(ref);
      } else {
        if (!entries.length) {
          throw new RegistryError("MANIFEST_UNKNOWN", `tag '${ref}' is not in '${name}'`);
        }
        await layout.untag((d) => entries.includes(d));
        for (const old of entries) {
          if ((await repo.entries(old.digest)).length === 0) {
            const { annotations: _, ...plain } = old;
            await layout.tag(plain, old.digest);
          }
        }
      }
      await repo.wrote();
    });
    return empty(202);
  }

  // ---- blobs

  async #blob(req: Request, name: string, digest: string): Promise<Response> {
    if (req.method === "DELETE") {
      if (!this.#options.delete) {
        throw new RegistryError("UNSUPPORTED", "deleting is not enabled on this registry");
      }
      const repo = await this.#repo(name);
      if ((await repo.blobSize(digest)) === undefined) {
        throw new RegistryError("BLOB_UNKNOWN", `blob ${digest} is not in '${name}'`);
      }
      await Deno.remove(repo.blobPath(digest));
      repo.forget(digest);
      return empty(202);
    }
    this.#allow(req, ["GET", "HEAD", "DELETE"]);
    const repo = await this.#repo(name);
    const size = await repo.blobSize(digest);
    if (size === undefined) {
      throw new RegistryError("BLOB_UNKNOWN", `blob ${digest} is not in '${name}'`);
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
          throw new RegistryError("RANGE_INVALID", `range '${range}' is outside the blob`, {
            headers: { "content-range": `bytes */${size}` },
          });
        }
        partial = true;
      } else if (!/,/.test(range)) {
        throw new RegistryError("RANGE_INVALID", `malformed range '${range.slice(0, 100)}'`, {
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
      const layout = await repo.layout();
      const stream = await layout.fetch({ mediaType: "application/octet-stream", digest, size });
      return new Response(stream, { status, headers });
    }
    const file = await Deno.open(repo.blobPath(digest));
    return new Response(rangeStream(file, start, length), { status, headers });
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
      ctx.bytesIn += await this.#uploads.append(u, req.body, this.#contentLength(req));
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
      const tmp = `${this.#storage.uploads}/mount-${crypto.randomUUID()}`;
      try {
        await Deno.link(src.blobPath(digest), tmp);
        await Deno.rename(tmp, dst.blobPath(digest));
      } catch {
        await Deno.remove(tmp).catch(() => {});
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
      throw new RegistryError(
        "RANGE_INVALID",
        `Content-Range '${cr.slice(0, 100)}' does not continue the upload at ${u.size}`,
        { headers: this.#uploadHeaders(name, u) },
      );
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
        ctx.bytesIn += await this.#uploads.append(u, req.body, this.#contentLength(req));
        return empty(202, this.#uploadHeaders(name, u));
      }
      case "PUT": {
        const param = url.searchParams.get("digest");
        if (param === null) {
          await req.body?.cancel().catch(() => {});
          throw new RegistryError("DIGEST_INVALID", "the digest query parameter is missing");
        }
        const digest = checkDigest(param);
        this.#checkContentRange(req, name, u);
        ctx.bytesIn += await this.#uploads.append(u, req.body, this.#contentLength(req));
        return await this.#commit(name, digest, await this.#uploads.finish(u, digest));
      }
    }
    this.#allow(req, ["GET", "PATCH", "PUT", "DELETE"]);
    throw new Error("unreachable");
  }

  // ---- referrers

  async #referrers(url: URL, name: string, digest: string): Promise<Response> {
    checkName(name);
    const want = url.searchParams.get("artifactType");
    const repo = await this.#storage.repository(name);
    const manifests: Descriptor[] = [];
    const seen = new Set<string>();
    for (const entry of repo ? await (await repo.layout()).list() : []) {
      if (seen.has(entry.digest)) continue;
      seen.add(entry.digest);
      const info = await repo!.info(entry.digest, entry.mediaType);
      if (info?.subject !== digest) continue;
      if (want !== null && info.artifactType !== want) continue;
      manifests.push({
        mediaType: entry.mediaType,
        digest: entry.digest,
        size: info.size,
        ...(info.artifactType ? { artifactType: info.artifactType } : {}),
        ...(info.annotations ? { annotations: info.annotations } : {}),
      });
    }
    return json(
      { schemaVersion: 2, mediaType: OCI_INDEX, manifests },
      200,
      {
        "content-type": OCI_INDEX,
        ...(want !== null ? { "oci-filters-applied": "artifactType" } : {}),
      },
    );
  }
}

function toResponse(e: unknown, head: boolean): Response {
  if (e instanceof RegistryError) return errorResponse(e, head);
  if (e instanceof VerificationError) {
    return errorResponse(new RegistryError("DIGEST_INVALID", e.message), head);
  }
  const message = e instanceof Error ? e.message.split("\n")[0]!.slice(0, 300) : String(e);
  const status = e instanceof ResourceError ? 507 : 500;
  return errorResponse(new RegistryError("UNSUPPORTED", message, { status }), head);
}

/**
 * Serve a directory of OCI layouts as a distribution-spec registry, until
 * `close()`.
 *
 * @param options the root, address, auth, TLS and modes
 * @returns the running registry
 * @throws {OcipkgError} when the port is taken, the htpasswd file or the TLS files are unusable
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listTags, packDirectory, pushImage, serve } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "a");
 * const registry = await serve({ root: `${tmp}/root`, addr: "127.0.0.1:0" });
 * assert.ok(registry.port > 0); // port 0: a free one, reported here
 * const name = `${registry.addr}/org/foo:1`;
 * const packed = await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name });
 * assert.equal((await pushImage(`${tmp}/foo.tar`)).digest, packed.digest);
 * assert.deepEqual(await listTags(`${registry.addr}/org/foo`), ["1"]);
 * // the root holds one OCI layout per repository
 * assert.ok((await Deno.stat(`${tmp}/root/org/foo/oci-layout`)).isFile);
 * await registry.close();
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function serve(options: ServeOptions): Promise<ServeHandle> {
  const { hostname, port } = parseAddr(options.addr ?? "127.0.0.1:5000");
  const auth = options.htpasswd ? await Htpasswd.read(options.htpasswd) : undefined;
  if (!options.tlsCert !== !options.tlsKey) {
    throw new UsageError("TLS needs both a certificate and a key");
  }
  const tls = options.tlsCert && options.tlsKey
    ? {
      cert: await Deno.readTextFile(options.tlsCert).catch((e) => {
        throw new OcipkgError(`TLS certificate '${options.tlsCert}': ${(e as Error).message}`);
      }),
      key: await Deno.readTextFile(options.tlsKey).catch((e) => {
        throw new OcipkgError(`TLS key '${options.tlsKey}': ${(e as Error).message}`);
      }),
    }
    : undefined;
  let storage: Storage;
  try {
    storage = await Storage.open(options.root);
  } catch (e) {
    throw new OcipkgError(`root '${options.root}': ${(e as Error).message}`, { cause: e });
  }
  await removeStale(storage.uploads, options.uploadIdleMs ?? 15 * 60_000);
  const uploads = new Uploads(storage.uploads, {
    maxUploads: options.maxUploads,
    idleMs: options.uploadIdleMs,
  });
  const registry = new Registry(storage, uploads, auth, options);
  const log = options.log;
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname,
      port,
      ...(tls ?? {}),
      onListen() {},
      onError(e) {
        return toResponse(e, false);
      },
    }, async (req) => {
      const t0 = performance.now();
      const ctx: Ctx = { bytesIn: 0 };
      let res: Response;
      try {
        res = await registry.handle(req, ctx);
      } catch (e) {
        res = toResponse(e, req.method === "HEAD");
      }
      if (log) {
        const url = new URL(req.url);
        const bytes = ctx.bytesIn || Number(res.headers.get("content-length") ?? 0);
        const ms = Math.round(performance.now() - t0);
        log(`${req.method} ${url.pathname}${url.search} ${res.status} ${bytes} ${ms}ms`);
      }
      return res;
    });
  } catch (e) {
    await uploads.close();
    if (e instanceof Deno.errors.AddrInUse) {
      throw new OcipkgError(`address ${hostname}:${port} is already in use`, { cause: e });
    }
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.AddrNotAvailable) {
      throw new OcipkgError(`cannot listen on ${hostname}:${port}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (tls) throw new OcipkgError(`TLS certificate or key unusable: ${(e as Error).message}`);
    throw e;
  }
  const real = server.addr.port;
  const shown = hostname === "0.0.0.0" || hostname === "::"
    ? "127.0.0.1"
    : hostname.includes(":")
    ? `[${hostname}]`
    : hostname;
  let closing: Promise<void> | undefined;
  return {
    url: `${tls ? "https" : "http"}://${shown}:${real}`,
    addr: `${shown}:${real}`,
    port: real,
    root: storage.root,
    close() {
      return closing ??= (async () => {
        const done = server.shutdown();
        await uploads.close();
        await done;
      })();
    },
  };
}

/** Remove upload files left by a process that was killed (older than `ageMs`). */
async function removeStale(dir: string, ageMs: number): Promise<void> {
  try {
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      const st = await Deno.lstat(p).catch(() => undefined);
      if (st?.isFile && Date.now() - (st.mtime?.getTime() ?? 0) > ageMs) {
        await Deno.remove(p).catch(() => {});
      }
    }
  } catch { /* nothing to clean */ }
}
