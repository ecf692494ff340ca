// Per-registry connection settings (the config file's `registries`: plainHttp, caFile, mirrors),
// copy's two sides (--from-…/--to-…), and TLS that works or says how to make it work — against
// real docker-registry processes (plain, and TLS with htpasswd) and `ocipkg serve` over TLS with
// certificates made here by openssl.
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import {
  getImage,
  listTags,
  loadImage,
  NotFoundError,
  packDirectory,
  pushImage,
  registrySettings,
  serve,
  Store,
} from "./_internal.ts";
import { run, runCli, samplePackage, tempDir } from "./_helpers.ts";
import { PASS, startRegistry, USER } from "./_registry.ts";

const plain = await startRegistry();
const secure = await startRegistry({ auth: "htpasswd", tls: true });
globalThis.addEventListener("unload", () => {
  plain.kill();
  secure.kill();
});

const quiet = { log: () => {} };

function assertMatch(actual: string, re: RegExp): void {
  assert(re.test(actual), `expected ${JSON.stringify(actual)} to match ${re}`);
}
const work = await tempDir();
/** No saved credentials anywhere: each test says who it is. */
const home = {
  HOME: work,
  OCIPKG_AUTH_FILE: join(work, "auth.json"),
  DOCKER_CONFIG: join(work, ".docker"),
  REGISTRY_AUTH_FILE: join(work, "containers-auth.json"),
  XDG_CONFIG_HOME: join(work, ".config"),
  XDG_RUNTIME_DIR: join(work, "run"),
};
for (const [k, v] of Object.entries(home)) if (k !== "HOME") Deno.env.set(k, v);
const credential = { username: USER, password: PASS };
const pkg = await samplePackage(join(work, "pkg"));

/** Pack the sample package as `name` into a fresh archive. */
async function packed(name: string): Promise<{ archive: string; digest: string }> {
  const archive = join(await tempDir(), "pkg.tar");
  const r = await packDirectory(pkg, archive, { name });
  return { archive, digest: r.digest };
}

/** A config file holding `doc`, in a fresh dir (relative paths are read from there). */
async function configWith(doc: unknown, dir?: string): Promise<string> {
  dir ??= await tempDir();
  const file = join(dir, "config.json");
  await Deno.writeTextFile(file, JSON.stringify(doc));
  return file;
}

/** A failed CLI run: exit 1, one line `error: …` matching `re`, no stack. */
function oneLineError(r: { code: number; stderr: string }, re: RegExp): string {
  assertEquals(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assertEquals(lines.length, 1, r.stderr);
  assertMatch(lines[0]!, re);
  return lines[0]!;
}

/** Run the CLI with no saved credentials, a fresh store unless `data` names one. */
const cli = async (args: string[], env: Record<string, string> = {}, stdin?: string) =>
  runCli(args, { env: { ...home, ...env }, dataHome: await tempDir(), stdin });

Deno.test("config: registries keys are read canonical, paths from the file's dir, every value checked", async () => {
  const dir = await tempDir();
  const file = await configWith({
    registries: {
      "LocalHost:5000": { plainHttp: true },
      "Registry.Internal:443": { caFile: "certs/ca.pem" },
      "Docker.IO": {
        mirrors: ["Mirror.Internal:05000", { host: "cache.internal", resolve: true }],
      },
    },
  }, dir);
  // every loopback name of a port is one server
  assertEquals(registrySettings("127.0.0.1:5000", file)?.plainHttp, true);
  assertEquals(registrySettings("[::1]:5000", file)?.registry, "localhost:5000");
  assertEquals(registrySettings("localhost:5001", file), undefined);
  assertEquals(registrySettings("registry.internal", file)?.caFile, join(dir, "certs", "ca.pem"));
  assertEquals(registrySettings("index.docker.io", file)?.mirrors, [
    { host: "mirror.internal:5000", resolve: false },
    { host: "cache.internal", resolve: true },
  ]);
  const bad: [unknown, RegExp][] = [
    [{ registries: [] }, /: 'registries' must be an object such as .*, not an array$/],
    [{ registry: {} }, /: unknown key 'registry' \(did you mean 'registries'\?\)$/],
    [{ Registries: {} }, /: unknown key 'Registries' \(did you mean 'registries'\?\)$/],
    [{ registries: { "https://r.io": {} } }, /registries: key 'https:\/\/r\.io' has a scheme/],
    [{ registries: { "r.io/org": {} } }, /registries: key 'r\.io\/org' is not a registry host/],
    [{ registries: { "r .io": {} } }, /registries: key 'r \.io': invalid registry host/],
    [
      { registries: { "r.io": true } },
      /registries entry 'r\.io' must be an object .*, not a boolean$/,
    ],
    [
      { registries: { "r.io": { plainHTTP: true } } },
      /entry 'r\.io' has 'plainHTTP': an entry holds only/,
    ],
    [
      { registries: { "r.io": { plainHttp: "yes" } } },
      /entry 'r\.io': 'plainHttp' must be true or false, not a string$/,
    ],
    [
      { registries: { "r.io": { caFile: 1 } } },
      /entry 'r\.io': 'caFile' must name a PEM file, not a number$/,
    ],
    [
      { registries: { "r.io": { plainHttp: true, caFile: "c" } } },
      /has both 'plainHttp': true and a 'caFile'/,
    ],
    [{ registries: { "r.io": { mirrors: "m.io" } } }, /'mirrors' must be a list, not a string$/],
    [
      { registries: { "r.io": { mirrors: ["R.IO:443"] } } },
      /mirror 1 'r\.io' is the registry itself$/,
    ],
    [
      { registries: { "r.io": { mirrors: ["m.io", "M.io"] } } },
      /mirror 2 'm\.io' is listed twice$/,
    ],
    [
      { registries: { "r.io": { mirrors: ["http://m.io"] } } },
      /mirror 'http:\/\/m\.io' has a scheme/,
    ],
    [
      { registries: { "r.io": { mirrors: [{ host: "m.io", pull: true }] } } },
      /mirror 'm\.io' has 'pull'/,
    ],
    [
      { registries: { "r.io": { mirrors: [{ host: "m.io", resolve: 1 }] } } },
      /'resolve' must be true or false/,
    ],
    [
      { registries: { "localhost:5000": {}, "127.0.0.1:5000": {} } },
      /registries entries 'localhost:5000' and '127\.0\.0\.1:5000' name one registry; merge them$/,
    ],
  ];
  for (const [doc, re] of bad) {
    const f = await configWith(doc);
    const e = assertThrows(() => registrySettings("r.io", f));
    assertMatch(
      (e as Error).message,
      new RegExp(`^config file ${f.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`),
    );
    assertMatch((e as Error).message, re);
    assert(!(e as Error).message.includes("\n"), (e as Error).message);
  }
});

Deno.test("config: get and link (as a build.rs runs it: no flags) reach a TLS registry through its caFile entry", async () => {
  const name = `${secure.host}/cfg/get:1`;
  await pushImage((await packed(name)).archive, undefined, { caFile: secure.caFile, credential });
  const dir = await tempDir();
  await Deno.copyFile(secure.caFile!, join(dir, "registry-ca.pem"));
  const config = await configWith(
    { registries: { [secure.host]: { caFile: "registry-ca.pem" } } },
    dir,
  );
  const auth = await configWith({ auths: { [secure.host]: { auth: btoa(`${USER}:${PASS}`) } } });
  const env = { OCIPKG_CONFIG: config, OCIPKG_AUTH_FILE: auth };
  const got = await cli(["get", name], env);
  assertEquals(got.code, 0, got.stderr);
  const linked = await cli(["link", name, "--json"], env);
  assertEquals(linked.code, 0, linked.stderr);
  assertEquals(JSON.parse(linked.stdout).image, name);
  // without the entry, the one line says what the registry speaks and where the CA goes
  const none = await cli(["get", name], { OCIPKG_AUTH_FILE: auth });
  oneLineError(
    none,
    new RegExp(
      `^error: .*${secure.host} speaks https, not plain http \\(a loopback registry is reached ` +
        `over plain http unless a CA file is given\\); give the CA of its certificate with ` +
        `--ca-file, or "caFile" in a registries entry for '${secure.host}' in .*config\\.json$`,
    ),
  );
});

Deno.test("copy: each side its own scheme, CA and credentials (--from-…, --to-…), or its config entry", async () => {
  const src = `${plain.host}/cfg/copy:1`;
  const { archive, digest } = await packed(src);
  await pushImage(archive);
  const dst = `${secure.host}/cfg/copy:1`;
  // one CA for both sides: the plain-http source is named, with the flag for its side
  oneLineError(
    await cli(["copy", src, dst, "--ca-file", secure.caFile!]),
    new RegExp(
      `cannot reach ${plain.host}: ${plain.host} speaks plain http, not https; use ` +
        `--from-plain-http or "plainHttp": true in a registries entry for '${plain.host}' in ` +
        `.*config\\.json \\(https because of --ca-file\\)$`,
    ),
  );
  // the destination's own CA and credentials (the password from stdin)
  const to = await cli(
    [
      "copy",
      src,
      dst,
      "--to-ca-file",
      secure.caFile!,
      "--to-username",
      USER,
      "--to-password-stdin",
    ],
    {},
    PASS,
  );
  assertEquals(to.code, 0, to.stderr);
  assertEquals(to.stdout.trim(), digest);
  // and back, the source's own
  const back = await cli(
    [
      "copy",
      dst,
      `${plain.host}/cfg/back:1`,
      "--from-ca-file",
      secure.caFile!,
      "--from-username",
      USER,
      "--from-password-stdin",
    ],
    {},
    PASS,
  );
  assertEquals(back.code, 0, back.stderr);
  // the config file's entries: the plain registry's plainHttp wins over --ca-file for both
  const config = await configWith({ registries: { [plain.host]: { plainHttp: true } } });
  const auth = await configWith({ auths: { [secure.host]: { auth: btoa(`${USER}:${PASS}`) } } });
  const both = await cli(["copy", src, `${secure.host}/cfg/cfg:1`, "--ca-file", secure.caFile!], {
    OCIPKG_CONFIG: config,
    OCIPKG_AUTH_FILE: auth,
  });
  assertEquals(both.code, 0, both.stderr);
  // usage errors: a side's flags need a registry; one password on stdin
  const usage = await cli(["copy", src, join(work, "x.tar"), "--to-plain-http"]);
  assertEquals(usage.code, 2, usage.stderr);
  assertMatch(
    usage.stderr,
    /--to-plain-http applies to a registry; the destination is oci-archive/,
  );
  const twice = await cli(
    [
      "copy",
      dst,
      dst,
      "--from-username",
      "a",
      "--from-password-stdin",
      "--to-username",
      "b",
      "--to-password-stdin",
    ],
    {},
    "x",
  );
  assertEquals(twice.code, 2, twice.stderr);
  assertMatch(twice.stderr, /stdin holds one password/);
});

Deno.test("TLS: a CA certificate serving as its own is refused with the openssl command that works; that certificate works", async () => {
  const dir = await tempDir();
  // what `openssl req -x509` makes by default: basicConstraints CA:TRUE
  const made = await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
    "-keyout",
    join(dir, "ca-as-leaf.key"),
    "-out",
    join(dir, "ca-as-leaf.crt"),
  ]);
  assertEquals(made.code, 0, made.stderr);
  const root = join(dir, "root");
  let s = await serve({
    root,
    addr: "127.0.0.1:0",
    tlsCert: join(dir, "ca-as-leaf.crt"),
    tlsKey: join(dir, "ca-as-leaf.key"),
    ...quiet,
  });
  let line: string;
  try {
    line = oneLineError(
      await cli(["tags", `${s.addr}/tls/pkg`, "--ca-file", join(dir, "ca-as-leaf.crt")]),
      /its TLS certificate is a CA certificate \(basicConstraints CA:TRUE.* give the server a certificate with CA:FALSE and a subjectAltName, e\.g\. 'openssl req .*', and trust server\.crt with --ca-file$/,
    );
  } finally {
    await s.close();
  }
  // run the command the message gives, and serve its certificate
  const command = /e\.g\. '(openssl req [^']+)'/.exec(line)![1]!;
  const ran = await run("sh", ["-c", command], dir);
  assertEquals(ran.code, 0, ran.stderr);
  s = await serve({
    root,
    addr: "127.0.0.1:0",
    tlsCert: join(dir, "server.crt"),
    tlsKey: join(dir, "server.key"),
    ...quiet,
  });
  try {
    const image = `${s.addr}/tls/pkg:1`;
    const { archive, digest } = await packed(image);
    const push = await cli(["push", archive, image, "--ca-file", join(dir, "server.crt")]);
    assertEquals(push.code, 0, push.stderr);
    assertMatch(push.stdout, new RegExp(digest));
    // an https serve reached over plain http: named, and how to reach it
    oneLineError(
      await cli(["tags", `${s.addr}/tls/pkg`]),
      new RegExp(
        `cannot reach ${s.addr}: ${s.addr} speaks https, not plain http \\(a loopback registry .*--ca-file`,
      ),
    );
    oneLineError(
      await cli(["tags", `${s.addr}/tls/pkg`, "--plain-http"]),
      new RegExp(`${s.addr} speaks https, not plain http; drop --plain-http$`),
    );
    // a certificate of another CA: not trusted, and which CA file did not sign it
    oneLineError(
      await cli(["tags", `${s.addr}/tls/pkg`, "--ca-file", join(dir, "ca-as-leaf.crt")]),
      /TLS certificate not trusted \(\w+\): it is not signed by the CA in .*ca-as-leaf\.crt \(from --ca-file\)/,
    );
  } finally {
    await s.close();
  }
});

Deno.test("mirrors: tried first for what is named by digest, tags only from a mirror trusted to resolve, never pushed to", async () => {
  const dir = await tempDir();
  const registry = await serve({ root: join(dir, "registry"), addr: "127.0.0.1:0", ...quiet });
  const mirror = await serve({ root: join(dir, "mirror"), addr: "127.0.0.1:0", ...quiet });
  // a hostile mirror: every manifest is other bytes, every blob missing
  const hostile = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/v2/") return Response.json({});
    if (path.includes("/manifests/")) {
      return new Response(
        '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}',
        {
          headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
        },
      );
    }
    return new Response(null, { status: 404 });
  });
  const hostileHost = `127.0.0.1:${hostile.addr.port}`;
  try {
    const name = `${registry.addr}/m/pkg:1`;
    const { archive, digest } = await packed(name);
    await pushImage(archive);
    await pushImage(archive, `${mirror.addr}/m/pkg:1`);
    const store = () => new Store(join(dir, `store-${crypto.randomUUID()}`));
    const pullOnly = await configWith({
      registries: { [registry.addr]: { mirrors: [hostileHost, mirror.addr] } },
    });
    // the registry answers while the hostile mirror lies and the good one holds everything
    const other = `${registry.addr}/m/other:1`;
    await pushImage((await packed(other)).archive);
    const fallback = await getImage(other, { config: pullOnly, policy: false, store: store() });
    assertEquals(fallback.status, "installed"); // not on either mirror: from the registry
    // never pushed to a mirror
    await pushImage((await packed(`${registry.addr}/m/pushed:1`)).archive, undefined, {
      config: pullOnly,
    });
    await assertRejects(() => listTags(`${mirror.addr}/m/pushed`), NotFoundError);
    // the registry gone: by digest from the mirror, verified
    await registry.close();
    const byDigest = await getImage(`${registry.addr}/m/pkg@${digest}`, {
      config: pullOnly,
      policy: false,
      store: store(),
    });
    assertEquals(byDigest.digest, digest);
    // a tag is the registry's to resolve: the mirror may be stale
    await assertRejects(
      () => getImage(name, { config: pullOnly, policy: false, store: store(), maxAttempts: 1 }),
      Error,
      `cannot reach ${registry.addr}`,
    );
    // unless the mirror is trusted to resolve it
    const resolving = await configWith({
      registries: { [registry.addr]: { mirrors: [{ host: mirror.addr, resolve: true }] } },
    });
    assertEquals(
      (await getImage(name, { config: resolving, policy: false, store: store() })).digest,
      digest,
    );
    // every command reads the entry: get by digest from the CLI, with no flag
    const got = await cli(["get", `${registry.addr}/m/pkg@${digest}`], { OCIPKG_CONFIG: pullOnly });
    assertEquals(got.code, 0, got.stderr);
    // loading a layout never asks a mirror or a registry
    assertEquals((await loadImage(archive, { store: store(), policy: false })).digest, digest);
  } finally {
    await registry.close().catch(() => {});
    await mirror.close();
    await hostile.shutdown();
  }
});
