/**
 * `ocipkg lock`: pin the tags a project uses to digests in its `ocipkg.lock`,
 * re-resolve them (`--update`), or check them against their registries
 * (`--check`, for CI).
 *
 * @module
 */
import { checkLock, lockImages, OcipkgError, UsageError } from "../../mod.ts";
import { parsePlatform } from "../oci/mod.ts";
import { defineCommand } from "./options.ts";
import { info, out, outLines } from "./output.ts";
import { lockFileOption, registryHints, registryOptions, remote, verifyOption } from "./shared.ts";

/** The command. */
export default defineCommand({
  name: "lock",
  usage:
    "lock [<image>...] [--update] [--check] [--platform os/arch]... [--lock path] [--verify-key pub]... [--plain-http] [--ca-file pem]",
  summary:
    "Pin tags to digests in the project's ocipkg.lock; --update moves them, --check compares",
  positionals: [0, Infinity],
  options: {
    update: {
      type: "boolean",
      description: "re-resolve the tags of locked images (every entry when no image is named)",
    },
    check: {
      type: "boolean",
      description:
        "compare each entry with its registry: one line per mismatch and exit 1 (for CI); nothing is written",
    },
    platform: {
      type: "string",
      multiple: true,
      value: "os/arch[/variant]|triple",
      description: "lock this platform's manifest too, besides the host's (repeatable)",
    },
    ...lockFileOption,
    ...verifyOption,
    ...registryOptions,
  },
  examples: [
    {
      command: "ocipkg lock",
      description:
        "create ./ocipkg.lock (empty): from now on get, link and the FFI loader record what they install",
    },
    {
      command: "ocipkg lock ghcr.io/org/libfoo:1.2 --platform linux/arm64",
      description: "pin the tag's digest, for this host and linux/arm64 (no layer is fetched)",
    },
    {
      command: "ocipkg lock --update ghcr.io/org/libfoo:1.2",
      description: "move the entry to what the tag names now (all entries without an image)",
    },
    {
      command: "ocipkg lock --check",
      description: "in CI: exit 1, one line each, when a locked tag moved on its registry",
    },
  ],
  hints: registryHints,
  async run(images, opts) {
    if (opts.check) {
      if (opts.update || opts.platform.length || opts.verifyKey.length) {
        throw new UsageError("--check takes no --update, --platform or --verify-key");
      }
      const r = await checkLock(images, { ...remote(opts), lock: opts.lock });
      outLines(r.mismatches.map((m) => {
        const which = m.platform ? `${m.image} (${m.platform})` : m.image;
        const now = m.now ?? (m.platform ? "no manifest for it" : "no such tag");
        return `${which}: locked ${m.locked}, the registry has ${now}`;
      }));
      const of = (n: number) => n === 1 ? `${n} locked image` : `${n} locked images`;
      if (r.mismatches.length) {
        const moved = new Set(r.mismatches.map((m) => m.image)).size;
        throw new OcipkgError(
          `${r.path}: ${moved} of ${of(r.checked)} no longer ${
            moved === 1 ? "matches its" : "match their"
          } registry ('ocipkg lock --update' moves them)`,
        );
      }
      out(
        `${r.path}: ${of(r.checked)} ${r.checked === 1 ? "matches its" : "match their"} registry`,
      );
      return;
    }
    const r = await lockImages(images, {
      ...remote(opts),
      lock: opts.lock,
      update: opts.update,
      platforms: opts.platform.map((p) => parsePlatform(p)),
      verifyKeys: opts.verifyKey,
      verifyKeysLabel: "--verify-key",
    });
    for (const c of r.changes) {
      out(`${c.image} ${c.digest}`);
      if (c.previous === undefined) info(`locked ${c.image}`);
      else if (c.previous !== c.digest) info(`${c.image}: ${c.previous} -> ${c.digest}`);
      else if (!opts.update) info(`${c.image} was locked already (--update re-resolves its tag)`);
    }
    info(`wrote ${r.path}`);
  },
});
