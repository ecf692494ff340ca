// Signing as a user runs it: `ocipkg key generate`, `sign`, `verify`, `attach`,
// `discover`, and the verify-before-install policy (`--verify-key`, the config file's `verify`
// rules) on `get`, `link` and `load` — against a real docker-registry (no referrers API: the
// `sha256-<hex>` fallback index) and `ocipkg serve` (the referrers API), and on layouts.
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { ImageName, NotFoundError, OciDir, openRepository, serve } from "../mod.ts";
import { listReferrers, referrersTag } from "../lib/transport/mod.ts";
import { readPrivateKey, signatureTag } from "../lib/sign/mod.ts";
import { runCli, samplePackage, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";

const reg = await startRegistry();
const srv = await serve({ root: await tempDir(), addr: "127.0.0.1:0", log: () => {} });
globalThis.addEventListener("unload", () => reg.kill());

/** A work dir with a cosign key pair (password "pw") and a second, unrelated pair. */
async function keys(): Promise<
  { dir: string; env: { COSIGN_PASSWORD: string; OCIPKG_CONFIG: string } }
> {
  const dir = await tempDir();
  const env = { COSIGN_PASSWORD: "pw", OCIPKG_CONFIG: join(dir, "config.json") };
  for (const prefix of ["cosign", "other"]) {
    const r = await runCli(["key", "generate", "--output-key-prefix", join(dir, prefix)], {
      env,
    });
    assertEquals(r.code, 0, r.stderr);
  }
  return { dir, env };
}

/** One error line, no stack trace. */
function oneLineError(stderr: string, re: RegExp): void {
  const lines = stderr.trim().split("\n");
  assertEquals(lines.length, 1, stderr);
  assert(re.test(lines[0]!), stderr);
  assert(!stderr.includes("    at "), stderr);
}

async function packAndPush(host: string, repo: string, dir: string): Promise<string> {
  const image = `${host}/${repo}:1`;
  const tar = join(dir, `${repo.replaceAll("/", "_")}.tar`);
  let r = await runCli(["pack", await samplePackage(await tempDir()), tar, "-t", image]);
  assertEquals(r.code, 0, r.stderr);
  r = await runCli(["push", tar]);
  assertEquals(r.code, 0, r.stderr);
  return image;
}

Deno.test("key generate: cosign's files, 0600, no overwrite without --force, password from COSIGN_PASSWORD", async () => {
  const { dir, env } = await keys();
  const key = join(dir, "cosign.key");
  const pem = await Deno.readTextFile(key);
  assert(pem.startsWith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"), pem);
  assert(
    (await Deno.readTextFile(join(dir, "cosign.pub"))).startsWith("-----BEGIN PUBLIC KEY-----"),
  );
  if (Deno.build.os !== "windows") assertEquals((await Deno.stat(key)).mode! & 0o777, 0o600);
  await readPrivateKey(pem, key, { password: "pw" });
  const again = await runCli(["key", "generate", "--output-key-prefix", join(dir, "cosign")], {
    env,
  });
  assertEquals(again.code, 1);
  oneLineError(again.stderr, /cosign\.key' exists; give --force/);
  assertEquals(await Deno.readTextFile(key), pem); // untouched
  const forced = await runCli(
    ["key", "generate", "--output-key-prefix", join(dir, "cosign"), "--force", "--json"],
    { env },
  );
  assertEquals(forced.code, 0, forced.stderr);
  assertEquals(JSON.parse(forced.stdout).key, key);
  assert(await Deno.readTextFile(key) !== pem);
  // no terminal and no COSIGN_PASSWORD: a one-line usage error, nothing written
  const noPw = await runCli(["key", "generate", "--output-key-prefix", join(dir, "n")]);
  assertEquals(noPw.code, 2);
  oneLineError(noPw.stderr, /set COSIGN_PASSWORD/);
  const bad = await runCli(["key", "make"], { env });
  assertEquals(bad.code, 2);
});

Deno.test("docker-registry (no referrers API): sign, verify, referrers in the sha256-<hex> index, attach, discover", async () => {
  const { dir, env } = await keys();
  const image = await packAndPush(reg.host, "sig/cli", dir);
  const cosignKey = join(dir, "cosign.key");
  const pub = join(dir, "cosign.pub");
  // nothing signed yet
  let r = await runCli(["verify", image, "--key", pub], { env });
  assertEquals(r.code, 1);
  oneLineError(
    r.stderr,
    /^error: no signature of sha256:[0-9a-f]{64} in 127\.0\.0\.1:\d+\/sig\/cli/,
  );

  r = await runCli(["sign", image, "--key", cosignKey, "-a", "build=42", "--json"], { env });
  assertEquals(r.code, 0, r.stderr);
  const signed = JSON.parse(r.stdout);
  assertEquals(signed.mode, "tag");
  assertEquals(signed.tag, signatureTag(signed.digest));

  r = await runCli(["verify", image, "--key", pub, "--json"], { env });
  assertEquals(r.code, 0, r.stderr);
  const v = JSON.parse(r.stdout);
  assertEquals(v.digest, signed.digest);
  assertEquals(v.signatures[0].source, "tag");
  assertEquals(v.signatures[0].dockerReference, `${reg.host}/sig/cli`);
  assertEquals(v.signatures[0].annotations, { build: "42" });

  r = await runCli(["verify", image, "--key", join(dir, "other.pub")], { env });
  assertEquals(r.code, 1);
  oneLineError(r.stderr, /does not verify with .*other\.pub/);

  // as a referrer: docker-registry has no API, so the fallback index lists it
  r = await runCli(["sign", image, "--key", cosignKey, "--referrers", "--json"], { env });
  assertEquals(r.code, 0, r.stderr);
  const ref = JSON.parse(r.stdout);
  assertEquals([ref.mode, ref.tag], ["referrer", referrersTag(signed.digest)]);
  const t = openRepository(ImageName.parse(image), { credential: null });
  try {
    assertEquals(await t.referrers(signed.digest), undefined); // no API
    const listed = await listReferrers(t, signed.digest);
    assertEquals(listed.source, "fallback");
    assertEquals(listed.referrers.map((d) => d.digest), [ref.manifest]);
  } finally {
    await t.close();
  }

  const sbom = join(dir, "sbom.spdx.json");
  await Deno.writeTextFile(sbom, '{"spdxVersion":"SPDX-2.3"}');
  r = await runCli(
    [
      "attach",
      image,
      sbom,
      "--artifact-type",
      "application/spdx+json",
      "-a",
      "kind=sbom",
      "--json",
    ],
    { env },
  );
  assertEquals(r.code, 0, r.stderr);
  const attached = JSON.parse(r.stdout);
  assertEquals(attached.fallbackTag, referrersTag(signed.digest));

  r = await runCli(["discover", image, "--json"], { env });
  assertEquals(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout);
  assertEquals(
    d.referrers.map((x: { artifactType: string; source: string }) => [x.artifactType, x.source]),
    [
      ["application/vnd.dev.cosign.artifact.sig.v1+json", "fallback"],
      ["application/spdx+json", "fallback"],
    ],
  );
  r = await runCli(["discover", image, "--artifact-type", "application/spdx+json"], { env });
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assertEquals(lines.length, 2, r.stdout);
  assertEquals(lines[1], `└── application/spdx+json ${attached.digest}`);
  // both signatures verify (tag scheme and referrer)
  r = await runCli(["verify", image, "--key", pub], { env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout.trim().split("\n").length, 2, r.stdout);
});

Deno.test("ocipkg serve (referrers API): a referrer signature needs no fallback index; copy by digest carries it", async () => {
  const { dir, env } = await keys();
  const image = await packAndPush(srv.addr, "sig/api", dir);
  let r = await runCli(
    ["sign", image, "--key", join(dir, "cosign.key"), "--referrers", "--json"],
    { env },
  );
  assertEquals(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assertEquals([s.mode, s.tag], ["referrer", null]);
  const t = openRepository(ImageName.parse(image), { credential: null });
  try {
    assertEquals((await t.referrers(s.digest))?.map((d) => d.digest), [s.manifest]);
    let missing = false;
    await t.resolve(referrersTag(s.digest)).catch((e) => missing = e instanceof NotFoundError);
    assert(missing, "no fallback index on a registry with the API");
  } finally {
    await t.close();
  }
  r = await runCli(["verify", image, "--key", join(dir, "cosign.pub"), "--json"], { env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout).signatures[0].source, "referrer");
  r = await runCli(["discover", image], { env });
  assert(r.stdout.includes("application/vnd.dev.cosign.artifact.sig.v1+json"), r.stdout);

  // copy by digest to docker-registry: the signature comes along, listed in the fallback index
  const byDigest = `${srv.addr}/sig/api@${s.digest}`;
  const dest = `${reg.host}/sig/copied:1`;
  r = await runCli(["copy", byDigest, dest], { env });
  assertEquals(r.code, 0, r.stderr);
  r = await runCli(["verify", dest, "--key", join(dir, "cosign.pub"), "--json"], { env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout).signatures[0].source, "referrer");
  // by tag, without --include-signatures: the image only
  const plain = `${reg.host}/sig/plain:1`;
  r = await runCli(["copy", image, plain], { env });
  assertEquals(r.code, 0, r.stderr);
  r = await runCli(["verify", plain, "--key", join(dir, "cosign.pub")], { env });
  assertEquals(r.code, 1);
  oneLineError(r.stderr, /no signature of/);
});

Deno.test("a package signed before it is pushed: the signature travels with push and verifies on the registry", async () => {
  const { dir, env } = await keys();
  const image = `${reg.host}/sig/early:1`;
  const tar = join(dir, "early.tar");
  let r = await runCli(["pack", await samplePackage(await tempDir()), tar, "-t", image]);
  assertEquals(r.code, 0, r.stderr);
  r = await runCli(["sign", tar, "--key", join(dir, "cosign.key")], { env });
  assertEquals(r.code, 0, r.stderr);
  r = await runCli(["verify", tar, "--key", join(dir, "cosign.pub")], { env });
  assertEquals(r.code, 0, r.stderr);
  // the archive still has one image (its signature is not "an image")
  r = await runCli(["push", tar], { env });
  assertEquals(r.code, 0, r.stderr);
  r = await runCli(["verify", image, "--key", join(dir, "cosign.pub"), "--json"], { env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout).signatures[0].dockerReference, `${reg.host}/sig/early`);
});

Deno.test("verify: every failure is one line and exit 1 — tampered payload, another image's signature, malformed manifest", async () => {
  const { dir, env } = await keys();
  const pub = join(dir, "cosign.pub");
  // two images in one oci-dir, each signed
  const lay = join(dir, "lay");
  for (const n of ["a", "b"]) {
    const r = await runCli([
      "pack",
      await samplePackage(await tempDir()),
      `oci:${lay}`,
      "-t",
      `example.com/${n}:1`,
      "--append", // the second beside the first
    ]);
    assertEquals(r.code, 0, r.stderr);
    const s = await runCli([
      "sign",
      `oci:${lay}:example.com/${n}:1`,
      "--key",
      join(dir, "cosign.key"),
    ], { env });
    assertEquals(s.code, 0, s.stderr);
  }
  const layout = await OciDir.open(lay);
  const a = await layout.resolve("example.com/a:1");
  const b = await layout.resolve("example.com/b:1");
  const sigA = await layout.resolve(signatureTag(a.digest));
  const sigB = await layout.resolve(signatureTag(b.digest));
  // b's signature manifest put under a's .sig tag: a valid signature, for another digest
  await layout.tag(sigB, signatureTag(a.digest));
  await layout.close();
  let r = await runCli(["verify", `oci:${lay}:example.com/a:1`, "--key", pub], { env });
  assertEquals(r.code, 1);
  oneLineError(r.stderr, new RegExp(`was made for ${b.digest}, not ${a.digest}`));

  // a's signature back, with its payload blob altered on disk
  let l2 = await OciDir.open(lay);
  await l2.tag(sigA, signatureTag(a.digest));
  const m = JSON.parse(new TextDecoder().decode(await Deno.readFile(l2.blobPath(sigA.digest))));
  await l2.close();
  const payloadPath = join(lay, "blobs", "sha256", m.layers[0].digest.slice(7));
  const payload = await Deno.readTextFile(payloadPath);
  await Deno.chmod(payloadPath, 0o644);
  await Deno.writeTextFile(payloadPath, payload.replace("example.com/a", "example.com/x"));
  r = await runCli(["verify", `oci:${lay}:example.com/a:1`, "--key", pub], { env });
  assertEquals(r.code, 1);
  oneLineError(r.stderr, /does not match its digest \(tampered\)/);
  await Deno.writeTextFile(payloadPath, payload);

  // the image itself under a's .sig tag: not a signature manifest
  l2 = await OciDir.open(lay);
  await l2.tag(b, signatureTag(a.digest));
  await l2.close();
  r = await runCli(["verify", `oci:${lay}:example.com/a:1`, "--key", pub], { env });
  assertEquals(r.code, 1);
  oneLineError(r.stderr, /layer, not a signature/);
});

Deno.test("policy: --verify-key and config rules refuse unsigned images before extraction; a verified cached get makes no request", async () => {
  const { dir, env } = await keys();
  const pub = join(dir, "cosign.pub");
  const own = await startRegistry(); // stopped below, to show the cached path needs no registry
  const signedImage = await packAndPush(own.host, "pol/signed", dir);
  const unsigned = await packAndPush(own.host, "pol/unsigned", dir);
  let r = await runCli(["sign", signedImage, "--key", join(dir, "cosign.key")], { env });
  assertEquals(r.code, 0, r.stderr);
  const store = await tempDir();

  // --verify-key: refused, nothing in the store
  r = await runCli(["get", unsigned, "--verify-key", pub], { env, dataHome: store });
  assertEquals(r.code, 1);
  oneLineError(
    r.stderr,
    /refusing to install image '.*pol\/unsigned:1' .*required by --verify-key: no signature/,
  );
  assertEquals([...Deno.readDirSync(store)].filter((e) => !e.name.startsWith(".")), []);
  r = await runCli(["get", signedImage, "--verify-key", join(dir, "other.pub")], {
    env,
    dataHome: store,
  });
  assertEquals(r.code, 1);
  oneLineError(r.stderr, /does not verify with .*other\.pub/);

  r = await runCli(["get", signedImage, "--verify-key", pub], { env, dataHome: store });
  assertEquals(r.code, 0, r.stderr);
  const installedDir = r.stdout.trim();
  assert((await Deno.stat(join(installedDir, "lib", "libfoo.a"))).isFile);

  // the config file's rule for the namespace applies to get, link and load alike
  await Deno.writeTextFile(
    env.OCIPKG_CONFIG,
    JSON.stringify({ verify: [{ prefix: `${own.host}/pol/`, key: "cosign.pub" }] }),
  );
  r = await runCli(["link", unsigned, "--cargo"], { env, dataHome: store });
  assertEquals(r.code, 1);
  oneLineError(
    r.stderr,
    /refusing to install .*required by verify rule '127\.0\.0\.1:\d+\/pol\/' of /,
  );
  const tar = join(dir, "unsigned.tar");
  r = await runCli(["pull", unsigned, "-o", tar], { env });
  assertEquals(r.code, 0, r.stderr);
  r = await runCli(["load", tar], { env, dataHome: store });
  assertEquals(r.code, 1);
  oneLineError(r.stderr, /refusing to install .*no signature/);

  // verified once: with the registry gone, a cached link under the policy still works
  await own.stop();
  r = await runCli(["link", signedImage, "--cargo"], { env, dataHome: store });
  assertEquals(r.code, 0, r.stderr);
  assert(r.stdout.includes("cargo:rustc-link-search=native="), r.stdout);
  // a key it was never verified with needs the registry again: an error, not a silent pass
  await Deno.writeTextFile(
    env.OCIPKG_CONFIG,
    JSON.stringify({ verify: [{ prefix: `${own.host}/pol/`, key: "other.pub" }] }),
  );
  r = await runCli(["get", signedImage], { env, dataHome: store });
  assertEquals(r.code, 1, r.stdout);
  oneLineError(r.stderr, /127\.0\.0\.1/);
});

Deno.test("policy: a rule holds for every spelling of its registry — LocalHost, 127.1, 2130706433 of an unsigned image refused, nothing installed; the signed image accepted", async () => {
  const { dir, env } = await keys();
  const port = reg.host.split(":")[1];
  const unsigned = await packAndPush(reg.host, "rt/unsigned", dir);
  const signed = await packAndPush(reg.host, "rt/signed", dir);
  let r = await runCli(["sign", signed, "--key", join(dir, "cosign.key")], { env });
  assertEquals(r.code, 0, r.stderr);
  const spellings = [`LocalHost:${port}`, `127.1:${port}`, `2130706433:${port}`];
  for (const rule of [`localhost:${port}/rt/`, `127.0.0.1:${port}/rt/`]) {
    await Deno.writeTextFile(
      env.OCIPKG_CONFIG,
      JSON.stringify({ verify: [{ prefix: rule, key: "cosign.pub" }] }),
    );
    for (const host of spellings) {
      const store = await tempDir();
      r = await runCli(["get", `${host}/rt/unsigned:1`], { env, dataHome: store });
      assertEquals(r.code, 1, `${rule}, ${host}: ${r.stdout}${r.stderr}`);
      oneLineError(
        r.stderr,
        new RegExp(
          `refusing to install image '.*/rt/unsigned:1' .*required by verify rule '${
            rule.replaceAll(".", "\\.")
          }' of .*: no signature of`,
        ),
      );
      assertEquals([...Deno.readDirSync(store)].filter((e) => !e.name.startsWith(".")), []);
      r = await runCli(["get", `${host}/rt/signed:1`], { env, dataHome: store });
      assertEquals(r.code, 0, `${rule}, ${host}: ${r.stderr}`);
      assert((await Deno.stat(join(r.stdout.trim(), "lib", "libfoo.a"))).isFile);
    }
  }
  // a config file holding a list on its own is refused, not read as "no rules"
  await Deno.writeTextFile(
    env.OCIPKG_CONFIG,
    JSON.stringify([{ prefix: `127.0.0.1:${port}/rt/`, key: "cosign.pub" }]),
  );
  const store = await tempDir();
  r = await runCli(["get", unsigned], { env, dataHome: store });
  assertEquals(r.code, 1, r.stdout);
  oneLineError(
    r.stderr,
    /^error: config file .*config\.json must be a JSON object such as \{"verify": \[\.\.\.\]\}, not an array$/,
  );
  assertEquals([...Deno.readDirSync(store)], []);
});

Deno.test("verify: a missing key file is named with the flag that gave it", async () => {
  const { dir, env } = await keys();
  const r = await runCli(
    ["verify", `${reg.host}/nothing/here:1`, "--key", join(dir, "absent.pub")],
    {
      env,
    },
  );
  assertEquals(r.code, 1);
  oneLineError(r.stderr, /^error: key .*absent\.pub \(--key\) does not exist$/);
});

Deno.test("policy: a malformed config file is named in one line", async () => {
  const { dir, env } = await keys();
  for (
    const [body, re] of [
      ["{", /config file .*config\.json is not valid JSON/],
      ['{"verify": {}}', /'verify' must be a list of rules/],
      ['{"verify": [{"prefix": "x/"}]}', /verify rule 1 needs a 'key'/],
      ['{"verify": [{"key": "k.pub"}]}', /verify rule 1 needs a 'prefix'/],
      // a list on its own is not a config file: refused, not read as "no rules"
      [
        '[{"prefix": "127.0.0.1:1/x/", "key": "cosign.pub"}]',
        /^error: config file .*config\.json must be a JSON object .*, not an array$/,
      ],
      ['"x"', /config file .*config\.json must be a JSON object .*, not a string$/],
      ["1", /config file .*config\.json must be a JSON object .*, not a number$/],
      ["null", /config file .*config\.json must be a JSON object .*, not null$/],
      [
        '{"verify": [{"prefix": "x/", "key": "cosign.pub"}]}',
        /config file .*config\.json: verify rule 1: 'x' in prefix 'x\/' is not a registry host/,
      ],
    ] as const
  ) {
    await Deno.writeTextFile(env.OCIPKG_CONFIG, body);
    const r = await runCli(["get", "127.0.0.1:1/x/y:1"], { env, dataHome: join(dir, "s") });
    assertEquals(r.code, 1, r.stderr);
    oneLineError(r.stderr, re);
  }
});

Deno.test("policy: key files that are missing, directories or fifos are named before any request", async () => {
  const { dir, env } = await keys();
  const fifo = join(dir, "fifo.pub");
  const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  const cases: [string, RegExp][] = [
    [join(dir, "absent.pub"), /absent\.pub \(verify rule '' of .*\) does not exist/],
    [dir, /\(verify rule '' of .*\) is not a regular file/],
  ];
  if (made.success) {
    cases.push([fifo, /fifo\.pub \(verify rule '' of .*\) is not a regular file/]);
  }
  for (const [key, re] of cases) {
    await Deno.writeTextFile(env.OCIPKG_CONFIG, JSON.stringify({ verify: [{ prefix: "", key }] }));
    // a registry nobody listens on: the key is refused before it is asked
    const r = await runCli(["get", "127.0.0.1:1/x/y:1"], { env, dataHome: join(dir, "s") });
    assertEquals(r.code, 1, r.stderr);
    oneLineError(r.stderr, re);
  }
  // the config file itself a fifo: refused, not waited on
  if (made.success) {
    const r = await runCli(["get", "127.0.0.1:1/x/y:1"], {
      env: { ...env, OCIPKG_CONFIG: fifo },
      dataHome: join(dir, "s"),
    });
    assertEquals(r.code, 1, r.stderr);
    oneLineError(r.stderr, /config file .*fifo\.pub is not a regular file/);
  }
});

Deno.test("policy: installed before the policy, or a tag moved to an unsigned image — refused, the store keeps what it had", async () => {
  const { dir, env } = await keys();
  const pub = join(dir, "cosign.pub");
  const image = await packAndPush(reg.host, "pol2/lib", dir);
  const store = await tempDir();
  // installed with no policy
  let r = await runCli(["get", image], { env, dataHome: store });
  assertEquals(r.code, 0, r.stderr);
  const installed = r.stdout.trim();
  const before = await Deno.readFile(join(installed, "lib", "libfoo.a"));
  // the policy now names it: not verified yet, so asked of the registry, and refused
  r = await runCli(["get", image, "--verify-key", pub], { env, dataHome: store });
  assertEquals(r.code, 1);
  oneLineError(r.stderr, /refusing to install .*no signature of/);
  r = await runCli(["link", image, "--cargo", "--verify-key", pub], { env, dataHome: store });
  assertEquals(r.code, 1);
  // signed: verified against the registry once, recorded, no reinstall (same digest)
  r = await runCli(["sign", image, "--key", join(dir, "cosign.key")], { env });
  assertEquals(r.code, 0, r.stderr);
  r = await runCli(["get", image, "--verify-key", pub], { env, dataHome: store });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout.trim(), installed);
  // the tag moves to an unsigned image: --refresh refuses it and keeps the verified one
  await packAndPush(reg.host, "pol2/lib", dir);
  r = await runCli(["get", image, "--refresh", "--verify-key", pub], { env, dataHome: store });
  assertEquals(r.code, 1);
  oneLineError(r.stderr, /refusing to install .*no signature of/);
  assertEquals(await Deno.readFile(join(installed, "lib", "libfoo.a")), before);
  r = await runCli(["get", image, "--verify-key", pub], { env, dataHome: store });
  assertEquals(r.code, 0, r.stderr); // cached and verified: no request
});

Deno.test("policy on a multi-platform index: the index's signature admits the host's manifest; a platform manifest's alone does not", async () => {
  const { dir, env } = await keys();
  const pub = join(dir, "cosign.pub");
  const image = `${reg.host}/pol3/multi:1`;
  const tars = [];
  for (const platform of ["linux/amd64", "linux/arm64"]) {
    const tar = join(dir, `${platform.replace("/", "-")}.tar`);
    const r = await runCli([
      "pack",
      await samplePackage(await tempDir()),
      tar,
      "-t",
      image,
      "--platform",
      platform,
    ]);
    assertEquals(r.code, 0, r.stderr);
    tars.push(tar);
  }
  let r = await runCli(["push", ...tars, image], { env });
  assertEquals(r.code, 0, r.stderr);
  const index = (await runCli(["resolve", image], { env })).stdout.trim();
  // one platform manifest signed by digest: the tag (an index) is not
  const t = openRepository(ImageName.parse(image), { credential: null });
  const doc = JSON.parse(
    new TextDecoder().decode(
      new Uint8Array(await new Response(await t.fetch(await t.resolve("1"))).arrayBuffer()),
    ),
  );
  await t.close();
  const amd = doc.manifests[0].digest;
  r = await runCli(["sign", `${reg.host}/pol3/multi@${amd}`, "--key", join(dir, "cosign.key")], {
    env,
  });
  assertEquals(r.code, 0, r.stderr);
  const store = await tempDir();
  const plat = ["--platform", "linux/amd64"];
  r = await runCli(["get", image, ...plat, "--verify-key", pub], { env, dataHome: store });
  assertEquals(r.code, 1);
  oneLineError(r.stderr, new RegExp(`refusing to install .*\\(${index}\\).*no signature of`));
  // the index signed: installed, and a cached get under the policy needs no registry
  r = await runCli(["sign", image, "--key", join(dir, "cosign.key")], { env });
  assertEquals(r.code, 0, r.stderr);
  r = await runCli(["get", image, ...plat, "--verify-key", pub], { env, dataHome: store });
  assertEquals(r.code, 0, r.stderr);
  r = await runCli(["--debug", "get", image, ...plat, "--verify-key", pub], {
    env,
    dataHome: store,
  });
  assertEquals(r.code, 0, r.stderr);
  assert(!r.stderr.includes("debug:"), r.stderr); // no request
});
