// lib/util/path.ts replaces node:path on POSIX systems (importing node:path starts Deno's Node layer:
// see tests/startup_test.ts). It must give exactly what node:path.posix gives, for any input.
import fc from "fast-check";
import { posix as nodePosix } from "node:path";
import { assertEquals } from "./_assert.ts";
import * as path from "../lib/util/path.ts";

const SEGMENT = fc.constantFrom("", ".", "..", "a", "b", "lib", "x.so", "...", ".a", "a.");
const PATH = fc.array(SEGMENT, { maxLength: 6 }).chain((segs) =>
  fc.tuple(fc.boolean(), fc.boolean(), fc.integer({ min: 1, max: 3 })).map(([abs, trail, n]) =>
    (abs ? "/" : "") + segs.join("/".repeat(n)) + (trail ? "/" : "")
  )
);
const PARAMS = { seed: 1124, numRuns: 3000 };
const posixHost = Deno.build.os !== "windows";

Deno.test("path: posix join, dirname, basename equal node:path.posix on random paths", () => {
  fc.assert(
    fc.property(fc.array(PATH, { maxLength: 4 }), PATH, (parts, p) => {
      assertEquals(path.posix.join(...parts), nodePosix.join(...parts), `join ${parts}`);
      assertEquals(path.posix.dirname(p), nodePosix.dirname(p), `dirname ${p}`);
      assertEquals(path.posix.basename(p), nodePosix.basename(p), `basename ${p}`);
      return true;
    }),
    PARAMS,
  );
});

Deno.test({
  name: "path: host join, resolve, relative, dirname, basename, isAbsolute equal node:path",
  ignore: !posixHost,
  fn() {
    fc.assert(
      fc.property(fc.array(PATH, { maxLength: 4 }), PATH, PATH, (parts, a, b) => {
        assertEquals(path.join(...parts), nodePosix.join(...parts));
        assertEquals(path.resolve(...parts), nodePosix.resolve(...parts), `resolve ${parts}`);
        assertEquals(path.relative(a, b), nodePosix.relative(a, b), `relative ${a} ${b}`);
        assertEquals(path.dirname(a), nodePosix.dirname(a));
        assertEquals(path.basename(a), nodePosix.basename(a));
        assertEquals(path.isAbsolute(a), nodePosix.isAbsolute(a));
        return true;
      }),
      PARAMS,
    );
    assertEquals(path.sep, "/");
    assertEquals(path.resolve(), Deno.cwd());
  },
});
