/**
 * Every `ocipkg` command, in the order `ocipkg --help` lists them. A new
 * command is a module `lib/cli/<name>.ts` (see `pack.ts`) added here.
 *
 * @module
 */
import type { Command } from "./options.ts";
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

/** The commands, in help order. */
export const COMMANDS: readonly Command[] = [
  pack,
  compose,
  inspect,
  load,
  push,
  get,
  pull,
  copy,
  tags,
  catalog,
  resolve,
  tag,
  manifest,
  blob,
  deleteCommand,
  login,
  logout,
  link,
  lock,
  runnable,
  cargo,
  list,
  imageDirectory,
  rm,
  prune,
  serve,
  key,
  sign,
  verify,
  verifyBlob,
  attest,
  verifyAttestation,
  attach,
  discover,
  completions,
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
