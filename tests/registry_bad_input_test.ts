// Registry bad input through the CLI: one-line errors naming image and host,
// non-zero exit, store unchanged.
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { packDirectory, pushImage } from "../mod.ts";
import { listTree, runCli, samplePackage, tempDir } from "./_helpers.ts";
import { freePort, PASS, startRegistry, USER } from "./_registry.ts";

const anon = await startRegistry();
const basic = await startRegistry({ auth: "htpasswd" });
globalThis.addEventListener("unload", () => {
  anon.kill();
  basic.kill();
});

let home: string | undefined;

async function expectError(args: string[], ...culprits: string[]) {
  const data = await tempDir();
  home ??= await tempDir();
  // a password goes in on stdin (-p would add a warning line)
  const p = args.indexOf("-p");
  const stdin = p < 0 ? undefined : `${args[p + 1]}\n`;
  if (p >= 0) args = [...args.slice(0, p), "--password-stdin", ...args.slice(p + 2)];
  const r = await runCli(args, {
    dataHome: data,
    stdin,
    env: { HOME: home, OCIPKG_AUTH_FILE: join(home, "auth.json"), DOCKER_CONFIG: home },
  });
  // an image or tag that is not there exits 3, other failures 1
  assertEquals(r.code, / not found on /.test(r.stderr) ? 3 : 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assertEquals(lines.length, 1, r.stderr);
  assert(lines[0]!.startsWith("error: "), r.stderr);
  for (const c of culprits) assertStringIncludes(lines[0]!, c);
  assertEquals(await listTree(data), []);
  home = undefined;
  return lines[0]!;
}

Deno.test("registry bad input: unknown host", async () => {
  await expectError(
    ["get", "no-such-host.invalid/org/x:1"],
    "image 'no-such-host.invalid/org/x:1'",
    "no-such-host.invalid",
    "unknown host",
  );
});

Deno.test("registry bad input: refused connection", async () => {
  const port = freePort();
  await expectError(
    ["get", `127.0.0.1:${port}/org/x:1`],
    `image '127.0.0.1:${port}/org/x:1'`,
    // a loopback registry that is not running: said at once, not after five attempts
    `connection refused (is a registry running on 127.0.0.1:${port}?)`,
  );
});

Deno.test("registry bad input: 404 image and 404 tag", async () => {
  await expectError(
    ["get", `${anon.host}/nothing/here:1`],
    `image '${anon.host}/nothing/here:1' not found on ${anon.host}`,
  );
  const src = await samplePackage(await tempDir());
  const archive = join(await tempDir(), "p.tar");
  await packDirectory(src, archive, { name: `${anon.host}/some/pkg:1` });
  await pushImage(archive);
  await expectError(
    ["get", `${anon.host}/some/pkg:2`],
    `image '${anon.host}/some/pkg:2' not found`,
  );
  await expectError(
    ["tags", `${anon.host}/nothing/here`],
    `repository '${anon.host}/nothing/here' not found`,
  );
});

Deno.test("registry bad input: 401 with a wrong password, and with no credentials", async () => {
  const line = await expectError(
    ["login", basic.host, "-u", USER, "-p", "wrong-password"],
    basic.host,
    "401",
  );
  assert(!line.includes("wrong-password"));
  const h = home = await tempDir();
  await Deno.writeTextFile(
    join(h, "auth.json"),
    JSON.stringify({ auths: { [basic.host]: { auth: btoa(`${USER}:bad`) } } }),
  );
  await expectError(["get", `${basic.host}/x/y:1`], `image '${basic.host}/x/y:1'`, "401");
  await expectError(["get", `${basic.host}/x/y:1`], `run 'ocipkg login ${basic.host}'`);
  assert(PASS.length > 0);
});

Deno.test("registry bad input: a registry that answers HTML", async () => {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    () =>
      new Response("<!doctype html><html><body>Welcome to nginx!</body></html>", {
        headers: { "content-type": "text/html" },
      }),
  );
  const port = server.addr.port;
  try {
    await expectError(
      ["get", `127.0.0.1:${port}/org/x:1`],
      `image '127.0.0.1:${port}/org/x:1'`,
      "not JSON",
      "text/html",
    );
  } finally {
    ac.abort();
    await server.finished;
  }
});
