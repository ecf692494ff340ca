/**
 * An in-memory {@link Target}, for tests and small compositions.
 *
 * @module
 */
import { NotFoundError } from "../errors.ts";
import { type Descriptor, stripUndefined } from "../manifest.ts";
import { bytesStream } from "../target.ts";
import type { BlobSpec, ListableTarget, Target } from "../target.ts";
import { VerifyingStream } from "../digest.ts";
import { LayoutIndex } from "./index_file.ts";

/**
 * Blobs and tags held in memory.
 *
 * @example
 * ```ts
 * import { MemoryTarget } from "./memory.ts";
 * import { pushBytes } from "../target.ts";
 * const m = new MemoryTarget();
 * const d = await pushBytes(m, "text/plain", new TextEncoder().encode("hi"));
 * console.assert(await m.exists(d));
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

  async push(spec: BlobSpec, content: ReadableStream<Uint8Array>): Promise<Descriptor> {
    const v = new VerifyingStream(spec, `blob ${spec.digest ?? "(new)"} for memory`);
    const chunks: Uint8Array[] = [];
    for await (const c of content.pipeThrough(v)) chunks.push(c);
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

  tag(desc: Descriptor, reference: string): Promise<void> {
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
