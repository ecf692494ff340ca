// Signing keys: cosign-written encrypted private keys decrypt with their password (EC, RSA,
// PKCS#8; SEC1 and ed25519 refused), ocipkg's encrypted key is cosign's envelope (checked here
// with scrypt and nacl independently) and round-trips, and hostile key files are refused with
// one line, quickly.
import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, scryptSync } from "node:crypto";
import { join } from "node:path";
import nacl from "tweetnacl";
import { assert, assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import {
  encodeJson,
  encodePublicKey,
  encryptPrivateKey,
  generateKeyFiles,
  generateSigningKeyPair,
  KeyError,
  MemoryTarget,
  OCI_MANIFEST,
  pushBytes,
  readPrivateKey,
  readPublicKey,
  signImage,
  verifySignatures,
} from "./_internal.ts";
import { cosignFixtureText as text, HAVE_COSIGN_FIXTURES, tempDir } from "./_helpers.ts";

Deno.test("keys: cosign-written encrypted keys decrypt with their password", {
  ignore: !HAVE_COSIGN_FIXTURES,
}, async () => {
  // ENCRYPTED SIGSTORE PRIVATE KEY (cosign ≥ 2), ECDSA P-256, password "hello"
  const k = await readPrivateKey(text("cosign/sigstore-hello.key"), "sigstore-hello.key", {
    password: "hello",
  });
  assertEquals(k.asymmetricKeyDetails?.namedCurve, "prime256v1");
  // the password callback is asked only for encrypted keys
  let asked = 0;
  const ask = () => (asked++, "hello");
  await readPrivateKey(text("cosign/validecpkcs8.key"), "k", { password: ask });
  assertEquals(asked, 0);
  await readPrivateKey(text("cosign/sigstore-hello.key"), "k", { password: ask });
  assertEquals(asked, 1);
  // ENCRYPTED COSIGN PRIVATE KEY (older cosign), RSA
  const rsa = await readPrivateKey(text("cosign/cosign-rsa-hello.key"), "rsa.key", {
    password: "hello",
  });
  // (labelled "RSA" in cosign's test, the key inside is ECDSA P-256)
  assertEquals(rsa.asymmetricKeyDetails?.namedCurve, "prime256v1");
  // wrong password
  const e = await assertRejects(
    () => readPrivateKey(text("cosign/sigstore-hello.key"), "cosign.key", { password: "nope" }),
    KeyError,
  );
  assertEquals(e.message, "cosign.key: wrong password (the key did not decrypt)");
  // cosign refuses a SEC1 key inside the envelope; so do we
  await assertRejects(
    () => readPrivateKey(text("cosign/cosign-sec1-hello.key"), "sec1.key", { password: "hello" }),
    KeyError,
    "sec1.key: the decrypted key is not a PKCS#8 private key",
  );
  // plain PEM keys (cosign import-key-pair input)
  assertEquals(
    (await readPrivateKey(text("cosign/validecp256.key"), "ec.key")).asymmetricKeyType,
    "ec",
  );
  assertEquals(
    (await readPrivateKey(text("cosign/validecpkcs8.key"), "p8.key")).asymmetricKeyType,
    "ec",
  );
  await assertRejects(
    () => readPrivateKey(text("cosign/ed25519-pkcs8.key"), "ed.key"),
    KeyError,
    "ed.key: ed25519 keys are not supported (ECDSA or RSA)",
  );
  // a signature by the cosign key verifies with its public half
  const pub = readPublicKey(encodePublicKey(k), "pub");
  const t = new MemoryTarget();
  const subject = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, layers: [] }));
  await signImage(t, subject, k, { dockerReference: "example.com/x" });
  assertEquals((await verifySignatures(t, subject, pub)).length, 1);
  assertEquals(readPublicKey(text("cosign/cosign-test.pub"), "cosign-test.pub").type, "public");
});

Deno.test("keys: ocipkg's encrypted key is cosign's envelope (checked independently) and round-trips", async () => {
  const { privateKey, publicKey } = generateSigningKeyPair();
  const pem = await encryptPrivateKey(privateKey, "pw");
  const lines = pem.trimEnd().split("\n");
  assertEquals(lines[0], "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----");
  assertEquals(lines.at(-1), "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----");
  assert(lines.slice(1, -1).every((l) => l.length <= 64));
  const json = Buffer.from(lines.slice(1, -1).join(""), "base64").toString();
  const env = JSON.parse(json);
  // go-securesystemslib's field order and cosign's default parameters
  assertEquals(Object.keys(env), ["kdf", "cipher", "ciphertext"]);
  assertEquals(json.slice(0, 60), '{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"sa');
  assertEquals(env.cipher.name, "nacl/secretbox");
  assertEquals(Buffer.from(env.kdf.salt, "base64").length, 32);
  assertEquals(Buffer.from(env.cipher.nonce, "base64").length, 24);
  // decrypt by hand: scrypt(password, salt, N, r, p, 32) → secretbox.open → PKCS#8 DER
  const key = scryptSync("pw", Buffer.from(env.kdf.salt, "base64"), 32, {
    N: 65536,
    r: 8,
    p: 1,
    maxmem: 256 * 1024 * 1024,
  });
  const der = nacl.secretbox.open(
    Buffer.from(env.ciphertext, "base64"),
    Buffer.from(env.cipher.nonce, "base64"),
    new Uint8Array(key),
  );
  assert(der);
  assert(
    createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" }).equals(privateKey),
  );
  // and back through readPrivateKey; the public key PEM reads back
  assert((await readPrivateKey(pem, "k", { password: "pw" })).equals(privateKey));
  assert(readPublicKey(encodePublicKey(publicKey), "p").equals(publicKey));
  // the empty password is what cosign uses when none is given
  const empty = await encryptPrivateKey(privateKey, "", { scryptN: 32768 });
  assert((await readPrivateKey(empty, "k")).equals(privateKey));
});

Deno.test("keys: hostile key files are refused with one line, quickly", async () => {
  const envelope = (v: unknown) =>
    `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${
      Buffer.from(JSON.stringify(v)).toString("base64")
    }\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`;
  const good = {
    kdf: { name: "scrypt", params: { N: 32768, r: 8, p: 1 }, salt: "AAAA" },
    cipher: { name: "nacl/secretbox", nonce: Buffer.alloc(24).toString("base64") },
    ciphertext: "AAAA",
  };
  const cases: [string, RegExp][] = [
    ["x".repeat(70_000), /too large for a key file/],
    ["hello", /not a PEM key file/],
    [
      "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
      /a PUBLIC KEY block is not a private key/,
    ],
    ["-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n", /not valid base64/],
    [
      "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
      /the PRIVATE KEY block is not a valid key/,
    ],
    [
      "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
      /not valid JSON/,
    ],
    [
      envelope({ ...good, kdf: { ...good.kdf, params: { N: 1 << 30, r: 8, p: 1 } } }),
      /unsupported scrypt parameters/,
    ],
    [
      envelope({ ...good, kdf: { ...good.kdf, name: "argon2" } }),
      /unknown key derivation 'argon2'/,
    ],
    [envelope({ ...good, cipher: { ...good.cipher, nonce: "AAAA" } }), /nonce is not 24 bytes/],
    [envelope({ ...good, ciphertext: 5 }), /'ciphertext' is not base64/],
    [envelope(good), /wrong password/],
  ];
  for (const [input, re] of cases) {
    const e = await assertRejects(
      () => readPrivateKey(input, "cosign.key", { password: "x" }),
      KeyError,
    );
    assert(re.test(e.message) && e.message.startsWith("cosign.key: "), e.message);
  }
  // a private key where a public one belongs (cosign's own fixture, when present)
  if (HAVE_COSIGN_FIXTURES) {
    assertThrows(
      () => readPublicKey(text("cosign/validecpkcs8.key"), "x.pub"),
      KeyError,
      "x.pub: a PRIVATE KEY block is not a public key",
    );
  }
});

// --- payloads ----------------------------------------------------------------------------------

Deno.test("keys: generations at once with one prefix — one writes the pair, the others refuse; forced, the pair kept matches", async () => {
  const dir = await tempDir();
  const prefix = join(dir, "cosign");
  const results = await Promise.allSettled(
    [1, 2, 3, 4].map(() => generateKeyFiles(prefix, { password: "pw" })),
  );
  assertEquals(results.filter((r) => r.status === "fulfilled").length, 1);
  for (const r of results) {
    if (r.status === "rejected") assert(String(r.reason).includes("exists; give --force"));
  }
  // forced generations at once: the key and the public key are one pair (one's key beside
  // another's public key could sign nothing its public key verifies)
  await Promise.all([1, 2, 3].map(() => generateKeyFiles(prefix, { password: "pw", force: true })));
  const key = await readPrivateKey(await Deno.readTextFile(`${prefix}.key`), "k", {
    password: "pw",
  });
  const pub = readPublicKey(await Deno.readTextFile(`${prefix}.pub`), "p");
  assert(createPublicKey(key).equals(pub));
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["cosign.key", "cosign.pub"]);
});
