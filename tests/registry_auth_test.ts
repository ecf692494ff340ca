// Authentication against real docker-registry processes: htpasswd Basic over
// TLS (self-signed CA) and token auth (our JWT issuer), plus credential files.
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import {
  AuthError,
  findCredential,
  getImage,
  login,
  logout,
  packDirectory,
  pushImage,
  registryOfKey,
  removeCredential,
  saveCredential,
  Store,
  UsageError,
} from "./_internal.ts";
import { listTree, runCli, samplePackage, tempDir } from "./_helpers.ts";
import { PASS, startRegistry, USER } from "./_registry.ts";

const basic = await startRegistry({ auth: "htpasswd", tls: true });
const token = await startRegistry({ auth: "token" });
globalThis.addEventListener("unload", () => {
  basic.kill();
  token.kill();
});

/** Point every auth file at a fresh temp home so tests never touch real ones. */
async function isolatedHome() {
  const home = await tempDir();
  const env = {
    HOME: home,
    OCIPKG_AUTH_FILE: join(home, ".ocipkg", "config.json"),
    DOCKER_CONFIG: join(home, ".docker"),
    REGISTRY_AUTH_FILE: join(home, "containers-auth.json"),
    XDG_RUNTIME_DIR: join(home, "run"),
    XDG_CONFIG_HOME: join(home, ".config"),
  };
  // not HOME: the env is process-wide, and Deno would move its own caches there
  for (const [k, v] of Object.entries(env)) if (k !== "HOME") Deno.env.set(k, v as string);
  return env;
}

async function packed(name: string) {
  const src = await samplePackage(await tempDir());
  const archive = join(await tempDir(), "pkg.tar");
  await packDirectory(src, archive, { name });
  return { src, archive };
}

Deno.test("auth basic+TLS: login checks the password, saves 0600, never prints it; push/get use it", async () => {
  const env = await isolatedHome();
  const ca = basic.caFile!;
  const bad = await runCli(["login", basic.host, "-u", USER, "-p", "wrong", "--ca-file", ca], {
    env,
  });
  assertEquals(bad.code, 1);
  // what happened, once: no "run login" after the login that was just refused; -p is warned of
  assertEquals(bad.stderr.trim().split("\n"), [
    "warning: a password given with -p/--password ends up in the shell's history and the process list; use --password-stdin",
    `error: login to ${basic.host} failed: it refused the password for user '${USER}' (401); nothing was saved`,
  ]);
  assert(!bad.stderr.includes("wrong"), "password must not be printed");
  // -p and --password-stdin together are a usage error
  const both = await runCli(
    ["login", basic.host, "-u", USER, "-p", "x", "--password-stdin", "--ca-file", ca],
    { env, stdin: "y\n" },
  );
  assertEquals(both.code, 2);
  assertStringIncludes(both.stderr, "not both");
  await assertRejects(() => Deno.stat(env.OCIPKG_AUTH_FILE), Deno.errors.NotFound);
  // an empty password (an unset variable piped in) is refused before the registry is asked
  for (const stdin of ["", "\n"]) {
    const empty = await runCli(
      ["login", basic.host, "-u", USER, "--password-stdin", "--ca-file", ca],
      { env, stdin },
    );
    assertEquals(empty.code, 2, empty.stderr);
    assertStringIncludes(empty.stderr, `error: empty password for ${basic.host}`);
  }
  const ok = await runCli(["login", basic.host, "-u", USER, "--password-stdin", "--ca-file", ca], {
    env,
    stdin: PASS + "\n",
  });
  assertEquals(ok.code, 0, ok.stderr);
  assert(!ok.stderr.includes(PASS) && !ok.stdout.includes(PASS));
  assertEquals((await Deno.stat(env.OCIPKG_AUTH_FILE)).mode! & 0o777, 0o600);
  assertEquals(await findCredential(basic.host), {
    username: USER,
    password: PASS,
    source: `ocipkg's auth file ${env.OCIPKG_AUTH_FILE}`,
  });
  const name = `${basic.host}/secure/pkg:1`;
  const p = await packed(name);
  await pushImage(p.archive, undefined, { caFile: ca });
  const r = await getImage(name, { caFile: ca, store: new Store(await tempDir()) });
  assertEquals(await listTree(r.dir), await listTree(p.src));
  await logout(basic.host);
  assertEquals(await findCredential(basic.host), undefined);
});

Deno.test("auth basic+TLS: an untrusted certificate and missing credentials are clear errors", async () => {
  await isolatedHome();
  const name = `${basic.host}/secure/none:1`;
  await assertRejects(
    async () => getImage(name, { plainHttp: false, store: new Store(await tempDir()) }),
    Error,
    "TLS certificate not trusted",
  );
  await assertRejects(
    async () => getImage(name, { caFile: basic.caFile, store: new Store(await tempDir()) }),
    AuthError,
    `run 'ocipkg login ${basic.host}'`,
  );
});

Deno.test("auth: credentials from docker config.json (auths) and podman auth.json", async () => {
  const env = await isolatedHome();
  await Deno.mkdir(env.DOCKER_CONFIG, { recursive: true });
  await Deno.writeTextFile(
    join(env.DOCKER_CONFIG, "config.json"),
    JSON.stringify({ auths: { [basic.host]: { auth: btoa(`${USER}:${PASS}`) } } }),
  );
  const p = await packed(`${basic.host}/docker/cfg:1`);
  await pushImage(p.archive, undefined, { caFile: basic.caFile });
  await Deno.remove(join(env.DOCKER_CONFIG, "config.json"));
  await Deno.writeTextFile(
    env.REGISTRY_AUTH_FILE,
    JSON.stringify({ auths: { [basic.host]: { auth: btoa(`${USER}:${PASS}`) } } }),
  );
  const r = await getImage(`${basic.host}/docker/cfg:1`, {
    caFile: basic.caFile,
    store: new Store(await tempDir()),
  });
  assertEquals(r.status, "installed");
});

Deno.test("auth: credHelpers call docker-credential-<name>", async () => {
  const env = await isolatedHome();
  const bin = join(env.HOME, "bin");
  await Deno.mkdir(bin);
  await Deno.writeTextFile(
    join(bin, "docker-credential-ocitest"),
    `#!/bin/sh\nread host\necho '{"ServerURL":"'$host'","Username":"${USER}","Secret":"${PASS}"}'\n`,
  );
  await Deno.chmod(join(bin, "docker-credential-ocitest"), 0o755);
  await Deno.mkdir(env.DOCKER_CONFIG, { recursive: true });
  await Deno.writeTextFile(
    join(env.DOCKER_CONFIG, "config.json"),
    JSON.stringify({ credHelpers: { [basic.host]: "ocitest" } }),
  );
  const path = Deno.env.get("PATH");
  Deno.env.set("PATH", `${bin}:${path}`);
  try {
    assertEquals(await findCredential(basic.host), {
      username: USER,
      password: PASS,
      source: `credential helper docker-credential-ocitest (${env.DOCKER_CONFIG}/config.json)`,
    });
  } finally {
    Deno.env.set("PATH", path!);
  }
});

Deno.test("auth token: anonymous is refused; login, push (pull,push scope) and get work", async () => {
  const env = await isolatedHome();
  const name = `${token.host}/tok/pkg:1`;
  const p = await packed(name);
  await assertRejects(() => pushImage(p.archive), AuthError, token.host);
  await login(token.host, { username: USER, password: PASS });
  await pushImage(p.archive);
  const r = await getImage(name, { store: new Store(await tempDir()) });
  assertEquals(await listTree(r.dir), await listTree(p.src));
  const scopes = token.tokens!.requests.flatMap((q) => q.scopes);
  assert(scopes.includes("repository:tok/pkg:pull,push"), JSON.stringify(scopes));
  assert(scopes.includes("repository:tok/pkg:pull"), JSON.stringify(scopes));
  const bad = await runCli(["login", token.host, "-u", USER, "-p", "nope"], { env });
  assertEquals(bad.code, 1);
  assertStringIncludes(bad.stderr, `refused the password for user '${USER}'`);
  // stale credentials in docker's config.json: the error says where they came from
  await Deno.remove(env.OCIPKG_AUTH_FILE);
  await Deno.mkdir(env.DOCKER_CONFIG, { recursive: true });
  const dockerConfig = join(env.DOCKER_CONFIG, "config.json");
  await Deno.writeTextFile(
    dockerConfig,
    JSON.stringify({ auths: { [token.host]: { auth: btoa(`${USER}:stale`) } } }),
  );
  const stale = await runCli(["push", p.archive, name], { env });
  assertEquals(stale.code, 1);
  const line = stale.stderr.trim();
  assertEquals(line.split("\n").length, 1, line);
  assertStringIncludes(line, `they came from docker config ${dockerConfig}`);
  // the image as the user wrote it (its tag), not only the digest it resolved to
  assertStringIncludes(line, `image '${name}'`);
  assertStringIncludes(line, `'ocipkg login ${token.host}'`);
});

Deno.test("auth: a credential is found whatever spelling the auth file and the caller use", async () => {
  const env = await isolatedHome();
  const entry = (user: string) => ({ auth: btoa(`${user}:pw`) });
  await Deno.mkdir(env.DOCKER_CONFIG, { recursive: true });
  const dockerConfig = join(env.DOCKER_CONFIG, "config.json");
  await Deno.writeTextFile(
    dockerConfig,
    JSON.stringify({
      auths: {
        "not a host": entry("skipped"), // a key that does not parse is skipped
        "quay.io/org": entry("namespace"), // podman's key for one namespace: not the registry's
        "https://index.docker.io/v1/": entry("hub"),
        "HTTPS://GHCR.IO:443/v2/": entry("ghcr"),
        "http://LocalHost:05000/v2/": entry("local"),
        "0x7f.1:5000": entry("loopback"),
        "[0:0::1]:5000": entry("ipv6"),
        "docker.io:5000": entry("not-hub"),
      },
    }),
  );
  const cases: [string[], string | undefined][] = [
    [["docker.io", "Docker.IO:443", "index.docker.io", "registry-1.docker.io:0443"], "hub"],
    [["ghcr.io", "GHCR.io", "ghcr.io:443"], "ghcr"],
    [["localhost:5000", "LOCALHOST:05000"], "local"],
    [["127.0.0.1:5000", "2130706433:5000", "[::ffff:127.0.0.1]:5000", "0.0.0.0:5000"], "loopback"],
    [["[::1]:5000", "[0000::1]:5000"], "ipv6"],
    [["docker.io:5000", "DOCKER.io:5000"], "not-hub"],
    // what stays distinct: another port, another loopback name, another namespace's registry
    [["ghcr.io:5000", "localhost:5001", "127.0.0.2:5000", "localhost", "quay.io"], undefined],
    [["index.docker.io:5000", "registry-1.docker.io:5000"], undefined],
  ];
  for (const [spellings, user] of cases) {
    for (const spelling of spellings) {
      const found = await findCredential(spelling);
      assertEquals(
        found,
        user === undefined
          ? undefined
          : { username: user, password: "pw", source: `docker config ${dockerConfig}` },
        spelling,
      );
    }
  }
  assertEquals(registryOfKey("not a host"), undefined);
  // a caller's spelling that is no registry host is an error naming it
  await assertRejects(() => findCredential("a b"), UsageError, "invalid registry host 'a b'");
});

Deno.test("auth: credential helpers are asked with the key their file spells", async () => {
  const env = await isolatedHome();
  const bin = join(env.HOME, "bin");
  const asked = join(env.HOME, "asked.txt");
  await Deno.mkdir(bin);
  await Deno.writeTextFile(
    join(bin, "docker-credential-ocispell"),
    `#!/bin/sh\nread host\nprintf '%s\\n' "$host" >> '${asked}'\n` +
      `echo '{"ServerURL":"'$host'","Username":"u","Secret":"s"}'\n`,
  );
  await Deno.chmod(join(bin, "docker-credential-ocispell"), 0o755);
  await Deno.mkdir(env.DOCKER_CONFIG, { recursive: true });
  const dockerConfig = join(env.DOCKER_CONFIG, "config.json");
  const path = Deno.env.get("PATH");
  Deno.env.set("PATH", `${bin}:${path}`);
  try {
    // credHelpers, keyed in another spelling than the one asked for
    await Deno.writeTextFile(
      dockerConfig,
      JSON.stringify({ credHelpers: { "HTTPS://Registry.Example:0443/v2/": "ocispell" } }),
    );
    const viaHelper = {
      username: "u",
      password: "s",
      source: `credential helper docker-credential-ocispell (${dockerConfig})`,
    };
    assertEquals(await findCredential("registry.example"), viaHelper);
    // credsStore: asked about the `auths` key docker wrote for Docker Hub
    await Deno.writeTextFile(
      dockerConfig,
      JSON.stringify({ credsStore: "ocispell", auths: { "https://index.docker.io/v1/": {} } }),
    );
    assertEquals(await findCredential("Docker.io"), viaHelper);
    assertEquals(await findCredential("registry.example"), undefined);
    assertEquals((await Deno.readTextFile(asked)).split("\n"), [
      "HTTPS://Registry.Example:0443/v2/",
      "https://index.docker.io/v1/",
      "",
    ]);
  } finally {
    Deno.env.set("PATH", path!);
  }
});

Deno.test("auth: a credential is saved under the canonical host (Docker Hub under docker's key), replacing other spellings; removal takes every spelling", async () => {
  const env = await isolatedHome();
  await Deno.mkdir(join(env.HOME, ".ocipkg"));
  await Deno.writeTextFile(
    env.OCIPKG_AUTH_FILE,
    JSON.stringify({
      auths: {
        "docker.io": { auth: btoa("old:hub") },
        "LocalHost:5000": { auth: btoa("old:local") },
        "localhost:5001": { auth: btoa("other:port") },
      },
    }),
  );
  await saveCredential("Index.Docker.IO:443", { username: "me", password: "hub" });
  await saveCredential("localhost:05000", { username: "me", password: "local" });
  const keys = async () =>
    Object.keys(JSON.parse(await Deno.readTextFile(env.OCIPKG_AUTH_FILE)).auths).sort();
  assertEquals(await keys(), ["https://index.docker.io/v1/", "localhost:5000", "localhost:5001"]);
  assertEquals((await Deno.stat(env.OCIPKG_AUTH_FILE)).mode! & 0o777, 0o600);
  assertEquals((await findCredential("registry-1.docker.io"))?.password, "hub");
  assertEquals((await findCredential("LOCALHOST:5000"))?.password, "local");
  assertEquals(await removeCredential("docker.io"), true);
  assertEquals(await removeCredential("localhost:5000"), true);
  assertEquals(await removeCredential("localhost:5000"), false);
  assertEquals(await keys(), ["localhost:5001"]);
  await assertRejects(() => saveCredential("a_b:5000", { username: "u" }), UsageError, "a_b:5000");
  assertEquals(await keys(), ["localhost:5001"]);
});

Deno.test("auth token: login under one spelling of the registry; push, get and logout under others", async () => {
  const env = await isolatedHome();
  const port = token.host.split(":")[1]!;
  await login(`127.1:0${port}`, { username: USER, password: PASS });
  // saved under the canonical host: what `ocipkg login 127.0.0.1:<port>` would have written
  const saved = JSON.parse(await Deno.readTextFile(env.OCIPKG_AUTH_FILE)).auths;
  assertEquals(Object.keys(saved), [token.host]);
  const p = await packed(`[::ffff:127.0.0.1]:${port}/spell/pkg:1`);
  await pushImage(p.archive);
  const r = await getImage(`2130706433:${port}/spell/pkg:1`, { store: new Store(await tempDir()) });
  assertEquals(r.name.toString(), `${token.host}/spell/pkg:1`);
  await logout(`0x7f.0.0.1:${port}`);
  assertEquals(await findCredential(token.host), undefined);
  await assertRejects(() => pushImage(p.archive), AuthError, `run 'ocipkg login ${token.host}'`);
});
