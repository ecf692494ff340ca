/**
 * `ocipkg serve`: an embedded OCI registry over a directory of OCI layouts,
 * running until SIGINT/SIGTERM (then it stops gracefully and exits 0).
 *
 * `listening on <url> (root <dir>)` goes to stdout once the port is open (a
 * script can read the port chosen for `--addr 127.0.0.1:0` from it); the
 * request log, one line per request, goes to stderr.
 *
 * @module
 */
import { serve } from "../../mod.ts";
import { defineCommand } from "./options.ts";
import { info, out } from "./output.ts";

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
    "serve [--root DIR] [--addr HOST:PORT] [--htpasswd FILE] [--tls-cert PEM --tls-key PEM] [--read-only] [--delete] [--quiet]",
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
  ],
  async run(_args, opts) {
    const handle = await serve({
      root: opts.root ?? "./registry",
      addr: opts.addr,
      htpasswd: opts.htpasswd,
      tlsCert: opts.tlsCert,
      tlsKey: opts.tlsKey,
      readOnly: opts.readOnly,
      delete: opts.delete,
      log: opts.quiet ? undefined : info,
    });
    const stopped = Promise.withResolvers<void>();
    const onSignal = () => stopped.resolve();
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
