/**
 * The one copy routine: move an image graph (index → manifests → config and
 * layers) between any two {@link Target}s, skipping what the destination has.
 * push, pull, load, save and copy all go through it.
 *
 * Bounded: at most `concurrency` requests (manifest and blob fetches, HEADs,
 * mounts, pushes) are in flight at once (default {@link DEFAULT_CONCURRENCY}),
 * of which at most {@link DEFAULT_LARGE_TRANSFERS} move blobs of
 * {@link LARGE_BLOB} or more unless `concurrency` is given (each holds MiBs of
 * buffers, while many small blobs are bound by round trips), at most `concurrency` children of
 * one manifest or index are visited at once (so only that many manifests'
 * bytes are held per level), an index or manifest may list at most
 * {@link MAX_DESCRIPTORS} children, and indexes nest at most
 * {@link MAX_DEPTH} deep.
 *
 * @module
 */
import { vouch, vouchedFor } from "../oci/digest.ts";
import { FormatError } from "../util/errors.ts";
import { forEachBounded, Limiter } from "../util/concurrency.ts";
import { type Descriptor, isManifestType, parseManifestDocument } from "../oci/manifest.ts";
import {
  bytesStream,
  fetchBytes,
  type ReadTarget,
  streamOfReads,
  takeReadsInPlace,
  type Target,
  TransferLostError,
} from "./target.ts";
import { DEFAULT_CONCURRENCY, DEFAULT_LARGE_TRANSFERS, LARGE_BLOB } from "./defaults.ts";

/** Most descriptors one index or manifest may list for {@link copyGraph} (16384). */
export const MAX_DESCRIPTORS = 16_384;
/** Deepest nesting of manifests (index → index → … → manifest) {@link copyGraph} follows. */
export const MAX_DEPTH = 8;

/** Progress events emitted by {@link copy}. */
export interface CopyEvent {
  /**
   * `skip`: the destination had it; `start`/`done`: transferred;
   * `progress`: bytes so far (with {@link CopyOptions.progressBytes}).
   */
  kind: "skip" | "start" | "progress" | "done";
  /** The content. */
  desc: Descriptor;
  /** Bytes transferred so far (`progress`, `done`). */
  bytes?: number;
}

/** Options of {@link copy} and {@link copyGraph}. */
export interface CopyOptions {
  /** Reference to resolve in the source (tag, ref name or digest). */
  srcRef?: string;
  /** Reference to tag in the destination; none leaves the copy untagged. */
  dstRef?: string;
  /**
   * Requests (manifests and blobs) in flight at once (default 8, of which at
   * most 4 transfers of large blobs; given, it bounds both).
   */
  concurrency?: number;
  /** Progress callback. */
  onProgress?: (event: CopyEvent) => void;
  /**
   * Also report `progress` events while blobs flow (at most every 100 ms per
   * blob). Costs a little: the bytes pass through one more stream (a
   * layout's file then no longer goes to a registry as Deno's native stream).
   */
  progressBytes?: boolean;
  /**
   * Called for each blob that is transferred (not skipped), with its bytes on
   * their way from the source; returns the stream to pass to the destination
   * — e.g. one branch of a tee whose other branch the caller reads (this is
   * how `get`/`load` extract layers while they are copied). Called again if a
   * lost transfer is retried.
   */
  onBlob?: (desc: Descriptor, content: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array>;
  /**
   * Stops the copy when it aborts: the source's downloads and the
   * destination's uploads in flight fail with its reason (a fetch's and a
   * push's `signal`), nothing more starts, and the copy rejects with it.
   */
  signal?: AbortSignal;
}

/**
 * Copy the graph rooted at `root` from `src` to `dst`. Children go first and
 * the root manifest last, so a present manifest implies a complete graph.
 * Unknown media types are copied as opaque blobs.
 *
 * @param src source
 * @param dst destination
 * @param root root descriptor (manifest, index, or any blob)
 * @param options concurrency and progress
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST } from "@ocipkg/cli/oci";
 * import { copyGraph, type CopyEvent, pushBytes } from "@ocipkg/cli/transport";
 * const src = new MemoryTarget(), dst = new MemoryTarget();
 * const layer = await pushBytes(src, "text/plain", new TextEncoder().encode("hi"));
 * const config = await pushBytes(src, "application/json", encodeJson({}));
 * const doc = { schemaVersion: 2, config, layers: [layer] };
 * const manifest = await pushBytes(src, OCI_MANIFEST, encodeJson(doc));
 * const events: CopyEvent[] = [];
 * await copyGraph(src, dst, manifest, { onProgress: (e) => events.push(e) });
 * assert.ok(await dst.exists(layer) && await dst.exists(manifest));
 * assert.equal(events.filter((e) => e.kind === "done").length, 3);
 * await copyGraph(src, dst, manifest, { onProgress: (e) => events.push(e) });
 * assert.equal(events.at(-1)?.kind, "skip"); // the destination has it all
 * ```
 */
export async function copyGraph(
  src: ReadTarget,
  dst: Target,
  root: Descriptor,
  options: CopyOptions = {},
): Promise<void> {
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
  const limiter = new Limiter(concurrency);
  const large = new Limiter(options.concurrency ?? DEFAULT_LARGE_TRANSFERS);
  const seen = new Map<string, Promise<void>>();
  const progress = options.onProgress ?? (() => {});
  // the first failure stops the other downloads and uploads (else a failed pull or push waited
  // for them: a push of gigabytes ran to its end before saying one blob had failed)
  const stop = new AbortController();
  const given = options.signal;
  given?.throwIfAborted();
  const onGiven = () => stop.abort(given!.reason);
  given?.addEventListener("abort", onGiven, { once: true });
  const fetchBlob = async (desc: Descriptor) => {
    stop.signal.throwIfAborted();
    let content = await src.fetch(desc, { signal: stop.signal });
    if (options.progressBytes && options.onProgress) {
      let last = 0;
      content = countBytes(content, (bytes, end) => {
        const now = Date.now();
        if (end || now - last < 100) return;
        last = now;
        progress({ kind: "progress", desc, bytes });
      });
    }
    return options.onBlob ? options.onBlob(desc, content) : content;
  };

  const visit = (desc: Descriptor, depth: number): Promise<void> => {
    let p = seen.get(desc.digest);
    if (!p) {
      p = visitOnce(desc, depth).catch((e) => {
        if (!stop.signal.aborted) stop.abort(e);
        throw e;
      });
      seen.set(desc.digest, p);
    }
    return p;
  };

  const visitOnce = async (desc: Descriptor, depth: number): Promise<void> => {
    if (!isManifestType(desc.mediaType)) {
      // every request for a blob (HEAD, mount, transfer) counts against the limit; a large
      // blob first waits for a large-transfer slot (so it holds no request slot meanwhile)
      const slot = <T>(fn: () => Promise<T>) =>
        desc.size >= LARGE_BLOB ? large.run(() => limiter.run(fn)) : limiter.run(fn);
      await slot(async () => {
        stop.signal.throwIfAborted();
        const signal = stop.signal; // (the HEAD and the mount too: nothing waits on them)
        if (
          await dst.exists(desc, { signal }) ||
          (dst.mount && await dst.mount(desc, src, { signal }))
        ) {
          progress({ kind: "skip", desc });
          return;
        }
        progress({ kind: "start", desc });
        try {
          await dst.push(desc, await fetchBlob(desc), { signal });
        } catch (e) {
          if (!(e instanceof TransferLostError)) throw e;
          // the destination dropped the transfer: once more from the start
          await dst.push(desc, await fetchBlob(desc), { signal });
        }
        progress({ kind: "done", desc, bytes: desc.size });
      });
      return;
    }
    const where = `manifest ${desc.digest} in ${src.description}`;
    if (depth > MAX_DEPTH) {
      throw new FormatError(`${where}: manifests nest more than ${MAX_DEPTH} deep`);
    }
    // the HEAD and the fetch count against the limit, as blob requests do
    const bytes = await limiter.run(async () => {
      stop.signal.throwIfAborted();
      const signal = stop.signal;
      return await dst.exists(desc, { signal })
        ? undefined
        : await fetchBytes(src, desc, where, { signal });
    });
    if (!bytes) {
      progress({ kind: "skip", desc });
      return;
    }
    const doc = parseManifestDocument(bytes, desc.mediaType, where);
    const children = doc.kind === "index"
      ? doc.index.manifests
      : [doc.manifest.config, ...doc.manifest.layers];
    if (children.length > MAX_DESCRIPTORS) {
      throw new FormatError(
        `${where}: lists ${children.length} descriptors, over the cap of ${MAX_DESCRIPTORS}`,
      );
    }
    await forEachBounded(children, concurrency, (d) => visit(d, depth + 1));
    progress({ kind: "start", desc });
    await limiter.run(() => dst.push(desc, bytesStream(bytes), { signal: stop.signal }));
    progress({ kind: "done", desc, bytes: desc.size });
  };

  try {
    await visit(root, 0);
  } catch (e) {
    // stopped by the caller: its reason, as it gave it (not as a layout wrapped it)
    if (given?.aborted) throw given.reason;
    throw e;
  } finally {
    given?.removeEventListener("abort", onGiven);
  }
}

/**
 * Resolve `options.srcRef` in `src`, copy its graph to `dst`, and tag it as
 * `options.dstRef`.
 *
 * @param src source
 * @param dst destination
 * @param options references, concurrency, progress
 * @returns the root descriptor copied
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget, OciArchive, packDirectory } from "@ocipkg/cli";
 * import { copy } from "@ocipkg/cli/transport";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "a");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * const src = await OciArchive.open(`${tmp}/foo.tar`);
 * const dst = new MemoryTarget();
 * const root = await copy(src, dst, { srcRef: "example.com/foo:1", dstRef: "example.com/foo:2" });
 * await src.close();
 * assert.equal((await dst.resolve("example.com/foo:2")).digest, root.digest);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function copy(
  src: ReadTarget,
  dst: Target,
  options: CopyOptions = {},
): Promise<Descriptor> {
  const root = await src.resolve(options.srcRef);
  await copyGraph(src, dst, root, options);
  // stopped after the last byte arrived, before the tag: no tag (the caller aborts dst)
  options.signal?.throwIfAborted();
  // (an oci-dir's commit of the blobs before it, too)
  if (options.dstRef !== undefined) await dst.tag(root, options.dstRef, { signal: options.signal });
  return root;
}

/**
 * Pass `src` on unchanged while counting its bytes: a byte stream stays one
 * (reads go straight into the consumer's buffers) and keeps its producer's
 * {@link vouch}, and its reads in place ({@link takeReadsInPlace}: a large
 * download still lands in a direct writer's ring with a progress bar shown).
 */
function countBytes(
  src: ReadableStream<Uint8Array>,
  onBytes: (total: number, end: boolean) => void,
): ReadableStream<Uint8Array> {
  let total = 0;
  const inPlace = takeReadsInPlace(src);
  if (inPlace) {
    const read = async (into: Uint8Array): Promise<number | null> => {
      const n = await inPlace.read(into);
      if (n !== null) total += n;
      onBytes(total, n === null);
      return n;
    };
    return vouch(streamOfReads({ read, cancel: inPlace.cancel }), vouchedFor(src) ?? {});
  }
  let reader: ReadableStreamBYOBReader;
  try {
    reader = src.getReader({ mode: "byob" });
  } catch {
    return vouch(
      src.pipeThrough(
        new TransformStream({
          transform(chunk, c) {
            total += chunk.byteLength;
            onBytes(total, false);
            c.enqueue(chunk);
          },
        }),
      ),
      vouchedFor(src) ?? {},
    );
  }
  const out = new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: 256 << 10,
    async pull(c: ReadableByteStreamController) {
      const request = c.byobRequest!;
      const view = request.view!;
      const r = await reader.read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
      if (r.done) {
        onBytes(total, true);
        c.close();
        if (r.value) request.respondWithNewView(r.value);
        return;
      }
      total += r.value.byteLength;
      onBytes(total, false);
      request.respondWithNewView(r.value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
  return vouch(out, vouchedFor(src) ?? {});
}
