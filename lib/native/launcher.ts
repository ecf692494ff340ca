/**
 * Commands on PATH: an `ocipkg` launcher (so a `build.rs` or a Makefile can
 * call `ocipkg` on a machine that has only Node and the Deno that `npx`
 * brought) and the `cargo-ocipkg` shim. Both are small scripts calling this
 * ocipkg: the compiled executable, or a Deno binary running `cli.ts`.
 *
 * A launcher running `cli.ts` does not depend on the Deno binary it was
 * written with staying where it was: `npx`'s copy lives in npm's cache, which
 * `npm cache clean` or a new `npx` version removes. It runs the Deno it
 * records while that one is there; once it is gone, the `deno` on PATH (not a
 * 1.x); else `npx -y deno` (which fetches Deno again when npm's cache lacks
 * it); else it says so and exits 127.
 *
 * @module
 */
import { basename, join } from "../util/path.ts";
import { OcipkgError } from "../util/errors.ts";
import { atomicWriteFile } from "../util/files.ts";

function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'"'"'`)}'`;
}

/** A word as the shell needs it: bare when it is plain. */
function shWord(s: string): string {
  return /^[A-Za-z0-9._\/-]+$/.test(s) ? s : shQuote(s);
}

function cmdQuote(s: string): string {
  return `"${s.replaceAll('"', '""').replaceAll("%", "%%")}"`;
}

/** Text for `echo` in a `.cmd`: its metacharacters escaped. */
function cmdEcho(s: string): string {
  return s.replaceAll("%", "%%").replace(/[\^&|<>()]/g, "^$&");
}

/** Where an ocipkg launcher points. */
export interface LauncherTarget {
  /** The executable: the compiled ocipkg, or a Deno binary. */
  exe: string;
  /** With a Deno binary: the `cli.ts` it runs (a path or URL). */
  cli?: string;
}

/** The comment line of the `ocipkg` launcher: {@link uninstallLauncher} removes only such a file. */
const OCIPKG_HEADER = "ocipkg (written by ocipkg install)";

/**
 * What runs this ocipkg: the compiled executable itself, or this Deno with
 * the given `cli.ts`.
 *
 * @param cli the `cli.ts` to run under plain Deno (default: the main module)
 * @returns the target of a launcher
 */
export function currentOcipkg(cli: string = Deno.mainModule): LauncherTarget {
  const exe = Deno.execPath();
  const compiled = !/^deno(\.exe)?$/i.test(basename(exe));
  return compiled ? { exe } : { exe, cli: cli.startsWith("file:") ? new URL(cli).pathname : cli };
}

/**
 * The text of a launcher running ocipkg with `prefix` arguments first: a
 * POSIX `sh` script, or a `.cmd` for Windows. With a `cli.ts` it runs the
 * recorded Deno while that file exists, else `deno` from PATH (not 1.x), else
 * `npx -y deno`, else it fails with exit 127 saying why.
 *
 * @param target what it runs ({@link currentOcipkg})
 * @param prefix arguments put before the user's, e.g. `["cargo"]`
 * @param header a comment line saying what it is
 * @param os the system it is for (default: this one's)
 * @returns the script
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { launcherScript } from "./launcher.ts";
 * const target = { exe: "/cache/npx/deno", cli: "/src/ocipkg/cli.ts" };
 * const sh = launcherScript(target, [], "ocipkg", "linux");
 * assert.ok(sh.includes("deno=/cache/npx/deno\n")); // the recorded Deno first,
 * assert.ok(sh.includes("$(deno --version")); // then deno on PATH (not 1.x),
 * assert.ok(sh.includes("exec npx -y deno run -A --quiet /src/ocipkg/cli.ts \"$@\"")); // then npx
 * const cmd = launcherScript(target, [], "ocipkg", "windows");
 * assert.ok(cmd.startsWith("@echo off\r\n"));
 * assert.ok(cmd.includes('call npx -y deno run -A --quiet "/src/ocipkg/cli.ts" %*'));
 * ```
 */
export function launcherScript(
  target: LauncherTarget,
  prefix: string[],
  header: string,
  os: typeof Deno.build.os = Deno.build.os,
): string {
  if (os === "windows") return cmdScript(target, prefix, header);
  const args = prefix.map((a) => ` ${shWord(a)}`).join("");
  const lines = [
    "#!/bin/sh",
    `# ${header}`,
    ...(prefix[0] === "cargo" ? ['[ "$1" = ocipkg ] && shift'] : []),
    "DENO_NO_UPDATE_CHECK=1; export DENO_NO_UPDATE_CHECK",
  ];
  if (!target.cli) {
    lines.push(`exec ${shQuote(target.exe)}${args} "$@"`, "");
    return lines.join("\n");
  }
  const run = `run -A --quiet ${shWord(target.cli)}${args} "$@"`;
  lines.push(
    "# the Deno it was installed with; once that is gone (npm cache clean, a new npx):",
    "# deno on PATH, else npx -y deno",
    `deno=${shWord(target.exe)}`,
    'if [ ! -x "$deno" ]; then',
    "  case $(deno --version 2>/dev/null) in",
    "    'deno 1.'* | '') deno= ;;",
    "    *) deno=deno ;;",
    "  esac",
    '  if [ -z "$deno" ]; then',
    `    command -v npx >/dev/null 2>&1 && exec npx -y deno ${run}`,
    `    echo ${
      shQuote(
        `ocipkg: no Deno to run ${target.cli}: ${target.exe} is gone and neither deno (2 or later) nor npx is on PATH; install Node/npm or Deno`,
      )
    } >&2`,
    "    exit 127",
    "  fi",
    "fi",
    `exec "$deno" ${run}`,
    "",
  );
  return lines.join("\n");
}

function cmdScript(target: LauncherTarget, prefix: string[], header: string): string {
  const args = prefix.map((a) => ` ${a}`).join("");
  const lines = ["@echo off", "setlocal", `rem ${header}`, "set DENO_NO_UPDATE_CHECK=1"];
  if (!target.cli) {
    lines.push(`${cmdQuote(target.exe)}${args} %*`, "exit /b %errorlevel%", "");
    return lines.join("\r\n");
  }
  const run = `run -A --quiet ${cmdQuote(target.cli)}${args} %*`;
  lines.push(
    "rem the Deno it was installed with; once that is gone: deno on PATH, else npx -y deno",
    `set OCIPKG_DENO=${cmdQuote(target.exe)}`,
    "if exist %OCIPKG_DENO% goto run",
    "set OCIPKG_DENO=",
    "for /f \"tokens=2\" %%v in ('deno --version 2^>nul') do if not defined OCIPKG_DENO set OCIPKG_DENO=%%v",
    'if defined OCIPKG_DENO if not "%OCIPKG_DENO:~0,2%"=="1." (set OCIPKG_DENO=deno& goto run)',
    "where npx >nul 2>nul",
    "if errorlevel 1 goto none",
    `call npx -y deno ${run}`,
    "exit /b %errorlevel%",
    ":none",
    `echo ${
      cmdEcho(
        `ocipkg: no Deno to run ${target.cli}: ${target.exe} is gone and neither deno (2 or later) nor npx is on PATH; install Node/npm or Deno`,
      )
    } 1>&2`,
    "exit /b 127",
    ":run",
    `%OCIPKG_DENO% ${run}`,
    "exit /b %errorlevel%",
    "",
  );
  return lines.join("\r\n");
}

/**
 * Write a launcher script at `path` ({@link launcherScript}; on Windows a
 * `.cmd`), atomically, mode 0755.
 *
 * @param path where to write it
 * @param target what it runs ({@link currentOcipkg})
 * @param prefix arguments put before the user's, e.g. `["cargo"]`
 * @param header a comment line saying what it is
 * @returns the path written (with `.cmd` on Windows)
 */
export async function writeLauncher(
  path: string,
  target: LauncherTarget,
  prefix: string[],
  header: string,
): Promise<string> {
  const windows = Deno.build.os === "windows";
  const file = windows && !path.endsWith(".cmd") ? `${path}.cmd` : path;
  const script = launcherScript(target, prefix, header);
  await atomicWriteFile(file, new TextEncoder().encode(script), 0o755);
  return file;
}

/** The directory `ocipkg` goes to: `dir`, else `$OCIPKG_BIN_DIR`, else `~/.local/bin`. */
function binDir(dir?: string): string {
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  const bin = dir ?? Deno.env.get("OCIPKG_BIN_DIR") ??
    (home ? join(home, ".local", "bin") : undefined);
  if (!bin) throw new OcipkgError("no HOME: say where to put ocipkg with --dir");
  return bin;
}

/** The launcher's file in `bin`. */
function launcherPath(bin: string): string {
  return join(bin, Deno.build.os === "windows" ? "ocipkg.cmd" : "ocipkg");
}

/**
 * Install an `ocipkg` command: a launcher in `dir` (default `$OCIPKG_BIN_DIR`,
 * else `~/.local/bin`) running this ocipkg. It writes that one file; the Deno
 * binary is not copied (see the module's doc for what runs when it is gone).
 *
 * @param dir the directory to put it in
 * @param target what it runs (default: this process's ocipkg)
 * @returns the path written, and whether `dir` is on PATH
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { installLauncher } from "@ocipkg/cli/native";
 * const bin = await Deno.makeTempDir();
 * const r = await installLauncher(bin, { exe: Deno.execPath(), cli: "/opt/ocipkg/cli.ts" });
 * if (Deno.build.os !== "windows") {
 *   assert.equal(r.path, `${bin}/ocipkg`);
 *   const script = await Deno.readTextFile(r.path);
 *   assert.ok(script.includes("run -A --quiet /opt/ocipkg/cli.ts \"$@\""));
 *   assert.equal(r.onPath, false);
 * }
 * await Deno.remove(bin, { recursive: true });
 * ```
 */
export async function installLauncher(
  dir?: string,
  target: LauncherTarget = currentOcipkg(),
): Promise<{ path: string; onPath: boolean }> {
  const bin = binDir(dir);
  await Deno.mkdir(bin, { recursive: true });
  const path = await writeLauncher(join(bin, "ocipkg"), target, [], OCIPKG_HEADER);
  const sep = Deno.build.os === "windows" ? ";" : ":";
  const onPath = (Deno.env.get("PATH") ?? "").split(sep).some((p) => p === bin);
  return { path, onPath };
}

/**
 * Remove what {@link installLauncher} wrote: the `ocipkg` launcher in `dir`
 * (same default), and only when it is one (a file of that name that is not
 * is left alone: an error).
 *
 * @param dir the directory it was put in
 * @returns the path, and whether there was a launcher to remove
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { installLauncher, uninstallLauncher } from "@ocipkg/cli/native";
 * const bin = await Deno.makeTempDir();
 * const { path } = await installLauncher(bin, { exe: Deno.execPath(), cli: "/opt/ocipkg/cli.ts" });
 * assert.deepEqual(await uninstallLauncher(bin), { path, removed: true });
 * assert.deepEqual(await uninstallLauncher(bin), { path, removed: false }); // nothing there
 * assert.deepEqual([...Deno.readDirSync(bin)], []);
 * await Deno.remove(bin);
 * ```
 */
export async function uninstallLauncher(
  dir?: string,
): Promise<{ path: string; removed: boolean }> {
  const path = launcherPath(binDir(dir));
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { path, removed: false };
    throw e;
  }
  // the comment line (launchers written before the header named install say "(written by ocipkg)")
  if (
    !/^(#|rem) ocipkg \(written by ocipkg( install)?\)\r?$/m.test(text.split("\n", 3).join("\n"))
  ) {
    throw new OcipkgError(`${path} was not written by 'ocipkg install': left alone`);
  }
  await Deno.remove(path);
  return { path, removed: true };
}
