// Crash and concurrency: kill -9 mid-download and mid-extract then rerun; 8 processes `get`
// one image; 8 processes `load -f` one archive while a reader never sees the image missing.
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { packDirectory, pushImage, Store } from "../mod.ts";
import { CLI, listTree, runCli, samplePackage, withTempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";
import { startFaultProxy } from "./_fault_proxy.ts";

const reg = await startRegistry();
const proxy = startFaultProxy(reg.host);
globalThis.addEventListener("unload", () => {
  reg.kill();
  proxy.stop();
});

function spawnCli(args: string[], data: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CLI, ...args],
    env: { OCIPKG_DATA_DIR: data, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Every name under `dir` (recursively), including hidden ones. */
async function allNames(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string, rel: string) => {
    for await (const e of Deno.readDir(abs)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory && e.name !== ".oci-dir") await walk(join(abs, e.name), r);
    }
  };
  await walk(dir, "").catch(() => {});
  return out.sort();
}

/** Only the image link, its one version and the store lock remain: no temp directories. */
async function assertClean(store: Store, image: string): Promise<void> {
  const dir = store.imageDir(image);
  const names = (await Array.fromAsync(Deno.readDir(join(dir, "..")))).map((e) => e.name).sort();
  assertEquals(names, ["__1", await Deno.readLink(dir)].sort());
  assert(!(await allNames(store.root)).some((n) => n.includes(".tmp-")), "temp files left");
}

Deno.test("crash: kill -9 during a download, then the same get succeeds and cleans up", async () => {
  await withTempDir(async (tmp) => {
    const src = await samplePackage(join(tmp, "src"), 4 * 1024 * 1024);
    const name = `${proxy.host}/crash/dl:1`;
    const layout = join(tmp, "layout");
    const packed = await packDirectory(src, `oci:${layout}`, { name });
    await pushImage(`oci:${layout}`);
    const [alg, hex] = packed.digest.split(":");
    const manifest = JSON.parse(await Deno.readTextFile(join(layout, "blobs", alg!, hex!)));
    const layer: string = manifest.layers[0].digest;
    const data = join(tmp, "store");
    proxy.rules.stallBlob = layer;
    const child = spawnCli(["get", name], data);
    await until(async () => (await allNames(data)).some((n) => n.includes(".tmp-")), "a temp dir");
    // the install's temp directory is private while it is written
    const tmpDir = (await allNames(data)).find((n) => /(^|\/)\.tmp-[^/]*$/.test(n))!;
    assertEquals((await Deno.stat(join(data, tmpDir))).mode! & 0o777, 0o700);
    await new Promise((r) => setTimeout(r, 200));
    child.kill("SIGKILL");
    const killed = await child.output();
    assertEquals(killed.signal, "SIGKILL");
    const store = new Store(data);
    assert(!(await store.has(name)), "a killed get left an image");
    proxy.reset();
    const again = await runCli(["get", name], { dataHome: data });
    assertEquals(again.code, 0, again.stderr);
    assertEquals(await listTree(store.imageDir(name)), await listTree(src));
    await assertClean(store, name); // the dead process's temp dir was removed
  });
});

Deno.test("crash: kill -9 during extraction, then load succeeds and cleans up", async () => {
  await withTempDir(async (tmp) => {
    const src = join(tmp, "src");
    for (let d = 0; d < 40; d++) {
      await Deno.mkdir(join(src, `d${d}`), { recursive: true });
      for (let f = 0; f < 100; f++) {
        await Deno.writeTextFile(join(src, `d${d}`, `f${f}`), `${d}/${f}`);
      }
    }
    const archive = join(tmp, "many.tar");
    await packDirectory(src, archive, { name: "example.com/crash/extract:1" });
    const data = join(tmp, "store");
    const child = spawnCli(["load", archive], data);
    // wait until files are being extracted into the temp directory, then kill
    await until(
      async () => (await allNames(data)).filter((n) => n.includes(".tmp-")).length > 50,
      "extraction to start",
    );
    child.kill("SIGKILL");
    await child.output();
    const store = new Store(data);
    assert(!(await store.has("example.com/crash/extract:1")), "a killed load left an image");
    const again = await runCli(["load", archive], { dataHome: data });
    assertEquals(again.code, 0, again.stderr);
    assertEquals(
      (await listTree(store.imageDir("example.com/crash/extract:1"))).length,
      (await listTree(src)).length,
    );
    await assertClean(store, "example.com/crash/extract:1");
  });
});

Deno.test("concurrency: 8 processes get one image: all succeed, one copy", async () => {
  await withTempDir(async (tmp) => {
    const src = await samplePackage(join(tmp, "src"), 2 * 1024 * 1024);
    const name = `${reg.host}/conc/get:1`;
    const archive = join(tmp, "p.tar");
    await packDirectory(src, archive, { name });
    await pushImage(archive);
    const data = join(tmp, "store");
    const results = await Promise.all(
      Array.from({ length: 8 }, () => runCli(["get", name], { dataHome: data })),
    );
    const store = new Store(data);
    for (const r of results) {
      assertEquals(r.code, 0, r.stderr);
      assertEquals(r.stdout.trim(), store.imageDir(name));
    }
    assertEquals(await listTree(store.imageDir(name)), await listTree(src));
    await assertClean(store, name);
  });
});

Deno.test("concurrency: 8 processes load -f one archive; readers always see the image", async () => {
  await withTempDir(async (tmp) => {
    const src = await samplePackage(join(tmp, "src"), 1024 * 1024);
    const name = "example.com/conc/load:1";
    const archive = join(tmp, "p.tar");
    await packDirectory(src, archive, { name });
    const data = join(tmp, "store");
    const first = await runCli(["load", archive], { dataHome: data });
    assertEquals(first.code, 0, first.stderr);
    const store = new Store(data);
    const dir = store.imageDir(name);
    let reads = 0;
    let missing = 0;
    let done = false;
    const reader = (async () => {
      while (!done) {
        try {
          await Deno.readTextFile(join(dir, "README"));
          reads++;
        } catch {
          missing++;
        }
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    const results = await Promise.all(
      Array.from({ length: 8 }, () => runCli(["load", "-f", archive], { dataHome: data })),
    );
    done = true;
    await reader;
    for (const r of results) assertEquals(r.code, 0, r.stderr);
    assert(reads > 10, `reader ran ${reads} times`);
    assertEquals(missing, 0, `the image was missing ${missing} times out of ${reads + missing}`);
    assertEquals(await listTree(dir), await listTree(src));
    await assertClean(store, name);
  });
});
