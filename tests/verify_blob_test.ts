// `ocipkg verify-blob` end to end with no network and nothing from ../shared: a file signed with
// a fresh key and "logged" in a throwaway log whose trusted root is given with --trusted-root
// (tests/_sigstore_bundle.ts), then every way that can go wrong — another file, another key, a
// forged log entry, a log the root does not trust (yet) — each refused in one line, exit 1; usage
// errors exit 2. The Sigstore conformance suite (tests/sigstore_conformance_test.ts) covers
// keyless bundles, DSSE, Rekor v2 and timestamps.
import { join } from "node:path";
import { generateKeyPairSync } from "node:crypto";
import { assert, assertEquals } from "./_assert.ts";
import { runCli, tempDir } from "./_helpers.ts";
import { keyedBundle } from "./_sigstore_bundle.ts";
import {
  digestOf,
  keyFingerprint,
  parseBundle,
  parseTrustedRoot,
  verifyBundle,
} from "./_internal.ts";

const DEFAULT_IDENTITY = "https://github.com/org/repo/.github/workflows/release.yml@refs/tags/v1.2";
const DEFAULT_ISSUER = "https://token.actions.githubusercontent.com";

/** One error line, no stack trace, matching `re`. */
function oneLine(stderr: string, re: RegExp): void {
  const lines = stderr.trim().split("\n");
  assertEquals(lines.length, 1, stderr);
  assert(re.test(lines[0]!), stderr);
  assert(!stderr.includes("    at "), stderr);
}

/** A work dir with a.txt, its bundle, the log's trusted root and the signing key's cosign.pub. */
async function signedFile(mutate: (k: ReturnType<typeof keyedBundle>) => void = () => {}) {
  const dir = await tempDir();
  const file = join(dir, "a.txt");
  const bytes = new TextEncoder().encode("hello\n");
  await Deno.writeFile(file, bytes);
  const k = keyedBundle(bytes);
  mutate(k);
  await Deno.writeTextFile(join(dir, "a.txt.sigstore.json"), JSON.stringify(k.bundle));
  await Deno.writeTextFile(join(dir, "root.json"), JSON.stringify(k.trustedRoot));
  await Deno.writeTextFile(join(dir, "cosign.pub"), k.publicKeyPem);
  const args = (f = file) => [
    "verify-blob",
    f,
    "--bundle",
    join(dir, "a.txt.sigstore.json"),
    "--key",
    join(dir, "cosign.pub"),
    "--trusted-root",
    join(dir, "root.json"),
  ];
  return { dir, file, bytes, k, args };
}

Deno.test("verify-blob: a keyed bundle verifies with its key and its log's trusted root", async () => {
  const s = await signedFile();
  try {
    const fp = await keyFingerprint(s.k.publicKeyPem, "cosign.pub");
    let r = await runCli(s.args());
    assertEquals(r.code, 0, r.stderr);
    assertEquals(
      r.stdout.trim(),
      `Verified ${s.file} (${digestOf(s.bytes)}): signed by key ${
        join(s.dir, "cosign.pub")
      } (${fp}), logged in https://rekor.test.invalid #42`,
    );
    r = await runCli([...s.args(), "--json"]);
    assertEquals(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assertEquals(j.signer, { kind: "key", path: join(s.dir, "cosign.pub"), fingerprint: fp });
    assertEquals(j.tlogEntries, [
      { log: "https://rekor.test.invalid", logIndex: "42", kind: "hashedrekord 0.0.1" },
    ]);
    assertEquals(j.timestamps.length, 1);
    // the library, the key as PEM text
    const v = await verifyBundle(parseBundle(JSON.stringify(s.k.bundle), "b"), s.bytes, {
      key: s.k.publicKeyPem,
    }, { trustedRoot: parseTrustedRoot(JSON.stringify(s.k.trustedRoot), "root") });
    assertEquals(v.signer, { kind: "key", fingerprint: fp });
    assertEquals(v.digest, digestOf(s.bytes));
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("verify-blob: another file, another key, a forged entry, an untrusted log: exit 1, why", async () => {
  const s = await signedFile();
  try {
    // another file
    const other = join(s.dir, "b.txt");
    await Deno.writeTextFile(other, "hellO\n");
    let r = await runCli(s.args(other));
    assertEquals(r.code, 1, r.stderr);
    oneLine(
      r.stderr,
      /bundle .*a\.txt\.sigstore\.json signs sha256:[0-9a-f]{64}, not .*b\.txt \(sha256:/,
    );
    // another key
    const pub = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey;
    await Deno.writeTextFile(
      join(s.dir, "other.pub"),
      pub.export({ type: "spki", format: "pem" }).toString(),
    );
    r = await runCli([
      ...s.args().slice(0, 4),
      "--key",
      join(s.dir, "other.pub"),
      ...s.args().slice(6),
    ]);
    assertEquals(r.code, 1, r.stderr);
    oneLine(
      r.stderr,
      /a\.txt\.sigstore\.json was not signed with key .*other\.pub \(sha256:[0-9a-f]{64}\)$/,
    );
    // no such file: not found (3)
    r = await runCli(s.args(join(s.dir, "absent.txt")));
    assertEquals(r.code, 3, r.stderr);
    oneLine(r.stderr, /artifact '.*absent\.txt' does not exist/);
    // the shipped public-good root does not know this log
    r = await runCli(s.args().slice(0, 6));
    assertEquals(r.code, 1, r.stderr);
    oneLine(r.stderr, /does not verify: inclusion promise could not be verified/);
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
  const forged = [
    // the entry's time moved: its signed entry timestamp no longer verifies
    (k: ReturnType<typeof keyedBundle>) => {
      const vm = k.bundle.verificationMaterial as { tlogEntries: { integratedTime: string }[] };
      vm.tlogEntries[0]!.integratedTime = String(Number(vm.tlogEntries[0]!.integratedTime) - 3600);
    },
    // the log's key valid only from tomorrow
    (k: ReturnType<typeof keyedBundle>) => {
      const tlogs = k.trustedRoot.tlogs as { publicKey: { validFor: { start: string } } }[];
      tlogs[0]!.publicKey.validFor.start = new Date(Date.now() + 86400_000).toISOString();
    },
  ];
  for (const mutate of forged) {
    const f = await signedFile(mutate);
    try {
      const r = await runCli(f.args());
      assertEquals(r.code, 1, r.stderr);
      oneLine(r.stderr, /does not verify: inclusion promise could not be verified/);
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  }
});

Deno.test("verify-blob: usage errors exit 2, missing files exit 1 or 3, in one line", async () => {
  const tmp = await tempDir();
  try {
    const file = join(tmp, "a.txt");
    await Deno.writeTextFile(file, "hello\n");
    const id = ["--certificate-identity", DEFAULT_IDENTITY];
    const iss = ["--certificate-oidc-issuer", DEFAULT_ISSUER];
    const cases: [string[], number, RegExp][] = [
      [["verify-blob", file, ...id, ...iss], 2, /missing --bundle/],
      [
        ["verify-blob", file, "--bundle", "b.json"],
        2,
        /give --key <cosign\.pub>, or --certificate-identity/,
      ],
      [["verify-blob", file, "--bundle", "b.json", ...id], 2, /give the OIDC issuer/],
      [["verify-blob", file, "--bundle", "b.json", "--key", "k.pub", ...id, ...iss], 2, /not both/],
      [
        [
          "verify-blob",
          file,
          "--bundle",
          "b.json",
          ...id,
          "--certificate-identity-regexp",
          "x",
          ...iss,
        ],
        2,
        /--certificate-identity or --certificate-identity-regexp, not both/,
      ],
      [
        ["verify-blob", file, "--bundle", join(tmp, "absent.json"), ...id, ...iss],
        1,
        /bundle .*absent\.json does not exist/,
      ],
      [
        ["verify-blob", file, "--bundle", file, ...id, ...iss],
        1,
        /bundle .*a\.txt is not valid JSON/,
      ],
      [["verify-blob", file, "--bundle", tmp, ...id, ...iss], 1, /is not a regular file/],
    ];
    for (const [args, code, re] of cases) {
      const r = await runCli(args);
      assertEquals(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assertEquals(lines.length, 1, r.stderr);
      assert(re.test(lines[0]!), r.stderr);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
