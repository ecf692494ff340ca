import { assertEquals, assertThrows } from "./_assert.ts";
import { FormatError } from "../mod.ts";
import { OCI_INDEX, OCI_MANIFEST, parseManifestDocument } from "../lib/oci/mod.ts";

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const desc = {
  mediaType: "application/x-unknown+thing",
  digest: "sha256:" + "0".repeat(64),
  size: 3,
};

Deno.test("manifest: parses manifests and indexes; unknown media types are opaque", () => {
  const m = parseManifestDocument(
    enc({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: desc, layers: [desc] }),
    OCI_MANIFEST,
    "m",
  );
  assertEquals(m.kind, "manifest");
  const i = parseManifestDocument(
    enc({
      schemaVersion: 2,
      manifests: [{ ...desc, platform: { os: "linux", architecture: "amd64" } }],
    }),
    OCI_INDEX,
    "i",
  );
  assertEquals(i.kind, "index");
});

Deno.test("manifest: CVE-2021-41190 — mediaType must agree with descriptor and content", () => {
  // declared index, content is a manifest
  assertThrows(
    () =>
      parseManifestDocument(
        enc({ schemaVersion: 2, mediaType: OCI_INDEX, config: desc, layers: [] }),
        OCI_INDEX,
        "x",
      ),
    FormatError,
  );
  // served as manifest, declares index
  assertThrows(
    () =>
      parseManifestDocument(
        enc({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }),
        OCI_MANIFEST,
        "x",
      ),
    FormatError,
    "disagrees",
  );
  // ambiguous: both manifests and layers
  assertThrows(
    () =>
      parseManifestDocument(
        enc({ schemaVersion: 2, manifests: [], config: desc, layers: [] }),
        OCI_MANIFEST,
        "x",
      ),
    FormatError,
  );
  assertThrows(
    () =>
      parseManifestDocument(
        enc({ schemaVersion: 2, manifests: [], config: desc, layers: [] }),
        OCI_INDEX,
        "x",
      ),
    FormatError,
  );
});

Deno.test("manifest: rejects bad descriptors and non-JSON", () => {
  assertThrows(
    () => parseManifestDocument(new TextEncoder().encode("<html>"), OCI_MANIFEST, "doc"),
    FormatError,
    "doc: not valid JSON",
  );
  assertThrows(
    () =>
      parseManifestDocument(
        enc({ schemaVersion: 2, config: { ...desc, size: -1 }, layers: [] }),
        OCI_MANIFEST,
        "x",
      ),
    FormatError,
    "invalid size",
  );
  assertThrows(
    () =>
      parseManifestDocument(
        enc({ schemaVersion: 2, config: { ...desc, digest: "sha256:x" }, layers: [] }),
        OCI_MANIFEST,
        "x",
      ),
    FormatError,
  );
  assertThrows(
    () =>
      parseManifestDocument(enc({ schemaVersion: 1, config: desc, layers: [] }), OCI_MANIFEST, "x"),
    FormatError,
    "schemaVersion",
  );
});
