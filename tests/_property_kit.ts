// What the property modules share: failing with the invariant that broke, weighted
// alternatives, and naming an unexpected error.
import fc from "fast-check";

/** Fail a property run, naming the invariant that broke (and the value, shown by fast-check). */
export function fail(why: string, detail?: unknown): never {
  throw new Error(detail === undefined ? why : `${why}: ${fc.stringify(detail)}`);
}

/** A weighted alternative for fc.oneof. */
export const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });

/** An unexpected error as `<class>: <message>` (the message cut at 300 characters). */
export function errorName(e: unknown): string {
  return e instanceof Error ? `${e.constructor.name}: ${e.message.slice(0, 300)}` : String(e);
}
