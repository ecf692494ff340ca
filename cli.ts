/**
 * The `ocipkg` command line: argument parsing, output and exit codes — the
 * work is done by the library (`mod.ts`).
 *
 * Exit codes: 0 success, 1 runtime failure, 2 usage error.
 *
 * @module
 */
import { basename } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import {
  buildRunnable,
  cargoBuild,
  cargoLinkLines,
  cargoPublish,
  composeFiles,
  copyImage,
  type ExtractLimits,
  formatPlatform,
  getImage,
  type ImageInfo,
  ImageName,
  inspectAny,
  installCargoShim,
  linkPackage,
  listTagPages,
  loadImage,
  login,
  logout,
  OcipkgError,
  oneLine,
  packDirectory,
  parsePlatform,
  type Platform,
  printable,
  pullImage,
  pushImage,
  type RemoteOptions,
  resolveLocation,
  Store,
  UsageError,
  writeCmakeConfig,
  writePkgConfig,
} from "./mod.ts";
import { removeTempsSync } from "./lib/fs_util.ts";
import denoJson from "./deno.json" with { type: "json" };

type Values = Record<string, string | boolean | string[] | undefined>;

interface Command {
  usage: string;
  summary: string;
  options: ParseArgsConfig["options"];
  run(positionals: string[], values: Values): Promise<void>;
}

// everything printed may hold registry or archive data: escape control characters
const safe = (s: string) => s.split("\n").map(printable).join("\n");
const out = (s: string) => console.log(safe(s));
const stdout = new TextEncoder();
/** Write to stdout without a newline, escaped like {@link out}. */
async function write(s: string): Promise<void> {
  const bytes = stdout.encode(safe(s));
  for (let off = 0; off < bytes.length;) off += await Deno.stdout.write(bytes.subarray(off));
}
const info = (s: string) => console.error(safe(s));

function annotations(values: Values): Record<string, string> {
  const result: Record<string, string> = {};
  for (const a of (values.annotation as string[] | undefined) ?? []) {
    const eq = a.indexOf("=");
    if (eq <= 0) throw new UsageError(`invalid annotation '${a}': use key=value`);
    result[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return result;
}

function want(positionals: string[], n: number, usage: string): void {
  if (positionals.length !== n) throw new UsageError(`usage: ocipkg ${usage}`);
}

function format(values: Values): "archive" | "dir" | undefined {
  const f = values.format as string | undefined;
  if (f === undefined || f === "archive" || f === "dir") return f;
  throw new UsageError(`invalid --format '${f}': use archive or dir`);
}

function level(values: Values): number | undefined {
  const l = values.level as string | undefined;
  if (l === undefined) return undefined;
  if (!/^[0-9]$/.test(l)) throw new UsageError(`invalid --level '${l}': use 0-9`);
  return Number(l);
}

function printInspect(i: ImageInfo): void {
  out(`name:        ${i.name ?? "(none)"}`);
  out(`digest:      ${i.digest}`);
  out(`media type:  ${i.mediaType}`);
  for (const m of i.manifests) {
    if (i.manifests.length > 1 || m.digest !== i.digest) {
      out(`manifest ${m.digest} (${formatPlatform(m.platform)})`);
    }
    out(`  format:        ${m.format}`);
    out(`  artifact type: ${m.artifactType ?? "(none)"}`);
    for (const [k, v] of Object.entries(m.annotations)) out(`  annotation:    ${k}=${v}`);
    for (const l of m.layers) {
      out(`  layer ${l.digest} (${l.mediaType}, ${l.size} bytes)`);
      for (const f of l.files) out(`    ${f}`);
    }
  }
}

function platformOf(values: Values): Platform | undefined {
  const p = values.platform as string | undefined;
  return p === undefined ? undefined : parsePlatform(p);
}

const registryOptions: ParseArgsConfig["options"] = {
  "plain-http": { type: "boolean" },
  "ca-file": { type: "string" },
  concurrency: { type: "string" },
  "connect-timeout": { type: "string" },
  "idle-timeout": { type: "string" },
  timeout: { type: "string" },
  "min-rate": { type: "string" },
  "retry-budget": { type: "string" },
};

/** Registry timeouts: `--<flag>` or `OCIPKG_<FLAG>`; seconds, except --min-rate (bytes/s). */
const TIMEOUT_FLAGS = [
  ["connect-timeout", "connectTimeoutMs", 1000],
  ["idle-timeout", "idleTimeoutMs", 1000],
  ["timeout", "totalTimeoutMs", 1000],
  ["min-rate", "minBytesPerSecond", 1],
  ["retry-budget", "retryBudgetMs", 1000],
] as const;

let debugLog: ((line: string) => void) | undefined;

function remote(values: Values): RemoteOptions {
  const o: RemoteOptions = {};
  if (values["plain-http"]) o.plainHttp = true;
  if (values["ca-file"]) o.caFile = values["ca-file"] as string;
  const c = values.concurrency as string | undefined;
  if (c !== undefined) {
    if (!/^[1-9]\d{0,2}$/.test(c)) throw new UsageError(`invalid --concurrency '${c}': use 1-999`);
    o.concurrency = Number(c);
  }
  for (const [flag, key, scale] of TIMEOUT_FLAGS) {
    const env = `OCIPKG_${flag.toUpperCase().replaceAll("-", "_")}`;
    const v = (values[flag] as string | undefined) ?? Deno.env.get(env);
    if (v === undefined || v === "") continue;
    const n = scale === 1 ? parseSize(v) : Number(v);
    if (n === undefined || !(n > 0) || !Number.isFinite(n)) {
      throw new UsageError(
        `invalid --${flag} (or ${env}) '${v}': use a positive number${
          scale === 1 ? " of bytes per second" : " of seconds"
        }`,
      );
    }
    o[key] = n * scale;
  }
  if (debugLog) o.debug = debugLog;
  return o;
}

const limitOptions: ParseArgsConfig["options"] = {
  "max-bytes": { type: "string" },
  "max-entries": { type: "string" },
  "max-ratio": { type: "string" },
};

/** Extraction limits from --max-* flags, else OCIPKG_MAX_* environment variables. */
function limits(values: Values): ExtractLimits {
  const o: ExtractLimits = {};
  const keys = [["max-bytes", "maxBytes"], ["max-entries", "maxEntries"], [
    "max-ratio",
    "maxRatio",
  ]];
  for (const [flag, key] of keys as [string, keyof ExtractLimits][]) {
    const env = `OCIPKG_${flag.toUpperCase().replace("-", "_")}`;
    const v = (values[flag] as string | undefined) ?? Deno.env.get(env);
    if (v === undefined || v === "") continue;
    const n = parseSize(v);
    if (n === undefined || n < 1) {
      throw new UsageError(
        `invalid --${flag} (or ${env}) '${v}': use a positive number (K, M, G suffixes allowed)`,
      );
    }
    o[key] = n;
  }
  return o;
}

function parseSize(v: string): number | undefined {
  const m = /^(\d+)([KMGT]i?B?)?$/i.exec(v.trim());
  if (!m) return undefined;
  const unit = m[2] ? 1024 ** ("KMGT".indexOf(m[2][0]!.toUpperCase()) + 1) : 1;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) ? n : undefined;
}

async function readStdin(): Promise<string> {
  const text = await new Response(Deno.stdin.readable).text();
  return text.replace(/\r?\n$/, "");
}

const packOptions: ParseArgsConfig["options"] = {
  tag: { type: "string", short: "t" },
  annotation: { type: "string", multiple: true, short: "a" },
  format: { type: "string" },
  level: { type: "string" },
  platform: { type: "string" },
};

const cargoOptions: ParseArgsConfig["options"] = {
  release: { type: "boolean", short: "r" },
  package: { type: "string", short: "p" },
  target: { type: "string", multiple: true },
  tag: { type: "string", short: "t" },
  bin: { type: "boolean" },
  "manifest-path": { type: "string" },
  dir: { type: "string" },
  ...registryOptions,
};

const commands: Record<string, Command> = {
  pack: {
    usage:
      "pack <dir> <output> [-t name] [--platform os/arch|triple] [--annotation k=v]... [--format archive|dir] [--level 0-9]",
    summary: "Pack a directory into an ocipkg artifact (oci-archive or oci-dir)",
    options: packOptions,
    async run(p, v) {
      want(p, 2, this.usage);
      const r = await packDirectory(p[0]!, p[1]!, {
        name: v.tag as string | undefined,
        annotations: annotations(v),
        format: format(v),
        compressionLevel: level(v),
        platform: platformOf(v),
      });
      out(`${r.name} ${r.digest}`);
      info(`packed ${p[0]} into ${r.output}`);
      if (v.tag === undefined) info(`no -t given: the image is named '${r.name}'`);
    },
  },
  compose: {
    usage:
      "compose <file>... -o <output> [-t name] [--platform os/arch|triple] [--annotation k=v]... [--format archive|dir]",
    summary: "Compose files into an ocipkg artifact",
    options: { ...packOptions, output: { type: "string", short: "o" } },
    async run(p, v) {
      if (p.length === 0 || !v.output) throw new UsageError(`usage: ocipkg ${this.usage}`);
      const r = await composeFiles(p, v.output as string, {
        name: v.tag as string | undefined,
        annotations: annotations(v),
        format: format(v),
        compressionLevel: level(v),
        platform: platformOf(v),
      });
      out(`${r.name} ${r.digest}`);
      info(`composed ${p.length} file(s) into ${r.output}`);
      if (v.tag === undefined) info(`no -t given: the image is named '${r.name}'`);
    },
  },
  inspect: {
    usage: "inspect <image|archive|dir|oci:dir[:ref]|oci-archive:file[:ref]> [--json] [--no-files]",
    summary: "Show an image's name, digest, artifact type, annotations, platforms and files",
    options: { json: { type: "boolean" }, "no-files": { type: "boolean" }, ...registryOptions },
    async run(p, v) {
      want(p, 1, this.usage);
      const r = await inspectAny(p[0]!, { files: !v["no-files"], ...remote(v) });
      if (v.json) out(JSON.stringify(r, null, 2));
      else printInspect(r);
    },
  },
  load: {
    usage:
      "load <archive|dir> [-f] [-t name] [--platform os/arch] [--max-bytes n] [--max-entries n] [--max-ratio n]",
    summary: "Load an image from an oci-archive/oci-dir into the local store",
    options: {
      overwrite: { type: "boolean", short: "f" },
      tag: { type: "string", short: "t" },
      platform: { type: "string" },
      ...limitOptions,
    },
    async run(p, v) {
      want(p, 1, this.usage);
      const r = await loadImage(p[0]!, {
        ...limits(v),
        force: !!v.overwrite,
        name: v.tag as string | undefined,
        platform: platformOf(v),
      });
      info(
        r.status === "present"
          ? `${r.name} is already in the store (use -f to replace)`
          : `loaded ${r.name}`,
      );
      out(r.dir);
    },
  },
  push: {
    usage: "push <layout>... [image | -t image] [--plain-http] [--ca-file pem] [--concurrency n]",
    summary: "Push oci-archives/oci-dirs to a registry; several platform packages become one index",
    options: { tag: { type: "string", short: "t" }, ...registryOptions },
    async run(p, v) {
      if (p.length < 1) throw new UsageError(`usage: ocipkg ${this.usage}`);
      let image = v.tag as string | undefined;
      let layouts = p;
      // the last argument is the image when the one resolver says it names one
      if (!image && p.length >= 2 && (await resolveLocation(p.at(-1)!)).kind === "registry") {
        image = p.at(-1)!;
        layouts = p.slice(0, -1);
      }
      const r = await pushImage(layouts, image, remote(v));
      out(`${r.name} ${r.digest}`);
    },
  },
  get: {
    usage:
      "get <image> [-f] [--refresh] [--platform os/arch] [--plain-http] [--ca-file pem] [--max-bytes n] [--max-entries n] [--max-ratio n]",
    summary: "Pull an image into the local store, verify and extract it (cached)",
    options: {
      overwrite: { type: "boolean", short: "f" },
      refresh: { type: "boolean" },
      platform: { type: "string" },
      ...registryOptions,
      ...limitOptions,
    },
    async run(p, v) {
      want(p, 1, this.usage);
      const r = await getImage(p[0]!, {
        ...remote(v),
        ...limits(v),
        force: !!v.overwrite,
        refresh: !!v.refresh,
        platform: platformOf(v),
      });
      if (r.status === "installed") info(`got ${r.name}`);
      out(r.dir);
    },
  },
  pull: {
    usage: "pull <image> -o <out.tar|dir> [--format archive|dir] [--plain-http] [--ca-file pem]",
    summary: "Save an image from a registry as an oci-archive or oci-dir",
    options: {
      output: { type: "string", short: "o" },
      format: { type: "string" },
      ...registryOptions,
    },
    async run(p, v) {
      want(p, 1, this.usage);
      if (!v.output) throw new UsageError(`usage: ocipkg ${this.usage}`);
      const d = await pullImage(p[0]!, v.output as string, { ...remote(v), format: format(v) });
      out(d);
    },
  },
  copy: {
    usage: "copy <src> <dst>  (image, docker://image, oci:dir[:ref], oci-archive:file[:ref])",
    summary: "Copy an image between registries, oci-dirs and oci-archives",
    options: registryOptions,
    async run(p, v) {
      want(p, 2, this.usage);
      out(await copyImage(p[0]!, p[1]!, remote(v)));
    },
  },
  tags: {
    usage: "tags <repository> [--json]",
    summary: "List the tags of a repository",
    options: { json: { type: "boolean" }, ...registryOptions },
    async run(p, v) {
      want(p, 1, this.usage);
      // printed as pages arrive: memory stays at one page however long the list
      let first = true;
      if (v.json) await write("[");
      for await (const page of listTagPages(p[0]!, remote(v))) {
        if (v.json) {
          const items = page.map((t) => JSON.stringify(t)).join(",");
          if (items) await write(`${first ? "" : ","}${items}`);
          if (items) first = false;
        } else if (page.length) await write(`${page.join("\n")}\n`);
      }
      if (v.json) await write("]\n");
    },
  },
  login: {
    usage: "login <registry> [-u user] [-p pass | --password-stdin]",
    summary: "Check credentials against a registry and save them (mode 0600)",
    options: {
      username: { type: "string", short: "u" },
      password: { type: "string", short: "p" },
      "password-stdin": { type: "boolean" },
      ...registryOptions,
    },
    async run(p, v) {
      want(p, 1, this.usage);
      const username = v.username as string | undefined;
      let password = v.password as string | undefined;
      if (v["password-stdin"]) password = await readStdin();
      if (!username || password === undefined) {
        throw new UsageError("login needs -u <user> and -p <pass> or --password-stdin");
      }
      await login(p[0]!, { username, password }, remote(v));
      info(`logged in to ${p[0]}`);
    },
  },
  logout: {
    usage: "logout <registry>",
    summary: "Remove saved credentials for a registry",
    options: {},
    async run(p) {
      want(p, 1, this.usage);
      await logout(p[0]!);
      info(`logged out of ${p[0]}`);
    },
  },
  link: {
    usage:
      "link <image> [--cargo] [--pkg-config] [--cmake] [--static|--dynamic] [--lib name]... [--platform p] [--name pkg] [--json]",
    summary: "Get a package and link its libraries: Cargo lines, a .pc file, a CMake config",
    options: {
      cargo: { type: "boolean" },
      "pkg-config": { type: "boolean" },
      cmake: { type: "boolean" },
      static: { type: "boolean" },
      dynamic: { type: "boolean" },
      lib: { type: "string", multiple: true },
      platform: { type: "string" },
      name: { type: "string" },
      json: { type: "boolean" },
      refresh: { type: "boolean" },
      ...registryOptions,
      ...limitOptions,
    },
    async run(p, v) {
      want(p, 1, this.usage);
      if (v.static && v.dynamic) throw new UsageError("give --static or --dynamic, not both");
      // in a build script, cargo's TARGET is the platform to link for
      const cargoTarget = v.cargo ? Deno.env.get("TARGET") : undefined;
      const platform = platformOf(v) ?? (cargoTarget ? parsePlatform(cargoTarget) : undefined);
      const r = await linkPackage(p[0]!, {
        ...limits(v),
        ...remote(v),
        refresh: !!v.refresh,
        platform,
        prefer: v.static ? "static" : v.dynamic ? "dynamic" : undefined,
        libs: v.lib as string[] | undefined,
      });
      const name = v.name as string | undefined;
      for (const s of r.skipped ?? []) info(`warning: skipped '${s.path}': ${s.reason}`);
      if (v.cargo) { for (const line of cargoLinkLines(r)) out(line); }
      if (v["pkg-config"]) {
        const pc = await writePkgConfig(r, { name });
        out(`PKG_CONFIG_PATH=${pc.searchPath}`);
        info(
          `wrote ${pc.path}; use: PKG_CONFIG_PATH=${pc.searchPath} pkg-config --cflags --libs ${pc.name}`,
        );
      }
      if (v.cmake) {
        const c = await writeCmakeConfig(r, { name });
        out(`CMAKE_PREFIX_PATH=${c.prefix}`);
        info(
          `wrote ${c.path}; use: cmake -DCMAKE_PREFIX_PATH=${c.prefix} with find_package(${c.name}) and ${c.name}::${c.name}`,
        );
      }
      if (v.json) out(JSON.stringify({ ...r, image: r.image.toString() }, null, 2));
      else if (!v.cargo && !v["pkg-config"] && !v.cmake) {
        for (const l of r.libraries) out(l.path);
      }
    },
  },
  runnable: {
    usage:
      "runnable <executable> [-o out.tar] [-t name] [--platform p] [--arg a]... [--env K=V]... [--format archive|dir]",
    summary: "Make a container image running an executable (platform read from the binary)",
    options: {
      output: { type: "string", short: "o" },
      tag: { type: "string", short: "t" },
      platform: { type: "string" },
      arg: { type: "string", multiple: true },
      env: { type: "string", multiple: true },
      annotation: { type: "string", multiple: true, short: "a" },
      format: { type: "string" },
    },
    async run(p, v) {
      want(p, 1, this.usage);
      const r = await buildRunnable(
        p[0]!,
        (v.output as string | undefined) ?? `${basename(p[0]!)}.tar`,
        {
          name: v.tag as string | undefined,
          platform: platformOf(v),
          args: v.arg as string[] | undefined,
          env: v.env as string[] | undefined,
          annotations: annotations(v),
          format: format(v),
        },
      );
      if (r.binary.dynamic) {
        info(
          `warning: '${
            p[0]
          }' is dynamically linked; it will not run in an image without its loader and libraries`,
        );
      }
      out(`${r.name} ${r.digest}`);
      info(`wrote ${r.output} (${formatPlatform(r.platform)}, ${r.binary.format})`);
    },
  },
  cargo: {
    usage:
      "cargo build|publish [--release] [-p pkg] [--target triple]... [-t image] [--bin] [--manifest-path p] | cargo install-shim [--dir d]",
    summary:
      "Build a crate and pack its libraries (build), push them (publish); also as `cargo ocipkg`",
    options: cargoOptions,
    async run(p, v) {
      const [sub, ...rest] = p;
      if (rest.length) {
        throw new UsageError(`unexpected argument '${rest[0]}' (usage: ocipkg ${this.usage})`);
      }
      if (sub === "install-shim") {
        const path = await installCargoShim(v.dir as string | undefined);
        info(`installed ${path}: 'cargo ocipkg build' now runs 'ocipkg cargo build'`);
        out(path);
        return;
      }
      const options = {
        ...remote(v),
        release: !!v.release,
        package: v.package as string | undefined,
        targets: v.target as string[] | undefined,
        tag: v.tag as string | undefined,
        bins: !!v.bin,
        manifestPath: v["manifest-path"] as string | undefined,
      };
      if (sub === "build") {
        for (const r of await cargoBuild(options)) {
          out(`${r.name} ${r.digest} ${r.archive}`);
          info(
            `packed ${r.files.length} file(s) for ${formatPlatform(r.platform)} into ${r.archive}`,
          );
        }
      } else if (sub === "publish") {
        const r = await cargoPublish(options);
        out(`${r.name} ${r.digest}`);
      } else throw new UsageError(`usage: ocipkg ${this.usage}`);
    },
  },
  list: {
    usage: "list [--json]",
    summary: "List images in the local store",
    options: { json: { type: "boolean" } },
    async run(p, v) {
      want(p, 0, this.usage);
      const names = (await new Store().list()).map((n) => n.toString());
      if (v.json) out(JSON.stringify(names));
      else for (const n of names) out(n);
    },
  },
  "image-directory": {
    usage: "image-directory <image>",
    summary: "Print the store directory of an image",
    options: {},
    run(p) {
      want(p, 1, this.usage);
      out(new Store().imageDir(ImageName.parse(p[0]!)));
      return Promise.resolve();
    },
  },
  rm: {
    usage: "rm <image>...",
    summary: "Remove images from the local store",
    options: {},
    async run(p) {
      if (p.length === 0) throw new UsageError(`usage: ocipkg ${this.usage}`);
      const store = new Store();
      for (const n of p) {
        await store.remove(ImageName.parse(n));
        info(`removed ${ImageName.parse(n)}`);
      }
    },
  },
};

function help(): string {
  const lines = [
    `ocipkg ${denoJson.version} — distribute binaries through OCI registries`,
    "",
    "usage: ocipkg <command> [options]",
    "",
    "commands:",
    ...Object.entries(commands).map(([n, c]) => `  ${n.padEnd(16)} ${c.summary}`),
    "",
    "global options: --debug (stack traces), --help, --version",
    "run 'ocipkg <command> --help' for a command's options",
  ];
  return lines.join("\n");
}

/**
 * Run the CLI with arguments; returns the exit code.
 *
 * @param args command-line arguments (without the program name)
 * @returns 0, 1 (failure) or 2 (usage)
 */
export async function main(args: string[]): Promise<number> {
  const debug = args.includes("--debug");
  args = args.filter((a) => a !== "--debug");
  if (debug) debugLog = (line) => info(`debug: ${line}`);
  try {
    const [name, ...rest] = args;
    if (name === undefined || name === "--help" || name === "-h" || name === "help") {
      out(help());
      return name === undefined ? 2 : 0;
    }
    if (name === "--version" || name === "-V") {
      out(`ocipkg ${denoJson.version}`);
      return 0;
    }
    const cmd = commands[name];
    if (!cmd) throw new UsageError(`unknown command '${name}' (see 'ocipkg --help')`);
    if (rest.includes("--help") || rest.includes("-h")) {
      out(`usage: ocipkg ${cmd.usage}\n\n${cmd.summary}`);
      return 0;
    }
    let parsed;
    try {
      parsed = parseArgs({
        args: rest,
        options: cmd.options,
        allowPositionals: true,
        strict: true,
      });
    } catch (e) {
      throw new UsageError(`${oneLine(e)} (usage: ocipkg ${cmd.usage})`);
    }
    await cmd.run(parsed.positionals, parsed.values as Values);
    return 0;
  } catch (e) {
    console.error(`error: ${oneLine(e)}`);
    if (debug && e instanceof Error) console.error(e.stack);
    return e instanceof OcipkgError ? e.exitCode : 1;
  }
}

/**
 * Arguments as the CLI sees them: an executable named `cargo-ocipkg` (as cargo
 * runs it for `cargo ocipkg …`) acts as `ocipkg cargo …`.
 *
 * @param args process arguments
 * @param exe the executable's path
 * @returns arguments for {@link main}
 */
export function cliArgs(args: string[], exe: string): string[] {
  if (!/^cargo-ocipkg(\.exe)?$/i.test(basename(exe))) return args;
  return ["cargo", ...(args[0] === "ocipkg" ? args.slice(1) : args)];
}

/**
 * On Ctrl-C (or SIGTERM) delete the temp files and directories in use, say
 * so in one line and exit with 130 — an interrupted command leaves nothing.
 */
function exitCleanlyOnSignals(): void {
  const onSignal = () => {
    removeTempsSync();
    console.error("error: interrupted");
    Deno.exit(130);
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(sig, onSignal);
    } catch { /* not supported here (SIGTERM on Windows) */ }
  }
}

if (import.meta.main) {
  exitCleanlyOnSignals();
  Deno.exit(await main(cliArgs(Deno.args, Deno.execPath())));
}
