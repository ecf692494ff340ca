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
 * @module
 */
import { basename, dirname, join, relative, sep } from "../util/path.ts";
import { copyGraph } from "../transport/copy.ts";
import { checkBinaryPlatforms } from "../oci/binary_platform.ts";
import {
  fsError,
  NotFoundError,
  OcipkgError,
  UsageError,
  VerificationError,
} from "../util/errors.ts";
import { parseDigest, vouch, vouchedFor } from "../oci/digest.ts";
import { ExtractBudget, type ExtractLimits } from "../archive/budget.ts";
import { checkLinks, extractFile, extractLayer } from "../archive/extract.ts";
import { atomicWriteFile, pathExists, releaseTemp, trackTemp } from "../util/fs_util.ts";
import { OciDir } from "../transport/layout/oci_dir.ts";
import {
  type Descriptor,
  type Manifest,
  parseManifestDocument,
  type Platform,
} from "../oci/manifest.ts";
import {
  ANNOTATION_PLATFORM,
  layerCompression,
  OCIPKG_ARTIFACT,
  OCIPKG_CONFIG,
} from "../oci/media_types.ts";
import { formatPlatform, hostPlatform, parsePlatform, platformMatches } from "../oci/platform.ts";
import { pickVariant } from "../transport/variants.ts";
import { ImageName, imageName } from "../oci/reference.ts";
import { printable } from "../util/text.ts";
import { fetchBytes, type ReadTarget } from "../transport/target.ts";
import { type BoundedTee, teeBounded } from "../util/tee.ts";
import { RegistryError } from "../transport/registry/errors.ts";
import type { CopyEvent, CopyOptions } from "../transport/copy.ts";

/** Name of the layout directory kept inside every installed image. */
export const LAYOUT_DIR = ".oci-dir";
const TMP_PREFIX = ".tmp-";

/**
 * The data directory of "ocipkg": `$OCIPKG_DATA_DIR` if set; else on Linux
 * `$XDG_DATA_HOME/ocipkg` or `~/.local/share/ocipkg`; on macOS
 * `~/Library/Application Support/ocipkg`; on Windows `%APPDATA%\ocipkg\data`.
 *
 * @returns absolute path
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dataDir, Store } from "@ocipkg/cli";
 * const saved = Deno.env.get("OCIPKG_DATA_DIR");
 * Deno.env.set("OCIPKG_DATA_DIR", "/srv/ocipkg"); // e.g. a cache shared by CI jobs
 * assert.equal(dataDir(), "/srv/ocipkg");
 * assert.equal(new Store().root, "/srv/ocipkg"); // the default store
 * if (saved === undefined) Deno.env.delete("OCIPKG_DATA_DIR");
 * else Deno.env.set("OCIPKG_DATA_DIR", saved);
 * ```
 */
export function dataDir(): string {
  const env = (k: string) => Deno.env.get(k) || undefined;
  const own = env("OCIPKG_DATA_DIR");
  if (own) return own;
  const home = env("HOME") ?? env("USERPROFILE") ?? ".";
  switch (Deno.build.os) {
    case "darwin":
      return join(home, "Library", "Application Support", "ocipkg");
    case "windows":
      return join(env("APPDATA") ?? join(home, "AppData", "Roaming"), "ocipkg", "data");
    default:
      return join(env("XDG_DATA_HOME") ?? join(home, ".local", "share"), "ocipkg");
  }
}

/** Options of {@link Store.install}. */
export interface InstallOptions
  extends Pick<CopyOptions, "concurrency" | "onProgress" | "progressBytes">, ExtractLimits {
  /** Replace an installed copy (of this platform). */
  force?: boolean;
  /**
   * Platform to install for (the host's by default): picked from an index;
   * a manifest that declares another is refused; one that declares none has
   * its binaries checked. Each platform has its own store entry.
   */
  platform?: Platform;
}

/** An installed image: what {@link Store.list} returns. */
export interface StoreEntry {
  /** The image. */
  name: ImageName;
  /**
   * The platform of an entry for another platform than the host's
   * (`__<reference>+<platform>`); undefined for the host's entry (`__<reference>`).
   */
  platform?: Platform;
  /** Its directory. */
  dir: string;
}

/**
 * One part of a platform (os, architecture, variant) in a store path:
 * lower-case letters, digits, `.` and `_` (what OCI platforms use).
 */
const KEY_PART = /^[a-z0-9][a-z0-9._]{0,31}$/;

/**
 * The platform part of a non-host entry's directory name: `os-arch[-variant]`,
 * the variant `v8` of arm64 (its only one) left out. The directory is
 * `__<reference>+<key>`, chosen so that
 *
 * - no tag or digest directory can be one: `+` is outside the tag grammar
 *   (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`) and digest directories
 *   (`sha256__<hex>`), so the reference ends at the first `+`;
 * - it is portable: no character that Windows, macOS or Linux file systems
 *   reserve, and lower-case only (no clash on case-insensitive ones);
 * - it is safe in linker flags and build files: no `,` (the compiler splits
 *   `-Wl,` at commas), `:` (rpath and PKG_CONFIG_PATH separator), `;`, `$`
 *   (loader tokens, pkg-config variables), quotes or spaces.
 *
 * @throws {UsageError} for a platform whose parts are not {@link KEY_PART}
 */
function platformKey(p: Platform): string {
  const variant = p.architecture === "arm64" && p.variant === "v8" ? undefined : p.variant;
  const parts = variant ? [p.os, p.architecture, variant] : [p.os, p.architecture];
  if (!parts.every((x) => KEY_PART.test(x))) {
    throw new UsageError(
      `invalid platform '${
        printable(formatPlatform(p))
      }': its os, architecture and variant must be lower-case letters, digits, '.' or '_'`,
    );
  }
  return parts.join("-");
}

/** The platform of a key, or undefined when it is not one. */
function parsePlatformKey(key: string): Platform | undefined {
  const parts = key.split("-");
  if (parts.length < 2 || parts.length > 3 || !parts.every((x) => KEY_PART.test(x))) {
    return undefined;
  }
  const p: Platform = { os: parts[0]!, architecture: parts[1]! };
  if (parts[2]) p.variant = parts[2];
  return p;
}

/** Whether a platform's entry is the host's (`__<reference>`). */
function isHost(p: Platform | undefined): boolean {
  return p === undefined || platformKey(p) === platformKey(hostPlatform());
}

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
   * import { hostPlatform, Store } from "@ocipkg/cli";
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
   * import { formatPlatform, loadImage, packDirectory, Store } from "@ocipkg/cli";
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
    const out: StoreEntry[] = [];
    const walk = async (dir: string) => {
      let entries: Deno.DirEntry[];
      try {
        entries = await Array.fromAsync(Deno.readDir(dir));
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return;
        throw fsError(e, "store directory", dir);
      }
      for (const e of entries) {
        if (e.name.startsWith(".")) continue;
        const p = join(dir, e.name);
        if (e.name.startsWith("__") && (e.isDirectory || e.isSymlink)) {
          const plus = e.name.indexOf("+");
          const base = plus < 0 ? e.name : e.name.slice(0, plus);
          const platform = plus < 0 ? undefined : parsePlatformKey(e.name.slice(plus + 1));
          if (plus >= 0 && !platform) continue; // not an entry of this store
          try {
            const segments = relative(this.root, join(dir, base)).split(sep);
            const entry: StoreEntry = { name: ImageName.fromStorePath(segments), dir: p };
            if (platform) entry.platform = platform;
            out.push(entry);
          } catch { /* not an image directory */ }
        } else if (e.isDirectory) await walk(p);
      }
    };
    await walk(this.root);
    const key = (e: StoreEntry) => e.platform ? formatPlatform(e.platform) : "";
    return out.sort((a, b) =>
      a.name.toString().localeCompare(b.name.toString()) || key(a).localeCompare(key(b))
    );
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
    const parent = dirname(dir);
    await Deno.mkdir(parent, { recursive: true });
    await cleanStaleTemps(parent);
    const tmp = trackTemp(join(parent, `${TMP_PREFIX}${Deno.pid}-${crypto.randomUUID()}`));
    try {
      // private while it is written: no other user can touch it
      await Deno.mkdir(tmp, { mode: 0o700 });
      // an index: the platform's manifest; one manifest: refused when it declares another
      const manifestDesc = await pickVariant(src, root, platform, where);
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
        const trash = join(parent, `${TMP_PREFIX}rm-${crypto.randomUUID()}`);
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
   * @param name image name
   * @param platform the platform of the entry (default: the host's)
   * @returns the descriptor (empty when its layout cannot be read), or
   *   undefined when the entry does not exist
   */
  async installedDescriptor(
    name: ImageName | string,
    platform?: Platform,
  ): Promise<Descriptor | undefined> {
    const n = imageName(name);
    if (!(await isDirectory(this.imageDir(n, platform)))) return undefined;
    try {
      const layout = await this.layout(n, platform);
      try {
        return await layout.resolve(n.toString()).catch(() => layout.resolve());
      } finally {
        await layout.close();
      }
    } catch {
      // extracted files without a readable layout (e.g. written by another tool)
      return { mediaType: "", digest: "", size: 0 };
    }
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
    const layout = await this.layout(n, platform);
    try {
      const desc = await layout.resolve(n.toString());
      const where = `installed image '${n}'`;
      const doc = parseManifestDocument(
        await fetchBytes(layout, desc, where),
        desc.mediaType,
        where,
      );
      if (doc.kind !== "manifest") throw new OcipkgError(`${where}: expected a manifest`);
      return doc.manifest;
    } finally {
      await layout.close();
    }
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
    return await OciDir.open(join(dir, LAYOUT_DIR));
  }

  // ── Verified records ────────────────────────────────────────────────────
  // `<root>/.verified/<alg>-<hex>.json` = {"digest", "keys": [fingerprints]}: the keys an
  // installed manifest verified with. What must verify is decided in lib/sign/policy.ts.

  /** The record file of a manifest digest. */
  #verifiedPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.root, ".verified", `${algorithm}-${hex}.json`);
  }

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
    const path = this.#verifiedPath(digest);
    await this.#locked(async () => {
      const known = await this.verifiedKeys(digest);
      for (const f of fingerprints) known.add(f);
      await Deno.mkdir(dirname(path), { recursive: true });
      const body = JSON.stringify({ digest, keys: [...known].sort() }) + "\n";
      await atomicWriteFile(path, new TextEncoder().encode(body));
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
    try {
      const path = this.#verifiedPath(digest);
      const st = await Deno.stat(path);
      if (!st.isFile || st.size > MAX_VERIFIED_RECORD) return new Set();
      const v = JSON.parse(await Deno.readTextFile(path));
      if (v?.digest === digest && Array.isArray(v.keys)) {
        return new Set(v.keys.filter((k: unknown): k is string => typeof k === "string"));
      }
    } catch { /* absent or unreadable: as if unverified */ }
    return new Set();
  }
}

/** A verified record larger than this is not read (one holds a few fingerprints). */
const MAX_VERIFIED_RECORD = 64 * 1024;

/**
 * Copy the image into the layout with the one copy routine, extracting each
 * layer from the bytes on their way (a bounded tee: the layout branch is
 * verified, the other feeds the extractor), so every layer is fetched once
 * and concurrency, retries and progress cover every blob. Any failure fails
 * both sides and the whole call; bytes that fail their digest, or a transfer
 * that broke, are reported before the extractor's complaint about them.
 */
async function streamInstall(
  src: ReadTarget,
  layout: OciDir,
  manifestDesc: Descriptor,
  dest: string,
  name: ImageName,
  options: InstallOptions,
): Promise<Manifest> {
  const where = `image '${name}'`;
  const manifest = await readManifest(src, manifestDesc, where);
  const slots = new Map<string, LayerSlot>();
  for (const layer of manifest.layers) {
    if (extracts(layer)) slots.set(layer.digest, slot());
  }
  const tees: BoundedTee[] = [];
  const onProgress = (e: CopyEvent) => {
    if (e.kind === "done") slots.get(e.desc.digest)?.pushed.resolve();
    options.onProgress?.(e);
  };
  const copying = copyGraph(src, layout, manifestDesc, {
    ...options,
    onProgress,
    onBlob: (desc, content) => {
      const s = slots.get(desc.digest);
      if (!s) return content;
      if (s.given) throw new OcipkgError(`${where}: layer ${desc.digest} cannot be fetched twice`);
      s.given = true;
      const tee = teeBounded(content);
      tees.push(tee);
      s.stream.resolve(tee.branches[1]);
      // the same bytes: the copy's verified stream vouches for its branch too
      return vouch(tee.branches[0], vouchedFor(content) ?? {});
    },
  });
  copying.catch((e) => {
    for (const s of slots.values()) s.stream.reject(e), s.pushed.reject(e);
  });
  try {
    await extractImage(src, manifestDesc, dest, name, {
      ...options,
      manifest,
      fetchLayer: async (layer) => {
        const s = slots.get(layer.digest)!;
        if (!s.used) {
          s.used = true;
          return await s.stream.promise;
        }
        // the same layer again: read it back from the layout once it is there
        await s.pushed.promise;
        return await layout.fetch(layer);
      },
    });
    await copying;
  } catch (e) {
    // let the verifying side finish: its error is the real fault behind an extraction error
    for (const tee of tees) tee.detach(1);
    const copied = await copying.then(() => undefined, (reason: unknown) => reason);
    if (copied instanceof VerificationError || copied instanceof RegistryError) throw copied;
    throw e;
  }
  return manifest;
}

/** The platform a manifest declares in its `vnd.ocipkg.platform` annotation, if any. */
function declaredPlatform(manifest: Manifest): Platform | undefined {
  const packed = manifest.annotations?.[ANNOTATION_PLATFORM];
  try {
    return packed ? parsePlatform(packed) : undefined;
  } catch {
    return undefined; // not a platform: the manifest says nothing we can use
  }
}

/**
 * The regular files of an extracted package (not its `.oci-dir`), sorted,
 * each with its `/`-separated name in the package.
 */
async function packageFiles(dir: string): Promise<{ path: string; name: string }[]> {
  const out: { path: string; name: string }[] = [];
  const walk = async (abs: string, rel: string) => {
    for await (const e of Deno.readDir(abs)) {
      if (rel === "" && e.name === LAYOUT_DIR) continue;
      const name = rel ? `${rel}/${e.name}` : e.name;
      if (e.isFile) out.push({ path: join(abs, e.name), name });
      else if (e.isDirectory) await walk(join(abs, e.name), name);
    }
  };
  await walk(dir, "");
  return out.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** Whether a path is a directory (following symlinks). */
async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return false;
    throw e;
  }
}

/** The entries of an image in `parent`: the host's `base` and other platforms' `base+…`. */
async function platformEntries(parent: string, base: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(parent)) {
      if (e.name === base || e.name.startsWith(`${base}+`)) out.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw fsError(e, "store directory", parent);
  }
  return out.sort();
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

/** A layer being extracted while it is copied. */
interface LayerSlot {
  /** The extractor's branch of the tee, once the copy starts the blob. */
  stream: Deferred<ReadableStream<Uint8Array>>;
  /** Settles when the layout holds the blob (verified). */
  pushed: Deferred<void>;
  /** The copy handed out the stream. */
  given: boolean;
  /** The extractor took it. */
  used: boolean;
}

function slot(): LayerSlot {
  const s = {
    stream: Promise.withResolvers<ReadableStream<Uint8Array>>(),
    pushed: Promise.withResolvers<void>(),
    given: false,
    used: false,
  };
  s.stream.promise.catch(() => {});
  s.pushed.promise.catch(() => {});
  return s;
}

async function readManifest(src: ReadTarget, desc: Descriptor, where: string): Promise<Manifest> {
  const doc = parseManifestDocument(
    await fetchBytes(src, desc, where),
    desc.mediaType,
    `manifest of ${where}`,
  );
  if (doc.kind !== "manifest") throw new OcipkgError(`${where}: expected a manifest`);
  return doc.manifest;
}

/** Whether {@link extractImage} extracts a layer: a tar layer, or a file titled by annotation. */
function extracts(layer: Descriptor): boolean {
  return layerCompression(layer.mediaType) !== undefined || !!layer.annotations?.[TITLE];
}

const TITLE = "org.opencontainers.image.title";

/** Replace a directory by another one with two renames (no symlinks). */
async function replaceDirectory(tmp: string, dir: string): Promise<void> {
  try {
    await Deno.rename(tmp, dir);
    return;
  } catch (e) {
    if (!(await pathExists(dir))) throw fsError(e, "store directory", dir);
  }
  const trash = join(dirname(dir), `${TMP_PREFIX}old-${crypto.randomUUID()}`);
  await Deno.rename(dir, trash);
  await Deno.rename(tmp, dir);
  await Deno.remove(trash, { recursive: true }).catch(() => {});
}

/** Remove the versions of an entry (`.<base>.v-<uuid>`, `.<base>.link-<uuid>`) except `keep`. */
async function removeVersions(parent: string, base: string, keep?: string): Promise<void> {
  for await (const e of Deno.readDir(parent)) {
    // exactly `.<base>.v-<uuid>`: not the versions of `<base>.v-2` (a tag may hold `.v-`)
    const rest = e.name.startsWith(`.${base}.`) ? e.name.slice(base.length + 2) : "";
    const mine = /^(?:v|link)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(
      rest,
    );
    if (mine && e.name !== keep) {
      await Deno.remove(join(parent, e.name), { recursive: true }).catch(() => {});
    }
  }
}

/**
 * Remove temp directories left by interrupted installs: those of processes
 * that no longer run (on Linux, where `/proc` tells), else those older than a
 * day.
 */
async function cleanStaleTemps(parent: string): Promise<void> {
  const cutoff = Date.now() - 24 * 3600 * 1000;
  try {
    for await (const e of Deno.readDir(parent)) {
      if (!e.name.startsWith(TMP_PREFIX)) continue;
      const p = join(parent, e.name);
      const pid = /^\.tmp-(\d+)-/.exec(e.name)?.[1];
      let stale = false;
      if (pid !== undefined && Deno.build.os === "linux") {
        stale = Number(pid) !== Deno.pid && !(await pathExists(`/proc/${pid}`));
      } else {
        const st = await Deno.lstat(p).catch(() => null);
        stale = st?.mtime !== null && st?.mtime !== undefined && st.mtime.getTime() < cutoff;
      }
      if (stale) await Deno.remove(p, { recursive: true }).catch(() => {});
    }
  } catch { /* best effort */ }
}

/** Options of {@link extractImage}. */
export interface ExtractImageOptions extends ExtractLimits {
  /** The manifest, when the caller has read it already. */
  manifest?: Manifest;
  /** Where layer bytes come from (default: `layout.fetch`). */
  fetchLayer?: (layer: Descriptor) => Promise<ReadableStream<Uint8Array>>;
}

/**
 * Extract an image's layers from a layout into `dest`: tar layers
 * (ocipkg v1, v0 and container layers, with whiteouts for the latter), and
 * non-tar layers titled with `org.opencontainers.image.title` (ORAS files)
 * written as files. The blobs must be verified — before extraction, or (as
 * {@link Store.install} does) before the extracted directory is used.
 *
 * @param layout where the blobs are
 * @param manifestDesc the manifest
 * @param dest destination directory
 * @param name names the image in errors
 * @param caps optional byte/entry caps, and a layer fetcher
 */
export async function extractImage(
  layout: ReadTarget,
  manifestDesc: Descriptor,
  dest: string,
  name: ImageName,
  caps: ExtractImageOptions = {},
): Promise<void> {
  const fetchLayer = caps.fetchLayer ?? ((l: Descriptor) => layout.fetch(l));
  const where = `image '${name}'`;
  const m: Manifest = caps.manifest ?? await readManifest(layout, manifestDesc, where);
  const isOcipkg = m.artifactType === OCIPKG_ARTIFACT || m.config.mediaType === OCIPKG_CONFIG;
  const budget = new ExtractBudget(caps);
  for (const layer of m.layers) {
    if (!extracts(layer)) continue;
    const what = `layer ${layer.digest} of ${where}`;
    const compression = layerCompression(layer.mediaType);
    if (compression) {
      await extractLayer(await fetchLayer(layer), dest, {
        compression,
        what,
        reserved: [LAYOUT_DIR],
        budget,
        whiteouts: !isOcipkg,
      });
      continue;
    }
    const title = layer.annotations![TITLE]!;
    await extractFile(await fetchLayer(layer), dest, title, layer.size, {
      what,
      reserved: [LAYOUT_DIR],
      budget,
    });
  }
  checkLinks(dest, budget, where, [LAYOUT_DIR]);
}
