// Shared test helpers: temp dirs, bytes and digests, running the CLI as a subprocess, fixtures.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { GetOptions, Target } from "../mod.ts";
import { encodeJson, OCI_INDEX, OCI_MANIFEST } from "../lib/oci/mod.ts";
import { pushBytes } from "../lib/transport/mod.ts";
import { openLibrary } from "../lib/native/mod.ts";
import { bytesStream } from "./_internal.ts";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const CLI = join(ROOT, "cli.ts");
export const DENO_DIR = Deno.env.get("DENO_DIR") ||
  join(Deno.env.get("XDG_CACHE_HOME") || join(Deno.env.get("HOME") ?? "/root", ".cache"), "deno");

/** A fresh temp dir, removed (with everything in it) when the test module ends. */
export async function tempDir(prefix = "ocipkg-test-"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  made.add(dir);
  return dir;
}

/**
 * Run `fn` in a fresh temp dir (from {@link tempDir}), removed as soon as `fn`
 * settles: for tests and properties that make many.
 */
export async function withTempDir<T>(
  fn: (dir: string) => Promise<T>,
  prefix?: string,
): Promise<T> {
  const dir = await tempDir(prefix);
  try {
    return await fn(dir);
  } finally {
    made.delete(dir);
    await Deno.remove(dir, { recursive: true });
  }
}

// every directory tempDir() made is removed when this test module's process ends
const made = new Set<string>();
globalThis.addEventListener("unload", () => {
  for (const dir of made) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* already gone */ }
  }
});

/** The bytes of `parts` (a nested array is taken in order) one after another, in a new array. */
export function concat(
  parts: readonly (Uint8Array | readonly Uint8Array[])[],
): Uint8Array<ArrayBuffer> {
  const flat = parts.flat();
  const out = new Uint8Array(flat.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of flat) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/** The SHA-256 digest of `bytes`, as `sha256:<hex>`. */
export async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the ocipkg CLI in a subprocess with its store at `dataHome` (stdin: text or bytes). */
export async function runCli(
  args: string[],
  opts: {
    dataHome?: string;
    env?: Record<string, string>;
    stdin?: string | Uint8Array;
    cwd?: string;
  } = {},
): Promise<RunResult & { stdoutBytes: Uint8Array }> {
  // children share this process's module cache, even when a test gives them another HOME
  const env: Record<string, string> = {
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
    DENO_DIR: DENO_DIR,
    ...(opts.env ?? {}),
  };
  if (opts.dataHome) env.OCIPKG_DATA_DIR = opts.dataHome;
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CLI, ...args],
    env,
    cwd: opts.cwd,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    const input = typeof opts.stdin === "string"
      ? new TextEncoder().encode(opts.stdin)
      : opts.stdin;
    // the child may stop reading early (an error): its output still tells what happened
    await w.write(input).catch(() => {});
    await w.close().catch(() => {});
  }
  const r = await child.output();
  const dec = new TextDecoder();
  return {
    code: r.code,
    stdout: dec.decode(r.stdout),
    stderr: dec.decode(r.stderr),
    stdoutBytes: r.stdout,
  };
}

/** Run any program; returns code and output. */
export async function run(
  cmd: string,
  args: string[],
  cwd?: string,
  env?: Record<string, string>,
): Promise<RunResult> {
  const r = await new Deno.Command(cmd, { args, cwd, env, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** Whether a program is on PATH. */
export async function have(cmd: string): Promise<boolean> {
  try {
    const r = await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .output();
    return r.success;
  } catch {
    return false;
  }
}

/**
 * Real cosign-made keys and signatures (public data of other projects, kept outside this
 * repository in `../shared/fixtures/cosign`; its README names their sources).
 */
export const COSIGN_FIXTURES = join(ROOT, "..", "shared", "fixtures", "cosign");

/** Whether the cosign fixtures are there; tests that need them are skipped, saying so, if not. */
export const HAVE_COSIGN_FIXTURES = (() => {
  try {
    return Deno.statSync(COSIGN_FIXTURES).isDirectory;
  } catch {
    return false;
  }
})();
if (!HAVE_COSIGN_FIXTURES) {
  console.log(
    `note: ${COSIGN_FIXTURES} is absent: the tests of real cosign keys and signatures are skipped`,
  );
}

/** The text of a file of the cosign fixtures. */
export function cosignFixtureText(path: string): string {
  return Deno.readTextFileSync(join(COSIGN_FIXTURES, path));
}

/** The bytes of a file of the cosign fixtures. */
export function cosignFixture(path: string): Uint8Array<ArrayBuffer> {
  return Deno.readFileSync(join(COSIGN_FIXTURES, path));
}

/** Make a sample package directory: lib/libfoo.a, include/foo.h, README, a symlink. */
export async function samplePackage(dir: string, libBytes = 4096): Promise<string> {
  await Deno.mkdir(join(dir, "lib"), { recursive: true });
  await Deno.mkdir(join(dir, "include"), { recursive: true });
  const lib = new Uint8Array(libBytes);
  crypto.getRandomValues(lib.subarray(0, Math.min(libBytes, 65536)));
  await Deno.writeFile(join(dir, "lib", "libfoo.a"), lib);
  await Deno.writeTextFile(join(dir, "include", "foo.h"), "int foo(void);\n");
  await Deno.writeTextFile(join(dir, "README"), "sample\n");
  await Deno.symlink("lib/libfoo.a", join(dir, "libfoo-link.a"));
  return dir;
}

/** Recursively list a directory (relative paths, sorted), skipping `.oci-dir`. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string, rel: string) => {
    for await (const e of Deno.readDir(abs)) {
      if (e.name === ".oci-dir") continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(e.isDirectory ? `${r}/` : r);
      if (e.isDirectory) await walk(join(abs, e.name), r);
    }
  };
  await walk(dir, "");
  return out.sort();
}

const enc = new TextEncoder();

/** Build a two-platform index with shared config into a target. */
export async function sampleGraph(t: Target) {
  const cfg = await pushBytes(t, "application/vnd.oci.empty.v1+json", enc.encode("{}"));
  const l1 = await pushBytes(t, "application/vnd.oci.image.layer.v1.tar", enc.encode("layer-1"));
  const l2 = await t.push({ mediaType: "application/x-opaque" }, bytesStream(enc.encode("opaque")));
  const m1 = await pushBytes(
    t,
    OCI_MANIFEST,
    encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: cfg, layers: [l1] }),
  );
  const m2 = await pushBytes(
    t,
    OCI_MANIFEST,
    encodeJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: cfg, layers: [l2] }),
  );
  const idx = await pushBytes(
    t,
    OCI_INDEX,
    encodeJson({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ ...m1, platform: { os: "linux", architecture: "amd64" } }, {
        ...m2,
        platform: { os: "linux", architecture: "arm64" },
      }],
    }),
  );
  return { cfg, l1, l2, m1, m2, idx };
}

/**
 * A directory holding an `ocipkg` command (a shell script running cli.ts
 * with this Deno), for build scripts that call `ocipkg` from PATH.
 */
export async function ocipkgBinDir(): Promise<string> {
  // the documented way: `deno task install --dir <dir>` (scripts/install.ts)
  const dir = await tempDir("ocipkg-bin-");
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", join(ROOT, "scripts", "install.ts"), "--dir", dir],
    env: { DENO_NO_UPDATE_CHECK: "1", DENO_DIR },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(new TextDecoder().decode(r.stderr));
  return dir;
}

/** PATH with `dir` first. */
export function pathWith(dir: string): string {
  return `${dir}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`;
}

/** Build examples/c-greet into a package directory (include/, lib/libgreet.{a,so}). */
export async function buildGreet(): Promise<string> {
  const out = await tempDir("greet-pkg-");
  const r = await run("sh", [join(ROOT, "examples", "c-greet", "build.sh"), out]);
  if (r.code !== 0) throw new Error(`build.sh failed: ${r.stderr}`);
  return out;
}

/** Copy a directory tree (for working on a copy of an example). */
export async function copyTree(from: string, to: string): Promise<string> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.name === "target") continue;
    const a = join(from, e.name);
    const b = join(to, e.name);
    if (e.isDirectory) await copyTree(a, b);
    else await Deno.copyFile(a, b);
  }
  return to;
}

/** Load a greet library (examples/c-greet's interface) with FFI; returns "<message> <answer>". */
export async function callGreet(image: string, name: string, options: GetOptions): Promise<string> {
  const lib = await openLibrary(image, name, {
    greet_answer: { parameters: [], result: "i32" },
    greet_message: { parameters: [], result: "pointer" },
  }, options);
  try {
    const message = Deno.UnsafePointerView.getCString(lib.symbols.greet_message()!);
    return `${message} ${lib.symbols.greet_answer()}`;
  } finally {
    lib.close();
  }
}
