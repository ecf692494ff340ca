import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { canonicalRegistry, DEFAULT_HOST, ImageName, UsageError } from "../mod.ts";
import { isRepositoryName, isTag } from "../lib/oci/mod.ts";
import { isRegistryHost } from "./_internal.ts";

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

Deno.test("reference: every spelling of one registry gives one identity (name, registry, store path)", () => {
  // [canonical registry, store directory, spellings that reach it]
  const table: [string, string, string[]][] = [
    ["ghcr.io", "ghcr.io", ["ghcr.io", "GHCR.IO", "Ghcr.Io:443", "ghcr.io:0443"]],
    ["ghcr.io:5000", "ghcr.io__5000", ["ghcr.io:5000", "GHCR.io:05000"]],
    ["localhost", "localhost", ["localhost", "LocalHost:80", "localhost:080"]],
    ["localhost:5000", "localhost__5000", ["localhost:5000", "LOCALHOST:5000", "localhost:05000"]],
    // loopback hosts speak plain http by default: :443 is not their default port
    ["localhost:443", "localhost__443", ["localhost:443", "LocalHost:443"]],
    ["example.com:80", "example.com__80", ["example.com:80", "EXAMPLE.com:0080"]],
    [
      "127.0.0.1:5000",
      "127.0.0.1__5000",
      [
        "127.0.0.1:5000",
        "127.1:5000",
        "127.0.1:5000",
        "2130706433:5000",
        "0x7f.0.0.1:5000",
        "0X7F.0x0.0x0.0x1:5000",
        "0177.0.0.1:5000",
        "0177.1:5000",
        "0x7f000001:5000",
        "0.0.0.0:5000",
        "0:5000",
        "[::ffff:127.0.0.1]:5000",
        "[::FFFF:7f00:1]:5000",
        "[0:0:0:0:0:ffff:127.0.0.1]:5000",
      ],
    ],
    ["127.0.0.1", "127.0.0.1", ["127.0.0.1", "127.1:80", "0.0.0.0:80", "[::ffff:127.0.0.1]"]],
    ["10.1.2.3", "10.1.2.3", [
      "10.1.2.3",
      "10.1.2.3:443",
      "012.1.2.3",
      "10.66051",
      "0xa010203:443",
    ]],
    ["[::1]:5000", "[::1]__5000", ["[::1]:5000", "[0:0::1]:5000", "[0:0:0:0:0:0:0:1]:5000"]],
    ["[::1]:5000", "[::1]__5000", ["[0000::0001]:5000", "[::]:5000", "[::0:0]:5000"]],
    ["[::1]", "[::1]", ["[::1]", "[::1]:80", "[0:0::1]:080"]],
    [
      "[2001:db8::42]",
      "[2001:db8::42]",
      [
        "[2001:db8::42]",
        "[2001:DB8:0:0:0:0:0:42]",
        "[2001:0db8::0042]:443",
        "[2001:db8::0.0.0.66]",
      ],
    ],
    [
      "registry-1.docker.io",
      "registry-1.docker.io",
      [
        "docker.io",
        "Docker.IO",
        "docker.io:443",
        "index.docker.io",
        "INDEX.docker.io:443",
        "registry-1.docker.io",
        "Registry-1.Docker.Io:0443",
      ],
    ],
    // Docker Hub's names merge only on its own port: another port is another server
    ["docker.io:5000", "docker.io__5000", ["docker.io:5000", "DOCKER.IO:05000"]],
    ["index.docker.io:5000", "index.docker.io__5000", ["index.docker.io:5000"]],
  ];
  const seen = new Map<string, string>();
  for (const [registry, dir, spellings] of table) {
    for (const spelling of spellings) {
      const n = ImageName.parse(`${spelling}/org/lib:1.0`);
      assertEquals(n.registry, registry, spelling);
      assertEquals(n.toString(), `${registry}/org/lib:1.0`, spelling);
      assertEquals(n.storePath(), [dir, "org", "lib", "__1.0"], spelling);
      assertEquals(ImageName.fromStorePath(n.storePath()).toString(), n.toString(), spelling);
      const { hostname, port } = canonicalRegistry(spelling);
      assertEquals(port === undefined ? hostname : `${hostname}:${port}`, registry, spelling);
      // a single name on Docker Hub gets `library/`, under any of its names
      if (registry === DEFAULT_HOST) {
        assertEquals(
          ImageName.parse(`${spelling}/alpine`).toString(),
          `${DEFAULT_HOST}/library/alpine:latest`,
        );
      }
    }
    seen.set(dir, registry);
  }
  // distinct registries keep distinct identities and store directories
  assertEquals(seen.size, new Set(table.map(([r]) => r)).size);
});

Deno.test("reference: names that may reach one machine stay distinct registries", () => {
  const distinct = [
    "localhost:5000",
    "127.0.0.1:5000", // the name and the address are different names (as the Rust ocipkg keeps them)
    "127.0.0.2:5000", // another loopback address
    "[::1]:5000", // the IPv6 loopback is not 127.0.0.1
    "localhost:5001", // another port
    "localhost",
    "localhost:443",
    "ghcr.io",
    "ghcr.io:80",
    "ghcr.io:5000",
    "docker.io:5000",
    "index.docker.io:5000",
    "registry-1.docker.io:5000",
    "registry-1.docker.io",
    "10.0.0.1",
    "10.0.0.1:80",
    "[::2]",
    "[::ffff:10.0.0.1]:5000", // IPv4-mapped: 10.0.0.1:5000, not 10.0.0.1
  ];
  const names = distinct.map((r) => ImageName.parse(`${r}/org/lib:1`));
  const ids = names.map((n) => n.toString());
  const dirs = names.map((n) => n.storePath().join("/"));
  assertEquals(new Set(ids).size, distinct.length, ids.join(" "));
  assertEquals(new Set(dirs).size, distinct.length, dirs.join(" "));
  // the Rust ocipkg's store layout: `localhost__5000`
  assertEquals(names[0]!.storePath()[0], "localhost__5000");
  assertEquals(names[1]!.storePath()[0], "127.0.0.1__5000");
});

Deno.test("reference: an invalid registry host is refused naming it", () => {
  for (
    const bad of [
      "host:0",
      "host:65536",
      "host:",
      "a_b.example",
      "a.1", // a last label that is a number must be an IPv4 address
      "4294967296", // past the IPv4 range
      "1.2.3.256",
      "[::1",
      "[1:2:3:4:5:6:7:8:9]",
      "[::g]",
      "host.example.",
      "",
    ]
  ) {
    const e = assertThrows(() => canonicalRegistry(bad), UsageError);
    assertEquals(e.message.startsWith(`invalid registry host '${bad}'`), true, e.message);
  }
});

Deno.test("reference: isTag and isRepositoryName are the distribution spec's grammar", () => {
  for (const t of ["latest", "1.2.3", "_", "V1_x-Y.z", "a..b", "x".repeat(128)]) {
    assertEquals(isTag(t), true, t);
  }
  for (const t of ["", "-a", ".a", "a/b", "a:b", "a@b", "é", "x".repeat(129), "a b"]) {
    assertEquals(isTag(t), false, t);
  }
  for (const n of ["a", "a/b/c", "a.b", "a_b", "a__b", "a---b", "0/9", "a".repeat(255)]) {
    assertEquals(isRepositoryName(n), true, n);
  }
  for (
    const n of ["", "A", "a/", "/a", "a//b", "a._b", "a___b", "-a", "a-", "a:b", "a".repeat(256)]
  ) {
    assertEquals(isRepositoryName(n), false, n);
  }
});

Deno.test("reference: a one-label registry keeps its port, so its name parses back as a registry", () => {
  for (const spelling of ["myreg:443", "MyReg:0443"]) {
    const n = ImageName.parse(`${spelling}/x:1`);
    assertEquals(n.toString(), "myreg:443/x:1", spelling);
    assertEquals(ImageName.parse(n.toString()).toString(), n.toString(), spelling);
    assertEquals(n.storePath(), ["myreg__443", "x", "__1"]);
  }
  assertEquals(canonicalRegistry("MYREG"), { hostname: "myreg", port: 443 });
  // without a port, a one-label first component is a Docker Hub repository
  assertEquals(ImageName.parse("myreg/x").toString(), "registry-1.docker.io/myreg/x:latest");
});

Deno.test("reference: a bare registry host is told from an image name by the host-first rule", () => {
  for (const host of ["localhost:5000", "LocalHost", "ghcr.io", "127.0.0.1:5000", "[::1]:5000"]) {
    assert(isRegistryHost(host), host);
  }
  for (
    const name of [
      "alpine",
      "alpine:3.19",
      "myreg:5000",
      "ghcr.io/org/x",
      "localhost:5000/x",
      "a:b:c",
    ]
  ) {
    assert(!isRegistryHost(name), name);
  }
});
