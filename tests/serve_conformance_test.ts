// The flows of the OCI distribution-spec conformance suite (its conformance/
// directory: pull, push, content discovery, content management, referrers),
// ported to Deno and run with raw HTTP against `ocipkg serve` and against
// docker-registry (distribution 2.8) — to show where the two differ. Where
// they differ the test says so and asserts each one's behaviour.
import { assert, assertEquals } from "./_assert.ts";
import { serve } from "../mod.ts";
import { startRegistry } from "./_registry.ts";
import { tempDir } from "./_helpers.ts";

const enc = new TextEncoder();
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const INDEX = "application/vnd.oci.image.index.v1+json";
const EMPTY = "application/vnd.oci.empty.v1+json";

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return "sha256:" + [...h].map((b) => b.toString(16).padStart(2, "0")).join("");
}

interface Reg {
  kind: "serve" | "docker-registry";
  url: string;
  stop(): Promise<void>;
}

async function req(
  r: Reg,
  method: string,
  path: string,
  init: { body?: Uint8Array<ArrayBuffer>; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: Uint8Array }> {
  const url = path.startsWith("http") ? path : `${r.url}${path}`;
  const res = await fetch(url, { method, body: init.body, headers: init.headers });
  const body = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body };
}

const errorCode = (body: Uint8Array) => {
  try {
    return (JSON.parse(new TextDecoder().decode(body)) as { errors: { code: string }[] })
      .errors[0]?.code;
  } catch {
    return undefined;
  }
};

/** Push a blob monolithically (POST, then PUT ?digest=). */
async function pushBlob(r: Reg, repo: string, bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await sha256(bytes);
  const post = await req(r, "POST", `/v2/${repo}/blobs/uploads/`);
  assertEquals(post.status, 202);
  const loc = new URL(post.headers.get("location")!, r.url);
  loc.searchParams.set("digest", digest);
  const put = await req(r, "PUT", loc.href, {
    body: bytes,
    headers: { "content-type": "application/octet-stream" },
  });
  assertEquals(put.status, 201, new TextDecoder().decode(put.body));
  return digest;
}

async function image(r: Reg, repo: string, layerBytes: Uint8Array<ArrayBuffer>) {
  const config = enc.encode("{}");
  const cfg = { mediaType: EMPTY, digest: await pushBlob(r, repo, config), size: 2 };
  const layer = {
    mediaType: "application/vnd.oci.image.layer.v1.tar",
    digest: await pushBlob(r, repo, layerBytes),
    size: layerBytes.length,
  };
  const manifest = enc.encode(
    JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST, config: cfg, layers: [layer] }),
  );
  return { cfg, layer, manifest, digest: await sha256(manifest) };
}

/** The flows; `results` collects "flow: ok" or the difference seen. */
async function flows(r: Reg, t: Deno.TestContext, results: string[]) {
  const note = (flow: string, outcome: string) => results.push(`${r.kind} ${flow}: ${outcome}`);
  const layerBytes = crypto.getRandomValues(new Uint8Array(3000));
  const img = await image(r, "conf/pull", layerBytes);

  await t.step(`${r.kind}: push — manifest by tag, then by digest`, async () => {
    const put = await req(r, "PUT", "/v2/conf/pull/manifests/v1", {
      body: img.manifest,
      headers: { "content-type": MANIFEST },
    });
    assertEquals(put.status, 201);
    assertEquals(put.headers.get("docker-content-digest"), img.digest);
    assert(put.headers.get("location"));
    const byDigest = await req(r, "PUT", `/v2/conf/pull/manifests/${img.digest}`, {
      body: img.manifest,
      headers: { "content-type": MANIFEST },
    });
    assertEquals(byDigest.status, 201);
    note("push manifest", "ok");
  });

  await t.step(`${r.kind}: pull — manifests and blobs, HEAD and GET, Range`, async () => {
    for (const ref of ["v1", img.digest]) {
      const head = await req(r, "HEAD", `/v2/conf/pull/manifests/${ref}`, {
        headers: { accept: MANIFEST },
      });
      assertEquals(head.status, 200);
      assertEquals(head.headers.get("docker-content-digest"), img.digest);
      assertEquals(head.headers.get("content-length"), String(img.manifest.length));
      const get = await req(r, "GET", `/v2/conf/pull/manifests/${ref}`, {
        headers: { accept: MANIFEST },
      });
      assertEquals(get.status, 200);
      assertEquals(get.headers.get("content-type"), MANIFEST);
      assertEquals(await sha256(get.body as Uint8Array<ArrayBuffer>), img.digest);
    }
    const blob = await req(r, "GET", `/v2/conf/pull/blobs/${img.layer.digest}`);
    assertEquals(blob.status, 200);
    assertEquals(blob.body, layerBytes);
    const head = await req(r, "HEAD", `/v2/conf/pull/blobs/${img.layer.digest}`);
    assertEquals(head.status, 200);
    assertEquals(head.headers.get("content-length"), String(layerBytes.length));
    const range = await req(r, "GET", `/v2/conf/pull/blobs/${img.layer.digest}`, {
      headers: { range: "bytes=10-19" },
    });
    assertEquals(range.status, 206);
    assertEquals(range.body, layerBytes.subarray(10, 20));
    // unknown things: 404 with the spec's codes
    const noManifest = await req(r, "GET", "/v2/conf/pull/manifests/nope");
    assertEquals(noManifest.status, 404);
    assertEquals(errorCode(noManifest.body), "MANIFEST_UNKNOWN");
    const noBlob = await req(r, "GET", `/v2/conf/pull/blobs/sha256:${"0".repeat(64)}`);
    assertEquals(noBlob.status, 404);
    assertEquals(errorCode(noBlob.body), "BLOB_UNKNOWN");
    note("pull", "ok");
  });

  await t.step(`${r.kind}: a reference that is not a tag names no manifest — 404`, async () => {
    // the conformance suite's `.INVALID_MANIFEST_NAME`, and other names a tag cannot have
    for (const ref of [".INVALID_MANIFEST_NAME", "-x", "a".repeat(129)]) {
      for (const method of ["GET", "HEAD", "DELETE"]) {
        const got = await req(r, method, `/v2/conf/pull/manifests/${ref}`);
        assertEquals(got.status, 404, `${method} ${ref.slice(0, 30)}`);
        // docker-registry's router answers "404 page not found", without a code
        if (r.kind === "serve" && method !== "HEAD") {
          assertEquals(errorCode(got.body), "MANIFEST_UNKNOWN");
        }
      }
    }
    // the manifest is still there
    const still = await req(r, "HEAD", "/v2/conf/pull/manifests/v1", {
      headers: { accept: MANIFEST },
    });
    assertEquals(still.status, 200);
    const put = await req(r, "PUT", "/v2/conf/pull/manifests/.INVALID_MANIFEST_NAME", {
      body: img.manifest,
      headers: { "content-type": MANIFEST },
    });
    if (r.kind === "serve") {
      // a malformed digest names no manifest either; under a PUT, both are a bad upload
      for (const method of ["GET", "DELETE"]) {
        const got = await req(r, method, "/v2/conf/pull/manifests/sha256:abc");
        assertEquals([got.status, errorCode(got.body)], [404, "MANIFEST_UNKNOWN"]);
      }
      assertEquals([put.status, errorCode(put.body)], [400, "MANIFEST_INVALID"]);
      const putDigest = await req(r, "PUT", "/v2/conf/pull/manifests/sha256:abc", {
        body: img.manifest,
        headers: { "content-type": MANIFEST },
      });
      assertEquals([putDigest.status, errorCode(putDigest.body)], [400, "DIGEST_INVALID"]);
      note("invalid reference", "ok (404 MANIFEST_UNKNOWN; PUT 400 MANIFEST_INVALID)");
    } else {
      // distribution's router matches no route: 404 for a PUT too (and 500 for a GET of sha256:abc)
      assertEquals(put.status, 404);
      note("invalid reference", "ok (404 page not found, no code; PUT 404 too)");
    }
  });

  await t.step(`${r.kind}: push — single POST, chunked PATCH, status, cancel, mount`, async () => {
    // POST ?digest= with the body: one request
    const one = enc.encode("one request");
    const d1 = await sha256(one);
    const post = await req(r, "POST", `/v2/conf/push/blobs/uploads/?digest=${d1}`, {
      body: one,
      headers: { "content-type": "application/octet-stream" },
    });
    // distribution 2.8 ignores the digest on POST and opens a session (202): both are allowed
    assert(post.status === 201 || post.status === 202, String(post.status));
    note("single POST", post.status === 201 ? "blob created (201)" : "session opened (202)");
    // chunked: two PATCHes with Content-Range, the status GET, the final PUT
    const chunked = crypto.getRandomValues(new Uint8Array(5000));
    const dc = await sha256(chunked);
    const start = await req(r, "POST", "/v2/conf/push/blobs/uploads/");
    let loc = new URL(start.headers.get("location")!, r.url).href;
    for (const [a, b] of [[0, 2500], [2500, 5000]] as const) {
      const p = await req(r, "PATCH", loc, {
        body: chunked.slice(a, b),
        headers: {
          "content-type": "application/octet-stream",
          "content-range": `${a}-${b - 1}`,
          "content-length": String(b - a),
        },
      });
      assertEquals(p.status, 202);
      assertEquals(p.headers.get("range"), `0-${b - 1}`);
      loc = new URL(p.headers.get("location")!, r.url).href;
    }
    const status = await req(r, "GET", loc);
    assertEquals(status.status, 204);
    assertEquals(status.headers.get("range"), "0-4999");
    const fin = new URL(loc);
    fin.searchParams.set("digest", dc);
    assertEquals((await req(r, "PUT", fin.href)).status, 201);
    assertEquals((await req(r, "HEAD", `/v2/conf/push/blobs/${dc}`)).status, 200);
    // a wrong digest at the end: DIGEST_INVALID, nothing stored
    const bad = await req(r, "POST", "/v2/conf/push/blobs/uploads/");
    const badLoc = new URL(bad.headers.get("location")!, r.url);
    badLoc.searchParams.set("digest", `sha256:${"1".repeat(64)}`);
    const wrong = await req(r, "PUT", badLoc.href, {
      body: enc.encode("x"),
      headers: { "content-type": "application/octet-stream" },
    });
    assertEquals(wrong.status, 400);
    assertEquals(errorCode(wrong.body), "DIGEST_INVALID");
    // cancel an upload: then it is unknown
    const c = await req(r, "POST", "/v2/conf/push/blobs/uploads/");
    const cl = new URL(c.headers.get("location")!, r.url).href;
    assertEquals((await req(r, "DELETE", cl)).status, 204);
    assertEquals((await req(r, "GET", cl)).status, 404);
    // mount from another repository
    const m = await req(
      r,
      "POST",
      `/v2/conf/mounted/blobs/uploads/?mount=${img.layer.digest}&from=conf/pull`,
    );
    assertEquals(m.status, 201);
    assertEquals((await req(r, "HEAD", `/v2/conf/mounted/blobs/${img.layer.digest}`)).status, 200);
    // a manifest naming a blob the repository lacks is refused
    const lacking = enc.encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST,
        config: img.cfg,
        layers: [{ ...img.layer, digest: `sha256:${"2".repeat(64)}` }],
      }),
    );
    const refused = await req(r, "PUT", "/v2/conf/push/manifests/lacking", {
      body: lacking,
      headers: { "content-type": MANIFEST },
    });
    assertEquals(refused.status, 400);
    assertEquals(errorCode(refused.body), "MANIFEST_BLOB_UNKNOWN");
    note("push", "ok");
  });

  await t.step(`${r.kind}: content discovery — tags with n, last and Link`, async () => {
    for (const tag of ["b", "a", "c", "d"]) {
      await req(r, "PUT", `/v2/conf/pull/manifests/${tag}`, {
        body: img.manifest,
        headers: { "content-type": MANIFEST },
      });
    }
    const list = async (q: string) => {
      const res = await req(r, "GET", `/v2/conf/pull/tags/list${q}`);
      return { tags: JSON.parse(new TextDecoder().decode(res.body)).tags as string[], res };
    };
    const all = (await list("")).tags;
    assertEquals([...all].sort(), ["a", "b", "c", "d", "v1"]);
    const lexical = JSON.stringify(all) === JSON.stringify([...all].sort());
    // the spec asks for lexical order; distribution 2.8 answered in its storage order here
    if (r.kind === "serve") assert(lexical, JSON.stringify(all));
    note("tag order", lexical ? "lexical" : `not lexical (${all.join(",")})`);
    // pages of 2 follow Link and add up to the whole list
    const seen: string[] = [];
    let q = "?n=2";
    for (let i = 0; i < 5 && q; i++) {
      const { tags, res } = await list(q);
      if (tags.length > 2) {
        // distribution 2.8 (filesystem driver) answered more than n here
        assertEquals(r.kind, "docker-registry");
        note("tags n", `n=2 answered ${tags.length} tags`);
      }
      seen.push(...tags);
      const link = res.headers.get("link");
      const m = link ? /<[^>]*\?([^>]*)>; rel="next"/.exec(link) : null;
      q = m ? `?${m[1]}` : "";
      if (q) assert(/last=/.test(q), link!);
    }
    assertEquals([...seen].sort(), ["a", "b", "c", "d", "v1"]);
    const none = await req(r, "GET", "/v2/conf/nothing/tags/list");
    assertEquals(none.status, 404);
    assertEquals(errorCode(none.body), "NAME_UNKNOWN");
    note("content discovery", "ok");
  });

  await t.step(`${r.kind}: referrers — OCI-Subject, the API, artifactType filter`, async () => {
    const sub = { mediaType: MANIFEST, digest: img.digest, size: img.manifest.length };
    const referrer = enc.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST,
      artifactType: "application/vnd.example.sbom",
      config: { mediaType: EMPTY, digest: img.cfg.digest, size: 2 },
      layers: [img.layer],
      subject: sub,
    }));
    const rd = await sha256(referrer);
    const put = await req(r, "PUT", `/v2/conf/pull/manifests/${rd}`, {
      body: referrer,
      headers: { "content-type": MANIFEST },
    });
    assertEquals(put.status, 201);
    const api = await req(r, "GET", `/v2/conf/pull/referrers/${img.digest}`);
    if (r.kind === "docker-registry") {
      // distribution 2.8 predates OCI 1.1: no OCI-Subject, no referrers API
      assertEquals(put.headers.get("oci-subject"), null);
      assertEquals(api.status, 404);
      note("referrers", "no API (404), no OCI-Subject: clients use the sha256-<hex> tag fallback");
      return;
    }
    assertEquals(put.headers.get("oci-subject"), img.digest);
    assertEquals(api.status, 200);
    assertEquals(api.headers.get("content-type"), INDEX);
    const idx = JSON.parse(new TextDecoder().decode(api.body));
    assertEquals(idx.manifests.map((m: { digest: string }) => m.digest), [rd]);
    assertEquals(idx.manifests[0].artifactType, "application/vnd.example.sbom");
    const filtered = await req(
      r,
      "GET",
      `/v2/conf/pull/referrers/${img.digest}?artifactType=application/vnd.other`,
    );
    assertEquals(JSON.parse(new TextDecoder().decode(filtered.body)).manifests, []);
    note("referrers", "ok");
  });

  await t.step(`${r.kind}: content management — delete manifest, tag, blob`, async () => {
    const delTag = await req(r, "DELETE", "/v2/conf/pull/manifests/a");
    // deleting by tag is optional in the spec: distribution 2.8 refuses it
    if (delTag.status === 202) note("delete tag", "ok (202)");
    else {
      assertEquals(delTag.status, r.kind === "docker-registry" ? 400 : 405);
      note("delete tag", `refused (${delTag.status} ${errorCode(delTag.body)})`);
    }
    const delManifest = await req(r, "DELETE", `/v2/conf/pull/manifests/${img.digest}`);
    assertEquals(delManifest.status, 202);
    assertEquals((await req(r, "GET", `/v2/conf/pull/manifests/${img.digest}`)).status, 404);
    const delBlob = await req(r, "DELETE", `/v2/conf/pull/blobs/${img.layer.digest}`);
    assertEquals(delBlob.status, 202);
    assertEquals((await req(r, "HEAD", `/v2/conf/pull/blobs/${img.layer.digest}`)).status, 404);
    note("content management", "ok");
  });
}

Deno.test("conformance flows: ocipkg serve and docker-registry side by side", async (t) => {
  const results: string[] = [];
  const root = await tempDir();
  const s = await serve({ root, addr: "127.0.0.1:0", delete: true, log: () => {} });
  const d = await startRegistry();
  try {
    await flows({ kind: "serve", url: s.url, stop: () => s.close() }, t, results);
    await flows({ kind: "docker-registry", url: d.url, stop: () => d.stop() }, t, results);
  } finally {
    await s.close();
    await d.stop();
  }
  // the difference table, as the closing note quotes it
  console.log(results.join("\n"));
  assert(
    results.filter((l) => l.startsWith("serve")).every((l) =>
      !/refused|no API/.test(l) || l.includes("delete tag")
    ),
  );
});
