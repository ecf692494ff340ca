import { assertEquals, assertThrows } from "./_assert.ts";
import { ImageName, UsageError } from "../mod.ts";

const D = "sha256:" + "ab".repeat(32);

Deno.test("reference: full grammar parses and formats back", () => {
  const cases: [string, string, string][] = [
    [
      "alpine",
      "registry-1.docker.io/library/alpine:latest",
      "registry-1.docker.io/library/alpine/__latest",
    ],
    [
      "termoshtt/foo:1",
      "registry-1.docker.io/termoshtt/foo:1",
      "registry-1.docker.io/termoshtt/foo/__1",
    ],
    [
      "docker.io/alpine:3",
      "registry-1.docker.io/library/alpine:3",
      "registry-1.docker.io/library/alpine/__3",
    ],
    ["ghcr.io/org/libfoo:1.2", "ghcr.io/org/libfoo:1.2", "ghcr.io/org/libfoo/__1.2"],
    ["localhost:5000/a/b/c:v1_x", "localhost:5000/a/b/c:v1_x", "localhost__5000/a/b/c/__v1_x"],
    [`ghcr.io/org/x@${D}`, `ghcr.io/org/x@${D}`, `ghcr.io/org/x/__sha256__${"ab".repeat(32)}`],
    [`ghcr.io/org/x:1@${D}`, `ghcr.io/org/x@${D}`, `ghcr.io/org/x/__sha256__${"ab".repeat(32)}`],
    ["127.0.0.1:5000/x", "127.0.0.1:5000/x:latest", "127.0.0.1__5000/x/__latest"],
    ["localhost/x-y__z.w", "localhost/x-y__z.w:latest", "localhost/x-y__z.w/__latest"],
  ];
  for (const [input, formatted, path] of cases) {
    const n = ImageName.parse(input);
    assertEquals(n.toString(), formatted, input);
    assertEquals(n.storePath().join("/"), path, input);
    assertEquals(ImageName.fromStorePath(n.storePath()).toString(), formatted, input);
    assertEquals(ImageName.parse(n.toString()).toString(), formatted, input);
  }
});

Deno.test("reference: parts and defaults", () => {
  const n = ImageName.parse("localhost:5000/org/lib:2");
  assertEquals([n.hostname, n.port, n.name, n.tag, n.reference], [
    "localhost",
    5000,
    "org/lib",
    "2",
    "2",
  ]);
  assertEquals(n.registry, "localhost:5000");
  assertEquals(n.isLoopback, true);
  assertEquals(ImageName.parse("ghcr.io/a/b").isLoopback, false);
  assertEquals(n.withReference(D).toString(), `localhost:5000/org/lib@${D}`);
});

Deno.test("reference: invalid names name the input", () => {
  for (
    const bad of [
      "",
      "UPPER/x",
      "a//b",
      "x:",
      "x:-tag",
      "ghcr.io/",
      "host:99999/x",
      "x@sha256:zz",
      "a b",
      "-a",
    ]
  ) {
    const e = assertThrows(() => ImageName.parse(bad), UsageError);
    assertEquals((e as Error).message.startsWith(`invalid image name '${bad}'`), true, bad);
  }
});
