// Properties of manifest and index validation: any bytes give a document or FormatError,
// valid documents are accepted and round-trip, and one invalid descriptor field is refused.
import fc from "fast-check";
import { FormatError } from "../lib/util/errors.ts";
import { parseManifestDocument, validateDescriptor } from "../lib/oci/manifest.ts";
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  INDEX_TYPES,
  MANIFEST_TYPES,
  OCI_INDEX,
  OCI_MANIFEST,
} from "../lib/oci/media_types.ts";
import { errorName, fail, w } from "./_property_kit.ts";
import { digestArb, hex, sameJson } from "./_properties_names.ts";

export const enc = new TextEncoder();
export const DOC_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];
export const mediaTypeParam = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...DOC_TYPES) },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
);

/** Keys that reach the validator, plus keys that are properties of Object.prototype. */
export const KEYS = [
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
export const keyArb = fc.oneof(
  w(4, fc.constantFrom(...KEYS)),
  w(1, fc.constantFrom("toString", "valueOf", "__proto__")),
  w(1, fc.string({ maxLength: 8 })),
);
export const leafArb = fc.oneof(
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
export const jsonish: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
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
export const shaped = (keys: string[], extra: Record<string, fc.Arbitrary<unknown>> = {}) =>
  fc.record(
    Object.fromEntries(keys.map((k) => [k, extra[k] ?? fc.oneof(w(3, leafArb), w(2, jsonish))])),
    { requiredKeys: [] },
  );
export const shapedDescriptor = shaped(
  ["mediaType", "digest", "size", "annotations", "platform", "urls", "artifactType"],
  { digest: fc.oneof(digestArb, jsonish), size: fc.oneof(fc.nat(), leafArb) },
);
export const shapedDoc = shaped(
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
export function labelled(bytes: Uint8Array): Uint8Array {
  return Object.assign(bytes, {
    [fc.toStringMethod]: () => `bytes(${JSON.stringify(preview(bytes))})`,
  });
}

export const badDocBytes = fc.oneof(
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

export const manifestTotal = fc.property(badDocBytes, mediaTypeParam, (bytes, mediaType) => {
  try {
    parseManifestDocument(bytes, mediaType, "doc");
  } catch (e) {
    if (!(e instanceof FormatError)) {
      fail(`parseManifestDocument threw ${errorName(e)} for ${mediaType} on`, preview(bytes));
    }
  }
  return true;
});

export const descriptorTotal = fc.property(
  fc.oneof(shapedDescriptor, jsonish, fc.jsonValue()),
  (v) => {
    try {
      validateDescriptor(v, "d");
    } catch (e) {
      if (!(e instanceof FormatError)) fail(`validateDescriptor threw ${errorName(e)} on`, v);
    }
    return true;
  },
);

export function preview(bytes: Uint8Array): string {
  const s = new TextDecoder().decode(bytes.subarray(0, 400));
  return bytes.length > 400 ? `${s}… (${bytes.length} bytes)` : s;
}

export const mediaTypeArb = fc.tuple(
  fc.stringMatching(/^[\w.+-]{1,12}$/),
  fc.stringMatching(/^[\w.+-]{1,24}$/),
).map(([a, b]) => `${a}/${b}`);
export const annotationsArb = fc.dictionary(
  fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom("org.opencontainers.image.title")),
  fc.string({ maxLength: 10 }),
  { maxKeys: 3 },
);
export const descriptorArb = fc.record({
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

export interface ValidDoc {
  mediaType: string;
  doc: Record<string, unknown>;
}

export const validManifestArb: fc.Arbitrary<ValidDoc> = fc.tuple(
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

export const validIndexArb: fc.Arbitrary<ValidDoc> = fc.tuple(
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

export const validDocArb = fc.oneof(validManifestArb, validIndexArb);

export const manifestAccepts = fc.property(validDocArb, ({ mediaType, doc }) => {
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
export const BAD_FIELDS: Record<string, fc.Arbitrary<unknown>> = {
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
export const badFieldArb: fc.Arbitrary<{ field: string; value?: unknown; remove?: true }> = fc
  .oneof(
    ...Object.entries(BAD_FIELDS).map(([field, arb]) => arb.map((value) => ({ field, value }))),
    fc.constantFrom("digest", "size", "mediaType").map((field) => ({
      field,
      remove: true as const,
    })),
  );

export const manifestRejectsBadDescriptor = fc.property(
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
