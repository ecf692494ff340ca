/**
 * What the CLI's Ctrl-C (SIGINT) and SIGTERM handler in `cli.ts` needs to
 * know, kept apart from the modules that set it so that every command
 * starts without loading them: whether live progress lines are on the
 * terminal (the handler clears them before it says `interrupted`), and
 * whether a running `serve` handles the signals itself (graceful stop, exit
 * 0: the handler stands aside).
 *
 * @module
 */

let owned = false;
let onScreen: (() => void) | undefined;

/**
 * `serve` takes the signals over while it runs, and gives them back.
 * @param on true while `serve` handles them
 */
export function ownSignals(on: boolean): void {
  owned = on;
}

/**
 * Whether a running `serve` handles SIGINT/SIGTERM itself (graceful stop,
 * exit 0), so the CLI's exit-on-signal handler stands aside.
 *
 * @returns true while `serve` runs
 */
export function signalsOwned(): boolean {
  return owned;
}

/**
 * The live progress display is on screen: `clear` takes its lines off.
 * @param clear what {@link clearProgress} calls
 */
export function progressShown(clear: () => void): void {
  onScreen = clear;
}

/**
 * The live progress display is gone (when `clear` is the one on screen).
 * @param clear what {@link progressShown} was given
 */
export function progressGone(clear: () => void): void {
  if (onScreen === clear) onScreen = undefined;
}

/**
 * Take the live progress lines off the terminal, if any are drawn — for the
 * Ctrl-C handler, before it says `interrupted` and exits.
 */
export function clearProgress(): void {
  onScreen?.();
}
