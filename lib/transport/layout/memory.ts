/**
 * An in-memory {@link Target}, for tests and small compositions.
 *
 * @module
 */
import { NotFoundError } from "../../util/errors.ts";
import { type Descriptor, stripUndefined } from "../../oci/manifest.ts";
import { bytesStream, stopIfAborted } from "../target.ts";
import type { BlobSpec, ListableTarget, PushOptions, TagOptions, Target } from "../target.ts";
import { VerifyingStream } from "../../oci/digest.ts";
import { LayoutIndex } from "./index_file.ts";

/**
 * Blobs and tags held in memory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryTarget } from "@ocipkg/cli";
 * import { encodeJson, OCI_MANIFEST, OCIPKG_CONFIG } from "@ocipkg/cli/oci";
 * import { pushBytes } from "@ocipkg/cli/transport";
 * const m = new MemoryTarget();
 * const config = await pushBytes(m, OCIPKG_CONFIG, encodeJson({ layers: {} }));
 * const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] };
 * const root = await pushBytes(m, OCI_MANIFEST, encodeJson(manifest));
 * await m.tag(root, "example.com/empty:1");
 * assert.equal((await m.resolve("example.com/empty:1")).digest, root.digest);
 * assert.equal(await new Response(await m.fetch(config)).text(), '{"layers":{}}');
 * assert.equal((await m.list()).length, 1);
 * ```
 */
export class MemoryTarget implements Target, ListableTarget {
  readonly description = "memory";
  #blobs = new Map<string, Uint8Array>();
  #index = new LayoutIndex("memory");

  resolve(reference?: string): Promise<Descriptor> {
    try {
      return Promise.resolve(this.#index.resolve(reference));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  list(): Promise<Descriptor[]> {
    return Promise.resolve([...this.#index.manifests]);
  }

  fetch(desc: Descriptor): Promise<ReadableStream<Uint8Array>> {
    const b = this.#blobs.get(desc.digest);
    if (!b) return Promise.reject(new NotFoundError(`blob ${desc.digest} is missing from memory`));
    return Promise.resolve(bytesStream(b));
  }

  exists(desc: Descriptor): Promise<boolean> {
    return Promise.resolve(this.#blobs.get(desc.digest)?.byteLength === desc.size);
  }

  async push(
    spec: BlobSpec,
    content: ReadableStream<Uint8Array>,
    options: PushOptions = {},
  ): Promise<Descriptor> {
    const signal = options.signal;
    await stopIfAborted(content, signal);
    const v = new VerifyingStream(spec, `blob ${spec.digest ?? "(new)"} for memory`);
    const chunks: Uint8Array[] = [];
    for await (const c of content.pipeThrough(v, { signal })) chunks.push(c);
    const { digest, size } = v.result!;
    const all = new Uint8Array(size);
    let off = 0;
    for (const c of chunks) {
      all.set(c, off);
      off += c.byteLength;
    }
    this.#blobs.set(digest, all);
    return stripUndefined({ ...spec, digest, size });
  }

  tag(desc: Descriptor, reference: string, options: TagOptions = {}): Promise<void> {
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    this.#index.tag(desc, reference);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  abort(): Promise<void> {
    return Promise.resolve();
  }
}
