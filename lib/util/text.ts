/**
 * Text that reaches a terminal: values from registries and archives (tags,
 * error bodies, entry names, annotations) may hold control characters that
 * move the cursor, rewrite earlier lines or set the window title (CWE-150).
 *
 * @module
 */

// C0 controls except none, DEL, C1 controls, and the Unicode bidi/line controls
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Make a value safe to print on one terminal line: every control character
 * (C0, DEL, C1, Unicode line/bidi controls) becomes a visible escape such as
 * `\u001b` or `\u202e` (also valid inside a JSON string), and newlines become `\n`.
 *
 * @param s any text, e.g. from a registry or an archive
 * @returns the same text with control characters escaped
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { printable } from "./text.ts";
 * assert.equal(printable("v1\u001b[2J"), "v1\\u001b[2J");
 * assert.equal(printable("a\nb\tc"), "a\\nb\\tc");
 * assert.equal(printable("libfoo 1.2"), "libfoo 1.2"); // ordinary text is unchanged
 * ```
 */
export function printable(s: string): string {
  return s.replace(CONTROL, (c) => {
    if (c === "\n") return "\\n";
    if (c === "\r") return "\\r";
    if (c === "\t") return "\\t";
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}

/**
 * Standard base64 (with padding) of bytes, without `node:buffer` (costly to
 * start; see lib/util/lazy_node.ts).
 *
 * @param bytes any bytes
 * @returns their base64 text
 */
export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/**
 * The bytes of standard base64 text. The caller checks the alphabet first
 * when the text is untrusted; `atob` throws on anything else.
 *
 * @param b64 base64 text
 * @returns the bytes
 */
export function fromBase64(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * A size: digits with an optional K, M, G or T suffix (powers of 1024).
 * @param v text, e.g. `512M`
 * @returns the number, or undefined when malformed or too large
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSize } from "./text.ts";
 * assert.equal(parseSize("512M"), 512 * 1024 * 1024);
 * assert.equal(parseSize("x"), undefined);
 * ```
 */
export function parseSize(v: string): number | undefined {
  const m = /^(\d+)([KMGT]i?B?)?$/i.exec(v.trim());
  if (!m) return undefined;
  const unit = m[2] ? 1024 ** ("KMGT".indexOf(m[2][0]!.toUpperCase()) + 1) : 1;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) ? n : undefined;
}
