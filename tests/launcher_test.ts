// `deno task install` puts an `ocipkg` command on PATH on a machine that has
// only the Deno binary npx brought: the launcher runs this checkout's cli.ts.
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { ocipkgBinDir, run } from "./_helpers.ts";
import denoJson from "../deno.json" with { type: "json" };

Deno.test({
  name: "launcher: the installed ocipkg runs from PATH without deno on PATH",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const bin = await ocipkgBinDir();
    const script = await Deno.readTextFile(`${bin}/ocipkg`);
    assert(script.startsWith("#!/bin/sh\n"));
    assertStringIncludes(script, "DENO_NO_UPDATE_CHECK=1");
    assertEquals((await Deno.stat(`${bin}/ocipkg`)).mode! & 0o111, 0o111);
    // only the launcher's directory and the system's: no deno on PATH
    const env = { PATH: `${bin}:/usr/bin:/bin`, HOME: bin, NO_COLOR: "1" };
    const v = await run("sh", ["-c", "command -v deno || true; ocipkg --version"], undefined, env);
    assertEquals(v.code, 0, v.stderr);
    assertEquals(v.stdout.trim().split("\n").at(-1), `ocipkg ${denoJson.version}`);
    const help = await run("sh", ["-c", "ocipkg help tag"], undefined, env);
    assertEquals(help.code, 0, help.stderr);
    assertStringIncludes(help.stdout, "ocipkg tag");
  },
});
