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
  Store,
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
  // what happened, once: no "run login" after the login that was just refused
  assertEquals(
    bad.stderr.trim(),
    `error: login to ${basic.host} failed: it refused the password for user '${USER}' (401); nothing was saved`,
  );
  assert(!bad.stderr.includes("wrong"), "password must not be printed");
  // -p and --password-stdin together are a usage error
  const both = await runCli(
    ["login", basic.host, "-u", USER, "-p", "x", "--password-stdin", "--ca-file", ca],
    { env, stdin: "y\n" },
  );
  assertEquals(both.code, 2);
  assertStringIncludes(both.stderr, "not both");
  await assertRejects(() => Deno.stat(env.OCIPKG_AUTH_FILE), Deno.errors.NotFound);
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
