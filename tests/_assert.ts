// Small std-like assertions over node:assert (JSR's @std/assert is unreachable here).
import { deepStrictEqual, ok } from "node:assert/strict";

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  deepStrictEqual(actual, expected, msg);
}

export function assert(cond: unknown, msg?: string): asserts cond {
  ok(cond, msg);
}

export function assertStringIncludes(actual: string, expected: string, msg?: string): void {
  ok(
    actual.includes(expected),
    msg ?? `expected ${JSON.stringify(actual)} to include ${JSON.stringify(expected)}`,
  );
}

type ErrorClass = abstract new (...args: never[]) => Error;

function check(e: unknown, cls?: ErrorClass, includes?: string): Error {
  ok(e instanceof Error, `expected an Error, got ${String(e)}`);
  if (cls) ok(e instanceof cls, `expected ${cls.name}, got ${e.constructor.name}: ${e.message}`);
  if (includes) assertStringIncludes(e.message, includes);
  return e;
}

export function assertThrows(fn: () => unknown, cls?: ErrorClass, includes?: string): Error {
  try {
    fn();
  } catch (e) {
    return check(e, cls, includes);
  }
  throw new Error("expected function to throw");
}

export async function assertRejects(
  fn: () => Promise<unknown>,
  cls?: ErrorClass,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return check(e, cls, includes);
  }
  throw new Error("expected promise to reject");
}
