/**
 * `serve`'s limits by default, in one module that imports nothing: the
 * server applies them, the CLI's help shows them without loading the server.
 *
 * @module
 */

/** The upload sessions' limits by default (see `UploadLimits` in `uploads.ts`). */
export const UPLOAD_DEFAULTS = {
  /** Most sessions open at once, all clients together. */
  maxUploads: 128,
  /** Most sessions one client holds at once. */
  maxClientUploads: 16,
  /** A session that receives no bytes this long is dropped (ms). */
  idleMs: 60_000,
} as const;

/** The limits of `serve()` by default (see `ServeOptions`). */
export const SERVE_DEFAULTS = {
  maxConnections: 256,
  maxClientConnections: 32,
  rate: 1000,
  burst: 2000,
  stallMs: 30_000,
  shutdownGraceMs: 5_000,
  maxUploads: UPLOAD_DEFAULTS.maxUploads,
  maxClientUploads: UPLOAD_DEFAULTS.maxClientUploads,
  uploadIdleMs: UPLOAD_DEFAULTS.idleMs,
} as const;
