// One identity for every image, against hostile spellings: verify rules that could match
// nothing, platforms declared in two places, binaries that hide their platform (universal
// Mach-O, ELF OS ABI, mixed static archives), target triples that look like another
// platform, Docker Hub's other names, and default ports across schemes.
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import {
  encodeJson,
  encodePublicKey,
  generateSigningKeyPair,
  ImageName,
  OCI_INDEX,
  openRepository,
  parsePlatform,
  pushBytes,
  pushImage,
  verifyRequirements,
} from "./_internal.ts";
import { runCli, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";
import { arArchive, elfHeader, EM } from "./_binaries.ts";

const reg = await startRegistry();
globalThis.addEventListener("unload", () => reg.kill());

async function push(pkg: string, image: string, platform?: string): Promise<void> {
  const out = join(await tempDir(), "img.tar");
  const args = ["pack", pkg, out, "-t", image, ...(platform ? ["--platform", platform] : [])];
  const r = await runCli(args);
  assertEquals(r.code, 0, r.stderr);
  await pushImage(out);
}

async function pkgWith(files: Record<string, Uint8Array>): Promise<string> {
  const dir = await tempDir();
  for (const [name, data] of Object.entries(files)) {
    await Deno.mkdir(join(dir, name, ".."), { recursive: true });
    await Deno.writeFile(join(dir, name), data);
  }
  return dir;
}

/** A universal (fat) Mach-O holding only one x86_64 slice. */
function fatMachO(): Uint8Array {
  const b = new Uint8Array(4096 + 32);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0xcafebabe, false); // FAT_MAGIC, big-endian
  v.setUint32(4, 1, false); // nfat_arch
  v.setUint32(8, 0x01000007, false); // cputype x86_64
  v.setUint32(16, 4096, false); // offset
  v.setUint32(20, 32, false); // size
  v.setUint32(0, 0xcafebabe, false);
  v.setUint32(4096, 0xfeedfacf, true);
  v.setUint32(4100, 0x01000007, true);
  return b;
}

// Class: verify rule prefixes — a prefix that can never match is accepted silently
// (under-application). `ns/*` is how many users write "everything in ns"; it applies to
// nothing, so an unsigned image in ns/ installs. It should be refused like `org/` is.
Deno.test("a verify rule prefix with a glob or tag (never matching) is refused, not silently ignored", async () => {
  const image = `${reg.host}/globns/pkg:1`;
  await push(await pkgWith({ "README": new TextEncoder().encode("x\n") }), image);
  const dir = await tempDir();
  await Deno.writeTextFile(join(dir, "k.pub"), encodePublicKey(generateSigningKeyPair().publicKey));
  const escaped: string[] = [];
  for (
    const prefix of [`${reg.host}/globns/*`, `${reg.host}/globns/pkg:1`, `${reg.host}//globns/`]
  ) {
    await Deno.writeTextFile(
      join(dir, "config.json"),
      JSON.stringify({ verify: [{ prefix, key: "k.pub" }] }),
    );
    const r = await runCli(["get", image, "-f"], {
      dataHome: await tempDir(),
      env: { OCIPKG_CONFIG: join(dir, "config.json") },
    });
    if (r.code === 0) escaped.push(prefix);
  }
  assertEquals(escaped, [], "unsigned image installed under these rules");
});

// Class: store entry for one platform satisfied by another. An index with ONE manifest and
// no platform on its descriptor is picked for any platform, although the manifest's own
// `vnd.ocipkg.platform` annotation says linux/amd64; since it "declares" a platform, its
// binaries are not checked either: amd64 libraries land in the linux/arm64 entry.
Deno.test("a one-manifest index whose manifest declares linux/amd64 is not installed for linux/arm64", async () => {
  const image = `${reg.host}/oneidx/foo:1`;
  const pkg = await pkgWith({ "lib/libfoo.so": elfHeader(EM.x86_64) });
  await push(pkg, image, "linux/amd64");
  const repo = openRepository(ImageName.parse(image));
  const m = await repo.resolve("1");
  const idx = await pushBytes(
    repo,
    OCI_INDEX,
    encodeJson({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: m.mediaType, digest: m.digest, size: m.size }],
    }),
  );
  await repo.tag(idx, "idx");
  const data = await tempDir();
  const r = await runCli(["get", `${reg.host}/oneidx/foo:idx`, "--platform", "linux/arm64"], {
    dataHome: data,
  });
  assert(r.code !== 0, `amd64 package installed for linux/arm64: ${r.stdout}`);
});

// Class: binaries that evade the header check. A universal Mach-O is "not a binary" to the
// check, so a fat file with only an x86_64 slice installs for darwin/arm64 (and for linux).
Deno.test("a fat Mach-O with only an x86_64 slice is refused for darwin/arm64 and linux/amd64", async () => {
  const image = `${reg.host}/fat/foo:1`;
  await push(await pkgWith({ "lib/libfoo.dylib": fatMachO() }), image);
  const installed: string[] = [];
  for (const platform of ["darwin/arm64", "linux/amd64"]) {
    const r = await runCli(["get", image, "--platform", platform], { dataHome: await tempDir() });
    if (r.code === 0) installed.push(platform);
  }
  assertEquals(installed, [], "fat x86_64-only Mach-O installed for");
});

// Class: binaries that evade the header check. An ELF whose OS ABI byte is not 0/3/9
// (Linux's loader ignores it for executables) is "not a binary"; a static archive is judged
// by its FIRST object only, or by nothing when 16 other members come first.
Deno.test("ELF OS ABI tricks and mixed static archives do not pass as another platform", async () => {
  const cases: Record<string, Uint8Array> = {
    "bin/tool": elfHeader(EM.x86_64, { osabi: 2 }), // x86-64, OS ABI "NetBSD"
    "lib/libmixed.a": arArchive([
      { name: "a.o", data: elfHeader(EM.aarch64) },
      { name: "b.o", data: elfHeader(EM.x86_64) },
    ]),
    "lib/libpadded.a": arArchive([
      ...Array.from({ length: 16 }, (_, i) => ({ name: `n${i}.txt`, data: new Uint8Array(8) })),
      { name: "evil.o", data: elfHeader(EM.x86_64) },
    ]),
  };
  const installed: string[] = [];
  for (const [name, data] of Object.entries(cases)) {
    const image = `${reg.host}/evade/${name.replace(/\W/g, "")}:1`;
    await push(await pkgWith({ [name]: data }), image);
    const r = await runCli(["get", image, "--platform", "linux/arm64"], {
      dataHome: await tempDir(),
    });
    if (r.code === 0) installed.push(name);
  }
  assertEquals(installed, [], "x86-64 code installed for linux/arm64");
});

// Class: `link --cargo` with TARGET values that map to odd platforms. Android, iOS/tvOS and
// x32 targets are read as linux/… and darwin/…, so a build for Android links a glibc Linux
// library, an iOS build a macOS one. An unsupported triple should be refused.
Deno.test("link --cargo refuses TARGETs that are not the platform they look like (android, ios, x32)", async () => {
  const image = `${reg.host}/cargo/foo:1`;
  await push(
    await pkgWith({ "lib/libfoo.a": arArchive([{ name: "f.o", data: elfHeader(EM.aarch64) }]) }),
    image,
    "linux/arm64",
  );
  const r = await runCli(["link", "--cargo", image], {
    dataHome: await tempDir(),
    env: { TARGET: "aarch64-linux-android" },
  });
  assert(r.code !== 0, `linux/arm64 library linked for aarch64-linux-android:\n${r.stdout}`);
  // iOS and Android are platforms of their own, never darwin or linux
  for (const t of ["aarch64-apple-ios", "aarch64-apple-tvos", "x86_64-apple-ios"]) {
    assertEquals(parsePlatform(t).os === "darwin", false, t);
  }
  assertEquals(parsePlatform("aarch64-linux-android").os, "android");
  // 32-bit ABIs on 64-bit machines are refused: their code is neither amd64 nor arm64
  for (const t of ["x86_64-unknown-linux-gnux32", "aarch64-unknown-linux-gnu_ilp32"]) {
    let p: string | undefined;
    try {
      p = JSON.stringify(parsePlatform(t));
    } catch { /* refused: fine */ }
    assertEquals(p, undefined, `${t} read as ${p}`);
  }
});

// Class: Docker Hub aliases. registry.hub.docker.com serves Docker Hub's registry API too; a
// rule for docker.io/library/ should apply to it.
Deno.test("a docker.io rule applies to registry.hub.docker.com", async () => {
  const dir = await tempDir();
  await Deno.writeTextFile(join(dir, "k.pub"), encodePublicKey(generateSigningKeyPair().publicKey));
  const policy = join(dir, "config.json");
  await Deno.writeTextFile(
    policy,
    JSON.stringify({ verify: [{ prefix: "docker.io/library/", key: "k.pub" }] }),
  );
  const reqs = await verifyRequirements(
    ImageName.parse("registry.hub.docker.com/library/alpine:3"),
    { policy },
  );
  assertEquals(reqs.length, 1);
});

// Class: default-port canonicalisation vs. the scheme actually used. `--ca-file` makes a
// loopback host speak https (port 443), yet the canonical identity assumes port 80: a rule
// `localhost:443/rt/` must not be escaped by `localhost/rt/…` (same server, https://localhost/).
// Rules compare ports by class: none, :80 and :443 are one (over-applying a rule is safe).
// Dialling keeps the scheme's default port (documented): https on :80 or http on :443 is
// not supported.
Deno.test("a rule for a registry's default port (80 or 443) applies to its name without a port, and back", async () => {
  const dir = await tempDir();
  await Deno.writeTextFile(join(dir, "k.pub"), encodePublicKey(generateSigningKeyPair().publicKey));
  const policy = join(dir, "config.json");
  for (
    const [rule, image] of [
      ["localhost:443/rt/", "localhost/rt/pkg:1"],
      ["localhost/rt/", "localhost:443/rt/pkg:1"],
      ["ghcr.io:80/org/", "ghcr.io/org/x:1"],
      ["ghcr.io/org/", "ghcr.io:80/org/x:1"],
    ]
  ) {
    await Deno.writeTextFile(policy, JSON.stringify({ verify: [{ prefix: rule, key: "k.pub" }] }));
    assertEquals(
      (await verifyRequirements(ImageName.parse(image!), { policy })).length,
      1,
      `${rule} on ${image}`,
    );
  }
});
