// Multi-platform packages: pack/push several platforms under one tag as an
// OCI index; get/link pick the host's or --platform's; a missing one is named.
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import {
  composeFiles,
  formatPlatform,
  getImage,
  hostPlatform,
  ImageName,
  inspectLayout,
  linkPackage,
  NotFoundError,
  OCI_INDEX,
  OciArchive,
  OcipkgError,
  packDirectory,
  parsePlatform,
  pushImage,
  Store,
} from "./_internal.ts";
import { have, listTree, run, runCli, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";
import { startFaultProxy } from "./_fault_proxy.ts";
import { arArchive, elfHeader, EM } from "./_binaries.ts";

const ready = await have("docker-registry") || !!Deno.env.get("CI");
const reg = ready ? await startRegistry() : undefined;
// in front of the registry, to count the requests a get makes
const proxy = reg ? startFaultProxy(reg.host) : undefined;
globalThis.addEventListener("unload", () => reg?.kill());

/** A package directory whose one file names the platform it is for. */
async function variantDir(arch: string, where = "lib"): Promise<string> {
  const dir = await tempDir();
  await Deno.mkdir(join(dir, where), { recursive: true });
  await Deno.writeTextFile(join(dir, where, `libgreet.a`), `!<arch>\n${arch}\n`);
  return dir;
}

Deno.test("parsePlatform maps Rust target triples and os/arch[/variant]", () => {
  assertEquals(parsePlatform("x86_64-unknown-linux-gnu"), { os: "linux", architecture: "amd64" });
  assertEquals(parsePlatform("aarch64-apple-darwin"), { os: "darwin", architecture: "arm64" });
  assertEquals(parsePlatform("x86_64-pc-windows-msvc"), { os: "windows", architecture: "amd64" });
  assertEquals(parsePlatform("armv7-unknown-linux-gnueabihf"), {
    os: "linux",
    architecture: "arm",
    variant: "v7",
  });
  assertEquals(parsePlatform("linux/arm64/v8"), {
    os: "linux",
    architecture: "arm64",
    variant: "v8",
  });
});

Deno.test("pack --platform: one platform stays a manifest; a second makes an index; same replaces", async () => {
  const out = join(await tempDir(), "multi.tar");
  const name = "example.com/greet:1";
  const amd = await packDirectory(await variantDir("amd64"), out, {
    name,
    platform: parsePlatform("x86_64-unknown-linux-gnu"),
  });
  let ar = await OciArchive.open(out);
  const single = await ar.resolve(name);
  await ar.close();
  assertEquals(single.digest, amd.digest);
  assertEquals(single.platform, { os: "linux", architecture: "amd64" });
  await packDirectory(await variantDir("arm64"), out, {
    name,
    platform: parsePlatform("linux/arm64"),
  });
  let info = await inspectLayout(out, { files: false });
  assertEquals(info.mediaType, OCI_INDEX);
  assertEquals(info.manifests.map((m) => `${m.platform?.os}/${m.platform?.architecture}`), [
    "linux/amd64",
    "linux/arm64",
  ]);
  // the same platform again replaces its variant
  await packDirectory(await variantDir("arm64-v2"), out, {
    name,
    platform: parsePlatform("linux/arm64"),
  });
  info = await inspectLayout(out, { files: false });
  assertEquals(info.manifests.length, 2);
  assert(info.manifests[1]!.digest !== info.manifests[0]!.digest);
  ar = await OciArchive.open(out);
  assertEquals((await ar.list()).length, 1, "one tag in index.json");
  await ar.close();
});

Deno.test({
  name:
    "a multi-platform package pushed to a registry: get picks the host, --platform, errors list",
  ignore: !ready,
  async fn() {
    const out = join(await tempDir(), "multi.tar");
    const image = `${reg!.host}/multi/greet:1`;
    await packDirectory(await variantDir("amd64"), out, {
      name: image,
      platform: parsePlatform("linux/amd64"),
    });
    await packDirectory(await variantDir("arm64", "."), out, {
      name: image,
      platform: parsePlatform("linux/arm64"),
    });
    await pushImage(out);
    const raw = await run("skopeo", [
      "inspect",
      "--raw",
      "--tls-verify=false",
      `docker://${image}`,
    ]);
    if (raw.code === 0) assertEquals(JSON.parse(raw.stdout).mediaType, OCI_INDEX);

    const store = new Store(await tempDir());
    const arm = await getImage(image, { store, platform: parsePlatform("linux/arm64") });
    assertEquals(await listTree(arm.dir), ["libgreet.a"]);
    // the same platform again: cached, nothing fetched
    assertEquals(
      (await getImage(image, { store, platform: parsePlatform("linux/arm64") })).status,
      "present",
    );
    // the host's (amd64) install is another entry, beside the arm64 one
    if (Deno.build.arch === "x86_64") {
      const host = await getImage(image, { store });
      assertEquals(host.status, "installed");
      assertEquals(await listTree(host.dir), ["lib/", "lib/libgreet.a"]);
      assertEquals(await listTree(arm.dir), ["libgreet.a"]);
    }
    await assertRejects(
      () => getImage(image, { store, platform: parsePlatform("windows/amd64") }),
      NotFoundError,
      "no manifest for platform windows/amd64 (available: linux/amd64, linux/arm64)",
    );
    const data = await tempDir();
    const r = await runCli(["get", image, "--platform", "x86_64-pc-windows-msvc"], {
      dataHome: data,
    });
    assertEquals(r.code, 3);
    assertEquals(r.stderr.trim().split("\n").length, 1);
    assertStringIncludes(r.stderr, "available: linux/amd64, linux/arm64");
    assertEquals(await listTree(data), []);
  },
});

Deno.test({
  name:
    "push of several single-platform archives makes one index; duplicates and no platform are refused",
  ignore: !ready,
  async fn() {
    const work = await tempDir();
    const a = join(work, "amd.tar");
    const b = join(work, "arm.tar");
    const c = join(work, "plain.tar");
    await packDirectory(await variantDir("amd64"), a, {
      name: "x/y:1",
      platform: parsePlatform("linux/amd64"),
    });
    await packDirectory(await variantDir("arm64"), b, {
      name: "x/y:1",
      platform: parsePlatform("aarch64-unknown-linux-gnu"),
    });
    await packDirectory(await variantDir("any"), c, { name: "x/y:1" });
    const image = `${reg!.host}/multi/both:2`;
    const r = await runCli(["push", a, b, image]);
    assertEquals(r.code, 0, r.stderr);
    const data = await tempDir();
    const i = await runCli(["inspect", image, "--json", "--no-files"], { dataHome: data });
    const info = JSON.parse(i.stdout);
    assertEquals(info.mediaType, OCI_INDEX);
    assertEquals(
      info.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture),
      ["amd64", "arm64"],
    );
    // cargo's TARGET decides the variant `link --cargo` links in a build script
    const l = await runCli(["link", "--cargo", image], {
      dataHome: data,
      env: { TARGET: "aarch64-unknown-linux-gnu" },
    });
    assertEquals(l.code, 0, l.stderr);
    const store = new Store(data);
    const arm64 = parsePlatform("linux/arm64");
    const installed = await store.installedDescriptor(ImageName.parse(image), arm64);
    assertEquals(installed?.platform?.architecture, "arm64");
    // into the arm64 entry: the host's is not touched
    if (Deno.build.arch === "x86_64") assertEquals(await store.has(image), false);

    const dup = await runCli(["push", a, a, "-t", image]);
    assertEquals(dup.code, 2);
    assertStringIncludes(dup.stderr, "platform linux/amd64 is given twice");
    const none = await runCli(["push", a, c, image]);
    assertEquals(none.code, 2);
    assertStringIncludes(none.stderr, "has no platform; pack it with --platform");
  },
});

Deno.test({
  name: "platforms are identity: same files for two platforms, two manifests; absent ones refused",
  ignore: !(await have("docker-registry")),
  fn: async () => {
    const reg = await startRegistry();
    const work = await tempDir();
    try {
      await Deno.mkdir(join(work, "pkg"));
      await Deno.writeTextFile(join(work, "pkg", "a.txt"), "same files\n");
      const tar = join(work, "mp.tar");
      const image = `${reg.host}/ident/pkg:1`;
      const digests = [];
      for (const p of ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]) {
        const r = await runCli(["pack", join(work, "pkg"), tar, "--platform", p, "-t", image]);
        assertEquals(r.code, 0, r.stderr);
        digests.push(r.stdout.trim().split(" ")[1]);
      }
      // the second pack turned the tag into an index of both
      const info = JSON.parse((await runCli(["inspect", tar, "--json"])).stdout);
      const platforms = info.manifests.map((m: { platform: { architecture: string } }) =>
        m.platform.architecture
      );
      assertEquals(platforms.sort(), ["amd64", "arm64"]);
      assert(info.manifests[0].digest !== info.manifests[1].digest, "two distinct manifests");
      assertEquals((await runCli(["push", tar])).code, 0);
      // an absent platform: exit 3 naming the ones there are
      const absent = await runCli(["get", image, "--platform", "windows/amd64"], {
        dataHome: join(work, "store"),
      });
      assertEquals(absent.code, 3, absent.stderr);
      assertStringIncludes(absent.stderr, "available: linux/amd64, linux/arm64");
      // a single-platform package remembers its platform on a registry too
      const one = join(work, "one.tar");
      const single = `${reg.host}/ident/one:1`;
      await runCli(["pack", join(work, "pkg"), one, "--platform", "linux/arm64", "-t", single]);
      assertEquals((await runCli(["push", one])).code, 0);
      const wrong = await runCli(["get", single, "--platform", "linux/amd64"], {
        dataHome: join(work, "store"),
      });
      assertEquals(wrong.code, 3, wrong.stderr);
      assertStringIncludes(wrong.stderr, "available: linux/arm64");
      // pull and copy one platform of the index
      const pulled = await runCli([
        "pull",
        image,
        "-o",
        `oci:${work}/arm`,
        "--platform",
        "linux/arm64",
      ]);
      assertEquals(pulled.code, 0, pulled.stderr);
      const arm = JSON.parse((await runCli(["inspect", `oci:${work}/arm`, "--json"])).stdout);
      assertEquals(arm.mediaType, "application/vnd.oci.image.manifest.v1+json");
      assertEquals(arm.manifests[0].annotations["vnd.ocipkg.platform"], "linux/arm64");
      assertEquals(arm.manifests[0].platform, { os: "linux", architecture: "arm64" });
      const copied = await runCli([
        "copy",
        image,
        `oci:${work}/amd:x`,
        "--platform",
        "linux/amd64",
      ]);
      assertEquals(copied.code, 0, copied.stderr);
      assertEquals((await runCli(["resolve", `oci:${work}/amd:x`])).stdout.trim(), digests[0]);
      const both = await runCli([
        "pull",
        image,
        "-o",
        `${work}/x.tar`,
        "--platform",
        "linux/arm64",
        "--all-platforms",
      ]);
      assertEquals(both.code, 2);
    } finally {
      await reg.stop();
    }
  },
});

/** The one of linux/amd64 and linux/arm64 that is not this host's. */
const OTHER = parsePlatform(
  hostPlatform().architecture === "amd64" ? "linux/arm64" : "linux/amd64",
);

Deno.test({
  name:
    "one image for two platforms: two store entries that coexist, both cached; a get for one never changes the other's",
  ignore: !ready || Deno.build.os !== "linux",
  async fn() {
    const image = `${proxy!.host}/two/greet:1`;
    const out = join(await tempDir(), "two.tar");
    for (const arch of ["amd64", "arm64"]) {
      await packDirectory(await variantDir(arch), out, {
        name: image,
        platform: parsePlatform(`linux/${arch}`),
      });
    }
    await pushImage(out);
    const data = await tempDir();
    const store = new Store(data);
    const host = hostPlatform();
    // alternately, as a host build and a cross build would: host, other, host, other
    proxy!.reset();
    const first = await linkPackage(image, { store });
    const cross = await linkPackage(image, { store, platform: OTHER });
    const fetched = proxy!.log.length;
    assert(fetched > 0);
    const hostDir = join(data, proxy!.host.replace(":", "__"), "two", "greet", "__1");
    assertEquals(first.dir, hostDir); // the host's keeps today's path
    assertEquals(cross.dir, `${hostDir}+linux-${OTHER.architecture}`);
    const hostVersion = await Deno.readLink(hostDir);
    const crossVersion = await Deno.readLink(cross.dir);
    for (let round = 0; round < 2; round++) {
      assertEquals((await linkPackage(image, { store })).dir, hostDir);
      assertEquals((await linkPackage(image, { store, platform: OTHER })).dir, cross.dir);
      assertEquals((await getImage(image, { store, platform: OTHER })).status, "present");
    }
    assertEquals(proxy!.log.length, fetched, "cached: no request after the first of each");
    // neither install was replaced, and each holds its own platform's files
    assertEquals(await Deno.readLink(hostDir), hostVersion);
    assertEquals(await Deno.readLink(cross.dir), crossVersion);
    assertEquals(
      await Deno.readTextFile(join(hostDir, "lib", "libgreet.a")),
      `!<arch>\n${host.architecture}\n`,
    );
    assertEquals(
      await Deno.readTextFile(join(cross.dir, "lib", "libgreet.a")),
      `!<arch>\n${OTHER.architecture}\n`,
    );
    // the same through the CLI: --platform and a cargo TARGET find the cached entries
    const triple = OTHER.architecture === "arm64"
      ? "aarch64-unknown-linux-gnu"
      : "x86_64-unknown-linux-gnu";
    const cli = [
      ["get", image],
      ["get", image, "--platform", formatPlatform(OTHER)],
      ["link", "--cargo", image],
    ];
    for (const args of cli) {
      const r = await runCli(args, { dataHome: data, env: { TARGET: triple } });
      assertEquals(r.code, 0, r.stderr);
    }
    assertEquals(proxy!.log.length, fetched, "the CLI made no request either");
    const listed = await runCli(["list"], { dataHome: data });
    assertEquals(listed.stdout.trim().split("\n"), [
      image,
      `${image} (${formatPlatform(OTHER)})`,
    ]);
  },
});

/** A package of Linux x86-64 ELF files (a shared library and a static one) that declares no platform. */
async function linuxAmd64Package(): Promise<string> {
  const dir = await tempDir();
  await Deno.mkdir(join(dir, "lib"));
  await Deno.writeFile(join(dir, "lib", "libfoo.so"), elfHeader(EM.x86_64));
  await Deno.writeFile(
    join(dir, "lib", "libfoo.a"),
    arArchive([{ name: "foo.o", data: elfHeader(EM.x86_64) }]),
  );
  await Deno.writeTextFile(join(dir, "README"), "libfoo\n");
  return dir;
}

Deno.test({
  name:
    "an image declaring no platform is checked by its binaries: another platform is refused, nothing installed, never 'present'",
  ignore: !ready,
  async fn() {
    const image = `${reg!.host}/noplat/foo:1`;
    const out = join(await tempDir(), "foo.tar");
    await packDirectory(await linuxAmd64Package(), out, { name: image });
    await pushImage(out);
    const data = await tempDir();
    const win = await runCli(["get", image, "--platform", "windows/amd64", "-f"], {
      dataHome: data,
    });
    assertEquals(win.code, 1, win.stderr);
    assertEquals(
      win.stderr,
      `error: image '${image}': lib/libfoo.a (member foo.o) is linux/amd64, not windows/amd64\n`,
    );
    assertEquals(win.stdout, "");
    assertEquals(await listTree(data), []);
    const store = new Store(data);
    await assertRejects(
      () => getImage(image, { store, platform: parsePlatform("linux/arm64") }),
      OcipkgError,
      `image '${image}': lib/libfoo.a (member foo.o) is linux/amd64, not linux/arm64`,
    );
    assertEquals(await listTree(data), []);
    // for the platform its files are built for, it installs; a copy cached for it is not
    // "present" for another platform (that is checked, and refused)
    const amd64 = await runCli(["get", image, "--platform", "x86_64-unknown-linux-gnu"], {
      dataHome: data,
    });
    assertEquals(amd64.code, 0, amd64.stderr);
    const arm = await runCli(["get", image, "--platform", "linux/arm64"], { dataHome: data });
    assertEquals(arm.code, 1, arm.stderr);
    assertStringIncludes(arm.stderr, "lib/libfoo.a (member foo.o) is linux/amd64, not linux/arm64");
    const cached = await runCli(["--debug", "get", image, "--platform", "linux/amd64"], {
      dataHome: data,
    });
    assertEquals(cached.code, 0, cached.stderr);
    assert(!cached.stderr.includes("debug:"), cached.stderr); // present: no request
    assertEquals(cached.stdout, amd64.stdout);
    // a package without binaries fits every platform
    const docs = await tempDir();
    await Deno.writeTextFile(join(docs, "README"), "docs only\n");
    const plain = `${reg!.host}/noplat/docs:1`;
    const docsOut = join(await tempDir(), "docs.tar");
    await packDirectory(docs, docsOut, { name: plain });
    await pushImage(docsOut);
    const ok = await runCli(["get", plain, "--platform", "windows/amd64"], { dataHome: data });
    assertEquals(ok.code, 0, ok.stderr);
  },
});

Deno.test("pack/compose --platform refuse binaries of another platform; --allow-platform-mismatch packs them", async () => {
  const pkg = await linuxAmd64Package();
  const work = await tempDir();
  const out = join(work, "foo.tar");
  const r = await runCli([
    "pack",
    pkg,
    out,
    "--platform",
    "linux/arm64",
    "-t",
    "example.com/foo:1",
  ]);
  assertEquals(r.code, 1, r.stderr);
  assertEquals(
    r.stderr,
    "error: image 'example.com/foo:1': lib/libfoo.a (member foo.o) is linux/amd64, not linux/arm64 (--allow-platform-mismatch packs it anyway)\n",
  );
  assertEquals(await listTree(work), []); // nothing written
  const c = await runCli([
    "compose",
    join(pkg, "lib", "libfoo.so"),
    "-o",
    `oci:${work}/dir`,
    "--platform",
    "aarch64-apple-darwin",
    "-t",
    "example.com/foo:1",
  ]);
  assertEquals(c.code, 1, c.stderr);
  assertStringIncludes(c.stderr, "libfoo.so is linux/amd64, not darwin/arm64");
  assertEquals(await listTree(work), []);
  await assertRejects(
    () =>
      composeFiles([join(pkg, "lib", "libfoo.so")], out, {
        platform: parsePlatform("linux/arm64"),
      }),
    OcipkgError,
    "libfoo.so is linux/amd64, not linux/arm64",
  );
  // the platform they are built for, or no platform, or the override: packed
  for (
    const args of [
      ["--platform", "x86_64-unknown-linux-gnu"],
      [],
      ["--platform", "linux/arm64", "--allow-platform-mismatch"],
    ]
  ) {
    const ok = await runCli(["pack", pkg, out, "-t", "example.com/foo:1", ...args]);
    assertEquals(ok.code, 0, ok.stderr);
  }
  const help = await runCli(["pack", "--help"]);
  assertStringIncludes(help.stdout, "--allow-platform-mismatch");
});
