// Progress of transfers: NDJSON events (--progress json), live lines on a
// terminal (--progress tty, and a real pseudo-terminal through `script`),
// --verbose off a terminal, --quiet. Against a real registry; retries through
// the fault proxy in front of it.
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { CLI, have, runCli, samplePackage, tempDir } from "./_helpers.ts";
import { startRegistry } from "./_registry.ts";
import { startFaultProxy } from "./_fault_proxy.ts";

interface Event {
  type: string;
  digest?: string;
  size?: number;
  mediaType?: string;
  image: string;
  bytes?: number;
  attempt?: number;
  waitMs?: number;
  reason?: string;
  message?: string;
}

const parse = (stderr: string): Event[] =>
  stderr.trim().split("\n").filter((l) => l).map((l) => JSON.parse(l) as Event);

Deno.test("progress: NDJSON events, live lines, --verbose and --quiet", async (t) => {
  const reg = await startRegistry();
  const proxy = startFaultProxy(reg.host);
  const work = await tempDir();
  const image = `${reg.host}/progress/pkg:1`;
  try {
    await samplePackage(`${work}/pkg`, 3 << 20);
    assertEquals((await runCli(["pack", `${work}/pkg`, `${work}/pkg.tar`, "-t", image])).code, 0);

    await t.step("push --progress json: start, progress, done for every blob", async () => {
      const r = await runCli(["push", `${work}/pkg.tar`, image, "--progress", "json"]);
      assertEquals(r.code, 0, r.stderr);
      const events = parse(r.stderr);
      for (const e of events) {
        assert(["start", "progress", "skip", "done"].includes(e.type), JSON.stringify(e));
        assertEquals(e.image, image);
        assert(/^sha256:[0-9a-f]{64}$/.test(e.digest!) && typeof e.size === "number");
        assert(typeof e.mediaType === "string");
      }
      const done = events.filter((e) => e.type === "done");
      assertEquals(done.length, 3, "config, layer, manifest");
      for (const d of done) {
        assertEquals(d.bytes, d.size);
        // each done follows its own start
        const start = events.findIndex((e) => e.type === "start" && e.digest === d.digest);
        assert(start >= 0 && start < events.indexOf(d));
      }
      assertEquals(done.at(-1)!.mediaType, "application/vnd.oci.image.manifest.v1+json");
      // the result stays alone on stdout
      assertStringIncludes(r.stdout, image);
      // pushed again: everything is skipped
      const again = parse(
        (await runCli(["push", `${work}/pkg.tar`, image, "--progress", "json"])).stderr,
      );
      assert(again.some((e) => e.type === "skip"));
      assert(
        !again.some((e) =>
          e.type === "done" && e.mediaType !== "application/vnd.oci.image.manifest.v1+json"
        ),
      );
    });

    await t.step("get --progress json through 503s: retry events, then done", async () => {
      proxy.reset();
      proxy.rules.unavailable = { match: "/blobs/sha256:", times: 2 };
      const viaProxy = image.replace(reg.host, proxy.host);
      const r = await runCli(["get", viaProxy, "--progress", "json"], {
        dataHome: `${work}/store`,
      });
      assertEquals(r.code, 0, r.stderr);
      const events = parse(r.stderr);
      const retries = events.filter((e) => e.type === "retry");
      assertEquals(retries.length, 2, r.stderr);
      assertEquals(retries[0]!.reason, "503");
      assert(retries[0]!.waitMs! > 0 && retries[0]!.attempt === 1);
      const layer = events.find((e) => e.type === "progress" && /layer/.test(e.mediaType!));
      assert(layer && layer.bytes! > 0 && layer.bytes! <= layer.size!, "bytes so far of the layer");
    });

    await t.step("a failure ends the events with an error", async () => {
      const r = await runCli([
        "pull",
        `${reg.host}/progress/missing:1`,
        "-o",
        `${work}/missing.tar`,
        "--progress",
        "json",
      ]);
      assertEquals(r.code, 3);
      const last = parse(r.stderr.split("\n").filter((l) => l.startsWith("{")).join("\n")).at(-1)!;
      assertEquals(last.type, "error");
      assertStringIncludes(last.message!, "missing");
    });

    await t.step("--progress tty draws lines and clears them; --verbose and --quiet", async () => {
      const tty = await runCli(["pull", image, "-o", `oci:${work}/tty`, "--progress", "tty"]);
      assertEquals(tty.code, 0, tty.stderr);
      // whatever was drawn was cleared again: the screen ends clean
      if (tty.stderr.length > 0) assert(tty.stderr.endsWith("\x1b[J"), JSON.stringify(tty.stderr));
      const verbose = await runCli(["pull", image, "-o", `oci:${work}/v`, "--verbose"]);
      assertEquals(verbose.code, 0);
      const lines = verbose.stderr.trim().split("\n");
      assertEquals(lines.length, 3, verbose.stderr);
      for (const l of lines) assert(/^copied sha256:[0-9a-f]{12}$/.test(l), l);
      const quiet = await runCli(["get", image, "-q", "-f"], { dataHome: `${work}/store2` });
      assertEquals(quiet.code, 0);
      assertEquals(quiet.stderr, "");
      assertEquals(quiet.stdout.trim().split("\n").length, 1);
      assertEquals(
        (await runCli(["get", image, "--progress", "bars"])).stderr.trim(),
        "error: invalid --progress 'bars': use auto, tty, json or none",
      );
    });

    await t.step({
      name: "a real pseudo-terminal (script), a throttled transfer: live lines, then cleared",
      ignore: !(await have("script")),
      fn: async () => {
        // 1.5 MiB that does not compress, served at 1 MiB/s: about 1.5 s of progress
        const big = `${work}/big`;
        await Deno.mkdir(big);
        const bytes = new Uint8Array(3 << 19);
        for (let i = 0; i < bytes.length; i += 65536) {
          crypto.getRandomValues(bytes.subarray(i, i + 65536));
        }
        await Deno.writeFile(`${big}/libbig.a`, bytes);
        const slow = `${proxy.host}/progress/big:1`;
        assertEquals((await runCli(["pack", big, `${work}/big.tar`, "-t", slow])).code, 0);
        assertEquals((await runCli(["push", `${work}/big.tar`, slow])).code, 0);
        proxy.reset();
        proxy.rules.throttle = { bytesPerSecond: 1 << 20 };
        const q = (s: string) => `'${s.replaceAll("'", `'"'"'`)}'`;
        const cmd = new Deno.Command("script", {
          args: [
            "-q",
            "-e",
            "-c",
            `${q(Deno.execPath())} run -A --quiet ${q(CLI)} get ${slow}`,
            "/dev/null",
          ],
          env: {
            OCIPKG_DATA_DIR: `${work}/store3`,
            DENO_NO_UPDATE_CHECK: "1",
            NO_COLOR: "1",
            TERM: "xterm",
            PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
          },
          stdout: "piped",
          stderr: "piped",
        });
        const r = await cmd.output();
        proxy.reset();
        const screen = new TextDecoder().decode(r.stdout);
        assertEquals(r.code, 0, screen);
        // a total line with bytes, rate and ETA was drawn, and a blob line with its percentage
        assert(
          /\d+(\.\d)? (KiB|MiB) of \d+(\.\d)? (KiB|MiB) at [\d.]+ (B|KiB|MiB)\/s/.test(screen),
          screen,
        );
        assert(/\d+% /.test(screen), screen);
        assertStringIncludes(screen, "\x1b[2K"); // lines redrawn in place
        assertStringIncludes(screen, "got ");
      },
    });
  } finally {
    await proxy.stop();
    await reg.stop();
  }
});
