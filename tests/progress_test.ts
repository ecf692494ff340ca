// Progress of transfers: NDJSON events (--progress json), live lines on a
// terminal (--progress tty, and a real pseudo-terminal through `script`),
// --verbose off a terminal, --quiet. Against a real registry; retries through
// the fault proxy in front of it.
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { CLI, DENO_DIR, have, runCli, samplePackage, tempDir } from "./_helpers.ts";
import { Tmux } from "./_tmux.ts";
import { inspectAny } from "../mod.ts";
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
      // (then the closing line)
      // deno-lint-ignore no-control-regex
      assert(/^(.*\x1b\[J)?pulled [^\x1b]*\n$/s.test(tty.stderr), JSON.stringify(tty.stderr));
      const verbose = await runCli(["pull", image, "-o", `oci:${work}/v`, "--verbose"]);
      assertEquals(verbose.code, 0);
      const lines = verbose.stderr.trim().split("\n");
      assertEquals(lines.length, 4, verbose.stderr);
      for (const l of lines.slice(0, 3)) assert(/^copied sha256:[0-9a-f]{12}$/.test(l), l);
      assert(
        /^pulled [\d.]+ (B|KiB|MiB) in [\d.]+ s \([\d.]+ [KMG]?i?B\/s\), 2 blobs$/.test(lines[3]!),
        lines[3],
      );
      const quiet = await runCli(["get", image, "-q", "-f"], { dataHome: `${work}/store2` });
      assertEquals(quiet.code, 0);
      assertEquals(quiet.stderr, "");
      assertEquals(quiet.stdout.trim().split("\n").length, 1);
      assertEquals(
        (await runCli(["get", image, "--progress", "bars"])).stderr.trim(),
        "error: invalid --progress 'bars': use auto, tty, json or none",
      );
    });

    await t.step(
      "one closing line for every transfer, off a terminal too; not with -q or --json",
      async () => {
        const fresh = `${reg.host}/progress/closing:1`;
        const closing = async (args: string[], dataHome?: string) => {
          const r = await runCli(args, { dataHome });
          assertEquals(r.code, 0, r.stderr);
          const lines = r.stderr.trim().split("\n");
          assertEquals(lines.length, 1, r.stderr);
          return lines[0]!;
        };
        const moved = "[\\d.]+ (B|KiB|MiB) in [\\d.]+ s \\([\\d.]+ [KMG]?i?B/s\\), 2 blobs";
        const line = (text: string, re: string) => assert(new RegExp(`^${re}$`).test(text), text);
        line(await closing(["push", `${work}/pkg.tar`, fresh]), `pushed ${moved}`);
        // everything there already: said so
        line(
          await closing(["push", `${work}/pkg.tar`, fresh]),
          "pushed nothing new in [\\d.]+ s",
        );
        line(await closing(["pull", fresh, "-o", `${work}/closing.tar`]), `pulled ${moved}`);
        line(await closing(["copy", fresh, `oci:${work}/closing`]), `copied ${moved}`);
        const data = `${work}/closing-store`;
        line(await closing(["get", fresh], data), `got ${fresh.replaceAll(".", "\\.")}, ${moved}`);
        // from the store: nothing moved, no line
        const cached = await runCli(["get", fresh], { dataHome: data });
        assertEquals([cached.code, cached.stderr], [0, ""]);
        for (const flag of ["-q", "--json", "--progress=json"]) {
          const r = await runCli(["pull", fresh, "-o", `${work}/closing-${flag}.tar`, flag]);
          assertEquals(r.code, 0, r.stderr);
          assert(!/pulled/.test(r.stderr + r.stdout), `${flag}: ${r.stderr}`);
        }
      },
    );

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
        // the frames, in order: each total line drawn (each line is drawn after ESC[2K)
        const drawn = screen.split("\x1b[2K").slice(1).map((l) => l.split(/\r?\n/)[0]!);
        const frames = drawn.filter((l) => / of .* — \d+ blobs? done/.test(l));
        assert(frames.length > 0, screen);
        // no frame before a size is known, plurals right
        for (const f of frames) {
          assert(!f.startsWith("0 B of 0 B") && !/ of 0 B/.test(f), f);
          assert(!/\b1 blobs\b/.test(f), f);
        }
        // a total line with bytes and rate, and a blob line with its percentage
        assert(
          frames.some((f) =>
            /^\d+(\.\d)? (B|KiB|MiB) of 1\.\d MiB at [\d.]+ (B|KiB|MiB)\/s/.test(f)
          ),
          frames.join("\n"),
        );
        assert(drawn.some((l) => /\d+% /.test(l)), screen);
        // no ETA before five samples: each frame is one sample
        for (const f of frames.slice(0, 4)) assert(!f.includes("ETA"), frames.join("\n"));
        // cleared, then the one closing line (then the result, on stdout, the same terminal)
        const end =
          // deno-lint-ignore no-control-regex
          /\x1b\[\d+F\x1b\[Jgot (\S+), 1\.\d MiB in [\d.]+ s \([\d.]+ (KiB|MiB)\/s\), 2 blobs\r?\n/
            .exec(screen);
        assert(end && end[1] === slow, JSON.stringify(screen.slice(-300)));
        assert(!screen.slice(end.index + end[0].length).includes("\x1b"), "nothing drawn after");
        if (Deno.env.get("OCIPKG_SHOW_FRAMES")) {
          console.log([...frames, end[0].trim()].join("\n"));
        }
      },
    });
    await t.step({
      name: "a real terminal (tmux): Ctrl-C and a failure take the lines off the screen",
      ignore: !(await have("tmux")) || !(await have("bash")),
      fn: async () => {
        const dir = `${work}/int`;
        await Deno.mkdir(dir);
        const bytes = new Uint8Array(3 << 18); // 768 KiB that do not compress
        for (let i = 0; i < bytes.length; i += 65536) {
          crypto.getRandomValues(bytes.subarray(i, i + 65536));
        }
        await Deno.writeFile(`${dir}/libint.a`, bytes);
        const img = `${proxy.host}/progress/int:1`;
        assertEquals((await runCli(["pack", dir, `${work}/int.tar`, "-t", img])).code, 0);
        assertEquals((await runCli(["push", `${work}/int.tar`, img])).code, 0);
        const layer = (await inspectAny(`${work}/int.tar`)).manifests[0]!.layers[0]!.digest;
        const q = (x: string) => `'${x.replaceAll("'", `'"'"'`)}'`;
        /** `get` in a terminal of its own; the screen once it exited, with its exit code. */
        const inTerminal = async (store: string, interrupt: boolean) => {
          const tmux = await Tmux.start(
            `bash -c ${
              q(`${q(Deno.execPath())} run -A --quiet ${
                q(CLI)
              } get ${img}; echo "exit $?"; sleep 600`)
            }`,
            {
              PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
              TERM: "xterm",
              NO_COLOR: "1",
              DENO_NO_UPDATE_CHECK: "1",
              DENO_DIR,
              OCIPKG_DATA_DIR: store,
            },
          );
          try {
            const frame = (s: string) => / of .* — \d+ blobs? done/.test(s);
            await tmux.waitFor(frame, "a progress frame");
            if (interrupt) await tmux.type("", "C-c");
            const screen = await tmux.waitFor((s) => /^exit \d+$/m.test(s), "the exit");
            assert(!frame(screen) && !/\d+% /.test(screen), `lines left:\n${screen}`);
            return screen;
          } finally {
            await tmux.stop();
          }
        };
        try {
          proxy.rules.throttle = { bytesPerSecond: 128 << 10 }; // 6 s: interrupted long before
          const stopped = await inTerminal(`${work}/int-store1`, true);
          assertEquals(stopped.split("\n"), ["error: interrupted", "exit 130"]);
          proxy.rules.throttle = { bytesPerSecond: 2 << 20 };
          proxy.rules.wrongBytes = layer; // found when the last byte is in
          const failed = await inTerminal(`${work}/int-store2`, false);
          const lines = failed.split("\n");
          assertEquals(lines.length, 2, failed);
          assert(lines[0]!.startsWith("error: ") && lines[0]!.includes(layer), failed);
          assertEquals(lines[1], "exit 1");
        } finally {
          proxy.reset();
        }
      },
    });
  } finally {
    await proxy.stop();
    await reg.stop();
  }
});
