/**
 * The work of `ocipkg link`: get a package and link its libraries. Its table
 * (usage, options, examples) is `link.ts`; this module is loaded only when
 * the command runs.
 *
 * @module
 */
import { UsageError } from "../util/errors.ts";
import { imageName } from "../oci/reference.ts";
import { parsePlatform } from "../oci/platform.ts";
import { linkPackage } from "../native/link.ts";
import { cargoLink } from "../native/link_cargo.ts";
import { writeCmakeConfig } from "../native/link_cmake.ts";
import { writePkgConfig } from "../native/link_pkgconfig.ts";
import { implement } from "./options.ts";
import { info, out } from "./output.ts";
import { lockSettings, remote } from "./shared.ts";
import { limits, verifyPolicy } from "./install_options.ts";
import command from "./link.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([image], opts) => {
  if (opts.static && opts.dynamic) throw new UsageError("give --static or --dynamic, not both");
  // in a build script, cargo's TARGET is the platform to link for
  const cargoTarget = opts.cargo ? Deno.env.get("TARGET") : undefined;
  const platform = opts.platform ?? (cargoTarget ? parsePlatform(cargoTarget) : undefined);
  const r = await linkPackage(imageName(image!), {
    ...verifyPolicy(opts),
    ...lockSettings(opts),
    ...limits(opts),
    ...remote(opts),
    refresh: opts.refresh,
    platform,
    prefer: opts.static ? "static" : opts.dynamic ? "dynamic" : undefined,
    libs: opts.lib,
  });
  const name = opts.name;
  for (const s of r.skipped ?? []) info(`warning: skipped '${s.path}': ${s.reason}`);
  if (opts.cargo) {
    // in a build script: shared libraries also go into $OUT_DIR, for dependents' cargo run/test
    const lines = await cargoLink(r, { outDir: Deno.env.get("OUT_DIR") || undefined });
    for (const line of lines) out(line);
  }
  if (opts.pkgConfig) {
    const pc = await writePkgConfig(r, { name });
    out(`PKG_CONFIG_PATH=${pc.searchPath}`);
    info(
      `wrote ${pc.path}; use: PKG_CONFIG_PATH=${pc.searchPath} pkg-config --cflags --libs ${pc.name}`,
    );
  }
  if (opts.cmake) {
    const c = await writeCmakeConfig(r, { name });
    out(`CMAKE_PREFIX_PATH=${c.prefix}`);
    info(
      `wrote ${c.path}; use: cmake -DCMAKE_PREFIX_PATH=${c.prefix} with find_package(${c.name}) and ${c.name}::${c.name}`,
    );
  }
  if (opts.json) out(JSON.stringify({ ...r, image: r.image.toString() }, null, 2));
  else if (!opts.cargo && !opts.pkgConfig && !opts.cmake) {
    for (const l of r.libraries) out(l.path);
  }
});
