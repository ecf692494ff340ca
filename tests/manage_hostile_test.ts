// The registry-management commands and '-' for stdin/stdout under hostile input: a mirror whose
// tags are not the registry's (delete, tag), catalog and tag lists that never end, stdin that is
// garbage, never ends or is larger than allowed, a password on stdin that never ends, and a pipe
// closed early. Each fault: one line naming the thing at fault, exit 1, nothing changed.
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import {
  deleteImage,
  listTags,
  packDirectory,
  pushImage,
  resolveImage,
  serve,
  tagImage,
} from "./_internal.ts";
import { runCli, tempDir } from "./_helpers.ts";

const quiet = { log: () => {} };

function assertMatch(actual: string, re: RegExp): void {
  assert(re.test(actual), `expected ${JSON.stringify(actual)} to match ${re}`);
}

/** A failed CLI run: exit 1, one line `error: …` matching `re`, no stack. */
function oneLineError(r: { code: number; stderr: string }, re: RegExp): void {
  assertEquals(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assertEquals(lines.length, 1, r.stderr);
  assertMatch(lines[0]!, /^error: /);
  assertMatch(lines[0]!, re);
}

/** A package holding `content`, packed as `name` into a fresh archive. */
async function packed(name: string, content: string): Promise<{ archive: string; digest: string }> {
  const dir = await tempDir();
  await Deno.mkdir(join(dir, "pkg"));
  await Deno.writeTextFile(join(dir, "pkg", "a.txt"), content);
  const archive = join(dir, "pkg.tar");
  const { digest } = await packDirectory(join(dir, "pkg"), archive, { name });
  return { archive, digest };
}

async function configWith(doc: unknown): Promise<string> {
  const file = join(await tempDir(), "config.json");
  await Deno.writeTextFile(file, JSON.stringify(doc));
  return file;
}

const cli = async (args: string[], env: Record<string, string> = {}, stdin?: string | Uint8Array) =>
  runCli(args, { env, dataHome: await tempDir(), stdin });

/** The digest an image resolves to on the registry itself, or `gone`. */
const onRegistry = (image: string) => resolveImage(image, { config: false }).catch(() => "gone");

Deno.test("mirrors never decide what a write changes: delete and tag resolve tags on the registry alone", async () => {
  const dir = await tempDir();
  const registry = await serve({
    root: join(dir, "r"),
    addr: "127.0.0.1:0",
    delete: true,
    ...quiet,
  });
  const mirror = await serve({ root: join(dir, "m"), addr: "127.0.0.1:0", ...quiet });
  try {
    const repo = `${registry.addr}/x/pkg`;
    const a = await packed(`${repo}:1.0`, "a");
    const b = await packed(`${repo}:2.0`, "b");
    await pushImage(a.archive);
    await pushImage(b.archive);
    // the mirror (trusted to resolve tags for pulls) is stale or lies: 1.0 is b there
    await pushImage(b.archive, `${mirror.addr}/x/pkg:1.0`);
    const config = await configWith({
      registries: { [registry.addr]: { mirrors: [{ host: mirror.addr, resolve: true }] } },
    });
    const env = { OCIPKG_CONFIG: config };
    // a pull may take the mirror's word: that is what resolve: true is for
    assertEquals(await resolveImage(`${repo}:1.0`, { config }), b.digest);

    // delete: what 1.0 is on the registry is what goes, the mirror's answer never
    const planned = await cli(["delete", `${repo}:1.0`, "--dry-run", "--json"], env);
    assertEquals(planned.code, 0, planned.stderr);
    assertEquals(JSON.parse(planned.stdout).digest, a.digest);
    const plannedLib = await deleteImage(`${repo}:1.0`, { config, dryRun: true });
    assertEquals(plannedLib.digest, a.digest);
    assertEquals(plannedLib.tags, ["1.0"]);
    const forced = await cli(["delete", `${repo}:1.0`, "-f"], env);
    assertEquals(forced.code, 0, forced.stderr);
    assertEquals(forced.stdout.trim(), a.digest);
    assertEquals(await onRegistry(`${repo}:1.0`), "gone");
    assertEquals(await onRegistry(`${repo}:2.0`), b.digest); // 2.0 untouched

    // tag: the source tag is the registry's too
    await pushImage(a.archive);
    const tagged = await cli(["tag", `${repo}:1.0`, "stable"], env);
    assertEquals(tagged.code, 0, tagged.stderr);
    assertEquals(await onRegistry(`${repo}:stable`), a.digest);
    await tagImage(`${repo}:1.0`, ["stable2"], { config });
    assertEquals(await onRegistry(`${repo}:stable2`), a.digest);
    // and nothing was ever written to the mirror
    assertEquals(await listTags(`${mirror.addr}/x/pkg`), ["1.0"]);
  } finally {
    await registry.close();
    await mirror.close();
  }
});
