/**
 * `ocipkg serve`: an embedded OCI registry over a directory of OCI layouts,
 * running until SIGINT/SIGTERM: then it stops gracefully (the requests in
 * flight get `--shutdown-grace` seconds; a second signal ends the grace at
 * once) and exits 0.
 *
 * `listening on <url> (root <dir>)` goes to stdout once the port is open (a
 * script can read the port chosen for `--addr 127.0.0.1:0` from it); the
 * request log, one line per request, goes to stderr.
 *
 * @module
 */
import { exportRoot, OcipkgError, serve, SERVE_DEFAULTS, UsageError } from "../../mod.ts";
import { oneLine } from "../util/errors.ts";
import { defineCommand } from "./options.ts";
import { info, out } from "./output.ts";

function whole(text: string, flag: string): number {
  if (!/^[1-9]\d{0,6}$/.test(text)) {
    throw new UsageError(`invalid ${flag} '${text}': use a whole number from 1 to 9999999`);
  }
  return Number(text);
}

/** A parser of a decimal number of at least `least` (times `scale`). */
function number(least: number, what: string, scale = 1) {
  return (text: string, flag: string): number => {
    const n = Number(text);
    if (!/^\d{1,9}(\.\d{1,3})?$/.test(text) || !(n >= least)) {
      throw new UsageError(`invalid ${flag} '${text}': use ${what}`);
    }
    return n * scale;
  };
}

/** Seconds, as ms. */
const seconds = number(0.001, "a positive number of seconds", 1000);

let owned = false;

/**
 * Whether a running `serve` handles SIGINT/SIGTERM itself (graceful stop,
 * exit 0), so the CLI's exit-on-signal handler stands aside.
 *
 * @returns true while `serve` runs
 */
export function signalsOwned(): boolean {
  return owned;
}

/** The command. */
export default defineCommand({
  name: "serve",
  usage:
    "serve [--root DIR] [--addr HOST:PORT] [--htpasswd FILE] [--tls-cert PEM --tls-key PEM] [--read-only] [--delete] [--quiet] | serve --export [--root DIR]",
  summary: "Run an OCI registry storing one OCI layout per repository",
  positionals: [0, 0],
  options: {
    root: {
      type: "string",
      value: "dir",
      default: "./registry",
      description: "directory of repositories (one OCI image layout each; made when missing)",
    },
    addr: {
      type: "string",
      value: "host:port",
      default: "127.0.0.1:5000",
      description: "address to listen on (port 0: a free port, printed)",
    },
    htpasswd: {
      type: "string",
      value: "file",
      description: "require Basic auth from this htpasswd file (bcrypt entries: htpasswd -B)",
    },
    "tls-cert": { type: "string", value: "pem", description: "serve https with this certificate" },
    "tls-key": { type: "string", value: "pem", description: "the certificate's private key" },
    "read-only": { type: "boolean", description: "refuse every write (DENIED)" },
    delete: { type: "boolean", description: "allow deleting manifests, tags and blobs" },
    quiet: { short: "q", type: "boolean", description: "no request log on stderr" },
    export: {
      type: "boolean",
      description:
        "write every repository's index.json from serve's private index, then exit (after a crash; not while serve runs on the root)",
    },
    "max-connections": {
      type: "string",
      value: "n",
      default: `${SERVE_DEFAULTS.maxConnections}`,
      parse: whole,
      description: "most connections open at once",
    },
    "max-client-connections": {
      type: "string",
      value: "n",
      default: `${SERVE_DEFAULTS.maxClientConnections}`,
      parse: whole,
      description: "most connections one client address holds open",
    },
    rate: {
      type: "string",
      value: "n",
      default: `${SERVE_DEFAULTS.rate}`,
      parse: number(0, "a number of requests per second (0: no limit)"),
      description: "requests per second one client may send on average (0: no limit)",
    },
    burst: {
      type: "string",
      value: "n",
      default: `${SERVE_DEFAULTS.burst}`,
      parse: whole,
      description: "requests one client may send at once beyond --rate",
    },
    "max-uploads": {
      type: "string",
      value: "n",
      default: `${SERVE_DEFAULTS.maxUploads}`,
      parse: whole,
      description: "most upload sessions open at once",
    },
    "max-client-uploads": {
      type: "string",
      value: "n",
      default: `${SERVE_DEFAULTS.maxClientUploads}`,
      parse: whole,
      description: "most upload sessions one client holds",
    },
    "upload-idle": {
      type: "string",
      value: "seconds",
      default: `${SERVE_DEFAULTS.uploadIdleMs / 1000}`,
      parse: seconds,
      description: "an upload session that receives no bytes this long is dropped",
    },
    "stall-timeout": {
      type: "string",
      value: "seconds",
      default: `${SERVE_DEFAULTS.stallMs / 1000}`,
      parse: seconds,
      description: "a body moving no byte, or a connection with no request, this long is cut",
    },
    "shutdown-grace": {
      type: "string",
      value: "seconds",
      default: `${SERVE_DEFAULTS.shutdownGraceMs / 1000}`,
      parse: number(0, "a number of seconds (0: stop at once)", 1000),
      description: "on SIGINT/SIGTERM, time the requests in flight get to finish",
    },
  },
  examples: [
    { command: "ocipkg serve", description: "a registry on 127.0.0.1:5000 storing in ./registry" },
    {
      command: "ocipkg serve --root /srv/oci --addr 0.0.0.0:5000 --htpasswd /srv/htpasswd",
      description: "on every interface, with Basic auth",
    },
    {
      command: "ocipkg serve --root ./mirror --read-only --quiet",
      description: "serve a directory of layouts read-only",
    },
    {
      command: "ocipkg serve --export --root /srv/oci",
      description:
        "after a crash: write each repository's index.json (skopeo, umoci read the root)",
    },
    {
      command: "ocipkg serve --max-client-connections 8 --rate 20 --shutdown-grace 30",
      description: "tighter per-client limits, a longer graceful stop",
    },
  ],
  async run(_args, opts) {
    if (opts.export) {
      const root = opts.root ?? "./registry";
      const failed: string[] = [];
      const names = await exportRoot(root, {
        onError: (name, e) => {
          failed.push(name);
          info(`error: export of '${name}' failed: ${oneLine(e)}`);
        },
      });
      for (const n of names) info(`exported ${n}`);
      if (failed.length) {
        throw new OcipkgError(
          `exported ${names.length} ${names.length === 1 ? "repository" : "repositories"}; ` +
            `${failed.length} could not be exported (above)`,
        );
      }
      out(
        `exported ${names.length} ${
          names.length === 1 ? "repository" : "repositories"
        } under ${root}`,
      );
      return;
    }
    const handle = await serve({
      root: opts.root ?? "./registry",
      addr: opts.addr,
      htpasswd: opts.htpasswd,
      tlsCert: opts.tlsCert,
      tlsKey: opts.tlsKey,
      readOnly: opts.readOnly,
      delete: opts.delete,
      log: opts.quiet ? undefined : info,
      maxConnections: opts.maxConnections,
      maxClientConnections: opts.maxClientConnections,
      rate: opts.rate,
      burst: opts.burst,
      maxUploads: opts.maxUploads,
      maxClientUploads: opts.maxClientUploads,
      uploadIdleMs: opts.uploadIdle,
      stallMs: opts.stallTimeout,
      shutdownGraceMs: opts.shutdownGrace,
    });
    const stopped = Promise.withResolvers<void>();
    let signalled = false;
    const onSignal = () => {
      if (signalled) handle.close({ graceMs: 0 }); // a second signal: stop now
      signalled = true;
      stopped.resolve();
    };
    owned = true;
    const signals = (["SIGINT", "SIGTERM"] as const).filter((sig) => {
      try {
        Deno.addSignalListener(sig, onSignal);
        return true;
      } catch {
        return false; // not supported here (SIGTERM on Windows)
      }
    });
    out(`listening on ${handle.url} (root ${handle.root})`);
    try {
      await stopped.promise;
      await handle.close();
    } finally {
      for (const sig of signals) Deno.removeSignalListener(sig, onSignal);
      owned = false;
    }
  },
});
