/**
 * The local store: extracted images under the data dir of "ocipkg", each at
 * `<host>[__<port>]/<name>/__<reference>/` with its layout in `.oci-dir/`.
 * The platform is part of an entry's identity: that path holds the host
 * platform's install (the path the Rust ocipkg uses); an install for another
 * platform (a cross build's `TARGET`, `--platform`) lives beside it at
 * `__<reference>+<os>-<arch>[-<variant>]/`, so both coexist and stay cached.
 * Installs are atomic (extract into a temp dir beside the target, then rename)
 * and safe when several processes install the same image at once.
 *
 * Entry paths and platform keys are in `paths.ts`, the entry directories on
 * disk (versions, temps) in `entry_dirs.ts`, filling an install's directory
 * in `extract_image.ts`, the records of what verified in `verified.ts`.
 * What a cached `get` asks — where an entry is, what it holds, whether it
 * verified, its use time — loads no more than that: the install, listing,
 * sizes and prune modules are imported when those methods first run.
 *
 * @module
 */
import { basename, dirname, join } from "../util/path.ts";
import { FormatError, NotFoundError, OcipkgError, VerificationError } from "../util/errors.ts";
import { pathExists, readSmallFileSync } from "../util/files.ts";
import { releaseTemp, trackTemp } from "../util/temp.ts";
import type { OciDir } from "../transport/layout/oci_dir.ts";
import { blobPathIn, LayoutIndex, MAX_INDEX_FILE } from "../transport/layout/index_file.ts";
import {
  type Descriptor,
  type Manifest,
  MAX_MANIFEST_SIZE,
  parseManifestDocument,
  type Platform,
} from "../oci/manifest.ts";
import { verifyBytes } from "../oci/digest.ts";
import { formatPlatform, hostPlatform, platformMatches } from "../oci/platform.ts";
import { ImageName, imageName } from "../oci/reference.ts";
import type { ReadTarget } from "../transport/target.ts";
import { dataDir, isHost, LAYOUT_DIR, platformKey, TMP_PREFIX } from "./paths.ts";
import {
  cleanStaleTemps,
  isDirectorySync,
  makePrivateDir,
  platformEntries,
  removeVersions,
  replaceDirectory,
} from "./entry_dirs.ts";
import type { StoreUsage } from "./disk_usage.ts";
import type { PruneOptions, PruneResult } from "./prune.ts";
import { recordUse } from "./use_time.ts";
import { readVerifiedKeys, verifiedPath, writeVerifiedRecord } from "./verified.ts";

import type { StoreEntry } from "./entries.ts";

import type { InstallOptions } from "./extract_image.ts";
export type { InstallOptions, PruneOptions, PruneResult, StoreEntry, StoreUsage };
export type { PrunedItem } from "./prune.ts";
export type { EntryUsage } from "./disk_usage.ts";

/** What {@link Store.install} did. */
export interface InstallResult {
  /** The image's name in the store. */
  name: ImageName;
  /** Its directory. */
  dir: string;
  /** Digest of the installed manifest. */
  digest: string;
  /** `installed` now, or `present` already (nothing done). */
  status: "installed" | "present";
}

/**
 * A local store rooted at a directory (the data dir by default).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadImage, packDirectory, Store } from "@ocipkg/cli";
 * const tmp = await Deno.makeTempDir();
 * await Deno.mkdir(`${tmp}/pkg`);
 * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "a");
 * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
 * const store = new Store(`${tmp}/store`);
 * await loadImage(`${tmp}/foo.tar`, { store });
 * assert.deepEqual((await store.list()).map((e) => String(e.name)), ["example.com/foo:1"]);
 * assert.ok(await store.has("example.com/foo:1"));
 * assert.equal(await Deno.readTextFile(`${store.imageDir("example.com/foo:1")}/a.txt`), "a");
 * await store.remove("example.com/foo:1");
 * assert.deepEqual(await store.list(), []);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export class Store {
  /** Root directory. */
  readonly root: string;

  /**
   * Create a Store.
   * @param root store root; defaults to {@link dataDir}
   */
  constructor(root: string = dataDir()) {
    this.root = root;
  }

  /**
   * Path of an image's store entry for a platform, as segments relative to
   * the store root: {@link ImageName.storePath} for the host's platform
   * (and when none is given), `__<reference>+<os>-<arch>[-<variant>]` as the
   * last segment for another.
   *
   * @param name image name
   * @param platform the platform of the entry (default: the host's)
   * @returns path segments
   * @throws {UsageError} for a platform that cannot name a directory
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Store } from "@ocipkg/cli";
   * import { hostPlatform } from "@ocipkg/cli/oci";
   * assert.deepEqual(Store.entryPath("localhost:5000/org/libfoo:1.2"), [
   *   "localhost__5000",
   *   "org",
   *   "libfoo",
   *   "__1.2",
   * ]);
   * assert.deepEqual(Store.entryPath("ghcr.io/libfoo:1.2", hostPlatform()), ["ghcr.io", "libfoo", "__1.2"]);
   * const riscv = { os: "linux", architecture: "riscv64" };
   * assert.deepEqual(Store.entryPath("ghcr.io/libfoo:1.2", riscv), ["ghcr.io", "libfoo", "__1.2+linux-riscv64"]);
   * ```
   */
  static entryPath(name: ImageName | string, platform?: Platform): string[] {
    const n = typeof name === "string" ? ImageName.parse(name) : name;
    const segments = n.storePath();
    if (!isHost(platform)) segments.push(`${segments.pop()}+${platformKey(platform!)}`);
    return segments;
  }

  /**
   * Directory of an image in the store (whether present or not).
   *
   * @param name image name
   * @param platform the platform of the entry (default: the host's); see {@link Store.entryPath}
   * @returns absolute path
   */
  imageDir(name: ImageName | string, platform?: Platform): string {
    return join(this.root, ...Store.entryPath(name, platform));
  }

  /**
   * Whether an image is installed for a platform: its entry exists, and was
   * installed for that platform (an entry records it; one that records none,
   * written by an older version or another tool, counts as the host's).
   *
   * @param name image name
   * @param platform the platform (default: the host's)
   * @returns true when it is installed for it
   */
  async has(name: ImageName | string, platform?: Platform): Promise<boolean> {
    const desc = await this.installedDescriptor(name, platform);
    if (desc === undefined) return false;
    return desc.platform === undefined ||
      platformMatches(desc.platform, platform ?? hostPlatform());
  }

  /**
   * All installed images (directories whose name starts with `__`), with
   * the platform of each entry that is not the host's.
   *
   * @returns entries, sorted by name, the host's entry of an image first
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { loadImage, packDirectory, Store } from "@ocipkg/cli";
   * import { formatPlatform } from "@ocipkg/cli/oci";
   * const tmp = await Deno.makeTempDir();
   * await Deno.mkdir(`${tmp}/pkg`);
   * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "no binaries: fits any platform");
   * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
   * const store = new Store(`${tmp}/store`);
   * await loadImage(`${tmp}/foo.tar`, { store }); // for this host
   * await loadImage(`${tmp}/foo.tar`, { store, platform: { os: "linux", architecture: "riscv64" } });
   * const listed = (await store.list()).map((e) =>
   *   `${e.name} ${e.platform ? formatPlatform(e.platform) : "(this host's)"}`
   * );
   * assert.deepEqual(listed, ["example.com/foo:1 (this host's)", "example.com/foo:1 linux/riscv64"]);
   * await Deno.remove(tmp, { recursive: true });
   * ```
   */
  async list(): Promise<StoreEntry[]> {
    const { listEntries } = await import("./entries.ts");
    return await listEntries(this.root);
  }

  /**
   * Install an image from any source target: each layer is fetched once and
   * streamed both into a temp directory's `.oci-dir` (verified) and into the
   * extractor; the rest of the graph is copied; then the directory is renamed
   * into place — only when every blob has verified. An image already present is left
   * alone unless `force`.
   *
   * The install is for one platform (`options.platform`, else the host's),
   * into that platform's entry ({@link Store.entryPath}); another platform's
   * entry of the same image is never touched. From an index the platform's
   * manifest is picked; a manifest that declares another platform (on its
   * descriptor or in its `vnd.ocipkg.platform` annotation) is refused; one
   * that declares none has the headers of its binaries checked (ELF, Mach-O,
   * PE, static libraries: see {@link checkBinaryPlatforms}) before anything
   * is committed. The entry records the platform it was installed for.
   *
   * @param src where the image is
   * @param root root descriptor in `src` (manifest or index)
   * @param name name to install it under
   * @param options force, platform, caps, concurrency
   * @returns what happened
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ImageName, OciArchive, packDirectory, Store } from "@ocipkg/cli";
   * const tmp = await Deno.makeTempDir();
   * await Deno.mkdir(`${tmp}/pkg`);
   * await Deno.writeTextFile(`${tmp}/pkg/a.txt`, "a");
   * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
   * const store = new Store(`${tmp}/store`);
   * const src = await OciArchive.open(`${tmp}/foo.tar`);
   * const name = ImageName.parse("example.com/foo:1");
   * const r = await store.install(src, await src.resolve(), name, { maxBytes: 1 << 20 });
   * await src.close();
   * assert.equal(r.status, "installed");
   * assert.equal(await Deno.readTextFile(`${r.dir}/a.txt`), "a");
   * await Deno.remove(tmp, { recursive: true });
   * ```
   */
  async install(
    src: ReadTarget,
    root: Descriptor,
    name: ImageName,
    options: InstallOptions = {},
  ): Promise<InstallResult> {
    const platform = options.platform ?? hostPlatform();
    const dir = this.imageDir(name, platform);
    if (name.digest !== undefined && name.digest !== root.digest) {
      throw new VerificationError(
        `image '${name}' is pinned to ${name.digest}, but its source holds ${root.digest}`,
      );
    }
    if (!options.force && await this.has(name, platform)) {
      return { name, dir, digest: root.digest, status: "present" };
    }
    const where = `image '${name}'`;
    const [
      { pickVariant },
      { declaredPlatform, packageFiles, streamInstall },
      { checkBinaryPlatforms },
    ] = await Promise.all([
      import("../transport/variants.ts"),
      import("./extract_image.ts"),
      import("../oci/binary_platform.ts"),
    ]);
    const parent = dirname(dir);
    await Deno.mkdir(parent, { recursive: true });
    await cleanStaleTemps(parent);
    const tmp = trackTemp(join(parent, `${TMP_PREFIX}${Deno.pid}-${crypto.randomUUID()}`));
    try {
      // private while it is written: no other user can touch it
      await makePrivateDir(tmp);
      // an index: the platform's manifest; one manifest: refused when it declares another
      const manifestDesc = await pickVariant(src, root, platform, where);
      if (options.manifestDigest !== undefined && manifestDesc.digest !== options.manifestDigest) {
        throw new VerificationError(
          `${where}: the manifest for ${
            formatPlatform(platform)
          } is ${manifestDesc.digest}, not the ${options.manifestDigest} asked for`,
        );
      }
      const { OciDir } = await import("../transport/layout/oci_dir.ts");
      const layout = await OciDir.open(join(tmp, LAYOUT_DIR), { create: true });
      const manifest = await streamInstall(src, layout, manifestDesc, tmp, name, options);
      const declared = manifestDesc.platform ?? declaredPlatform(manifest);
      // declaring no platform, it fits any — unless its binaries say otherwise
      if (!declared) await checkBinaryPlatforms(await packageFiles(tmp), platform, where);
      // the entry records the platform it is for
      await layout.tag({ ...manifestDesc, platform: declared ?? platform }, name.toString());
      await layout.close();
      await Deno.chmod(tmp, 0o755);
      return await this.#commit(
        tmp,
        dir,
        name,
        platform,
        manifestDesc.digest,
        options.force ?? false,
      );
    } catch (e) {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
      await this.#pruneEmpty(parent);
      throw e;
    } finally {
      releaseTemp(tmp);
    }
  }

  /** Remove now-empty parent directories up to the root (never a non-empty one). */
  async #pruneEmpty(dir: string): Promise<void> {
    while (dir.startsWith(this.root) && dir !== this.root) {
      try {
        await Deno.remove(dir);
      } catch {
        return;
      }
      dir = dirname(dir);
    }
  }

  /**
   * Run `fn` holding the store's lock (an exclusive lock on `<root>/.lock`,
   * shared by every process using this store). Only the short commit and
   * remove steps run under it.
   */
  async #locked<T>(fn: () => Promise<T>): Promise<T> {
    await Deno.mkdir(this.root, { recursive: true });
    const file = await Deno.open(join(this.root, ".lock"), {
      read: true,
      write: true,
      create: true,
      mode: 0o644,
    });
    try {
      await file.lock(true);
      return await fn();
    } finally {
      file.close(); // releases the lock
    }
  }

  /**
   * Put a finished temp directory in place. The image path is a symlink to a
   * versioned sibling directory (`.__<ref>.v-<id>`), replaced by renaming a
   * new symlink over it: a reader sees the old image or the new one, never
   * nothing, and concurrent replacements all succeed (last one wins). Where
   * symlinks are not available (Windows), or the image is a directory made
   * by an older version, the directory itself is renamed into place.
   */
  #commit(
    tmp: string,
    dir: string,
    name: ImageName,
    platform: Platform,
    digest: string,
    force: boolean,
  ): Promise<InstallResult> {
    return this.#locked(async () => {
      if (!force && await this.has(name, platform)) {
        // another process installed it first: keep theirs
        await Deno.remove(tmp, { recursive: true }).catch(() => {});
        return { name, dir, digest, status: "present" };
      }
      const parent = dirname(dir);
      const base = basename(dir);
      // the install is the image's first use (use_time.ts); a system that cannot say so still installs
      const now = new Date();
      await Deno.utime(tmp, now, now).catch(() => {});
      if (Deno.build.os === "windows") {
        await replaceDirectory(tmp, dir);
        return { name, dir, digest, status: "installed" };
      }
      const version = `.${base}.v-${crypto.randomUUID()}`;
      await Deno.rename(tmp, join(parent, version));
      const link = join(parent, `.${base}.link-${crypto.randomUUID()}`);
      await Deno.symlink(version, link);
      try {
        await Deno.rename(link, dir);
      } catch {
        // `dir` is a real directory (an older install): swap it out first
        const old = join(parent, `.${base}.v-${crypto.randomUUID()}`);
        await Deno.rename(dir, old);
        await Deno.rename(link, dir);
      }
      await removeVersions(parent, base, version);
      return { name, dir, digest, status: "installed" };
    });
  }

  /**
   * Remove an installed image: the entry of one platform, or (with no
   * platform given) every entry of the image, the host's and other platforms'.
   *
   * @param name image name
   * @param platform the platform whose entry to remove (default: all)
   * @throws {NotFoundError} when there is no such entry
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { loadImage, NotFoundError, packDirectory, Store } from "@ocipkg/cli";
   * const tmp = await Deno.makeTempDir();
   * await Deno.mkdir(`${tmp}/pkg`);
   * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
   * const store = new Store(`${tmp}/store`);
   * const riscv = { os: "linux", architecture: "riscv64" };
   * await loadImage(`${tmp}/foo.tar`, { store });
   * await loadImage(`${tmp}/foo.tar`, { store, platform: riscv });
   * await store.remove("example.com/foo:1", riscv); // that platform's entry only
   * assert.ok(await store.has("example.com/foo:1"));
   * await assert.rejects(store.remove("example.com/foo:1", riscv), NotFoundError);
   * await store.remove("example.com/foo:1"); // every entry
   * assert.deepEqual(await store.list(), []);
   * await Deno.remove(tmp, { recursive: true });
   * ```
   */
  async remove(name: ImageName | string, platform?: Platform): Promise<void> {
    const n = typeof name === "string" ? ImageName.parse(name) : name;
    const dir = this.imageDir(n, platform);
    const parent = dirname(dir);
    const removed = await this.#locked(async () => {
      const bases = platform === undefined
        ? await platformEntries(parent, basename(dir))
        : [basename(dir)];
      let count = 0;
      for (const base of bases) {
        const entry = join(parent, base);
        if (!(await pathExists(entry))) continue;
        const trash = join(parent, `${TMP_PREFIX}${Deno.pid}-rm-${crypto.randomUUID()}`);
        await Deno.rename(entry, trash);
        await Deno.remove(trash, { recursive: true });
        await removeVersions(parent, base);
        count++;
      }
      return count;
    });
    if (removed === 0) {
      const which = platform === undefined ? "" : ` for ${formatPlatform(platform)}`;
      throw new NotFoundError(`image '${n}'${which} is not in the store`);
    }
    await this.#pruneEmpty(parent);
  }

  /**
   * The descriptor an installed image was installed from: its manifest, with
   * the platform it was installed for (the one picked from an index, or
   * declared, or asked for; an entry written by an older version records a
   * platform only when it came from an index).
   *
   * Every cached `get` and `link` asks this, so it reads the entry's
   * `index.json` (a few hundred bytes, through the one index parser)
   * synchronously: no open layout, no thread hand-off per file operation.
   *
   * @param name image name
   * @param platform the platform of the entry (default: the host's)
   * @returns the descriptor (empty when its layout cannot be read), or
   *   undefined when the entry does not exist
   */
  // async for its callers; its reads are synchronous (see above)
  // deno-lint-ignore require-await
  async installedDescriptor(
    name: ImageName | string,
    platform?: Platform,
  ): Promise<Descriptor | undefined> {
    const n = imageName(name);
    const dir = this.imageDir(n, platform);
    const where = `installed image '${n}'`;
    try {
      const read = readSmallFileSync(
        join(dir, LAYOUT_DIR, "index.json"),
        `${where}: index.json`,
        MAX_INDEX_FILE,
      );
      if (read !== undefined) {
        const index = LayoutIndex.parse(read.bytes, where);
        try {
          return index.resolve(n.toString());
        } catch {
          return index.resolve();
        }
      }
    } catch { /* unreadable: below */ }
    // not there, or removed meanwhile (a prune or rm moves it away in one rename): not installed
    if (!isDirectorySync(dir)) return undefined;
    // extracted files without a readable layout (e.g. written by another tool)
    return { mediaType: "", digest: "", size: 0 };
  }

  /**
   * The manifest of an installed image.
   *
   * @param name image name
   * @param platform the platform of the entry (default: the host's)
   * @returns the manifest (annotations, layers)
   * @throws {NotFoundError} when it is not installed
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { loadImage, NotFoundError, packDirectory, Store } from "@ocipkg/cli";
   * const tmp = await Deno.makeTempDir();
   * await Deno.mkdir(`${tmp}/pkg`);
   * const annotations = { "org.opencontainers.image.version": "1.0.0" };
   * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1", annotations });
   * const store = new Store(`${tmp}/store`);
   * await loadImage(`${tmp}/foo.tar`, { store });
   * assert.deepEqual((await store.installedManifest("example.com/foo:1")).annotations, annotations);
   * await assert.rejects(store.installedManifest("example.com/bar:1"), NotFoundError);
   * await Deno.remove(tmp, { recursive: true });
   * ```
   */
  async installedManifest(name: ImageName | string, platform?: Platform): Promise<Manifest> {
    const n = imageName(name);
    const where = `installed image '${n}'`;
    // read synchronously, as installedDescriptor does: every cached `link` asks for it
    const layout = join(this.imageDir(n, platform), LAYOUT_DIR);
    const index = readSmallFileSync(
      join(layout, "index.json"),
      `${where}: index.json`,
      MAX_INDEX_FILE,
    );
    if (index === undefined) {
      const which = isHost(platform) ? "" : ` for ${formatPlatform(platform)}`;
      throw new NotFoundError(`image '${n}'${which} is not in the store`);
    }
    const desc = LayoutIndex.parse(index.bytes, where).resolve(n.toString());
    if (desc.size > MAX_MANIFEST_SIZE) {
      throw new FormatError(`${where}: its manifest is ${desc.size} bytes, over the cap`);
    }
    const path = blobPathIn(layout, desc.digest);
    const blob = readSmallFileSync(path, `${where}: its manifest ${path}`, MAX_MANIFEST_SIZE);
    if (blob === undefined) throw new NotFoundError(`${where}: its manifest ${path} is missing`);
    await verifyBytes(blob.bytes, desc, where); // a store entry is bytes like any other
    const doc = parseManifestDocument(blob.bytes, desc.mediaType, where);
    if (doc.kind !== "manifest") throw new OcipkgError(`${where}: expected a manifest`);
    return doc.manifest;
  }

  /**
   * Open the layout of an installed image.
   *
   * @param name image name
   * @param platform the platform of the entry (default: the host's)
   * @returns its `.oci-dir`
   * @throws {NotFoundError} when it is not installed
   */
  async layout(name: ImageName | string, platform?: Platform): Promise<OciDir> {
    const dir = this.imageDir(name, platform);
    if (!(await pathExists(dir))) {
      const which = isHost(platform) ? "" : ` for ${formatPlatform(platform)}`;
      throw new NotFoundError(`image '${name}'${which} is not in the store`);
    }
    const { OciDir } = await import("../transport/layout/oci_dir.ts");
    return await OciDir.open(join(dir, LAYOUT_DIR));
  }

  // ── Use, size and pruning (use_time.ts, disk_usage.ts, prune.ts) ─────────

  /**
   * Record that an installed image is used now (what `get` and `link` do):
   * the modification time of its directory, moved to now when it is more
   * than an hour old — one `stat`, and at most one write an hour. `prune`
   * with `unusedFor` removes images by it.
   *
   * @param name image name
   * @param platform the platform of the entry (default: the host's)
   * @returns whether the entry is there (false: not installed, or removed
   *   meanwhile by a prune)
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { loadImage, packDirectory, Store } from "@ocipkg/cli";
   * const tmp = await Deno.makeTempDir();
   * await Deno.mkdir(`${tmp}/pkg`);
   * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
   * const store = new Store(`${tmp}/store`);
   * await loadImage(`${tmp}/foo.tar`, { store });
   * const old = new Date(Date.now() - 40 * 24 * 3600 * 1000);
   * await Deno.utime(await Deno.realPath(store.imageDir("example.com/foo:1")), old, old);
   * assert.ok(await store.recordUse("example.com/foo:1"));
   * // used now: a prune of what is unused for 30 days keeps it
   * await store.prune({ unusedFor: 30 * 24 * 3600 * 1000 });
   * assert.ok(await store.has("example.com/foo:1"));
   * assert.equal(await store.recordUse("example.com/bar:1"), false);
   * await Deno.remove(tmp, { recursive: true });
   * ```
   */
  async recordUse(name: ImageName | string, platform?: Platform): Promise<boolean> {
    return await recordUse(this.imageDir(name, platform));
  }

  /**
   * The sizes of the store: each entry's image (its version directory, hard
   * links counted once, links never followed), the rest, and the total —
   * disk usage as `du` counts it.
   *
   * @returns the sizes, entries in the order of {@link Store.list}
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { loadImage, packDirectory, Store } from "@ocipkg/cli";
   * const tmp = await Deno.makeTempDir();
   * await Deno.mkdir(`${tmp}/pkg`);
   * await Deno.writeFile(`${tmp}/pkg/libfoo.a`, new Uint8Array(100_000));
   * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
   * const store = new Store(`${tmp}/store`);
   * await loadImage(`${tmp}/foo.tar`, { store });
   * const usage = await store.usage();
   * assert.equal(String(usage.entries[0]!.entry.name), "example.com/foo:1");
   * assert.ok(usage.entries[0]!.bytes > 100_000); // the file, its layout's copy is compressed
   * assert.equal(usage.total, usage.entries[0]!.bytes + usage.other);
   * await Deno.remove(tmp, { recursive: true });
   * ```
   */
  async usage(): Promise<StoreUsage> {
    const { storeUsage } = await import("./disk_usage.ts");
    return await storeUsage(this.root, await this.list());
  }

  /**
   * Remove what nothing uses: version directories no entry links to, temp
   * directories of processes that are gone, records of what verified for
   * digests no entry holds, directories left empty — and, when asked, images
   * not used for `unusedFor` ms, or not held by the `keepLocked` lock files
   * (with both: images neither keeps). Decided under the store's lock; each
   * thing is moved away with one rename (an entry before its version), then
   * deleted after the lock, so a `get` meanwhile sees a whole image or none.
   *
   * @param options `unusedFor`, `keepLocked`, `dryRun`
   * @returns what was (or would be) removed and the bytes freed
   * @throws {NotFoundError} for a lock file that does not exist
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { loadImage, packDirectory, Store } from "@ocipkg/cli";
   * const tmp = await Deno.makeTempDir();
   * await Deno.mkdir(`${tmp}/pkg`);
   * await packDirectory(`${tmp}/pkg`, `${tmp}/foo.tar`, { name: "example.com/foo:1" });
   * await packDirectory(`${tmp}/pkg`, `${tmp}/bar.tar`, { name: "example.com/bar:1" });
   * const store = new Store(`${tmp}/store`);
   * await loadImage(`${tmp}/foo.tar`, { store });
   * await loadImage(`${tmp}/bar.tar`, { store });
   * // a project's lock holds foo: everything else goes
   * const images = { "example.com/foo:1": { digest: `sha256:${"a".repeat(64)}`, platforms: {} } };
   * await Deno.writeTextFile(`${tmp}/ocipkg.lock`, JSON.stringify({ version: 1, images }));
   * const planned = await store.prune({ keepLocked: [`${tmp}/ocipkg.lock`], dryRun: true });
   * assert.deepEqual(planned.removed.filter((r) => r.kind === "image").map((r) => String(r.name)), [
   *   "example.com/bar:1",
   * ]);
   * assert.ok(await store.has("example.com/bar:1")); // a dry run removes nothing
   * const done = await store.prune({ keepLocked: [`${tmp}/ocipkg.lock`] });
   * assert.equal(done.freed, planned.freed);
   * assert.deepEqual((await store.list()).map((e) => String(e.name)), ["example.com/foo:1"]);
   * await Deno.remove(tmp, { recursive: true });
   * ```
   */
  async prune(options: PruneOptions = {}): Promise<PruneResult> {
    const { finishPrune, planPrune, readLocked } = await import("./prune.ts");
    const locked = options.keepLocked === undefined
      ? undefined
      : await readLocked(options.keepLocked);
    const now = Date.now();
    const plan = await this.#locked(() => planPrune(this.root, options, locked, now));
    return await finishPrune(plan);
  }

  // ── Verified records (verified.ts) ──────────────────────────────────────

  /**
   * Record that the manifest `digest` verified with the keys of these
   * fingerprints (added to those recorded before), so that a cached install
   * needing these keys is not verified again.
   *
   * @param digest the installed manifest's digest
   * @param fingerprints key fingerprints (`keyFingerprint`)
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Store } from "@ocipkg/cli";
   * const tmp = await Deno.makeTempDir();
   * const store = new Store(tmp);
   * const digest = "sha256:" + "a".repeat(64);
   * await store.recordVerified(digest, ["sha256:" + "1".repeat(64)]);
   * await store.recordVerified(digest, ["sha256:" + "2".repeat(64)]);
   * assert.deepEqual(
   *   [...await store.verifiedKeys(digest)].sort(),
   *   ["sha256:" + "1".repeat(64), "sha256:" + "2".repeat(64)],
   * );
   * assert.equal((await store.verifiedKeys("sha256:" + "b".repeat(64))).size, 0);
   * await Deno.remove(tmp, { recursive: true });
   * ```
   */
  async recordVerified(digest: string, fingerprints: string[]): Promise<void> {
    if (fingerprints.length === 0) return;
    const path = verifiedPath(this.root, digest);
    await this.#locked(async () => {
      const known = await this.verifiedKeys(digest);
      for (const f of fingerprints) known.add(f);
      await writeVerifiedRecord(path, digest, known);
    });
  }

  /**
   * The fingerprints of the keys the manifest `digest` verified with, as
   * recorded by {@link Store.recordVerified}; none when there is no readable
   * record (then it is verified again).
   *
   * @param digest the installed manifest's digest
   * @returns the key fingerprints
   */
  async verifiedKeys(digest: string): Promise<Set<string>> {
    return await readVerifiedKeys(this.root, digest);
  }
}
