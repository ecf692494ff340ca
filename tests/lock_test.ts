// ocipkg.lock: a project's lock pins each tag it uses to a digest. Against a real
// docker-registry: a moved tag, --refresh and a new store change nothing for a locked
// reference; --locked refuses a change in one line; lock --check / --update; parallel
// installs adding to one lock; corrupt and hostile lock files; per-platform digests of an
// index; load under a lock; and a real `cargo build` whose build.rs runs `ocipkg link --cargo`.
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import {
  libraryPath,
  packDirectory,
  pushImage,
  readLockFile,
  signReference,
  Store,
} from "./_internal.ts";
import { formatPlatform, hostPlatform, type Platform } from "../lib/oci/mod.ts";
import { encodePublicKey, generateSigningKeyPair, keyFingerprint } from "../lib/sign/mod.ts";
import {
  callGreet,
  copyTree,
  have,
  ocipkgBinDir,
  pathWith,
  ROOT,
  run,
  runCli,
  type RunResult,
  tempDir,
} from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";

const CI = !!Deno.env.get("CI");
const ready = await have("docker-registry") || CI;
const reg = ready ? await startRegistry() : undefined;
globalThis.addEventListener("unload", () => reg?.kill());

/** The other platform of an index (besides the host's). */
const OTHER: Platform = hostPlatform().architecture === "arm64"
  ? { os: "linux", architecture: "amd64" }
  : { os: "linux", architecture: "arm64" };

/**
 * Pack a package holding `version.txt` (and an empty `lib/libfoo.a`) and push it under
 * `image`; several platforms make an index. Returns the pushed digest and each platform's.
 */
async function publish(
  image: string,
  version: string,
  platforms: Platform[] = [],
): Promise<{ digest: string; manifests: string[] }> {
  const dir = await tempDir();
  await Deno.mkdir(join(dir, "pkg", "lib"), { recursive: true });
  await Deno.writeTextFile(join(dir, "pkg", "lib", "libfoo.a"), "!<arch>\n");
  const archives: string[] = [];
  const manifests: string[] = [];
  for (const platform of platforms.length ? platforms : [undefined]) {
    const text = platform ? `${version} ${formatPlatform(platform)}` : version;
    await Deno.writeTextFile(join(dir, "pkg", "version.txt"), text);
    const archive = join(dir, `p${archives.length}.tar`);
    const packed = await packDirectory(join(dir, "pkg"), archive, { name: image, platform });
    archives.push(archive);
    manifests.push(packed.digest);
  }
  const pushed = await pushImage(archives.length === 1 ? archives[0]! : archives, image);
  return { digest: pushed.digest, manifests };
}

/** A project directory (its real path, as a child process's cwd reads it). */
async function project(): Promise<string> {
  return await Deno.realPath(await tempDir("ocipkg-proj-"));
}

/** `ocipkg get` in a project; returns the result and the installed version.txt. */
async function getIn(
  cwd: string,
  data: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<RunResult & { version?: string }> {
  const r = await runCli(["get", ...args], { cwd, dataHome: data, env });
  if (r.code !== 0) return r;
  return { ...r, version: await Deno.readTextFile(join(r.stdout.trim(), "version.txt")) };
}

/** The lock's entry of an image. */
async function entryOf(lock: string, image: string) {
  return (await readLockFile(lock))?.images[image];
}

/** Exactly one line on stderr, an error, no stack trace. */
function oneError(r: RunResult, code = 1): string {
  assertEquals(r.code, code, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assertEquals(lines.length, 1, r.stderr);
  assert(lines[0]!.startsWith("error: "), r.stderr);
  return lines[0]!;
}

Deno.test({
  name:
    "a locked tag installs the locked digest: a moved tag, --refresh, a new store change nothing",
  ignore: !ready,
  async fn() {
    const image = `${reg!.host}/lock/moved:1`;
    const v1 = await publish(image, "v1");
    const proj = await project();
    const lock = join(proj, "ocipkg.lock");
    // `ocipkg lock` with no lock found creates ./ocipkg.lock, empty
    const created = await runCli(["lock"], { cwd: proj });
    assertEquals(created.code, 0, created.stderr);
    assertEquals(await readLockFile(lock), { version: 1, images: {} });
    // a get records what it installed (like Cargo.lock)
    const data = await tempDir();
    assertEquals((await getIn(proj, data, [image])).version, "v1");
    const host = formatPlatform(hostPlatform());
    assertEquals(await entryOf(lock, image), {
      digest: v1.digest,
      platforms: { [host]: v1.manifests[0]! },
    });
    const v2 = await publish(image, "v2"); // the tag moves
    // cached: no request at all
    const cached = await getIn(proj, data, ["--debug", image]);
    assertEquals(cached.version, "v1");
    assert(!cached.stderr.includes("debug:"), cached.stderr);
    assertEquals((await getIn(proj, data, ["--refresh", image])).version, "v1");
    // a new store: the locked root by its digest, the tag never asked
    const fresh = await tempDir();
    const got = await getIn(proj, fresh, ["--debug", image]);
    assertEquals(got.version, "v1");
    assertStringIncludes(got.stderr, `/manifests/${v1.digest}`);
    assert(!/\/manifests\/1$/m.test(got.stderr), got.stderr);
    // outside the project the tag moves its own store entry; the project keeps v1, in the
    // entry of name@digest (the tag's entry is not replaced)
    const elsewhere = await project();
    assertEquals((await getIn(elsewhere, fresh, ["--refresh", image])).version, "v2");
    const pinned = await getIn(proj, fresh, [image]);
    assertEquals(pinned.version, "v1");
    assertStringIncludes(pinned.stdout, `__${v1.digest.replace(":", "__")}`);
    assertEquals((await getIn(elsewhere, fresh, [image])).version, "v2");
    // image-directory answers as get does: the locked entry in the project, the tag's elsewhere
    const dirIn = async (cwd: string) =>
      (await runCli(["image-directory", image], { cwd, dataHome: fresh })).stdout.trim();
    assertEquals(await dirIn(proj), pinned.stdout.trim());
    assert(await dirIn(elsewhere) !== pinned.stdout.trim());
    // link --cargo watches the lock
    const linked = await runCli(["link", "--cargo", image], { cwd: proj, dataHome: fresh });
    assertEquals(linked.code, 0, linked.stderr);
    assertStringIncludes(linked.stdout, `cargo:rerun-if-changed=${lock}\n`);
    assertStringIncludes(linked.stdout, `__${v1.digest.replace(":", "__")}/lib\n`);
    // lock --check: one line for the moved tag, exit 1
    const check = await runCli(["lock", "--check"], { cwd: proj });
    assertEquals(check.stdout, `${image}: locked ${v1.digest}, the registry has ${v2.digest}\n`);
    assertStringIncludes(oneError(check), "1 of 1 locked image no longer matches its registry");
    // lock --update moves it; then the check passes and get installs v2
    const update = await runCli(["lock", "--update"], { cwd: proj });
    assertEquals(update.code, 0, update.stderr);
    assertEquals(update.stdout, `${image} ${v2.digest}\n`);
    assertStringIncludes(update.stderr, `${v1.digest} -> ${v2.digest}`);
    assertEquals((await entryOf(lock, image))?.digest, v2.digest);
    const ok = await runCli(["lock", "--check"], { cwd: proj });
    assertEquals(ok.code, 0, ok.stderr);
    assertEquals(ok.stdout, `${lock}: 1 locked image matches its registry\n`);
    assertEquals((await getIn(proj, data, [image])).version, "v2");
    // a tag gone from the registry is a mismatch too
    await Deno.writeTextFile(
      lock,
      JSON.stringify({
        version: 1,
        images: { [`${reg!.host}/lock/gone:1`]: { digest: v1.digest, platforms: {} } },
      }),
    );
    const gone = await runCli(["lock", "--check"], { cwd: proj });
    assertEquals(
      gone.stdout,
      `${reg!.host}/lock/gone:1: locked ${v1.digest}, the registry has no such tag\n`,
    );
    oneError(gone);
  },
});

Deno.test({
  name:
    "--locked and OCIPKG_LOCKED=1 refuse any change to the lock, in one line, nothing installed",
  ignore: !ready,
  async fn() {
    const locked = `${reg!.host}/lock/kept:1`;
    const other = `${reg!.host}/lock/other:1`;
    await publish(locked, "k1");
    await publish(other, "o1");
    const proj = await project();
    const lock = join(proj, "ocipkg.lock");
    const r = await runCli(["lock", locked], { cwd: proj });
    assertEquals(r.code, 0, r.stderr);
    const before = await Deno.readTextFile(lock);
    const data = await tempDir();
    // an image the lock lacks
    const refused = await getIn(proj, data, ["--locked", other]);
    assertEquals(
      oneError(refused),
      `error: image '${other}' is not locked in ${lock}, and the lock may not change (--locked, OCIPKG_LOCKED); lock it with 'ocipkg lock ${other}'`,
    );
    const byEnv = await runCli(["link", "--cargo", other], {
      cwd: proj,
      dataHome: data,
      env: { OCIPKG_LOCKED: "1" },
    });
    assertStringIncludes(oneError(byEnv), `image '${other}' is not locked in ${lock}`);
    assertEquals(byEnv.stdout, "");
    // a platform the entry lacks
    const platform = formatPlatform(OTHER);
    const noPlatform = await getIn(proj, data, ["--locked", "--platform", platform, locked]);
    assertStringIncludes(
      oneError(noPlatform),
      `is locked in ${lock} without platform ${platform}, and the lock may not change (--locked, OCIPKG_LOCKED); lock it with 'ocipkg lock ${locked} --platform ${platform}'`,
    );
    // a named lock file is named in the advice; none at all is refused too
    const named = await getIn(await project(), data, ["--locked", "--lock", lock, other]);
    assertStringIncludes(oneError(named), `'ocipkg lock ${other} --lock ${lock}'`);
    const none = await getIn(await project(), data, [other], { OCIPKG_LOCKED: "yes" });
    assertStringIncludes(oneError(none), "there is no lock file ocipkg.lock (looked from");
    assertEquals(await Deno.readTextFile(lock), before);
    assertEquals(await new Store(data).list(), []);
    // what the lock holds installs under --locked
    assertEquals((await getIn(proj, data, ["--locked", locked])).version, "k1");
    // without --locked the new platform is recorded (a manifest that declares none fits any)
    assertEquals((await getIn(proj, data, ["--platform", platform, locked])).version, "k1");
    assertEquals(Object.keys((await entryOf(lock, locked))!.platforms).length, 2);
  },
});

Deno.test({
  name: "a locked digest its registry deleted: one line naming it and how to move the lock",
  ignore: !ready,
  async fn() {
    const image = `${reg!.host}/lock/deleted:1`;
    const v1 = await publish(image, "d1");
    const proj = await project();
    assertEquals((await runCli(["lock", image], { cwd: proj })).code, 0);
    await publish(image, "d2");
    const del = await fetch(`${reg!.url}/v2/lock/deleted/manifests/${v1.digest}`, {
      method: "DELETE",
    });
    await del.body?.cancel();
    assertEquals(del.status, 202);
    const r = await getIn(proj, await tempDir(), [image]);
    assertEquals(
      oneError(r, 3),
      `error: image '${image}' is locked to ${v1.digest} in ${
        join(proj, "ocipkg.lock")
      }, which its registry no longer has ('ocipkg lock --update ${image}' moves the lock)`,
    );
  },
});

Deno.test({
  name: "parallel gets of several images add to one lock: no entry lost",
  ignore: !ready,
  async fn() {
    const images = ["a", "b", "c", "d"].map((n) => `${reg!.host}/lock/par-${n}:1`);
    for (const image of images) await publish(image, image);
    const proj = await project();
    const lock = join(proj, "ocipkg.lock");
    assertEquals((await runCli(["lock"], { cwd: proj })).code, 0);
    const data = await tempDir();
    const results = await Promise.all(images.map((image) => getIn(proj, data, [image])));
    for (const [i, r] of results.entries()) assertEquals(r.version, images[i], r.stderr);
    assertEquals(Object.keys((await readLockFile(lock))!.images).sort(), images);
  },
});

Deno.test({
  name: "a corrupt or hostile lock file: one line naming the file, exit 1, nothing installed",
  ignore: !ready,
  async fn() {
    const image = `${reg!.host}/lock/hostile:1`;
    const { digest } = await publish(image, "h1");
    const entry = (key: string, v: unknown) => JSON.stringify({ version: 1, images: { [key]: v } });
    const cases: [string, string | ((path: string) => Promise<void>), string][] = [
      ["not JSON", "{ not json", "not a lock file"],
      ["binary", "\u001b[2J\u0000\u00ff", "not a lock file"],
      ["an array", "[]", "not a lock file: not a JSON object"],
      ["a newer version", `{"version": 2, "images": {}}`, "version 2 is not supported"],
      ["no images", `{"version": 1}`, "'images' is not an object"],
      ["a bad digest", entry(image, { digest: "sha256:xyz", platforms: {} }), "bad 'digest'"],
      [
        "a bad platform digest",
        entry(image, { digest, platforms: { "linux/amd64": "md5:1" } }),
        "bad digest for linux/amd64",
      ],
      ["a bad platform", entry(image, { digest, platforms: { "x": digest } }), "bad platform"],
      ["keys not strings", entry(image, { digest, platforms: {}, keys: [1] }), "'keys'"],
      [
        "a bad reference",
        entry("UPPER/Case:1", { digest, platforms: {} }),
        "not an image reference",
      ],
      [
        "a non-canonical reference",
        entry(image.replace("127.0.0.1", "127.1"), { digest, platforms: {} }),
        "is not canonical",
      ],
      ["a directory", (p) => Deno.mkdir(p), "the lock file is not a regular file"],
      [
        "a FIFO (never opened: it would block)",
        async (p) => assertEquals((await run("mkfifo", [p])).code, 0),
        "the lock file is not a regular file",
      ],
      [
        "17 MiB",
        async (p) => {
          await Deno.writeTextFile(p, "");
          await Deno.truncate(p, 17 << 20);
        },
        "the lock file is over",
      ],
    ];
    for (const [what, content, says] of cases) {
      const proj = await project();
      const lock = join(proj, "ocipkg.lock");
      if (typeof content === "string") await Deno.writeTextFile(lock, content);
      else await content(lock);
      const data = await tempDir();
      const r = await getIn(proj, data, [image]);
      const line = oneError(r);
      assertStringIncludes(line, lock, what);
      assertStringIncludes(line, says, `${what}: ${line}`);
      assertEquals(await new Store(data).list(), [], what);
      // lock --check says the same (once: each run starts a process)
      if (what === "a bad digest") {
        assertStringIncludes(oneError(await runCli(["lock", "--check"], { cwd: proj })), says);
      }
    }
  },
});

Deno.test({
  name: "an index locks each platform's manifest; get --platform installs the locked one",
  ignore: !ready,
  async fn() {
    const image = `${reg!.host}/lock/multi:1`;
    const platforms = [hostPlatform(), OTHER];
    const v1 = await publish(image, "m1", platforms);
    const proj = await project();
    const lock = join(proj, "ocipkg.lock");
    const other = formatPlatform(OTHER);
    const r = await runCli(["lock", image, "--platform", other], { cwd: proj });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stdout, `${image} ${v1.digest}\n`);
    assertEquals(await entryOf(lock, image), {
      digest: v1.digest,
      platforms: {
        [formatPlatform(hostPlatform())]: v1.manifests[0]!,
        [other]: v1.manifests[1]!,
      },
    });
    // the tag moves; both platforms still install the locked manifests
    await publish(image, "m2", platforms);
    const data = await tempDir();
    const host = await getIn(proj, data, ["--locked", image]);
    assertEquals(host.version, `m1 ${formatPlatform(hostPlatform())}`);
    assertEquals(
      (await getIn(proj, data, ["--locked", "--platform", other, image])).version,
      `m1 ${other}`,
    );
    // locked for the host only, the other platform is added from the locked index, not the tag
    const proj2 = await project();
    const lock2 = join(proj2, "ocipkg.lock");
    await Deno.writeTextFile(
      lock2,
      JSON.stringify({
        version: 1,
        images: {
          [image]: {
            digest: v1.digest,
            platforms: { [formatPlatform(hostPlatform())]: v1.manifests[0] },
          },
        },
      }),
    );
    const added = await getIn(proj2, await tempDir(), ["--platform", other, image]);
    assertEquals(added.version, `m1 ${other}`);
    assertEquals((await entryOf(lock2, image))?.platforms[other], v1.manifests[1]);
    // a lock whose platform digest is not the locked index's: refused, nothing installed
    const proj3 = await project();
    const hostKey = formatPlatform(hostPlatform());
    await Deno.writeTextFile(
      join(proj3, "ocipkg.lock"),
      JSON.stringify({
        version: 1,
        images: { [image]: { digest: v1.digest, platforms: { [hostKey]: v1.manifests[1] } } },
      }),
    );
    const data3 = await tempDir();
    const wrong = await getIn(proj3, data3, [image]);
    assertStringIncludes(
      oneError(wrong),
      `locks ${v1.manifests[1]} for ${hostKey}, but the locked ${v1.digest} has ${
        v1.manifests[0]
      } for it`,
    );
    assertEquals(await new Store(data3).list(), []);
    // a platform the index lacks: named, with what there is
    const missing = await runCli(["lock", image, "--update", "--platform", "linux/s390x"], {
      cwd: proj,
    });
    assertStringIncludes(oneError(missing, 3), "has no manifest for platform linux/s390x");
  },
});

Deno.test({
  name: "load under a lock: the locked image loads, other bytes under its name are refused",
  async fn() {
    const dir = await tempDir();
    const name = "example.com/lock/loaded:1";
    const archives: string[] = [];
    for (const v of ["l1", "l2"]) {
      await Deno.mkdir(join(dir, v));
      await Deno.writeTextFile(join(dir, v, "version.txt"), v);
      const archive = join(dir, `${v}.tar`);
      await packDirectory(join(dir, v), archive, { name });
      archives.push(archive);
    }
    const proj = await project();
    const lock = join(proj, "ocipkg.lock");
    const data = await tempDir();
    // --lock names a file that does not exist yet: created with the image loaded
    const first = await runCli(["load", archives[0]!, "--lock", lock], {
      cwd: proj,
      dataHome: data,
    });
    assertEquals(first.code, 0, first.stderr);
    const locked = (await entryOf(lock, name))!.digest;
    const second = await runCli(["load", archives[1]!], { cwd: proj, dataHome: data });
    const line = oneError(second);
    assertStringIncludes(line, `image '${name}' is locked to ${locked} in ${lock}, but`);
    assertEquals(await Deno.readTextFile(join(first.stdout.trim(), "version.txt")), "l1");
  },
});

Deno.test({
  name:
    "lock --verify-key verifies and records the key's fingerprint; an unsigned image is refused",
  ignore: !ready,
  async fn() {
    const dir = await tempDir();
    const { privateKey, publicKey } = generateSigningKeyPair();
    await Deno.writeTextFile(
      join(dir, "k.pem"),
      privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    );
    const pub = encodePublicKey(publicKey);
    await Deno.writeTextFile(join(dir, "k.pub"), pub);
    const signed = `${reg!.host}/lock/signed:1`;
    await Deno.mkdir(join(dir, "pkg"));
    await Deno.writeTextFile(join(dir, "pkg", "version.txt"), "s1");
    await packDirectory(join(dir, "pkg"), join(dir, "s.tar"), { name: signed });
    await signReference(join(dir, "s.tar"), { key: join(dir, "k.pem") });
    await pushImage(join(dir, "s.tar"));
    const unsigned = `${reg!.host}/lock/unsigned:1`;
    await publish(unsigned, "u1");
    const proj = await project();
    const lock = join(proj, "ocipkg.lock");
    const key = ["--verify-key", join(dir, "k.pub")];
    const r = await runCli(["lock", signed, ...key], { cwd: proj });
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await entryOf(lock, signed))?.keys, [await keyFingerprint(pub, "k.pub")]);
    const refused = await runCli(["lock", unsigned, ...key], { cwd: proj });
    assertStringIncludes(oneError(refused), `refusing to install image '${unsigned}'`);
    assertEquals(await entryOf(lock, unsigned), undefined);
  },
});

/** Build libgreet from examples/c-greet with another answer and message: `v2`. */
async function buildGreetV2(): Promise<string> {
  const src = await copyTree(join(ROOT, "examples", "c-greet"), join(await tempDir(), "c-greet"));
  const c = join(src, "greet.c");
  await Deno.writeTextFile(
    c,
    (await Deno.readTextFile(c)).replace("return 42;", "return 43;").replace(
      "hello from libgreet",
      "hello from libgreet v2",
    ),
  );
  const out = join(await tempDir(), "pkg");
  const r = await run("sh", [join(src, "build.sh"), out]);
  assertEquals(r.code, 0, r.stderr);
  return out;
}

/** Push a package directory under `image`. */
async function pushDir(dir: string, image: string): Promise<void> {
  const archive = join(await tempDir(), "p.tar");
  await packDirectory(dir, archive, { name: image });
  await pushImage(archive);
}

const hasCc = await have("cc") || CI;
const hasCargo = await have("cargo") || CI;

Deno.test({
  name:
    "cargo build under ocipkg.lock: a moved tag keeps v1 linked until lock --update; --locked fails",
  ignore: !ready || !hasCc || !hasCargo,
  async fn() {
    const image = `${reg!.host}/lock/greet:1.0`;
    const v1Dir = join(await tempDir(), "pkg");
    assertEquals((await run("sh", [join(ROOT, "examples", "c-greet", "build.sh"), v1Dir])).code, 0);
    await pushDir(v1Dir, image);
    const crate = await copyTree(join(ROOT, "examples", "rust-exe"), join(await project(), "app"));
    // a build.rs that passes extra flags to `ocipkg link` (to try --refresh)
    await Deno.writeTextFile(
      join(crate, "build.rs"),
      (await Deno.readTextFile(join(crate, "build.rs")))
        .replace(
          `println!("cargo:rerun-if-env-changed=OCIPKG");`,
          `println!("cargo:rerun-if-env-changed=OCIPKG");\n    println!("cargo:rerun-if-env-changed=GREET_LINK_FLAGS");\n    let flags = env::var("GREET_LINK_FLAGS").unwrap_or_default();`,
        )
        .replace(
          `.args(["link", "--cargo", "--static", &image])`,
          `.args(["link", "--cargo", "--static", &image])\n        .args(flags.split_whitespace())`,
        ),
    );
    const lock = join(crate, "ocipkg.lock");
    const data = await tempDir();
    const env = {
      PATH: pathWith(await ocipkgBinDir()),
      OCIPKG_DATA_DIR: data,
      GREET_IMAGE: image,
      CARGO_TARGET_DIR: join(crate, "target"),
      CARGO_NET_OFFLINE: "true",
    };
    const build = async (extra: Record<string, string> = {}) => {
      const b = await run("cargo", ["build", "--quiet"], crate, { ...env, ...extra });
      if (b.code !== 0) return { ...b, app: "" };
      const app = await run(join(crate, "target", "debug", "greet-app"), []);
      return { ...b, app: app.stdout };
    };
    // lock the tag, build, run: v1
    const locked = await runCli(["lock", image], { cwd: crate });
    assertEquals(locked.code, 0, locked.stderr);
    const v1 = await build();
    assertEquals(v1.app, "hello from libgreet 42\n", v1.stderr);
    // the tag moves to other bytes
    await pushDir(await buildGreetV2(), image);
    // build.rs runs again (its flags change), with --refresh too: still v1
    const refreshed = await build({ GREET_LINK_FLAGS: "--refresh" });
    assertEquals(refreshed.app, "hello from libgreet 42\n", refreshed.stderr);
    // a new store: the locked digest is fetched, not the tag
    const fresh = await build({ OCIPKG_DATA_DIR: await tempDir() });
    assertEquals(fresh.app, "hello from libgreet 42\n", fresh.stderr);
    // under OCIPKG_LOCKED an image the lock lacks fails the build with ocipkg's one line
    const otherImage = `${reg!.host}/lock/greet-other:1.0`;
    await pushDir(v1Dir, otherImage);
    const refused = await build({ GREET_IMAGE: otherImage, OCIPKG_LOCKED: "1" });
    assert(refused.code !== 0, "the build must fail");
    assertStringIncludes(
      refused.stderr,
      `ocipkg link failed: error: image '${otherImage}' is not locked in ${lock}, and the lock may not change (--locked, OCIPKG_LOCKED); lock it with 'ocipkg lock ${otherImage}'\n`,
    );
    assertEquals(Object.keys((await readLockFile(lock))!.images), [image]);
    // CI's check names the moved tag
    const check = await runCli(["lock", "--check"], { cwd: crate });
    assertEquals(check.code, 1, check.stderr);
    assertStringIncludes(check.stdout, `${image}: locked `);
    // lock --update moves the lock; cargo reruns build.rs (it watches the lock): v2
    const update = await runCli(["lock", "--update"], { cwd: crate });
    assertEquals(update.code, 0, update.stderr);
    const v2 = await build();
    assertEquals(v2.app, "hello from libgreet v2 43\n", v2.stderr);
  },
});

Deno.test({
  name: "the FFI loader follows a lock: a moved tag loads v1",
  ignore: !ready || !hasCc,
  async fn() {
    // the lock is named, not set in the environment: the test files run in parallel in one
    // process, and an OCIPKG_LOCK set here would reach every other test's CLI runs
    const image = `${reg!.host}/lock/ffi:1.0`;
    const v1Dir = join(await tempDir(), "pkg");
    assertEquals((await run("sh", [join(ROOT, "examples", "c-greet", "build.sh"), v1Dir])).code, 0);
    await pushDir(v1Dir, image);
    const lock = join(await project(), "ocipkg.lock");
    const store = new Store(await tempDir());
    assertEquals(await callGreet(image, "greet", { store, lock }), "hello from libgreet 42");
    assert((await entryOf(lock, image)) !== undefined, "the loader recorded the image");
    await pushDir(await buildGreetV2(), image);
    const fresh = new Store(await tempDir());
    assertEquals(await callGreet(image, "greet", { store: fresh, lock }), "hello from libgreet 42");
    // no lock: the tag as it is now
    const unlocked = { store: new Store(await tempDir()), lock: false };
    assertEquals(await callGreet(image, "greet", unlocked), "hello from libgreet v2 43");
    assertStringIncludes(await libraryPath(image, "greet", { store: fresh, lock }), fresh.root);
  },
});
