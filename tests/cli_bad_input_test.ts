// Every bad input: a one-line error naming the culprit, non-zero exit, no stack
// trace, and the store unchanged.
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import {
  encodeJson,
  encodePublicKey,
  generateSigningKeyPair,
  OCI_MANIFEST,
  OciDir,
  OCIPKG_ARTIFACT,
  OCIPKG_CONFIG,
  OCIPKG_LAYER,
  packDirectory,
  pushBytes,
  TAR_END,
  tarHeader,
  tarPadding,
} from "./_internal.ts";
import { listTree, runCli, samplePackage, tempDir, withTempDir } from "./_helpers.ts";

// what is not there (a path, a blob, an image in a layout) exits 3; other failures 1
const NOT_FOUND = /does not exist|is missing|lists no image|is not an OCI layout|not found/;

async function expectError(
  args: string[],
  culprit: string,
  code = NOT_FOUND.test(culprit) ? 3 : 1,
  cwd?: string,
) {
  const data = await tempDir();
  const r = await runCli(args, { dataHome: data, cwd });
  assertEquals(r.code, code, `${args.join(" ")}: ${r.stderr}`);
  const lines = r.stderr.trim().split("\n");
  assertEquals(lines.length, 1, `one line expected: ${r.stderr}`);
  assert(lines[0]!.startsWith("error: "), r.stderr);
  assertStringIncludes(lines[0]!, culprit);
  assertEquals(await listTree(data), [], "store unchanged");
  return lines[0]!;
}

/** Whether text holds a control character (newlines and tabs allowed when `multiline`). */
function hasControl(text: string, multiline = false): boolean {
  return [...text].some((c) => {
    const n = c.codePointAt(0)!;
    if (multiline && (c === "\n" || c === "\t")) return false;
    return n < 0x20 || (n >= 0x7f && n <= 0x9f) || n === 0x202e;
  });
}

async function packedDir() {
  const dir = join(await tempDir(), "layout");
  const r = await packDirectory(await samplePackage(await tempDir()), dir, {
    name: "example.com/x:1",
    format: "dir",
  });
  const layout = await OciDir.open(dir);
  const m = JSON.parse(await Deno.readTextFile(layout.blobPath(r.digest)));
  return { dir, layout, layer: m.layers[0].digest as string };
}

Deno.test("bad input: missing path", async () => {
  await expectError(["load", "/nonexistent/x.tar"], "'/nonexistent/x.tar' does not exist");
  await expectError(
    ["pack", "/nonexistent/dir", "/tmp/out.tar"],
    "'/nonexistent/dir' does not exist",
  );
  await expectError(["inspect", "oci:/nonexistent/layout"], "'/nonexistent/layout' does not exist");
  // an output in a directory that is not there: the missing directory is named
  const src = await tempDir();
  await Deno.writeTextFile(join(src, "a.txt"), "a");
  await expectError(
    ["pack", src, "/nonexistent/dir/out.tar"],
    "cannot write '/nonexistent/dir/out.tar': its directory '/nonexistent/dir' does not exist",
  );
});

Deno.test("bad input: a directory where a file is expected, a file where a directory is", async () => {
  const d = await tempDir();
  await Deno.writeTextFile(join(d, "f"), "x");
  await expectError(["compose", d, "-o", join(d, "o.tar")], `'${d}' is not a regular file`, 2);
  await expectError(
    ["pack", join(d, "f"), join(d, "o.tar")],
    `'${join(d, "f")}' is not a directory`,
    2,
  );
  await expectError(["load", d], `oci-dir '${d}' is not an OCI layout`);
  assertEquals(
    (await Array.fromAsync(Deno.readDir(d))).map((e) => e.name),
    ["f"],
    "no output left behind",
  );
});

Deno.test("bad input: a corrupt tar and a non-layout tar", async () => {
  const d = await tempDir();
  const junk = new Uint8Array(4096);
  crypto.getRandomValues(junk);
  await Deno.writeFile(join(d, "junk.tar"), junk);
  await expectError(
    ["load", join(d, "junk.tar")],
    `oci-archive '${join(d, "junk.tar")}' is corrupt`,
  );
  const plain = [
    tarHeader({ name: "a", type: "file", size: 1, mode: 0o644, mtime: 0, linkname: "" }),
    new Uint8Array([65]),
    tarPadding(1),
    TAR_END,
  ];
  await Deno.writeFile(join(d, "plain.tar"), new Uint8Array(plain.flatMap((p) => [...p])));
  await expectError(["load", join(d, "plain.tar")], "is not an oci-archive: it has no oci-layout");
});

Deno.test("bad input: a truncated gzip layer (with a matching digest)", async () => {
  const dir = join(await tempDir(), "layout");
  const t = await OciDir.open(dir, { create: true });
  const body = new Uint8Array(10000).fill(7);
  const tar = [
    tarHeader({
      name: "big",
      type: "file",
      size: body.length,
      mode: 0o644,
      mtime: 0,
      linkname: "",
    }),
    body,
    tarPadding(body.length),
    TAR_END,
  ];
  const gz = new Uint8Array(gzipSync(new Uint8Array(tar.flatMap((p) => [...p]))));
  const layer = await pushBytes(t, OCIPKG_LAYER, gz.subarray(0, gz.length - 30));
  const cfg = await pushBytes(
    t,
    OCIPKG_CONFIG,
    encodeJson({ layers: { [layer.digest]: ["big"] } }),
  );
  const m = await pushBytes(
    t,
    OCI_MANIFEST,
    encodeJson({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: OCIPKG_ARTIFACT,
      config: cfg,
      layers: [layer],
    }),
  );
  await t.tag(m, "example.com/trunc:1");
  await expectError(
    ["load", dir],
    `layer ${layer.digest} of image 'example.com/trunc:1' is corrupt: invalid gzip data`,
  );
});

Deno.test("bad input: a blob whose digest does not match, and a missing blob", async () => {
  const a = await packedDir();
  const path = a.layout.blobPath(a.layer);
  const bytes = await Deno.readFile(path);
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
  await Deno.writeFile(path, bytes);
  await expectError(["load", a.dir], `blob ${a.layer}`);
  const line = await expectError(["load", a.dir], "digest mismatch");
  assertStringIncludes(line, a.layer);
  const b = await packedDir();
  await Deno.remove(b.layout.blobPath(b.layer));
  await expectError(["load", b.dir], `blob ${b.layer} is missing from oci-dir '${b.dir}'`);
});

Deno.test("bad input: an index with no image, and with two images but no name", async () => {
  const dir = join(await tempDir(), "empty");
  await OciDir.open(dir, { create: true });
  await expectError(["load", dir], "index.json lists no image");
  const a = await packedDir();
  const m = (await a.layout.list())[0]!;
  await a.layout.tag(m, "example.com/second:1");
  // each image named the way that works
  await expectError(
    ["load", a.dir],
    `holds 2 images; name one: oci:${a.dir}:example.com/x:1, oci:${a.dir}:example.com/second:1`,
    2,
  );
});

Deno.test("bad input: pack into an output holding another image needs --append", async () => {
  const dir = await tempDir();
  const src = await samplePackage(join(dir, "src"));
  const tar = join(dir, "t.tar");
  const pack = (...args: string[]) => runCli(["pack", src, tar, ...args]);
  // -q: the result line only
  const first = await pack("-t", "example.com/a:1", "-q");
  assertEquals([first.code, first.stderr], [0, ""]);
  assert(/^example\.com\/a:1 sha256:[0-9a-f]{64}\n$/.test(first.stdout), first.stdout);
  // the same name again replaces it
  assertEquals((await pack("-t", "example.com/a:1", "-q")).code, 0);
  const before = await Deno.readFile(tar);
  // another name: refused, the archive untouched, the error shows how each would be named
  const line = await expectError(["pack", src, tar, "-t", "example.com/b:1"], "already holds", 2);
  assertEquals(
    line,
    `error: oci-archive '${tar}' already holds example.com/a:1: packing example.com/b:1 would add ` +
      `an image beside it (each then named: oci-archive:${tar}:example.com/a:1, ` +
      `oci-archive:${tar}:example.com/b:1); add it with --append, or pack into another output`,
  );
  assertEquals(await Deno.readFile(tar), before);
  // --append adds it; each spelling then works, the bare file is ambiguous
  assertEquals((await pack("-t", "example.com/b:1", "--append", "-q")).code, 0);
  for (const ref of ["example.com/a:1", "example.com/b:1"]) {
    const r = await runCli(["inspect", `oci-archive:${tar}:${ref}`]);
    assertEquals(r.code, 0, r.stderr);
  }
  const ambiguous = await expectError(["inspect", tar], "holds 2 images", 2);
  assertStringIncludes(ambiguous, `name one: oci-archive:${tar}:example.com/a:1, oci-archive:`);
});

Deno.test("bad input: invalid image names and usage errors exit 2", async () => {
  await expectError(["image-directory", "UPPER/x"], "invalid image name 'UPPER/x'", 2);
  // not installed: no path to feed CMAKE_PREFIX_PATH, exit 3 and a hint to get it
  const missing = await runCli(["image-directory", "example.com/not/here:1"], {
    dataHome: await tempDir(),
  });
  assertEquals(missing.code, 3);
  assertEquals(missing.stdout, "");
  assertStringIncludes(missing.stderr, "'ocipkg get example.com/not/here:1'");
  await expectError(["rm", "a:b:c"], "invalid image name 'a:b:c'", 2);
  await expectError(["nosuch"], "unknown command 'nosuch'", 2);
  await expectError(["pack", "--bogus"], "--bogus", 2);
  await expectError(["load", "x.tar", "-t", "Bad Name"], "invalid image name 'Bad Name'", 2);
});

Deno.test("bad input: --debug adds the stack trace", async () => {
  const r = await runCli(["--debug", "load", "/nonexistent.tar"], { dataHome: await tempDir() });
  assertEquals(r.code, 3);
  assertStringIncludes(r.stderr, "    at ");
});

Deno.test("bad input: control characters from an archive never reach the terminal raw", async () => {
  await withTempDir(async (tmp) => {
    const esc = "\u001b]0;pwned\u0007\u001b[2J\u009b31m\u202e";
    const src = await samplePackage(join(tmp, "src"));
    const archive = join(tmp, "p.tar");
    await packDirectory(src, archive, {
      name: "example.com/term:1",
      annotations: { "org.opencontainers.image.description": `evil${esc}` },
    });
    const r = await runCli(["inspect", archive], { dataHome: join(tmp, "store") });
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, "evil\\u001b]0;pwned\\u0007\\u001b[2J\\u009b31m\\u202e");
    const json = await runCli(["inspect", archive, "--json"], { dataHome: join(tmp, "store") });
    assertEquals(json.code, 0, json.stderr);
    // still valid JSON, and the value is intact for a program that parses it
    assertStringIncludes(json.stdout, "evil");
    assert(!hasControl(json.stdout + r.stdout, true));
    // an entry name with escapes, refused: the error line is escaped too
    const layer = gzipSync(
      new Uint8Array([
        ...tarHeader({
          name: `../x${esc}`,
          type: "file",
          size: 0,
          mode: 0o644,
          mtime: 0,
          linkname: "",
        }),
        ...TAR_END,
      ]),
    );
    const layout = join(tmp, "layout");
    await packDirectory(src, layout, { name: "example.com/term:2", format: "dir" });
    const dir = await OciDir.open(layout);
    const m = JSON.parse(await Deno.readTextFile(dir.blobPath((await dir.resolve()).digest)));
    const ld = await pushBytes(dir, OCIPKG_LAYER, new Uint8Array(layer));
    m.layers = [ld];
    m.config = await pushBytes(dir, OCIPKG_CONFIG, encodeJson({ layers: {} }));
    const md = await pushBytes(dir, OCI_MANIFEST, encodeJson(m));
    await dir.tag(md, "example.com/term:2");
    await dir.close();
    const line = await expectError(["load", `oci:${layout}:example.com/term:2`], "\\u001b");
    assert(!hasControl(line), line);
  });
});

Deno.test("a fifo or a device named as an oci-archive is refused at once, for every command that reads one", async () => {
  const dir = await tempDir();
  const fifo = join(dir, "pkg.tar");
  const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  const paths = made.success ? [fifo, "/dev/zero"] : ["/dev/zero"];
  const pub = join(await tempDir(), "cosign.pub");
  await Deno.writeTextFile(pub, encodePublicKey(generateSigningKeyPair().publicKey));
  for (const p of paths) {
    for (
      const args of [
        ["inspect", `oci-archive:${p}`],
        ["load", `oci-archive:${p}`],
        [
          "verify",
          `oci-archive:${p}`,
          "--key",
          pub,
        ],
        ["discover", `oci-archive:${p}`],
        ["copy", `oci-archive:${p}`, `oci:${join(dir, "out")}`],
      ]
    ) {
      const r = await runCli(args, { dataHome: join(dir, "store") });
      assertEquals(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      assertEquals(r.stderr.trim(), `error: oci-archive '${p}' is not a regular file`);
    }
  }
  assertEquals(
    [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
    made.success ? ["pkg.tar"] : [],
  );
});
