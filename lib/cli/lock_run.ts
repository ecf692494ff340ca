/**
 * The work of `ocipkg lock`: pin the tags a project uses to digests in its
 * `ocipkg.lock`, re-resolve them (`--update`), or check them against their
 * registries (`--check`, for CI). Its table (usage, options, examples) is
 * `lock.ts`; this module is loaded only when the command runs.
 *
 * @module
 */
import { checkLock, lockImages } from "../ops/lock_images.ts";
import { OcipkgError, UsageError } from "../util/errors.ts";
import { parsePlatform } from "../oci/platform.ts";
import { implement } from "./options.ts";
import { info, out, outLines } from "./output.ts";
import { remote } from "./shared.ts";
import command from "./lock.ts";

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async (images, opts) => {
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
});
