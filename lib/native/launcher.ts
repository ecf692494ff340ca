/**
 * Commands on PATH: an `ocipkg` launcher (so a `build.rs` or a Makefile can
 * call `ocipkg` on a machine that has only Node and the Deno that `npx`
 * brought) and the `cargo-ocipkg` shim. Both are small scripts calling this
 * ocipkg: the compiled executable, or the Deno binary running `cli.ts`.
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
  return `"${s.replaceAll('"', '""')}"`;
}

/** Where an ocipkg launcher points. */
export interface LauncherTarget {
  /** The executable: the compiled ocipkg, or a Deno binary. */
  exe: string;
  /** With a Deno binary: the `cli.ts` it runs (a path or URL). */
  cli?: string;
}

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
 * Write a launcher script at `path` that runs ocipkg with `prefix` arguments
 * first (POSIX `sh`, or a `.cmd` on Windows), atomically, mode 0755.
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
  if (Deno.build.os === "windows") {
    const run = target.cli
      ? `${cmdQuote(target.exe)} run -A --quiet ${cmdQuote(target.cli)}`
      : cmdQuote(target.exe);
    const script = [
      "@echo off",
      `rem ${header}`,
      "set DENO_NO_UPDATE_CHECK=1",
      `${run} ${prefix.join(" ")} %*`,
      "",
    ].join("\r\n");
    const cmd = path.endsWith(".cmd") ? path : `${path}.cmd`;
    await atomicWriteFile(cmd, new TextEncoder().encode(script), 0o755);
    return cmd;
  }
  const run = target.cli
    ? `${shQuote(target.exe)} run -A --quiet ${shQuote(target.cli)}`
    : shQuote(target.exe);
  const script = [
    "#!/bin/sh",
    `# ${header}`,
    ...(prefix[0] === "cargo" ? ['[ "$1" = ocipkg ] && shift'] : []),
    "DENO_NO_UPDATE_CHECK=1; export DENO_NO_UPDATE_CHECK",
    `exec ${run}${prefix.map((a) => ` ${shWord(a)}`).join("")} "$@"`,
    "",
  ].join("\n");
  await atomicWriteFile(path, new TextEncoder().encode(script), 0o755);
  return path;
}

/**
 * Install an `ocipkg` command: a launcher in `dir` (default `$OCIPKG_BIN_DIR`,
 * else `~/.local/bin`) running this ocipkg.
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
 *   assert.ok(script.includes("run -A --quiet '/opt/ocipkg/cli.ts' \"$@\""));
 *   assert.equal(r.onPath, false);
 * }
 * await Deno.remove(bin, { recursive: true });
 * ```
 */
export async function installLauncher(
  dir?: string,
  target: LauncherTarget = currentOcipkg(),
): Promise<{ path: string; onPath: boolean }> {
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  const bin = dir ?? Deno.env.get("OCIPKG_BIN_DIR") ??
    (home ? join(home, ".local", "bin") : undefined);
  if (!bin) throw new OcipkgError("no HOME: say where to put ocipkg with --dir");
  await Deno.mkdir(bin, { recursive: true });
  const path = await writeLauncher(join(bin, "ocipkg"), target, [], "ocipkg (written by ocipkg)");
  const sep = Deno.build.os === "windows" ? ";" : ":";
  const onPath = (Deno.env.get("PATH") ?? "").split(sep).some((p) => p === bin);
  return { path, onPath };
}
