/**
 * The entries of a store: every `__<reference>[+<platform>]` below its root
 * (a directory, or a symlink to a version directory), found by walking the
 * directories whose names do not start with `.` or `__`.
 *
 * @module
 */
import { join, relative, sep } from "../util/path.ts";
import { fsError } from "../util/errors.ts";
import type { Platform } from "../oci/manifest.ts";
import { formatPlatform } from "../oci/platform.ts";
import { ImageName } from "../oci/reference.ts";
import { parsePlatformKey } from "./paths.ts";

/** An installed image: what `Store.list` returns. */
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
 * Every entry below a store's root.
 *
 * @param root the store's root
 * @returns entries, sorted by name, the host's entry of an image first
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listEntries } from "./entries.ts";
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/example.com/foo/__1+linux-riscv64`, { recursive: true });
 * await Deno.mkdir(`${root}/example.com/foo/__1`);
 * await Deno.mkdir(`${root}/example.com/foo/.__1.v-not-an-entry`);
 * const found = (await listEntries(root)).map((e) => `${e.name} ${e.platform?.architecture ?? "host"}`);
 * assert.deepEqual(found, ["example.com/foo:1 host", "example.com/foo:1 riscv64"]);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function listEntries(root: string): Promise<StoreEntry[]> {
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
          const segments = relative(root, join(dir, base)).split(sep);
          const entry: StoreEntry = { name: ImageName.fromStorePath(segments), dir: p };
          if (platform) entry.platform = platform;
          out.push(entry);
        } catch { /* not an image directory */ }
      } else if (e.isDirectory) await walk(p);
    }
  };
  await walk(root);
  const key = (e: StoreEntry) => e.platform ? formatPlatform(e.platform) : "";
  return out.sort((a, b) =>
    a.name.toString().localeCompare(b.name.toString()) || key(a).localeCompare(key(b))
  );
}
