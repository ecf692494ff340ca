// Managing a registry by hand — `manifest [put]`, `blob`, `delete`, `catalog`, `tags` of a bare
// host — and oci-archives on stdin/stdout (`pull -o -`, `load -`, `push -`, `inspect -`), through
// the CLI against a real docker-registry (deletion enabled) and against `ocipkg serve --delete`;
// a registry that refuses deletes: `ocipkg serve` without `--delete`.
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./_assert.ts";
import {
  inspectAny,
  NotFoundError,
  packDirectory,
  pushImage,
  resolveImage,
  saveBlob,
  serve,
  VerificationError,
} from "../mod.ts";
import { runCli, samplePackage, sha256, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";

const docker = await startRegistry();
globalThis.addEventListener("unload", () => docker.kill());
const served = await serve({
  root: await tempDir(),
  addr: "127.0.0.1:0",
  log: () => {},
  delete: true,
});
const readOnly = await serve({ root: await tempDir(), addr: "127.0.0.1:0", log: () => {} });
globalThis.addEventListener("unload", () => {
  served.close();
  readOnly.close();
});

/** Pack a sample package as `name` and push it; returns the archive and digest. */
async function pushed(name: string, bytes = 4096): Promise<{ archive: string; digest: string }> {
  const work = await tempDir();
  const src = await samplePackage(join(work, "pkg"), bytes);
  const archive = join(work, "pkg.tar");
  const { digest } = await packDirectory(src, archive, { name });
  await pushImage(archive);
  return { archive, digest };
}

const json = (s: string) => JSON.parse(s);

/** The digest an image resolves to, or undefined when there is none (in this process: fast). */
async function resolved(image: string): Promise<string | undefined> {
  try {
    return await resolveImage(image);
  } catch (e) {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
}

for (
  const [kind, host, tagDeletes] of [
    ["docker-registry", docker.host, false],
    ["serve", served.addr, true],
  ] as const
) {
  Deno.test(`${kind}: manifest, manifest --descriptor/--json, manifest put, blob -o file|-`, async () => {
    const name = `${host}/manage/pkg:1.0`;
    const p = await pushed(name);
    const raw = await runCli(["manifest", name]);
    assertEquals(raw.code, 0, raw.stderr);
    // the bytes as stored: their digest is the image's
    assertEquals(await sha256(new Uint8Array(raw.stdoutBytes)), p.digest);
    const manifest = json(raw.stdout);
    const d = await runCli(["manifest", name, "--descriptor"]);
    assertEquals(d.code, 0, d.stderr);
    assertEquals(json(d.stdout), {
      mediaType: manifest.mediaType,
      digest: p.digest,
      size: raw.stdoutBytes.byteLength,
    });
    const j = json((await runCli(["manifest", name, "--json"])).stdout);
    assertEquals(j.descriptor.digest, p.digest);
    assertEquals(j.manifest, manifest);
    const missing = await runCli(["manifest", `${host}/manage/pkg:nope`, "--json"]);
    assertEquals(missing.code, 3, missing.stderr);
    assertEquals(missing.stdout, "");

    // put: the same bytes under another tag, from a file and from stdin
    const file = join(await tempDir(), "m.json");
    await Deno.writeFile(file, raw.stdoutBytes);
    const put = await runCli(["manifest", "put", `${host}/manage/pkg:copy`, file]);
    assertEquals(put.code, 0, put.stderr);
    assertEquals(put.stdout.trim(), p.digest);
    const fromStdin = await runCli(["manifest", "put", `${host}/manage/pkg:copy2`, "-", "--json"], {
      stdin: raw.stdoutBytes,
    });
    assertEquals(fromStdin.code, 0, fromStdin.stderr);
    assertEquals(json(fromStdin.stdout).digest, p.digest);
    assertEquals(await resolved(`${host}/manage/pkg:copy2`), p.digest);
    // checked before anything is sent: not JSON, no media type, an unknown one, another digest
    for (
      const [text, code, message] of [
        ["not json", 1, "not valid JSON"],
        ['{"schemaVersion":2,"config":{},"layers":[]}', 2, "--media-type"],
        ['{"schemaVersion":2,"mediaType":"text/plain"}', 2, "unknown manifest media type"],
      ] as const
    ) {
      const r = await runCli(["manifest", "put", `${host}/manage/pkg:bad`, "-"], { stdin: text });
      assertEquals(r.code, code, r.stderr);
      assertStringIncludes(r.stderr, message);
    }
    const other = await runCli([
      "manifest",
      "put",
      `${host}/manage/pkg@sha256:${"0".repeat(64)}`,
      file,
    ]);
    assertEquals(other.code, 2, other.stderr);
    assertStringIncludes(other.stderr, "not sha256:000");
    assertEquals(await resolved(`${host}/manage/pkg:bad`), undefined);

    // blob: to a file (the digest on stdout), to stdout (nothing else there), missing: exit 3
    const layer = manifest.layers[0];
    const out = join(await tempDir(), "layer.tgz");
    const saved = await runCli(["blob", `${host}/manage/pkg@${layer.digest}`, "-o", out]);
    assertEquals(saved.code, 0, saved.stderr);
    assertEquals(saved.stdout.trim(), layer.digest);
    assertEquals(await sha256(await Deno.readFile(out)), layer.digest);
    const piped = await runCli(["blob", `${host}/manage/pkg@${layer.digest}`, "-o", "-", "--json"]);
    assertEquals(piped.code, 0, piped.stderr);
    assertEquals(piped.stdoutBytes.byteLength, layer.size);
    assertEquals(await sha256(new Uint8Array(piped.stdoutBytes)), layer.digest);
    assertEquals(json(piped.stderr).digest, layer.digest); // the result line went to stderr
    const gone = join(await tempDir(), "none");
    const noBlob = await runCli([
      "blob",
      `${host}/manage/pkg@sha256:${"1".repeat(64)}`,
      "-o",
      gone,
    ]);
    assertEquals(noBlob.code, 3, noBlob.stderr);
    assertEquals(await Deno.stat(gone).then(() => true, () => false), false);
    const noDigest = await runCli(["blob", `${host}/manage/pkg:1.0`, "-o", gone]);
    assertEquals(noDigest.code, 2, noDigest.stderr);
  });

  Deno.test(`${kind}: catalog (and --json); a bare host is not a repository for tags`, async () => {
    await pushed(`${host}/catalog/a:1`);
    await pushed(`${host}/catalog/b:1`);
    const human = await runCli(["catalog", host]);
    assertEquals(human.code, 0, human.stderr);
    const names = human.stdout.trim().split("\n");
    assert(names.includes("catalog/a") && names.includes("catalog/b"), human.stdout);
    const list = await runCli(["catalog", host, "--json"]);
    assertEquals(list.code, 0, list.stderr);
    assertEquals(json(list.stdout), names);
    const repo = await runCli(["catalog", `${host}/catalog/a`]);
    assertEquals(repo.code, 2);
    assertStringIncludes(repo.stderr, "ocipkg tags");
    const bare = await runCli(["tags", host]);
    assertEquals(bare.code, 2);
    assertStringIncludes(bare.stderr, `ocipkg catalog ${host}`);
  });

  Deno.test(`${kind}: delete resolves a tag, names the other tags, deletes only when told`, async () => {
    const repo = `${host}/delete/pkg`;
    const p = await pushed(`${repo}:1.0`);
    await pushImage(p.archive, `${repo}:latest`);
    const other = await pushed(`${repo}:2.0`, 8192);
    // 1.0 and latest are one manifest: refused, nothing deleted
    const refused = await runCli(["delete", `${repo}:1.0`]);
    assertEquals(refused.code, 1, refused.stderr);
    assertStringIncludes(refused.stderr, "also removes tag latest; nothing deleted");
    assertStringIncludes(refused.stderr, "--force");
    assert(await resolved(`${repo}:1.0`));
    const plan = await runCli(["delete", `${repo}:1.0`, "--force", "--dry-run", "--json"]);
    assertEquals(plan.code, 0, plan.stderr);
    assertEquals(json(plan.stdout), {
      image: `${repo}:1.0`,
      digest: p.digest,
      deleted: "manifest",
      tags: ["1.0", "latest"],
      dryRun: true,
    });
    assert(await resolved(`${repo}:latest`));
    const done = await runCli(["delete", `${repo}:1.0`, "-f"]);
    assertEquals(done.code, 0, done.stderr);
    assertEquals(done.stdout.trim(), p.digest);
    assertStringIncludes(done.stderr, "tags removed with it: 1.0, latest");
    for (const t of ["1.0", "latest"]) {
      assertEquals(await resolved(`${repo}:${t}`), undefined);
    }
    assertEquals(await resolved(`${repo}:2.0`), other.digest);
    assertEquals((await runCli(["delete", `${repo}:1.0`])).code, 3);
    assertEquals((await runCli(["delete", `${repo}@${p.digest}`])).code, 3);

    // a tag alone: serve deletes it and keeps the manifest; distribution 2.x cannot
    const alone = await runCli(["delete", `${repo}:2.0`, "--tag-only", "--json"]);
    if (tagDeletes) {
      assertEquals(alone.code, 0, alone.stderr);
      assertEquals(json(alone.stdout).deleted, "tag");
      assertEquals(await resolved(`${repo}:2.0`), undefined);
      assert(await resolved(`${repo}@${other.digest}`));
    } else {
      assertEquals(alone.code, 1, alone.stderr);
      assertStringIncludes(alone.stderr, "does not delete a tag alone");
      assert(await resolved(`${repo}:2.0`));
    }
    // by digest: deleted, and the tags that went with it named
    const byDigest = await runCli(["delete", `${repo}@${other.digest}`, "--json"]);
    assertEquals(byDigest.code, 0, byDigest.stderr);
    assertEquals(json(byDigest.stdout).tags, tagDeletes ? [] : ["2.0"]);
    assertEquals(await resolved(`${repo}@${other.digest}`), undefined);
    const misuse = await runCli(["delete", `${repo}@${other.digest}`, "--tag-only"]);
    assertEquals(misuse.code, 2, misuse.stderr);
  });

  Deno.test(`${kind}: pull -o - | load -, push -, inspect -; temp files removed`, async () => {
    const name = `${host}/stream/pkg:1`;
    const p = await pushed(name);
    const tmp = await tempDir(); // TMPDIR of the children: the spooled copies go there
    const env = { TMPDIR: tmp };
    const pulled = await runCli(["pull", name, "-o", "-"], { env });
    assertEquals(pulled.code, 0, pulled.stderr);
    assertStringIncludes(pulled.stderr, p.digest); // the result line: on stderr
    const archive = pulled.stdoutBytes;
    const file = join(await tempDir(), "pulled.tar");
    await Deno.writeFile(file, archive);
    assertEquals((await inspectAny(file, { files: false })).digest, p.digest);
    const seen = await runCli(["inspect", "-", "--json", "--no-files"], { stdin: archive, env });
    assertEquals(seen.code, 0, seen.stderr);
    assertEquals(json(seen.stdout).name, name);
    const data = await tempDir();
    const loaded = await runCli(["load", "-", "--json"], { stdin: archive, env, dataHome: data });
    assertEquals(loaded.code, 0, loaded.stderr);
    assertEquals(json(loaded.stdout).digest, p.digest);
    const again = await runCli(["push", "-", `${host}/stream/copy:2`], { stdin: archive, env });
    assertEquals(again.code, 0, again.stderr);
    assertEquals(again.stdout.trim(), `${host}/stream/copy:2 ${p.digest}`);
    // not an archive: one line, nothing left behind
    const junk = await runCli(["load", "-"], { stdin: "not a tar", env, dataHome: data });
    assertEquals(junk.code, 1);
    assertStringIncludes(junk.stderr, "oci-archive on stdin");
    assertEquals(await Array.fromAsync(Deno.readDir(tmp)), []);
    const dir = await runCli(["pull", name, "-o", "-", "--format", "dir"]);
    assertEquals(dir.code, 2);
  });
}

Deno.test("delete on a registry that does not allow it: one line naming the setting", async () => {
  const name = `${readOnly.addr}/manage/pkg:1`;
  const p = await pushed(name);
  const r = await runCli(["delete", `${readOnly.addr}/manage/pkg@${p.digest}`]);
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(r.stderr, "does not allow deleting");
  assertStringIncludes(r.stderr, "--delete");
  assertEquals(r.stderr.trim().split("\n").length, 1);
});

Deno.test("stdin and stdout: a terminal is refused", async () => {
  const have = await new Deno.Command("script", {
    args: ["--version"],
    stdout: "null",
    stderr: "null",
  })
    .output().then((r) => r.success, () => false);
  if (!have) {
    console.log("note: no 'script' to run the CLI on a pseudo-terminal: skipped");
    return;
  }
  const name = `${served.addr}/manage/tty:1`;
  await pushed(name);
  const cli = join(new URL("..", import.meta.url).pathname, "cli.ts");
  for (
    const [args, message] of [
      [["pull", name, "-o", "-"], "refusing to write an oci-archive to a terminal"],
      [["inspect", "-"], "stdin is a terminal"],
    ] as const
  ) {
    const line = [Deno.execPath(), "run", "-A", "--quiet", cli, ...args].join(" ");
    const r = await new Deno.Command("script", {
      args: ["-qec", line, "/dev/null"],
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(r.stdout);
    assertEquals(r.code, 2, text);
    assertStringIncludes(text, message);
  }
});

Deno.test("blob: bytes that do not match the digest are refused, and no file is left", async () => {
  const real = new TextEncoder().encode("the real blob");
  const digest = await sha256(real);
  const forged = new TextEncoder().encode("a forged blob");
  // a stand-in registry that answers the right size and the wrong bytes
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) =>
      req.method === "HEAD"
        ? new Response(null, { headers: { "content-length": `${real.byteLength}` } })
        : new Response(forged),
  );
  try {
    const out = join(await tempDir(), "blob");
    const image = `127.0.0.1:${server.addr.port}/org/x@${digest}`;
    await assertRejects(() => saveBlob(image, out, { credential: null }), VerificationError);
    assertEquals(await Deno.stat(out).then(() => true, () => false), false);
    assertEquals(
      (await Array.fromAsync(Deno.readDir(join(out, "..")))).length,
      0,
      "no temp file left",
    );
  } finally {
    await server.shutdown();
  }
});
