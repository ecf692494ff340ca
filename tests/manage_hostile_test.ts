// The registry-management commands and '-' for stdin/stdout under hostile input: a mirror whose
// tags are not the registry's (delete, tag), catalog and tag lists that never end, stdin that is
// garbage, never ends or is larger than allowed, a password on stdin that never ends, and a pipe
// closed early. Each fault: one line naming the thing at fault, exit 1, nothing changed.
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import {
  deleteImage,
  fetchManifest,
  listCatalog,
  listTags,
  packDirectory,
  pushImage,
  resolveImage,
  serve,
  tagImage,
  tarHeader,
} from "./_internal.ts";
import { CLI, runCli, sha256, tempDir } from "./_helpers.ts";
import { startFakeRegistry, startHttp } from "./_hostile_server.ts";

const quiet = { log: () => {} };

function assertMatch(actual: string, re: RegExp): void {
  assert(re.test(actual), `expected ${JSON.stringify(actual)} to match ${re}`);
}

/** A failed CLI run: exit 1, one line `error: …` matching `re`, no stack. */
function oneLineError(r: { code: number; stderr: string }, re: RegExp, code = 1): void {
  assertEquals(r.code, code, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assertEquals(lines.length, 1, r.stderr);
  assertMatch(lines[0]!, /^error: /);
  assertMatch(lines[0]!, re);
}

/** A package holding `content`, packed as `name` into a fresh archive. */
async function packed(name: string, content: string): Promise<{ archive: string; digest: string }> {
  const dir = await tempDir();
  await Deno.mkdir(join(dir, "pkg"));
  await Deno.writeTextFile(join(dir, "pkg", "a.txt"), content);
  const archive = join(dir, "pkg.tar");
  const { digest } = await packDirectory(join(dir, "pkg"), archive, { name });
  return { archive, digest };
}

async function configWith(doc: unknown): Promise<string> {
  const file = join(await tempDir(), "config.json");
  await Deno.writeTextFile(file, JSON.stringify(doc));
  return file;
}

const cli = async (args: string[], env: Record<string, string> = {}, stdin?: string | Uint8Array) =>
  runCli(args, { env, dataHome: await tempDir(), stdin });

/** The digest an image resolves to on the registry itself, or `gone`. */
const onRegistry = (image: string) => resolveImage(image, { config: false }).catch(() => "gone");

Deno.test("mirrors never decide what a write changes: delete and tag resolve tags on the registry alone", async () => {
  const dir = await tempDir();
  const registry = await serve({
    root: join(dir, "r"),
    addr: "127.0.0.1:0",
    delete: true,
    ...quiet,
  });
  const mirror = await serve({ root: join(dir, "m"), addr: "127.0.0.1:0", ...quiet });
  try {
    const repo = `${registry.addr}/x/pkg`;
    const a = await packed(`${repo}:1.0`, "a");
    const b = await packed(`${repo}:2.0`, "b");
    await pushImage(a.archive);
    await pushImage(b.archive);
    // the mirror (trusted to resolve tags for pulls) is stale or lies: 1.0 is b there
    await pushImage(b.archive, `${mirror.addr}/x/pkg:1.0`);
    const config = await configWith({
      registries: { [registry.addr]: { mirrors: [{ host: mirror.addr, resolve: true }] } },
    });
    const env = { OCIPKG_CONFIG: config };
    // a pull may take the mirror's word: that is what resolve: true is for
    assertEquals(await resolveImage(`${repo}:1.0`, { config }), b.digest);

    // delete: what 1.0 is on the registry is what goes, the mirror's answer never
    const planned = await cli(["delete", `${repo}:1.0`, "--dry-run", "--json"], env);
    assertEquals(planned.code, 0, planned.stderr);
    assertEquals(JSON.parse(planned.stdout).digest, a.digest);
    const plannedLib = await deleteImage(`${repo}:1.0`, { config, dryRun: true });
    assertEquals(plannedLib.digest, a.digest);
    assertEquals(plannedLib.tags, ["1.0"]);
    const forced = await cli(["delete", `${repo}:1.0`, "-f"], env);
    assertEquals(forced.code, 0, forced.stderr);
    assertEquals(forced.stdout.trim(), a.digest);
    assertEquals(await onRegistry(`${repo}:1.0`), "gone");
    assertEquals(await onRegistry(`${repo}:2.0`), b.digest); // 2.0 untouched

    // tag: the source tag is the registry's too
    await pushImage(a.archive);
    const tagged = await cli(["tag", `${repo}:1.0`, "stable"], env);
    assertEquals(tagged.code, 0, tagged.stderr);
    assertEquals(await onRegistry(`${repo}:stable`), a.digest);
    await tagImage(`${repo}:1.0`, ["stable2"], { config });
    assertEquals(await onRegistry(`${repo}:stable2`), a.digest);
    // and nothing was ever written to the mirror
    assertEquals(await listTags(`${mirror.addr}/x/pkg`), ["1.0"]);
  } finally {
    await registry.close();
    await mirror.close();
  }
});

/**
 * Run the CLI with stdin fed by `feed` until the CLI exits (or the deadline kills it), with its
 * temp files under `tmp`.
 */
async function cliFed(
  args: string[],
  feed: (write: (b: Uint8Array) => Promise<void>) => Promise<void>,
  tmp: string,
  env: Record<string, string> = {},
  ms = 60_000,
): Promise<{ code: number; stdout: string; stderr: string; killed: boolean; fed: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CLI, ...args],
    env: {
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
      TMPDIR: tmp,
      OCIPKG_DATA_DIR: join(tmp, "..", `data-${crypto.randomUUID()}`),
      ...(DENO_DIR ? { DENO_DIR } : {}),
      ...env,
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, ms);
  const w = child.stdin.getWriter();
  let fed = 0;
  const feeding = feed(async (b) => {
    await w.write(b);
    fed += b.byteLength;
  }).then(() => w.close()).catch(() => {}); // the CLI stopped reading: the pipe closed
  const r = await child.output();
  clearTimeout(timer);
  await feeding;
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr), killed, fed };
}

const DENO_DIR = Deno.env.get("DENO_DIR");
/** Write `block` forever (until the reader goes). */
const forever = (block: Uint8Array) => async (write: (b: Uint8Array) => Promise<void>) => {
  for (;;) await write(block);
};

Deno.test("stdin that is no archive, never ends, or is over the cap: one line at once, nothing left in the temp dir", async () => {
  const { archive } = await packed("example.com/stdin/pkg:1", "s");
  const tar = await Deno.readFile(archive);
  const MiB = new Uint8Array(1 << 20);
  const cases: [
    string,
    string[],
    (w: (b: Uint8Array) => Promise<void>) => Promise<void>,
    RegExp,
  ][] = [
    // zeros: an empty tar (its end marker comes first), then more zeros never read
    ["zeros forever", ["inspect", "-"], forever(MiB), /oci-archive on stdin is not an oci-archive/],
    [
      "text forever",
      ["load", "-"],
      forever(new TextEncoder().encode("y\n".repeat(4096))),
      /oci-archive on stdin is corrupt: bad tar header checksum at offset 0$/,
    ],
    [
      "random bytes",
      ["push", "-", "127.0.0.1:9/x/y:1"],
      forever(crypto.getRandomValues(new Uint8Array(65536))),
      /oci-archive on stdin is corrupt/,
    ],
    // an entry header claiming 100 GiB, then zeros: refused at its header
    ["a 100 GiB entry", ["inspect", "-"], async (write) => {
      await write(
        tarHeader({
          name: "blobs/sha256/x",
          type: "file",
          size: 100 * 1024 ** 3,
          mode: 0o644,
          mtime: 0,
          linkname: "",
        }),
      );
      await forever(MiB)(write);
    }, /oci-archive on stdin is over 17179869184 bytes \(OCIPKG_MAX_BYTES\)/],
  ];
  for (const [kind, args, feed, re] of cases) {
    const tmp = await tempDir();
    const r = await cliFed(args, feed, tmp, {}, 20_000);
    assert(!r.killed, `${kind}: hung`);
    oneLineError(r, re);
    assert(r.fed < 64 << 20, `${kind}: read ${r.fed} bytes of stdin`);
    assertEquals([...Deno.readDirSync(tmp)].map((e) => e.name), [], kind);
  }
  // a whole archive followed by input that never ends: read up to its end marker, then used
  const tmp = await tempDir();
  const after = await cliFed(["inspect", "-", "--json"], async (write) => {
    await write(tar);
    await forever(MiB)(write);
  }, tmp);
  assertEquals(after.code, 0, after.stderr);
  assertEquals(JSON.parse(after.stdout).name, "example.com/stdin/pkg:1");
  assertEquals([...Deno.readDirSync(tmp)].map((e) => e.name), []);
  // the cap is OCIPKG_MAX_BYTES
  const capped = await cliFed(["load", "-"], (write) => write(tar), tmp, {
    OCIPKG_MAX_BYTES: "1K",
  });
  oneLineError(
    capped,
    /oci-archive on stdin is over 1024 bytes \(OCIPKG_MAX_BYTES\); write it to a file/,
  );
  assertEquals([...Deno.readDirSync(tmp)].map((e) => e.name), []);
});

Deno.test("a password on stdin that never ends stops at its cap; stdin carries one thing", async () => {
  const tmp = await tempDir();
  const y = new TextEncoder().encode("y".repeat(65536));
  const login = await cliFed(
    ["login", "127.0.0.1:9", "-u", "x", "--password-stdin"],
    forever(y),
    tmp,
  );
  oneLineError(login, /^error: the password \(--password-stdin\) on stdin is over 65536 bytes/);
  const copy = await cliFed(
    ["copy", "127.0.0.1:9/a/b:1", "127.0.0.1:9/a/c:1", "--to-username", "x", "--to-password-stdin"],
    forever(y),
    tmp,
  );
  oneLineError(copy, /the password \(--to-password-stdin\) on stdin is over 65536 bytes/);
  const both = await cliFed(
    ["copy", "-", "127.0.0.1:9/a/c:1", "--to-username", "x", "--to-password-stdin"],
    (write) => write(y),
    tmp,
  );
  oneLineError(
    both,
    /stdin carries the source oci-archive \('-'\), not also the password \(--to-password-stdin\)/,
    2, // a usage error
  );
});

Deno.test("stdout closed early: one line naming stdout, exit 1", async () => {
  const dir = await tempDir();
  const registry = await serve({ root: join(dir, "r"), addr: "127.0.0.1:0", ...quiet });
  try {
    const name = `${registry.addr}/pipe/pkg:1`;
    const big = await tempDir();
    await Deno.mkdir(join(big, "pkg"));
    await Deno.writeFile(join(big, "pkg", "blob"), crypto.getRandomValues(new Uint8Array(65536)));
    for (let i = 0; i < 6; i++) {
      await Deno.copyFile(join(big, "pkg", "blob"), join(big, "pkg", `b${i}`));
    }
    const { digest } = await packDirectory(join(big, "pkg"), join(big, "p.tar"), {
      name,
      compression: "none",
    });
    await pushImage(join(big, "p.tar"));
    const manifest = JSON.parse(new TextDecoder().decode((await fetchManifest(name)).bytes));
    for (
      const [args, re] of [
        [["pull", name, "-o", "-"], /^error: an oci-archive written to 'stdout': /],
        [
          ["blob", `${name.split(":1")[0]}@${manifest.layers[0].digest}`, "-o", "-"],
          /^error: a blob written to 'stdout': /,
        ],
      ] as const
    ) {
      // a reader that takes one chunk and goes
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", CLI, ...args],
        env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...(DENO_DIR ? { DENO_DIR } : {}) },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      const reader = child.stdout.getReader();
      await reader.read();
      await reader.cancel();
      const { code } = await child.status;
      oneLineError({ code, stderr: await stderr }, re);
    }
    assert(digest);
  } finally {
    await registry.close();
  }
});

Deno.test("catalog and tag lists that never end, loop or link far: stopped in a few requests, one line", async () => {
  let mode = "";
  let n = 0;
  const server = startHttp((_req, url) => {
    if (url.pathname === "/v2/") return Response.json({});
    n++;
    const list = url.pathname === "/v2/_catalog" ? "repositories" : "tags";
    const page = (names: string[], next?: string) =>
      Response.json(
        { [list]: names },
        next ? { headers: { link: `<${url.pathname}?${next}>; rel="next"` } } : {},
      );
    switch (mode) {
      case "empty": // pages that list nothing, each linking to a new one
        return page([], `last=${n}`);
      case "loop": // the same two pages under ever new URLs
        return page(n % 2 ? ["a", "b"] : ["c"], `p=${n}`);
      case "far": // a next link far longer than any real one
        return page(["a"], `last=${"x".repeat(60_000)}`);
      case "same": // the same URL again
        return page(["a"], "last=z");
      case "away": // the next page on another host
        return Response.json({ [list]: ["a"] }, {
          headers: { link: `<http://127.0.0.2:9${url.pathname}?last=a>; rel="next"` },
        });
      case "escape": // names that would rewrite the screen
        return page(["a\u001b[2J\u001b]0;pwned\u0007", "b\nfake/line", "c\u202ed\u009b31m"]);
      default: // a million distinct tags, a page of 1000 at a time
        return page(Array.from({ length: 1000 }, (_, i) => `t${n}-${i}`), `last=${n}`);
    }
  });
  try {
    for (
      const [m, re] of [
        [
          "empty",
          /linked more than 3 pages in a row that list no (repositories|tags) \(a list that never ends\); stopped$/,
        ],
        ["loop", /linked to a page of (repositories|tags) already read \(a loop\)$/],
        ["far", /sent a next-page link of 600\d\d characters \(at most 8192\); refused$/],
        ["same", /linked (back )?to a page of (repositories|tags) already read \(a loop\)$/],
        [
          "away",
          /linked the next page of (repositories|tags) to another origin \(http:\/\/127\.0\.0\.2:9\); refused$/,
        ],
      ] as const
    ) {
      mode = m;
      for (const args of [["catalog", server.host], ["tags", `${server.host}/x/pkg`]]) {
        n = 0;
        const r = await cli(args);
        oneLineError(r, re);
        assert(n <= 6, `${m} ${args[0]}: ${n} requests`);
      }
      n = 0;
      await assertRejects(() => listCatalog(server.host), Error, "");
      assert(n <= 6, `${m} listCatalog: ${n} requests`);
    }
    // names are printed escaped, one a line, as text and as JSON
    mode = "escape";
    for (const args of [["catalog", server.host], ["tags", `${server.host}/x/pkg`]]) {
      const text = await cli(args);
      assertEquals(text.code, 0, text.stderr);
      assertEquals(text.stdout.split("\n").filter((l) => l), [
        "a\\u001b[2J\\u001b]0;pwned\\u0007",
        "b\\nfake/line",
        "c\\u202ed\\u009b31m",
      ]);
      const json = await cli([...args, "--json"]);
      assertEquals(json.code, 0, json.stderr);
      // deno-lint-ignore no-control-regex
      assert(!/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/.test(json.stdout), json.stdout);
      assertEquals(JSON.parse(json.stdout).length, 3);
    }
  } finally {
    await server.stop();
  }
});

Deno.test("delete's check of the other tags lists no more tags than it checks", async () => {
  let listed = 0;
  const registry = startFakeRegistry({
    route: (_req, url) => {
      if (!url.pathname.endsWith("/tags/list")) return undefined;
      listed++;
      const tags = Array.from({ length: 1000 }, (_, i) => `t${listed}-${i}`);
      if (listed === 1) tags[0] = "1.0";
      return Response.json({ tags }, {
        headers: { link: `</v2/x/pkg/tags/list?last=${listed}>; rel="next"` },
      });
    },
  });
  try {
    const manifest = new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [],
    }));
    const digest = await sha256(manifest);
    registry.blobs.set(digest, {
      bytes: manifest,
      mediaType: "application/vnd.oci.image.index.v1+json",
    });
    registry.tags.set("x/pkg:1.0", digest);
    const r = await cli(["delete", `${registry.host}/x/pkg:1.0`]);
    oneLineError(
      r,
      /deletes manifest sha256:[0-9a-f]{64} and every tag pointing to it, which are not known \(it has more than the 1000 tags checked\); nothing deleted/,
    );
    assert(listed <= 2, `${listed} pages of tags listed`);
    assert(!registry.requests.some((q) => q.method === "DELETE"));
  } finally {
    await registry.stop();
  }
});

Deno.test("catalog of a URL and blob into a missing directory: one line that says the fix", async () => {
  const r = await cli(["catalog", "http://127.0.0.1:9"]);
  oneLineError(
    r,
    /^error: 'http:\/\/127\.0\.0\.1:9' has a scheme: give the registry's host alone \('127\.0\.0\.1:9'; for plain http, --plain-http\)$/,
    2,
  );
  const dir = await tempDir();
  const registry = await serve({ root: join(dir, "r"), addr: "127.0.0.1:0", ...quiet });
  try {
    const name = `${registry.addr}/out/pkg:1`;
    await pushImage((await packed(name, "o")).archive);
    const config = JSON.parse(new TextDecoder().decode((await fetchManifest(name)).bytes)).config;
    const missing = join(dir, "no", "such", "config.json");
    const b = await cli(["blob", `${registry.addr}/out/pkg@${config.digest}`, "-o", missing]);
    oneLineError(
      b,
      new RegExp(
        `^error: output '${missing}': directory '${join(dir, "no", "such")}' does not exist$`,
      ),
      3,
    );
  } finally {
    await registry.close();
  }
});

Deno.test("a mirror that hangs, or asks to be retried in an hour, costs seconds: the registry answers", async () => {
  const dir = await tempDir();
  const registry = await serve({ root: join(dir, "r"), addr: "127.0.0.1:0", ...quiet });
  // accepts connections, never answers
  const hole = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    for await (const c of hole) held.push(c);
  })().catch(() => {});
  const busy = startHttp(() =>
    new Response(null, { status: 503, headers: { "retry-after": "3600" } })
  );
  try {
    const repo = `${registry.addr}/slow/pkg`;
    const p = await packed(`${repo}:1`, "slow");
    await pushImage(p.archive);
    const holeHost = `127.0.0.1:${(hole.addr as Deno.NetAddr).port}`;
    for (const mirror of [holeHost, busy.host]) {
      const config = await configWith({ registries: { [registry.addr]: { mirrors: [mirror] } } });
      const started = Date.now();
      const r = await cli(["get", `${repo}@${p.digest}`], { OCIPKG_CONFIG: config });
      const took = Date.now() - started;
      assertEquals(r.code, 0, r.stderr);
      assert(took < 20_000, `${mirror}: took ${took} ms`);
    }
  } finally {
    hole.close();
    for (const c of held) c.close();
    await busy.stop();
    await registry.close();
  }
});

Deno.test("a mirror whose blob answer says it is other bytes (length, digest) is skipped for the registry", async () => {
  const dir = await tempDir();
  const registry = await serve({ root: join(dir, "r"), addr: "127.0.0.1:0", ...quiet });
  let mode = "";
  let blobs = 0;
  // Deno.serve itself: its answers carry their Content-Length
  const lying = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/v2/") return Response.json({});
    if (!url.pathname.includes("/blobs/")) return new Response(null, { status: 404 });
    blobs++;
    const other = `sha256:${"0".repeat(64)}`;
    return mode === "length"
      ? new Response(new Uint8Array(1 << 20)) // a MiB of zeros: no blob of this image
      : new Response(new Uint8Array(3), { headers: { "docker-content-digest": other } });
  });
  try {
    const repo = `${registry.addr}/lying/pkg`;
    const p = await packed(`${repo}:1`, "lying");
    await pushImage(p.archive);
    const host = `127.0.0.1:${lying.addr.port}`;
    const config = await configWith({ registries: { [registry.addr]: { mirrors: [host] } } });
    for (const m of ["length", "digest"]) {
      mode = m;
      blobs = 0;
      const r = await cli(["get", `${repo}@${p.digest}`], { OCIPKG_CONFIG: config });
      assertEquals(r.code, 0, `${m}: ${r.stderr}`);
      assert(blobs <= 2, `${m}: ${blobs}`); // config and layer: each asked at most once
    }
  } finally {
    await lying.shutdown();
    await registry.close();
  }
});
