/**
 * "Did you mean …?" for a mistyped command, subcommand or option: the
 * candidates within a small edit distance (Damerau-Levenshtein, a swap of
 * two neighbours counting as one edit), or that start with what was typed.
 *
 * @module
 */

/**
 * The edit distance between two words: insertions, deletions, substitutions
 * and swaps of two neighbouring letters each count 1 (optimal string
 * alignment).
 *
 * @param a a word
 * @param b another
 * @returns the number of edits
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { editDistance } from "./suggest.ts";
 * assert.equal(editDistance("psuh", "push"), 1); // one swap
 * assert.equal(editDistance("pul", "pull"), 1);
 * assert.equal(editDistance("pack", "push"), 3);
 * ```
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidates a mistyped word probably meant (at most three, the closest
 * only): those one edit away, else those it is the start of (two letters or
 * more), else — for words of five letters or more — those two edits away.
 *
 * @param word what was typed
 * @param candidates the words it could have been
 * @returns the likely ones
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { suggest } from "./suggest.ts";
 * const commands = ["pack", "push", "pull", "cargo", "copy"];
 * assert.deepEqual(suggest("psuh", commands), ["push"]);
 * assert.deepEqual(suggest("carg", commands), ["cargo"]);
 * assert.deepEqual(suggest("frobnicate", commands), []);
 * ```
 */
export function suggest(word: string, candidates: readonly string[]): string[] {
  const limit = word.length <= 4 ? 1 : 2;
  const scored: [string, number][] = [];
  for (const c of new Set(candidates)) {
    const distance = editDistance(word, c);
    // the start of a word counts between one edit and two: `compl` is completions, not copy
    const prefix = word.length >= 2 && c.startsWith(word) ? 1.5 : Infinity;
    const score = Math.min(distance <= limit ? distance : Infinity, prefix);
    if (score !== Infinity) scored.push([c, score]);
  }
  // only the closest: `carg` is one edit from `cargo`, so not `tag` (two) too
  const best = Math.min(...scored.map(([, s]) => s));
  return scored.filter(([, s]) => s === best).slice(0, 3).map(([c]) => c);
}

/**
 * The "did you mean" clause for a message: `; did you mean 'push'?`, or
 * empty when nothing is close.
 *
 * @param word what was typed
 * @param candidates the words it could have been
 * @returns the clause
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { didYouMean } from "./suggest.ts";
 * assert.equal(didYouMean("--compresion", ["--compression", "--level"]), "; did you mean '--compression'?");
 * assert.equal(didYouMean("pu", ["pack", "pull", "push"]), "; did you mean 'pull' or 'push'?");
 * assert.equal(didYouMean("zzz", ["pull"]), "");
 * ```
 */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const found = suggest(word, candidates).map((c) => `'${c}'`);
  if (found.length === 0) return "";
  const list = found.length === 1
    ? found[0]
    : `${found.slice(0, -1).join(", ")} or ${found.at(-1)}`;
  return `; did you mean ${list}?`;
}
