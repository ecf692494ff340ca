// The public API: the entry points deno.json exports, exactly these runtime names in each (types
// are checked by `deno doc --lint` over all entry points), every name in one entry point only,
// none of the internals, and every exported function and class with a runnable example.
import { assert, assertEquals } from "./_assert.ts";
import { ROOT } from "./_helpers.ts";
import denoJson from "../deno.json" with { type: "json" };

/** Each subpath of the package, its module, and the runtime names it exports (sorted). */
const ENTRY_POINTS: Record<string, { file: string; names: string[] }> = {
  // what a library user needs: the operations, the store, targets, names and locations, errors
  ".": {
    file: "./mod.ts",
    names: [
      "ArchiveError",
      "AuthError",
      "DEFAULT_HOST",
      "FormatError",
      "ImageName",
      "KeyError",
      "MemoryTarget",
      "NotFoundError",
      "OciArchive",
      "OciDir",
      "OcipkgError",
      "RegistryError",
      "RegistryTarget",
      "RegistryTimeoutError",
      "ResourceError",
      "SignatureError",
      "Store",
      "TransferLostError",
      "UsageError",
      "VerificationError",
      "attestReference",
      "canonicalRegistry",
      "checkLock",
      "composeFiles",
      "copyImage",
      "createLocation",
      "dataDir",
      "deleteImage",
      "exportRoot",
      "fetchManifest",
      "findLockFile",
      "generateKeyFiles",
      "getImage",
      "imageName",
      "inspectAny",
      "installedImageDir",
      "inspectImage",
      "linkPackage",
      "loadImage",
      "lockImages",
      "openImage",
      "openLocation",
      "openRepository",
      "packDirectory",
      "pullImage",
      "pushImage",
      "putManifest",
      "readLockFile",
      "resolveImage",
      "resolveLocation",
      "saveBlob",
      "serve",
      "SERVE_DEFAULTS",
      "signReference",
      "tagImage",
      "toLocation",
      "verifyAttestationReference",
      "verifyBlob",
      "verifyReference",
    ],
  },
  "./oci": {
    file: "./lib/oci/mod.ts",
    names: [
      "ANNOTATION_REF_NAME",
      "ANNOTATION_TITLE",
      "OCIPKG_ARTIFACT",
      "OCIPKG_CONFIG",
      "OCIPKG_LAYER",
      "OCI_INDEX",
      "OCI_LAYER_TAR",
      "OCI_LAYER_TAR_GZIP",
      "OCI_LAYER_TAR_ZSTD",
      "OCI_MANIFEST",
      "Verifier",
      "VerifyingStream",
      "digestBytes",
      "digestOf",
      "encodeJson",
      "formatPlatform",
      "hostPlatform",
      "isDigest",
      "isRepositoryName",
      "isTag",
      "parseDigest",
      "parseManifestDocument",
      "parsePlatform",
      "platformMatches",
      "readBinaryInfo",
      "validateDescriptor",
      "verifyBytes",
    ],
  },
  "./archive": {
    file: "./lib/archive/mod.ts",
    names: [
      "DEFAULT_MAX_BYTES",
      "DEFAULT_MAX_ENTRIES",
      "DEFAULT_MAX_RATIO",
      "ExtractBudget",
      "checkLinks",
      "extractLayer",
    ],
  },
  "./transport": {
    file: "./lib/transport/mod.ts",
    names: [
      "DownloadStalls",
      "IncompleteReferrersError",
      "DEFAULT_CONCURRENCY",
      "DEFAULT_LARGE_TRANSFERS",
      "DEFAULT_RANGE_PARTS",
      "DEFAULT_RANGE_THRESHOLD",
      "DEFAULT_TIMEOUTS",
      "LARGE_BLOB",
      "RegistryClient",
      "attachArtifact",
      "configFile",
      "copy",
      "copyGraph",
      "copyReferrers",
      "discoverReferrers",
      "fetchBytes",
      "isStdio",
      "listCatalog",
      "listCatalogPages",
      "listReferrers",
      "listTagPages",
      "listTags",
      "login",
      "logout",
      "pushBytes",
      "pushReferrer",
      "referrersTag",
      "registrySettings",
      "tagVariant",
      "withTarget",
    ],
  },
  "./sign": {
    file: "./lib/sign/mod.ts",
    names: [
      "BUNDLE_MEDIA_TYPES",
      "BUNDLE_V03_MEDIA_TYPE",
      "COSIGN_SIGNATURE_ARTIFACT_TYPE",
      "COSIGN_SIGN_PREDICATE_TYPE",
      "IN_TOTO_PAYLOAD_TYPE",
      "PREDICATE_TYPES",
      "COSIGN_SIGNATURE_TYPE",
      "SIGNATURE_ANNOTATION",
      "SIMPLE_SIGNING_MEDIA_TYPE",
      "buildPayload",
      "dockerReference",
      "encodePublicKey",
      "encryptPrivateKey",
      "enforceVerification",
      "findSignatureManifests",
      "findSubject",
      "generateSigningKeyPair",
      "keyFingerprint",
      "parseBundle",
      "parsePayload",
      "parseStatement",
      "parseTrustedRoot",
      "predicateTypes",
      "publicGoodTrustedRoot",
      "readBundle",
      "readPrivateKey",
      "readPublicKey",
      "readTrustedRoot",
      "signImage",
      "signImageBundle",
      "signPayload",
      "signatureTag",
      "verifyBundle",
      "verifyImageBundles",
      "verifyPayload",
      "verifyRequirements",
      "verifySignatures",
    ],
  },
  "./native": {
    file: "./lib/native/mod.ts",
    names: [
      "buildRunnable",
      "cargoBuild",
      "cargoLink",
      "cargoLinkLines",
      "cargoPublish",
      "findLibraries",
      "installCargoShim",
      "installLauncher",
      "libraryPath",
      "openLibrary",
      "uninstallLauncher",
      "writeCmakeConfig",
      "writePkgConfig",
    ],
  },
  // the command line
  "./cli": { file: "./cli.ts", names: ["cliArgs", "main"] },
};

/** Names that must not be reachable from any entry point: internals a review found leaking. */
const INTERNAL = [
  // a way to skip hashing: only the library's own producers may vouch for a stream
  "vouch",
  "vouchedFor",
  // helpers of the CLI and of the library's own modules
  "bytesStream",
  "LAYOUT_DIR",
  "oneLine",
  "printable",
  "systemReason",
  "trackTemp",
  "releaseTemp",
  "removeTempsSync",
  "readCapped",
  "teeBounded",
  "using",
  "withTargetSync",
  "tarPadding",
  "TAR_END",
  "tarHeader",
  "readTar",
  "stripUndefined",
  "MONOLITHIC_MAX",
  "retryAfterMs",
  "ReferenceNotFound",
  "sniffManifestType",
  "Limiter",
  "decompress",
  "safeEntryPath",
  "walkDirectory",
  "verifyWithAnyKey",
  "isVerified",
  "readPublicKeyFile",
  "loadSigstore",
  "withDefaultDigest",
];

const modules = async () =>
  await Promise.all(
    Object.entries(ENTRY_POINTS).map(async ([sub, e]) => {
      const mod: Record<string, unknown> = await import(new URL(e.file, `file://${ROOT}/`).href);
      return { sub, names: Object.keys(mod).sort() };
    }),
  );

Deno.test("public API: deno.json exports exactly these entry points", () => {
  assertEquals(
    denoJson.exports,
    Object.fromEntries(Object.entries(ENTRY_POINTS).map(([sub, e]) => [sub, e.file])),
  );
});

Deno.test("public API: each entry point exports exactly its documented names", async () => {
  for (const { sub, names } of await modules()) {
    assertEquals(names, [...ENTRY_POINTS[sub]!.names].sort(), `exports of '${sub}'`);
  }
});

Deno.test("public API: every name has one home, and no internal is reachable", async () => {
  const home = new Map<string, string>();
  for (const { sub, names } of await modules()) {
    for (const n of names) {
      assert(!home.has(n), `'${n}' is exported by both '${home.get(n)}' and '${sub}'`);
      home.set(n, sub);
    }
  }
  assertEquals(INTERNAL.filter((n) => home.has(n)).map((n) => `${n} (${home.get(n)})`), []);
});

interface DocNode {
  name: string;
  declarations: { kind: string; jsDoc?: { tags?: { kind: string; doc?: string }[] } }[];
}

Deno.test("public API: every exported function and class has a runnable example", async () => {
  const files = Object.values(ENTRY_POINTS).map((e) => e.file);
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", ...files],
    cwd: ROOT,
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(r.success, new TextDecoder().decode(r.stderr));
  const doc: { nodes: Record<string, { symbols: DocNode[] }> } = JSON.parse(
    new TextDecoder().decode(r.stdout),
  );
  const missing: string[] = [];
  let checked = 0;
  for (const [file, { symbols }] of Object.entries(doc.nodes)) {
    for (const s of symbols) {
      for (const d of s.declarations) {
        if (d.kind !== "function" && d.kind !== "class") continue;
        checked++;
        // a ```ts block runs under `deno test --doc` (```ts ignore would only be skipped)
        const ok = d.jsDoc?.tags?.some((t) => t.kind === "example" && /^```ts\n/.test(t.doc ?? ""));
        if (!ok) missing.push(`${s.name} (${file.replace(`file://${ROOT}/`, "")})`);
      }
    }
  }
  assert(checked > 80, `only ${checked} functions and classes found`);
  assertEquals(missing, [], "exported without a runnable @example");
});
