// Signing: cosign-format keys, keyed signatures and their verification.
// Real cosign-made keys and signatures come from ../shared/fixtures/cosign (sources in its README; skipped when absent);
// skopeo reads the signature manifests ocipkg stores on a registry (it cannot verify them here).
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import {
  buildPayload,
  COSIGN_SIGNATURE_ARTIFACT_TYPE,
  type Descriptor,
  digestOf,
  dockerReference,
  encodeJson,
  fetchBytes,
  FormatError,
  generateSigningKeyPair,
  ImageName,
  MemoryTarget,
  OCI_INDEX,
  OCI_MANIFEST,
  OciDir,
  openRepository,
  packDirectory,
  parsePayload,
  pushBytes,
  pushImage,
  readPublicKey,
  SIGNATURE_ANNOTATION,
  SignatureError,
  type SignatureFailure,
  signatureTag,
  signImage,
  signPayload,
  SIMPLE_SIGNING_MEDIA_TYPE,
  type Target,
  verifySignatures,
} from "./_internal.ts";
import {
  cosignFixture as bytes,
  cosignFixtureText as text,
  have,
  HAVE_COSIGN_FIXTURES,
  run,
  samplePackage,
  tempDir,
} from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";

const enc = new TextEncoder();
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";

/** containers/image's stored form of a cosign signature: "\0sigstore-json\n" + JSON. */
function storedSignature(p: string): { payload: Uint8Array; annotations: Record<string, string> } {
  const raw = bytes(p);
  const prefix = "\0sigstore-json\n";
  assertEquals(new TextDecoder().decode(raw.subarray(0, prefix.length)), prefix);
  const v = JSON.parse(new TextDecoder().decode(raw.subarray(prefix.length)));
  return { payload: new Uint8Array(Buffer.from(v.payload, "base64")), annotations: v.annotations };
}

/** The image a fixture's manifest.json is (a Docker schema 2 manifest). */
async function subjectOf(t: Target, dir: string): Promise<Descriptor> {
  return await pushBytes(t, DOCKER_MANIFEST, bytes(`containers-image/${dir}/manifest.json`));
}

/** Lay signatures out as cosign does: a `.sig` manifest of simple-signing layers. */
async function attach(
  t: Target,
  subject: Descriptor,
  sigs: { payload: Uint8Array; annotations: Record<string, string> }[],
  layerType = SIMPLE_SIGNING_MEDIA_TYPE,
): Promise<Descriptor> {
  const layers = [];
  for (const s of sigs) {
    const d = await pushBytes(t, layerType, s.payload);
    layers.push({
      mediaType: layerType,
      size: d.size,
      digest: d.digest,
      annotations: s.annotations,
    });
  }
  const config = await pushBytes(t, "application/vnd.oci.image.config.v1+json", encodeJson({}));
  const m = await pushBytes(
    t,
    OCI_MANIFEST,
    encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers }),
  );
  await t.tag(m, signatureTag(subject.digest));
  return m;
}

async function rejectsWith(p: Promise<unknown>, reason: SignatureFailure, re: RegExp) {
  const e = await assertRejects(() => p, SignatureError) as SignatureError;
  assertEquals(e.reason, reason, e.message);
  assert(re.test(e.message), e.message);
  assert(!e.message.includes("\n"));
}

const cosignPub = HAVE_COSIGN_FIXTURES
  ? readPublicKey(text("containers-image/cosign.pub"), "cosign.pub")
  : undefined!;
const cosign2Pub = HAVE_COSIGN_FIXTURES
  ? readPublicKey(text("containers-image/cosign2.pub"), "cosign2.pub")
  : undefined!;
const VALID_DIGEST = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00";

// --- real cosign signatures -------------------------------------------------------------------

Deno.test("cosign fixtures: signatures made by cosign verify with their key", {
  ignore: !HAVE_COSIGN_FIXTURES,
}, async () => {
  const t = new MemoryTarget();
  const subject = await subjectOf(t, "dir-img-cosign-valid");
  assertEquals(subject.digest, VALID_DIGEST);
  await attach(t, subject, [
    storedSignature("containers-image/dir-img-cosign-valid/signature-1"),
    storedSignature("containers-image/dir-img-cosign-valid/signature-2"),
  ]);
  const ok = await verifySignatures(t, subject, cosignPub, { keyName: "cosign.pub" });
  assertEquals(ok.length, 2);
  assertEquals(ok[0]!.dockerReference, "192.168.64.2:5000/cosign-signed-single-sample");
  assertEquals(ok[0]!.digest, VALID_DIGEST);
  assertEquals(ok[0]!.annotations, null);
  assertEquals(ok.map((s) => s.layer), [0, 1]);

  // signed with another key (cosign2.pub), with a Rekor bundle annotation beside the signature
  const t2 = new MemoryTarget();
  const s2 = await subjectOf(t2, "dir-img-cosign-key-rekor-valid");
  await attach(t2, s2, [
    storedSignature("containers-image/dir-img-cosign-key-rekor-valid/signature-1"),
  ]);
  assertEquals((await verifySignatures(t2, s2, cosign2Pub)).length, 1);
  await rejectsWith(
    verifySignatures(t2, s2, cosignPub, { keyName: "cosign.pub" }),
    "wrong-key",
    /^signature 1 of signature manifest sha256:[0-9a-f]{64} in memory does not verify with cosign\.pub/,
  );
});

Deno.test("cosign fixtures: ocipkg writes the payload cosign wrote, byte for byte", {
  ignore: !HAVE_COSIGN_FIXTURES,
}, () => {
  for (const dir of ["dir-img-cosign-valid", "dir-img-cosign-key-rekor-valid"]) {
    const real = storedSignature(`containers-image/${dir}/signature-1`).payload;
    const p = parsePayload(real, dir);
    const ours = buildPayload(
      p.critical.identity["docker-reference"],
      p.critical.image["docker-manifest-digest"],
    );
    assertEquals(new TextDecoder().decode(ours), new TextDecoder().decode(real));
  }
  // cosign's docker-reference is the repository as go-containerregistry names it
  assertEquals(
    dockerReference(ImageName.parse("192.168.64.2:5000/cosign-signed-single-sample:v1")),
    "192.168.64.2:5000/cosign-signed-single-sample",
  );
  assertEquals(dockerReference(ImageName.parse("docker.io/foo/bar")), "index.docker.io/foo/bar");
  // Go's encoding/json: sorted annotation keys, HTML characters escaped
  const d = "sha256:" + "0".repeat(64);
  assertEquals(
    new TextDecoder().decode(buildPayload("r/x", d, { z: "<&>", a: "\u2028" })).split(
      '"optional":',
    )[1],
    '{"a":"\\u2028","z":"\\u003c\\u0026\\u003e"}}',
  );
});

Deno.test("cosign fixtures: every failure has its reason and one-line message", {
  ignore: !HAVE_COSIGN_FIXTURES,
}, async () => {
  // no signature at all
  const t = new MemoryTarget();
  const subject = await subjectOf(t, "dir-img-cosign-valid");
  await rejectsWith(
    verifySignatures(t, subject, cosignPub),
    "none",
    new RegExp(`^no signature of ${VALID_DIGEST} in memory$`),
  );
  // made by an unknown key
  const t1 = new MemoryTarget();
  const s1 = await subjectOf(t1, "dir-img-cosign-valid");
  await attach(t1, s1, [storedSignature("containers-image/unknown-cosign-key.signature")]);
  await rejectsWith(
    verifySignatures(t1, s1, cosignPub),
    "wrong-key",
    /does not verify with the key/,
  );
  // a real signature for image A stored as the signature of image B
  const t2 = new MemoryTarget();
  const other = await pushBytes(t2, OCI_MANIFEST, encodeJson({ schemaVersion: 2, layers: [] }));
  await attach(t2, other, [storedSignature("containers-image/dir-img-cosign-valid/signature-1")]);
  await rejectsWith(
    verifySignatures(t2, other, cosignPub),
    "other-digest",
    new RegExp(`was made for ${VALID_DIGEST}, not ${other.digest}$`),
  );
  // a text/plain layer carrying a signature annotation is not a signature
  const t3 = new MemoryTarget();
  const s3 = await subjectOf(t3, "dir-img-cosign-valid");
  await attach(
    t3,
    s3,
    [storedSignature("containers-image/other-attachment.signature")],
    "text/plain",
  );
  await rejectsWith(verifySignatures(t3, s3, cosignPub), "malformed", /'text\/plain' layer/);
  // one good signature among bad ones is enough (as cosign verify)
  await attach(t3, s3, [
    storedSignature("containers-image/unknown-cosign-key.signature"),
    storedSignature("containers-image/dir-img-cosign-valid/signature-1"),
  ]);
  assertEquals((await verifySignatures(t3, s3, cosignPub)).length, 1);
});

Deno.test("verify: malformed signature manifests and tampered payloads", {
  ignore: !HAVE_COSIGN_FIXTURES,
}, async () => {
  const dir = await tempDir();
  const t = await OciDir.open(join(dir, "lay"), { create: true });
  const subject = await subjectOf(t, "dir-img-cosign-valid");
  const real = storedSignature("containers-image/dir-img-cosign-valid/signature-1");
  const sigTag = signatureTag(subject.digest);

  // the .sig tag holds an index
  const idx = await pushBytes(
    t,
    OCI_INDEX,
    encodeJson({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }),
  );
  await t.tag(idx, sigTag);
  await rejectsWith(
    verifySignatures(t, subject, cosignPub),
    "malformed",
    /is an index, not a signature manifest/,
  );
  // no annotation; a signature that is not base64; no layers
  await attach(t, subject, [{ payload: real.payload, annotations: {} }]);
  await rejectsWith(
    verifySignatures(t, subject, cosignPub),
    "malformed",
    /has no dev\.cosignproject\.cosign\/signature annotation/,
  );
  await attach(t, subject, [{
    payload: real.payload,
    annotations: { [SIGNATURE_ANNOTATION]: "%%" },
  }]);
  await rejectsWith(
    verifySignatures(t, subject, cosignPub),
    "malformed",
    /the signature is not base64/,
  );
  await attach(t, subject, []);
  await rejectsWith(verifySignatures(t, subject, cosignPub), "none", /hold no layers/);
  // a manifest that is not JSON
  const junk = await pushBytes(t, OCI_MANIFEST, enc.encode("not json"));
  await t.tag(junk, sigTag);
  await rejectsWith(verifySignatures(t, subject, cosignPub), "malformed", /not valid JSON/);

  // tampered payload blob (bytes on disk changed): its digest no longer matches
  await attach(t, subject, [real]);
  const payloadDigest = digestOf(real.payload);
  const blob = join(dir, "lay/blobs/sha256", payloadDigest.slice(7));
  const altered = new TextDecoder().decode(real.payload).replace("cosign-signed", "cosign-signeD");
  await Deno.chmod(blob, 0o644);
  await Deno.writeTextFile(blob, altered);
  await rejectsWith(
    verifySignatures(t, subject, cosignPub),
    "tampered",
    /payload sha256:[0-9a-f]{64} does not match its digest \(tampered\)$/,
  );
  // altered payload stored under its new digest: the signature no longer verifies
  await attach(t, subject, [{ payload: enc.encode(altered), annotations: real.annotations }]);
  await rejectsWith(
    verifySignatures(t, subject, cosignPub),
    "wrong-key",
    /or its payload was altered/,
  );
  // a payload signed by the key but not a cosign payload
  const mine = generateSigningKeyPair();
  const foreign = enc.encode('{"critical":{"type":"something else"}}');
  await attach(t, subject, [{
    payload: foreign,
    annotations: { [SIGNATURE_ANNOTATION]: signPayload(mine.privateKey, foreign) },
  }]);
  await rejectsWith(
    verifySignatures(t, subject, mine.publicKey),
    "malformed",
    /critical\.type is not 'cosign container image signature'/,
  );
  await t.close();
});

// --- keys --------------------------------------------------------------------------------------

Deno.test("payload: hostile payloads are refused naming the field", () => {
  const d = "sha256:" + "1".repeat(64);
  const ok = JSON.parse(new TextDecoder().decode(buildPayload("r/x", d)));
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(64 * 1024 + 1).fill(32), /over the 65536 cap/],
    [enc.encode("not json"), /not valid JSON/],
    [new Uint8Array([0x22, 0xff, 0x22]), /not valid JSON/], // not UTF-8
    [enc.encode("[".repeat(60_000)), /not valid JSON/],
    [enc.encode('"string"'), /not a JSON object/],
    [encodeJson({ ...ok, critical: [] }), /'critical' is not an object/],
    [encodeJson({ ...ok, critical: { ...ok.critical, type: 1 } }), /critical\.type is not/],
    [
      encodeJson({ ...ok, critical: { ...ok.critical, identity: { "docker-reference": 1 } } }),
      /docker-reference is not a string/,
    ],
    [
      encodeJson({ ...ok, critical: { ...ok.critical, image: {} } }),
      /docker-manifest-digest is not a string/,
    ],
    [
      encodeJson({
        ...ok,
        critical: { ...ok.critical, image: { "docker-manifest-digest": "sha256:zz" } },
      }),
      /is not a digest/,
    ],
    [encodeJson({ ...ok, optional: "x" }), /'optional' is not an object/],
  ];
  for (const [b, re] of cases) {
    const e = assertThrows(() => parsePayload(b, "payload"), FormatError);
    assert(re.test(e.message) && !e.message.includes("\n"), e.message);
  }
  // skopeo-style optional values (numbers) are fine
  assertEquals(parsePayload(encodeJson({ ...ok, optional: { timestamp: 1 } }), "p").optional, {
    timestamp: 1,
  });
});

Deno.test("verify: an oversized payload layer is refused before it is read", async () => {
  const t = new MemoryTarget();
  const subject = await pushBytes(t, OCI_MANIFEST, encodeJson({ schemaVersion: 2, layers: [] }));
  const layer = {
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    size: 2 ** 40,
    digest: "sha256:" + "2".repeat(64),
    annotations: { [SIGNATURE_ANNOTATION]: "AAAA" },
  };
  const config = await pushBytes(t, "application/vnd.oci.image.config.v1+json", encodeJson({}));
  const m = await pushBytes(
    t,
    OCI_MANIFEST,
    encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] }),
  );
  await t.tag(m, signatureTag(subject.digest));
  await rejectsWith(
    verifySignatures(t, subject, cosignPub),
    "malformed",
    /over the 65536-byte cap/,
  );
});

// --- sign ----------------------------------------------------------------------------------

Deno.test("sign: on a layout, tag scheme appends layers in cosign's layout; referrers use the fallback index", async () => {
  const dir = join(await tempDir(), "lay");
  let t = await OciDir.open(dir, { create: true });
  const subject = await pushBytes(
    t,
    OCI_MANIFEST,
    encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }),
  );
  await t.tag(subject, "example.com/foo:1");
  const { privateKey, publicKey } = generateSigningKeyPair();
  const ref = dockerReference(ImageName.parse("example.com/foo:1"));
  const r1 = await signImage(t, subject, privateKey, {
    dockerReference: ref,
    annotations: { build: "42" },
  });
  const r2 = await signImage(t, subject, privateKey, { dockerReference: ref });
  assertEquals([r1.layers, r2.layers, r1.existed, r2.existed], [1, 2, false, false]);
  // signing the same payload again adds nothing (cosign's dupe detector; node's ECDSA is deterministic)
  const again = await signImage(t, subject, privateKey, { dockerReference: ref });
  assertEquals([again.existed, again.layers, again.manifest.digest], [true, 2, r2.manifest.digest]);
  assertEquals(r2.tag, signatureTag(subject.digest));
  await t.close();

  t = await OciDir.open(dir);
  const sig = await t.resolve(signatureTag(subject.digest));
  const manifestText = new TextDecoder().decode(await fetchBytes(t, sig));
  const m = JSON.parse(manifestText);
  // go-containerregistry's serialization, as cosign pushes it
  assert(
    manifestText.startsWith(
      `{"schemaVersion":2,"mediaType":"${OCI_MANIFEST}","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":`,
    ),
    manifestText,
  );
  assertEquals(m.layers.length, 2);
  assertEquals(Object.keys(m.layers[0]), ["mediaType", "size", "digest", "annotations"]);
  assertEquals(m.layers[0].digest, r1.payload.digest);
  const config = new TextDecoder().decode(await fetchBytes(t, m.config));
  assertEquals(
    config,
    `{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"},{"created":"0001-01-01T00:00:00Z"}],` +
      `"os":"","rootfs":{"type":"layers","diff_ids":["${r1.payload.digest}","${r2.payload.digest}"]},"config":{}}`,
  );
  const ok = await verifySignatures(t, subject, publicKey);
  assertEquals(ok.map((s) => s.annotations), [{ build: "42" }, null]);
  assertEquals(ok[0]!.dockerReference, "example.com/foo");

  // referrers: a manifest with subject + artifactType, listed in the sha256-<hex> fallback index
  const r3 = await signImage(t, subject, privateKey, { dockerReference: ref, referrers: true });
  const r4 = await signImage(t, subject, privateKey, {
    dockerReference: ref,
    referrers: true,
    annotations: { n: "2" },
  });
  assertEquals(
    (await signImage(t, subject, privateKey, { dockerReference: ref, referrers: true })).existed,
    true,
  );
  assertEquals(r3.tag, `sha256-${subject.digest.slice(7)}`);
  const index = JSON.parse(new TextDecoder().decode(await fetchBytes(t, await t.resolve(r3.tag!))));
  assertEquals(index.manifests.map((d: Descriptor) => [d.digest, d.artifactType]), [
    [r3.manifest.digest, COSIGN_SIGNATURE_ARTIFACT_TYPE],
    [r4.manifest.digest, COSIGN_SIGNATURE_ARTIFACT_TYPE],
  ]);
  const rm = JSON.parse(new TextDecoder().decode(await fetchBytes(t, r3.manifest)));
  assertEquals(Object.keys(rm), [
    "schemaVersion",
    "mediaType",
    "config",
    "layers",
    "subject",
    "artifactType",
  ]);
  assertEquals(rm.config.mediaType, COSIGN_SIGNATURE_ARTIFACT_TYPE);
  assertEquals(rm.subject, {
    mediaType: subject.mediaType,
    size: subject.size,
    digest: subject.digest,
  });
  const all = await verifySignatures(t, subject, publicKey);
  assertEquals(all.map((s) => s.source), ["tag", "tag", "referrer", "referrer"]);
  // referrers given by the caller (a registry's API) replace the fallback index
  const viaApi = await verifySignatures(t, subject, publicKey, {
    tag: "none",
    referrers: [{ ...r4.manifest, artifactType: COSIGN_SIGNATURE_ARTIFACT_TYPE }, {
      ...r3.manifest,
      artifactType: "application/x-other",
    }],
  });
  assertEquals(viaApi.map((s) => s.manifest.digest), [r4.manifest.digest]);
  // a malformed existing .sig is not appended to
  const idx = await pushBytes(
    t,
    OCI_INDEX,
    encodeJson({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }),
  );
  await t.tag(idx, signatureTag(subject.digest));
  await assertRejects(
    () => signImage(t, subject, privateKey, { dockerReference: ref }),
    FormatError,
    "is an index, not a manifest",
  );
  await t.close();
});

// --- through a real registry ------------------------------------------------------------------
// (Debian's skopeo is built with sigstore disabled, so no third-party verifier runs here; the
// cosign fixtures above are the interop evidence, skopeo only reads what the registry serves.)

const ready = await have("skopeo") || !!Deno.env.get("CI");
const reg = ready ? await startRegistry() : undefined;
globalThis.addEventListener("unload", () => reg?.kill());

Deno.test({
  name: "registry: sign on a real registry (tag scheme and referrers fallback), verify, tamper",
  ignore: !ready,
  async fn() {
    const work = await tempDir();
    const name = `${reg!.host}/sign/pkg:1`;
    await packDirectory(await samplePackage(await tempDir()), join(work, "p.tar"), { name });
    await pushImage(join(work, "p.tar"));
    const { privateKey, publicKey } = generateSigningKeyPair();
    const image = ImageName.parse(name);
    const target = openRepository(image, { credential: null });
    const subject = await target.resolve("1");
    await rejectsWith(verifySignatures(target, subject, publicKey), "none", /^no signature of/);
    const r = await signImage(target, subject, privateKey, {
      dockerReference: dockerReference(image),
      annotations: { by: "ocipkg" },
    });
    await signImage(target, subject, privateKey, {
      dockerReference: dockerReference(image),
      referrers: true,
    });
    // what the registry serves under the .sig tag is cosign's layout
    const raw = await run("skopeo", [
      "inspect",
      "--raw",
      "--tls-verify=false",
      `docker://${reg!.host}/sign/pkg:${r.tag}`,
    ]);
    assertEquals(raw.code, 0, raw.stderr);
    const m = JSON.parse(raw.stdout);
    assertEquals(m.layers[0].mediaType, SIMPLE_SIGNING_MEDIA_TYPE);
    assertEquals(m.layers[0].annotations[SIGNATURE_ANNOTATION], r.signature);
    const ok = await verifySignatures(target, subject, publicKey);
    assertEquals(ok.map((s) => [s.source, s.dockerReference]), [
      ["tag", `${reg!.host}/sign/pkg`],
      ["referrer", `${reg!.host}/sign/pkg`],
    ]);
    await rejectsWith(
      verifySignatures(target, subject, generateSigningKeyPair().publicKey),
      "wrong-key",
      /does not verify with the key/,
    );
    await target.close();
  },
});
