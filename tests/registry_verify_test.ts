// RegistryTarget verifies every manifest and blob it reads or writes with the
// one Verifier: a digest or size mismatch anywhere (resolve, fetch, push, the
// registry's own Docker-Content-Digest) is a VerificationError whose one-line
// message names the digest and the image or repository.
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import {
  NotFoundError,
  OciDir,
  type ReadTarget,
  RegistryTarget,
  VerificationError,
} from "../mod.ts";
import { type Descriptor, digestOf, encodeJson, OCI_MANIFEST } from "../lib/oci/mod.ts";
import { copy, pushBytes } from "../lib/transport/mod.ts";
import { bytesStream } from "./_internal.ts";
import { type FakeRegistry, startFakeRegistry } from "./_hostile_server.ts";
import { startRegistry } from "./_registry.ts";
import { tempDir } from "./_helpers.ts";
import { startFaultProxy } from "./_fault_proxy.ts";

const enc = new TextEncoder();
const LAYER = "application/vnd.oci.image.layer.v1.tar";
const CONFIG = "application/vnd.oci.empty.v1+json";
const FAST = { credential: null, backoffMs: 1, maxAttempts: 2 } as const;

function desc(mediaType: string, bytes: Uint8Array): Descriptor {
  return { mediaType, digest: digestOf(bytes), size: bytes.byteLength };
}

/** A small image: config, one layer, a manifest (and a second manifest with other bytes). */
function image(layerBytes: Uint8Array<ArrayBuffer> = enc.encode("layer bytes ".repeat(100))) {
  const config = enc.encode("{}");
  const cfg = desc(CONFIG, config);
  const layer = desc(LAYER, layerBytes);
  const manifest = new Uint8Array(
    encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: cfg, layers: [layer] }),
  );
  const other = new Uint8Array(
    encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: cfg, layers: [] }),
  );
  return { config, cfg, layerBytes, layer, manifest, m: desc(OCI_MANIFEST, manifest), other };
}

/**
 * Read a fetched stream to its end; returns the bytes delivered before it ended or failed (a
 * small blob is read whole before fetch returns: its failure is fetch's, with nothing delivered).
 */
async function drain(
  s: Promise<ReadableStream<Uint8Array>>,
): Promise<{ n: number; error?: unknown }> {
  let n = 0;
  try {
    for await (const c of await s) n += c.byteLength;
    return { n };
  } catch (e) {
    return { n, error: e };
  }
}

/** The error is a VerificationError on one line naming every one of `names`. */
function isVerification(e: unknown, ...names: string[]): void {
  assert(e instanceof VerificationError, `expected a VerificationError, got ${e}`);
  assert(!e.message.includes("\n"), `one line: ${e.message}`);
  for (const n of names) assertStringIncludes(e.message, n);
}

async function withFake(
  fn: (reg: FakeRegistry, t: RegistryTarget) => Promise<void>,
  opts: Parameters<typeof startFakeRegistry>[0] = {},
  targetOpts: ConstructorParameters<typeof RegistryTarget>[2] = {},
): Promise<void> {
  const reg = startFakeRegistry(opts);
  const t = new RegistryTarget(reg.host, "org/x", { ...FAST, ...targetOpts });
  try {
    await fn(reg, t);
  } finally {
    await t.close();
    await reg.stop();
  }
}

Deno.test("verify: a manifest by digest answered with other bytes (resolve and fetch)", () =>
  withFake(async (reg, t) => {
    const img = image();
    reg.blobs.set(img.m.digest, { bytes: img.other, mediaType: OCI_MANIFEST });
    const repo = `${reg.host}/org/x`;
    const e1 = await assertRejects(() => t.resolve(img.m.digest), VerificationError);
    isVerification(e1, img.m.digest, `image '${repo}@${img.m.digest}'`, digestOf(img.other));
    const e2 = await assertRejects(() => t.fetch(img.m), VerificationError);
    isVerification(e2, img.m.digest, repo);
    // a manifest of the right bytes but the wrong size in its descriptor
    reg.blobs.set(img.m.digest, { bytes: img.manifest, mediaType: OCI_MANIFEST });
    const e3 = await assertRejects(() => t.fetch({ ...img.m, size: img.m.size + 1 }));
    isVerification(e3, img.m.digest, repo, "size mismatch");
    // and right: resolves, fetches (from the cache and not)
    assertEquals(await t.resolve(img.m.digest), img.m);
    assertEquals((await drain(t.fetch(img.m))).n, img.m.size);
  }));

Deno.test("verify: a tag whose Docker-Content-Digest disagrees with the manifest", () =>
  withFake(async (reg, t) => {
    const img = image();
    // the registry says the tag is img.m but sends other bytes
    reg.blobs.set(img.m.digest, { bytes: img.other, mediaType: OCI_MANIFEST });
    reg.tags.set("org/x:1", img.m.digest);
    const e = await assertRejects(() => t.resolve("1"), VerificationError);
    isVerification(
      e,
      `image '${reg.host}/org/x:1'`,
      "Docker-Content-Digest",
      img.m.digest,
      digestOf(img.other),
    );
    // agreeing: fine
    reg.blobs.set(img.m.digest, { bytes: img.manifest, mediaType: OCI_MANIFEST });
    assertEquals(await t.resolve("1"), img.m);
  }));

Deno.test("verify: a malformed Docker-Content-Digest is a mismatch; an unknown algorithm is ignored", async () => {
  const img = image();
  let header = "sha256:not-hex";
  await withFake(async (reg, t) => {
    reg.blobs.set(img.m.digest, { bytes: img.manifest, mediaType: OCI_MANIFEST });
    const e = await assertRejects(() => t.resolve("1"), VerificationError);
    isVerification(e, `image '${reg.host}/org/x:1'`, "sha256:not-hex", img.m.digest);
    header = "sha384:" + "a".repeat(96);
    assertEquals(await t.resolve("1"), img.m);
  }, {
    route: (req, url) =>
      req.method === "GET" && url.pathname === "/v2/org/x/manifests/1"
        ? new Response(img.manifest, {
          headers: { "content-type": OCI_MANIFEST, "docker-content-digest": header },
        })
        : undefined,
  });
});

// a small blob is read whole (BlobDownloads.read), a large one streamed: both verified alike
for (const [kind, size] of [["small", 1200], ["large", (1 << 20) + 7]] as const) {
  const layerOf = () => image(new Uint8Array(size).map((_, i) => (i * 7919) >> 3));

  Deno.test(`verify: a ${kind} blob answered with other bytes of the same length`, () =>
    withFake(async (reg, t) => {
      const img = layerOf();
      const wrong = img.layerBytes.slice();
      wrong[7]! ^= 0x5a;
      reg.blobs.set(img.layer.digest, { bytes: wrong, mediaType: LAYER });
      const r = await drain(t.fetch(img.layer));
      isVerification(r.error, img.layer.digest, `${reg.host}/org/x`, "digest mismatch");
    }));

  Deno.test(`verify: a ${kind} blob answered with extra bytes fails before they are passed on`, () =>
    withFake(async (reg, t) => {
      const img = layerOf();
      const longer = new Uint8Array(img.layer.size + 10);
      longer.set(img.layerBytes);
      reg.blobs.set(img.layer.digest, { bytes: longer, mediaType: LAYER });
      const r = await drain(t.fetch(img.layer));
      isVerification(r.error, img.layer.digest, `${reg.host}/org/x`, "size exceeds");
      assert(r.n <= img.layer.size, `passed on ${r.n} bytes of ${img.layer.size}`);
    }));

  Deno.test(`verify: a ${kind} blob that stays short after resuming is a size mismatch`, () =>
    withFake(
      async (reg, t) => {
        const img = layerOf();
        reg.blobs.set(img.layer.digest, {
          bytes: img.layerBytes.slice(0, 100),
          mediaType: LAYER,
        });
        const r = await drain(t.fetch(img.layer));
        isVerification(r.error, img.layer.digest, `${reg.host}/org/x`, "size mismatch");
      },
      {},
      { resumeAttempts: 1 },
    ));
}

Deno.test("verify: a registry answering another Docker-Content-Digest for a push", async () => {
  const img = image();
  const lie = digestOf(enc.encode("something else"));
  await withFake(async (reg, t) => {
    const repo = `${reg.host}/org/x`;
    // blob: our digest is the one PUT, the registry claims another
    const e1 = await assertRejects(() => t.push(img.layer, bytesStream(img.layerBytes)));
    isVerification(e1, img.layer.digest, repo, lie, "Docker-Content-Digest");
    // manifest by digest
    const e2 = await assertRejects(() => t.push(img.m, bytesStream(img.manifest)));
    isVerification(e2, img.m.digest, repo, lie, "Docker-Content-Digest");
    // tagging
    reg.blobs.set(img.m.digest, { bytes: img.manifest, mediaType: OCI_MANIFEST });
    const e3 = await assertRejects(() => t.tag(img.m, "1"));
    isVerification(e3, img.m.digest, repo, lie);
  }, {
    route: (req, url) =>
      req.method === "PUT" &&
        (url.pathname.includes("/manifests/") || url.searchParams.has("digest"))
        ? req.arrayBuffer().then(() =>
          new Response(null, { status: 201, headers: { "docker-content-digest": lie } })
        )
        : undefined,
  });
});

Deno.test("verify: a registry answering the same digest in another algorithm is checked on the bytes", async () => {
  const img = image();
  const sha512 = digestOf(img.manifest, "sha512");
  await withFake(async (_reg, t) => {
    assertEquals(await t.push(img.m, bytesStream(img.manifest)), img.m);
  }, {
    route: (req, url) =>
      req.method === "PUT" && url.pathname.includes("/manifests/")
        ? req.arrayBuffer().then(() =>
          new Response(null, { status: 201, headers: { "docker-content-digest": sha512 } })
        )
        : undefined,
  });
});

Deno.test("verify: pushes to a real registry that do not match their descriptor", async (t) => {
  const reg = await startRegistry();
  const proxy = startFaultProxy(reg.host);
  const target = (repo: string, chunkSize?: number) =>
    new RegistryTarget(proxy.host, repo, { ...FAST, chunkSize });
  try {
    await t.step(
      "a blob with other bytes, monolithic and chunked: no blob, session ended",
      async () => {
        for (const chunkSize of [undefined, 1024]) {
          proxy.reset();
          const img = image(crypto.getRandomValues(new Uint8Array(5000)));
          const wrong = img.layerBytes.slice();
          wrong[4000]! ^= 1;
          const dst = target("verify/blob", chunkSize);
          try {
            const e = await assertRejects(() => dst.push(img.layer, bytesStream(wrong)));
            isVerification(e, img.layer.digest, `${proxy.host}/verify/blob`, "digest mismatch");
            assertEquals(await dst.exists(img.layer), false);
            assertEquals(await dst.exists(desc(LAYER, wrong)), false);
            // nothing committed; the upload session was deleted
            assert(!proxy.log.some((l) => l.method === "PUT"), JSON.stringify(proxy.log));
            if (chunkSize) assert(proxy.log.some((l) => l.method === "PATCH"));
            const del = proxy.log.filter((l) => l.method === "DELETE");
            assertEquals(del.map((l) => l.status), [204]);
          } finally {
            await dst.close();
          }
        }
      },
    );

    await t.step("a blob with extra bytes: size exceeds, nothing committed", async () => {
      proxy.reset();
      const img = image();
      const longer = new Uint8Array(img.layer.size + 1);
      longer.set(img.layerBytes);
      const dst = target("verify/blob");
      try {
        const e = await assertRejects(() => dst.push(img.layer, bytesStream(longer)));
        isVerification(e, img.layer.digest, `${proxy.host}/verify/blob`, "size exceeds");
        assert(!proxy.log.some((l) => l.method === "PUT"), JSON.stringify(proxy.log));
        assertEquals(await dst.exists(img.layer), false);
      } finally {
        await dst.close();
      }
    });

    await t.step(
      "a layout blob damaged on disk goes up as a file stream: refused, nothing kept",
      async () => {
        const dir = await tempDir();
        const lay = await OciDir.open(`${dir}/lay`, { create: true });
        const bytes = crypto.getRandomValues(new Uint8Array(65536)).slice();
        const big = new Uint8Array(5 << 20); // above the one-PUT size: one streamed PUT
        for (let i = 0; i < big.length; i += bytes.length) big.set(bytes, i);
        big[big.length - 1] = 7;
        const d = await pushBytes(lay, LAYER, big);
        await lay.close(); // pushed blobs are put in place (synced) when the layout is tagged or closed
        const path = lay.blobPath(d.digest);
        // same size, one byte flipped: Deno sends the file itself, the registry checks the digest
        const flipped = big.slice();
        flipped[4096]! ^= 1;
        await Deno.writeFile(path, flipped);
        proxy.reset();
        const dst = target("verify/file");
        try {
          const e = await assertRejects(async () => dst.push(d, await lay.fetch(d)));
          isVerification(e, d.digest, `${proxy.host}/verify/file`, "digest mismatch");
          assertEquals(await dst.exists(d), false);
          // truncated: refused by the layout before anything is sent
          await Deno.writeFile(path, big.subarray(0, 1000));
          proxy.reset();
          const t = await assertRejects(() => lay.fetch(d));
          isVerification(t, d.digest, "is 1000 bytes");
          assertEquals(proxy.log.length, 0);
        } finally {
          await dst.close();
          await lay.close();
        }
      },
    );

    await t.step("a copy whose layer does not match: nothing is tagged", async () => {
      proxy.reset();
      const img = image();
      const wrong = img.layerBytes.slice();
      wrong[0]! ^= 1;
      const content = new Map([
        [img.cfg.digest, img.config],
        [img.layer.digest, wrong],
        [img.m.digest, img.manifest],
      ]);
      const src: ReadTarget = {
        description: "bad source",
        resolve: () => Promise.resolve(img.m),
        fetch: (d) => Promise.resolve(bytesStream(content.get(d.digest)!)),
        exists: (d) => Promise.resolve(content.has(d.digest)),
        close: () => Promise.resolve(),
      };
      const dst = target("verify/copy");
      try {
        const e = await assertRejects(() => copy(src, dst, { dstRef: "1" }));
        isVerification(e, img.layer.digest, `${proxy.host}/verify/copy`);
        await assertRejects(() => dst.resolve("1"), NotFoundError);
        assertEquals(await dst.exists(img.m), false);
        assertEquals(await dst.exists(img.layer), false);
        const tags = await dst.tags().catch((e) => {
          if (e instanceof NotFoundError) return [];
          throw e;
        });
        assertEquals(tags, []);
        assert(!proxy.log.some((l) => l.method === "PUT" && l.path.includes("/manifests/")));
      } finally {
        await dst.close();
      }
    });

    await t.step("a manifest with other bytes is never PUT", async () => {
      proxy.reset();
      const img = image();
      const dst = target("verify/manifest");
      try {
        const e0 = await assertRejects(() => dst.push(img.m, bytesStream(img.other)));
        isVerification(e0, img.m.digest, `${proxy.host}/verify/manifest`, "size mismatch");
        const spec = { mediaType: OCI_MANIFEST, digest: img.m.digest }; // no size: the digest decides
        const e = await assertRejects(() => dst.push(spec, bytesStream(img.other)));
        isVerification(e, img.m.digest, `${proxy.host}/verify/manifest`, "digest mismatch");
        const e2 = await assertRejects(() =>
          dst.push({ ...img.m, size: img.m.size - 1 }, bytesStream(img.manifest))
        );
        isVerification(e2, img.m.digest, `${proxy.host}/verify/manifest`, "size");
        assert(!proxy.log.some((l) => l.method === "PUT"), JSON.stringify(proxy.log));
        assertEquals(await dst.exists(img.m), false);
      } finally {
        await dst.close();
      }
    });

    await t.step(
      "reads through the fault proxy: wrong blob bytes, wrong manifest body",
      async () => {
        proxy.reset();
        const img = image(crypto.getRandomValues(new Uint8Array(3000)));
        const dst = target("verify/read");
        try {
          await dst.push(img.cfg, bytesStream(img.config));
          await dst.push(img.layer, bytesStream(img.layerBytes));
          await dst.push(img.m, bytesStream(img.manifest));
          await dst.tag(img.m, "1");
          proxy.rules.wrongBytes = img.layer.digest;
          const r = await drain(dst.fetch(img.layer));
          isVerification(r.error, img.layer.digest, `${proxy.host}/verify/read`);
          proxy.rules.manifestBody = { body: img.other, contentType: OCI_MANIFEST };
          const fresh = target("verify/read"); // no cached manifest
          try {
            const e1 = await assertRejects(() => fresh.resolve(img.m.digest));
            isVerification(e1, img.m.digest, `image '${proxy.host}/verify/read@${img.m.digest}'`);
            const e2 = await assertRejects(() => fresh.fetch(img.m));
            isVerification(e2, img.m.digest, `${proxy.host}/verify/read`);
          } finally {
            await fresh.close();
          }
          proxy.reset();
          assertEquals(await dst.resolve("1"), img.m);
        } finally {
          await dst.close();
        }
      },
    );
  } finally {
    await proxy.stop();
    await reg.stop();
  }
});
