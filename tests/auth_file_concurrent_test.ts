// ocipkg's auth file is read, changed and replaced under a lock beside it: logins and logouts at
// once (two terminals, parallel CI jobs sharing a home) each start from what the one before
// wrote, so none loses another's entry or brings a removed one back.
import { join } from "node:path";
import { assertEquals } from "./_assert.ts";
import { runCli, tempDir } from "./_helpers.ts";
import { removeCredential, saveCredential } from "./_internal.ts";

const hosts = Array.from({ length: 10 }, (_, i) => `r${i}.example:5000`);

Deno.test("auth file: ten saves at once keep ten entries; ten removals at once leave none", async () => {
  const home = await tempDir();
  const file = join(home, ".ocipkg", "config.json");
  await Promise.all(
    hosts.map((h, i) => saveCredential(h, { username: `u${i}`, password: "p" }, file)),
  );
  const { auths } = JSON.parse(await Deno.readTextFile(file));
  assertEquals(Object.keys(auths).sort(), hosts);
  assertEquals((await Deno.stat(file)).mode! & 0o777, 0o600);
  const removed = await Promise.all(hosts.map((h) => removeCredential(h, file)));
  assertEquals(removed, hosts.map(() => true));
  assertEquals(JSON.parse(await Deno.readTextFile(file)).auths, {});
  // nothing but the file is left beside it (no lock file, no temp)
  assertEquals([...Deno.readDirSync(join(home, ".ocipkg"))].map((e) => e.name), ["config.json"]);
});

Deno.test("auth file: logouts in several processes at once remove every entry", async () => {
  const home = await tempDir();
  const file = join(home, ".ocipkg", "config.json");
  await Deno.mkdir(join(home, ".ocipkg"));
  const auths = Object.fromEntries(hosts.map((h) => [h, { auth: btoa("u:p") }]));
  await Deno.writeTextFile(file, JSON.stringify({ auths }), { mode: 0o600 });
  const env = { OCIPKG_AUTH_FILE: file, DOCKER_CONFIG: join(home, ".docker") };
  const runs = await Promise.all(hosts.slice(0, 6).map((h) => runCli(["logout", h], { env })));
  for (const r of runs) assertEquals(r.code, 0, r.stderr);
  assertEquals(Object.keys(JSON.parse(await Deno.readTextFile(file)).auths).sort(), hosts.slice(6));
});
