// Start real components for registry tests: docker-registry (CNCF distribution)
// on 127.0.0.1 in three auth modes, a JWT token issuer, and a fault proxy.
import { join } from "node:path";
import { encodeBase64Url } from "./_b64.ts";
import { tempDir } from "./_helpers.ts";

export const USER = "ocitest";
export const PASS = "s3cret-pass";

export interface Registry {
  /** `127.0.0.1:<port>` */
  host: string;
  /** http(s)://host */
  url: string;
  /** CA certificate (TLS mode). */
  caFile?: string;
  /** Token issuer (token mode). */
  tokens?: TokenServer;
  stop(): Promise<void>;
  /** Synchronous kill, for `unload` handlers. */
  kill(): void;
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function sh(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!r.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  }
  return new TextDecoder().decode(r.stdout);
}

/** A self-signed certificate (used as the token signing key and trust root). */
export async function makeCert(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, "signing.pem");
  const key = join(dir, "signing-key.pem");
  await sh("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "2",
    "-subj",
    "/CN=ocipkg-test-issuer",
  ]);
  return { cert, key };
}

/** A private CA and a server certificate for 127.0.0.1/localhost signed by it. */
export async function makeTls(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ca = join(dir, "ca.pem");
  const caKey = join(dir, "ca-key.pem");
  const cert = join(dir, "server.pem");
  const key = join(dir, "server-key.pem");
  const csr = join(dir, "server.csr");
  const ext = join(dir, "server.ext");
  await sh("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    caKey,
    "-out",
    ca,
    "-days",
    "2",
    "-subj",
    "/CN=ocipkg test CA",
  ]);
  await sh("openssl", [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    key,
    "-out",
    csr,
    "-subj",
    "/CN=127.0.0.1",
  ]);
  await Deno.writeTextFile(
    ext,
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
  );
  await sh("openssl", [
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca,
    "-CAkey",
    caKey,
    "-CAcreateserial",
    "-out",
    cert,
    "-days",
    "2",
    "-extfile",
    ext,
  ]);
  return { ca, cert, key };
}

export interface TokenServer {
  realm: string;
  /** Requests seen: scopes asked, whether Basic credentials came. */
  requests: { scopes: string[]; user?: string; authorization?: string }[];
  /** Awaited before each request is answered (a test holds token requests with it). */
  gate?: () => Promise<void>;
  stop(): Promise<void>;
}

function pemBody(pem: string): Uint8Array<ArrayBuffer> {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/** A small JWT issuer that the registry trusts (RS256, x5c header). */
export async function startTokenServer(
  cert: string,
  key: string,
  service: string,
): Promise<TokenServer> {
  const keyPem = await Deno.readTextFile(key);
  const certDer = pemBody(await Deno.readTextFile(cert));
  const signKey = await crypto.subtle.importKey(
    "pkcs8",
    pemBody(keyPem),
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const requests: TokenServer["requests"] = [];
  const enc = new TextEncoder();
  const ac = new AbortController();
  const port = freePort();
  const tokens: TokenServer = {
    realm: `http://127.0.0.1:${port}/token`,
    requests,
    async stop() {
      ac.abort();
      await server.finished;
    },
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, signal: ac.signal, onListen() {} },
    async (req) => {
      await tokens.gate?.();
      const url = new URL(req.url);
      const scopes = url.searchParams.getAll("scope").flatMap((s) => s.split(" ")).filter(Boolean);
      const authorization = req.headers.get("authorization") ?? undefined;
      let user: string | undefined;
      if (authorization?.startsWith("Basic ")) {
        const [u, p] = atob(authorization.slice(6)).split(":");
        if (u !== USER || p !== PASS) {
          requests.push({ scopes, authorization });
          return new Response("bad credentials", { status: 401 });
        }
        user = u;
      }
      requests.push({ scopes, user, authorization });
      // anonymous users get nothing; the test user gets what it asks for
      const access = user
        ? scopes.map((s) => {
          const [type, name, actions] = s.split(":");
          return { type, name, actions: (actions ?? "").split(",") };
        })
        : [];
      const now = Math.floor(Date.now() / 1000);
      const header = { alg: "RS256", typ: "JWT", x5c: [btoa(String.fromCharCode(...certDer))] };
      const claims = {
        iss: "ocipkg-test-issuer",
        sub: user ?? "",
        aud: service,
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: crypto.randomUUID(),
        access,
      };
      const input = `${encodeBase64Url(enc.encode(JSON.stringify(header)))}.${
        encodeBase64Url(enc.encode(JSON.stringify(claims)))
      }`;
      const sig = new Uint8Array(
        await crypto.subtle.sign("RSASSA-PKCS1-v1_5", signKey, enc.encode(input)),
      );
      return Response.json({ token: `${input}.${encodeBase64Url(sig)}`, expires_in: 300 });
    },
  );
  return tokens;
}

type RegistryOptions = { auth?: "none" | "htpasswd" | "token"; tls?: boolean };

/** Start docker-registry with a temp root on a free loopback port (retrying on a port race). */
export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  for (let attempt = 1;; attempt++) {
    try {
      return await startRegistryOnce(opts);
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }
}

async function startRegistryOnce(opts: RegistryOptions): Promise<Registry> {
  const dir = await tempDir("ocipkg-registry-");
  const port = freePort();
  const host = `127.0.0.1:${port}`;
  const lines = [
    "version: 0.1",
    "log:",
    "  level: error",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${join(dir, "data")}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: ${host}`,
  ];
  let caFile: string | undefined;
  let tokens: TokenServer | undefined;
  if (opts.tls) {
    const tls = await makeTls(dir);
    caFile = tls.ca;
    lines.push("  tls:", `    certificate: ${tls.cert}`, `    key: ${tls.key}`);
  }
  {
    const { cert, key } = opts.auth === "token" ? await makeCert(dir) : { cert: "", key: "" };
    if (opts.auth === "token") {
      tokens = await startTokenServer(cert, key, "ocipkg-test");
      lines.push(
        "auth:",
        "  token:",
        `    realm: ${tokens.realm}`,
        "    service: ocipkg-test",
        "    issuer: ocipkg-test-issuer",
        `    rootcertbundle: ${cert}`,
      );
    }
  }
  if (opts.auth === "htpasswd") {
    const line = await sh("htpasswd", ["-Bbn", USER, PASS]);
    await Deno.writeTextFile(join(dir, "htpasswd"), line);
    lines.push(
      "auth:",
      "  htpasswd:",
      "    realm: ocipkg-test",
      `    path: ${join(dir, "htpasswd")}`,
    );
  }
  await Deno.writeTextFile(join(dir, "config.yml"), lines.join("\n") + "\n");
  const child = new Deno.Command("docker-registry", {
    args: ["serve", join(dir, "config.yml")],
    // REGISTRY_* variables override the config (tests set REGISTRY_AUTH_FILE for podman)
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // drain the registry's log (an unread pipe fills up and stalls the registry), keeping the tail
  let logTail = "";
  const drained = (async () => {
    for await (const c of child.stderr.pipeThrough(new TextDecoderStream())) {
      logTail = (logTail + c).slice(-4000);
    }
  })().catch(() => {});
  const scheme = opts.tls ? "https" : "http";
  const client = caFile
    ? Deno.createHttpClient({ caCerts: [await Deno.readTextFile(caFile)] })
    : undefined;
  const deadline = Date.now() + 15000;
  while (true) {
    try {
      const r = await fetch(`${scheme}://${host}/v2/`, client ? { client } : {});
      await r.body?.cancel();
      break;
    } catch (e) {
      const exited = await Promise.race([child.status.then(() => true), Promise.resolve(false)]);
      if (exited || Date.now() > deadline) {
        try {
          child.kill();
        } catch { /* already gone */ }
        await drained;
        throw new Error(`docker-registry did not start: ${e}: ${logTail.slice(-500)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  client?.close();
  return {
    host,
    url: `${scheme}://${host}`,
    caFile,
    tokens,
    kill() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    },
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await drained;
      await tokens?.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
