// A real terminal for tests: a tmux session on a private socket, driven with send-keys and read
// with capture-pane — what a user sees on screen (completion lists, progress lines, what is left
// after Ctrl-C). Waiting polls the screen until it shows what is expected; the deadline only turns
// a hang into a failure that shows the screen.
import { join } from "node:path";
import { tempDir } from "./_helpers.ts";

/** How long a wait may take before it fails (a hang guard, not a timing assertion). */
const HANG_MS = 30_000;

export class Tmux {
  #sock: string;

  private constructor(sock: string) {
    this.#sock = sock;
  }

  /**
   * Start `command` (run by `sh -c`) in a new 160×40 terminal.
   * @param command the shell command line
   * @param env the environment (nothing else is inherited)
   */
  static async start(command: string, env: Record<string, string>): Promise<Tmux> {
    const t = new Tmux(join(await tempDir("ocipkg-tmux-"), "sock"));
    await t.#tmux(["-f", "/dev/null", "new-session", "-d", "-x", "160", "-y", "40", command], env);
    return t;
  }

  async #tmux(args: string[], env?: Record<string, string>): Promise<string> {
    const r = await new Deno.Command("tmux", {
      args: ["-S", this.#sock, ...args],
      env: env ?? {},
      clearEnv: env !== undefined,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    if (!r.success) throw new Error(`tmux ${args[0]}: ${dec.decode(r.stderr)}`);
    return dec.decode(r.stdout);
  }

  /**
   * Type text (literally), then keys by name (`Tab`, `Enter`, `C-c`).
   * @param text the text
   * @param keys the keys after it
   */
  async type(text: string, ...keys: string[]): Promise<void> {
    if (text) await this.#tmux(["send-keys", "-t", "0", "-l", text]);
    if (keys.length) await this.#tmux(["send-keys", "-t", "0", ...keys]);
  }

  /** The screen's text (wrapped lines joined), trailing blank lines dropped. */
  async screen(): Promise<string> {
    return (await this.#tmux(["capture-pane", "-p", "-J", "-t", "0"])).replace(/\s+$/, "");
  }

  /**
   * Wait until the screen satisfies `ok`.
   * @param ok the test
   * @param what what is awaited, for the failure message
   * @returns the screen
   */
  async waitFor(ok: (screen: string) => boolean, what: string): Promise<string> {
    const end = Date.now() + HANG_MS;
    for (;;) {
      const s = await this.screen();
      if (ok(s)) return s;
      if (Date.now() > end) throw new Error(`waited for ${what}; the screen:\n${s}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** End the session and its server. */
  async stop(): Promise<void> {
    await this.#tmux(["kill-server"]).catch(() => {});
  }
}
