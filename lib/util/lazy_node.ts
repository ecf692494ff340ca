/**
 * Node built-ins that are costly to start, loaded on first use. A static
 * `import … from "node:crypto"` (or `node:zlib`, `node:stream`) makes Deno set
 * up its Node compatibility layer and those polyfills before the first line
 * of the program runs: ≈ 18 ms of a 55 ms `ocipkg get` of an image the store
 * already holds, which needs none of them. `process.getBuiltinModule()` loads
 * the same built-in, synchronously, when a function first needs it — no
 * dynamic `import()`, so `deno compile` is unaffected (built-ins are part of
 * the runtime). Type-only imports are erased and cost nothing.
 *
 * Keep the cached `get`/`link` path free of these calls (and of `process`):
 * `tests/startup_test.ts` checks that it never loads them.
 *
 * @module
 */
import type * as NodeBuffer from "node:buffer";
import type * as Crypto from "node:crypto";
import type * as Path from "node:path";
import type * as Stream from "node:stream";
import type * as Zlib from "node:zlib";

/**
 * `node:crypto`, loaded on first call.
 * @returns the module
 */
export function nodeCrypto(): typeof Crypto {
  return process.getBuiltinModule("node:crypto");
}

/**
 * `node:zlib`, loaded on first call.
 * @returns the module
 */
export function nodeZlib(): typeof Zlib {
  return process.getBuiltinModule("node:zlib");
}

/**
 * `node:stream`, loaded on first call.
 * @returns the module
 */
export function nodeStream(): Pick<typeof Stream, "pipeline" | "Readable"> {
  return process.getBuiltinModule("node:stream");
}

/**
 * `node:path`, loaded on first call (lib/util/path.ts needs it on Windows only).
 * @returns the module
 */
export function nodePath(): typeof Path {
  return process.getBuiltinModule("node:path");
}

/**
 * `node:buffer`, loaded on first call (npm packages take `Buffer`s).
 * @returns the module
 */
export function nodeBuffer(): Pick<typeof NodeBuffer, "Buffer"> {
  return process.getBuiltinModule("node:buffer");
}
