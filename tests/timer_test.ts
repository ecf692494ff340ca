// lib/util/timer.ts: the Alarm every registry timeout is made of (not node:timers' setTimeout),
// and the temp keeper that starts on one.
import { assert, assertEquals } from "./_assert.ts";
import { Alarm, sleep } from "../lib/util/timer.ts";
import { ROOT } from "./_helpers.ts";

Deno.test("timer: an alarm moved later rings once, at the later time", async () => {
  const alarm = new Alarm();
  const rang: number[] = [];
  const t0 = performance.now();
  alarm.set(20, () => rang.push(performance.now() - t0));
  // restarted like an idle timeout on every read: the first timer armed is kept and re-armed
  for (let i = 0; i < 10; i++) {
    await sleep(5);
    alarm.set(40, () => rang.push(performance.now() - t0));
  }
  assert(alarm.pending);
  while (rang.length === 0) await sleep(5);
  await sleep(60);
  assertEquals(rang.length, 1);
  assert(rang[0]! >= 89, `rang at ${rang[0]} ms, before the last set's 40 ms had passed`);
  assert(!alarm.pending);
});

Deno.test("timer: an alarm moved earlier rings at the earlier time; a cleared one never", async () => {
  const alarm = new Alarm();
  const rang: string[] = [];
  alarm.set(10_000, () => rang.push("late"));
  alarm.set(10, () => rang.push("early"));
  await sleep(40);
  assertEquals(rang, ["early"]);
  alarm.set(10, () => rang.push("cleared"));
  alarm.clear();
  alarm.set(Infinity, () => rang.push("never"));
  await sleep(40);
  assertEquals(rang, ["early"]);
  assert(!alarm.pending);
  // set again after its timer went off unheard (cleared before): it still rings
  alarm.set(5, () => rang.push("again"));
  await sleep(40);
  assertEquals(rang, ["early", "again"]);
});

/** Run a script in a child Deno; kill it after 20 s. */
async function child(code: string): Promise<{ out: string; ms: number; killed: boolean }> {
  const t0 = performance.now();
  const p = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    cwd: ROOT,
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killed = false;
  const guard = new Alarm();
  guard.set(20_000, () => {
    killed = true;
    p.kill("SIGKILL");
  });
  const r = await p.output();
  guard.clear();
  return { out: new TextDecoder().decode(r.stdout), ms: performance.now() - t0, killed };
}

Deno.test("timer: a set alarm keeps the process alive, a cleared one does not", async () => {
  const kept = await child(
    `import { Alarm } from "./lib/util/timer.ts"; new Alarm().set(300, () => console.log("rang"));`,
  );
  assertEquals(kept.out.trim(), "rang");
  const cleared = await child(
    `import { Alarm } from "./lib/util/timer.ts"; const a = new Alarm(); a.set(15_000, () => console.log("rang")); a.set(16_000, () => console.log("rang")); a.clear(); console.log("done");`,
  );
  assertEquals(cleared.out.trim(), "done");
  assert(!cleared.killed, "a cleared alarm kept the process alive");
  // alarms share a runtime timer: one that rang and one cleared by it leave nothing behind
  const shared = await child(
    `import { Alarm } from "./lib/util/timer.ts"; const a = new Alarm(), b = new Alarm(); a.set(15_000, () => console.log("late")); b.set(100, () => { console.log("rang"); a.clear(); });`,
  );
  assertEquals(shared.out.trim(), "rang");
  assert(!shared.killed, "a rung alarm kept the process alive");
});

Deno.test("timer: a writer dropped while holding a temp does not keep the process alive (past the handover)", async () => {
  const r = await child(
    `import { HeldTemps, tempPathFor } from "./lib/util/temp.ts";
     const dir = Deno.makeTempDirSync();
     const held = new HeldTemps(); // the default stale age: touched every 10 minutes
     const tmp = held.hold(tempPathFor(dir + "/blob"));
     Deno.writeTextFileSync(tmp, "x");
     globalThis.addEventListener("unload", () => { Deno.removeSync(dir, { recursive: true }); console.log("exited"); });`,
  );
  assertEquals(r.out.trim(), "exited");
  assert(!r.killed, "the held temp kept the process alive");
});

/** Count the runtime timers armed (`AbortSignal.timeout`) while `fn` runs. */
async function armed(fn: () => Promise<void> | void): Promise<number> {
  const timeout = AbortSignal.timeout;
  let n = 0;
  AbortSignal.timeout = (ms: number) => {
    n++;
    return timeout.call(AbortSignal, ms);
  };
  try {
    await fn();
  } finally {
    AbortSignal.timeout = timeout;
  }
  return n;
}

Deno.test("timer: 10^5 alarms set and cleared, or one moved 10^5 times, arm a handful of runtime timers", async () => {
  // a request's timers: a fresh alarm each, set and cleared (a cleared one's timer runs out unheard)
  const fresh = await armed(() => {
    for (let i = 0; i < 100_000; i++) {
      const a = new Alarm();
      a.set(300_000, () => {});
      a.clear();
    }
  });
  assert(fresh <= 2, `${fresh} timers armed`);
  // moved later (an idle timeout restarted on every read), and earlier, ms by ms
  const alarm = new Alarm();
  const later = await armed(() => {
    for (let i = 0; i < 100_000; i++) alarm.set(200_000 + i, () => {});
  });
  assert(later <= 2, `${later} timers armed`);
  const earlier = await armed(() => {
    for (let i = 0; i < 100_000; i++) alarm.set(200_000 - i, () => {});
  });
  alarm.clear();
  assert(earlier <= 20, `${earlier} timers armed`);
  // and all of it still rings on time
  const rang: string[] = [];
  alarm.set(20, () => rang.push("rang"));
  await sleep(60);
  assertEquals(rang, ["rang"]);
});

Deno.test("timer: 0, negative, NaN, Infinity and over 2^31 ms", async () => {
  const rang: string[] = [];
  const alarms = [0, -5, NaN, Infinity, 2 ** 31 + 5, 2 ** 53].map((ms) => {
    const a = new Alarm();
    a.set(ms, () => rang.push(String(ms)));
    return a;
  });
  await sleep(30);
  // 0 and negative ring at once; NaN and Infinity never; past setTimeout's range is not 1 ms
  assertEquals(rang.sort(), ["-5", "0"]);
  assertEquals(alarms.map((a) => a.pending), [false, false, false, false, true, true]);
  for (const a of alarms) a.clear();
  assert(!alarms.some((a) => a.pending));
});

Deno.test("timer: an alarm cleared (or moved later) when its timer is already due does not ring", async () => {
  const rang: string[] = [];
  const cleared = new Alarm();
  const moved = new Alarm();
  const other = new Alarm();
  cleared.set(1, () => rang.push("cleared"));
  moved.set(1, () => rang.push("moved"));
  // one alarm's ring clears another due at the same moment
  other.set(1, () => {
    rang.push("other");
    cleared.clear();
  });
  const t0 = performance.now();
  while (performance.now() - t0 < 10) { /* the timers are due, their events not yet run */ }
  cleared.clear();
  moved.set(40, () => rang.push("moved later"));
  cleared.set(1, () => rang.push("cleared, set again"));
  await sleep(20);
  assert(!rang.includes("moved"), rang.join());
  assert(moved.pending);
  await sleep(60);
  assertEquals(rang.filter((r) => r !== "cleared, set again" && r !== "other"), ["moved later"]);
  assert(!moved.pending);
});
