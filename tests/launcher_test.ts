// `deno task install` puts an `ocipkg` command on PATH on a machine that has
// only the Deno binary npx brought: the launcher runs this checkout's cli.ts.
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { join } from "node:path";
import { ocipkgBinDir, ROOT, run, tempDir } from "./_helpers.ts";
import { launcherScript } from "../lib/native/launcher.ts";
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

/** Run the launcher at `path` with exactly this PATH (nothing else inherited but HOME). */
async function launch(path: string, PATH: string, args: string[]) {
  const r = await new Deno.Command(path, {
    args,
    clearEnv: true,
    env: { PATH, HOME: Deno.env.get("HOME") ?? "/", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** A directory holding one executable `name` with this `sh` body. */
async function fakeCommand(dir: string, name: string, body: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return dir;
}

Deno.test({
  name:
    "launcher: once the Deno it was installed with is gone (npm cache clean), deno on PATH, else npx -y deno, else exit 127",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const tmp = await tempDir("ocipkg-launcher-");
    // the Deno npx brought, at a path of its own that this test then deletes (as `npm cache
    // clean` or a new npx version does): a hard link, or a copy (~100 MB) across file systems
    const copy = join(tmp, "npx-cache", "deno");
    await Deno.mkdir(join(tmp, "npx-cache"));
    await Deno.link(Deno.execPath(), copy).catch(() => Deno.copyFile(Deno.execPath(), copy));
    const bin = join(tmp, "bin");
    const inst = await run(
      copy,
      ["run", "-A", "--quiet", `${ROOT}/scripts/install.ts`, "--dir", bin],
      undefined,
      {
        DENO_NO_UPDATE_CHECK: "1",
        HOME: Deno.env.get("HOME") ?? "/",
      },
    );
    assertEquals(inst.code, 0, inst.stderr);
    const launcher = join(bin, "ocipkg");
    assertStringIncludes(await Deno.readTextFile(launcher), `deno=${copy}\n`);
    const version = `ocipkg ${denoJson.version}`;

    // the recorded Deno is there: it runs, with nothing else on PATH
    let r = await launch(launcher, bin, ["--version"]);
    assertEquals([r.code, r.stdout.trim()], [0, version], r.stderr);

    await Deno.remove(copy);
    // gone, and nothing else: one line saying so, exit 127
    r = await launch(launcher, bin, ["--version"]);
    assertEquals(r.code, 127);
    assertStringIncludes(
      r.stderr,
      `${copy} is gone and neither deno (2 or later) nor npx is on PATH`,
    );

    // gone, a deno on PATH: that one
    const onPath = join(tmp, "path-deno");
    await Deno.mkdir(onPath);
    await Deno.symlink(Deno.execPath(), join(onPath, "deno"));
    r = await launch(launcher, `${bin}:${onPath}`, ["--version"]);
    assertEquals([r.code, r.stdout.trim()], [0, version], r.stderr);

    // gone, only a Deno 1.x on PATH and npx: `npx -y deno run -A --quiet <cli.ts> <args>`
    const log = join(tmp, "npx.log");
    const old = await fakeCommand(
      join(tmp, "deno1"),
      "deno",
      'echo "deno 1.46.3 (stable, release, x86_64-unknown-linux-gnu)"; exit 0',
    );
    const npx = await fakeCommand(
      join(tmp, "npx"),
      "npx",
      `echo "$@" > '${log}'\n[ "$1" = -y ] && [ "$2" = deno ] || exit 99\nshift 2\nexec '${Deno.execPath()}' "$@"`,
    );
    r = await launch(launcher, `${bin}:${old}:${npx}`, ["help", "tag"]);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, "ocipkg tag");
    assertEquals(
      (await Deno.readTextFile(log)).trim(),
      `-y deno run -A --quiet ${join(ROOT, "cli.ts")} help tag`,
    );
  },
});

Deno.test({
  name: "launcher: install --uninstall removes the launcher install wrote, and nothing else",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const dir = await tempDir("ocipkg-uninstall-");
    const task = (...args: string[]) =>
      run(
        Deno.execPath(),
        ["run", "-A", "--quiet", `${ROOT}/scripts/install.ts`, "--dir", dir, ...args],
        undefined,
        {
          DENO_NO_UPDATE_CHECK: "1",
          HOME: Deno.env.get("HOME") ?? "/",
        },
      );
    await Deno.writeTextFile(join(dir, "other"), "not ours\n");
    assertEquals((await task()).code, 0);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["ocipkg", "other"]);
    let r = await task("--uninstall");
    assertEquals([r.code, r.stdout.trim()], [0, `removed ${join(dir, "ocipkg")}`], r.stderr);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["other"]);
    r = await task("--uninstall");
    assertEquals([r.code, r.stdout.trim()], [0, `nothing to remove: no ${join(dir, "ocipkg")}`]);
    // an `ocipkg` install did not write is left alone
    await Deno.writeTextFile(join(dir, "ocipkg"), "#!/bin/sh\necho mine\n");
    r = await task("--uninstall");
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "was not written by 'ocipkg install': left alone");
    assertEquals(await Deno.readTextFile(join(dir, "ocipkg")), "#!/bin/sh\necho mine\n");
  },
});

Deno.test("launcher: the Windows .cmd falls back the same way (recorded Deno, deno on PATH, npx)", () => {
  const cmd = launcherScript(
    { exe: "C:\\npx\\deno.exe", cli: "C:\\src\\ocipkg\\cli.ts" },
    [],
    "ocipkg",
    "windows",
  );
  const lines = cmd.split("\r\n");
  assertEquals(lines.slice(0, 3), ["@echo off", "setlocal", "rem ocipkg"]);
  assert(lines.includes('set OCIPKG_DENO="C:\\npx\\deno.exe"'));
  assert(lines.includes("if exist %OCIPKG_DENO% goto run"));
  assert(lines.some((l) => l.includes("'deno --version 2^>nul'")));
  assert(lines.includes('call npx -y deno run -A --quiet "C:\\src\\ocipkg\\cli.ts" %*'));
  assert(lines.includes("exit /b 127"));
  assert(lines.includes('%OCIPKG_DENO% run -A --quiet "C:\\src\\ocipkg\\cli.ts" %*'));
});
