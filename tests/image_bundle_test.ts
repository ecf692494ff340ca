// Sigstore bundles on images (cosign v3's format): a keyed bundle made by `ocipkg sign --bundle`
// and a keyless one made against local Fulcio/Rekor stand-ins (tests/_sigstore_keyless.ts),
// attached as OCI 1.1 referrers to images on `ocipkg serve` (the referrers API) and on
// docker-registry (the `sha256-<hex>` fallback index), checked by `verify`,
// `verify-attestation`, `get --verify-key`, `--certificate-identity` and the config file's rules
// — before any layer is fetched, and cached so a second get makes no request. Then what a REAL
// keyless bundle (the Sigstore conformance suite's, signing a file) proves about an image it is
// attached to: nothing — refused as another artifact's. And hostile referrers.
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { ImageName, openRepository, serve, type ServeHandle } from "../mod.ts";
import { runCli, samplePackage, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";
import {
  attachBundle,
  GITHUB_ISSUER,
  imageStatement,
  type KeylessInstance,
  RELEASE_IDENTITY,
  startKeylessInstance,
} from "./_sigstore_keyless.ts";
import {
  encodeJson,
  generateSigningKeyPair,
  MemoryTarget,
  OCI_MANIFEST,
  pushBytes,
  SignatureError,
  signImageBundle,
  VerifyBudget,
  verifyImageBundles,
  verifyImageBundlesWithin,
} from "./_internal.ts";

const reg = await startRegistry();
globalThis.addEventListener("unload", () => reg.kill());
const serveLog: string[] = [];
const srv = await serve({
  root: await tempDir(),
  addr: "127.0.0.1:0",
  log: (l) => serveLog.push(l),
});
let sigstore: KeylessInstance | undefined;
const keyless = async () => sigstore ??= await startKeylessInstance();

const SLSA_V1 = "https://slsa.dev/provenance/v1";

/** One error line, no stack trace, matching `re`. */
function oneLineError(stderr: string, re: RegExp): void {
  const lines = stderr.trim().split("\n");
  assertEquals(lines.length, 1, stderr);
  assert(re.test(lines[0]!), stderr);
  assert(!stderr.includes("    at "), stderr);
}

/** A work dir with a cosign key pair (password "pw") and an unrelated pair; its config file. */
async function work(): Promise<
  { dir: string; env: { COSIGN_PASSWORD: string; OCIPKG_CONFIG: string } }
> {
  const dir = await tempDir();
  const env = { COSIGN_PASSWORD: "pw", OCIPKG_CONFIG: join(dir, "config.json") };
  for (const prefix of ["cosign", "other"]) {
    const r = await runCli(["key", "generate", "--output-key-prefix", join(dir, prefix)], { env });
    assertEquals(r.code, 0, r.stderr);
  }
  return { dir, env };
}

/** Pack a sample package and push it as `<host>/<repo>:1`; its name and manifest. */
async function pushed(host: string, repo: string, dir: string) {
  const image = `${host}/${repo}:1`;
  const tar = join(dir, `${host.replace(/\W/g, "_")}_${repo.replaceAll("/", "_")}.tar`);
  let r = await runCli(["pack", await samplePackage(await tempDir()), tar, "-t", image]);
  assertEquals(r.code, 0, r.stderr);
  r = await runCli(["push", tar]);
  assertEquals(r.code, 0, r.stderr);
  const target = openRepository(ImageName.parse(image), { credential: null });
  const subject = await target.resolve("1");
  // the one layer of the package: whether a command fetched it
  const manifest = JSON.parse(
    new TextDecoder().decode(
      new Uint8Array(await new Response(await target.fetch(subject)).arrayBuffer()),
    ),
  );
  return { image, target, subject, layer: manifest.layers[0].digest as string };
}

/** The store's verified records (every `.verified/*.json` under it). */
async function records(store: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (d.endsWith(".verified")) out.push(...JSON.parse(await Deno.readTextFile(p)).keys);
    }
  };
  await walk(store);
  return out;
}

Deno.test("a keyed bundle made by ocipkg (cosign v3's layout) verifies on serve and docker-registry: verify, get --verify-key, a key rule; cached", async () => {
  const { dir, env } = await work();
  const pub = join(dir, "cosign.pub");
  for (const host of [srv.addr, reg.host]) {
    const { image, target } = await pushed(host, "bundle/keyed", dir);
    let r = await runCli(["sign", image, "--key", join(dir, "cosign.key"), "--bundle", "--json"], {
      env,
    });
    assertEquals(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assertEquals(s.mode, "bundle");
    assertEquals(s.predicateType, "https://sigstore.dev/cosign/sign/v1");
    // the referrer as cosign writes it: the API lists it on serve; docker-registry gets the index
    assertEquals(s.tag, host === srv.addr ? null : `sha256-${s.digest.slice(7)}`);
    const m = JSON.parse(
      new TextDecoder().decode(
        new Uint8Array(
          await new Response(await target.fetch(await target.resolve(s.manifest))).arrayBuffer(),
        ),
      ),
    );
    assertEquals(m.artifactType, "application/vnd.dev.sigstore.bundle.v0.3+json");
    assertEquals(m.config.mediaType, "application/vnd.oci.empty.v1+json");
    assertEquals(m.layers.length, 1);
    assertEquals(m.layers[0].mediaType, "application/vnd.dev.sigstore.bundle.v0.3+json");
    assertEquals(m.subject.digest, s.digest);
    assertEquals(m.annotations["dev.sigstore.bundle.content"], "dsse-envelope");
    assertEquals(m.annotations["dev.sigstore.bundle.predicateType"], s.predicateType);

    r = await runCli(["verify", image, "--key", pub, "--json"], { env });
    assertEquals(r.code, 0, r.stderr);
    const v = JSON.parse(r.stdout);
    assertEquals(v.signatures, []);
    assertEquals(v.bundles.length, 1);
    assertEquals(v.bundles[0].signer.kind, "key");
    assertEquals(v.bundles[0].tlogEntries, []); // signed offline: no log entry, the key is the trust
    r = await runCli(["verify", image, "--key", join(dir, "other.pub")], { env });
    assertEquals(r.code, 1);
    oneLineError(
      r.stderr,
      /^error: bundle referrer sha256:\S+ in .* was not signed with key .*other\.pub/,
    );

    // get --verify-key: verified, installed, recorded by the key's fingerprint
    const store = await tempDir();
    r = await runCli(["get", image, "--verify-key", pub], { env, dataHome: store });
    assertEquals(r.code, 0, r.stderr);
    const fp = v.bundles[0].signer.fingerprint as string;
    assertEquals(await records(store), [fp]);
    r = await runCli(["get", image, "--verify-key", join(dir, "other.pub")], {
      env,
      dataHome: await tempDir(),
    });
    assertEquals(r.code, 1);
    oneLineError(r.stderr, /refusing to install .*required by --verify-key: .*not signed with key/);
  }

  // a key rule on a registry that goes away: verified once, then cached (no request possible)
  const own = await startRegistry();
  const { image } = await pushed(own.host, "bundle/cached", dir);
  let r = await runCli(["sign", image, "--key", join(dir, "cosign.key"), "--bundle"], { env });
  assertEquals(r.code, 0, r.stderr);
  await Deno.writeTextFile(
    env.OCIPKG_CONFIG,
    JSON.stringify({ verify: [{ prefix: `${own.host}/bundle/`, key: "cosign.pub" }] }),
  );
  const store = await tempDir();
  r = await runCli(["get", image], { env, dataHome: store });
  assertEquals(r.code, 0, r.stderr);
  await own.stop();
  r = await runCli(["get", image], { env, dataHome: store });
  assertEquals(r.code, 0, r.stderr);
  r = await runCli(["link", image, "--cargo"], { env, dataHome: store });
  assertEquals(r.code, 0, r.stderr);
});

Deno.test("a keyless bundle (local Fulcio and Rekor) verifies by identity and a glob rule; a wrong identity or issuer is refused before any layer; cached get makes no request", async () => {
  const sig = await keyless();
  const { dir, env } = await work();
  const root = join(dir, "root.json");
  await Deno.writeTextFile(root, JSON.stringify(sig.trustedRoot));
  const ownLog: string[] = [];
  const own: ServeHandle = await serve({
    root: await tempDir(),
    addr: "127.0.0.1:0",
    log: (l) => ownLog.push(l),
  });
  const { image, target, subject, layer } = await pushed(own.addr, "org/libfoo", dir);
  await attachBundle(
    target,
    subject,
    await sig.signStatement(imageStatement(subject.digest)),
    { predicateType: "https://sigstore.dev/cosign/sign/v1" },
  );

  const idFlags = [
    "--certificate-identity",
    RELEASE_IDENTITY,
    "--certificate-oidc-issuer",
    GITHUB_ISSUER,
  ];
  let r = await runCli(["verify", image, ...idFlags, "--trusted-root", root], { env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(
    r.stdout.trim().replace(/#\d+$/, "#N"),
    `Verified ${subject.digest}: Sigstore bundle ${
      r.stdout.match(/bundle (sha256:\S+)/)![1]
    } signed by ${RELEASE_IDENTITY} (issuer ${GITHUB_ISSUER}), logged in ${sig.url} #N`,
  );
  // under the shipped public-good root, the stand-in's CA is nobody
  r = await runCli(["verify", image, ...idFlags], { env });
  assertEquals(r.code, 1);
  oneLineError(r.stderr, /does not verify: .*--trusted-root/);
  // regexp flags, anchored
  r = await runCli([
    "verify",
    image,
    "--certificate-identity-regexp",
    "^https://github\\.com/org/libfoo/",
    "--certificate-oidc-issuer-regexp",
    "^https://token\\.actions\\.githubusercontent\\.com$",
    "--trusted-root",
    root,
  ], { env });
  assertEquals(r.code, 0, r.stderr);

  // get with the flags: installed, recorded by identity under that root
  let store = await tempDir();
  r = await runCli(["get", image, ...idFlags, "--trusted-root", root], { env, dataHome: store });
  assertEquals(r.code, 0, r.stderr);
  const [record] = await records(store);
  assert(record?.startsWith("identity:"), record);
  assertEquals(JSON.parse(record!.slice("identity:".length)).identity, RELEASE_IDENTITY);

  // the config file's keyless rule (a glob), wrong identity and wrong issuer first
  const rule = (identity: string, issuer = GITHUB_ISSUER) =>
    Deno.writeTextFile(
      env.OCIPKG_CONFIG,
      JSON.stringify({
        verify: [{ prefix: `${own.addr}/org/`, identity, issuer, trustedRoot: "root.json" }],
      }),
    );
  const layerFetched = () => ownLog.some((l) => l.startsWith("GET ") && l.includes(layer));
  ownLog.length = 0;
  store = await tempDir();
  await rule("https://github.com/other/*/.github/workflows/*@refs/tags/*");
  r = await runCli(["get", image], { env, dataHome: store });
  assertEquals(r.code, 1);
  oneLineError(
    r.stderr,
    /refusing to install image .*required by verify rule .* was signed by 'https:\/\/github\.com\/org\/libfoo\/.*', not one matching/,
  );
  await rule(
    "https://github.com/org/*/.github/workflows/*@refs/tags/*",
    "https://accounts.google.com",
  );
  r = await runCli(["get", image], { env, dataHome: store });
  assertEquals(r.code, 1);
  oneLineError(
    r.stderr,
    /with issuer 'https:\/\/token\.actions\.githubusercontent\.com', not 'https:\/\/accounts\.google\.com'/,
  );
  // a branch is not a tag: no '*' crosses a '/'
  await rule("https://github.com/org/*/.github/workflows/*@refs/heads/*");
  r = await runCli(["get", image], { env, dataHome: store });
  assertEquals(r.code, 1);
  assert(!layerFetched(), ownLog.join("\n"));
  assertEquals([...Deno.readDirSync(store)].filter((e) => !e.name.startsWith(".")), []);

  await rule("https://github.com/org/*/.github/workflows/*@refs/tags/*");
  r = await runCli(["get", image], { env, dataHome: store });
  assertEquals(r.code, 0, r.stderr);
  assert(layerFetched(), "installed after verifying");

  // cached: the registry gone, get and link under the rule need no request
  await own.close();
  r = await runCli(["get", image], { env, dataHome: store });
  assertEquals(r.code, 0, r.stderr);
  r = await runCli(["link", image, "--cargo"], { env, dataHome: store });
  assertEquals(r.code, 0, r.stderr);
  // a rule it was never verified under needs the registry again: an error, not a pass
  await rule("https://github.com/org/libbar/.github/workflows/*@refs/tags/*");
  r = await runCli(["get", image], { env, dataHome: store });
  assertEquals(r.code, 1);
});

Deno.test("attestations: a rule asking for slsaprovenance refuses an image without one (or one by another signer); verify-attestation prints the predicate — on docker-registry's fallback index", async () => {
  const sig = await keyless();
  const { dir, env } = await work();
  await Deno.writeTextFile(join(dir, "root.json"), JSON.stringify(sig.trustedRoot));
  const { image, target, subject } = await pushed(reg.host, "att/libfoo", dir);
  await attachBundle(target, subject, await sig.signStatement(imageStatement(subject.digest)));
  await Deno.writeTextFile(
    env.OCIPKG_CONFIG,
    JSON.stringify({
      verify: [{
        prefix: `${reg.host}/att/`,
        identity: "https://github.com/org/libfoo/**",
        issuer: GITHUB_ISSUER,
        trustedRoot: "root.json",
        attestations: ["slsaprovenance"],
      }],
    }),
  );
  let r = await runCli(["get", image], { env, dataHome: await tempDir() });
  assertEquals(r.code, 1);
  oneLineError(r.stderr, /required by verify rule .*: no slsaprovenance attestation of sha256:/);

  // a provenance by another workflow's identity does not count
  const provenance = { buildDefinition: { buildType: "https://example.com/build/v1" } };
  await attachBundle(
    target,
    subject,
    await sig.signStatement(
      imageStatement(subject.digest, SLSA_V1, provenance),
      "https://github.com/evil/fork/.github/workflows/x.yml@refs/heads/main",
    ),
    { predicateType: SLSA_V1 },
  );
  r = await runCli(["get", image], { env, dataHome: await tempDir() });
  assertEquals(r.code, 1);
  oneLineError(r.stderr, /was signed by 'https:\/\/github\.com\/evil\/fork\//);

  await attachBundle(
    target,
    subject,
    await sig.signStatement(imageStatement(subject.digest, SLSA_V1, provenance)),
    { predicateType: SLSA_V1 },
  );
  const store = await tempDir();
  r = await runCli(["get", image], { env, dataHome: store });
  assertEquals(r.code, 0, r.stderr);
  assert((await records(store)).some((x) => x.startsWith("attestation:") && x.includes(SLSA_V1)));

  const flags = [
    "--certificate-identity",
    RELEASE_IDENTITY,
    "--certificate-oidc-issuer",
    GITHUB_ISSUER,
    "--trusted-root",
    join(dir, "root.json"),
  ];
  r = await runCli(["verify-attestation", image, "--type", "slsaprovenance", ...flags, "--json"], {
    env,
  });
  assertEquals(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assertEquals(j.attestations.length, 1);
  assertEquals(j.attestations[0].predicateType, SLSA_V1);
  assertEquals(j.attestations[0].predicate, provenance);
  r = await runCli(["verify-attestation", image, "--type", "slsaprovenance1", ...flags], { env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout.trim()), provenance);
  r = await runCli(["verify-attestation", image, "--type", "cyclonedx", ...flags], { env });
  assertEquals(r.code, 1);
  oneLineError(r.stderr, /^error: no cyclonedx attestation of sha256:\S+ in .*other bundles hold/);
  r = await runCli(["verify-attestation", image, "--type", "nonsense", ...flags], { env });
  assertEquals(r.code, 2);
});

Deno.test("keyed attest: ocipkg attest, then verify-attestation --key; a keyless message signature over the manifest verifies too", async () => {
  const sig = await keyless();
  const { dir, env } = await work();
  const { image, target, subject } = await pushed(srv.addr, "att/keyed", dir);
  await Deno.writeTextFile(join(dir, "sbom.json"), JSON.stringify({ spdxVersion: "SPDX-2.3" }));
  let r = await runCli([
    "attest",
    image,
    "--key",
    join(dir, "cosign.key"),
    "--predicate",
    join(dir, "sbom.json"),
    "--type",
    "spdxjson",
    "--json",
  ], { env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout).predicateType, "https://spdx.dev/Document");
  r = await runCli(
    ["verify-attestation", image, "--type", "spdxjson", "--key", join(dir, "cosign.pub")],
    { env },
  );
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout.trim()), { spdxVersion: "SPDX-2.3" });
  // an attestation is not a signature
  r = await runCli(["verify", image, "--key", join(dir, "cosign.pub")], { env });
  assertEquals(r.code, 1);
  oneLineError(r.stderr, /no signature of .*other bundles hold https:\/\/spdx\.dev\/Document/);

  // a message-signature bundle over the manifest's own bytes
  const bytes = new Uint8Array(await new Response(await target.fetch(subject)).arrayBuffer());
  await attachBundle(target, subject, await sig.signBytes(bytes));
  await Deno.writeTextFile(join(dir, "root.json"), JSON.stringify(sig.trustedRoot));
  r = await runCli([
    "verify",
    image,
    "--certificate-identity",
    RELEASE_IDENTITY,
    "--certificate-oidc-issuer",
    GITHUB_ISSUER,
    "--trusted-root",
    join(dir, "root.json"),
    "--json",
  ], { env });
  assertEquals(r.code, 0, r.stderr);
  const v = JSON.parse(r.stdout);
  assertEquals(v.bundles[0].predicateType, null);
  assertEquals(v.bundles[0].tlogEntries[0].kind, "hashedrekord 0.0.1");
});

/** The Sigstore conformance suite (OCIPKG_SIGSTORE_CONFORMANCE overrides ../shared). */
const SUITE = Deno.env.get("OCIPKG_SIGSTORE_CONFORMANCE") ??
  join(new URL("..", import.meta.url).pathname, "..", "shared", "sigstore-conformance");
const CASES = join(SUITE, "bundle-verify");
const HAVE_SUITE = (() => {
  try {
    return Deno.statSync(CASES).isDirectory;
  } catch {
    return false;
  }
})();
if (!HAVE_SUITE) console.log(`note: ${CASES} is absent: the real keyless bundles are skipped`);

Deno.test({
  name:
    "a REAL keyless bundle (the conformance suite's, about a file) attached to an image proves nothing of it: refused as another artifact's",
  ignore: !HAVE_SUITE,
  fn: async () => {
    const { dir, env } = await work();
    const { image, target, subject } = await pushed(srv.addr, "real/keyless", dir);
    const identity =
      "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
    const flags = ["--certificate-identity", identity, "--certificate-oidc-issuer", GITHUB_ISSUER];
    // a message signature over a.txt: it signs a.txt's digest, not the manifest's
    const msg = JSON.parse(
      await Deno.readTextFile(join(CASES, "happy-path-v0.3", "bundle.sigstore.json")),
    );
    await attachBundle(target, subject, msg);
    let r = await runCli(["verify", image, ...flags], { env });
    assertEquals(r.code, 1);
    oneLineError(r.stderr, new RegExp(`signs sha256:[0-9a-f]{64}, not image ${subject.digest}`));
    // an in-toto statement about a.txt, under its own predicate type
    const dsse = JSON.parse(
      await Deno.readTextFile(join(CASES, "happy-path-intoto-in-dsse-v3", "bundle.sigstore.json")),
    );
    const payload = JSON.parse(atob(dsse.dsseEnvelope.payload));
    await attachBundle(target, subject, dsse, { predicateType: payload.predicateType });
    r = await runCli(["verify-attestation", image, "--type", payload.predicateType, ...flags], {
      env,
    });
    assertEquals(r.code, 1);
    oneLineError(
      r.stderr,
      new RegExp(`its in-toto statement is about .*, not image ${subject.digest}`),
    );
  },
});

Deno.test("hostile bundle referrers: another subject, no bundle layer, tampered, endless — refused in one line, within the budget", async () => {
  const signer = generateSigningKeyPair();
  const key = { key: signer.publicKey.export({ type: "spki", format: "pem" }).toString() };
  const signature = { kind: "signature" } as const;
  /** A target with an image (and another one), nothing attached. */
  const fresh = async () => {
    const t = new MemoryTarget();
    const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
    const m = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] };
    const image = await pushBytes(t, OCI_MANIFEST, encodeJson(m));
    const other = await pushBytes(t, OCI_MANIFEST, encodeJson({ ...m, annotations: { x: "y" } }));
    return { t, image, other };
  };
  const bytesOf = async (t: MemoryTarget, d: { digest: string; size: number; mediaType: string }) =>
    new Uint8Array(await new Response(await t.fetch(d)).arrayBuffer());
  const refused = async (
    t: MemoryTarget,
    image: Awaited<ReturnType<typeof fresh>>["image"],
    reason: string,
    re: RegExp,
    budget = new VerifyBudget(),
  ) => {
    try {
      await verifyImageBundlesWithin(t, image, [key], signature, {}, budget);
    } catch (e) {
      assert(e instanceof SignatureError, String(e));
      assertEquals(e.reason, reason, e.message);
      assert(re.test(e.message), e.message);
      assert(!e.message.includes("\n"));
      return;
    }
    throw new Error("verified");
  };

  // the other image's bundle, listed under this image's fallback index
  let { t, image, other } = await fresh();
  const r = await signImageBundle(t, other, signer.privateKey);
  const otherBundle = JSON.parse(new TextDecoder().decode(await bytesOf(t, r.bundle)));
  await attachBundle(t, image, otherBundle, { manifestSubject: other });
  await refused(t, image, "other-digest", /refers to sha256:\S+, not sha256:/);
  // the other image's bundle, with this image as the referrer's subject: its statement says no
  ({ t, image, other } = await fresh());
  await attachBundle(t, image, otherBundle);
  await refused(
    t,
    image,
    "other-digest",
    /its in-toto statement is about sha256:\S+, not image sha256:/,
  );
  // a referrer whose layer is not a bundle
  ({ t, image, other } = await fresh());
  await attachBundle(t, image, otherBundle, { layerMediaType: "application/octet-stream" });
  await refused(
    t,
    image,
    "malformed",
    /holds no Sigstore bundle layer \(its layer is 'application\/octet-stream'\)/,
  );
  // a bundle of this image whose statement was changed after signing
  ({ t, image, other } = await fresh());
  const mine = await signImageBundle(new MemoryTarget(), image, signer.privateKey);
  const scratch = new MemoryTarget();
  const made = await signImageBundle(scratch, image, signer.privateKey);
  const doc = JSON.parse(new TextDecoder().decode(await bytesOf(scratch, made.bundle)));
  const statement = JSON.parse(atob(doc.dsseEnvelope.payload));
  statement.predicate = { injected: true };
  doc.dsseEnvelope.payload = btoa(JSON.stringify(statement));
  await attachBundle(t, image, doc);
  await refused(t, image, "wrong-key", /was not signed with the key/);
  assertEquals(mine.mode, "bundle");
  // the good one verifies among the bad ones
  await signImageBundle(t, image, signer.privateKey);
  assertEquals((await verifyImageBundles(t, image, [key], signature)).length, 1);
  // endless referrers: the budget stops the looking, and says so
  ({ t, image, other } = await fresh());
  for (let i = 0; i < 70; i++) {
    await attachBundle(t, image, { ...otherBundle, n: i }, { manifestSubject: other });
  }
  const budget = new VerifyBudget();
  await refused(t, image, "other-digest", /stopped looking after 64 signature manifests/, budget);
  assertEquals(budget.spent.manifests, 64);
});

globalThis.addEventListener("unload", () => {
  sigstore?.close();
  srv.close();
});
