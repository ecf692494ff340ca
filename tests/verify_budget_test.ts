// Referrers that cannot block verification, and one budget per command on the verifier:
// `ocipkg serve`'s referrers API pages and caps its answers; the verifier treats a referrers page
// it cannot read as "no signatures from there" and still checks the `.sig` tag and the other
// pages; a registry listing endless signatures meets a budget (manifests, layers, payloads, each
// payload fetched once) and a one-line error. Against `ocipkg serve` and docker-registry, with a
// proxy in front of serve only for answers serve will not give.
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import {
  ImageName,
  MemoryTarget,
  NotFoundError,
  openRepository,
  packDirectory,
  pushImage,
  RegistryTarget,
  serve,
  SignatureError,
  type Target,
  UsageError,
} from "../mod.ts";
import {
  type Descriptor,
  digestOf,
  encodeJson,
  type Manifest,
  OCI_MANIFEST,
} from "../lib/oci/mod.ts";
import { listReferrers, pushBytes, pushReferrer } from "../lib/transport/mod.ts";
import {
  buildPayload,
  COSIGN_SIGNATURE_ARTIFACT_TYPE,
  encodePublicKey,
  generateSigningKeyPair,
  SIGNATURE_ANNOTATION,
  signatureTag,
  signImage,
  signPayload,
  SIMPLE_SIGNING_MEDIA_TYPE,
  verifySignatures,
} from "../lib/sign/mod.ts";
import { MAX_PAYLOAD_SIZE } from "../lib/sign/payload.ts";
import { DEFAULT_VERIFY_LIMITS } from "../lib/sign/image.ts";
import {
  REFERRER_ANNOTATION_BYTES,
  REFERRERS_PAGE_ANNOTATION_BYTES,
  REFERRERS_PAGE_ENTRIES,
} from "../lib/serve/manifests.ts";
import { ROOT, runCli, samplePackage, tempDir } from "./_helpers.ts";
import { startFaultProxy } from "./_fault_proxy.ts";
import { startHttp } from "./_hostile_server.ts";
import { startRegistry } from "./_registry.ts";

const srv = await serve({ root: await tempDir(), addr: "127.0.0.1:0", log: () => {} });
const reg = await startRegistry();
globalThis.addEventListener("unload", () => reg.kill());

const signer = generateSigningKeyPair();
const other = generateSigningKeyPair();
const keyDir = await tempDir();
const pub = join(keyDir, "cosign.pub");
const otherPub = join(keyDir, "other.pub");
await Deno.writeTextFile(pub, encodePublicKey(signer.publicKey));
await Deno.writeTextFile(otherPub, encodePublicKey(other.publicKey));
/** No config file: only the keys given on the command line apply. */
const env = { OCIPKG_CONFIG: join(keyDir, "absent-config.json") };

/** One error line, no stack trace. */
function oneLineError(stderr: string, ...res: RegExp[]): string {
  const lines = stderr.trim().split("\n");
  assertEquals(lines.length, 1, stderr);
  for (const re of res) assert(re.test(lines[0]!), `${re}: ${stderr}`);
  assert(!stderr.includes("    at "), stderr);
  return lines[0]!;
}

/** A package pushed as `<host>/<repo>:1`: its name, its repository and its manifest. */
async function publish(
  host: string,
  repo: string,
): Promise<{ image: string; t: RegistryTarget; subject: Descriptor }> {
  const dir = await tempDir();
  const image = `${host}/${repo}:1`;
  const tar = join(dir, "p.tar");
  await packDirectory(await samplePackage(join(dir, "pkg")), tar, { name: image });
  await pushImage(tar, undefined, { credential: null });
  const t = openRepository(ImageName.parse(image), { credential: null });
  return { image, t, subject: await t.resolve("1") };
}

/** `n` signature layers over one payload for `subject` (one digest), signed with `key`. */
async function signatureLayers(
  t: Target,
  subject: Descriptor,
  key: ReturnType<typeof generateSigningKeyPair>,
  n: number,
): Promise<Descriptor[]> {
  const bytes = buildPayload("example.com/x", subject.digest);
  const payload = await pushBytes(t, SIMPLE_SIGNING_MEDIA_TYPE, bytes);
  const layer = {
    ...payload,
    annotations: { [SIGNATURE_ANNOTATION]: signPayload(key.privateKey, bytes) },
  };
  return Array.from({ length: n }, () => layer);
}

async function signatureManifest(
  t: Target,
  layers: Descriptor[],
  extra: Partial<Manifest> = {},
): Promise<Manifest> {
  const config = await pushBytes(t, "application/vnd.oci.image.config.v1+json", encodeJson({}));
  return { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers, ...extra };
}

/** A `.sig` manifest for `subject` holding `layers`. */
async function tagSignatures(t: Target, subject: Descriptor, layers: Descriptor[]): Promise<void> {
  const m = await signatureManifest(t, layers);
  await t.tag(await pushBytes(t, OCI_MANIFEST, encodeJson(m)), signatureTag(subject.digest));
}

/** A cosign signature referrer of `subject` holding `layers` (annotations make it distinct). */
async function referSignatures(
  t: Target,
  subject: Descriptor,
  layers: Descriptor[],
  annotations: Record<string, string>,
): Promise<Descriptor> {
  const m = await signatureManifest(t, layers, {
    artifactType: COSIGN_SIGNATURE_ARTIFACT_TYPE,
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations,
  });
  return (await pushReferrer(t, m)).manifest;
}

/** GET a referrers page of `srv` as a client would. */
async function page(path: string): Promise<{ status: number; link: string | null; body: string }> {
  const res = await fetch(`${srv.url}${path}`);
  return { status: res.status, link: res.headers.get("link"), body: await res.text() };
}

/**
 * A proxy in front of `upstream` that answers GETs of the referrers API with `referrers(url,
 * upstreamAnswer)` — for answers serve does not give (pages over 4 MiB, broken pages).
 */
function referrersProxy(
  upstream: string,
  referrers: (url: URL, real: () => Promise<Response>) => Response | Promise<Response>,
) {
  const forward = async (req: Request, url: URL) => {
    const up = await fetch(`http://${upstream}${url.pathname}${url.search}`, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      redirect: "manual",
    });
    return new Response(up.body, { status: up.status, headers: up.headers });
  };
  return startHttp((req, url) =>
    req.method === "GET" && url.pathname.includes("/referrers/")
      ? referrers(url, () => forward(req, url))
      : forward(req, url)
  );
}

const index = (manifests: unknown[]) =>
  JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests,
  });

/** An index of 2 cosign referrers with 2.5 MiB of annotations each: 5 MiB, over a client's 4 MiB cap. */
function hugePage(): string {
  const big = "x".repeat(2.5 * 1024 * 1024);
  return index([1, 2].map((i) => ({
    mediaType: OCI_MANIFEST,
    digest: `sha256:${String(i).repeat(64)}`,
    size: 100,
    artifactType: COSIGN_SIGNATURE_ARTIFACT_TYPE,
    annotations: { big },
  })));
}

Deno.test("serve: the referrers API pages by n and last, in digest order, and caps what one answer holds", async () => {
  const { t, subject } = await publish(srv.addr, "vb/pages");
  try {
    const small: string[] = [];
    for (let i = 0; i < 5; i++) {
      small.push((await referSignatures(t, subject, [], { i: String(i) })).digest);
    }
    // annotations over the per-referrer cap: listed, without them
    const big = await referSignatures(t, subject, [], {
      big: "b".repeat(REFERRER_ANNOTATION_BYTES + 1),
    });
    // 20 × 60 KiB of annotations: more than one answer holds
    const heavyType = "application/x-heavy";
    const heavy: string[] = [];
    for (let i = 0; i < 20; i++) {
      const m = await signatureManifest(t, [], {
        artifactType: heavyType,
        subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
        annotations: { i: String(i), pad: "p".repeat(60 * 1024) },
      });
      heavy.push((await pushReferrer(t, m)).manifest.digest);
    }
    const base = `/v2/vb/pages/referrers/${subject.digest}`;
    // n=2: pages of two, each linking to the next after the last digest it holds
    const seen: string[] = [];
    let next: string | undefined = `${base}?artifactType=${
      encodeURIComponent(COSIGN_SIGNATURE_ARTIFACT_TYPE)
    }&n=2`;
    let pages = 0;
    while (next) {
      const p = await page(next);
      assertEquals(p.status, 200, p.body);
      const doc = JSON.parse(p.body);
      assert(doc.manifests.length <= 2, p.body.slice(0, 200));
      seen.push(...doc.manifests.map((d: Descriptor) => d.digest));
      const m = p.link && /^<([^>]+)>; rel="next"$/.exec(p.link);
      if (p.link) assert(m, p.link);
      if (m) {
        const u = new URL(m[1]!, srv.url);
        assertEquals(u.pathname, base);
        assertEquals(u.searchParams.get("n"), "2");
        assertEquals(u.searchParams.get("last"), seen[seen.length - 1]);
        assertEquals(u.searchParams.get("artifactType"), COSIGN_SIGNATURE_ARTIFACT_TYPE);
      }
      next = m ? m[1]! : undefined;
      pages++;
    }
    assertEquals(pages, 3);
    assertEquals(seen, [...small, big.digest].sort());
    // the referrer with oversized annotations: listed without them
    const cosign = `${base}?artifactType=${encodeURIComponent(COSIGN_SIGNATURE_ARTIFACT_TYPE)}`;
    const all = JSON.parse((await page(cosign)).body).manifests as Descriptor[];
    const bigEntry = all.find((d) => d.digest === big.digest)!;
    assertEquals([bigEntry.artifactType, bigEntry.annotations], [
      COSIGN_SIGNATURE_ARTIFACT_TYPE,
      undefined,
    ]);
    assertEquals(all.find((d) => d.digest === small[0])?.annotations, { i: "0" });
    // annotation bytes per answer: the heavy referrers take two answers
    const first = await page(`${base}?artifactType=${heavyType}`);
    const firstDoc = JSON.parse(first.body);
    const annotationBytes = firstDoc.manifests
      .reduce((n: number, d: Descriptor) => n + JSON.stringify(d.annotations).length, 0);
    assert(annotationBytes <= REFERRERS_PAGE_ANNOTATION_BYTES, String(annotationBytes));
    assert(firstDoc.manifests.length < 20 && first.link !== null, first.link ?? "no link");
    // the client follows serve's pages: everything, once
    const listed = await listReferrers(t, subject.digest, { artifactType: heavyType });
    assertEquals([listed.source, listed.referrers.map((d) => d.digest).sort()], [
      "api",
      [...heavy].sort(),
    ]);
    assertEquals((await listReferrers(t, subject.digest)).referrers.length, 26);
    // a page size over the cap is the cap; bad n and last are refused, one line each
    const capped = await page(`${base}?n=${REFERRERS_PAGE_ENTRIES * 10}`);
    assertEquals(capped.status, 200);
    assert(capped.link?.includes(`n=${REFERRERS_PAGE_ENTRIES}&`), capped.link ?? "no link");
    for (
      const [q, re] of [["n=two", /invalid n 'two'/], [
        "last=zz",
        /invalid last 'zz': not a digest/,
      ]] as const
    ) {
      const p = await page(`${base}?${q}`);
      assertEquals(p.status, 400);
      const message = JSON.parse(p.body).errors[0].message as string;
      assert(re.test(message) && !message.includes("\n"), message);
    }
  } finally {
    await t.close();
  }
});

Deno.test("serve: two cosign referrers with 2.5 MiB of annotations each do not block a valid .sig — verify and get --verify-key pass", async () => {
  const { image, t, subject } = await publish(srv.addr, "vb/fat");
  try {
    await signImage(t, subject, signer.privateKey, { dockerReference: "example.com/x" });
    const big = "x".repeat(2.5 * 1024 * 1024);
    const wrong = await signatureLayers(t, subject, other, 1);
    for (const i of [1, 2]) await referSignatures(t, subject, wrong, { i: String(i), big });
    // serve's answer lists both, without their annotations, in far less than a client's cap
    const p = await page(`/v2/vb/fat/referrers/${subject.digest}`);
    assert(p.body.length < 64 * 1024, String(p.body.length));
    const listed = JSON.parse(p.body).manifests as Descriptor[];
    assertEquals(listed.map((d) => [d.artifactType, d.annotations]), [
      [COSIGN_SIGNATURE_ARTIFACT_TYPE, undefined],
      [COSIGN_SIGNATURE_ARTIFACT_TYPE, undefined],
    ]);
    let r = await runCli(["verify", image, "--key", pub, "--json"], { env });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(JSON.parse(r.stdout).signatures.map((s: { source: string }) => s.source), ["tag"]);
    r = await runCli(["get", image, "--verify-key", pub], { env, dataHome: await tempDir() });
    assertEquals(r.code, 0, r.stderr);
  } finally {
    await t.close();
  }
});

Deno.test("hostile referrers pages: a page over the cap or broken is skipped, the next page and the .sig still count; with nothing valid the refusal names every source", async () => {
  const { image, t, subject } = await publish(srv.addr, "vb/hostile");
  const name = image.slice(srv.addr.length); // "/vb/hostile:1"
  let mode: "pages" | "huge" | "hide" = "pages";
  const proxy = referrersProxy(srv.addr, async (url, real) => {
    if (mode === "huge") {
      return new Response(hugePage(), {
        headers: { "content-type": "application/vnd.oci.image.index.v1+json" },
      });
    }
    const step = url.searchParams.get("page");
    const more = (n: number) => ({ link: `<${url.pathname}?page=${n}>; rel="next"` });
    // page 1: over 4 MiB; page 2: not JSON; page 3: what serve lists (or nothing)
    if (step === null) return new Response(hugePage(), { headers: more(2) });
    if (step === "2") return new Response("<html>", { headers: more(3) });
    if (mode === "hide") return new Response(index([]));
    return await real();
  });
  try {
    // the only valid signature is a referrer, listed on page 3 only
    await signImage(t, subject, signer.privateKey, {
      dockerReference: "example.com/x",
      referrers: true,
    });
    let r = await runCli(["verify", `${proxy.host}${name}`, "--key", pub, "--json"], { env });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(JSON.parse(r.stdout).signatures.map((s: { source: string }) => s.source), [
      "referrer",
    ]);
    assert(proxy.requests.some((q) => q.path.endsWith("?page=3")));
    // the library says which pages it could not read, and keeps the rest
    const via = openRepository(ImageName.parse(`${proxy.host}${name}`), { credential: null });
    try {
      const listed = await listReferrers(via, subject.digest, { partial: true });
      assertEquals(listed.referrers.length, 1);
      assertEquals(listed.problems?.length, 2);
      assert(/4194304-byte cap/.test(listed.problems![0]!), listed.problems![0]);
      assert(/\(page 2 from .*not valid JSON/.test(listed.problems![1]!), listed.problems![1]);
      await assertRejects(
        () => listReferrers(via, subject.digest),
        Error,
        "4194304-byte cap",
      );
    } finally {
      await via.close();
    }
    // what serve answered before: one 4.9 MiB page; the valid .sig still verifies
    mode = "huge";
    await signImage(t, subject, signer.privateKey, { dockerReference: "example.com/x" });
    r = await runCli(["get", `${proxy.host}${name}`, "--verify-key", pub], {
      env,
      dataHome: await tempDir(),
    });
    assertEquals(r.code, 0, r.stderr);
    // nothing valid anywhere: refused, naming the .sig's failure and each unreadable page
    mode = "hide";
    r = await runCli(["verify", `${proxy.host}${name}`, "--key", otherPub], { env });
    assertEquals(r.code, 1);
    oneLineError(
      r.stderr,
      /does not verify with .*other\.pub/,
      /the answer of .* is larger than the 4194304-byte cap/,
      /\(page 2 from .*not valid JSON/,
    );
    r = await runCli(["get", `${proxy.host}${name}`, "--verify-key", otherPub], {
      env,
      dataHome: await tempDir(),
    });
    assertEquals(r.code, 1);
    oneLineError(
      r.stderr,
      /refusing to install image .*required by --verify-key: .*4194304-byte cap/,
    );
  } finally {
    await t.close();
    await proxy.stop();
  }
});

for (
  const [label, host, api] of [["serve", srv.addr, true], [
    "docker-registry",
    reg.host,
    false,
  ]] as const
) {
  Deno.test(`${label}: 20 referrers × 100 wrong-key layers and a 100-layer .sig, one payload digest — get --verify-key stops at the budget, the payload fetched once`, async () => {
    const repo = `vb/amp-${api ? "api" : "fb"}`;
    const { t, subject } = await publish(host, repo);
    const proxy = startFaultProxy(host);
    try {
      const layers = await signatureLayers(t, subject, other, 100);
      await tagSignatures(t, subject, layers);
      for (let i = 0; i < 20; i++) await referSignatures(t, subject, layers, { i: String(i) });
      const payload = layers[0]!.digest;
      proxy.reset();
      const r = await runCli(
        ["get", `${proxy.host}/${repo}:1`, "--verify-key", pub],
        { env, dataHome: await tempDir() },
      );
      assertEquals(r.code, 1);
      oneLineError(
        r.stderr,
        /refusing to install image .*required by --verify-key: signature 1 of signature manifest .*does not verify with .*cosign\.pub/,
        new RegExp(`stopped looking after ${DEFAULT_VERIFY_LIMITS.layers} signature layers`),
      );
      const gets = proxy.log.filter((e) => e.method === "GET");
      // the budget of one command: 256 layers are the .sig's 100 and two referrers' 100 and 56
      const manifests = gets.filter((e) =>
        /\/manifests\/sha256:/.test(e.path) || e.path.endsWith(signatureTag(subject.digest))
      );
      assert(manifests.length <= 3 + 1, JSON.stringify(manifests)); // + the image's own
      assertEquals(gets.filter((e) => e.path.endsWith(`/blobs/${payload}`)).length, 1);
      const limit = DEFAULT_VERIFY_LIMITS.manifests + DEFAULT_VERIFY_LIMITS.payloads + 10;
      assert(proxy.log.length <= limit, `${proxy.log.length} requests`);
      assert(proxy.log.length <= 16, proxy.log.map((e) => `${e.method} ${e.path}`).join("\n"));
    } finally {
      await t.close();
      await proxy.stop();
    }
  });
}

Deno.test("serve: 70 cosign referrers — 64 signature manifests read, then the error says the budget stopped it", async () => {
  const { t, subject } = await publish(srv.addr, "vb/many");
  const proxy = startFaultProxy(srv.addr);
  try {
    const layers = await signatureLayers(t, subject, other, 1);
    for (let i = 0; i < 70; i++) await referSignatures(t, subject, layers, { i: String(i) });
    proxy.reset();
    const via = new RegistryTarget(proxy.host, "vb/many", { credential: null });
    try {
      const e = await assertRejects(
        () => verifySignatures(via, subject, signer.publicKey),
        SignatureError,
      );
      assert(/stopped looking after 64 signature manifests/.test(e.message), e.message);
      assert(/\(none of 64 signatures verified\)/.test(e.message), e.message);
      assert(!e.message.includes("\n"));
    } finally {
      await via.close();
    }
    const manifests = proxy.log.filter((e) =>
      e.method === "GET" && e.path.includes("/manifests/sha256:")
    );
    assertEquals(manifests.length, DEFAULT_VERIFY_LIMITS.manifests);
    assertEquals(proxy.log.filter((e) => e.path.includes("/blobs/")).length, 1);
  } finally {
    await t.close();
    await proxy.stop();
  }
});

Deno.test("one budget per command: two keys read each signature manifest and payload once", async () => {
  const { image, t, subject } = await publish(srv.addr, "vb/keys");
  const proxy = startFaultProxy(srv.addr);
  try {
    const r0 = await signImage(t, subject, signer.privateKey, { dockerReference: "example.com/x" });
    proxy.reset();
    const r = await runCli(
      ["verify", `${proxy.host}${image.slice(srv.addr.length)}`, "--key", otherPub, "--key", pub],
      { env },
    );
    assertEquals(r.code, 0, r.stderr);
    const gets = proxy.log.filter((e) => e.method === "GET");
    assertEquals(gets.filter((e) => e.path.endsWith(`/blobs/${r0.payload.digest}`)).length, 1);
    // the .sig manifest: read once, by its tag (the target keeps what resolving it fetched)
    const sig = [`/manifests/${r0.manifest.digest}`, `/manifests/${r0.tag}`];
    assertEquals(gets.filter((e) => sig.some((p) => e.path.endsWith(p))).length, 1);
  } finally {
    await t.close();
    await proxy.stop();
  }
});

Deno.test("the payload cap is 64 KiB in the code and in SECURITY.md: sign refuses more before writing, verify refuses more before fetching", async () => {
  assertEquals(MAX_PAYLOAD_SIZE, 64 * 1024);
  const security = await Deno.readTextFile(join(ROOT, "SECURITY.md"));
  assert(/Payloads are capped at 64 KiB/.test(security.replace(/\s+/g, " ")), "SECURITY.md");
  const t = new MemoryTarget();
  const config = await pushBytes(t, "application/vnd.oci.empty.v1+json", encodeJson({}));
  const subject = await pushBytes(
    t,
    OCI_MANIFEST,
    encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }),
  );
  const annotations = { note: "n".repeat(MAX_PAYLOAD_SIZE) };
  const e = await assertRejects(
    () =>
      signImage(t, subject, signer.privateKey, { dockerReference: "example.com/x", annotations }),
    UsageError,
  );
  assert(/over the 65536-byte cap/.test(e.message), e.message);
  // nothing written: no payload, no .sig
  const payload = buildPayload("example.com/x", subject.digest, annotations);
  await assertRejects(
    () =>
      t.fetch({
        mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
        digest: digestOf(payload),
        size: payload.length,
      }),
    NotFoundError,
  );
  await assertRejects(() => t.resolve(signatureTag(subject.digest)), NotFoundError);
  // a layer naming a payload one byte over the cap is refused without fetching it
  const layer = {
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    digest: `sha256:${"3".repeat(64)}`,
    size: MAX_PAYLOAD_SIZE + 1,
    annotations: { [SIGNATURE_ANNOTATION]: "AAAA" },
  };
  await tagSignatures(t, subject, [layer]);
  const v = await assertRejects(
    () => verifySignatures(t, subject, signer.publicKey),
    SignatureError,
  );
  assert(/payload of 65537 bytes is over the 65536-byte cap/.test(v.message), v.message);
  // up to the cap is fine
  const fits = { note: "n".repeat(MAX_PAYLOAD_SIZE - 1024) };
  await signImage(t, subject, signer.privateKey, {
    dockerReference: "example.com/x",
    annotations: fits,
  });
  assertEquals((await verifySignatures(t, subject, signer.publicKey))[0]?.annotations, fits);
});

Deno.test("a referrer or payload the registry will not give does not hide the valid .sig; alone, it is named in the refusal", async () => {
  const { t, subject } = await publish(srv.addr, "vb/fails");
  const proxy = startFaultProxy(srv.addr);
  const via = new RegistryTarget(proxy.host, "vb/fails", { credential: null, maxAttempts: 1 });
  try {
    const bad = await referSignatures(t, subject, await signatureLayers(t, subject, other, 1), {
      i: "1",
    });
    await signImage(t, subject, signer.privateKey, { dockerReference: "example.com/x" });
    proxy.rules.unavailable = { match: bad.digest, times: 1000 };
    assertEquals((await verifySignatures(via, subject, signer.publicKey)).map((s) => s.source), [
      "tag",
    ]);
    // only the failing referrer and a .sig signed by another key: refused, naming both
    const otherSig = await signatureLayers(t, subject, other, 1);
    await tagSignatures(t, subject, otherSig);
    proxy.rules.unavailable = { match: bad.digest, times: 1000 };
    const e = await assertRejects(
      () => verifySignatures(via, subject, signer.publicKey),
      SignatureError,
    );
    assert(/does not verify with the key/.test(e.message), e.message);
    assert(/none of 2 signatures verified/.test(e.message), e.message);
    assert(new RegExp(`signature manifest ${bad.digest} .*503`).test(e.message), e.message);
    assertEquals((e as SignatureError).reason, "wrong-key");
    // the payload the registry will not give: named, not thrown past the other signatures
    proxy.rules.unavailable = { match: otherSig[0]!.digest, times: 1000 };
    proxy.log.length = 0;
    const p = await assertRejects(
      () => verifySignatures(via, subject, signer.publicKey),
      SignatureError,
    );
    assert(
      /^signature 1 of signature manifest .*: blob sha256:[0-9a-f]{64} .*503/.test(p.message),
      p.message,
    );
    assertEquals(proxy.log.filter((l) => l.path.endsWith(otherSig[0]!.digest)).length, 1);
  } finally {
    await via.close();
    await t.close();
    await proxy.stop();
  }
});
