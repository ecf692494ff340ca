/**
 * Passwords for cosign keys: `$COSIGN_PASSWORD` (cosign's variable; set but
 * empty is an empty password), else asked on the terminal without echo.
 *
 * @module
 */
import { UsageError } from "../util/errors.ts";

/**
 * Read a line from the terminal without echoing it.
 * @param prompt shown on stderr
 * @returns the text typed
 * @throws {UsageError} when there is no terminal, or on Ctrl-C / Ctrl-D
 */
export async function askPassword(prompt: string): Promise<string> {
  if (!Deno.stdin.isTerminal()) {
    throw new UsageError("no terminal to ask for the key's password: set COSIGN_PASSWORD");
  }
  const enc = new TextEncoder();
  await Deno.stderr.write(enc.encode(prompt));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  try {
    const buf = new Uint8Array(64);
    while (true) {
      const n = await Deno.stdin.read(buf);
      if (n === null) throw new UsageError("no password given");
      for (const b of buf.subarray(0, n)) {
        if (b === 0x0d || b === 0x0a) return new TextDecoder().decode(new Uint8Array(bytes));
        if (b === 0x03 || b === 0x04) throw new UsageError("no password given");
        if (b === 0x7f || b === 0x08) bytes.pop();
        else bytes.push(b);
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(enc.encode("\n"));
  }
}

/**
 * The password of an existing key: `$COSIGN_PASSWORD`, else asked once.
 * @returns a function the key reader calls only for an encrypted key
 */
export function keyPassword(): () => Promise<string> {
  return async () =>
    Deno.env.get("COSIGN_PASSWORD") ?? await askPassword("Enter password for private key: ");
}

/**
 * The password for a new key: `$COSIGN_PASSWORD`, else asked twice.
 * @returns the password
 * @throws {UsageError} when the two do not match
 */
export async function newKeyPassword(): Promise<string> {
  const env = Deno.env.get("COSIGN_PASSWORD");
  if (env !== undefined) return env;
  const a = await askPassword("Enter password for private key: ");
  const b = await askPassword("Enter password for private key again: ");
  if (a !== b) throw new UsageError("the passwords do not match");
  return a;
}
