// Property-based tests shared by tests/property_test.ts (fixed seed, modest run
// counts) and scripts/fuzz.ts (random seeds, many runs). Each property names the
// invariant it checks; a failing run throws an Error saying which invariant broke,
// and fast-check prints the shrunk counterexample with the seed and path to replay it.
import fc from "fast-check";
import { join } from "node:path";
import { ArchiveError, FormatError, OcipkgError, UsageError } from "../lib/util/errors.ts";
import { ExtractBudget } from "../lib/archive/budget.ts";
import { checkLinks, extractLayer } from "../lib/archive/extract.ts";
import { parseManifestDocument, validateDescriptor } from "../lib/oci/manifest.ts";
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  INDEX_TYPES,
  MANIFEST_TYPES,
  OCI_INDEX,
  OCI_MANIFEST,
} from "../lib/oci/media_types.ts";
import { canonicalRegistry, DEFAULT_HOST, ImageName } from "../lib/oci/reference.ts";
import {
  findCredential,
  removeCredential,
  saveCredential,
} from "../lib/transport/registry/credentials.ts";
import { packDirectory } from "../lib/ops/artifact.ts";
import { loadImage } from "../lib/ops/install.ts";
import { Store } from "../lib/store/store.ts";
import { TAR_END, tarHeader, tarPadding } from "../lib/archive/tar_writer.ts";
import { concat, withTempDir } from "./_helpers.ts";

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

function fail(why: string, detail?: unknown): never {
  throw new Error(detail === undefined ? why : `${why}: ${fc.stringify(detail)}`);
}

/** A weighted alternative for fc.oneof. */
const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });

function errorName(e: unknown): string {
  return e instanceof Error ? `${e.constructor.name}: ${e.message.slice(0, 300)}` : String(e);
}

// ---------------------------------------------------------------------------
// 1. Image names
// ---------------------------------------------------------------------------

const DOCKER_ALIASES = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/**
 * A registry as the model knows it, in canonical form: a host name (lower
 * case; `localhost`; a one-label name always with its port), an IPv4 address
 * (never 0.0.0.0), an IPv6 address (never `::` nor IPv4-mapped), or Docker
 * Hub; the port is undefined when it is the host's default one.
 */
type Registry =
  | { kind: "name"; name: string; port?: number }
  | { kind: "ipv4"; octets: number[]; port?: number }
  | { kind: "ipv6"; groups: number[]; port?: number }
  | { kind: "hub"; port?: number }; // canonical only without a port

/** RFC 5952 text of an IPv6 address, computed here, not by the URL parser. */
function ipv6Text(groups: number[]): string {
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return `[${hex.join(":")}]`;
  return `[${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}]`;
}

/** The canonical host name of a registry. */
function hostnameOf(r: Registry): string {
  switch (r.kind) {
    case "name":
      return r.name;
    case "ipv4":
      return r.octets.join(".");
    case "ipv6":
      return ipv6Text(r.groups);
    case "hub":
      return DEFAULT_HOST;
  }
}

/** `host[:port]`, canonical. */
function registryText(r: Registry): string {
  return r.port === undefined ? hostnameOf(r) : `${hostnameOf(r)}:${r.port}`;
}

function defaultPort(r: Registry): number {
  const loopback = (r.kind === "name" && r.name === "localhost") ||
    (r.kind === "ipv4" && r.octets[0] === 127) ||
    (r.kind === "ipv6" && ipv6Text(r.groups) === "[::1]");
  return loopback ? 80 : 443;
}

const isOneLabel = (name: string) => !name.includes(".") && name !== "localhost";

/** The model's canonical form of a registry (what canonicalRegistry must agree with). */
function canon(r: Registry): Registry {
  if (r.kind === "hub") {
    return r.port === undefined || r.port === 443
      ? { kind: "hub" }
      : { kind: "name", name: DEFAULT_HOST, port: r.port };
  }
  if (r.kind === "name" && isOneLabel(r.name)) return { ...r, port: r.port ?? 443 };
  const port = r.port === defaultPort(r) ? undefined : r.port;
  if (r.kind === "name" && DOCKER_ALIASES.includes(r.name) && port === undefined) {
    return { kind: "hub" };
  }
  return { ...r, port };
}

const lower = "abcdefghijklmnopqrstuvwxyz";
// labels that never read as a number (the last one starts with a letter) nor as punycode
const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,6}[a-z0-9])?$/)
  .filter((l) => !l.startsWith("xn--"));
const lastLabel = fc.tuple(fc.constantFrom(...lower), label).map(([c, l]) => c + l);
const dnsName = fc.tuple(fc.array(label, { minLength: 1, maxLength: 3 }), lastLabel)
  .map(([l, last]) => [...l, last].join("."));
const anyPort = fc.integer({ min: 1, max: 65535 });
const octet = fc.oneof(fc.nat(255), fc.constantFrom(0, 1, 127, 255));
const group = fc.oneof(fc.constant(0), fc.constant(0), fc.nat(0xffff), fc.constantFrom(1, 0xffff));

/** A registry with a port: its default one (undefined) or another. */
function withPort(r: Registry): fc.Arbitrary<Registry> {
  return fc.option(anyPort, { nil: undefined, freq: 2 }).map((port) => canon({ ...r, port }));
}

/** Canonical registries of every kind. */
const registryArb: fc.Arbitrary<Registry> = fc.oneof(
  w(3, dnsName.chain((name) => withPort({ kind: "name", name }))),
  w(1, withPort({ kind: "name", name: "localhost" })),
  // one label: always with its port (443 when not written)
  w(
    1,
    lastLabel.filter((l) => l !== "localhost").chain((name) => withPort({ kind: "name", name })),
  ),
  // Docker Hub's names: on their https port Docker Hub, on another port other servers
  w(1, fc.constantFrom(...DOCKER_ALIASES).chain((name) => withPort({ kind: "name", name }))),
  w(
    3,
    fc.array(octet, { minLength: 4, maxLength: 4 })
      .map((o) => o.every((x) => x === 0) ? [127, 0, 0, 1] : o)
      .chain((octets) => withPort({ kind: "ipv4", octets })),
  ),
  w(
    1,
    fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255))
      .chain(([a, b, c]) => withPort({ kind: "ipv4", octets: [127, a, b, c] })),
  ),
  w(
    3,
    fc.array(group, { minLength: 8, maxLength: 8 })
      .map((g) => g.every((x) => x === 0) ? [0, 0, 0, 0, 0, 0, 0, 1] : g)
      .filter((g) => !(g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff))
      .chain((groups) => withPort({ kind: "ipv6", groups })),
  ),
  // the loopback addresses, which have the most spellings (`0.0.0.0`, `[::]`, mapped forms)
  w(1, withPort({ kind: "ipv4", octets: [127, 0, 0, 1] })),
  w(1, withPort({ kind: "ipv6", groups: [0, 0, 0, 0, 0, 0, 0, 1] })),
  w(2, fc.constant({ kind: "hub" })),
);

/** Each letter in random case. */
function anyCase(text: string): fc.Arbitrary<string> {
  return fc.array(fc.boolean(), { minLength: text.length, maxLength: text.length })
    .map((up) => [...text].map((c, i) => up[i] ? c.toUpperCase() : c).join(""));
}

/** One number of an IPv4 address: decimal, octal (`0…`) or hex (`0x…`, any case). */
function ipv4Number(v: number): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constant(String(v)),
    fc.nat(2).map((z) => "0".repeat(z + 1) + v.toString(8)),
    fc.tuple(fc.constantFrom("0x", "0X"), fc.nat(2)).chain(([x, z]) =>
      anyCase("0".repeat(z) + v.toString(16)).map((h) => x + h)
    ),
  );
}

/** An IPv4 address in the URL parser's forms: 1 to 4 numbers, the last one filling the rest. */
function ipv4Spelling(octets: number[]): fc.Arbitrary<string> {
  return fc.integer({ min: 1, max: 4 }).chain((parts) => {
    const head = octets.slice(0, parts - 1);
    const last = octets.slice(parts - 1).reduce((n, o) => n * 256 + o, 0);
    return fc.tuple(...[...head, last].map(ipv4Number)).map((p) => p.join("."));
  });
}

/** An IPv6 address: groups padded and in any case, a run of zeros compressed, maybe a dotted tail. */
function ipv6Spelling(groups: number[]): fc.Arbitrary<string> {
  return fc.tuple(
    fc.boolean(),
    fc.array(fc.nat(3), { minLength: 8, maxLength: 8 }),
    fc.nat(),
    fc.boolean(),
  ).chain(([dotted, pad, pick, compress]) => {
    const n = dotted ? 6 : 8;
    const texts = groups.slice(0, n).map((g, i) => {
      const hex = g.toString(16);
      return "0".repeat(Math.min(pad[i]!, 4 - hex.length)) + hex;
    });
    const tail = dotted ? [groups.slice(6).flatMap((g) => [g >> 8, g & 255]).join(".")] : [];
    // the runs of zero groups that `::` may replace (any run of one or more)
    const runs: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j <= n && groups[j - 1] === 0; j++) runs.push([i, j]);
    }
    return fc.tuple(...texts.map(anyCase)).map((hex) => {
      if (!compress || runs.length === 0) return `[${[...hex, ...tail].join(":")}]`;
      const [i, j] = runs[pick % runs.length]!;
      return `[${hex.slice(0, i).join(":")}::${[...hex.slice(j), ...tail].join(":")}]`;
    });
  });
}

/** Whether an image name reads this first component as a registry. */
const readAsHost = (h: string) =>
  h.includes(".") || h.includes(":") || h === "localhost" || h.startsWith("[");

/** Ways to write a registry that all reach it: `host[:port]` as a user might. */
function spellingArb(r: Registry): fc.Arbitrary<string> {
  let host: fc.Arbitrary<string>;
  switch (r.kind) {
    case "name":
      host = anyCase(r.name);
      break;
    case "hub":
      host = fc.constantFrom(...DOCKER_ALIASES).chain(anyCase);
      break;
    case "ipv4": {
      const local = r.octets.join(".") === "127.0.0.1";
      const octets = local ? fc.constantFrom(r.octets, [0, 0, 0, 0]) : fc.constant(r.octets);
      host = octets.chain((o) =>
        fc.oneof(
          { weight: 3, arbitrary: ipv4Spelling(o) },
          {
            weight: 1,
            arbitrary: ipv6Spelling([
              0,
              0,
              0,
              0,
              0,
              0xffff,
              o[0]! * 256 + o[1]!,
              o[2]! * 256 + o[3]!,
            ]),
          },
        )
      );
      break;
    }
    case "ipv6": {
      const local = ipv6Text(r.groups) === "[::1]";
      host = (local ? fc.constantFrom(r.groups, [0, 0, 0, 0, 0, 0, 0, 0]) : fc.constant(r.groups))
        .chain(ipv6Spelling);
      break;
    }
  }
  const port = r.port ?? defaultPort(r);
  return fc.tuple(host, fc.nat(2), fc.boolean()).map(([h, zeros, bare]) =>
    r.port === undefined && bare && readAsHost(h) ? h : `${h}:${"0".repeat(zeros)}${port}`
  );
}

/** A registry and a few spellings of it. */
const spelledRegistryArb = registryArb.chain((r) =>
  fc.tuple(fc.constant(r), fc.array(spellingArb(r), { minLength: 1, maxLength: 5 }))
);

/** A registry near another one: another port, address, name or kind (or, rarely, the same). */
function nearbyArb(r: Registry): fc.Arbitrary<Registry> {
  const otherPort = fc.oneof(
    fc.constant(r.port === undefined ? 5000 : undefined),
    anyPort.filter((p) => p !== r.port),
  ).map((port): Registry => ({ ...r, port }));
  const swaps: Registry[] = [
    { kind: "name", name: "localhost", port: r.port },
    { kind: "ipv4", octets: [127, 0, 0, 1], port: r.port },
    { kind: "ipv4", octets: [127, 0, 0, 2], port: r.port },
    { kind: "ipv6", groups: [0, 0, 0, 0, 0, 0, 0, 1], port: r.port },
    { kind: "hub" },
  ];
  let changed: fc.Arbitrary<Registry>;
  switch (r.kind) {
    case "ipv4":
      changed = fc.tuple(fc.nat(3), fc.integer({ min: 1, max: 255 })).map(([i, d]) => {
        const octets = [...r.octets];
        octets[i] = (octets[i]! + d) % 256;
        return octets.every((x) => x === 0) ? { ...r, octets: [0, 0, 0, 1] } : { ...r, octets };
      });
      break;
    case "ipv6":
      changed = fc.tuple(fc.nat(7), fc.integer({ min: 1, max: 0xffff })).map(([i, d]) => {
        const groups = [...r.groups];
        groups[i] = (groups[i]! + d) % 0x10000;
        return { ...r, groups };
      }).filter((s) =>
        !s.groups.every((x) => x === 0) &&
        !(s.groups.slice(0, 5).every((x) => x === 0) && s.groups[5] === 0xffff)
      );
      break;
    case "name":
      changed = fc.oneof(
        fc.constantFrom("x", "a-").map((p) => ({ ...r, name: p + r.name })),
        // another of Docker Hub's names on the same port
        fc.constantFrom(...DOCKER_ALIASES).map((name) => ({ ...r, name })),
      );
      break;
    case "hub":
      changed = fc.constantFrom(...swaps);
      break;
  }
  return fc.oneof(otherPort, changed, fc.constantFrom(...swaps), fc.constant(r)).map(canon);
}

/** What a generated image name is made of, and the string written from it. */
interface NameSpec {
  /** `host[:port]` as written (any spelling), absent for a Docker Hub name without host. */
  host?: string;
  /** The registry it names, canonical. */
  registry?: Registry;
  name: string;
  tag?: string;
  digest?: string;
}

function specInput(s: NameSpec): string {
  const host = s.host === undefined ? "" : `${s.host}/`;
  return `${host}${s.name}${s.tag !== undefined ? `:${s.tag}` : ""}${
    s.digest !== undefined ? `@${s.digest}` : ""
  }`;
}

const word = fc.stringMatching(/^[a-z0-9]{1,6}$/);
const longWord = fc.tuple(fc.integer({ min: 100, max: 255 }), fc.constantFrom("a", "z", "0", "9"))
  .map(([n, c]) => c.repeat(n));
const separator = fc.constantFrom(".", "_", "__", "-", "--", "---");
const component = fc.tuple(
  fc.oneof({ weight: 9, arbitrary: word }, { weight: 1, arbitrary: longWord }),
  fc.array(fc.tuple(separator, word), { maxLength: 3 }),
).map(([w, rest]) => w + rest.map(([s, x]) => s + x).join(""));
const repoName = fc.array(component, { minLength: 1, maxLength: 4 }).map((c) => c.join("/"))
  .filter((n) => n.length <= 255);

const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
const digestArb = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
);
const tagArb = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,20}$/) },
  { weight: 1, arbitrary: fc.constantFrom("latest", "1.2.3", "_", "a..b", "__x", "v1__2") },
  { weight: 1, arbitrary: digestArb.map((d) => d.replace(":", "__")) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom("sha256", "sha512"), fc.stringMatching(/^[0-9a-f]{1,20}$/))
      .map(([a, h]) => `${a}__${h}`),
  },
).filter((t) => t.length <= 128); // the longest tag

/** A host[:port] part (or none): a registry of any kind, in any spelling. */
const hostPart: fc.Arbitrary<Pick<NameSpec, "host" | "registry">> = fc.oneof(
  w(1, fc.constant({})),
  w(6, registryArb.chain((registry) => spellingArb(registry).map((host) => ({ host, registry })))),
);

const refPart: fc.Arbitrary<Pick<NameSpec, "tag" | "digest">> = fc.oneof(
  fc.constant({}),
  tagArb.map((tag) => ({ tag })),
  digestArb.map((digest) => ({ digest })),
  fc.tuple(tagArb, digestArb).map(([tag, digest]) => ({ tag, digest })),
);

/** Generated valid image names. */
export const nameSpecArb: fc.Arbitrary<NameSpec> = fc.tuple(hostPart, repoName, refPart)
  .map(([h, name, r]) => ({ ...h, name, ...r }) as NameSpec)
  // without a host, a first segment with '.' (or `localhost`) would be read as a host
  .filter((s) => {
    if (s.host !== undefined || !s.name.includes("/")) return true;
    const first = s.name.split("/")[0]!;
    return !first.includes(".") && first !== "localhost";
  })
  // the 255-character limit applies to the canonical name (with `library/`)
  .filter((s) => expected(s).name.length <= 255);

/**
 * The store path of a name, or undefined for the one kind it must refuse: a tag
 * spelled like a digest directory (`sha256__…`, which would share it with the digest).
 */
function storePathOf(n: ImageName): string[] | undefined {
  try {
    return n.storePath();
  } catch (e) {
    if (e instanceof UsageError && n.digest === undefined && /^sha(256|512)__/i.test(n.tag ?? "")) {
      return undefined;
    }
    return fail(`storePath() of '${n}' threw ${errorName(e)}`);
  }
}

function expected(s: NameSpec) {
  const r = s.registry ?? { kind: "hub" };
  let name = s.name;
  if (r.kind === "hub" && !name.includes("/")) name = `library/${name}`;
  return {
    hostname: hostnameOf(r),
    port: r.port,
    name,
    tag: s.tag ?? (s.digest ? undefined : "latest"),
    digest: s.digest,
  };
}

function fields(n: ImageName) {
  return { hostname: n.hostname, port: n.port, name: n.name, tag: n.tag, digest: n.digest };
}

/** The fields that survive `toString()` (a tag given with a digest is not written). */
function canonical(n: ImageName) {
  return { ...fields(n), tag: n.digest ? undefined : n.tag };
}

function parseOrFail(input: string, why: string): ImageName {
  try {
    return ImageName.parse(input);
  } catch (e) {
    return fail(`${why}: parse(${JSON.stringify(input)}) threw ${errorName(e)}`);
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

const nameRoundTrip = fc.property(nameSpecArb, (s) => {
  const input = specInput(s);
  const n = parseOrFail(input, "valid name refused");
  if (!sameJson(fields(n), expected(s))) {
    fail(`parse(${JSON.stringify(input)}) gave ${fc.stringify(fields(n))}`, expected(s));
  }
  const text = n.toString();
  const again = parseOrFail(text, `toString() of '${input}' does not parse`);
  if (!sameJson(canonical(again), canonical(n))) {
    fail(`parse(toString()) of '${input}' differs: '${text}' →`, fields(again));
  }
  if (again.toString() !== text) fail(`toString() not stable: '${text}' → '${again}'`);
  return true;
});

function checkSegments(n: ImageName, segs: string[]): void {
  for (const s of segs) {
    if (
      s === "" || s === "." || s === ".." || s.includes("/") || s.includes("\\") ||
      s.includes("\0")
    ) {
      fail(`storePath() of '${n}' has an unsafe segment ${JSON.stringify(s)}`, segs);
    }
  }
}

const storePathRoundTrip = fc.property(nameSpecArb, (s) => {
  const n = parseOrFail(specInput(s), "valid name refused");
  const segs = storePathOf(n);
  if (segs === undefined) return true;
  checkSegments(n, segs);
  let back: ImageName;
  try {
    back = ImageName.fromStorePath(segs);
  } catch (e) {
    return fail(`fromStorePath(storePath()) of '${n}' threw ${errorName(e)}`, segs);
  }
  if (back.toString() !== n.toString()) {
    fail(`fromStorePath(storePath()) of '${n}' gave '${back}'`, segs);
  }
  return true;
});

/** Two names of one repository whose references may be a digest and the tag spelled like it. */
const namePairArb = fc.tuple(hostPart, repoName, digestArb).chain(([h, name, shared]) => {
  const ref: fc.Arbitrary<Pick<NameSpec, "tag" | "digest">> = fc.oneof(
    fc.constant({ digest: shared }),
    fc.constant({ tag: shared.replace(":", "__") }),
    fc.constant({ tag: shared.replace(":", "_") }),
    refPart,
  );
  return fc.tuple(ref, ref).map(([a, b]) =>
    [{ ...h, name, ...a }, { ...h, name, ...b }] as [NameSpec, NameSpec]
  );
}).filter(([s, t]) => (s.tag ?? "").length <= 128 && (t.tag ?? "").length <= 128).filter(([s]) =>
  expected(s).name.length <= 255
).filter(([s]) =>
  s.host !== undefined || !s.name.includes("/") ||
  (!s.name.split("/")[0]!.includes(".") && s.name.split("/")[0] !== "localhost")
);

const storePathInjective = fc.property(namePairArb, ([sa, sb]) => {
  const a = parseOrFail(specInput(sa), "valid name refused");
  const b = parseOrFail(specInput(sb), "valid name refused");
  const pa = storePathOf(a)?.join("/");
  if (pa !== undefined && pa === storePathOf(b)?.join("/") && a.toString() !== b.toString()) {
    fail(`'${a}' and '${b}' share the store path '${pa}'`);
  }
  return true;
});

const storeDirInjective = fc.property(namePairArb, ([sa, sb]) => {
  const store = new Store("/nonexistent-ocipkg-store");
  const dir = (n: ImageName) => {
    try {
      return store.imageDir(n);
    } catch (e) {
      if (e instanceof UsageError) return undefined;
      throw e;
    }
  };
  const a = parseOrFail(specInput(sa), "valid name refused");
  const b = parseOrFail(specInput(sb), "valid name refused");
  const da = dir(a);
  if (da !== undefined && da === dir(b) && a.toString() !== b.toString()) {
    fail(`Store.imageDir: '${a}' and '${b}' share '${da}'`);
  }
  return true;
});

// ---- one identity per registry, however it is spelled

/** The identity of an image name: what the store, credentials and messages key on. */
function identity(n: ImageName) {
  return { text: n.toString(), registry: n.registry, store: storePathOf(n)?.join("/") };
}

/** Names that parse under any registry (`library/` on Docker Hub stays within 255). */
const shortRepoName = repoName.filter((n) => n.length <= 200);

function canonicalOrFail(spelling: string): string {
  try {
    const { hostname, port } = canonicalRegistry(spelling);
    return port === undefined ? hostname : `${hostname}:${port}`;
  } catch (e) {
    return fail(`canonicalRegistry(${JSON.stringify(spelling)}) threw ${errorName(e)}`);
  }
}

const spellingsAgree = fc.property(
  spelledRegistryArb,
  shortRepoName,
  refPart,
  ([r, spellings], name, ref) => {
    const want = registryText(r);
    let first: ReturnType<typeof identity> | undefined;
    for (const host of spellings) {
      const got = canonicalOrFail(host);
      if (got !== want) fail(`canonicalRegistry(${JSON.stringify(host)}) is '${got}'`, want);
      const s: NameSpec = { host, registry: r, name, ...ref };
      const n = parseOrFail(specInput(s), "valid name refused");
      if (!sameJson(fields(n), expected(s))) {
        fail(`parse(${JSON.stringify(specInput(s))}) gave ${fc.stringify(fields(n))}`, expected(s));
      }
      const id = identity(n);
      first ??= id;
      if (!sameJson(id, first)) {
        fail(`'${host}' and '${spellings[0]}' give different identities`, [first, id]);
      }
    }
    return true;
  },
);

/** Two registries, one near the other (often the same but for one detail), each spelled. */
const registryPairArb = registryArb.chain((a) => fc.tuple(fc.constant(a), nearbyArb(a)))
  .chain(([a, b]) => fc.tuple(fc.constant(a), fc.constant(b), spellingArb(a), spellingArb(b)));

const distinctRegistriesDiffer = fc.property(
  registryPairArb,
  shortRepoName,
  refPart,
  ([a, b, sa, sb], name, ref) => {
    const na = parseOrFail(specInput({ host: sa, name, ...ref }), "valid name refused");
    const nb = parseOrFail(specInput({ host: sb, name, ...ref }), "valid name refused");
    const [ia, ib] = [identity(na), identity(nb)];
    if (registryText(a) === registryText(b)) {
      if (!sameJson(ia, ib)) fail(`'${sa}' and '${sb}' are one registry`, [ia, ib]);
    } else if (
      ia.text === ib.text || ia.registry === ib.registry ||
      (ia.store !== undefined && ia.store === ib.store)
    ) {
      fail(`'${sa}' (${registryText(a)}) and '${sb}' (${registryText(b)}) share an identity`, [
        ia,
        ib,
      ]);
    }
    return true;
  },
);

const AUTH_ENV = [
  "OCIPKG_AUTH_FILE",
  "DOCKER_CONFIG",
  "REGISTRY_AUTH_FILE",
  "XDG_RUNTIME_DIR",
  "XDG_CONFIG_HOME",
];

/** Run `fn` with every auth file read in a fresh temp directory; the env is restored after. */
async function withAuthFiles<T>(
  fn: (files: { ocipkg: string; docker: string; podman: string }) => Promise<T>,
): Promise<T> {
  return await withTempDir(async (tmp) => {
    const saved = AUTH_ENV.map((k) => [k, Deno.env.get(k)] as const);
    try {
      Deno.env.set("OCIPKG_AUTH_FILE", join(tmp, "ocipkg", "config.json"));
      Deno.env.set("DOCKER_CONFIG", join(tmp, "docker"));
      Deno.env.set("REGISTRY_AUTH_FILE", join(tmp, "containers", "auth.json"));
      Deno.env.set("XDG_RUNTIME_DIR", join(tmp, "run"));
      Deno.env.set("XDG_CONFIG_HOME", join(tmp, "config"));
      await Deno.mkdir(join(tmp, "docker"));
      await Deno.mkdir(join(tmp, "containers"));
      return await fn({
        ocipkg: join(tmp, "ocipkg", "config.json"),
        docker: join(tmp, "docker", "config.json"),
        podman: join(tmp, "containers", "auth.json"),
      });
    } finally {
      for (const [k, v] of saved) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
    }
  });
}

/** How an auth file may key a registry: `host[:port]`, or docker's URL forms. */
const keyFormArb = fc.oneof(
  fc.constant((host: string) => host),
  fc.tuple(
    fc.constantFrom("https://", "http://", "HTTPS://"),
    fc.constantFrom("", "/", "/v1/", "/v2/"),
  ).map(([scheme, path]) => (host: string) => `${scheme}${host}${path}`),
);

const credentialsAnySpelling = fc.asyncProperty(
  spelledRegistryArb.chain(([r, spellings]) =>
    fc.tuple(
      fc.constant(r),
      fc.constant(spellings),
      nearbyArb(r).chain((o) => spellingArb(o).map((s) => [o, s] as const)),
    )
  ),
  fc.constantFrom("ocipkg", "docker", "podman"),
  keyFormArb,
  async ([r, spellings, [other, otherSpelling]], file, keyForm) => {
    const want = registryText(r);
    await withAuthFiles(async (files) => {
      const cred = { username: "me", password: `secret for ${want}` };
      let source: string;
      if (file === "ocipkg") {
        await saveCredential(spellings[0]!, cred);
        source = `ocipkg's auth file ${files.ocipkg}`;
      } else {
        const auths = {
          [keyForm(spellings[0]!)]: { auth: btoa(`${cred.username}:${cred.password}`) },
        };
        await Deno.writeTextFile(files[file], JSON.stringify({ auths }));
        source = file === "docker"
          ? `docker config ${files.docker}`
          : `podman auth file ${files.podman}`;
      }
      for (const spelling of [...spellings, want]) {
        const found = await findCredential(spelling);
        if (!sameJson(found, { ...cred, source })) {
          fail(
            `saved under '${spellings[0]}' (${file}), findCredential('${spelling}') gave`,
            found,
          );
        }
      }
      if (registryText(other) !== want && await findCredential(otherSpelling) !== undefined) {
        fail(
          `saved under '${spellings[0]}', found for '${otherSpelling}' (${registryText(other)})`,
        );
      }
      if (file === "ocipkg") {
        if (!(await removeCredential(spellings[spellings.length - 1]!))) {
          fail(`removeCredential('${spellings[spellings.length - 1]}') found nothing to remove`);
        }
        const left = await findCredential(spellings[0]!);
        if (left !== undefined) fail(`removed, yet findCredential('${spellings[0]}') gave`, left);
      }
    });
    return true;
  },
);

const storeAnySpelling = fc.asyncProperty(
  registryPairArb.chain(([a, b, sa, sb]) =>
    fc.tuple(fc.constant([a, b, sa, sb] as const), fc.array(spellingArb(a), { maxLength: 3 }))
  ),
  fc.stringMatching(/^[a-z0-9]{1,8}(?:\/[a-z0-9]{1,8})?$/),
  fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,10}$/).filter((t) =>
    !/^sha(256|512)__/i.test(t)
  ),
  async ([[a, b, sa, sb], more], name, tag) => {
    await withTempDir(async (tmp) => {
      await Deno.mkdir(join(tmp, "pkg"));
      await Deno.writeTextFile(join(tmp, "pkg", "a.txt"), "a");
      await packDirectory(join(tmp, "pkg"), join(tmp, "img.tar"), { name: "example.com/x:1" });
      const store = new Store(join(tmp, "store"));
      const image = (host: string) => `${host}/${name}:${tag}`;
      await loadImage(join(tmp, "img.tar"), { store, name: image(sa), policy: false });
      const dir = store.imageDir(image(sa));
      for (const spelling of [sa, ...more]) {
        if (!(await store.has(image(spelling)))) {
          fail(`loaded as '${image(sa)}', store.has('${image(spelling)}') is false`);
        }
        if (store.imageDir(image(spelling)) !== dir) {
          fail(`store.imageDir('${image(spelling)}') is not '${dir}'`);
        }
      }
      const listed = (await store.list()).map((e) => String(e.name));
      const want = ImageName.parse(image(registryText(a))).toString();
      if (!sameJson(listed, [want])) fail(`store.list() after loading '${image(sa)}'`, listed);
      const same = registryText(a) === registryText(b);
      if (await store.has(image(sb)) !== same) {
        fail(`loaded as '${image(sa)}', store.has('${image(sb)}') is ${!same}`);
      }
    });
    return true;
  },
);

const NAME_CHARS = [
  ..."abz09AZ:/@._-[]__",
  ":",
  "/",
  "@",
  "sha256:",
  "sha512__",
  "localhost",
  "docker.io",
  " ",
  "\0",
  "\\",
  "..",
  "%",
  "é",
  "\u{1F600}",
];

/** Arbitrary strings, biased toward almost-names, up to 10k characters. */
const anyNameString = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.string({ maxLength: 200, unit: "binary" }),
  fc.string({ minLength: 1000, maxLength: 10_000, unit: "binary" }),
  fc.string({ unit: fc.constantFrom(...NAME_CHARS), maxLength: 200 }),
  fc.string({ unit: fc.constantFrom(...NAME_CHARS), minLength: 300, maxLength: 1100 }),
  // a valid name with a few characters inserted, replaced or dropped
  fc.tuple(
    nameSpecArb.map(specInput),
    fc.array(fc.tuple(fc.nat(), fc.constantFrom(...NAME_CHARS, ""), fc.boolean()), {
      minLength: 1,
      maxLength: 3,
    }),
  ).map(([s, edits]) => {
    for (const [at, c, replace] of edits) {
      const i = at % (s.length + 1);
      s = s.slice(0, i) + c + s.slice(replace ? i + 1 : i);
    }
    return s;
  }),
  // long repetitions that would make a backtracking regex slow
  fc.tuple(
    fc.constantFrom("a", "a-", "a.", "a_", "a__", "-", "[:", "1", "a/", "A-"),
    fc.integer({ min: 100, max: 5000 }),
    fc.constantFrom("", "!", "/x", ":5000/x", "-", "@sha256:", "/A"),
    fc.constantFrom("", "x.y/", "localhost/", "[::1]:5/"),
  ).map(([unit, n, tail, head]) => head + unit.repeat(n) + tail),
);

const nameParseTotal = fc.property(anyNameString, (input) => {
  const t0 = performance.now();
  try {
    const n = ImageName.parse(input);
    // a name that parses is usable
    n.toString();
    n.storePath();
    void n.isLoopback;
  } catch (e) {
    if (!(e instanceof UsageError)) fail(`parse(${JSON.stringify(input)}) threw ${errorName(e)}`);
  }
  const ms = performance.now() - t0;
  if (ms > 500) fail(`parse() of a ${input.length}-character string took ${ms.toFixed(0)} ms`);
  return true;
});

// ---------------------------------------------------------------------------
// 2. Manifests and indexes
// ---------------------------------------------------------------------------

const enc = new TextEncoder();
const DOC_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];
const mediaTypeParam = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...DOC_TYPES) },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
);

/** Keys that reach the validator, plus keys that are properties of Object.prototype. */
const KEYS = [
  "schemaVersion",
  "mediaType",
  "artifactType",
  "config",
  "layers",
  "manifests",
  "subject",
  "annotations",
  "digest",
  "size",
  "platform",
  "os",
  "architecture",
  "urls",
  "data",
  "__proto__",
  "toString",
  "valueOf",
  "constructor",
  "hasOwnProperty",
  "length",
];
const keyArb = fc.oneof(
  w(4, fc.constantFrom(...KEYS)),
  w(1, fc.constantFrom("toString", "valueOf", "__proto__")),
  w(1, fc.string({ maxLength: 8 })),
);
const leafArb = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.constantFrom(2, 0, -1, 1.5, 2 ** 53, 1e308, -0),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 20 }),
  fc.constantFrom(...DOC_TYPES, "a/b"),
  digestArb,
);
/** JSON values shaped like (broken) manifests: the right keys with any values. */
const jsonish: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leafArb,
    fc.array(tie("value"), { maxLength: 4 }),
    fc.array(fc.tuple(keyArb, tie("value")), { maxLength: 6 }).map((kv) => {
      const o: Record<string, unknown> = {};
      for (const [k, v] of kv) {
        Object.defineProperty(o, k, {
          value: v,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return o;
    }),
  ),
})).value;

/** Objects with the fields of a manifest, index or descriptor, each absent or any value. */
const shaped = (keys: string[], extra: Record<string, fc.Arbitrary<unknown>> = {}) =>
  fc.record(
    Object.fromEntries(keys.map((k) => [k, extra[k] ?? fc.oneof(w(3, leafArb), w(2, jsonish))])),
    { requiredKeys: [] },
  );
const shapedDescriptor = shaped(
  ["mediaType", "digest", "size", "annotations", "platform", "urls", "artifactType"],
  { digest: fc.oneof(digestArb, jsonish), size: fc.oneof(fc.nat(), leafArb) },
);
const shapedDoc = shaped(
  [
    "schemaVersion",
    "mediaType",
    "artifactType",
    "config",
    "layers",
    "manifests",
    "subject",
    "annotations",
  ],
  {
    schemaVersion: fc.oneof(w(5, fc.constant(2)), w(1, leafArb)),
    config: fc.oneof(shapedDescriptor, jsonish),
    subject: fc.oneof(shapedDescriptor, jsonish),
    layers: fc.oneof(fc.array(fc.oneof(shapedDescriptor, jsonish), { maxLength: 3 }), jsonish),
    manifests: fc.oneof(fc.array(fc.oneof(shapedDescriptor, jsonish), { maxLength: 3 }), jsonish),
  },
);

/** Bytes that print as text in counterexamples. */
function labelled(bytes: Uint8Array): Uint8Array {
  return Object.assign(bytes, {
    [fc.toStringMethod]: () => `bytes(${JSON.stringify(preview(bytes))})`,
  });
}

const badDocBytes = fc.oneof(
  shapedDoc.map((v) => enc.encode(JSON.stringify(v))),
  fc.jsonValue().map((v) => enc.encode(JSON.stringify(v) ?? "null")),
  jsonish.map((v) => enc.encode(JSON.stringify(v) ?? "null")),
  fc.uint8Array({ maxLength: 300 }),
  fc.string({ maxLength: 200 }).map((s) => enc.encode(s)),
  fc.integer({ min: 1, max: 200_000 }).map((n) => enc.encode("[".repeat(n) + "]".repeat(n))),
  fc.integer({ min: 1, max: 100_000 }).map((n) =>
    enc.encode(`{"schemaVersion":2,"layers":${"[".repeat(n)}${"]".repeat(n)}}`)
  ),
  fc.constant(null).map(() => new Uint8Array(4 * 1024 * 1024 + 1).fill(0x20)),
).map(labelled);

const manifestTotal = fc.property(badDocBytes, mediaTypeParam, (bytes, mediaType) => {
  try {
    parseManifestDocument(bytes, mediaType, "doc");
  } catch (e) {
    if (!(e instanceof FormatError)) {
      fail(`parseManifestDocument threw ${errorName(e)} for ${mediaType} on`, preview(bytes));
    }
  }
  return true;
});

const descriptorTotal = fc.property(fc.oneof(shapedDescriptor, jsonish, fc.jsonValue()), (v) => {
  try {
    validateDescriptor(v, "d");
  } catch (e) {
    if (!(e instanceof FormatError)) fail(`validateDescriptor threw ${errorName(e)} on`, v);
  }
  return true;
});

function preview(bytes: Uint8Array): string {
  const s = new TextDecoder().decode(bytes.subarray(0, 400));
  return bytes.length > 400 ? `${s}… (${bytes.length} bytes)` : s;
}

const mediaTypeArb = fc.tuple(
  fc.stringMatching(/^[\w.+-]{1,12}$/),
  fc.stringMatching(/^[\w.+-]{1,24}$/),
).map(([a, b]) => `${a}/${b}`);
const annotationsArb = fc.dictionary(
  fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom("org.opencontainers.image.title")),
  fc.string({ maxLength: 10 }),
  { maxKeys: 3 },
);
const descriptorArb = fc.record({
  mediaType: mediaTypeArb,
  digest: digestArb,
  size: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER), fc.constant(0)),
  annotations: annotationsArb,
  platform: fc.record({
    architecture: fc.constantFrom("amd64", "arm64", ""),
    os: fc.constantFrom("linux", "darwin", "windows"),
    variant: fc.constantFrom("v8", "v7"),
  }, { requiredKeys: ["architecture", "os"] }),
  artifactType: mediaTypeArb,
  urls: fc.array(fc.webUrl(), { maxLength: 2 }),
}, { requiredKeys: ["mediaType", "digest", "size"] });

interface ValidDoc {
  mediaType: string;
  doc: Record<string, unknown>;
}

const validManifestArb: fc.Arbitrary<ValidDoc> = fc.tuple(
  fc.constantFrom(...MANIFEST_TYPES),
  fc.boolean(),
  fc.record({
    config: descriptorArb,
    layers: fc.array(descriptorArb, { maxLength: 4 }),
    subject: descriptorArb,
    annotations: annotationsArb,
    artifactType: mediaTypeArb,
  }, { requiredKeys: ["config", "layers"] }),
).map(([mediaType, declare, body]) => ({
  mediaType,
  doc: { schemaVersion: 2, ...(declare ? { mediaType } : {}), ...body },
}));

const validIndexArb: fc.Arbitrary<ValidDoc> = fc.tuple(
  fc.constantFrom(...INDEX_TYPES),
  fc.boolean(),
  fc.record({
    manifests: fc.array(descriptorArb, { maxLength: 4 }),
    subject: descriptorArb,
    annotations: annotationsArb,
    artifactType: mediaTypeArb,
  }, { requiredKeys: ["manifests"] }),
).map(([mediaType, declare, body]) => ({
  mediaType,
  doc: { schemaVersion: 2, ...(declare ? { mediaType } : {}), ...body },
}));

const validDocArb = fc.oneof(validManifestArb, validIndexArb);

const manifestAccepts = fc.property(validDocArb, ({ mediaType, doc }) => {
  const text = JSON.stringify(doc);
  const plain = JSON.parse(text);
  let got;
  try {
    got = parseManifestDocument(enc.encode(text), mediaType, "doc");
  } catch (e) {
    return fail(`valid ${mediaType} refused (${errorName(e)})`, plain);
  }
  const isIndex = INDEX_TYPES.includes(mediaType);
  if (got.kind !== (isIndex ? "index" : "manifest") || got.mediaType !== mediaType) {
    fail(`valid ${mediaType} parsed as ${got.kind} ${got.mediaType}`);
  }
  const body = got.kind === "index" ? got.index : got.manifest;
  const keys = isIndex ? ["manifests", "subject"] : ["config", "layers", "subject"];
  for (const k of keys) {
    if (!sameJson((body as unknown as Record<string, unknown>)[k], plain[k])) {
      fail(`descriptors under '${k}' did not round-trip`, {
        sent: plain[k],
        got: (body as unknown as Record<string, unknown>)[k],
      });
    }
  }
  return true;
});

/** Invalid values for one descriptor field. */
const BAD_FIELDS: Record<string, fc.Arbitrary<unknown>> = {
  digest: fc.oneof(
    fc.constantFrom(
      "",
      "sha256:",
      "sha256:abc",
      "md5:d41d8cd98f00b204e9800998ecf8427e",
      "sha256",
      null,
      5,
      [],
      {},
    ),
    hex(64).map((h) => `sha256:${h.toUpperCase()}G`),
    hex(63).map((h) => `sha256:${h}`),
    hex(65).map((h) => `sha256:${h}`),
    hex(64).map((h) => `sha512:${h}`),
    hex(64).map((h) => `SHA256:${h}`),
    hex(64).map((h) => ` sha256:${h}`),
    hex(64).map((h) => `sha256:${h}\n`),
  ),
  size: fc.oneof(
    fc.integer({ max: -1 }),
    fc.double({ min: 0.001, max: 1e6, noNaN: true }).filter((x) => !Number.isInteger(x)),
    fc.constantFrom(2 ** 53, 2 ** 64, 1e300, -0.5, "1", null, true, [1], {}),
  ),
  mediaType: fc.oneof(
    fc.constantFrom(null, 1, true, [], {}, ["a/b"]),
    fc.constantFrom("", "noslash", "a/b/c", "a b/c", "/b", "a/", "a/b\n", "a\\b"),
  ),
  platform: fc.constantFrom(null, "linux", [], {}, { os: "linux" }, { architecture: "amd64" }, {
    os: 1,
    architecture: "amd64",
  }),
  annotations: fc.constantFrom(null, "x", [], { a: 1 }, { a: null }, { a: ["b"] }),
};

/** One field of a descriptor set to an invalid value, or a required field deleted. */
const badFieldArb: fc.Arbitrary<{ field: string; value?: unknown; remove?: true }> = fc.oneof(
  ...Object.entries(BAD_FIELDS).map(([field, arb]) => arb.map((value) => ({ field, value }))),
  fc.constantFrom("digest", "size", "mediaType").map((field) => ({ field, remove: true as const })),
);

const manifestRejectsBadDescriptor = fc.property(
  validDocArb,
  fc.nat(),
  badFieldArb,
  ({ mediaType, doc }, which, bad) => {
    const plain = JSON.parse(JSON.stringify(doc));
    const slots: Record<string, unknown>[] = [];
    for (const k of ["config", "subject"]) if (plain[k]) slots.push(plain[k]);
    for (const k of ["layers", "manifests"]) if (Array.isArray(plain[k])) slots.push(...plain[k]);
    fc.pre(slots.length > 0);
    const target = slots[which % slots.length]!;
    if (bad.remove) delete target[bad.field];
    else target[bad.field] = bad.value;
    const bytes = enc.encode(JSON.stringify(plain));
    try {
      parseManifestDocument(bytes, mediaType, "doc");
    } catch (e) {
      if (e instanceof FormatError) return true;
      return fail(`bad ${bad.field} gave ${errorName(e)}`, plain);
    }
    return fail(`descriptor with bad ${bad.field} was accepted`, plain);
  },
);

// ---------------------------------------------------------------------------
// 3. Extraction containment
// ---------------------------------------------------------------------------

/** One generated tar entry. */
export interface GenEntry {
  type: "file" | "dir" | "symlink" | "hardlink" | "fifo" | "char-device";
  name: string;
  mode: number;
  /** symlink/hardlink target; `@OUT@` is replaced by the absolute path of `<tmp>/root`. */
  target?: string;
  data?: string;
}

/**
 * Tar entries over a small alphabet of path components. A "hostile" layer
 * often has names and targets that must be refused (`..`, `.oci-dir`, absolute
 * paths, links out of dest, devices); a "plausible" one has only ordinary
 * names, whiteouts, and relative links with a few `..` — so that many runs
 * extract completely and the checks of the result matter, and escapes can
 * only come from combining links, replacing directories, and whiteouts.
 */
function entryArb(hostile: boolean): fc.Arbitrary<GenEntry> {
  const bad = hostile ? 1 : 0;
  const nameComponent = fc.oneof(
    w(40, fc.constantFrom("a", "b", "c")),
    w(4, fc.constantFrom(".wh.a", ".wh.b", ".wh..wh..opq")),
    w(3 * bad, fc.constantFrom(".", "..", ".oci-dir", ".wh..", ".wh.", ".wh..oci-dir", "")),
  );
  const targetComponent = fc.oneof(
    w(30, fc.constantFrom("a", "b", "c", "f", "g")),
    w(hostile ? 10 : 1, fc.constant("..")),
    w(2, fc.constantFrom(".", "")),
    w(2 * bad, fc.constantFrom("outside", "sentinel", "dest", ".oci-dir")),
    w(1, fc.constantFrom(".wh.a", ".wh..wh..opq")),
  );
  const pathArb = (part: fc.Arbitrary<string>, max: number) =>
    fc.tuple(
      fc.oneof(w(30, fc.constant("")), w(5, fc.constant("./")), w(bad, fc.constant("/"))),
      fc.array(part, { minLength: 1, maxLength: max }),
      fc.constantFrom("", "", "", "/"),
    ).map(([pre, p, post]) => pre + p.join("/") + post);
  // relative targets: a few `../` (in hostile layers sometimes a long chain), then components
  const relTarget = fc.tuple(
    fc.oneof(
      w(hostile ? 5 : 40, fc.constant(0)),
      w(hostile ? 5 : 2, fc.integer({ min: 1, max: 2 })),
      w(bad, fc.integer({ min: 3, max: 12 })),
    ),
    fc.array(targetComponent, { minLength: 1 - bad, maxLength: 4 }),
  ).map(([up, p]) => "../".repeat(up) + p.join("/"));
  const linkTarget = fc.oneof(
    w(20, relTarget),
    w(bad, pathArb(targetComponent, 4)),
    w(bad, fc.array(targetComponent, { maxLength: 3 }).map((p) => `@OUT@/${p.join("/")}`)),
    w(bad, fc.constantFrom("/", "/tmp", "", "a\\..\\..", "C:/x", "a\0b")),
  );
  const mode = fc.oneof(
    fc.constantFrom(0o644, 0o755, 0o777, 0o7777, 0o4755, 0o2755, 0o1777, 0o666, 0o000, 0o200),
    fc.integer({ min: 0, max: 0o7777 }),
  );
  const name = pathArb(nameComponent, 3);
  // in plausible layers, files and links mostly get leaf names (`f`, `g`) that no
  // entry uses as a directory, so fewer runs stop at "needs 'a' to be a directory"
  const leafName = hostile ? name : fc.oneof(
    w(1, name),
    w(
      3,
      fc.tuple(fc.array(nameComponent, { maxLength: 2 }), fc.constantFrom("f", "g", ".wh.f"))
        .map(([dirs, leaf]) => [...dirs, leaf].join("/")),
    ),
  );
  return fc.oneof(
    w(
      30,
      fc.record({
        type: fc.constant("file" as const),
        name: leafName,
        mode,
        data: fc.oneof(fc.constantFrom("", "x"), fc.string({ maxLength: 600 })),
      }),
    ),
    w(25, fc.record({ type: fc.constant("dir" as const), name, mode })),
    w(
      30,
      fc.record({
        type: fc.constant("symlink" as const),
        // a link may replace a directory (`a`) as often as it gets a leaf name
        name: fc.oneof(name, leafName),
        mode,
        target: linkTarget,
      }),
    ),
    w(
      12,
      fc.record({
        type: fc.constant("hardlink" as const),
        name: leafName,
        mode,
        // `@FILE<n>@`: the name of an earlier file entry (see scenarioArb)
        target: fc.oneof(w(8, fc.nat().map((n) => `@FILE${n}@`)), w(1, name), w(bad, linkTarget)),
      }),
    ),
    w(
      bad,
      fc.record({
        type: fc.constantFrom("fifo" as const, "char-device" as const),
        name: pathArb(nameComponent, 2),
        mode,
      }),
    ),
  );
}

/** One extraction scenario: layers sharing a budget, whiteouts on or off. */
export interface Scenario {
  /** Whether entries were drawn from the hostile alphabet (informational). */
  hostile: boolean;
  layers: GenEntry[][];
  whiteouts: boolean;
  maxEntries?: number;
  /** Chunk size the tar stream is cut into. */
  chunk: number;
}

const scenarioFor = (hostile: boolean): fc.Arbitrary<Scenario> =>
  fc.record({
    layers: fc.array(fc.array(entryArb(hostile), { minLength: 1, maxLength: 10 }), {
      minLength: 1,
      maxLength: 3,
    }),
    whiteouts: fc.boolean(),
    maxEntries: fc.oneof(
      w(10, fc.constant(undefined)),
      w(1, fc.integer({ min: 0, max: 12 })),
    ),
    chunk: fc.constantFrom(1 << 20, 512, 100, 7),
  }, { requiredKeys: ["layers", "whiteouts", "chunk"] }).map((sc) => {
    // hardlinks to `@FILE<n>@` link to the name of an earlier file entry (else become a file)
    const files: string[] = [];
    const layers = sc.layers.map((layer) =>
      layer.map((e) => {
        if (e.type === "file") files.push(e.name);
        const m = /^@FILE(\d+)@$/.exec(e.target ?? "");
        if (e.type !== "hardlink" || !m) return e;
        if (files.length) return { ...e, target: files[Number(m[1]) % files.length]! };
        return { type: "file" as const, name: e.name, mode: e.mode, data: "" };
      })
    );
    return { hostile, ...sc, layers };
  });

/** Extraction scenarios: half from plausible layers, half from hostile ones. */
export const scenarioArb: fc.Arbitrary<Scenario> = fc.oneof(scenarioFor(false), scenarioFor(true));

function rawTypeFix(h: Uint8Array, flag: string): Uint8Array {
  h[156] = flag.charCodeAt(0);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return h;
}

/** Encode generated entries as a tar stream. */
export function buildTar(entries: GenEntry[], outRoot: string): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    const linkname = (e.target ?? "").replace("@OUT@", outRoot);
    if (e.type === "fifo" || e.type === "char-device") {
      const h = tarHeader({
        name: e.name,
        type: "file",
        size: 0,
        mode: e.mode,
        mtime: 0,
        linkname,
      });
      parts.push(h.length === 512 ? rawTypeFix(h, e.type === "fifo" ? "6" : "3") : h);
      continue;
    }
    const data = enc.encode(e.data ?? "");
    const size = e.type === "file" ? data.length : 0;
    const type = e.type === "dir" ? "directory" : e.type;
    parts.push(tarHeader({ name: e.name, type, size, mode: e.mode, mtime: 0, linkname }));
    if (size) parts.push(data, tarPadding(size));
  }
  parts.push(TAR_END);
  return concat(parts);
}

function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

interface Snap {
  kind: string;
  mode: number;
  size: number;
  nlink: number;
  mtime: number | undefined;
  ino: number | null;
  link?: string;
  data?: string;
}

/** Everything observable about a tree, except what is under `skip`. */
function snapshot(dir: string, skip?: string): Map<string, Snap> {
  const out = new Map<string, Snap>();
  const walk = (rel: string) => {
    const full = rel ? join(dir, rel) : dir;
    if (skip !== undefined && full === skip) return;
    const st = Deno.lstatSync(full);
    const kind = st.isSymlink ? "symlink" : st.isDirectory ? "dir" : st.isFile ? "file" : "other";
    const snap: Snap = {
      kind,
      mode: st.mode ?? 0,
      size: st.size,
      nlink: st.nlink ?? 0,
      mtime: st.mtime?.getTime(),
      ino: st.ino,
    };
    if (st.isSymlink) snap.link = Deno.readLinkSync(full);
    if (st.isFile) snap.data = new TextDecoder().decode(Deno.readFileSync(full));
    out.set(rel || ".", snap);
    if (st.isDirectory) {
      for (const e of [...Deno.readDirSync(full)].sort((a, b) => a.name < b.name ? -1 : 1)) {
        walk(rel ? `${rel}/${e.name}` : e.name);
      }
    }
  };
  walk("");
  return out;
}

function diffSnaps(before: Map<string, Snap>, after: Map<string, Snap>): string[] {
  const diffs: string[] = [];
  for (const [k, v] of before) {
    const w = after.get(k);
    if (!w) diffs.push(`removed ${k}`);
    else if (!sameJson(v, w)) diffs.push(`changed ${k}: ${fc.stringify(v)} → ${fc.stringify(w)}`);
  }
  for (const k of after.keys()) if (!before.has(k)) diffs.push(`added ${k}`);
  return diffs;
}

const MAX_HOPS = 40;

/**
 * Where a symlink in `dest` leads, resolved component by component against the
 * disk; past a missing (or non-directory) component the rest is taken
 * lexically. Returns "escape" when it leaves dest, "reserved" when it enters
 * `.oci-dir`, else "inside".
 */
function resolveOnDisk(dest: string, linkRel: string): "escape" | "reserved" | "inside" | "loop" {
  const stack = linkRel.split("/").slice(0, -1);
  const queue = Deno.readLinkSync(join(dest, linkRel)).split("/").reverse();
  if (queue[queue.length - 1] === "") return "escape"; // absolute
  let hops = 0;
  let lexical = false;
  while (queue.length) {
    const c = queue.pop()!;
    if (c === "" || c === ".") continue;
    if (c === "..") {
      if (stack.length === 0) return "escape";
      stack.pop();
      continue;
    }
    stack.push(c);
    if (stack.length === 1 && c === ".oci-dir") return "reserved";
    if (lexical) continue;
    let st: Deno.FileInfo;
    try {
      st = Deno.lstatSync(join(dest, ...stack));
    } catch {
      lexical = true;
      continue;
    }
    if (st.isSymlink) {
      if (++hops > MAX_HOPS) return "loop";
      const next = Deno.readLinkSync(join(dest, ...stack));
      if (next.startsWith("/")) return "escape";
      stack.pop();
      queue.push(...next.split("/").reverse());
    } else if (!st.isDirectory) {
      lexical = true;
    }
  }
  return "inside";
}

/**
 * Extract a scenario into `<tmp>/root/dest` and check every invariant; throws
 * naming the broken one. Returns what happened ("ok" or the error's message).
 */
export async function checkScenario(sc: Scenario): Promise<string> {
  return await withTempDir(async (tmp) => {
    const root = join(tmp, "root");
    const dest = join(root, "dest");
    const outside = join(root, "outside");
    Deno.mkdirSync(join(outside, "a"), { recursive: true });
    Deno.writeFileSync(join(outside, "sentinel"), enc.encode("outside sentinel"));
    Deno.writeFileSync(join(outside, "a", "sentinel"), enc.encode("outside a sentinel"));
    Deno.mkdirSync(join(dest, ".oci-dir", "blobs"), { recursive: true });
    Deno.writeFileSync(join(dest, ".oci-dir", "sentinel"), enc.encode("layout sentinel"));
    Deno.writeFileSync(join(dest, ".oci-dir", "blobs", "b"), enc.encode("blob"));
    Deno.chmodSync(join(dest, ".oci-dir", "sentinel"), 0o644);
    const before = snapshot(tmp, dest);
    const layoutBefore = snapshot(join(dest, ".oci-dir"));

    const budget = new ExtractBudget(
      sc.maxEntries === undefined ? {} : { maxEntries: sc.maxEntries },
    );
    let error: unknown;
    try {
      for (const [i, layer] of sc.layers.entries()) {
        await extractLayer(chunked(buildTar(layer, root), sc.chunk), dest, {
          compression: "none",
          what: `layer ${i}`,
          reserved: [".oci-dir"],
          budget,
          whiteouts: sc.whiteouts,
        });
      }
      checkLinks(dest, budget, "image", [".oci-dir"]);
    } catch (e) {
      error = e;
    }

    const outsideDiffs = diffSnaps(before, snapshot(tmp, dest));
    if (outsideDiffs.length) fail(`outside dest changed (${errorName(error)})`, outsideDiffs);
    const layoutDiffs = diffSnaps(layoutBefore, snapshot(join(dest, ".oci-dir")));
    if (layoutDiffs.length) fail(`dest/.oci-dir changed (${errorName(error)})`, layoutDiffs);
    if (error !== undefined) {
      if (!(error instanceof OcipkgError)) fail(`extraction threw ${errorName(error)}`);
      if (!(error instanceof ArchiveError)) {
        fail(`extraction threw a non-ArchiveError ${errorName(error)}`);
      }
      return error.message;
    }
    // success: every link stays inside dest, no unsafe modes, no odd file types
    const tree = snapshot(dest, join(dest, ".oci-dir"));
    for (const [rel, s] of tree) {
      if (rel === ".") continue;
      if (s.kind === "symlink") {
        const where = resolveOnDisk(dest, rel);
        if (where === "escape" || where === "reserved") {
          fail(
            `symlink '${rel}' → '${s.link}' leads ${
              where === "escape" ? "outside dest" : "into .oci-dir"
            }`,
          );
        }
      } else if (s.kind === "other") {
        fail(`'${rel}' is neither file, directory nor symlink`);
      } else if (s.mode & 0o7022) {
        fail(`${s.kind} '${rel}' has mode ${(s.mode & 0o7777).toString(8)}`);
      }
    }
    return "ok";
  });
}

const extractContained = fc.asyncProperty(scenarioArb, async (sc) => {
  await checkScenario(sc);
  return true;
});

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
