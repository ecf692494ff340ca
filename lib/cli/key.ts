/**
 * `ocipkg key generate`: a cosign key pair.
 *
 * @module
 */
import { defineCommand } from "./options.ts";
import { jsonOption } from "./shared.ts";

/** The command's table (its work: `key_run.ts`). */
export default defineCommand({
  name: "key",
  usage: "key generate [--output-key-prefix cosign] [--force] [--json]",
  summary: "Generate a cosign key pair (ECDSA P-256; the private key encrypted as cosign does)",
  positionals: [1, 1],
  subcommands: { what: "action", words: ["generate"] },
  options: {
    "output-key-prefix": {
      type: "string",
      value: "prefix",
      default: "cosign",
      description: "write <prefix>.key and <prefix>.pub",
    },
    force: { type: "boolean", description: "replace existing key files" },
    ...jsonOption,
  },
  examples: [
    {
      command: "COSIGN_PASSWORD=… ocipkg key generate",
      description: "write cosign.key (encrypted, mode 0600) and cosign.pub; cosign reads both",
    },
    {
      command: "ocipkg key generate --output-key-prefix release",
      description: "release.key and release.pub; the password is asked twice on the terminal",
    },
  ],
});
