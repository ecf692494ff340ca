// Commands over a big store and a big lock, checked against a plain model of what they must say:
// `list` and `prune` over a store of 600 repositories (entries linking to versions, versions two
// entries share, other platforms, entries from before versions, stale versions, leftover links,
// temps, a link naming a version of another directory, records), `lock --check` of a lock of 200
// images (one HEAD each; a moved tag, a missing tag, a changed digest and a platform each one
// line), and `get` with a lock of many entries (only its own entry read when it locks the
// platform).
import { join, relative } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import {
  formatPlatform,
  getImage,
  hostPlatform,
  loadImage,
  lockImages,
  packDirectory,
  type Platform,
  type PruneResult,
  pushImage,
  readLockFile,
  serve,
  Store,
} from "./_internal.ts";
import { runCli, samplePackage, withTempDir } from "./_helpers.ts";
import { startFaultProxy } from "./_fault_proxy.ts";
import { scaleTag, writeScaleRepository } from "./_scale_root.ts";

const DAY = 24 * 3600 * 1000;
const RISCV: Platform = { os: "linux", architecture: "riscv64" };

/** Copy a tree with hard links (symlinks as symlinks): a store entry under another name. */
function linkTree(from: string, to: string): void {
  Deno.mkdirSync(to, { recursive: true });
  for (const e of Deno.readDirSync(from)) {
    const a = join(from, e.name);
    const b = join(to, e.name);
    if (e.isDirectory) linkTree(a, b);
    else if (e.isSymlink) Deno.symlinkSync(Deno.readLinkSync(a), b);
    else Deno.linkSync(a, b);
  }
}

/** A version's name (`.__1.v-<uuid>`), numbered `i`; `link`: a link being swapped in. */
const versionName = (i: number, kind = "v") =>
  `.__1.${kind}-00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;

/** A pid that ran and is gone. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true", { stdout: "null", stderr: "null" }).spawn();
  await child.status;
  return child.pid;
}

/** An entry of the model. */
interface Entry {
  name: string;
  platform: string | null;
  dir: string;
  /** The version directory it links to (undefined: it is a directory itself, or links elsewhere). */
  version?: string;
  /** What its use time says: unused for 60 days. */
  old: boolean;
  /** Which real image it is a copy of (none: a link to something else holds nothing). */
  image: "a" | "b" | "none";
  /** An entry from before versions: a directory holding the image itself. */
  dirEntry?: boolean;
}

Deno.test("a store of 600 repositories: list's order and fields, and what prune removes, as the model says", async () => {
  await withTempDir(async (tmp) => {
    const root = join(tmp, "store");
    const store = new Store(root);
    // two real images; every other repository is a hard-linked copy of one of theirs
    const digest: Record<string, string> = {};
    for (const [i, n] of ["a", "b"].entries()) {
      const src = await samplePackage(join(tmp, `src-${n}`), 1000 * (i + 1));
      await packDirectory(src, join(tmp, `${n}.tar`), { name: `example.com/base/${n}:1` });
      digest[n] = (await loadImage(join(tmp, `${n}.tar`), { store })).digest;
    }
    const entries: Entry[] = [];
    const base = (n: "a" | "b") => join(root, "example.com", "base", n);
    for (const n of ["a", "b"] as const) {
      const version = join(base(n), Deno.readLinkSync(join(base(n), "__1")));
      entries.push({
        name: `example.com/base/${n}:1`,
        platform: null,
        dir: join(base(n), "__1"),
        version,
        old: false,
        image: n,
      });
    }
    const stale: string[] = []; // versions and leftover links nothing names
    const temps: string[] = [];
    const locked: string[] = []; // references the lock holds
    const oldTime = new Date(Date.now() - 60 * DAY);
    let mine = "";
    const dead = await deadPid();
    const hosts = ["example.com", "ghcr.io", "localhost__5000"];
    const seps = ["-", ".", "_"]; // localeCompare orders these unlike code units
    for (let i = 0; i < 600; i++) {
      const image = i % 2 ? "b" : "a";
      const host = hosts[i % 3]!;
      const path = `many/img${seps[i % 3]}${i % 97}${seps[(i >> 2) % 3]}${i}`;
      const repo = join(root, host, ...path.split("/"));
      linkTree(base(image), repo);
      const ver = Deno.readLinkSync(join(repo, "__1"));
      const ref = `${host.replace("__", ":")}/${path}`;
      const old = i % 20 === 10 || i % 25 === 2 || i % 20 === 11;
      const add = (tag: string, platform: Platform | undefined, name: string, dir = true) =>
        entries.push({
          name: `${ref}:${tag}`,
          platform: platform ? formatPlatform(platform) : null,
          dir: join(repo, name),
          version: dir ? join(repo, ver) : undefined,
          old,
          image,
          dirEntry: !dir,
        });
      if (i % 40 === 9) {
        // an entry from before versions: a directory
        Deno.removeSync(join(repo, "__1"));
        Deno.renameSync(join(repo, ver), join(repo, "__1"));
        add("1", undefined, "__1", false);
      } else add("1", undefined, "__1");
      if (i % 10 === 1) {
        Deno.symlinkSync(ver, join(repo, "__2")); // a second tag sharing the version
        add("2", undefined, "__2");
      }
      if (i % 25 === 2) {
        Deno.symlinkSync(ver, join(repo, "__1+linux-riscv64"));
        add("1", RISCV, "__1+linux-riscv64");
      }
      if (i % 4 === 0 || i % 20 === 11) locked.push(`${ref}:1`); // __2 of 11 mod 20 is not
      if (i % 50 === 3) {
        linkTree(join(repo, ver), join(repo, versionName(i)));
        stale.push(join(repo, versionName(i)));
      }
      if (i % 100 === 4) {
        Deno.symlinkSync(ver, join(repo, versionName(i, "link")));
        stale.push(join(repo, versionName(i, "link")));
      }
      if (i === 5) {
        Deno.mkdirSync(join(repo, `.tmp-${dead}-gone`));
        temps.push(join(repo, `.tmp-${dead}-gone`));
      }
      if (i === 6) Deno.mkdirSync(mine = join(repo, `.tmp-${Deno.pid}-mine`)); // this process's
      if (old) {
        const home = i % 40 === 9 ? join(repo, "__1") : join(repo, ver);
        Deno.utimeSync(home, oldTime, oldTime);
      }
    }
    // a link naming a version of another directory: that version is in use
    const elsewhere = join(root, "ghcr.io", "many", "other", versionName(9999));
    Deno.mkdirSync(elsewhere, { recursive: true });
    const linker = join(root, "ghcr.io", "many", "linker");
    Deno.mkdirSync(linker, { recursive: true });
    Deno.symlinkSync(relative(linker, elsewhere), join(linker, "__1"));
    entries.push({
      name: "ghcr.io/many/linker:1",
      platform: null,
      dir: join(linker, "__1"),
      old: false,
      image: "none",
    });
    // records of what verified: a's digest is held; another is not
    await store.recordVerified(digest.a!, ["k"]);
    await store.recordVerified(`sha256:${"e".repeat(64)}`, ["k"]);
    const record = join(root, ".verified", `sha256-${"e".repeat(64)}.json`);

    // list: by name (localeCompare), the host's entry before other platforms'; every field
    const { compare } = new Intl.Collator();
    const order = (a: Entry, b: Entry) =>
      compare(a.name, b.name) || compare(a.platform ?? "", b.platform ?? "");
    const expected = [...entries].sort(order);
    const listed = await runCli(["list", "--json"], { dataHome: root });
    assertEquals(listed.code, 0, listed.stderr);
    assertEquals(
      JSON.parse(listed.stdout),
      expected.map(({ name, platform, dir }) => ({ name, platform, dir })),
    );
    const text = await runCli(["list"], { dataHome: root });
    assertEquals(
      text.stdout,
      expected.map((e) => e.platform ? `${e.name} (${e.platform})\n` : `${e.name}\n`).join(""),
    );

    // what a prune removes, by the rules: an image when no option given keeps it; its version
    // with the first of its entries to go (list's order) unless a kept entry names it too; stale
    // versions, the dead temp, the record no kept image holds; repositories left empty
    const model = (goes: (e: Entry) => boolean) => {
      const removed = expected.filter(goes);
      const keptVersions = new Set(expected.filter((e) => !goes(e)).map((e) => e.version));
      const withVersion = new Map<string, Entry>();
      for (const e of removed) {
        if (e.version && !keptVersions.has(e.version) && !withVersion.has(e.version)) {
          withVersion.set(e.version, e);
        }
      }
      const gone = new Set([...removed.map((e) => e.dir), ...withVersion.keys(), ...stale]);
      const repos = new Set([...gone].map((p) => join(p, "..")));
      const empty = [...repos].filter((r) =>
        [...Deno.readDirSync(r)].every((c) => gone.has(join(r, c.name)))
      );
      const held = expected.some((e) => !goes(e) && e.image === "a");
      return {
        image: removed.map((e) => e.dir).sort(),
        bytes: removed.filter((e) => e.dirEntry || withVersion.get(e.version!) === e)
          .map((e) => e.dir).sort(),
        version: [...stale].sort(),
        temp: temps,
        record: held
          ? [record]
          : [record, join(root, ".verified", `${digest.a!.replace(":", "-")}.json`)].sort(),
        directory: empty.sort(),
      };
    };
    const saw = (r: PruneResult) => {
      const of = (kind: string) =>
        r.removed.filter((x) => x.kind === kind).map((x) => x.path).sort();
      return {
        image: of("image"),
        bytes: r.removed.filter((x) => x.kind === "image" && x.bytes > 0).map((x) => x.path).sort(),
        version: of("version"),
        temp: of("temp"),
        record: of("record"),
        directory: of("directory"),
      };
    };
    assertEquals(saw(await store.prune({ dryRun: true })), model(() => false));
    const unusedFor = 30 * DAY;
    assertEquals(saw(await store.prune({ dryRun: true, unusedFor })), model((e) => e.old));
    const lock = join(tmp, "ocipkg.lock");
    const images = Object.fromEntries(
      locked.map((r) => [r, { digest: `sha256:${"c".repeat(64)}`, platforms: {} }]),
    );
    images["example.com/x/y:1"] = { digest: digest.b!, platforms: {} }; // b's copies, by digest
    await Deno.writeTextFile(lock, JSON.stringify({ version: 1, images }));
    const unlocked = (e: Entry) => !locked.includes(e.name) && e.image !== "b";
    const keepLocked = [lock];
    assertEquals(saw(await store.prune({ dryRun: true, keepLocked })), model(unlocked));
    const both = (e: Entry) => e.old && unlocked(e);
    assertEquals(saw(await store.prune({ dryRun: true, keepLocked, unusedFor })), model(both));

    // and for real: what the dry run named is gone, nothing else
    const planned = await store.prune({ dryRun: true, keepLocked, unusedFor });
    const done = await store.prune({ keepLocked, unusedFor });
    assertEquals(
      done.removed.map((x) => [x.kind, x.path, x.bytes]),
      planned.removed.map((x) => [x.kind, x.path, x.bytes]),
    );
    for (const x of done.removed) {
      assertEquals(await Deno.lstat(x.path).then(() => true, () => false), false, x.path);
    }
    assertEquals(
      (await store.list()).map((e) => e.dir),
      expected.filter((e) => !both(e)).map((e) => e.dir),
    );
    for (const e of expected.filter((e) => !both(e) && e.version)) {
      assert((await Deno.stat(e.dir)).isDirectory, e.dir); // its version is there
    }
    assert((await Deno.stat(elsewhere)).isDirectory);
    assert((await Deno.stat(mine)).isDirectory); // a temp of this process is never stale
  });
});

/** The other platform of an index (besides the host's). */
const OTHER: Platform = hostPlatform().architecture === "arm64"
  ? { os: "linux", architecture: "amd64" }
  : { os: "linux", architecture: "arm64" };

/** Pack `pkg` (with `text` in it) for each platform given, push them as `image`; the digests. */
async function publish(
  tmp: string,
  image: string,
  text: string,
  platforms: Platform[] = [],
): Promise<{ digest: string; manifests: string[] }> {
  const pkg = join(tmp, `pkg-${crypto.randomUUID()}`);
  await samplePackage(pkg, 100);
  const archives: string[] = [];
  const manifests: string[] = [];
  for (const platform of platforms.length ? platforms : [undefined]) {
    await Deno.writeTextFile(join(pkg, "README"), `${text} ${formatPlatform(platform)}`);
    const archive = join(tmp, `${crypto.randomUUID()}.tar`);
    manifests.push((await packDirectory(pkg, archive, { name: image, platform })).digest);
    archives.push(archive);
  }
  const pushed = await pushImage(archives.length === 1 ? archives[0]! : archives, image);
  return { digest: pushed.digest, manifests };
}

Deno.test("lock --check of 204 images: one HEAD each that matches; a moved tag, a missing tag, a changed digest, a platform: one line each", async () => {
  await withTempDir(async (tmp) => {
    const root = join(tmp, "registry");
    const app = await writeScaleRepository(root, "many/app", 200, "private");
    const registry = await serve({ root, addr: "127.0.0.1:0", log() {} });
    const proxy = startFaultProxy(registry.addr);
    try {
      const host = proxy.host;
      const lock = join(tmp, "ocipkg.lock");
      const moved = `${host}/one/moved:1`;
      const index = `${host}/one/index:1`;
      const same = `${host}/one/same:1`;
      const v1 = (await publish(tmp, moved, "v1")).digest;
      const idx = await publish(tmp, index, "i", [hostPlatform(), OTHER]);
      await publish(tmp, same, "s");
      await lockImages([moved, same], { lock, policy: false });
      await lockImages([index], { lock, policy: false, platforms: [OTHER] });
      const v2 = (await publish(tmp, moved, "v2")).digest; // the tag moves
      // 200 tags of one repository, locked for the host's platform (one was locked to another
      // digest), and a tag the registry never had
      const file = (await readLockFile(lock))!;
      const host_ = formatPlatform(hostPlatform());
      const other = `sha256:${"d".repeat(64)}`;
      for (let i = 0; i < 200; i++) {
        const d = i === 7 ? other : app.manifest.digest;
        file.images[`${host}/many/app:${scaleTag(i)}`] = { digest: d, platforms: { [host_]: d } };
      }
      const missing = `${host}/many/app:nightly-9999999`;
      file.images[missing] = { digest: app.manifest.digest, platforms: {} };
      // the index's platform locked to another manifest (the root is the same)
      const otherKey = formatPlatform(OTHER);
      assertEquals(file.images[index]!.platforms[otherKey], idx.manifests[1]);
      file.images[index]!.platforms[otherKey] = idx.manifests[0]!;
      await Deno.writeTextFile(lock, JSON.stringify(file));

      const lines = [
        `${host}/many/app:${scaleTag(7)}: locked ${other}, the registry has ${app.manifest.digest}`,
        `${missing}: locked ${app.manifest.digest}, the registry has no such tag`,
        `${index} (${otherKey}): locked ${idx.manifests[0]}, the registry has ${idx.manifests[1]}`,
        `${moved}: locked ${v1}, the registry has ${v2}`,
      ];
      const check = async () => {
        proxy.log.length = 0;
        const r = await runCli(["lock", "--check", "--lock", lock]);
        assertEquals(r.code, 1, r.stderr);
        assertEquals(r.stdout, lines.map((l) => `${l}\n`).join(""));
        assertEquals(
          r.stderr.trim(),
          `error: ${lock}: 4 of 204 locked images no longer match their registry ('ocipkg lock --update' moves them)`,
        );
        const of = (method: string) =>
          proxy.log.filter((x) => x.method === method && x.path.includes("/many/app/manifests/"))
            .length;
        return { heads: of("HEAD"), gets: of("GET") };
      };
      // each tag that matches: one HEAD (its Docker-Content-Digest); the two that do not, a GET
      assertEquals(await check(), { heads: 201, gets: 2 });
      // a registry that answers HEAD without the digest: the manifest itself, hashed
      proxy.rules.headDigest = null;
      const without = await check();
      assertEquals(without.heads, 201);
      assert(without.gets >= 201, `${without.gets} GETs`);
      // a HEAD that names another digest decides nothing alone: the manifest is fetched, verified
      proxy.rules.headDigest = `sha256:${"f".repeat(64)}`;
      assertEquals(await check(), { heads: 201, gets: 201 });
      delete proxy.rules.headDigest;

      // each reference once, however often it is named
      proxy.log.length = 0;
      const twice = await runCli(["lock", "--check", "--lock", lock, same, same]);
      assertEquals(twice.code, 0, twice.stderr);
      assertEquals(twice.stdout, `${lock}: 1 locked image matches its registry\n`);
      assertEquals(
        proxy.log.map((x) => `${x.method} ${x.path}`),
        [`HEAD /v2/one/same/manifests/1`],
      );
    } finally {
      await proxy.stop();
      await registry.close();
    }
  });
});

Deno.test("get with a lock of 300 entries: a cached get reads its own entry; one that would change the lock checks every entry first", async () => {
  await withTempDir(async (tmp) => {
    const registry = await serve({ root: join(tmp, "registry"), addr: "127.0.0.1:0", log() {} });
    try {
      const image = `${registry.addr}/one/app:1`;
      const { digest } = await publish(tmp, image, "a");
      const store = new Store(join(tmp, "store"));
      const lock = join(tmp, "ocipkg.lock");
      assertEquals((await getImage(image, { store, lock })).digest, digest); // installs, locks
      const file = (await readLockFile(lock))!;
      for (let i = 0; i < 300; i++) {
        file.images[`${registry.addr}/many/app:${scaleTag(i)}`] = { digest, platforms: {} };
      }
      // and one entry no lock may hold
      const text = JSON.stringify(file).replace(
        `"${registry.addr}/many/app:${scaleTag(299)}":{"digest":"${digest}"`,
        `"${registry.addr}/many/app:${scaleTag(299)}":{"digest":"sha256:xyz"`,
      );
      assert(text.includes("sha256:xyz"));
      await Deno.writeTextFile(lock, text);
      // cached: the entry locks this platform, nothing will be written: it alone is read
      await registry.close();
      const again = await getImage(image, { store, lock, locked: true });
      assertEquals([again.status, again.digest], ["present", digest]);
      // another platform would be added to the entry: the whole file is checked before anything
      // is fetched, and refused naming the file and the entry at fault
      const err = await assertRejects(() => getImage(image, { store, lock, platform: RISCV }));
      assertStringIncludes((err as Error).message, `${lock}: "${registry.addr}/many/app:`);
      assertStringIncludes((err as Error).message, "bad 'digest'");
      assertEquals((await store.list()).length, 1);
    } finally {
      await registry.close().catch(() => {});
    }
  });
});
