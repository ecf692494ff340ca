// Registry operations against `ocipkg serve` (anonymous): the same suite as
// docker-registry's (tests/_registry_suite.ts).
import { serve } from "../mod.ts";
import { tempDir } from "./_helpers.ts";
import { registrySuite } from "./_registry_suite.ts";

const s = await serve({ root: await tempDir(), addr: "127.0.0.1:0", log: () => {} });
registrySuite("serve", { host: s.addr });
