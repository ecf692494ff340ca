/**
 * `ocipkg key generate`: a cosign key pair.
 *
 * @module
 */
import { generateKeyFiles } from "../../mod.ts";
import { defineCommand } from "./options.ts";
import { info, out } from "./output.ts";
import { newKeyPassword } from "./password.ts";
import { jsonOption } from "./shared.ts";

/** The command. */
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
  async run(_generate, opts) {
    const prefix = opts.outputKeyPrefix ?? "cosign";
    const files = await generateKeyFiles(prefix, {
      password: await newKeyPassword(),
      force: opts.force,
    });
    if (opts.json) out(JSON.stringify(files));
    else {
      info(`Private key written to ${files.key}`);
      info(`Public key written to ${files.pub}`);
    }
  },
});
