/**
 * Every `ocipkg` command, in the order `ocipkg --help` lists them: each one's
 * table (`lib/cli/<name>.ts`: usage, options, examples — what help,
 * completions and "did you mean" read) and the loader of its work
 * (`lib/cli/<name>_run.ts`, imported only when the command runs, so that a
 * command loads the library modules it uses and no others). A new command is
 * those two modules (see `pack.ts`, `pack_run.ts`) added here.
 *
 * @module
 */
import pack from "./pack.ts";
import compose from "./compose.ts";
import inspect from "./inspect.ts";
import load from "./load.ts";
import push from "./push.ts";
import get from "./get.ts";
import pull from "./pull.ts";
import copy from "./copy.ts";
import tags from "./tags.ts";
import catalog from "./catalog.ts";
import manifest from "./manifest.ts";
import blob from "./blob.ts";
import deleteCommand from "./delete.ts";
import resolve from "./resolve.ts";
import tag from "./tag.ts";
import login from "./login.ts";
import logout from "./logout.ts";
import link from "./link.ts";
import lock from "./lock.ts";
import runnable from "./runnable.ts";
import cargo from "./cargo.ts";
import list from "./list.ts";
import imageDirectory from "./image_directory.ts";
import rm from "./rm.ts";
import prune from "./prune.ts";
import serve from "./serve.ts";
import key from "./key.ts";
import sign from "./sign.ts";
import verify from "./verify.ts";
import verifyBlob from "./verify_blob.ts";
import attest from "./attest.ts";
import verifyAttestation from "./verify_attestation.ts";
import attach from "./attach.ts";
import discover from "./discover.ts";
import completions, { completeCommands } from "./completions.ts";
import { type Command, lazyCommand } from "./options.ts";

/** The commands, in help order. */
export const COMMANDS: readonly Command[] = [
  lazyCommand(pack, () => import("./pack_run.ts")),
  lazyCommand(compose, () => import("./compose_run.ts")),
  lazyCommand(inspect, () => import("./inspect_run.ts")),
  lazyCommand(load, () => import("./load_run.ts")),
  lazyCommand(push, () => import("./push_run.ts")),
  lazyCommand(get, () => import("./get_run.ts")),
  lazyCommand(pull, () => import("./pull_run.ts")),
  lazyCommand(copy, () => import("./copy_run.ts")),
  lazyCommand(tags, () => import("./tags_run.ts")),
  lazyCommand(catalog, () => import("./catalog_run.ts")),
  lazyCommand(resolve, () => import("./resolve_run.ts")),
  lazyCommand(tag, () => import("./tag_run.ts")),
  lazyCommand(manifest, () => import("./manifest_run.ts")),
  lazyCommand(blob, () => import("./blob_run.ts")),
  lazyCommand(deleteCommand, () => import("./delete_run.ts")),
  lazyCommand(login, () => import("./login_run.ts")),
  lazyCommand(logout, () => import("./logout_run.ts")),
  lazyCommand(link, () => import("./link_run.ts")),
  lazyCommand(lock, () => import("./lock_run.ts")),
  lazyCommand(runnable, () => import("./runnable_run.ts")),
  lazyCommand(cargo, () => import("./cargo_run.ts")),
  lazyCommand(list, () => import("./list_run.ts")),
  lazyCommand(imageDirectory, () => import("./image_directory_run.ts")),
  lazyCommand(rm, () => import("./rm_run.ts")),
  lazyCommand(prune, () => import("./prune_run.ts")),
  lazyCommand(serve, () => import("./serve_run.ts")),
  lazyCommand(key, () => import("./key_run.ts")),
  lazyCommand(sign, () => import("./sign_run.ts")),
  lazyCommand(verify, () => import("./verify_run.ts")),
  lazyCommand(verifyBlob, () => import("./verify_blob_run.ts")),
  lazyCommand(attest, () => import("./attest_run.ts")),
  lazyCommand(verifyAttestation, () => import("./verify_attestation_run.ts")),
  lazyCommand(attach, () => import("./attach_run.ts")),
  lazyCommand(discover, () => import("./discover_run.ts")),
  lazyCommand(completions, () => import("./completions_run.ts")),
];
completeCommands(COMMANDS);

/**
 * The command of a name.
 * @param name e.g. `pack`
 * @returns the command, or undefined
 */
export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}
