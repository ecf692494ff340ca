// The README's shell examples as scripts (tests/readme_test.ts runs them): its ```sh and ```bash
// blocks, each with the comment that may precede it (`<!-- not run …: reason -->`), and the few
// rewrites that keep a run hermetic and parallel-safe — each one listed here, nothing else:
//
// - every loopback port named (`localhost:5000`, `127.0.0.1:5000`, `[::1]:5000`) becomes a free
//   port, the same one wherever the README (or a file of the checkout) names it;
// - `ocipkg serve` without `--addr` gets `--addr 127.0.0.1:<5000's port>`;
// - `npx -y deno` becomes the Deno binary running the test (the one npx brought), so npx makes no
//   request to the npm registry;
// - a command started in the background (`… &`) is waited for — until its port (the one its line
//   names, else 5000's) accepts a connection — before the next line, and stopped (SIGTERM) when its
//   block ends.
//
// What a line's comment states is checked: `# exit N…` — that it exits N (any other line must exit
// 0); `# → text` — that its stdout holds the text (`<…>` and `…` in it stand for anything). In a
// transcript block (lines starting with `$ `) the commands run and the sample output is not
// compared.

/** One fenced shell block of the README. */
export interface Block {
  /** 1-based line of the opening fence. */
  line: number;
  /** The lines inside the fence, the block's indentation removed. */
  lines: string[];
  /** Why it is not run (the `<!-- not run …: reason -->` comment before it), or undefined. */
  notRun?: string;
}

/** The ```sh / ```bash blocks of a Markdown text, in order. */
export function shellBlocks(markdown: string): Block[] {
  const lines = markdown.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(sh|bash)\s*$/.exec(lines[i]!);
    if (!open) {
      // skip any other fence whole, so its content is not read as Markdown
      if (/^\s*```/.test(lines[i]!)) {
        while (++i < lines.length && !/^\s*```\s*$/.test(lines[i]!));
      }
      continue;
    }
    const indent = open[1]!.length;
    const body: string[] = [];
    const start = i;
    while (++i < lines.length && !/^\s*```\s*$/.test(lines[i]!)) body.push(lines[i]!.slice(indent));
    let prev = start - 1;
    while (prev >= 0 && lines[prev]!.trim() === "") prev--;
    const marker = prev >= 0
      ? /^\s*<!--\s*not run\b[^:]*:\s*(.*?)\s*-->\s*$/.exec(lines[prev]!)
      : null;
    blocks.push({ line: start + 1, lines: body, notRun: marker ? marker[1] : undefined });
  }
  return blocks;
}

const LOOPBACK_PORT = /\b(localhost|127\.0\.0\.1|\[::1\]):(\d{2,5})\b/g;

/** The loopback ports a text names. */
export function loopbackPorts(text: string): number[] {
  return [...text.matchAll(LOOPBACK_PORT)].map((m) => Number(m[2]));
}

/** `text` with each loopback port named in `ports` replaced by its free port. */
export function withPorts(text: string, ports: Map<number, number>): string {
  return text.replace(
    LOOPBACK_PORT,
    (all, host: string, port: string) =>
      ports.has(Number(port)) ? `${host}:${ports.get(Number(port))}` : all,
  );
}

function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'"'"'`)}'`;
}

/** The comment at the end of a logical line (after ` # `), and the command before it. */
function splitComment(line: string): { command: string; comment?: string } {
  const m = /^(.*?\S)\s+#\s+(.*)$/s.exec(line);
  return m ? { command: m[1]!, comment: m[2]! } : { command: line };
}

/** An extended regular expression matching `text`, with `<…>` and `…` matching anything. */
export function outputPattern(text: string): string {
  return text.split(/<[^>]*>|…/).map((part) => part.replace(/[.[\]()*+?{}|^$\\]/g, "\\$&"))
    .join(".*");
}

/** What a script needs besides the block: the Deno binary, and the port map. */
export interface ScriptContext {
  /** The Deno binary `npx -y deno` stands for. */
  deno: string;
  /** README port → free port. */
  ports: Map<number, number>;
}

/**
 * The bash script that runs a block: `set -e`, the rewrites above, the checks its comments state,
 * and on failure the README line that failed.
 */
export function blockScript(block: Block, ctx: ScriptContext): string {
  const main = ctx.ports.get(5000);
  const out = [
    "set -eo pipefail",
    "__line=0",
    `trap 'echo "README line $__line failed (exit $?)" >&2' ERR`,
    // stop what the block started in the background, then end with the block's status
    "trap '__s=$?; kill $(jobs -p) 2>/dev/null || true; wait || true; exit $__s' EXIT",
    "__ready() {",
    "  for __i in $(seq 600); do",
    "    (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0",
    "    sleep 0.1",
    "  done",
    '  echo "nothing listens on port $1 after 60 s" >&2; return 1',
    "}",
    "__expect_exit() {",
    '  [ "$2" -eq "$1" ] || { echo "README line $__line: exit $2, not $1 as the README says" >&2; exit 1; }',
    "}",
    "__expect_out() {",
    '  printf "%s\\n" "$2"',
    '  printf "%s" "$2" | grep -qE -- "$1" ||',
    '    { echo "README line $__line: the output does not match the README: $1" >&2; exit 1; }',
    "}",
  ];
  const transcript = block.lines.some((l) => l.startsWith("$ "));
  let i = 0;
  while (i < block.lines.length) {
    const first = i;
    const physical = [block.lines[i]!];
    while (physical.at(-1)!.endsWith("\\") && i + 1 < block.lines.length) {
      physical.push(block.lines[++i]!);
    }
    i++;
    let text = physical.join("\n");
    if (transcript) {
      if (!text.startsWith("$ ")) continue; // sample output
      text = text.slice(2);
    }
    if (text.trim() === "" || text.trimStart().startsWith("#")) continue;
    text = withPorts(text, ctx.ports).replaceAll("npx -y deno", shQuote(ctx.deno));
    if (main !== undefined) {
      text = text.replace(
        /\bocipkg serve\b(?![^#\n]*--addr)/,
        `ocipkg serve --addr 127.0.0.1:${main}`,
      );
    }
    const { command, comment } = splitComment(text);
    out.push(`__line=${block.line + 1 + first}`);
    const exit = comment && /^exit (\d+)\b/.exec(comment);
    const shown = comment && /^→ (.*)$/.exec(comment);
    if (exit) {
      out.push(`__rc=0; ${command} || __rc=$?; __expect_exit ${exit[1]} "$__rc"`);
    } else if (shown) {
      out.push(
        `__out=$( ${command} )`,
        `__expect_out ${shQuote(outputPattern(shown[1]!))} "$__out"`,
      );
    } else if (/&$/.test(command)) {
      out.push(command, `__ready ${loopbackPorts(text)[0] ?? main}`);
    } else {
      out.push(command);
    }
  }
  return out.join("\n") + "\n";
}
