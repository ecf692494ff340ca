/**
 * How the registry client reaches a registry — http or https, and which CA
 * file it trusts — decided once from the caller's options, the config file's
 * `registries` entry and the default ({@link chooseScheme}); and what a failed
 * connection means in those terms ({@link explainConnection}): a registry that
 * speaks the other scheme (checked with one small probe), or a certificate
 * ocipkg's TLS (rustls) refuses, with the fix in one line.
 *
 * The order: an option (`plainHttp`, `caFile`; the CLI's flags) wins over the
 * config entry, which wins over the default — https, except plain http for a
 * loopback host given no CA file.
 *
 * @module
 */
import { isLoopbackHost } from "../../oci/reference.ts";
import type { RegistrySettings } from "../config.ts";
import { causeChain } from "./http.ts";
import { Alarm } from "../../util/timer.ts";

/** How the options name `plainHttp` and `caFile` in messages (the CLI: its flags). */
export interface OptionNames {
  /** Default `plainHttp option`; the CLI passes `--plain-http` (`copy`: `--from-plain-http`, …). */
  plainHttp?: string;
  /** Default `caFile option`; the CLI passes `--ca-file`. */
  caFile?: string;
}

/** The scheme and CA file of a client, and what chose them (for advice). */
export interface SchemeChoice {
  /** The registry, canonical `host[:port]`. */
  registry: string;
  /** https (true) or plain http. */
  https: boolean;
  /** What chose the scheme: the caller's option, the config entry, or the default. */
  schemeFrom: "option" | "config" | "default";
  /** The CA file trusted (https only). */
  caFile?: string;
  /** What gave the CA file. */
  caFrom?: "option" | "config";
  /** The config file's entry for the registry, if any. */
  settings?: RegistrySettings;
  /** The config file, named when an entry is suggested. */
  configFile: string;
  /** The option names for messages. */
  names: Required<OptionNames>;
}

/**
 * Decide a client's scheme and CA file.
 *
 * @param registry canonical `host[:port]`
 * @param options the caller's `plainHttp`, `caFile` and their names
 * @param settings the config file's entry for the registry
 * @param configFile the config file (for advice)
 * @returns the choice
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chooseScheme } from "./scheme.ts";
 * const settings = { registry: "localhost:5000", plainHttp: true, mirrors: [], source: "entry" };
 * assert.equal(chooseScheme("localhost:5000", {}, undefined, "c.json").https, false); // loopback
 * assert.equal(chooseScheme("localhost:5000", { caFile: "ca.pem" }, undefined, "c.json").https, true);
 * // the config entry's plainHttp wins over a CA file given for every registry
 * assert.equal(chooseScheme("localhost:5000", { caFile: "ca.pem" }, settings, "c.json").https, false);
 * // and an explicit option over the config entry
 * assert.equal(chooseScheme("localhost:5000", { plainHttp: false }, settings, "c.json").https, true);
 * ```
 */
export function chooseScheme(
  registry: string,
  options: { plainHttp?: boolean; caFile?: string; optionNames?: OptionNames },
  settings: RegistrySettings | undefined,
  configFile: string,
): SchemeChoice {
  const names = {
    plainHttp: options.optionNames?.plainHttp ?? "plainHttp option",
    caFile: options.optionNames?.caFile ?? "caFile option",
  };
  const choice: SchemeChoice = {
    registry,
    https: true,
    schemeFrom: "default",
    settings,
    configFile,
    names,
  };
  if (options.caFile !== undefined) {
    choice.caFile = options.caFile;
    choice.caFrom = "option";
  } else if (settings?.caFile !== undefined) {
    choice.caFile = settings.caFile;
    choice.caFrom = "config";
  }
  if (options.plainHttp !== undefined) {
    choice.https = !options.plainHttp;
    choice.schemeFrom = "option";
  } else if (settings?.plainHttp !== undefined) {
    choice.https = !settings.plainHttp;
    choice.schemeFrom = "config";
  } else if (settings?.caFile !== undefined) {
    choice.https = true; // the entry's CA file says it speaks TLS
    choice.schemeFrom = "config";
  } else {
    // loopback hosts default to http, unless a CA file says the registry speaks TLS
    choice.https = !(isLoopbackHost(registry) && options.caFile === undefined);
  }
  if (!choice.https) {
    delete choice.caFile;
    delete choice.caFrom;
  }
  return choice;
}

/** What a failed connection's messages tell of the registry's scheme. */
function mismatchOf(message: string, https: boolean): boolean {
  return https
    // rustls read a record that is no TLS: an http server answered the ClientHello
    ? /InvalidContentType|received corrupt message/i.test(message)
    // hyper read an answer that is no HTTP: a TLS server's alert
    : /invalid HTTP version parsed|invalid HTTP status-code parsed/i.test(message);
}

/**
 * Which scheme a server speaks, asked once with a short timeout: `https` when
 * a TLS handshake gets a TLS answer (even one with a certificate ocipkg does
 * not trust), `http` when a plain request gets an HTTP answer.
 *
 * @param hostname the host (IPv6 with or without brackets)
 * @param port the port
 * @param guess the scheme to try
 * @param timeoutMs how long to wait
 * @returns whether the server speaks `guess`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { speaks } from "./scheme.ts";
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("hi"));
 * assert.equal(await speaks("127.0.0.1", server.addr.port, "http"), true);
 * assert.equal(await speaks("127.0.0.1", server.addr.port, "https"), false);
 * await server.shutdown();
 * ```
 */
export async function speaks(
  hostname: string,
  port: number,
  guess: "http" | "https",
  timeoutMs = 3000,
): Promise<boolean> {
  const host = hostname.replace(/^\[(.*)\]$/, "$1");
  let conn: Deno.Conn | undefined;
  const timer = new Alarm();
  const timeout = new Promise<never>((_, reject) => {
    timer.set(timeoutMs, () => {
      try {
        conn?.close();
      } catch { /* closed */ }
      reject(new Error("timed out"));
    });
  });
  try {
    if (guess === "https") {
      const tls = Deno.connectTls({ hostname: host, port });
      tls.catch(() => {});
      conn = await Promise.race([tls, timeout]);
      try {
        await Promise.race([(conn as Deno.TlsConn).handshake(), timeout]);
        return true;
      } catch (e) {
        // a certificate refused is a TLS answer all the same
        return /certificate|CaUsedAsEndEntity|UnknownIssuer|NotValidForName|BadSignature|Expired/i
          .test(causeChain(e));
      }
    }
    const tcp = Deno.connect({ hostname: host, port });
    tcp.catch(() => {});
    conn = await Promise.race([tcp, timeout]);
    const hostHeader = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    await Promise.race([
      conn.write(new TextEncoder().encode(`HEAD /v2/ HTTP/1.0\r\nHost: ${hostHeader}\r\n\r\n`)),
      timeout,
    ]);
    const buf = new Uint8Array(5);
    let n = 0;
    while (n < 5) {
      const r = await Promise.race([conn.read(buf.subarray(n)), timeout]);
      if (r === null) break;
      n += r;
    }
    return new TextDecoder().decode(buf.subarray(0, n)) === "HTTP/";
  } catch {
    return false;
  } finally {
    timer.clear();
    try {
      conn?.close();
    } catch { /* closed */ }
  }
}

/** An example certificate command for a host: CA:FALSE, the host in subjectAltName. */
function certificateCommand(hostname: string): string {
  const h = hostname.replace(/^\[(.*)\]$/, "$1");
  const san = /^[\d.]+$/.test(h) || h.includes(":")
    ? `IP:${h}`
    : h === "localhost"
    ? "DNS:localhost,IP:127.0.0.1"
    : `DNS:${h}`;
  return `openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=${h} ` +
    `-addext subjectAltName=${san} -addext basicConstraints=critical,CA:FALSE ` +
    `-keyout server.key -out server.crt`;
}

/** Where a `registries` entry would go, for advice. */
function entryFor(c: SchemeChoice): string {
  return c.settings
    ? `the ${c.settings.source}`
    : `a registries entry for '${c.registry}' in ${c.configFile}`;
}

/**
 * A failed connection explained, when the failure tells something the user
 * can fix: the registry speaks the other scheme (confirmed by {@link speaks}),
 * or its certificate is one ocipkg refuses or does not trust.
 *
 * @param failure what the connection failed with
 * @param c the client's scheme choice
 * @param probe whether to ask the server which scheme it speaks (default yes)
 * @returns one line (after `cannot reach <registry>: `), or undefined
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chooseScheme, explainConnection } from "./scheme.ts";
 * const c = chooseScheme("ghcr.io", { optionNames: { caFile: "--ca-file" } }, undefined, "c.json");
 * const e = new TypeError("fetch failed", { cause: new Error("invalid peer certificate: UnknownIssuer") });
 * assert.match(await explainConnection(e, c, false) ?? "", /^TLS certificate not trusted \(UnknownIssuer\); give .* --ca-file/);
 * ```
 */
export async function explainConnection(
  failure: unknown,
  c: SchemeChoice,
  probe = true,
): Promise<string | undefined> {
  const m = causeChain(failure);
  const url = new URL(`${c.https ? "https" : "http"}://${c.registry}`);
  const hostname = url.hostname;
  const port = Number(url.port || (c.https ? 443 : 80));
  if (mismatchOf(m, c.https)) {
    const other = c.https ? "http" : "https";
    if (probe && !(await speaks(hostname, port, other))) return undefined;
    return speaksOther(c);
  }
  if (!c.https) return undefined;
  if (/CaUsedAsEndEntity/.test(m)) {
    return `its TLS certificate is a CA certificate (basicConstraints CA:TRUE, what ` +
      `'openssl req -x509' makes unless told otherwise) used as the server's own, which ` +
      `ocipkg's TLS (rustls) refuses even when trusted; give the server a certificate with ` +
      `CA:FALSE and a subjectAltName, e.g. '${certificateCommand(hostname)}', and trust ` +
      `server.crt with ${c.caFrom === "config" ? `"caFile" in ${entryFor(c)}` : c.names.caFile}`;
  }
  if (/not valid for name|NotValidForName|not valid for any names/i.test(m)) {
    return `its TLS certificate does not name ${hostname} in its subjectAltName (rustls does ` +
      `not read the CN); give the server one that does, e.g. '${certificateCommand(hostname)}'`;
  }
  const untrusted = /UnknownIssuer|BadSignature|unknown issuer/i.exec(m);
  if (untrusted) {
    const reason = untrusted[0];
    if (c.caFile !== undefined) {
      return `TLS certificate not trusted (${reason}): it is not signed by the CA in ${c.caFile} ` +
        `(from ${c.caFrom === "config" ? `"caFile" in ${entryFor(c)}` : c.names.caFile}); ` +
        `give the CA that signed it, or the server's own self-signed certificate`;
    }
    return `TLS certificate not trusted (${reason}); give the CA that signed it (or the ` +
      `server's self-signed certificate) with ${c.names.caFile}, or "caFile" in ${entryFor(c)}`;
  }
  return undefined;
}

/**
 * The registry speaks the scheme the client does not: how to switch.
 *
 * @param c the client's scheme choice
 * @returns one line
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chooseScheme, speaksOther } from "./scheme.ts";
 * const names = { plainHttp: "--plain-http", caFile: "--ca-file" };
 * const c = chooseScheme("localhost:5003", { plainHttp: true, optionNames: names }, undefined, "c.json");
 * assert.equal(speaksOther(c), "localhost:5003 speaks https, not plain http; drop --plain-http");
 * ```
 */
export function speaksOther(c: SchemeChoice): string {
  const r = c.registry;
  if (!c.https) {
    if (c.schemeFrom === "option") {
      return `${r} speaks https, not plain http; drop ${c.names.plainHttp}`;
    }
    if (c.schemeFrom === "config") {
      return `${r} speaks https, not plain http; drop "plainHttp" from the ${c.settings!.source}`;
    }
    return `${r} speaks https, not plain http (a loopback registry is reached over plain http ` +
      `unless a CA file is given); give the CA of its certificate with ${c.names.caFile}, or ` +
      `"caFile" in ${entryFor(c)}`;
  }
  if (c.schemeFrom === "option") {
    return `${r} speaks plain http, not https (https was asked for); use ${c.names.plainHttp}`;
  }
  if (c.schemeFrom === "config") {
    return `${r} speaks plain http, not https; set "plainHttp": true (and no "caFile") in the ${
      c.settings!.source
    }`;
  }
  return `${r} speaks plain http, not https; use ${c.names.plainHttp} or "plainHttp": true in ${
    entryFor(c)
  }${c.caFrom === "option" ? ` (https because of ${c.names.caFile})` : ""}`;
}
