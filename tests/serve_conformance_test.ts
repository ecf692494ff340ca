// The flows of the OCI distribution-spec conformance suite (its conformance/
// directory: pull, push, content discovery, content management, referrers),
// ported to Deno and run with raw HTTP against `ocipkg serve` and against
// docker-registry (distribution 2.8) — to show where the two differ. Where
// they differ the test says so and asserts each one's behaviour. Then each
// check of the suite v1.1.1 that the flows do not make, with its own requests
// ("the suite's checks, one by one" below): serve passes all 74 it runs.
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

// ---- the suite's checks, one by one
//
// The conformance suite (distribution-spec v1.1.1, conformance/0[1-4]_*_test.go) run against
// serve passes 74 of 74 checks (79 specs, 5 skipped by its configuration). The steps below make
// each of its checks that the flows above did not already make, with the suite's own requests:
// its shapes of manifest (descriptor fields the spec does not define, a manifest with no layers
// and no mediaType, referrers pushed before their subject, an index as a referrer, a config
// media type as artifact type), its order of requests (a stale upload URL, a retried chunk,
// deleting blobs before their manifest) and its expectations, so that CI, which cannot build
// the suite, keeps them.

const OCTET = { "content-type": "application/octet-stream" };
const CONFIG = "application/vnd.oci.image.config.v1+json";
const TYPE_A = "application/vnd.nhl.peanut.butter.bagel";
const TYPE_B = "application/vnd.nba.strawberry.jam.croissant";
const TYPE_INDEX = "application/vnd.food.stand";
const NOTE = "org.opencontainers.conformance.test";

/** The suite's `dummyDigest`: a blob no repository has. */
const DUMMY = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";

/** Its JSON as the suite marshals it (`json.MarshalIndent(v, "", "\t")`). */
const indented = (v: unknown) => enc.encode(JSON.stringify(v, null, "\t"));

/** A config blob the suite's way: unique by a random author. */
const suiteConfig = () =>
  indented({
    author: crypto.randomUUID(),
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: [] },
  });

/** A manifest the suite's way: its config descriptor carries `data` and a field the spec lacks. */
async function suiteManifest(config: Uint8Array<ArrayBuffer>, layer: Uint8Array<ArrayBuffer>) {
  const bytes = indented({
    schemaVersion: 2,
    mediaType: MANIFEST,
    config: {
      mediaType: CONFIG,
      digest: await sha256(config),
      size: config.length,
      data: btoa(String.fromCharCode(...config)),
      newUnspecifiedField: btoa("hello world"),
    },
    layers: [{
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      digest: await sha256(layer),
      size: layer.length,
    }],
  });
  return { bytes, digest: await sha256(bytes) };
}

const putManifest = (
  r: Reg,
  repo: string,
  ref: string,
  body: Uint8Array<ArrayBuffer>,
  type = MANIFEST,
) => req(r, "PUT", `/v2/${repo}/manifests/${ref}`, { body, headers: { "content-type": type } });

const ok2xx = (status: number) => status >= 200 && status < 300;

/**
 * A request fetch() cannot send (a GET with a body, as the suite's Go client does), over
 * HTTP/1.1: read until the response's head and its Content-Length of body are in (a server may
 * reset the connection after its answer).
 */
async function raw(
  r: Reg,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Uint8Array,
) {
  const url = new URL(r.url);
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  try {
    const all = { host: url.host, "content-length": String(body.length), ...headers };
    const head = Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    await conn.write(enc.encode(`${method} ${path} HTTP/1.1\r\n${head}\r\n`));
    await conn.write(body);
    let got = "";
    const buf = new Uint8Array(65536);
    const dec = new TextDecoder();
    while (true) {
      const end = got.indexOf("\r\n\r\n");
      const length = /\r\ncontent-length: *(\d+)/i.exec(got.slice(0, end));
      if (end >= 0 && length && got.length >= end + 4 + Number(length[1])) {
        return { status: Number(got.slice(9, 12)), body: enc.encode(got.slice(end + 4)) };
      }
      const n = await conn.read(buf);
      if (n === null) throw new Error(`the response ended early: ${got}`);
      got += dec.decode(buf.subarray(0, n), { stream: true });
    }
  } finally {
    conn.close();
  }
}

async function suiteChecks(r: Reg, t: Deno.TestContext, results: string[]) {
  const note = (flow: string, outcome: string) => results.push(`${r.kind} ${flow}: ${outcome}`);
  const layer = crypto.getRandomValues(new Uint8Array(1024));

  await t.step(
    `${r.kind}: suite 01 pull — its manifests, HEAD of blobs, error body, teardown`,
    async () => {
      const repo = "suite/pull";
      const configs = [suiteConfig(), suiteConfig()];
      for (const c of configs) await pushBlob(r, repo, c);
      const layerDigest = await pushBlob(r, repo, layer);
      const [m0, m1] = [
        await suiteManifest(configs[0]!, layer),
        await suiteManifest(configs[1]!, layer),
      ];
      // setup: manifest[0] by tag, manifest[1] by digest — descriptor fields the spec lacks are kept
      assert(ok2xx((await putManifest(r, repo, "tagtest0", m0.bytes)).status));
      assert(ok2xx((await putManifest(r, repo, m1.digest, m1.bytes)).status));
      const got = await req(r, "GET", `/v2/${repo}/manifests/tagtest0`, {
        headers: { accept: MANIFEST },
      });
      assertEquals(got.body, m0.bytes);
      // blobs: HEAD and GET, of one that exists and of the dummy
      for (const method of ["HEAD", "GET"]) {
        assertEquals((await req(r, method, `/v2/${repo}/blobs/${DUMMY}`)).status, 404, method);
        const c0 = await req(r, method, `/v2/${repo}/blobs/${await sha256(configs[0]!)}`);
        assertEquals(c0.status, 200, method);
        assertEquals(c0.headers.get("docker-content-digest"), await sha256(configs[0]!));
      }
      // manifests: HEAD and GET by each digest and by the tag, with the digest header
      const refs = [[m0.digest, m0.digest], [m1.digest, m1.digest], ["tagtest0", m0.digest]];
      for (const [ref, digest] of refs) {
        for (const method of ["HEAD", "GET"]) {
          const res = await req(r, method, `/v2/${repo}/manifests/${ref}`, {
            headers: { accept: MANIFEST },
          });
          assertEquals(res.status, 200, `${method} ${ref}`);
          assertEquals(res.headers.get("docker-content-digest"), digest);
        }
      }
      // error codes: a GET of a malformed digest (with a body): 400 with a spec code, or 404
      const wrong = await raw(r, "GET", `/v2/${repo}/manifests/sha256:totallywrong`, {
        "content-type": MANIFEST,
      }, enc.encode("blablabla"));
      if (r.kind === "serve") {
        assertEquals([wrong.status, errorCode(wrong.body)], [404, "MANIFEST_UNKNOWN"]);
      } else {
        note("GET manifests/sha256:totallywrong", `${wrong.status} ${errorCode(wrong.body)}`);
      }
      // teardown, both orders of the suite (OCI_DELETE_MANIFEST_BEFORE_BLOBS): manifest[0] before
      // its blobs, manifest[1] after them; a blob deleted twice (the layer is shared) is 404
      assertEquals((await req(r, "DELETE", `/v2/${repo}/manifests/${m0.digest}`)).status, 202);
      assertEquals(
        (await req(r, "DELETE", `/v2/${repo}/blobs/${await sha256(configs[0]!)}`)).status,
        202,
      );
      assertEquals(
        (await req(r, "DELETE", `/v2/${repo}/blobs/${await sha256(configs[1]!)}`)).status,
        202,
      );
      assertEquals((await req(r, "DELETE", `/v2/${repo}/blobs/${layerDigest}`)).status, 202);
      assertEquals((await req(r, "DELETE", `/v2/${repo}/blobs/${layerDigest}`)).status, 404);
      assertEquals((await req(r, "DELETE", `/v2/${repo}/manifests/${m1.digest}`)).status, 202);
      assertEquals((await req(r, "GET", `/v2/${repo}/manifests/${m1.digest}`)).status, 404);
      note("suite 01 pull", "ok");
    },
  );

  await t.step(
    `${r.kind}: suite 02 push — streamed, monolithic, chunked in the suite's order, mount, no layers`,
    async () => {
      const repo = "suite/push";
      const other = "suite/other";
      // streamed: a PATCH with no Content-Range, then a PUT with the digest and no body
      const blobA = crypto.getRandomValues(new Uint8Array(42));
      const digestA = await sha256(blobA);
      const post = await req(r, "POST", `/v2/${repo}/blobs/uploads/`);
      assertEquals(post.status, 202);
      const patch = await req(r, "PATCH", new URL(post.headers.get("location")!, r.url).href, {
        body: blobA,
        headers: OCTET,
      });
      assertEquals(patch.status, 202);
      const done = new URL(patch.headers.get("location")!, r.url);
      done.searchParams.set("digest", digestA);
      const put = await req(r, "PUT", done.href, { headers: { ...OCTET, "content-length": "0" } });
      assertEquals(put.status, 201);
      assert(put.headers.get("location"));
      // monolithic: POST with the digest and the body (201, or 202 and the blob not there yet)
      const config = suiteConfig();
      const configDigest = await sha256(config);
      const one = await req(r, "POST", `/v2/${repo}/blobs/uploads/?digest=${configDigest}`, {
        body: config,
        headers: OCTET,
      });
      assert(one.headers.get("location"));
      const there = (await req(r, "GET", `/v2/${repo}/blobs/${configDigest}`)).status;
      assertEquals(there, one.status === 201 ? 200 : 404);
      // POST, then PUT with the body: 201 with a Location
      for (const bytes of [config, layer]) {
        const s = await req(r, "POST", `/v2/${repo}/blobs/uploads/`);
        assertEquals(s.status, 202);
        const at = new URL(s.headers.get("location")!, r.url);
        at.searchParams.set("digest", await sha256(bytes));
        const p = await req(r, "PUT", at.href, { body: bytes, headers: OCTET });
        assertEquals(p.status, 201);
        assert(p.headers.get("location"));
        assertEquals((await req(r, "GET", `/v2/${repo}/blobs/${await sha256(bytes)}`)).status, 200);
      }
      // chunked, the suite's way: a first chunk out of order; a chunk retried on the session's first
      // URL; the status on that (stale) URL; the second chunk; the PUT with no body
      const blobB = crypto.getRandomValues(new Uint8Array(42));
      const [chunk1, chunk2] = [blobB.slice(0, 22), blobB.slice(22)];
      const range1 = "0-21";
      const range2 = "22-41";
      const chunk = (url: string, bytes: Uint8Array<ArrayBuffer>, range: string) =>
        req(r, "PATCH", url, {
          body: bytes,
          headers: { ...OCTET, "content-length": String(bytes.length), "content-range": range },
        });
      const fresh = async () => {
        const s = await req(r, "POST", `/v2/${repo}/blobs/uploads/`, {
          headers: { "content-length": "0" },
        });
        assertEquals(s.status, 202);
        return new URL(s.headers.get("location")!, r.url).href;
      };
      const outOfOrder = await chunk(await fresh(), chunk2, range2);
      const first = await fresh();
      const c1 = await chunk(first, chunk1, range1);
      assertEquals(c1.status, 202);
      assertEquals(c1.headers.get("range"), range1);
      const retried = await chunk(first, chunk1, range1);
      const stale = await req(r, "GET", first);
      if (r.kind === "serve") {
        assertEquals(outOfOrder.status, 416);
        assertEquals(retried.status, 416);
        assertEquals(stale.status, 204);
        assertEquals(stale.headers.get("range"), range1);
        assert(stale.headers.get("location"));
      } else {
        const seen = [outOfOrder, retried, stale].map((x) => `${x.status} ${errorCode(x.body)}`);
        note("chunk out of order, chunk retried, stale status", seen.join(", "));
      }
      const next = stale.status === 204
        ? stale.headers.get("location")!
        : c1.headers.get("location")!;
      const c2 = await chunk(new URL(next, r.url).href, chunk2, range2);
      assertEquals(c2.status, 202);
      assert(c2.headers.get("location"));
      const end = new URL(c2.headers.get("location")!, r.url);
      end.searchParams.set("digest", await sha256(blobB));
      const fin = await req(r, "PUT", end.href, { headers: { ...OCTET, "content-length": "0" } });
      assertEquals(fin.status, 201);
      assert(fin.headers.get("location"));
      // cross-repository mount: without `from` (of a blob no repository has): a session
      const noFrom = await req(r, "POST", `/v2/${other}/blobs/uploads/?mount=${DUMMY}`);
      assertEquals(noFrom.status, 202);
      assert(noFrom.headers.get("location"));
      // with `from`: mounted, at the blob's URL in the target repository
      const mount = await req(
        r,
        "POST",
        `/v2/${other}/blobs/uploads/?mount=${digestA}&from=${repo}`,
      );
      assertEquals(mount.status, 201);
      const mounted = new URL(mount.headers.get("location")!, r.url);
      assertEquals(mounted.pathname, `/v2/${other}/blobs/${digestA}`);
      assertEquals((await req(r, "GET", mounted.href)).status, 200);
      // no automatic mount (OCI_AUTOMATIC_CROSSMOUNT=0): without `from` a session, even for that blob
      assertEquals(
        (await req(r, "POST", `/v2/${other}/blobs/uploads/?mount=${digestA}`)).status,
        202,
      );
      // manifests: four tags, each 201 with a Location; one with no layers and no mediaType
      const m = await suiteManifest(config, layer);
      for (let i = 0; i < 4; i++) {
        const res = await putManifest(r, repo, `test${i}`, m.bytes);
        assertEquals(res.status, 201);
        assert(res.headers.get("location"));
      }
      const emptyLayers = indented({
        schemaVersion: 2,
        config: { mediaType: CONFIG, digest: configDigest, size: config.length },
        layers: [],
      });
      const noLayers = await putManifest(r, repo, "emptylayer", emptyLayers);
      assertEquals(noLayers.status, 201);
      assert(noLayers.headers.get("location"));
      assertEquals(
        (await req(r, "GET", `/v2/${repo}/manifests/${m.digest}`, {
          headers: { accept: MANIFEST },
        })).status,
        200,
      );
      // teardown
      for (const d of [m.digest, await sha256(emptyLayers)]) {
        assertEquals((await req(r, "DELETE", `/v2/${repo}/manifests/${d}`)).status, 202);
      }
      for (const d of [configDigest, await sha256(layer)]) {
        assertEquals((await req(r, "DELETE", `/v2/${repo}/blobs/${d}`)).status, 202);
      }
      note("suite 02 push", "ok");
    },
  );

  await t.step(
    `${r.kind}: suite 03 discovery — tag pages, referrers pushed before their subject`,
    async () => {
      const repo = "suite/discovery";
      const config = suiteConfig();
      await pushBlob(r, repo, config);
      await pushBlob(r, repo, layer);
      const m2 = await suiteManifest(config, layer);
      for (let i = 0; i < 4; i++) {
        assert(
          ok2xx((await putManifest(r, repo, `test${i}`, m2.bytes)).status),
        );
      }
      const tags = async (q = "") => {
        const res = await req(r, "GET", `/v2/${repo}/tags/list${q}`);
        assertEquals(res.status, 200);
        return JSON.parse(new TextDecoder().decode(res.body)).tags as string[];
      };
      const all = await tags();
      assertEquals([...all].sort(), ["test0", "test1", "test2", "test3"]);
      const half = all.length / 2;
      const page = await tags(`?n=${half}`);
      if (r.kind === "serve") {
        assertEquals(page, ["test0", "test1"]);
        assertEquals(await tags(`?n=${half}&last=${page[half - 1]}`), ["test2", "test3"]);
      } else note("tags ?n=2", `${page.length} tags`);

      // referrers: the empty JSON blob, blob A, then referrers of a subject not pushed yet
      const emptyJson = enc.encode("{}");
      const emptyDesc = { mediaType: EMPTY, digest: await pushBlob(r, repo, emptyJson), size: 2 };
      assertEquals(
        emptyDesc.digest,
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
      );
      const refA = enc.encode("NHL Peanut Butter on my NHL bagel");
      const refB = enc.encode("NBA Strawberry Jam on my NBA croissant");
      const subjectConfig = suiteConfig();
      const subject = await suiteManifest(subjectConfig, layer);
      const missing = await suiteManifest(suiteConfig(), layer); // never pushed
      const desc = (m: { bytes: Uint8Array; digest: string }) => ({
        mediaType: MANIFEST,
        size: m.bytes.length,
        digest: m.digest,
      });
      const blobDesc = async (type: string, b: Uint8Array<ArrayBuffer>) => ({
        mediaType: type,
        size: b.length,
        digest: await sha256(b),
      });
      const configArtifact = async (type: string, b: Uint8Array<ArrayBuffer>, text: string) => {
        const bytes = indented({
          schemaVersion: 2,
          mediaType: MANIFEST,
          config: await blobDesc(type, b),
          layers: [emptyDesc],
          subject: desc(subject),
          annotations: { [NOTE]: text },
        });
        return { bytes, digest: await sha256(bytes), text };
      };
      const layerArtifact = async (
        type: string,
        b: Uint8Array<ArrayBuffer>,
        of: { bytes: Uint8Array; digest: string },
        text?: string,
      ) => {
        const bytes = indented({
          schemaVersion: 2,
          mediaType: MANIFEST,
          artifactType: type,
          config: emptyDesc,
          layers: [await blobDesc(type, b)],
          subject: desc(of),
          ...(text ? { annotations: { [NOTE]: text } } : {}),
        });
        return { bytes, digest: await sha256(bytes), text };
      };
      await pushBlob(r, repo, refA);
      const aConfig = await configArtifact(TYPE_A, refA, "test config a");
      const aLayer = await layerArtifact(TYPE_A, refA, subject, "test layer a");
      const indexBytes = indented({
        schemaVersion: 2,
        mediaType: INDEX,
        artifactType: TYPE_INDEX,
        manifests: [desc(aConfig), desc(aLayer)],
        subject: desc(subject),
        annotations: { [NOTE]: "test index" },
      });
      const index = { bytes: indexBytes, digest: await sha256(indexBytes), text: "test index" };
      const subjectHeader = async (
        m: { bytes: Uint8Array<ArrayBuffer>; digest: string },
        of: string,
        type = MANIFEST,
      ) => {
        const res = await putManifest(r, repo, m.digest, m.bytes, type);
        assert(ok2xx(res.status), `${res.status} ${new TextDecoder().decode(res.body)}`);
        return res.headers.get("oci-subject") === of;
      };
      const before = [
        await subjectHeader(aConfig, subject.digest),
        await subjectHeader(aLayer, subject.digest),
        await subjectHeader(index, subject.digest, INDEX),
      ];
      // the subject, then blob B and its referrers, and one of a subject never pushed
      await pushBlob(r, repo, subjectConfig);
      assert(ok2xx((await putManifest(r, repo, "tagtest0", subject.bytes)).status));
      await pushBlob(r, repo, refB);
      const bConfig = await configArtifact(TYPE_B, refB, "test config b");
      const bLayer = await layerArtifact(TYPE_B, refB, subject, "test layer b");
      const cLayer = await layerArtifact(TYPE_B, refB, missing);
      const after = [
        await subjectHeader(bConfig, subject.digest),
        await subjectHeader(bLayer, subject.digest),
        await subjectHeader(cLayer, missing.digest),
      ];
      const referrers = async (digest: string, q = "") => {
        const res = await req(r, "GET", `/v2/${repo}/referrers/${digest}${q}`);
        const body = res.status === 200
          ? JSON.parse(new TextDecoder().decode(res.body))
          : undefined;
        return {
          res,
          manifests: (body?.manifests ?? []) as {
            digest: string;
            annotations?: Record<string, string>;
          }[],
        };
      };
      if (r.kind === "docker-registry") {
        assertEquals([...before, ...after], [false, false, false, false, false, false]);
        assertEquals((await referrers(subject.digest)).res.status, 404);
        note("suite 03 referrers", "no API (404), no OCI-Subject");
      } else {
        assertEquals([...before, ...after], [true, true, true, true, true, true]);
        // a digest nothing refers to: an empty index
        const none = await referrers(DUMMY);
        assertEquals(none.res.status, 200);
        assertEquals(none.res.headers.get("content-type"), INDEX);
        assertEquals(none.manifests, []);
        // the subject: five, each once, each with its annotation
        const texts = new Map(
          [aConfig, aLayer, index, bConfig, bLayer].map((m) => [m.digest, m.text]),
        );
        const five = await referrers(subject.digest);
        assertEquals(five.res.headers.get("content-type"), INDEX);
        assertEquals(five.manifests.map((m) => m.digest).sort(), [...texts.keys()].sort());
        for (const m of five.manifests) {
          assertEquals(m.annotations, {
            [NOTE]: texts.get(m.digest)!,
          });
        }
        // filtered by artifact type: the config's media type counts when artifactType is absent
        const typeA = await referrers(subject.digest, `?artifactType=${TYPE_A}`);
        assertEquals(typeA.res.headers.get("oci-filters-applied"), "artifactType");
        assertEquals(
          typeA.manifests.map((m) => m.digest).sort(),
          [aConfig.digest, aLayer.digest].sort(),
        );
        // a subject never pushed: its one referrer
        const orphan = await referrers(missing.digest);
        assertEquals(orphan.res.status, 200);
        assertEquals(orphan.manifests.map((m) => m.digest), [cLayer.digest]);
        note("suite 03 referrers", "ok");
      }
      // teardown: by digest, some already gone with others (2xx or 404)
      for (
        const d of [
          index.digest,
          m2.digest,
          subject.digest,
          aConfig.digest,
          aLayer.digest,
          bConfig.digest,
          bLayer.digest,
          cLayer.digest,
        ]
      ) {
        const s = (await req(r, "DELETE", `/v2/${repo}/manifests/${d}`)).status;
        assert(ok2xx(s) || s === 404, String(s));
      }
      note("suite 03 discovery", "ok");
    },
  );

  await t.step(`${r.kind}: suite 04 management — the tag list after a delete`, async () => {
    const repo = "suite/management";
    const config = suiteConfig();
    await pushBlob(r, repo, config);
    await pushBlob(r, repo, layer);
    const m3 = await suiteManifest(config, layer);
    assert(ok2xx((await putManifest(r, repo, "tagtest0", m3.bytes)).status));
    const tags = async () => {
      const res = await req(r, "GET", `/v2/${repo}/tags/list`);
      if (res.status === 404) return [];
      // distribution 2.8 answers `"tags": null` once the last one is gone (the suite counts 0)
      return (JSON.parse(new TextDecoder().decode(res.body)).tags ?? []) as string[];
    };
    assertEquals(await tags(), ["tagtest0"]);
    // delete by tag: 202, or refused (400 UNSUPPORTED, 405)
    const byTag = await req(r, "DELETE", `/v2/${repo}/manifests/tagtest0`);
    if (r.kind === "serve") assertEquals(byTag.status, 202);
    else {
      // the suite's check wants 400 UNSUPPORTED for a refusal: distribution 2.8 fails it
      assertEquals([byTag.status, errorCode(byTag.body)], [400, "DIGEST_INVALID"]);
      note(
        "suite 04 delete by tag",
        "400 DIGEST_INVALID (the suite wants 202, 400 UNSUPPORTED or 405)",
      );
    }
    // by digest: 202 (or 404, the tag's delete took it)
    const byDigest = await req(r, "DELETE", `/v2/${repo}/manifests/${m3.digest}`);
    assert([202, 404].includes(byDigest.status), String(byDigest.status));
    assertEquals((await req(r, "GET", `/v2/${repo}/manifests/${m3.digest}`)).status, 404);
    // the tag list no longer has its tag (an empty list, or 404 for a repository with none)
    assertEquals(await tags(), []);
    // blobs: 202, then 404
    assertEquals((await req(r, "DELETE", `/v2/${repo}/blobs/${await sha256(config)}`)).status, 202);
    assertEquals((await req(r, "GET", `/v2/${repo}/blobs/${await sha256(config)}`)).status, 404);
    note("suite 04 management", "ok");
  });
}

Deno.test("conformance flows: ocipkg serve and docker-registry side by side", async (t) => {
  const results: string[] = [];
  const root = await tempDir();
  const s = await serve({ root, addr: "127.0.0.1:0", delete: true, log: () => {} });
  const d = await startRegistry();
  try {
    const serveReg: Reg = { kind: "serve", url: s.url, stop: () => s.close() };
    const dockerReg: Reg = { kind: "docker-registry", url: d.url, stop: () => d.stop() };
    await flows(serveReg, t, results);
    await suiteChecks(serveReg, t, results);
    await flows(dockerReg, t, results);
    await suiteChecks(dockerReg, t, results);
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
