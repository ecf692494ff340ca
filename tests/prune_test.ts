// A store you can see and clean: `list --size` (du's count, hard links once, links not followed),
// `prune` (stale versions, dead temps, orphan records; --unused-for, --keep-locked, --dry-run), the
// use time `get` records, and gets racing prunes (never a half-removed image).
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import {
  getImage,
  loadImage,
  NotFoundError,
  packDirectory,
  type PruneResult,
  pushImage,
  Store,
} from "./_internal.ts";
import { CLI, listTree, run, runCli, samplePackage, withTempDir } from "./_helpers.ts";

const DAY = 24 * 3600 * 1000;
const UUID = "00000000-0000-4000-8000-00000000000";

/** `du -sB1`: the bytes a tree takes on disk (hard links once, links not followed). */
async function du(path: string): Promise<number> {
  const r = await run("du", ["-sB1", path]);
  assertEquals(r.code, 0, r.stderr);
  return Number(r.stdout.split("\t")[0]);
}

/** Every name under `dir`, hidden ones too (not inside images). */
async function allNames(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string, rel: string) => {
    for await (const e of Deno.readDir(abs)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory && !e.name.startsWith(".__") && !e.name.startsWith("__")) {
        await walk(join(abs, e.name), r);
      }
    }
  };
  await walk(dir, "").catch(() => {});
  return out.sort();
}

/** Set the use time of an entry's image (its version directory's mtime). */
async function setUsed(store: Store, image: string, at: number) {
  const dir = await Deno.realPath(store.imageDir(image));
  await Deno.utime(dir, new Date(at), new Date(at));
}

/** A pid that ran and is gone. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true", { stdout: "null", stderr: "null" }).spawn();
  await child.status;
  return child.pid;
}

/** The kinds and store-relative paths of what a prune removed. */
const what = (r: PruneResult, root: string) =>
  r.removed.map((x) => `${x.kind} ${x.path.slice(root.length + 1)}`);

Deno.test("prune: stale versions, dead temps, unused and unlocked images, records; dry run, sizes, du", async () => {
  await withTempDir(async (tmp) => {
    const root = join(tmp, "store");
    const store = new Store(root);
    const names = ["a", "b", "c", "d", "e"].map((n) => `example.com/${n}:1`);
    for (const [i, name] of names.entries()) {
      const src = await samplePackage(join(tmp, `src${i}`), 20_000 * (i + 1));
      await packDirectory(src, join(tmp, `${i}.tar`), { name });
      await loadImage(join(tmp, `${i}.tar`), { store });
    }
    // an alias of a (same manifest digest), and a's install for another platform
    await loadImage(join(tmp, "0.tar"), { store, name: "example.com/a:alias" });
    const riscv = { os: "linux", architecture: "riscv64" };
    await loadImage(join(tmp, "0.tar"), { store, platform: riscv });
    const digestOf = async (n: string) => (await store.installedDescriptor(n))!.digest;
    const aDigest = await digestOf(names[0]!);
    const bDigest = await digestOf(names[1]!);
    const dDigest = await digestOf(names[3]!);

    // hard links inside an image count once; a link out of the store is never followed
    const aDir = await Deno.realPath(store.imageDir(names[0]!));
    const outside = join(tmp, "outside");
    await Deno.mkdir(outside);
    await Deno.writeFile(join(outside, "big"), new Uint8Array(1 << 20));
    const before = (await store.usage()).entries[0]!.bytes;
    await Deno.link(join(aDir, "lib", "libfoo.a"), join(aDir, "lib", "hard.a"));
    await Deno.symlink(outside, join(aDir, "out"));
    assertEquals((await store.usage()).entries[0]!.bytes, before);
    assertEquals(before, await du(aDir));

    // use times: a and e used now; b, c, d 40 days ago (the riscv entry and the alias: now)
    const now = Date.now();
    for (const n of [names[1]!, names[2]!, names[3]!]) await setUsed(store, n, now - 40 * DAY);

    // leftovers: a stale version (a's, as an interrupted -f leaves), temps of a dead process
    // (kept: a live process's, this process's), an entry linking out of the store
    const aParent = join(root, "example.com", "a");
    const stale = join(aParent, `.__1.v-${UUID}1`);
    await Deno.mkdir(join(stale, "lib"), { recursive: true });
    await Deno.writeFile(join(stale, "lib", "old.a"), new Uint8Array(300_000));
    const dead = join(aParent, `.tmp-${await deadPid()}-${UUID}2`);
    await Deno.mkdir(dead);
    await Deno.writeFile(join(dead, "partial"), new Uint8Array(100_000));
    const live = join(aParent, `.tmp-1-${UUID}3`); // pid 1 runs
    const mine = join(aParent, `.tmp-${Deno.pid}-${UUID}4`);
    await Deno.mkdir(live);
    await Deno.mkdir(mine);
    await Deno.mkdir(join(root, "example.com", "evil"));
    await Deno.symlink(outside, join(root, "example.com", "evil", "__1"));
    // its use time is the link's own (never followed)
    const touch = await run("touch", [
      "-h",
      "-d",
      "40 days ago",
      join(root, "example.com/evil/__1"),
    ]);
    assertEquals(touch.code, 0, touch.stderr);
    // records: of a (kept, and held by the alias), b (unused: goes), one of no image
    const fp = `sha256:${"f".repeat(64)}`;
    const orphan = `sha256:${"0".repeat(64)}`;
    for (const d of [aDigest, bDigest, orphan]) await store.recordVerified(d, [fp]);

    // sizes: each entry as du counts it, the total is du's of the whole store
    const usage = await store.usage();
    assertEquals(usage.total, await du(root));
    for (const u of usage.entries) {
      if (u.entry.name.toString() === "example.com/evil:1") {
        assertEquals(u.bytes, 0); // the link, not followed
      } else assertEquals(u.bytes, await du(await Deno.realPath(u.entry.dir)));
    }

    // the lock keeps c by reference, d by its platform digest; b is unused and unlocked
    const lock = join(tmp, "ocipkg.lock");
    const images = {
      "example.com/c:1": { digest: `sha256:${"c".repeat(64)}`, platforms: {} },
      "example.com/x:9": {
        digest: `sha256:${"9".repeat(64)}`,
        platforms: { "linux/amd64": dDigest },
      },
    };
    await Deno.writeTextFile(lock, JSON.stringify({ version: 1, images }));
    const options = { unusedFor: 30 * DAY, keepLocked: [lock] };

    const tree = await allNames(root);
    const dry = await store.prune({ ...options, dryRun: true });
    assertEquals(await allNames(root), tree, "a dry run removed something");
    const duBefore = await du(root);
    const done = await store.prune(options);
    const expected = [
      "image example.com/b/__1",
      "image example.com/evil/__1",
      "version example.com/a/" + `.__1.v-${UUID}1`,
      "temp example.com/a/" + `.tmp-${dead.split(".tmp-")[1]}`,
      ...[
        `record .verified/sha256-${bDigest.slice(7)}.json`,
        `record .verified/sha256-${"0".repeat(64)}.json`,
      ].sort(),
      "directory example.com/b",
      "directory example.com/evil",
    ];
    assertEquals(what(done, root), expected);
    assertEquals(what(dry, root), expected);
    assertEquals(done.freed, dry.freed);
    assertEquals(done.freed, duBefore - await du(root), "bytes freed is not du's drop");
    assertEquals(done.removed.reduce((n, x) => n + x.bytes, 0), done.freed);
    // what stays: the rest, the link's target outside the store, live temps
    assertEquals((await store.list()).map((e) => `${e.name}${e.platform ? "+" : ""}`), [
      "example.com/a:1",
      "example.com/a:1+",
      "example.com/a:alias",
      "example.com/c:1",
      "example.com/d:1",
      "example.com/e:1",
    ]);
    assertEquals((await Deno.stat(join(outside, "big"))).size, 1 << 20);
    assert(await Deno.stat(live).then(() => true), "a live process's temp was removed");
    assert(await Deno.stat(mine).then(() => true), "this process's temp was removed");
    assertEquals((await store.verifiedKeys(aDigest)).size, 1);
    assertEquals((await store.verifiedKeys(bDigest)).size, 0);
    assert(!(await allNames(root)).some((n) => n.includes("prune")), "prune left its trash");
    // a second prune finds nothing
    assertEquals((await store.prune(options)).removed, []);

    // --keep-locked alone: every image the lock does not hold (the rest of the store stays)
    const unlocked = await store.prune({ keepLocked: [lock] });
    assertEquals(
      unlocked.removed.filter((x) => x.kind === "image").map((x) => String(x.name)),
      ["example.com/a:1", "example.com/a:1", "example.com/a:alias", "example.com/e:1"],
    );
    assertEquals((await store.list()).map((e) => String(e.name)), [
      "example.com/c:1",
      "example.com/d:1",
    ]);
    await assertRejects(() => store.prune({ keepLocked: [join(tmp, "none.lock")] }), NotFoundError);
  });
});

Deno.test("prune (CLI): --dry-run and --json print what goes and the bytes; list --size; TMPDIR clean", async () => {
  await withTempDir(async (tmp) => {
    const data = join(tmp, "store");
    const tmpdir = join(tmp, "tmpdir");
    await Deno.mkdir(tmpdir);
    const store = new Store(data);
    const src = await samplePackage(join(tmp, "src"), 50_000);
    await packDirectory(src, join(tmp, "p.tar"), { name: "example.com/p:1" });
    await loadImage(join(tmp, "p.tar"), { store });
    await setUsed(store, "example.com/p:1", Date.now() - 3 * DAY);
    const env = { TMPDIR: tmpdir };
    const list = await runCli(["list", "--size", "--json"], { dataHome: data, env });
    assertEquals(list.code, 0, list.stderr);
    const sizes = JSON.parse(list.stdout);
    assertEquals(sizes.images.map((i: { name: string }) => i.name), ["example.com/p:1"]);
    assertEquals(sizes.total, await du(data));
    const text = await runCli(["list", "--size"], { dataHome: data, env });
    assert(/^\s+\d+\.\d KiB {2}example\.com\/p:1$/m.test(text.stdout), text.stdout);
    assert(/ total$/m.test(text.stdout), text.stdout);

    const dry = await runCli(["prune", "--unused-for", "2d", "--dry-run"], { dataHome: data, env });
    assertEquals(dry.code, 0, dry.stderr);
    assert(dry.stdout.startsWith("would remove image example.com/p:1, last used "), dry.stdout);
    assert(/^would free \d+\.\d KiB$/m.test(dry.stdout), dry.stdout);
    assert(await store.has("example.com/p:1"));
    const kept = await runCli(["prune", "--unused-for", "4d", "--json"], { dataHome: data, env });
    assertEquals(JSON.parse(kept.stdout), { removed: [], freed: 0, dryRun: false });
    const duBefore = await du(data);
    const done = await runCli(["prune", "--unused-for", "2d", "--json"], { dataHome: data, env });
    assertEquals(done.code, 0, done.stderr);
    const r = JSON.parse(done.stdout);
    assertEquals(r.removed[0].kind, "image");
    assertEquals(r.removed[0].name, "example.com/p:1");
    assertEquals(r.removed[0].platform, null);
    assertEquals(r.freed, duBefore - await du(data));
    assertEquals(await store.list(), []);

    const bad = await runCli(["prune", "--unused-for", "30"], { dataHome: data, env });
    assertEquals(bad.code, 2);
    assertEquals(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    const missing = await runCli(["prune", "--keep-locked", join(tmp, "no.lock")], {
      dataHome: data,
      env,
    });
    assertEquals(missing.code, 3);
    assertEquals(
      missing.stderr.trim(),
      `error: lock file '${join(tmp, "no.lock")}' does not exist`,
    );
    assertEquals([...Deno.readDirSync(tmpdir)], [], "something was left in TMPDIR");
  });
});

Deno.test("use time: a cached get records it at most once an hour; an install sets it", async () => {
  await withTempDir(async (tmp) => {
    const store = new Store(join(tmp, "store"));
    await Deno.mkdir(join(tmp, "pkg"));
    await packDirectory(join(tmp, "pkg"), join(tmp, "p.tar"), { name: "example.com/p:1" });
    const t0 = Date.now();
    await loadImage(join(tmp, "p.tar"), { store });
    const used = async () =>
      (await Deno.lstat(await Deno.realPath(store.imageDir("example.com/p:1")))).mtime!.getTime();
    assert(await used() >= t0 - 2000, "an install is a use");
    const old = Date.now() - 40 * DAY;
    await setUsed(store, "example.com/p:1", old);
    await getImage("example.com/p:1", { store }); // cached: no request
    assert(await used() >= t0 - 2000, "a cached get did not record its use");
    const recent = Date.now() - 10 * 60 * 1000;
    await setUsed(store, "example.com/p:1", recent);
    await getImage("example.com/p:1", { store });
    assertEquals(await used(), recent, "a use within the hour was written again");
  });
});

Deno.test("prune: duration on a store of 200 entries (half unused), each removed once", async () => {
  await withTempDir(async (tmp) => {
    const root = join(tmp, "store");
    const store = new Store(root);
    // 200 images as an install leaves them (a few files, a layout), half last used 40 days ago
    const old = new Date(Date.now() - 40 * DAY);
    const lib = new Uint8Array(8192);
    for (let i = 0; i < 200; i++) {
      const parent = join(root, "example.com", `img${i}`);
      const version = join(parent, `.__1.v-${UUID}${i % 10}`);
      await Deno.mkdir(join(version, "lib"), { recursive: true });
      await Deno.mkdir(join(version, ".oci-dir", "blobs", "sha256"), { recursive: true });
      await Deno.writeFile(join(version, "lib", "libfoo.a"), lib);
      await Deno.writeTextFile(join(version, "README"), "sample\n");
      await Deno.writeTextFile(
        join(version, ".oci-dir", "oci-layout"),
        '{"imageLayoutVersion":"1.0.0"}',
      );
      await Deno.writeTextFile(
        join(version, ".oci-dir", "index.json"),
        '{"schemaVersion":2,"manifests":[]}',
      );
      await Deno.symlink(`.__1.v-${UUID}${i % 10}`, join(parent, "__1"));
      if (i % 2 === 1) await Deno.utime(version, old, old);
    }
    assertEquals((await store.list()).length, 200);
    const duBefore = await du(root);
    const t = performance.now();
    const r = await store.prune({ unusedFor: 30 * DAY });
    const ms = performance.now() - t;
    console.log(`prune of 200 entries (100 removed, ${r.freed} bytes): ${ms.toFixed(0)} ms`);
    assertEquals(r.removed.filter((x) => x.kind === "image").length, 100);
    assertEquals((await store.list()).length, 100);
    assertEquals(r.freed, duBefore - await du(root));
  });
});

Deno.test("concurrency: gets racing prunes (in this process and others) never see half an image", async () => {
  const { startRegistry } = await import("./_registry.ts");
  const reg = await startRegistry();
  try {
    await withTempDir(async (tmp) => {
      const src = await samplePackage(join(tmp, "src"), 256 * 1024);
      const expected = await listTree(src);
      const images = [1, 2, 3].map((i) => `${reg.host}/prune/img${i}:1`);
      for (const name of images) {
        await packDirectory(src, join(tmp, `${name.split("/").pop()}.tar`), { name });
        await pushImage(join(tmp, `${name.split("/").pop()}.tar`));
      }
      const data = join(tmp, "store");
      const store = new Store(data);
      const emptyLock = join(tmp, "ocipkg.lock");
      await Deno.writeTextFile(emptyLock, JSON.stringify({ version: 1, images: {} }));

      // a reader: whenever an entry links to a version, that version is whole — a read that
      // fails or is short is one whose entry moved on meanwhile
      let done = false;
      let whole = 0;
      const reader = (async () => {
        while (!done) {
          for (const name of images) {
            const entry = store.imageDir(name);
            const target = await Deno.readLink(entry).catch(() => undefined);
            if (target === undefined) continue;
            const seen = await listTree(entry).catch(() => [] as string[]);
            if (JSON.stringify(seen) === JSON.stringify(expected)) {
              whole++;
              continue;
            }
            const now = await Deno.readLink(entry).catch(() => undefined);
            assert(now !== target, `${name}: ${target} was read half-removed: ${seen}`);
          }
          await new Promise((r) => setTimeout(r, 0));
        }
      })();
      // other processes prune every unlocked image, this one prunes too; gets go on meanwhile
      const prunes = (async () => {
        for (let i = 0; i < 3; i++) {
          const r = await runCli(["prune", "--keep-locked", emptyLock], { dataHome: data });
          assertEquals(r.code, 0, r.stderr);
        }
      })();
      const inProcess = (async () => {
        for (let i = 0; i < 15; i++) {
          await store.prune({ keepLocked: [emptyLock] });
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const gets = { installed: 0, present: 0 };
      const getting = Promise.all(images.map(async (name) => {
        for (let i = 0; i < 12; i++) {
          const r = await getImage(name, { store });
          assertEquals(r.dir, store.imageDir(name));
          gets[r.status]++;
        }
      }));
      await Promise.all([prunes, inProcess, getting]);
      done = true;
      await reader;
      assertEquals(gets.installed + gets.present, 36);
      assert(whole > 0, "the reader never saw an image");
      console.log(
        `gets: ${gets.installed} installed again, ${gets.present} cached; ${whole} whole reads`,
      );

      // with --unused-for, a get's use keeps its image: gets of images last used 40 days ago
      // while prunes remove what is unused for a day leave every image installed
      for (const name of images) await setUsed(store, name, Date.now() - 40 * DAY).catch(() => {});
      let pruning = true;
      const unused = (async () => {
        for (let i = 0; i < 3; i++) {
          const r = await runCli(["prune", "--unused-for", "1d"], { dataHome: data });
          assertEquals(r.code, 0, r.stderr);
        }
        pruning = false;
      })();
      await Promise.all(images.map(async (name) => {
        while (pruning) {
          await getImage(name, { store });
          await new Promise((r) => setTimeout(r, 5));
        }
      }));
      await unused;
      for (const name of images) {
        assertEquals(await listTree(store.imageDir(name)), expected, `${name} was pruned`);
      }
      // nothing left over: one version per image, no temps
      await store.prune();
      const names = await allNames(data);
      assert(!names.some((n) => n.includes(".tmp-")), `temps left: ${names}`);
      for (const name of images) {
        const parent = join(store.imageDir(name), "..");
        assertEquals((await Array.fromAsync(Deno.readDir(parent))).length, 2);
      }
    });
  } finally {
    reg.kill();
  }
});

Deno.test("prune: a link where a version, a temp, a record, an entry or a directory belongs goes as a link, never followed", async () => {
  await withTempDir(async (tmp) => {
    const root = join(tmp, "store");
    const store = new Store(root);
    // what a local user points the store at: nothing of it may change
    const outside = join(tmp, "outside");
    const victim = join(outside, `.__1.v-${UUID}9`); // named as a version would be
    await Deno.mkdir(join(victim, "lib"), { recursive: true });
    await Deno.writeTextFile(join(victim, "lib", "keep"), "keep");
    await Deno.mkdir(join(outside, `.tmp-${await deadPid()}-x`));
    await Deno.writeTextFile(join(outside, "file"), "keep");
    const snapshot = async () => (await allNames(outside)).join("\n");
    const before = await snapshot();

    const parent = join(root, "example.com", "a");
    await Deno.mkdir(parent, { recursive: true });
    // a version, a dead process's temp and a record that are links out of the store
    await Deno.symlink(victim, join(parent, `.__1.v-${UUID}1`));
    await Deno.symlink(outside, join(parent, `.tmp-${await deadPid()}-${UUID}2`));
    await Deno.mkdir(join(root, ".verified"), { recursive: true });
    await Deno.symlink(
      join(outside, "file"),
      join(root, ".verified", `sha256-${"e".repeat(64)}.json`),
    );
    // an entry linking out, and a directory of entries that is a link out
    await Deno.symlink(victim, join(parent, "__2"));
    await Deno.symlink(outside, join(root, "example.com", "b"));
    await run("touch", ["-h", "-d", "40 days ago", join(parent, "__2")]);

    const usage = await store.usage();
    assert(usage.total < 64 * 1024, `sized what is outside: ${usage.total}`);
    const r = await store.prune({ unusedFor: DAY });
    assertEquals(await snapshot(), before, "something outside the store changed");
    assertEquals(await Deno.readTextFile(join(victim, "lib", "keep")), "keep");
    const kinds = r.removed.map((x) => x.kind).sort();
    assert(
      kinds.includes("version") && kinds.includes("temp") && kinds.includes("image"),
      kinds.join(),
    );
    // the links are gone; the link standing for a directory of entries is never entered
    assertEquals(await allNames(parent).catch(() => []), []);
    assert((await Deno.lstat(join(root, "example.com", "b"))).isSymlink);
  });
});

Deno.test("list --size: memory does not grow with the files walked (150,000 files), only with hard-linked ones", async () => {
  await withTempDir(async (tmp) => {
    const root = join(tmp, "store");
    const version = join(root, "example.com", "many", `.__1.v-${UUID}1`);
    await Deno.mkdir(version, { recursive: true });
    await Deno.symlink(`.__1.v-${UUID}1`, join(root, "example.com", "many", "__1"));
    await Deno.symlink(`.__1.v-${UUID}1`, join(root, "example.com", "many", "__alias"));
    const made = await run("python3", [
      "-c",
      `import os\nfor d in range(150):\n  os.mkdir(f"d{d}")\n  for f in range(1000):\n    open(f"d{d}/a-file-with-a-long-name-{f}.h", "w").close()`,
    ], version);
    assertEquals(made.code, 0, made.stderr);
    // a 32 MiB heap: remembering each file walked (about 1 KiB each) would not fit
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        "--v8-flags=--max-old-space-size=32",
        CLI,
        "list",
        "--size",
        "--json",
      ],
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", OCIPKG_DATA_DIR: root },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr);
    assertEquals(r.code, 0, stderr.slice(-500));
    const usage = JSON.parse(new TextDecoder().decode(r.stdout));
    // an alias of the same version: each entry holds it, the store counts it once
    assertEquals(usage.images.length, 2);
    assertEquals(usage.images[0].bytes, usage.images[1].bytes);
    assertEquals(usage.total, await du(root));
  });
});
