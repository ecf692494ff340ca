// Sigstore bundles as `verify-blob` checks them: the `bundle-verify` cases of the Sigstore
// conformance suite (../shared/sigstore-conformance; its README says how a case is laid out) —
// every case whose name does not end in `_fail` verifies, every `_fail` case is refused with a
// SignatureError or another OcipkgError naming the fault (never a crash of the libraries) — then
// the CLI on a few of them, hostile bundles, and the digest Deno's node:crypto lacks for ECDSA.
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { generateKeyPairSync, type KeyLike, sign, verify } from "node:crypto";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { ROOT, runCli } from "./_helpers.ts";
import {
  defaultDigest,
  digestOf,
  loadSigstore,
  OcipkgError,
  parseBundle,
  parseTrustedRoot,
  publicGoodTrustedRoot,
  SignatureError,
  type TrustedRoot,
  UsageError,
  verifyBlob,
  verifyBundle,
  withDefaultDigest,
} from "./_internal.ts";

/** The suite: ../shared beside the repository (OCIPKG_SIGSTORE_CONFORMANCE overrides it). */
const SUITE = Deno.env.get("OCIPKG_SIGSTORE_CONFORMANCE") ??
  join(ROOT, "..", "shared", "sigstore-conformance");
const CASES = join(SUITE, "bundle-verify");
const HAVE_SUITE = (() => {
  try {
    return Deno.statSync(CASES).isDirectory;
  } catch {
    return false;
  }
})();
if (!HAVE_SUITE) {
  console.log(`note: ${CASES} is absent: the Sigstore conformance cases are skipped`);
}

/** The suite's defaults (its README). */
const DEFAULT_IDENTITY =
  "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER = "https://token.actions.githubusercontent.com";

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** One case: its files, the artifact, the policy the suite gives it. */
function loadCase(name: string) {
  const dir = join(CASES, name);
  const file = (f: string) => join(dir, f);
  const text = (f: string) => Deno.readTextFileSync(file(f)).trim();
  return {
    dir,
    bundle: file("bundle.sigstore.json"),
    artifact: exists(file("artifact")) ? file("artifact") : join(CASES, "a.txt"),
    trustedRoot: exists(file("trusted_root.json")) ? file("trusted_root.json") : undefined,
    key: exists(file("key.pub")) ? file("key.pub") : undefined,
    identity: exists(file("identity")) ? text("identity") : DEFAULT_IDENTITY,
    issuer: exists(file("issuer")) ? text("issuer") : DEFAULT_ISSUER,
  };
}

const names = HAVE_SUITE
  ? [...Deno.readDirSync(CASES)].filter((e) => e.isDirectory).map((e) => e.name).sort()
  : [];

Deno.test("sigstore conformance: the suite holds its 70 bundle-verify cases", {
  ignore: !HAVE_SUITE,
}, () => {
  assertEquals(names.length, 70, names.join(" "));
});

/** Verify one case through the library, as verifyBlob does (the files read by the same readers). */
async function verifyCase(name: string) {
  const c = loadCase(name);
  const bundle = parseBundle(await Deno.readTextFile(c.bundle), c.bundle);
  let trustedRoot: TrustedRoot | undefined;
  if (c.trustedRoot) trustedRoot = parseTrustedRoot(await Deno.readTextFile(c.trustedRoot), name);
  const policy = c.key
    ? { key: await Deno.readTextFile(c.key) }
    : { identity: c.identity, issuer: c.issuer };
  return await verifyBundle(bundle, await Deno.readFile(c.artifact), policy, {
    trustedRoot,
    artifactName: c.artifact,
  });
}

for (const name of names) {
  const fail = name.endsWith("_fail");
  Deno.test(`sigstore conformance: ${name} ${fail ? "is refused" : "verifies"}`, async () => {
    if (!fail) {
      const r = await verifyCase(name);
      const c = loadCase(name);
      assertEquals(r.digest, digestOf(await Deno.readFile(c.artifact)));
      if (c.key) assertEquals(r.signer.kind, "key");
      else assertEquals(r.signer, { kind: "certificate", identity: c.identity, issuer: c.issuer });
      assert(r.timestamps.length >= 1);
      return;
    }
    const e = await verifyCase(name).then(() => undefined, (e: unknown) => e);
    assert(e !== undefined, `${name} verified`);
    // refused on purpose: one of ours, one line, naming the bundle, key or trusted root
    assert(e instanceof OcipkgError, `${name}: ${String(e)}`);
    assert(!e.message.includes("\n"), e.message);
    assert(/bundle |key|trusted root/.test(e.message), e.message);
  });
}

Deno.test("sigstore conformance: DSSE bundles verify against the artifact's digest alone", {
  ignore: !HAVE_SUITE,
}, async () => {
  for (const name of ["happy-path-intoto-in-dsse-v3", "rekor2-dsse-happy-path"]) {
    const c = loadCase(name);
    const bundle = parseBundle(await Deno.readTextFile(c.bundle), name);
    const trustedRoot = c.trustedRoot
      ? parseTrustedRoot(await Deno.readTextFile(c.trustedRoot), name)
      : undefined;
    const digest = digestOf(await Deno.readFile(c.artifact));
    const policy = { identity: c.identity, issuer: c.issuer };
    const r = await verifyBundle(bundle, { digest }, policy, { trustedRoot });
    assertEquals(r.digest, digest);
    assertEquals(r.dsse?.payloadType, "application/vnd.in-toto+json");
    assertEquals(r.dsse?.subject.digest.sha256, digest.slice("sha256:".length));
    assert(r.dsse!.statement.predicateType.length > 0);
    // another digest: refused, naming what the statement is about
    await assertRejects(
      () => verifyBundle(bundle, { digest: `sha256:${"0".repeat(64)}` }, policy, { trustedRoot }),
      SignatureError,
      "its in-toto statement is about sha256:",
    );
  }
  // a message signature needs the bytes
  const c = loadCase("happy-path-v0.3");
  const bundle = parseBundle(await Deno.readTextFile(c.bundle), "v0.3");
  const digest = digestOf(await Deno.readFile(c.artifact));
  await assertRejects(
    () =>
      verifyBundle(bundle, { digest }, {
        identity: c.identity,
        issuer: c.issuer,
      }),
    OcipkgError,
    "needs the artifact's bytes",
  );
});

Deno.test(
  "sigstore conformance: the policy — exact, unanchored regexp as cosign, wrong signer kind",
  {
    ignore: !HAVE_SUITE,
  },
  async () => {
    const c = loadCase("happy-path-v0.3");
    const bundle = parseBundle(await Deno.readTextFile(c.bundle), "v0.3");
    const bytes = await Deno.readFile(c.artifact);
    const ok = await verifyBundle(bundle, bytes, {
      identityRegexp: "sigstore-conformance/extremely-dangerous",
      issuerRegexp: /^https:\/\/token\.actions\.githubusercontent\.com$/,
    });
    assertEquals(ok.signer.kind, "certificate");
    const refused = async (policy: Parameters<typeof verifyBundle>[2], includes: string) => {
      const e = await verifyBundle(bundle, bytes, policy).then(() => undefined, (e) => e);
      assert(e instanceof SignatureError && e.reason === "wrong-key", String(e));
      assert(e.message.includes(includes), e.message);
    };
    await refused(
      {
        identity: "https://github.com/org/repo/.github/workflows/release.yml@refs/tags/v1.2",
        issuer: c.issuer,
      },
      "not 'https://github.com/org/repo/",
    );
    await refused(
      { identityRegexp: "^https://github\\.com/org/", issuer: c.issuer },
      "not one matching",
    );
    await refused({ identity: c.identity, issuer: "https://accounts.google.com" }, "with issuer");
    // a keyless bundle with a key, a keyed bundle with an identity
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    await refused(
      { key: publicKey.export({ type: "spki", format: "pem" }).toString() },
      "not a key",
    );
    const keyed = loadCase("managed-key-happy-path");
    const keyedBundle = parseBundle(await Deno.readTextFile(keyed.bundle), "keyed");
    const e = await verifyBundle(keyedBundle, bytes, { identity: c.identity, issuer: c.issuer })
      .then(() => undefined, (e) => e);
    assert(e instanceof SignatureError && /signed with a key, not a certificate/.test(e.message));
    // the right kind, another key
    const other = await verifyBundle(keyedBundle, bytes, {
      key: publicKey.export({ type: "spki", format: "pem" }).toString(),
    }).then(() => undefined, (e) => e);
    assert(other instanceof SignatureError && other.reason === "wrong-key", String(other));
    assert(/was not signed with the key \(sha256:/.test(other.message), other.message);
    // a policy that is neither: a usage error
    await assertRejects(() => verifyBundle(bundle, bytes, { identity: c.identity }), UsageError);
    await assertRejects(
      () => verifyBundle(bundle, bytes, { identityRegexp: "(", issuer: c.issuer }),
      UsageError,
      "invalid identity regular expression",
    );
  },
);

Deno.test(
  "sigstore conformance: verify-blob of a DSSE bundle hashes the file as it streams (memory flat)",
  {
    ignore: !HAVE_SUITE,
  },
  async () => {
    const c = loadCase("happy-path-intoto-in-dsse-v3");
    const dir = await Deno.makeTempDir();
    try {
      // 768 MiB (sparse): read whole, it would take that much memory
      const big = join(dir, "big.bin");
      using f = await Deno.open(big, { write: true, create: true });
      await f.truncate(768 * 1024 * 1024);
      const rss0 = Deno.memoryUsage().rss;
      let peak = rss0;
      const timer = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 20);
      try {
        await assertRejects(
          () =>
            verifyBlob(big, {
              bundle: c.bundle,
              identity: c.identity,
              issuer: c.issuer,
              trustedRoot: c.trustedRoot,
            }),
          SignatureError,
          "its in-toto statement is about sha256:",
        );
      } finally {
        clearInterval(timer);
      }
      assert(peak - rss0 < 256 * 1024 * 1024, `RSS grew by ${(peak - rss0) >> 20} MiB`);
      // and the artifact it names still verifies through the same path
      const r = await verifyBlob(c.artifact, {
        bundle: c.bundle,
        identity: c.identity,
        issuer: c.issuer,
        trustedRoot: c.trustedRoot,
      });
      assertEquals(r.digest, digestOf(await Deno.readFile(c.artifact)));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("sigstore conformance: hostile bundles are refused in one line, never a crash", {
  ignore: !HAVE_SUITE,
}, async () => {
  const c = loadCase("happy-path-v0.3");
  const good = JSON.parse(await Deno.readTextFile(c.bundle));
  const bytes = await Deno.readFile(c.artifact);
  const policy = { identity: c.identity, issuer: c.issuer };
  const vm = good.verificationMaterial;
  const entry = vm.tlogEntries[0];
  const variants: Record<string, unknown> = {
    "not an object": [good],
    "null content": { ...good, messageSignature: null },
    "both contents": { ...good, dsseEnvelope: { payload: "", payloadType: "x", signatures: [] } },
    "number signature": { ...good, messageSignature: { ...good.messageSignature, signature: 5 } },
    "digest not base64": {
      ...good,
      messageSignature: {
        ...good.messageSignature,
        messageDigest: { algorithm: "SHA2_256", digest: "%%%" },
      },
    },
    "unknown digest algorithm": {
      ...good,
      messageSignature: {
        ...good.messageSignature,
        messageDigest: { algorithm: "MD5", digest: "AA==" },
      },
    },
    "certificate garbage": {
      ...good,
      verificationMaterial: { ...vm, certificate: { rawBytes: "AAAA" } },
    },
    "certificate wrong type": {
      ...good,
      verificationMaterial: { ...vm, certificate: { rawBytes: [1] } },
    },
    "tlog entries a string": { ...good, verificationMaterial: { ...vm, tlogEntries: "x" } },
    "no tlog entries": { ...good, verificationMaterial: { ...vm, tlogEntries: [] } },
    "entry without proof": {
      ...good,
      verificationMaterial: { ...vm, tlogEntries: [{ ...entry, inclusionProof: undefined }] },
    },
    "huge log index": {
      ...good,
      verificationMaterial: { ...vm, tlogEntries: [{ ...entry, logIndex: "9".repeat(400) }] },
    },
    "body not base64": {
      ...good,
      verificationMaterial: { ...vm, tlogEntries: [{ ...entry, canonicalizedBody: "@@" }] },
    },
    "proof hashes garbage": {
      ...good,
      verificationMaterial: {
        ...vm,
        tlogEntries: [{ ...entry, inclusionProof: { ...entry.inclusionProof, hashes: [{}, 7] } }],
      },
    },
    "checkpoint with control characters": {
      ...good,
      verificationMaterial: {
        ...vm,
        tlogEntries: [{
          ...entry,
          inclusionProof: { ...entry.inclusionProof, checkpoint: { envelope: "\u001b[2J\n\n" } },
        }],
      },
    },
    "timestamps garbage": {
      ...good,
      verificationMaterial: {
        ...vm,
        timestampVerificationData: { rfc3161Timestamps: [{ signedTimestamp: "AAAA" }] },
      },
    },
  };
  for (const [label, doc] of Object.entries(variants)) {
    const e = await (async () => {
      const bundle = parseBundle(JSON.stringify(doc), label);
      await verifyBundle(bundle, bytes, policy);
    })().then(() => undefined, (e: unknown) => e);
    assert(e instanceof OcipkgError, `${label}: ${e === undefined ? "verified" : String(e)}`);
    assert(!e.message.includes("\n") && !e.message.includes("\u001b"), `${label}: ${e.message}`);
  }
});

Deno.test("sigstore conformance: verify-blob prints who signed, or why not, in one line", {
  ignore: !HAVE_SUITE,
}, async () => {
  const c = loadCase("happy-path-v0.3");
  const keyless = ["--certificate-identity", c.identity, "--certificate-oidc-issuer", c.issuer];
  let r = await runCli(["verify-blob", c.artifact, "--bundle", c.bundle, ...keyless]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout.trim().split("\n").length, 1);
  assert(r.stdout.includes(`signed by ${c.identity} (issuer ${c.issuer})`), r.stdout);
  assert(r.stdout.includes("logged in https://rekor.sigstore.dev #"), r.stdout);

  const k = loadCase("managed-key-happy-path");
  r = await runCli(["verify-blob", k.artifact, "--bundle", k.bundle, "--key", k.key!, "--json"]);
  assertEquals(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assertEquals(j.signer.kind, "key");
  assertEquals(j.digest, digestOf(await Deno.readFile(k.artifact)));

  const d = loadCase("rekor2-dsse-happy-path");
  r = await runCli([
    "verify-blob",
    d.artifact,
    "--bundle",
    d.bundle,
    "--trusted-root",
    d.trustedRoot!,
    "--certificate-identity-regexp",
    "^https://github\\.com/sigstore-conformance/",
    "--certificate-oidc-issuer",
    d.issuer,
  ]);
  assertEquals(r.code, 0, r.stderr);
  assert(r.stdout.includes(", in-toto "), r.stdout);

  const oneLine = (stderr: string, re: RegExp) => {
    const lines = stderr.trim().split("\n");
    assertEquals(lines.length, 1, stderr);
    assert(re.test(lines[0]!), stderr);
  };
  // refused: exit 1, why
  const f = loadCase("signature-mismatch_fail");
  r = await runCli(["verify-blob", f.artifact, "--bundle", f.bundle, ...keyless]);
  assertEquals(r.code, 1, r.stderr);
  oneLine(r.stderr, /signature-mismatch_fail\/bundle\.sigstore\.json does not verify: /);
  r = await runCli(["verify-blob", c.artifact, "--bundle", k.bundle, ...keyless]);
  assertEquals(r.code, 1);
  oneLine(r.stderr, /is signed with a key, not a certificate.*\(give --key\)$/);
  r = await runCli([
    "verify-blob",
    c.artifact,
    "--bundle",
    c.bundle,
    "--certificate-identity",
    "https://github.com/org/repo/.github/workflows/release.yml@refs/tags/v1.2",
    "--certificate-oidc-issuer",
    c.issuer,
  ]);
  assertEquals(r.code, 1);
  oneLine(
    r.stderr,
    /was signed by 'https:\/\/github\.com\/sigstore-conformance\/.*', not 'https:\/\/github\.com\/org\/repo\//,
  );
  r = await runCli([
    "verify-blob",
    c.artifact,
    "--bundle",
    c.bundle,
    ...keyless,
    "--trusted-root",
    join(CASES, "a.txt"),
  ]);
  assertEquals(r.code, 1);
  oneLine(r.stderr, /trusted root .*a\.txt is not valid JSON/);
});

Deno.test("sigstore: the digest Deno's node:crypto lacks for ECDSA is filled in, only there", async () => {
  const data = Buffer.from("checkpoint body");
  const raw = (d: Buffer, key: KeyLike, sig: Buffer, alg?: string) => {
    try {
      return verify(alg, d, key, sig);
    } catch {
      return false; // as @sigstore/core: a throw is "invalid"
    }
  };
  const fixed = withDefaultDigest(raw);
  for (const [curve, hash] of [["P-256", "sha256"], ["P-384", "sha384"], ["P-521", "sha512"]]) {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: curve! });
    assertEquals(defaultDigest(publicKey), hash);
    const sig = sign(hash!, data, privateKey);
    assert(fixed(data, publicKey, sig), curve);
    assert(!fixed(Buffer.from("other body"), publicKey, sig), curve);
    // a digest the caller names is passed on (Deno refuses ECDSA with another curve's hash)
    assert(fixed(data, publicKey, sig, hash));
    assert(!fixed(data, publicKey, sig, hash === "sha256" ? "sha512" : "sha256"));
  }
  // Ed25519 names no digest: passed on as it is
  const ed = generateKeyPairSync("ed25519");
  assertEquals(defaultDigest(ed.publicKey), undefined);
  assert(fixed(data, ed.publicKey, sign(null, data, ed.privateKey)));
  // the Sigstore libraries as loaded use it: @sigstore/core's helper, no digest named
  const { core } = await loadSigstore();
  const p256 = generateKeyPairSync("ec", { namedCurve: "P-256" });
  assert(core.crypto.verify(data, p256.publicKey, sign("sha256", data, p256.privateKey)));
  assert(
    !core.crypto.verify(data, p256.publicKey, sign("sha256", Buffer.from("x"), p256.privateKey)),
  );
  // and is wrapped once: loading again changes nothing
  const before = core.crypto.verify;
  await loadSigstore();
  assertEquals(core.crypto.verify, before);
  // node:crypto itself is untouched (in Deno 2.9 it still throws for an ECDSA key without digest)
  const untouched = (() => {
    try {
      return verify(
        undefined as unknown as string,
        data,
        p256.publicKey,
        sign("sha256", data, p256.privateKey),
      );
    } catch (e) {
      return String(e);
    }
  })();
  console.log(`note: node:crypto verify(undefined, …, P-256 key) gives: ${untouched}`);
});

Deno.test("sigstore: the shipped public-good trusted root, and roots that are refused", async () => {
  const root = await publicGoodTrustedRoot();
  const tlogs = JSON.stringify(root.json.tlogs);
  assert(tlogs.includes("https://rekor.sigstore.dev"), tlogs);
  assert(JSON.stringify(root.json.certificateAuthorities).includes("https://fulcio.sigstore.dev"));
  assert(JSON.stringify(root.json.timestampAuthorities).includes("timestamp.sigstore.dev"));
  const bad: [string, RegExp][] = [
    ["[]", /is not a JSON object/],
    ["{", /is not valid JSON/],
    ['{"mediaType": "application/json"}', /has media type 'application\/json'/],
    [
      JSON.stringify({ ...root.json, certificateAuthorities: [{ uri: "https://fulcio.example" }] }),
      /certificateAuthorities\[0\] \(https:\/\/fulcio\.example\) has no validFor\.start/,
    ],
    [JSON.stringify({ ...root.json, ctlogs: {} }), /ctlogs is not a list/],
  ];
  for (const [text, re] of bad) {
    const e = (() => {
      try {
        parseTrustedRoot(text, "r.json");
      } catch (e) {
        return e;
      }
    })();
    assert(e instanceof OcipkgError && re.test(e.message), String(e));
  }
});

Deno.test("sigstore conformance: without the digest fix, this Deno refuses valid bundles", {
  ignore: !HAVE_SUITE,
}, async () => {
  const p256 = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const data = Buffer.from("x");
  const throwsWithoutDigest = (() => {
    try {
      verify(
        undefined as unknown as string,
        data,
        p256.publicKey,
        sign("sha256", data, p256.privateKey),
      );
      return false;
    } catch {
      return true;
    }
  })();
  if (!throwsWithoutDigest) {
    console.log("note: this Deno's node:crypto has a default ECDSA digest; the fix is a no-op");
    return;
  }
  const { core } = await loadSigstore();
  const fixed = core.crypto.verify;
  // @sigstore/core's own helper, as published: the digest left to the runtime
  const published = (d: Buffer, key: KeyLike, sig: Buffer, alg?: string) => {
    try {
      return verify(alg, d, key, sig);
    } catch {
      return false;
    }
  };
  Object.defineProperty(core.crypto, "verify", { value: published });
  try {
    // the signed entry timestamp (v0.1) and the DSSE signature are verified without a digest name
    for (const name of ["happy-path-v0.1", "happy-path-intoto-in-dsse-v3"]) {
      const e = await verifyCase(name).then(() => undefined, (e) => e);
      assert(e instanceof SignatureError, `${name} verified without the fix`);
    }
  } finally {
    Object.defineProperty(core.crypto, "verify", { value: fixed });
  }
  await verifyCase("happy-path-v0.1");
  await verifyCase("happy-path-intoto-in-dsse-v3");
});
