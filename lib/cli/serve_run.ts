/**
 * The work of `ocipkg serve`: an embedded OCI registry over a directory of
 * OCI layouts, running until SIGINT/SIGTERM: then it stops gracefully (the
 * requests in flight get `--shutdown-grace` seconds; a second signal ends
 * the grace at once) and exits 0. Its table (usage, options, examples) is
 * `serve.ts`; this module is loaded only when the command runs.
 *
 * @module
 */
import { exportRoot, serve } from "../serve/server.ts";
import { OcipkgError, oneLine } from "../util/errors.ts";
import { implement } from "./options.ts";
import { info, out } from "./output.ts";
import command from "./serve.ts";
import { ownSignals } from "./signals.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async (_args, opts) => {
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
  ownSignals(true);
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
    ownSignals(false);
  }
});
