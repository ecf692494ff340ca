// `deno task install [--dir d]`: put an `ocipkg` command on PATH that runs this
// checkout's cli.ts with the Deno that runs this script (e.g. the one `npx -y
// deno` brought; once that binary is gone — npm cache clean, a new npx — the
// launcher runs `deno` from PATH, else `npx -y deno`), for build scripts
// (build.rs, Makefiles) that call `ocipkg`. Only that one file is written;
// `deno task install --uninstall [--dir d]` removes it.
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { installLauncher, uninstallLauncher } from "../lib/native/mod.ts";

const { values } = parseArgs({
  options: { dir: { type: "string" }, uninstall: { type: "boolean" } },
});
if (values.uninstall) {
  try {
    const r = await uninstallLauncher(values.dir);
    console.log(r.removed ? `removed ${r.path}` : `nothing to remove: no ${r.path}`);
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
} else {
  const cli = fileURLToPath(new URL("../cli.ts", import.meta.url));
  const r = await installLauncher(values.dir, { exe: Deno.execPath(), cli });
  console.log(`installed ${r.path} (runs ${cli} with ${Deno.execPath()})`);
  if (!r.onPath) {
    console.log(
      `add its directory to PATH, e.g.: export PATH="${r.path.replace(/[\\/][^\\/]*$/, "")}:$PATH"`,
    );
  }
}
