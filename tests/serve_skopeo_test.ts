// `ocipkg serve` with real clients: skopeo pushes to it and pulls from it (an
// ocipkg artifact and a multi-platform index, all platforms), and skopeo and
// umoci read a served root directly as OCI layouts, one per repository.
import { assert, assertEquals } from "./_assert.ts";
import { have, run, runCli, samplePackage, tempDir } from "./_helpers.ts";
import { serve } from "../mod.ts";

Deno.test({
  name: "serve: skopeo pushes and pulls; skopeo and umoci read the served root as layouts",
  ignore: !(await have("skopeo")),
  fn: async () => {
    const work = await tempDir();
    const root = `${work}/root`;
    const lines: string[] = [];
    const s = await serve({ root, addr: "127.0.0.1:0", log: (l) => lines.push(l) });
    try {
      await samplePackage(`${work}/pkg`);
      for (const p of ["linux/amd64", "linux/arm64"]) {
        const r = await runCli([
          "pack",
          `${work}/pkg`,
          `${work}/mp.tar`,
          "--platform",
          p,
          "-t",
          "x:1",
        ]);
        assertEquals(r.code, 0, r.stderr);
      }
      // skopeo → serve: the whole index
      const up = await run("skopeo", [
        "copy",
        "--all",
        "--dest-tls-verify=false",
        `oci-archive:${work}/mp.tar`,
        `docker://${s.addr}/skopeo/mp:1`,
      ]);
      assertEquals(up.code, 0, up.stderr);
      // ocipkg reads what skopeo wrote, each platform
      for (const p of ["linux/amd64", "linux/arm64"]) {
        const g = await runCli(["get", `${s.addr}/skopeo/mp:1`, "--platform", p, "-f"], {
          dataHome: `${work}/data`,
        });
        assertEquals(g.code, 0, g.stderr);
        assert((await Deno.readTextFile(`${g.stdout.trim()}/include/foo.h`)).includes("foo"));
      }
      // serve → skopeo: back out, byte for byte the same index
      const down = await run("skopeo", [
        "copy",
        "--all",
        "--src-tls-verify=false",
        `docker://${s.addr}/skopeo/mp:1`,
        `oci:${work}/back:1`,
      ]);
      assertEquals(down.code, 0, down.stderr);
      const remote = await run("skopeo", [
        "inspect",
        "--raw",
        "--tls-verify=false",
        `docker://${s.addr}/skopeo/mp:1`,
      ]);
      const local = await run("skopeo", ["inspect", "--raw", `oci:${work}/back:1`]);
      assertEquals(local.stdout, remote.stdout);
      // the served root is plain OCI layouts: skopeo and umoci read it with no server, once
      // index.json is written (2 s after a repository's last write, on a stop, or now by flush)
      await s.flush();
      const direct = await run("skopeo", ["inspect", "--raw", `oci:${root}/skopeo/mp:1`]);
      assertEquals(direct.code, 0, direct.stderr);
      assertEquals(direct.stdout, remote.stdout);
      if (await have("umoci")) {
        const ls = await run("umoci", ["ls", "--layout", `${root}/skopeo/mp`]);
        assertEquals(ls.code, 0, ls.stderr);
        assertEquals(ls.stdout.trim(), "1");
      }
      // one log line per request: method, path, status, bytes, ms
      assert(lines.length > 5);
      // method, path, status, bytes received, bytes sent, the whole request's duration
      for (const l of lines) assert(/^[A-Z]+ \/\S* \d{3} \d+ \d+ \d+ms$/.test(l), l);
    } finally {
      await s.close();
    }
  },
});
