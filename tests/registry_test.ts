// Registry operations against a real docker-registry (anonymous): the shared suite.
import { startRegistry } from "./_registry.ts";
import { registrySuite } from "./_registry_suite.ts";

const reg = await startRegistry();
globalThis.addEventListener("unload", () => reg.kill());
registrySuite("docker-registry", reg);
