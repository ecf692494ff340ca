/**
 * ocipkg — distribute compiled binaries (static and shared libraries,
 * executables, any files) through OCI registries, without docker.
 *
 * The library owns all behaviour; the `ocipkg` CLI is a thin layer over it.
 *
 * @example
 * ```ts
 * import { ImageName, OciArchive, packDirectory, Store } from "@ocipkg/cli";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/libfoo.a`, "!<arch>\n");
 * const out = `${await Deno.makeTempDir()}/foo.tar`;
 * await packDirectory(dir, `oci-archive:${out}`, { name: "example.com/foo:1.0" });
 * const store = new Store(await Deno.makeTempDir());
 * const archive = await OciArchive.open(out);
 * const r = await store.install(archive, await archive.resolve(), ImageName.parse("example.com/foo:1.0"));
 * await archive.close();
 * console.assert(r.status === "installed");
 * ```
 *
 * @module
 */
export * from "./lib/errors.ts";
export * from "./lib/text.ts";
export * from "./lib/media_types.ts";
export * from "./lib/digest.ts";
export * from "./lib/reference.ts";
export * from "./lib/manifest.ts";
export * from "./lib/platform.ts";
export * from "./lib/tar.ts";
export * from "./lib/target.ts";
export * from "./lib/copy.ts";
export * from "./lib/extract.ts";
export * from "./lib/layout/index_file.ts";
export * from "./lib/layout/oci_dir.ts";
export * from "./lib/layout/oci_archive.ts";
export * from "./lib/layout/memory.ts";
export * from "./lib/location.ts";
export * from "./lib/artifact.ts";
export * from "./lib/store.ts";
export * from "./lib/inspect.ts";
export * from "./lib/registry/errors.ts";
export * from "./lib/registry/credentials.ts";
export * from "./lib/registry/client.ts";
export * from "./lib/registry/target.ts";
export * from "./lib/transfer.ts";
export * from "./lib/install.ts";
export * from "./lib/registry/tags.ts";
export * from "./lib/registry/login.ts";
export * from "./lib/variants.ts";
export * from "./lib/libraries.ts";
export * from "./lib/link.ts";
export * from "./lib/ffi.ts";
export * from "./lib/binary_platform.ts";
export * from "./lib/runnable.ts";
export * from "./lib/cargo.ts";
export * from "./lib/tee.ts";
export { releaseTemp, removeTempsSync, trackTemp } from "./lib/fs_util.ts";
