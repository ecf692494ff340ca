// Property-based tests shared by tests/property_test.ts (fixed seed, modest run
// counts) and scripts/fuzz.ts (random seeds, many runs). Each property names the
// invariant it checks; a failing run throws an Error saying which invariant broke,
// and fast-check prints the shrunk counterexample with the seed and path to replay it.
// The properties live by subject in _properties_names.ts, _properties_identity.ts,
// _properties_manifest.ts and _properties_extract.ts; this module lists them and their costs.
import type fc from "fast-check";
import {
  nameParseTotal,
  nameRoundTrip,
  storeDirInjective,
  storePathInjective,
  storePathRoundTrip,
} from "./_properties_names.ts";
import {
  credentialsAnySpelling,
  distinctRegistriesDiffer,
  spellingsAgree,
  storeAnySpelling,
} from "./_properties_identity.ts";
import {
  descriptorTotal,
  manifestAccepts,
  manifestRejectsBadDescriptor,
  manifestTotal,
} from "./_properties_manifest.ts";
import { extractContained } from "./_properties_extract.ts";

/** One property with how expensive a run is. */
export interface NamedProperty {
  /** Test name (also what `--only` and `deno test --filter` match). */
  name: string;
  /** The fast-check property. */
  property: fc.IRawProperty<unknown, boolean>;
  /** Relative cost of one run: the property runs `ceil(runs / cost)` times. */
  cost: number;
}

/** Default seed of the CI runs (override with OCIPKG_FUZZ_SEED). */
export const DEFAULT_SEED = 20240611;
/** Default run count of a cost-1 property in CI (override with OCIPKG_FUZZ_RUNS). */
export const DEFAULT_RUNS = 1000;

/** How many runs a property gets out of a base count. */
export function runsFor(p: NamedProperty, base: number): number {
  return Math.max(1, Math.ceil(base / p.cost));
}

// ---------------------------------------------------------------------------

/** Every property, in the order they run. */
export const PROPERTIES: NamedProperty[] = [
  { name: "names: parse(toString()) round-trips", property: nameRoundTrip, cost: 0.2 },
  {
    name: "names: storePath() is safe and fromStorePath() inverts it",
    property: storePathRoundTrip,
    cost: 0.2,
  },
  {
    name: "names: distinct images never share a storePath()",
    property: storePathInjective,
    cost: 0.2,
  },
  {
    name: "names: distinct images never share a Store.imageDir()",
    property: storeDirInjective,
    cost: 0.2,
  },
  {
    name: "names: every spelling of a registry gives one identity (name, registry, store path)",
    property: spellingsAgree,
    cost: 0.5,
  },
  {
    name: "names: registries that differ (port, address, name) never share an identity",
    property: distinctRegistriesDiffer,
    cost: 0.5,
  },
  {
    name: "credentials: saved under one spelling of a registry, found under every spelling",
    property: credentialsAnySpelling,
    cost: 2,
  },
  {
    name: "store: an image loaded under one spelling of a registry is there under every spelling",
    property: storeAnySpelling,
    cost: 10,
  },
  {
    name: "names: parse() of any string returns or throws UsageError, quickly",
    property: nameParseTotal,
    cost: 1,
  },
  {
    name: "manifest: any bytes give a document or FormatError",
    property: manifestTotal,
    cost: 1,
  },
  {
    name: "manifest: validateDescriptor of any JSON gives a descriptor or FormatError",
    property: descriptorTotal,
    cost: 0.5,
  },
  {
    name: "manifest: valid manifests and indexes are accepted and round-trip",
    property: manifestAccepts,
    cost: 0.5,
  },
  {
    name: "manifest: one invalid descriptor field is rejected",
    property: manifestRejectsBadDescriptor,
    cost: 0.5,
  },
  {
    name: "extract: layers never write outside dest or into .oci-dir; results are safe",
    property: extractContained,
    cost: 1,
  },
];
