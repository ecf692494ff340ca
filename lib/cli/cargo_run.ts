/**
 * The work of `ocipkg cargo`: build a crate and pack its libraries, or
 * publish them. Its table (usage, options, examples) is `cargo.ts`; this
 * module is loaded only when the command runs.
 *
 * @module
 */
import { UsageError } from "../util/errors.ts";
import { formatPlatform } from "../oci/platform.ts";
import {
  cargoBuild,
  type CargoBuildResult,
  cargoPublish,
  installCargoShim,
} from "../native/cargo.ts";
import { implement } from "./options.ts";
import { info, out } from "./output.ts";
import { remote } from "./shared.ts";
import command from "./cargo.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([sub], opts) => {
  if (sub === "install-shim") {
    const path = await installCargoShim(opts.dir);
    info(`installed ${path}: 'cargo ocipkg build' now runs 'ocipkg cargo build'`);
    out(path);
    return;
  }
  const options = {
    ...remote(opts),
    release: opts.release,
    package: opts.package,
    targets: opts.target,
    tag: opts.tag,
    bins: opts.bin,
    manifestPath: opts.manifestPath,
  };
  const packed = (r: CargoBuildResult) => {
    info(`packed ${r.files.length} file(s) for ${formatPlatform(r.platform)} into ${r.archive}`);
    if (r.dirty) info(`'${r.dirty}' differs from git HEAD: the revision is marked -dirty`);
  };
  if (sub === "build") {
    for (const r of await cargoBuild(options)) {
      out(`${r.name} ${r.digest} ${r.archive}`);
      packed(r);
    }
  } else if (sub === "publish") {
    const r = await cargoPublish(options);
    r.built.forEach(packed);
    out(`${r.name} ${r.digest}`);
  } else throw new UsageError(`usage: ocipkg ${command.usage}`);
});
