// `ocipkg serve`'s catalog with many repositories: `GET /v2/_catalog` answers from an index of
// names kept incrementally (`<root>/.ocipkg-catalog`, see lib/serve/catalog_index.ts), not a walk
// of the root per page. Here: a root of 1,000 repositories (written straight to disk) paged
// through with `n`/`last`/`Link` as before; the index trusted after a clean stop and rebuilt when
// the root changed by hand while serve was stopped (or it was killed); repositories removed and
// made (by hand and through the API) while a client pages; symlinks where a repository's
// directories belong never listed, a symlinked `.ocipkg-catalog` refused; the repositories kept
// open bounded, their writes still one at a time.
import { assert, assertEquals } from "./_assert.ts";
import { sha256, tempDir } from "./_helpers.ts";
import { writeScaleRoot } from "./_scale_root.ts";
import { serve, type ServeHandle } from "../mod.ts";
import { Storage } from "../lib/serve/storage.ts";
import { CATALOG_DIR } from "../lib/serve/catalog_index.ts";

const enc = new TextEncoder();

/** Make a repository through the API: its first blob (one monolithic upload). */
async function create(s: ServeHandle, name: string): Promise<void> {
  const bytes = enc.encode(`blob of ${name}`);
  const res = await fetch(
    `${s.url}/v2/${name}/blobs/uploads/?digest=${await sha256(bytes)}`,
    { method: "POST", body: bytes, headers: { "content-type": "application/octet-stream" } },
  );
  await res.body?.cancel();
  assertEquals(res.status, 201, name);
}

/** One catalog page: its names and the next page's URL. */
async function page(s: ServeHandle, query: string) {
  const res = await fetch(`${s.url}/v2/_catalog${query}`);
  assertEquals(res.status, 200, query);
  const body = await res.json();
  const link = res.headers.get("link");
  return {
    names: body.repositories as string[],
    link,
    next: /<([^>]+)>; rel="next"/.exec(link ?? "")?.[1],
  };
}

/** Every name, n at a time, following Link. */
async function all(s: ServeHandle, n: number): Promise<string[]> {
  const names: string[] = [];
  let next: string | undefined = `/v2/_catalog?n=${n}`;
  while (next) {
    const p: Awaited<ReturnType<typeof page>> = await page(s, next.slice("/v2/_catalog".length));
    assert(p.names.length <= n);
    names.push(...p.names);
    next = p.next;
  }
  return names;
}

/** A one-file copy of a repository's layout (a hand-made repository). */
async function handMade(root: string, name: string): Promise<void> {
  const dir = `${root}/${name}`;
  await Deno.mkdir(`${dir}/blobs/sha256`, { recursive: true });
  await Deno.writeTextFile(`${dir}/index.json`, '{"schemaVersion":2,"manifests":[]}');
  await Deno.writeTextFile(`${dir}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
}

const exists = (p: string) => Deno.lstat(p).then(() => true, () => false);

Deno.test("serve catalog: a root of 1,000 repositories paged with n, last and Link", async () => {
  const work = await tempDir();
  const root = `${work}/root`;
  const { names } = await writeScaleRoot(root, 1000);
  const s = await serve({ root, addr: "127.0.0.1:0" });
  try {
    // the first page builds the index from a walk
    const first = await page(s, "?n=100");
    assertEquals(first.names, names.slice(0, 100));
    assertEquals(
      first.link,
      `</v2/_catalog?n=100&last=${encodeURIComponent(names[99]!)}>; rel="next"`,
    );
    assert(await exists(`${root}/${CATALOG_DIR}/format`));
    assertEquals(await all(s, 100), names);
    assertEquals(await all(s, 333), names);
    // last anywhere (a name, between names, past the end); n=0; no n: up to 10,000
    const mid = await page(s, `?n=5&last=${names[500]}`);
    assertEquals(mid.names, names.slice(501, 506));
    assertEquals((await page(s, `?n=3&last=${names[500]}a`)).names, names.slice(501, 504));
    assertEquals(await page(s, `?n=3&last=${names[998]}`), {
      names: [names[999]!],
      link: null,
      next: undefined,
    });
    assertEquals((await page(s, "?n=10&last=zzz")).names, []);
    assertEquals(await page(s, "?n=0"), { names: [], link: null, next: undefined });
    assertEquals((await page(s, "")).names, names);
    const bad = await fetch(`${s.url}/v2/_catalog?n=-1`);
    assertEquals(bad.status, 400);
    assertEquals((await bad.json()).errors[0].code, "UNSUPPORTED");
    // a repository made through the API is listed at once, in its place
    await create(s, "scale0004/repo000450x");
    const at = await page(s, `?n=2&last=${names[450]}`);
    assertEquals(at.names, ["scale0004/repo000450x", names[451]!]);
  } finally {
    await s.close();
  }
  // a clean stop leaves its marker; the next start takes it (and removes it) and lists the same
  assert(await exists(`${root}/${CATALOG_DIR}/clean`));
  const again = await serve({ root, addr: "127.0.0.1:0" });
  try {
    assert(!(await exists(`${root}/${CATALOG_DIR}/clean`)));
    const listed = await all(again, 1000);
    assertEquals(listed.length, 1001);
    assertEquals(listed, [...names, "scale0004/repo000450x"].sort());
  } finally {
    await again.close();
  }
});

Deno.test("serve catalog: repositories made or removed by hand while serve was stopped are found", async () => {
  const work = await tempDir();
  const root = `${work}/root`;
  let s = await serve({ root, addr: "127.0.0.1:0" });
  for (const n of ["a/one", "a/two", "b", "c/d/e"]) await create(s, n);
  assertEquals(await all(s, 10), ["a/one", "a/two", "b", "c/d/e"]);
  await s.close();
  // by hand, serve stopped: a new top-level repository, one in an existing namespace, one two
  // levels under an existing namespace, one removed
  await handMade(root, "new");
  await handMade(root, "a/three");
  await handMade(root, "c/d/f/g");
  await Deno.remove(`${root}/a/two`, { recursive: true });
  s = await serve({ root, addr: "127.0.0.1:0" });
  try {
    assertEquals(await all(s, 2), ["a/one", "a/three", "b", "c/d/e", "c/d/f/g", "new"]);
  } finally {
    await s.close();
  }
  // a change in a namespace directory alone (not the root) is seen too
  await Deno.remove(`${root}/c/d/f/g`, { recursive: true });
  s = await serve({ root, addr: "127.0.0.1:0" });
  try {
    assertEquals(await all(s, 10), ["a/one", "a/three", "b", "c/d/e", "new"]);
  } finally {
    await s.close();
  }
  // inside a repository's own directory (which serve's exports change): not seen at a clean
  // start, listed once a request uses it
  await handMade(root, "b/inside");
  s = await serve({ root, addr: "127.0.0.1:0" });
  try {
    assertEquals(await all(s, 10), ["a/one", "a/three", "b", "c/d/e", "new"]);
    const tags = await fetch(`${s.url}/v2/b/inside/tags/list`);
    assertEquals(await tags.json(), { name: "b/inside", tags: [] });
    assertEquals(await all(s, 10), ["a/one", "a/three", "b", "b/inside", "c/d/e", "new"]);
  } finally {
    await s.close();
  }
  // killed (no clean stop, so no marker): the next start walks the root again
  await Deno.remove(`${root}/${CATALOG_DIR}/clean`); // as a SIGKILL leaves it
  await handMade(root, "b/later");
  s = await serve({ root, addr: "127.0.0.1:0" });
  try {
    assertEquals(await all(s, 10), [
      "a/one",
      "a/three",
      "b",
      "b/inside",
      "b/later",
      "c/d/e",
      "new",
    ]);
  } finally {
    await s.close();
  }
});

Deno.test("serve catalog: a catalog index edited while serve was stopped is made again from the root", async () => {
  const work = await tempDir();
  const root = `${work}/root`;
  let s = await serve({ root, addr: "127.0.0.1:0" });
  for (const n of ["a/one", "b", "c"]) await create(s, n);
  await s.close(); // a clean stop: the index is trusted at the next start
  const dir = `${root}/${CATALOG_DIR}`;
  const edits: [string, (d: string) => Promise<void>][] = [
    ["out of order", (d) => Deno.writeTextFile(`${d}/repos.base`, "c\t{}\nb\t{}\na/one\t{}\n")],
    [
      "a name with ESC and ..",
      (d) => Deno.writeTextFile(`${d}/repos.base`, "../x\t{}\na/one\t{}\nb\x1b[2J\t{}\nc\t{}\n"),
    ],
    [
      "a value not {}",
      (d) => Deno.writeTextFile(`${d}/repos.base`, "a/one\t{}\nb\t[1,2]\nc\t{}\n"),
    ],
    ["an overlay file misnamed", (d) => Deno.writeTextFile(`${d}/repos/..evil`, "{}")],
  ];
  for (const [what, edit] of edits) {
    await edit(dir);
    s = await serve({ root, addr: "127.0.0.1:0" });
    try {
      assertEquals(await all(s, 2), ["a/one", "b", "c"], what);
    } finally {
      await s.close();
    }
  }
  await Deno.remove(work, { recursive: true });
});

Deno.test("serve catalog: repositories removed and made while a client pages", async () => {
  const work = await tempDir();
  const root = `${work}/root`;
  const s = await serve({ root, addr: "127.0.0.1:0" });
  try {
    const names = Array.from({ length: 30 }, (_, i) => `org/app${String(i).padStart(2, "0")}`);
    for (const n of names) await create(s, n);
    const p1 = await page(s, "?n=10");
    assertEquals(p1.names, names.slice(0, 10));
    // meanwhile: one ahead removed by hand, one made by hand, one made through the API, one
    // behind removed (the client has it already)
    await Deno.remove(`${root}/org/app15`, { recursive: true });
    await handMade(root, "org/app15b");
    await create(s, "org/app25b");
    await Deno.remove(`${root}/org/app02`, { recursive: true });
    const rest: string[] = [];
    let next = p1.next;
    while (next) {
      const p = await page(s, next.slice("/v2/_catalog".length));
      rest.push(...p.names);
      next = p.next;
    }
    const expected = [
      ...names.slice(10).filter((n) => n !== "org/app15"),
      "org/app15b",
      "org/app25b",
    ]
      .sort();
    assertEquals(rest, expected);
    // pushes to new repositories while pages are read: every page sorted, nothing twice
    const made = Array.from({ length: 20 }, (_, i) => `org/new${String(i).padStart(2, "0")}`);
    const [listed] = await Promise.all([
      (async () => {
        const seen: string[] = [];
        for (let round = 0; round < 5; round++) seen.push(...(await all(s, 7)));
        return seen;
      })(),
      (async () => {
        for (const n of made) await create(s, n);
      })(),
    ]);
    assert(listed.length > 0);
    const final = await all(s, 7);
    assertEquals(
      final,
      [...expected, ...names.slice(0, 10).filter((n) => n !== "org/app02"), ...made].sort(),
    );
    assertEquals(new Set(final).size, final.length);
  } finally {
    await s.close();
  }
});

Deno.test("serve catalog: a symlink where a repository's directory belongs is never listed", async () => {
  const work = await tempDir();
  const root = `${work}/root`;
  const outside = `${work}/outside`;
  const s = await serve({ root, addr: "127.0.0.1:0" });
  try {
    for (const n of ["ns/app", "ns/other", "top", "top/nested"]) await create(s, n);
    assertEquals(await all(s, 10), ["ns/app", "ns/other", "top", "top/nested"]);
    // a layout outside the root, linked in as a new repository and in place of existing ones
    await handMade(outside, "layout");
    await Deno.symlink(`${outside}/layout`, `${root}/linked`);
    await Deno.rename(`${root}/ns/other`, `${work}/moved-other`);
    await Deno.symlink(`${outside}/layout`, `${root}/ns/other`);
    await Deno.rename(`${root}/top/nested`, `${work}/moved-nested`);
    await Deno.symlink(`${outside}/layout`, `${root}/top/nested`);
    assertEquals(await all(s, 10), ["ns/app", "top"]);
    // and a namespace swapped for a symlink to a copy: nothing under it
    await Deno.rename(`${root}/ns`, `${work}/moved-ns`);
    await Deno.mkdir(`${outside}/ns`);
    await handMade(outside, "ns/app");
    await Deno.symlink(`${outside}/ns`, `${root}/ns`);
    assertEquals(await all(s, 10), ["top"]);
    // the catalog's own directory swapped for a symlink: refused in one line, nothing written
    // there; pushes go on
    await Deno.rename(`${root}/${CATALOG_DIR}`, `${work}/moved-catalog`);
    await Deno.mkdir(`${outside}/catalog`);
    await Deno.symlink(`${outside}/catalog`, `${root}/${CATALOG_DIR}`);
    await create(s, "after/link");
    const res = await fetch(`${s.url}/v2/_catalog`);
    assertEquals(res.status, 500);
    assertEquals(
      (await res.json()).errors[0].message,
      `refused: '${CATALOG_DIR}' under the registry's root is a symlink, not a directory`,
    );
    assertEquals([...Deno.readDirSync(`${outside}/catalog`)], []);
    // put back: listed again, the new repository with the others
    await Deno.remove(`${root}/${CATALOG_DIR}`);
    await Deno.rename(`${work}/moved-catalog`, `${root}/${CATALOG_DIR}`);
    assertEquals(await all(s, 10), ["after/link", "top"]);
  } finally {
    await s.close();
  }
});

Deno.test("serve catalog: --read-only reads a trusted index and writes nothing; else walks", async () => {
  const work = await tempDir();
  const root = `${work}/root`;
  const s = await serve({ root, addr: "127.0.0.1:0" });
  for (const n of ["x/a", "x/b"]) await create(s, n);
  assertEquals(await all(s, 10), ["x/a", "x/b"]);
  await s.close();
  const clean = await Deno.readFile(`${root}/${CATALOG_DIR}/clean`);
  let ro = await serve({ root, addr: "127.0.0.1:0", readOnly: true });
  try {
    assertEquals(await all(ro, 1), ["x/a", "x/b"]);
    await handMade(root, "x/c"); // while it runs: the changed directory makes it walk
    assertEquals(await all(ro, 1), ["x/a", "x/b", "x/c"]);
  } finally {
    await ro.close();
  }
  // nothing written: the marker is as the last writing serve left it (and no longer matches)
  assertEquals(await Deno.readFile(`${root}/${CATALOG_DIR}/clean`), clean);
  ro = await serve({ root, addr: "127.0.0.1:0", readOnly: true });
  try {
    assertEquals(await all(ro, 2), ["x/a", "x/b", "x/c"]);
  } finally {
    await ro.close();
  }
});

Deno.test("serve storage: repositories kept open are bounded; writes through two objects of one repository take turns", async () => {
  const work = await tempDir();
  const storage = await Storage.open(`${work}/root`, { maxOpenRepositories: 2 });
  try {
    const a1 = (await storage.repository("a", true))!;
    for (const n of ["b", "c", "d"]) await storage.repository(n, true);
    assertEquals(storage.openRepositories, 2);
    const a2 = (await storage.repository("a"))!;
    assert(a1 !== a2, "a was dropped and opened again");
    const order: string[] = [];
    let release = () => {};
    const held = new Promise<void>((r) => release = r);
    const first = a1.exclusive(async () => {
      order.push("first in");
      await held;
      order.push("first out");
    });
    const second = a2.exclusive(() => Promise.resolve(void order.push("second in")));
    await new Promise((r) => setTimeout(r, 10));
    assertEquals(order, ["first in"]);
    release();
    await Promise.all([first, second]);
    assertEquals(order, ["first in", "first out", "second in"]);
    assertEquals((await storage.catalogPage(undefined, 10)).names, ["a", "b", "c", "d"]);
  } finally {
    await storage.close();
  }
});
