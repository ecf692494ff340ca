/**
 * Load libgreet's shared library from an OCI registry and call it.
 *
 *   deno run -A examples/deno-ffi/main.ts localhost:5000/examples/greet:1.0
 *
 * In your own code import from "jsr:@ocipkg/cli" instead of "../../mod.ts".
 */
import { openLibrary } from "../../lib/native/mod.ts";

const image = Deno.args[0] ?? "localhost:5000/examples/greet:1.0";
const lib = await openLibrary(image, "greet", {
  greet_answer: { parameters: [], result: "i32" },
  greet_message: { parameters: [], result: "pointer" },
});
try {
  const message = Deno.UnsafePointerView.getCString(lib.symbols.greet_message()!);
  console.log(`${message} ${lib.symbols.greet_answer()}`);
} finally {
  lib.close();
}
