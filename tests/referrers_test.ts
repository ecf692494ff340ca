// OCI 1.1 referrers: listing, pushing, attaching, discovering and copying them —
// against docker-registry (no referrers API: the `sha256-<hex>` fallback index), `ocipkg serve`
// (the API) and layouts — and a hostile referrers API answered by a fake server.
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import {
  FormatError,
  ImageName,
  MemoryTarget,
  OciDir,
  openRepository,
  RegistryError,
  RegistryTarget,
  serve,
  type Target,
  UsageError,
} from "../mod.ts";
import { type Descriptor, encodeJson, type Manifest, OCI_MANIFEST } from "../lib/oci/mod.ts";
import {
  attachArtifact,
  copyGraph,
  copyReferrers,
  discoverReferrers,
  listReferrers,
  pushBytes,
  pushReferrer,
  referrersTag,
} from "../lib/transport/mod.ts";
import { generateSigningKeyPair, signImage, verifySignatures } from "../lib/sign/mod.ts";
import { tempDir } from "./_helpers.ts";
import { startHttp } from "./_hostile_server.ts";
import { startRegistry } from "./_registry.ts";

const reg = await startRegistry();
const srv = await serve({ root: await tempDir(), addr: "127.0.0.1:0", log: () => {} });
globalThis.addEventListener("unload", () => reg.kill());

async function image(t: Target, text: string): Promise<Descriptor> {
  const config = await pushBytes(
    t,
    "application/vnd.oci.image.config.v1+json",
    encodeJson({ text }),
  );
  return await pushBytes(
    t,
    OCI_MANIFEST,
    encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }),
  );
}

const file = (name: string, text = name) => ({ name, bytes: new TextEncoder().encode(text) });

for (
  const [label, host, api] of [["docker-registry", reg.host, false], [
    "serve",
    srv.addr,
    true,
  ]] as const
) {
  Deno.test(`${label}: attach, list, discover a tree, push a referrer twice`, async () => {
    const t = openRepository(ImageName.parse(`${host}/ref/${api ? "api" : "fb"}:1`), {
      credential: null,
    });
    try {
      const subject = await image(t, label);
      await t.tag(subject, "1");
      assertEquals(await t.referrers(subject.digest) !== undefined, api);
      assertEquals((await listReferrers(t, subject.digest)).referrers, []);
      const dir = await tempDir();
      await Deno.writeTextFile(join(dir, "sbom.spdx.json"), '{"spdxVersion":"SPDX-2.3"}');
      const sbom = await attachArtifact(t, subject, [join(dir, "sbom.spdx.json")], {
        artifactType: "application/spdx+json",
        annotations: { kind: "sbom" },
      });
      assertEquals(sbom.fallbackTag, api ? undefined : referrersTag(subject.digest));
      const note = await attachArtifact(t, sbom.manifest, [file("review.txt")], {
        artifactType: "text/plain",
      });
      const listed = await listReferrers(t, subject.digest);
      assertEquals(listed.source, api ? "api" : "fallback");
      assertEquals(listed.referrers.map((d) => [d.digest, d.artifactType, d.annotations?.kind]), [
        [sbom.manifest.digest, "application/spdx+json", "sbom"],
      ]);
      assertEquals(
        (await listReferrers(t, subject.digest, { artifactType: "text/plain" })).referrers,
        [],
      );
      const tree = await discoverReferrers(t, subject.digest);
      assertEquals(tree.length, 1);
      assertEquals(tree[0]!.referrers.map((n) => n.descriptor.digest), [note.manifest.digest]);
      assertEquals(
        await discoverReferrers(t, subject.digest, { depth: 1 }).then((x) => x[0]!.referrers),
        [],
      );
      // the same referrer again: listed once
      const m: Manifest = JSON.parse(
        new TextDecoder().decode(
          new Uint8Array(await new Response(await t.fetch(sbom.manifest)).arrayBuffer()),
        ),
      );
      const again = await pushReferrer(t, m);
      assertEquals(again.manifest.digest, sbom.manifest.digest);
      assertEquals(again.existed, !api);
      assertEquals((await listReferrers(t, subject.digest)).referrers.length, 1);
    } finally {
      await t.close();
    }
  });
}

Deno.test("copyReferrers: serve (API) → oci-dir (fallback) → docker-registry (fallback): signatures and a nested tree survive", async () => {
  const src = openRepository(ImageName.parse(`${srv.addr}/ref/copy:1`), { credential: null });
  const dir = join(await tempDir(), "lay");
  const lay = await OciDir.open(dir, { create: true });
  const dst = openRepository(ImageName.parse(`${reg.host}/ref/copied:1`), { credential: null });
  try {
    const subject = await image(src, "copy");
    await src.tag(subject, "1");
    const { privateKey, publicKey } = generateSigningKeyPair();
    await signImage(src, subject, privateKey, { dockerReference: `${srv.addr}/ref/copy` });
    await signImage(src, subject, privateKey, {
      dockerReference: `${srv.addr}/ref/copy`,
      referrers: true,
    });
    const sbom = await attachArtifact(src, subject, [file("sbom.json")], {
      artifactType: "application/spdx+json",
    });
    await attachArtifact(src, sbom.manifest, [file("sig.txt")], { artifactType: "text/plain" });

    await copyGraph(src, lay, subject);
    await lay.tag(subject, "example.com/copy:1");
    // the .sig manifest, the referrer signature, the SBOM and the note on the SBOM
    assertEquals(await copyReferrers(src, lay, subject), 4);
    assertEquals((await verifySignatures(lay, subject, publicKey)).map((s) => s.source), [
      "tag",
      "referrer",
    ]);
    assertEquals((await lay.resolve()).digest, subject.digest); // still "the only image"

    await copyGraph(lay, dst, subject);
    assertEquals(await copyReferrers(lay, dst, subject), 4);
    const tree = await discoverReferrers(dst, subject.digest);
    assertEquals(tree.map((n) => n.source), ["fallback", "fallback"]);
    const sbomNode = tree.find((n) => n.descriptor.artifactType === "application/spdx+json")!;
    assertEquals(sbomNode.referrers.map((n) => n.descriptor.artifactType), ["text/plain"]);
    assertEquals((await verifySignatures(dst, subject, publicKey)).length, 2);
  } finally {
    await lay.close();
    await src.close();
    await dst.close();
  }
});

Deno.test("hostile referrers API: not JSON, not an index, bad entries, cross-origin and looping pages — one line each", async () => {
  const digest = `sha256:${"a".repeat(64)}`;
  let answer: (url: URL) => Response = () => new Response("{}");
  const s = startHttp((_req, url) => {
    if (url.pathname === "/v2/") return new Response("{}");
    if (url.pathname.startsWith("/v2/x/referrers/")) return answer(url);
    return new Response("not found", { status: 404 });
  });
  const index = (manifests: unknown[]) =>
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests,
    });
  const t = new RegistryTarget(s.host, "x", { credential: null });
  const cases: [string, () => Response, new (...a: never[]) => Error, RegExp][] = [
    ["not JSON", () => new Response("<html>"), FormatError, /referrers of .*x@sha256:a+/],
    [
      "a manifest",
      () => new Response(JSON.stringify({ schemaVersion: 2, config: {}, layers: [] })),
      FormatError,
      /referrers of/,
    ],
    [
      "an entry with a bad digest",
      () => new Response(index([{ mediaType: OCI_MANIFEST, digest: "sha256:zz", size: 2 }])),
      FormatError,
      /digest/,
    ],
    [
      "a next page on another origin",
      () =>
        new Response(index([]), {
          headers: { link: '<http://198.51.100.1/v2/x/referrers/next>; rel="next"' },
        }),
      RegistryError,
      /another origin/,
    ],
    [
      "a page linking back to itself",
      () =>
        new Response(index([]), {
          headers: { link: `<${"/v2/x/referrers/" + digest}>; rel="next"` },
        }),
      RegistryError,
      /a loop/,
    ],
  ];
  try {
    for (const [what, fn, type, re] of cases) {
      answer = fn;
      const e = await assertRejects(() => t.referrers(digest), type);
      assert(re.test(e.message), `${what}: ${e.message}`);
      assert(!e.message.includes("\n"), what);
    }
    // a filter the server ignores is applied here
    answer = () =>
      new Response(index([
        { mediaType: OCI_MANIFEST, digest, size: 2, artifactType: "text/plain" },
        { mediaType: OCI_MANIFEST, digest, size: 2, artifactType: "application/spdx+json" },
      ]));
    assertEquals((await t.referrers(digest, "text/plain"))?.map((d) => d.artifactType), [
      "text/plain",
    ]);
    assert(s.requests.some((r) => r.path.includes("artifactType=text%2Fplain")));
  } finally {
    await t.close();
    await s.stop();
  }
});

Deno.test("attach refuses what is not a regular file (a device would upload forever), one line", async () => {
  const t = new MemoryTarget();
  const subject = await image(t, "files");
  const dir = await tempDir();
  for (
    const [path, re] of [
      ["/dev/zero", /'\/dev\/zero' is not a regular file/],
      [dir, /is not a regular file/],
      [join(dir, "absent"), /does not exist/],
    ] as const
  ) {
    const e = await assertRejects(
      () => attachArtifact(t, subject, [path], { artifactType: "text/plain" }),
      UsageError,
    );
    assert(re.test(e.message), e.message);
  }
  assertEquals((await listReferrers(t, subject.digest)).referrers, []);
});
