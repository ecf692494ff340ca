// A local, throwaway Sigstore instance for keyless tests: `@sigstore/mock`'s Fulcio (a CA whose
// certificates carry an SCT from its own CT log) and Rekor, served on 127.0.0.1, and
// `@sigstore/sign` signing against them with a made-up OIDC token — the same client code a
// keyless `cosign sign` in CI runs, against stand-ins. Its trusted root names the CA, the CT log
// and the log; bundles made here verify under that root only (not under the public-good one).
// Plus the layout cosign v3 attaches a bundle to an image with (specs/BUNDLE_SPEC.md).
import { Buffer } from "node:buffer";
import { createHash, generateKeyPairSync, type KeyObject } from "node:crypto";
import {
  fulcioHandler,
  initializeCA,
  initializeCTLog,
  initializeTLog,
  rekorHandler,
} from "@sigstore/mock";
import {
  DSSEBundleBuilder,
  FulcioSigner,
  MessageSignatureBundleBuilder,
  RekorWitness,
} from "@sigstore/sign";
import { bundleToJSON } from "@sigstore/bundle";
import type { Descriptor, Manifest } from "../lib/oci/mod.ts";
import { pushBytes, pushReferrer } from "../lib/transport/mod.ts";
import type { Target } from "../mod.ts";

/** GitHub Actions' OIDC issuer. */
export const GITHUB_ISSUER = "https://token.actions.githubusercontent.com";
/** A release workflow's identity, as Fulcio writes it for GitHub Actions. */
export const RELEASE_IDENTITY =
  "https://github.com/org/libfoo/.github/workflows/release.yml@refs/tags/v1.2";

type HandlerFn = (body: string) => Promise<{
  statusCode: number;
  response: string | ArrayBufferView;
  contentType?: string;
}>;

/** A running instance. */
export interface KeylessInstance {
  /** Its URL (Fulcio, Rekor and the CT log all answer there). */
  url: string;
  /** The trusted root naming its CA, CT log and log. */
  trustedRoot: Record<string, unknown>;
  /**
   * A keyless DSSE bundle of an in-toto statement, signed as `identity` of `issuer`.
   * @param statement the statement
   * @param identity the certificate's identity (a URI)
   * @param issuer the OIDC issuer
   */
  signStatement(
    statement: Record<string, unknown>,
    identity?: string,
    issuer?: string,
  ): Promise<Record<string, unknown>>;
  /**
   * A keyless message-signature bundle over `bytes`.
   * @param bytes the artifact
   * @param identity the certificate's identity
   * @param issuer the OIDC issuer
   */
  signBytes(
    bytes: Uint8Array,
    identity?: string,
    issuer?: string,
  ): Promise<Record<string, unknown>>;
  /** Stop serving. */
  close(): Promise<void>;
}

const kp = () => generateKeyPairSync("ec", { namedCurve: "P-256" });
const der = (k: KeyObject) => k.export({ type: "spki", format: "der" }) as Buffer;
const b64 = (v: ArrayBufferView) =>
  Buffer.from(v.buffer as ArrayBuffer, v.byteOffset, v.byteLength).toString("base64");
const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

/** Start an instance on 127.0.0.1. */
export async function startKeylessInstance(): Promise<KeylessInstance> {
  const caKeys = kp(), ctKeys = kp(), logKeys = kp();
  const ctLog = await initializeCTLog(ctKeys);
  const ca = await initializeCA(caKeys, ctLog);
  const handlers = new Map<string, HandlerFn>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const h = handlers.get(new URL(req.url).pathname);
    if (!h) return new Response("not found", { status: 404 });
    const r = await h(await req.text());
    return new Response(r.response as BodyInit, {
      status: r.statusCode,
      headers: { "content-type": r.contentType ?? "application/json" },
    });
  });
  const url = `http://127.0.0.1:${server.addr.port}`;
  const log = await initializeTLog(url, logKeys);
  for (const h of [fulcioHandler(ca), rekorHandler(log)]) handlers.set(h.path, h.fn);

  const token = (identity: string, issuer: string) =>
    `${b64url({ alg: "none" })}.${
      b64url({ iss: issuer, sub: identity, aud: "sigstore", exp: Date.now() / 1000 + 600 })
    }.`;
  const signer = (identity: string, issuer: string) =>
    new FulcioSigner({
      fulcioBaseURL: url,
      identityProvider: { getToken: () => Promise.resolve(token(identity, issuer)) },
    });
  // `intoto` entries: the stand-in logs what it is sent as it is, which is what an intoto
  // entry's body is (a dsse entry's body is rewritten by the real Rekor)
  const witness = () => new RekorWitness({ rekorBaseURL: url, entryType: "intoto" });
  const start = "2020-01-01T00:00:00Z";
  const logDer = der(logKeys.publicKey);
  const trustedRoot = {
    mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    certificateAuthorities: [{
      subject: { organization: "sigstore.mock", commonName: "sigstore" },
      uri: url,
      certChain: {
        certificates: [{ rawBytes: b64(ca.rootCertificate) }],
      },
      validFor: { start },
    }],
    tlogs: [{
      baseUrl: url,
      hashAlgorithm: "SHA2_256",
      publicKey: {
        rawBytes: logDer.toString("base64"),
        keyDetails: "PKIX_ECDSA_P256_SHA_256",
        validFor: { start },
      },
      logId: { keyId: createHash("sha256").update(logDer).digest("base64") },
    }],
    ctlogs: [{
      baseUrl: url,
      hashAlgorithm: "SHA2_256",
      publicKey: {
        rawBytes: b64(ctLog.publicKey),
        keyDetails: "PKIX_ECDSA_P256_SHA_256",
        validFor: { start },
      },
      logId: { keyId: b64(ctLog.logID) },
    }],
    timestampAuthorities: [],
  };
  return {
    url,
    trustedRoot,
    async signStatement(statement, identity = RELEASE_IDENTITY, issuer = GITHUB_ISSUER) {
      const builder = new DSSEBundleBuilder({
        signer: signer(identity, issuer),
        witnesses: [witness()],
      });
      const bundle = await builder.create({
        data: Buffer.from(JSON.stringify(statement)),
        type: "application/vnd.in-toto+json",
      });
      return bundleToJSON(bundle) as unknown as Record<string, unknown>;
    },
    async signBytes(bytes, identity = RELEASE_IDENTITY, issuer = GITHUB_ISSUER) {
      const builder = new MessageSignatureBundleBuilder({
        signer: signer(identity, issuer),
        witnesses: [new RekorWitness({ rekorBaseURL: url })],
      });
      const bundle = await builder.create({ data: Buffer.from(bytes) });
      return bundleToJSON(bundle) as unknown as Record<string, unknown>;
    },
    close: () => server.shutdown(),
  };
}

/**
 * An in-toto v1 statement about an image.
 * @param digest the image's manifest digest
 * @param predicateType default cosign v3's signature
 * @param predicate default `{}`
 */
export function imageStatement(
  digest: string,
  predicateType = "https://sigstore.dev/cosign/sign/v1",
  predicate: unknown = {},
): Record<string, unknown> {
  return {
    _type: "https://in-toto.io/Statement/v1",
    subject: [{ digest: { sha256: digest.replace(/^sha256:/, "") } }],
    predicateType,
    predicate,
  };
}

/**
 * Attach a bundle to an image as cosign v3 does (specs/BUNDLE_SPEC.md): artifactType and layer
 * of the bundle's media type, the empty config, the image as subject, the content and predicate
 * type annotations.
 * @param target the image's repository (or layout)
 * @param subject the image's manifest
 * @param bundle the bundle document
 * @param options the predicate type annotation, another subject to name, extra layers
 */
export async function attachBundle(
  target: Target,
  subject: Descriptor,
  bundle: Record<string, unknown>,
  options: { predicateType?: string; layerMediaType?: string; manifestSubject?: Descriptor } = {},
): Promise<Descriptor> {
  const mediaType = "application/vnd.dev.sigstore.bundle.v0.3+json";
  const layer = await pushBytes(
    target,
    options.layerMediaType ?? mediaType,
    new TextEncoder().encode(JSON.stringify(bundle)),
  );
  const config = await pushBytes(
    target,
    "application/vnd.oci.empty.v1+json",
    new TextEncoder().encode("{}"),
  );
  const dsse = "dsseEnvelope" in bundle;
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    artifactType: mediaType,
    config,
    layers: [layer],
    subject: options.manifestSubject ?? subject,
    annotations: {
      "dev.sigstore.bundle.content": dsse ? "dsse-envelope" : "message-signature",
      ...(options.predicateType
        ? { "dev.sigstore.bundle.predicateType": options.predicateType }
        : {}),
      "org.opencontainers.image.created": new Date().toISOString(),
    },
  };
  if (options.manifestSubject) {
    // listed in the image's fallback index though it names another subject
    const { manifest: desc } = await pushReferrer(target, manifest, { referrersApi: true });
    const tag = `sha256-${subject.digest.slice(7)}`;
    const INDEX = "application/vnd.oci.image.index.v1+json";
    let manifests: unknown[] = [];
    const existing = await target.resolve(tag).catch(() => undefined);
    if (existing) {
      const body = await new Response(await target.fetch(existing)).text();
      manifests = JSON.parse(body).manifests;
    }
    const index = {
      schemaVersion: 2,
      mediaType: INDEX,
      manifests: [...manifests, { ...desc, artifactType: mediaType }],
    };
    await target.tag(
      await pushBytes(target, INDEX, new TextEncoder().encode(JSON.stringify(index))),
      tag,
    );
    return desc;
  }
  return (await pushReferrer(target, manifest)).manifest;
}
