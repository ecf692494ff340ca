// Property-based tests (fast-check) of image names, manifest validation and
// extraction containment; the properties live in ./_properties.ts, shared with
// scripts/fuzz.ts, which runs them much longer with random seeds.
//
// CI runs them with a fixed seed. To replay another seed or run longer:
//   OCIPKG_FUZZ_SEED=123 OCIPKG_FUZZ_RUNS=2000 deno test -A tests/property_test.ts
// (a cost-1 property runs OCIPKG_FUZZ_RUNS times, cheaper ones proportionally more).
import fc from "fast-check";
import { DEFAULT_RUNS, DEFAULT_SEED, PROPERTIES, runsFor } from "./_properties.ts";

function envInt(name: string, fallback: number): number {
  const v = Deno.env.get(name);
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got '${v}'`);
  return n;
}

const seed = envInt("OCIPKG_FUZZ_SEED", DEFAULT_SEED);
const runs = envInt("OCIPKG_FUZZ_RUNS", DEFAULT_RUNS);

for (const p of PROPERTIES) {
  Deno.test(p.name, async () => {
    await fc.assert(p.property, { seed, numRuns: runsFor(p, runs) });
  });
}
