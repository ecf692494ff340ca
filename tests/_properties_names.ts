// Properties of image names: registries in every spelling (DNS names, IPv4 and IPv6 forms,
// ports, Docker Hub's aliases), names that parse back to themselves, store paths that are safe,
// invertible and never shared, and parse() of any string ending quickly in a name or UsageError.
import fc from "fast-check";
import { UsageError } from "../lib/util/errors.ts";
import { DEFAULT_HOST, ImageName } from "../lib/oci/reference.ts";
import { Store } from "../lib/store/store.ts";
import { errorName, fail, w } from "./_property_kit.ts";

export const DOCKER_ALIASES = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/**
 * A registry as the model knows it, in canonical form: a host name (lower
 * case; `localhost`; a one-label name always with its port), an IPv4 address
 * (never 0.0.0.0), an IPv6 address (never `::` nor IPv4-mapped), or Docker
 * Hub; the port is undefined when it is the host's default one.
 */
export type Registry =
  | { kind: "name"; name: string; port?: number }
  | { kind: "ipv4"; octets: number[]; port?: number }
  | { kind: "ipv6"; groups: number[]; port?: number }
  | { kind: "hub"; port?: number }; // canonical only without a port

/** RFC 5952 text of an IPv6 address, computed here, not by the URL parser. */
export function ipv6Text(groups: number[]): string {
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
export function hostnameOf(r: Registry): string {
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
export function registryText(r: Registry): string {
  return r.port === undefined ? hostnameOf(r) : `${hostnameOf(r)}:${r.port}`;
}

export function defaultPort(r: Registry): number {
  const loopback = (r.kind === "name" && r.name === "localhost") ||
    (r.kind === "ipv4" && r.octets[0] === 127) ||
    (r.kind === "ipv6" && ipv6Text(r.groups) === "[::1]");
  return loopback ? 80 : 443;
}

export const isOneLabel = (name: string) => !name.includes(".") && name !== "localhost";

/** The model's canonical form of a registry (what canonicalRegistry must agree with). */
export function canon(r: Registry): Registry {
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

export const lower = "abcdefghijklmnopqrstuvwxyz";
// labels that never read as a number (the last one starts with a letter) nor as punycode
export const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,6}[a-z0-9])?$/)
  .filter((l) => !l.startsWith("xn--"));
export const lastLabel = fc.tuple(fc.constantFrom(...lower), label).map(([c, l]) => c + l);
export const dnsName = fc.tuple(fc.array(label, { minLength: 1, maxLength: 3 }), lastLabel)
  .map(([l, last]) => [...l, last].join("."));
export const anyPort = fc.integer({ min: 1, max: 65535 });
export const octet = fc.oneof(fc.nat(255), fc.constantFrom(0, 1, 127, 255));
export const group = fc.oneof(
  fc.constant(0),
  fc.constant(0),
  fc.nat(0xffff),
  fc.constantFrom(1, 0xffff),
);

/** A registry with a port: its default one (undefined) or another. */
export function withPort(r: Registry): fc.Arbitrary<Registry> {
  return fc.option(anyPort, { nil: undefined, freq: 2 }).map((port) => canon({ ...r, port }));
}

/** Canonical registries of every kind. */
export const registryArb: fc.Arbitrary<Registry> = fc.oneof(
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
export function anyCase(text: string): fc.Arbitrary<string> {
  return fc.array(fc.boolean(), { minLength: text.length, maxLength: text.length })
    .map((up) => [...text].map((c, i) => up[i] ? c.toUpperCase() : c).join(""));
}

/** One number of an IPv4 address: decimal, octal (`0…`) or hex (`0x…`, any case). */
export function ipv4Number(v: number): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constant(String(v)),
    fc.nat(2).map((z) => "0".repeat(z + 1) + v.toString(8)),
    fc.tuple(fc.constantFrom("0x", "0X"), fc.nat(2)).chain(([x, z]) =>
      anyCase("0".repeat(z) + v.toString(16)).map((h) => x + h)
    ),
  );
}

/** An IPv4 address in the URL parser's forms: 1 to 4 numbers, the last one filling the rest. */
export function ipv4Spelling(octets: number[]): fc.Arbitrary<string> {
  return fc.integer({ min: 1, max: 4 }).chain((parts) => {
    const head = octets.slice(0, parts - 1);
    const last = octets.slice(parts - 1).reduce((n, o) => n * 256 + o, 0);
    return fc.tuple(...[...head, last].map(ipv4Number)).map((p) => p.join("."));
  });
}

/** An IPv6 address: groups padded and in any case, a run of zeros compressed, maybe a dotted tail. */
export function ipv6Spelling(groups: number[]): fc.Arbitrary<string> {
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
export const readAsHost = (h: string) =>
  h.includes(".") || h.includes(":") || h === "localhost" || h.startsWith("[");

/** Ways to write a registry that all reach it: `host[:port]` as a user might. */
export function spellingArb(r: Registry): fc.Arbitrary<string> {
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
export const spelledRegistryArb = registryArb.chain((r) =>
  fc.tuple(fc.constant(r), fc.array(spellingArb(r), { minLength: 1, maxLength: 5 }))
);

/** A registry near another one: another port, address, name or kind (or, rarely, the same). */
export function nearbyArb(r: Registry): fc.Arbitrary<Registry> {
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
export interface NameSpec {
  /** `host[:port]` as written (any spelling), absent for a Docker Hub name without host. */
  host?: string;
  /** The registry it names, canonical. */
  registry?: Registry;
  name: string;
  tag?: string;
  digest?: string;
}

export function specInput(s: NameSpec): string {
  const host = s.host === undefined ? "" : `${s.host}/`;
  return `${host}${s.name}${s.tag !== undefined ? `:${s.tag}` : ""}${
    s.digest !== undefined ? `@${s.digest}` : ""
  }`;
}

export const word = fc.stringMatching(/^[a-z0-9]{1,6}$/);
export const longWord = fc.tuple(
  fc.integer({ min: 100, max: 255 }),
  fc.constantFrom("a", "z", "0", "9"),
)
  .map(([n, c]) => c.repeat(n));
export const separator = fc.constantFrom(".", "_", "__", "-", "--", "---");
export const component = fc.tuple(
  fc.oneof({ weight: 9, arbitrary: word }, { weight: 1, arbitrary: longWord }),
  fc.array(fc.tuple(separator, word), { maxLength: 3 }),
).map(([w, rest]) => w + rest.map(([s, x]) => s + x).join(""));
export const repoName = fc.array(component, { minLength: 1, maxLength: 4 }).map((c) => c.join("/"))
  .filter((n) => n.length <= 255);

export const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
export const digestArb = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
);
export const tagArb = fc.oneof(
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
export const hostPart: fc.Arbitrary<Pick<NameSpec, "host" | "registry">> = fc.oneof(
  w(1, fc.constant({})),
  w(6, registryArb.chain((registry) => spellingArb(registry).map((host) => ({ host, registry })))),
);

export const refPart: fc.Arbitrary<Pick<NameSpec, "tag" | "digest">> = fc.oneof(
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
export function storePathOf(n: ImageName): string[] | undefined {
  try {
    return n.storePath();
  } catch (e) {
    if (e instanceof UsageError && n.digest === undefined && /^sha(256|512)__/i.test(n.tag ?? "")) {
      return undefined;
    }
    return fail(`storePath() of '${n}' threw ${errorName(e)}`);
  }
}

export function expected(s: NameSpec) {
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

export function fields(n: ImageName) {
  return { hostname: n.hostname, port: n.port, name: n.name, tag: n.tag, digest: n.digest };
}

/** The fields that survive `toString()` (a tag given with a digest is not written). */
export function canonical(n: ImageName) {
  return { ...fields(n), tag: n.digest ? undefined : n.tag };
}

export function parseOrFail(input: string, why: string): ImageName {
  try {
    return ImageName.parse(input);
  } catch (e) {
    return fail(`${why}: parse(${JSON.stringify(input)}) threw ${errorName(e)}`);
  }
}

export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export const nameRoundTrip = fc.property(nameSpecArb, (s) => {
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

export function checkSegments(n: ImageName, segs: string[]): void {
  for (const s of segs) {
    if (
      s === "" || s === "." || s === ".." || s.includes("/") || s.includes("\\") ||
      s.includes("\0")
    ) {
      fail(`storePath() of '${n}' has an unsafe segment ${JSON.stringify(s)}`, segs);
    }
  }
}

export const storePathRoundTrip = fc.property(nameSpecArb, (s) => {
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
export const namePairArb = fc.tuple(hostPart, repoName, digestArb).chain(([h, name, shared]) => {
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

export const storePathInjective = fc.property(namePairArb, ([sa, sb]) => {
  const a = parseOrFail(specInput(sa), "valid name refused");
  const b = parseOrFail(specInput(sb), "valid name refused");
  const pa = storePathOf(a)?.join("/");
  if (pa !== undefined && pa === storePathOf(b)?.join("/") && a.toString() !== b.toString()) {
    fail(`'${a}' and '${b}' share the store path '${pa}'`);
  }
  return true;
});

export const storeDirInjective = fc.property(namePairArb, ([sa, sb]) => {
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

export const NAME_CHARS = [
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
export const anyNameString = fc.oneof(
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

export const nameParseTotal = fc.property(anyNameString, (input) => {
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
