// `deno task install [--dir d]`: put an `ocipkg` command on PATH that runs this
// checkout's cli.ts with the Deno that runs this script (e.g. the one `npx -y
// deno` brought) — for build scripts (build.rs, Makefiles) that call `ocipkg`.
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { installLauncher } from "../lib/native/mod.ts";

const { values } = parseArgs({ options: { dir: { type: "string" } } });
const cli = fileURLToPath(new URL("../cli.ts", import.meta.url));
const r = await installLauncher(values.dir, { exe: Deno.execPath(), cli });
console.log(`installed ${r.path} (runs ${cli} with ${Deno.execPath()})`);
if (!r.onPath) {
  console.log(
    `add its directory to PATH, e.g.: export PATH="${r.path.replace(/[\\/][^\\/]*$/, "")}:$PATH"`,
  );
}
