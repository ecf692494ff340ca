// The trust path, one identity for every image: a config file's `verify` rules are
// matched on the canonical registry of the rule and of the image — every spelling of a host
// (case, default port, IPv4 forms, Docker Hub's names, the loopback names) meets the same rules;
// a config file that is not a JSON object is refused; each key file is read once per command;
// requirements are labelled by the caller. Rule matching needs no network; the reads-once
// check runs a real `get` against docker-registry.
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import {
  getImage,
  ImageName,
  KeyError,
  loadImage,
  OcipkgError,
  packDirectory,
  pushImage,
  SignatureError,
  signReference,
  Store,
  verifyReference,
} from "../mod.ts";
import { encodePublicKey, generateSigningKeyPair, verifyRequirements } from "../lib/sign/mod.ts";
import { samplePackage, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";

/** A fresh public key file. */
async function writeKey(path: string): Promise<string> {
  await Deno.writeTextFile(path, encodePublicKey(generateSigningKeyPair().publicKey));
  return path;
}

/**
 * A config file with one rule per prefix, each with its own key `k<i>.pub`; returns a function
 * that lists the prefixes of the rules applying to an image.
 */
async function rules(
  prefixes: string[],
): Promise<(image: string | ImageName) => Promise<string[]>> {
  const dir = await tempDir();
  const policy = join(dir, "config.json");
  for (const i of prefixes.keys()) await writeKey(join(dir, `k${i}.pub`));
  await Deno.writeTextFile(
    policy,
    JSON.stringify({ verify: prefixes.map((prefix, i) => ({ prefix, key: `k${i}.pub` })) }),
  );
  return async (image) => {
    const name = typeof image === "string" ? ImageName.parse(image) : image;
    const reqs = await verifyRequirements(name, { policy });
    return reqs.map((r) => prefixes[Number(/k(\d+)\.pub$/.exec(r.keys[0]!.path)![1])]!);
  };
}

Deno.test("rules match the canonical registry: ghcr.io:443 and GHCR.IO are ghcr.io; a rule's own host is canonicalised", async () => {
  const applying = await rules(["ghcr.io/org/", "GHCR.io:443/team/", "ghcr.io/Caps/"]);
  assertEquals(await applying("ghcr.io:443/org/libfoo:1"), ["ghcr.io/org/"]);
  assertEquals(await applying("GHCR.IO/org/libfoo:1"), ["ghcr.io/org/"]);
  assertEquals(await applying("ghcr.io/team/x:1"), ["GHCR.io:443/team/"]);
  assertEquals(await applying("ghcr.io:443/team/x:1"), ["GHCR.io:443/team/"]);
  // repository names are lower case: a rule's name part is read so
  assertEquals(await applying("ghcr.io/caps/x:1"), ["ghcr.io/Caps/"]);
  // a prefix ending in '/' is a namespace; another port or host is another registry
  assertEquals(await applying("ghcr.io/organization/libfoo:1"), []);
  assertEquals(await applying("ghcr.io:5000/org/libfoo:1"), []);
  assertEquals(await applying("ghcr.io.example.com/org/libfoo:1"), []);
});

Deno.test("rules for Docker Hub apply to every spelling of it, however the rule writes the host", async () => {
  const applying = await rules(["docker.io/library/", "Docker.IO/library/", "docker.io/alpine"]);
  const all = ["docker.io/library/", "Docker.IO/library/", "docker.io/alpine"];
  for (
    const image of [
      "alpine:3",
      "Docker.IO/library/alpine:3",
      "docker.io/library/alpine:3",
      "registry-1.docker.io:443/library/alpine:3",
      "index.docker.io/library/alpine:3",
      "INDEX.docker.io:443/library/alpine:3",
    ]
  ) {
    assertEquals(await applying(image), all, image);
  }
  assertEquals(await applying("docker.io/other/alpine:3"), []);
  assertEquals(await applying("quay.io/library/alpine:3"), []);
});

Deno.test("a rule for a loopback host applies to every loopback spelling of the same port", async () => {
  const applying = await rules(["localhost:5000/rt/", "127.0.0.1:5001/rt/", "[::1]/rt/"]);
  for (
    const image of [
      "localhost:5000/rt/pkg:1",
      "LocalHost:5000/rt/pkg:1",
      "127.0.0.1:5000/rt/pkg:1",
      "127.1:5000/rt/pkg:1",
      "2130706433:5000/rt/pkg:1",
      "0x7f.0.0.1:5000/rt/pkg:1",
      "127.0.0.2:5000/rt/pkg:1",
      "[::1]:5000/rt/pkg:1",
      "[0:0::1]:5000/rt/pkg:1",
      "[::ffff:127.0.0.1]:5000/rt/pkg:1",
      "0.0.0.0:5000/rt/pkg:1",
    ]
  ) {
    assertEquals(await applying(image), ["localhost:5000/rt/"], image);
  }
  assertEquals(await applying("LOCALHOST:5001/rt/pkg:1"), ["127.0.0.1:5001/rt/"]);
  // port 80 is a loopback host's default
  assertEquals(await applying("localhost/rt/pkg:1"), ["[::1]/rt/"]);
  assertEquals(await applying("127.1:80/rt/pkg:1"), ["[::1]/rt/"]);
  assertEquals(await applying("localhost:5002/rt/pkg:1"), []);
  assertEquals(await applying("localhost:5000/other/pkg:1"), []);
  assertEquals(await applying("localhost.example.com:5000/rt/pkg:1"), []);
  // a name built by hand, not parsed: still matched on its canonical registry
  const raw = new ImageName({ hostname: "LocalHost", port: 5000, name: "rt/pkg", tag: "1" });
  assertEquals(await applying(raw), ["localhost:5000/rt/"]);
});

Deno.test("a prefix without '/' names a whole registry (any port unless it gives one); an empty one every image", async () => {
  const applying = await rules(["ghcr.io", "localhost:5000", "LOCALHOST", ""]);
  assertEquals(await applying("ghcr.io/org/x:1"), ["ghcr.io", ""]);
  assertEquals(await applying("ghcr.io:5000/org/x:1"), ["ghcr.io", ""]);
  assertEquals(await applying("127.1:5000/x/y:1"), ["localhost:5000", "LOCALHOST", ""]);
  assertEquals(await applying("[::1]:6000/x/y:1"), ["LOCALHOST", ""]);
  assertEquals(await applying("alpine"), [""]);
});

Deno.test("a config file that is not a JSON object with a list of rules is refused in one line naming it", async () => {
  const dir = await tempDir();
  const policy = join(dir, "config.json");
  await writeKey(join(dir, "k.pub"));
  const name = ImageName.parse("localhost:5000/rt/pkg:1");
  const cases: [string, RegExp][] = [
    [
      '[{"prefix": "localhost:5000/rt/", "key": "k.pub"}]',
      /^config file .*config\.json must be a JSON object such as \{"verify": \[\.\.\.\]\}, not an array$/,
    ],
    ['"verify"', /config\.json must be a JSON object .*, not a string$/],
    ["42", /config\.json must be a JSON object .*, not a number$/],
    ["null", /config\.json must be a JSON object .*, not null$/],
    ["true", /config\.json must be a JSON object .*, not a boolean$/],
    ["{", /^config file .*config\.json is not valid JSON$/],
    ['{"verify": {"prefix": "x/"}}', /config\.json: 'verify' must be a list of rules$/],
    ['{"verify": "localhost:5000/"}', /config\.json: 'verify' must be a list of rules$/],
    [
      '{"verify": [{"prefix": "ghcr.io/", "key": "k.pub"}, {"prefix": "org/", "key": "k.pub"}]}',
      /config\.json: verify rule 2: 'org' in prefix 'org\/' is not a registry host \(a prefix starts with one, e\.g\. 'docker\.io\/org\/'\)$/,
    ],
    [
      '{"verify": [{"prefix": "ghcr.io:99999/org/", "key": "k.pub"}]}',
      /config\.json: verify rule 1: prefix 'ghcr\.io:99999\/org\/' has invalid registry host 'ghcr\.io:99999': port '99999' is out of range$/,
    ],
    [
      '{"verify": [{"prefix": "a..b/org/", "key": "k.pub"}]}',
      /config\.json: verify rule 1: prefix 'a\.\.b\/org\/' has invalid registry host 'a\.\.b'/,
    ],
    // a misspelt `verify`, or a rule with a key it does not know, would enforce nothing
    ['{"Verify": []}', /config\.json: unknown key 'Verify' \(did you mean 'verify'\?\)$/],
    ['{"verfy": []}', /config\.json: unknown key 'verfy' \(did you mean 'verify'\?\)$/],
    [
      '{"verify": [{"prefix": "ghcr.io/", "key": "k.pub", "Key": "other.pub"}]}',
      /verify rule 1 has 'Key': a rule holds 'prefix', 'key' \(or 'keys'\), 'identity' and 'issuer' \(or their 'Regexp' forms\), 'trustedRoot' and 'attestations'$/,
    ],
    [
      '{"verify": [{"prefix": "ghcr.io/", "key": "k.pub", "keys": ["k.pub"]}]}',
      /verify rule 1 has both 'key' and 'keys': give one$/,
    ],
    // keyless rules: an identity needs its issuer, one form of each, a regexp that compiles
    [
      '{"verify": [{"prefix": "ghcr.io/"}]}',
      /verify rule 1 needs a 'key' \(or 'keys'\) naming public key files, or a keyless 'identity' and 'issuer'$/,
    ],
    [
      '{"verify": [{"prefix": "ghcr.io/", "identity": "https://github.com/org/*"}]}',
      /verify rule 1 needs the identity's OIDC 'issuer' \(or 'issuerRegexp'\), e\.g\. 'https:\/\/token\.actions\.githubusercontent\.com'$/,
    ],
    [
      '{"verify": [{"prefix": "ghcr.io/", "key": "k.pub", "issuer": "https://accounts.google.com"}]}',
      /verify rule 1 names an issuer but no 'identity' \(or 'identityRegexp'\)$/,
    ],
    [
      '{"verify": [{"prefix": "ghcr.io/", "identity": "a", "identityRegexp": "a", "issuer": "b"}]}',
      /verify rule 1 has both 'identity' and 'identityRegexp': give one$/,
    ],
    [
      '{"verify": [{"prefix": "ghcr.io/", "identityRegexp": "(", "issuer": "b"}]}',
      /verify rule 1: invalid identity regular expression '\(': /,
    ],
    [
      '{"verify": [{"prefix": "ghcr.io/", "identity": "", "issuer": "b"}]}',
      /verify rule 1: 'identity' must be a non-empty string$/,
    ],
    [
      '{"verify": [{"prefix": "ghcr.io/", "key": "k.pub", "attestations": ["provenance"]}]}',
      /verify rule 1: attestation 'provenance' is neither a predicate type name \(slsaprovenance, spdxjson, cyclonedx, …\) nor a URI$/,
    ],
    [
      '{"verify": [{"prefix": "ghcr.io/", "key": "k.pub", "attestations": []}]}',
      /verify rule 1: 'attestations' must be a list of predicate types, e\.g\. \["slsaprovenance"\]$/,
    ],
    [
      '{"verify": [{"prefix": "localhost:5000/", "identity": "a", "issuer": "b", "trustedRoot": "absent.json"}]}',
      /^trusted root .*absent\.json does not exist \(verify rule 'localhost:5000\/' of .*config\.json\)$/,
    ],
  ];
  for (const [body, re] of cases) {
    await Deno.writeTextFile(policy, body);
    const e = await assertRejects(() => verifyRequirements(name, { policy }), OcipkgError);
    assert(re.test(e.message), `${body}: ${e.message}`);
    assert(!e.message.includes("\n"), e.message);
  }
  // a keyless rule: the glob made a whole-value pattern, the root read (and named by its digest)
  await Deno.writeTextFile(
    join(dir, "root.json"),
    JSON.stringify({
      mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    }),
  );
  await Deno.writeTextFile(
    policy,
    JSON.stringify({
      verify: [{
        prefix: "localhost:5000/rt/",
        identity: "https://github.com/org/*/.github/workflows/*@refs/tags/*",
        issuer: "https://token.actions.githubusercontent.com",
        trustedRoot: "root.json",
        attestations: ["slsaprovenance", "https://example.com/review/v1"],
      }],
    }),
  );
  const [req] = await verifyRequirements(name, { policy });
  assertEquals(req?.keys, []);
  const re = req?.identities?.[0]?.identityRegexp as RegExp;
  assert(re.test("https://github.com/org/a/.github/workflows/r.yml@refs/tags/v1"));
  assert(!re.test("https://github.com/org/a/.github/workflows/r.yml@refs/heads/x@refs/tags/v1"));
  assertEquals(req?.identities?.[0]?.issuer, "https://token.actions.githubusercontent.com");
  assert(/^sha256:[0-9a-f]{64}$/.test(req?.trustedRoot?.digest ?? ""), req?.trustedRoot?.digest);
  assertEquals(req?.attestations, [
    {
      name: "slsaprovenance",
      predicateTypes: ["https://slsa.dev/provenance/v0.2", "https://slsa.dev/provenance/v1"],
    },
    { name: "https://example.com/review/v1", predicateTypes: ["https://example.com/review/v1"] },
  ]);
  // an object without rules, or an absent file: no rules
  await Deno.writeTextFile(policy, "{}");
  assertEquals(await verifyRequirements(name, { policy }), []);
  assertEquals(await verifyRequirements(name, { policy: join(dir, "absent.json") }), []);
});

Deno.test("a key file that is not a PEM public key is refused before any request, naming it and who asked for it", async () => {
  const dir = await tempDir();
  const policy = join(dir, "config.json");
  await Deno.writeTextFile(join(dir, "bad.pub"), "not a key");
  await Deno.writeTextFile(
    join(dir, "cert.pub"),
    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
  );
  await Deno.writeTextFile(policy, JSON.stringify({ verify: [{ prefix: "", key: "bad.pub" }] }));
  const name = ImageName.parse("localhost:5000/rt/pkg:1");
  let e = await assertRejects(() => verifyRequirements(name, { policy }), KeyError);
  assertEquals(
    e.message,
    `key ${
      join(dir, "bad.pub")
    } (verify rule '' of ${policy}): not a PEM key file (no BEGIN/END block)`,
  );
  e = await assertRejects(
    () => verifyRequirements(name, { policy: false, verifyKeys: [join(dir, "cert.pub")] }),
    KeyError,
  );
  assertEquals(
    e.message,
    `key ${join(dir, "cert.pub")} (verifyKeys option): a CERTIFICATE block is not a public key`,
  );
});

Deno.test("requirements carry the caller's label: the option's name by default, the CLI's flag when it gives one", async () => {
  const dir = await tempDir();
  const key = await writeKey(join(dir, "k.pub"));
  const name = ImageName.parse("example.com/foo:1");
  const labelled = (o: { verifyKeysLabel?: string }) =>
    verifyRequirements(name, { policy: false, verifyKeys: [key], ...o });
  assertEquals((await labelled({})).map((r) => r.source), ["verifyKeys option"]);
  assertEquals((await labelled({ verifyKeysLabel: "--verify-key" })).map((r) => r.source), [
    "--verify-key",
  ]);
  // the label reaches the refusal, from a library install of an unsigned archive
  await packDirectory(await samplePackage(join(dir, "src")), join(dir, "foo.tar"), {
    name: "example.com/foo:1",
  });
  const store = new Store(join(dir, "store"));
  const e = await assertRejects(
    () => loadImage(join(dir, "foo.tar"), { store, verifyKeys: [key], policy: false }),
    SignatureError,
  );
  assert(/required by verifyKeys option: no signature of/.test(e.message), e.message);
  assertEquals(await store.list(), []);
  // and verifyReference's: `keys option`, or the caller's
  const ve = await assertRejects(
    () => verifyReference(join(dir, "foo.tar"), { keys: [join(dir, "absent.pub")] }),
    KeyError,
  );
  assertEquals(ve.message, `key ${join(dir, "absent.pub")} (keys option) does not exist`);
});

/**
 * Count the calls that open one of `paths` (Deno.open, readFile, readTextFile and their sync
 * forms) while `fn` runs.
 */
async function countOpens<T>(paths: string[], fn: () => Promise<T>): Promise<Map<string, number>> {
  const counts = new Map(paths.map((p) => [p, 0]));
  const saved = {
    open: Deno.open,
    openSync: Deno.openSync,
    readFile: Deno.readFile,
    readTextFile: Deno.readTextFile,
    readFileSync: Deno.readFileSync,
    readTextFileSync: Deno.readTextFileSync,
  };
  const note = (p: string | URL) => {
    const s = String(p);
    if (counts.has(s)) counts.set(s, counts.get(s)! + 1);
  };
  Deno.open = (p, o) => (note(p), saved.open(p, o));
  Deno.openSync = (p, o) => (note(p), saved.openSync(p, o));
  Deno.readFile = (p, o) => (note(p), saved.readFile(p, o));
  Deno.readTextFile = (p, o) => (note(p), saved.readTextFile(p, o));
  Deno.readFileSync = (p) => (note(p), saved.readFileSync(p));
  Deno.readTextFileSync = (p) => (note(p), saved.readTextFileSync(p));
  try {
    await fn();
  } finally {
    Object.assign(Deno, saved);
  }
  return counts;
}

Deno.test("one get under a rule and given keys reads each key file once — verified from the registry, and cached", async () => {
  const reg = await startRegistry();
  try {
    const dir = await tempDir();
    const signer = generateSigningKeyPair();
    const pem = join(dir, "cosign.key");
    await Deno.writeTextFile(
      pem,
      signer.privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    );
    const pub = join(dir, "cosign.pub");
    await Deno.writeTextFile(pub, encodePublicKey(signer.publicKey));
    const other = await writeKey(join(dir, "other.pub"));
    const image = `${reg.host}/once/pkg:1`;
    const tar = join(dir, "pkg.tar");
    await packDirectory(await samplePackage(join(dir, "src")), tar, { name: image });
    await signReference(tar, { key: pem });
    await pushImage(tar, undefined, { credential: null });
    // the same key named by two rules and by the caller (spelled another way), and a second key
    const policy = join(dir, "config.json");
    await Deno.writeTextFile(
      policy,
      JSON.stringify({
        verify: [
          { prefix: `${reg.host}/once/`, keys: ["other.pub", "cosign.pub"] },
          { prefix: `localhost:${reg.host.split(":")[1]}/`, key: pub },
        ],
      }),
    );
    const store = new Store(join(dir, "store"));
    const options = {
      store,
      policy,
      verifyKeys: [join(dir, ".", "cosign.pub")],
      credential: null,
    };
    let status = "";
    const first = await countOpens([pub, other, policy], async () => {
      status = (await getImage(image, options)).status;
    });
    assertEquals(status, "installed");
    assertEquals(Object.fromEntries(first), { [pub]: 1, [other]: 1, [policy]: 1 });
    // the same objects in every requirement that names the file
    const reqs = await verifyRequirements(ImageName.parse(image), options);
    assertEquals(reqs.map((r) => r.keys.map((k) => k.path)), [[pub], [other, pub], [pub]]);
    assert(reqs[0]!.keys[0] === reqs[1]!.keys[1] && reqs[1]!.keys[1] === reqs[2]!.keys[0]);
    // cached: trusted on the store's record, each file read once again, no request
    await reg.stop();
    const cached = await countOpens([pub, other, policy], async () => {
      status = (await getImage(image, options)).status;
    });
    assertEquals(status, "present");
    assertEquals(Object.fromEntries(cached), { [pub]: 1, [other]: 1, [policy]: 1 });
  } finally {
    await reg.stop().catch(() => {});
  }
});

Deno.test("policy rules: prefixes match registry/repository, Docker Hub under each of its names", async () => {
  const dir = await tempDir();
  await Deno.writeTextFile(join(dir, "k.pub"), encodePublicKey(generateSigningKeyPair().publicKey));
  const policy = join(dir, "config.json");
  await Deno.writeTextFile(
    policy,
    JSON.stringify({
      verify: [
        { prefix: "docker.io/library/", key: "k.pub" },
        { prefix: "ghcr.io/org/", keys: ["k.pub", join(dir, "k.pub")] },
      ],
    }),
  );
  const count = async (n: string) =>
    (await verifyRequirements(ImageName.parse(n), { policy })).map((r) => r.keys.length);
  assertEquals(await count("alpine"), [1]);
  assertEquals(await count("docker.io/library/alpine:3"), [1]);
  assertEquals(await count("index.docker.io/library/alpine"), [1]);
  assertEquals(await count("ghcr.io/org/libfoo:1"), [1]); // one file, named twice
  assertEquals(await count("ghcr.io/organization/libfoo:1"), []); // the prefix ends in '/'
  assertEquals(await count("localhost:5000/library/x"), []);
  // given keys add their own requirement, and policy: false leaves the file out
  assertEquals(
    (await verifyRequirements(ImageName.parse("alpine"), {
      policy: false,
      verifyKeys: [join(dir, "k.pub")],
    })).map((r) => r.source),
    ["verifyKeys option"],
  );
});
