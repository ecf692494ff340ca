// serve's private tag index (`<repo>/.ocipkg-index`, see lib/serve/repo_index.ts) edited by
// someone else while serve was stopped: a base file that is not sorted, holds a tag twice, a key
// that is not a tag (control characters, `/`, `..`), a value that is not a descriptor, a line cut
// off or longer than any line serve writes; an overlay file whose name is no key's, or too large.
// Each is refused — reads and writes of that repository answer 500 with one escaped line naming
// the file, an export fails with that line (the other repositories are still exported), memory
// stays bounded (nothing is read past the longest line serve writes) — and no tag serve did not
// acknowledge is ever listed or exported. And a compaction never drops a tag written while it ran.
import { assert, assertEquals, assertStringIncludes } from "./_assert.ts";
import { CLI, sha256, tempDir } from "./_helpers.ts";
import { exportRoot, serve } from "../mod.ts";
import { OCI_MANIFEST } from "../lib/oci/mod.ts";
import { SortedTable } from "../lib/serve/sorted_table.ts";

const enc = new TextEncoder();
const REF = "org.opencontainers.image.ref.name";

/** Push an image (an empty config, no layers) under `tag`; the manifest PUT's status. */
async function push(url: string, name: string, tag: string): Promise<number> {
  const cfg = enc.encode(`{"t":"${tag}"}`);
  const cd = await sha256(cfg);
  await (await fetch(`${url}/v2/${name}/blobs/uploads/?digest=${cd}`, {
    method: "POST",
    body: cfg,
  })).body?.cancel();
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: cd, size: cfg.length },
    layers: [],
  });
  const res = await fetch(`${url}/v2/${name}/manifests/${tag}`, {
    method: "PUT",
    headers: { "content-type": OCI_MANIFEST },
    body: manifest,
  });
  await res.body?.cancel();
  return res.status;
}

async function answer(res: Response): Promise<{ status: number; message?: string }> {
  const text = await res.text();
  try {
    return { status: res.status, message: JSON.parse(text).errors?.[0]?.message };
  } catch {
    return { status: res.status };
  }
}

/** A root with repositories `ok` and `bad`, each with tags 1 and 2, exported and stopped. */
async function makeRoot(): Promise<{ root: string; value: string }> {
  const root = `${await tempDir()}/root`;
  const s = await serve({ root, addr: "127.0.0.1:0", log: () => {} });
  try {
    for (const repo of ["ok", "bad"]) {
      for (const tag of ["1", "2"]) assertEquals(await push(s.url, repo, tag), 201);
    }
  } finally {
    await s.close(); // exports: every tag is in tags.base
  }
  const base = await Deno.readTextFile(`${root}/bad/.ocipkg-index/tags.base`);
  return { root, value: base.split("\n")[0]!.split("\t")[1]! };
}

const INDEX = "bad/.ocipkg-index";

/** The hostile edits: what to do to the stopped root's `bad` repository, and the file blamed. */
const EDITS: {
  what: string;
  edit: (root: string, value: string) => Promise<void>;
  file: string;
  why: RegExp;
}[] = [
  {
    what: "keys out of order",
    edit: async (root, v) => {
      const p = `${root}/${INDEX}/tags.base`;
      await Deno.writeTextFile(p, `9\t${v}\n${await Deno.readTextFile(p)}`);
    },
    file: "tags.base",
    why: /is not after '9'/,
  },
  {
    what: "a tag twice",
    edit: async (root, v) => {
      const p = `${root}/${INDEX}/tags.base`;
      await Deno.writeTextFile(p, `${await Deno.readTextFile(p)}2\t${v}\n`);
    },
    file: "tags.base",
    why: /'2', is not after '2'/,
  },
  {
    what: "a key with control characters",
    edit: async (root, v) => {
      await Deno.writeTextFile(`${root}/${INDEX}/tags.base`, `1\t${v}\n3\u001b[31mred\t${v}\n`, {
        append: false,
      });
    },
    file: "tags.base",
    why: /'3\\u001b\[31mred' is not a tag/,
  },
  {
    what: "a key with / and ..",
    edit: async (root, v) => {
      const p = `${root}/${INDEX}/tags.base`;
      await Deno.writeTextFile(p, `${await Deno.readTextFile(p)}3/../x\t${v}\n`);
    },
    file: "tags.base",
    why: /'3\/\.\.\/x' is not a tag/,
  },
  {
    what: "a value naming a path, not a digest",
    edit: async (root) => {
      const p = `${root}/${INDEX}/tags.base`;
      const bad = `{"mediaType":"${OCI_MANIFEST}","digest":"sha256:../../../etc/passwd","size":1}`;
      await Deno.writeTextFile(p, `${await Deno.readTextFile(p)}3\t${bad}\n`);
    },
    file: "tags.base",
    why: /invalid digest/,
  },
  {
    what: "a value that is not JSON",
    edit: async (root) => {
      const p = `${root}/${INDEX}/tags.base`;
      await Deno.writeTextFile(p, `${await Deno.readTextFile(p)}3\tnot json\n`);
    },
    file: "tags.base",
    why: /its value is not JSON/,
  },
  {
    what: "a line cut off",
    edit: async (root) => {
      const p = `${root}/${INDEX}/tags.base`;
      const text = await Deno.readTextFile(p);
      await Deno.writeTextFile(p, text.slice(0, -10));
    },
    file: "tags.base",
    why: /has no newline/,
  },
  {
    what: "a line of 64 MiB",
    edit: async (root) => {
      const p = `${root}/${INDEX}/tags.base`;
      const f = await Deno.open(p, { write: true, append: true });
      await f.write(enc.encode("3\t"));
      await f.truncate(64 << 20); // sparse: zeros, no newline
      f.close();
    },
    file: "tags.base",
    why: /longer than 8388608 bytes/,
  },
  {
    what: "an overlay file whose name is no key's",
    edit: async (root, v) => {
      await Deno.writeTextFile(`${root}/${INDEX}/tags/evil\nGET fake 200`, v);
    },
    file: "tags/evil\\nGET fake 200",
    why: /not a key's file name/,
  },
  {
    what: "an overlay value that is not a descriptor",
    edit: async (root) => {
      await Deno.writeTextFile(`${root}/${INDEX}/tags/3`, `{"digest":"x\u001b[2J"}`);
    },
    file: "tags/3",
    why: /its value is not JSON/,
  },
  {
    what: "an overlay file of 64 MiB",
    edit: async (root) => {
      const f = await Deno.open(`${root}/${INDEX}/tags/1`, {
        write: true,
        create: true,
        truncate: true,
      });
      await f.truncate(64 << 20);
      f.close();
    },
    file: "tags/1",
    why: /longer than 8388608 bytes/,
  },
];

Deno.test("serve: a private index edited while serve was stopped is refused, file named, escaped", async () => {
  for (const c of EDITS) {
    const { root, value } = await makeRoot();
    await c.edit(root, value);
    const lines: string[] = [];
    const s = await serve({ root, addr: "127.0.0.1:0", log: (l) => lines.push(l) });
    const blamed = `refused: '${INDEX}/${c.file}' under the registry's root is corrupt (`;
    try {
      // the other repository is served as before
      const ok = await fetch(`${s.url}/v2/ok/tags/list`);
      assertEquals(await ok.json(), { name: "ok", tags: ["1", "2"] }, c.what);
      for (const path of ["tags/list", "manifests/1"]) {
        const a = await answer(await fetch(`${s.url}/v2/bad/${path}`));
        assertEquals(a.status, 500, `${c.what}: ${path}`);
        assertStringIncludes(a.message ?? "", blamed, c.what);
        assert(c.why.test(a.message ?? ""), `${c.what}: ${a.message}`);
      }
      // a write is refused too: nothing is acknowledged that could not be served or exported
      assertEquals(await push(s.url, "bad", "4"), 500, c.what);
      assertEquals(await push(s.url, "ok", "4"), 201, c.what);
    } finally {
      await s.close();
    }
    // every log line is one line, its control characters escaped
    for (const l of lines) {
      // deno-lint-ignore no-control-regex
      assert(!/[\u0000-\u001f\u007f]/.test(l), `${c.what}: ${JSON.stringify(l)}`);
    }
    assert(lines.some((l) => l.includes(" 500 ") && l.includes(blamed)), c.what);
    // the documented step exports the others and names the one it cannot
    const failed: string[] = [];
    const done = await exportRoot(root, { onError: (name) => failed.push(name) });
    assertEquals([done, failed], [["ok"], ["bad"]], c.what);
    const exported = JSON.parse(await Deno.readTextFile(`${root}/ok/index.json`));
    assertEquals(
      exported.manifests.map((m: { annotations: Record<string, string> }) => m.annotations[REF]),
      [
        "1",
        "2",
        "4",
      ],
    );
    // bad's index.json is still the last one exported: no tag it never acknowledged
    const kept = JSON.parse(await Deno.readTextFile(`${root}/bad/index.json`));
    assertEquals(
      kept.manifests.map((m: { annotations: Record<string, string> }) => m.annotations[REF]),
      [
        "1",
        "2",
      ],
    );
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve --export: a corrupt repository is named in one line, the others are exported, exit 1", async () => {
  const { root, value } = await makeRoot();
  await Deno.writeTextFile(
    `${root}/${INDEX}/tags.base`,
    `1\t${value}\nx\u001b]0;pwned\u0007\t${value}\n`,
  );
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CLI, "serve", "--export", "--root", root],
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(r.stderr);
  assertEquals(r.code, 1, stderr);
  // deno-lint-ignore no-control-regex
  assert(!/[\u0000-\u0009\u000b-\u001f]/.test(stderr), JSON.stringify(stderr));
  assertStringIncludes(
    stderr,
    `error: export of 'bad' failed: refused: '${INDEX}/tags.base' under the registry's root is corrupt`,
  );
  assertStringIncludes(stderr, "exported ok\n");
  assertStringIncludes(stderr, "1 could not be exported");
  await Deno.remove(root, { recursive: true });
});

Deno.test("serve index: a compaction keeps a key written while it ran, whatever inode it got", async () => {
  const dir = await tempDir();
  const table = new SortedTable("tags", () => Promise.resolve(dir), "t");
  await table.put("k", '"v0"');
  let reused = false;
  let n = 0;
  // the compaction's removal step runs under the writers' lock: writes land just before it,
  // until the file holding the last has the inode of the one compacted (a file system reuses
  // a freed inode: ext4 at once) — the case where an inode cannot tell the file was rewritten
  await table.compact(async (fn) => {
    if (n === 0) {
      const compacted = (await Deno.lstat(`${dir}/tags/k`)).ino;
      while (!reused && n < 200) {
        await table.put("k", `"v${++n}"`);
        reused = (await Deno.lstat(`${dir}/tags/k`)).ino === compacted;
      }
    }
    return await fn();
  });
  if (!reused) console.log("(this file system gave no inode twice: the case did not arise)");
  assertEquals(await table.get("k"), `"v${n}"`);
  await table.compact((fn) => fn());
  assertEquals(await table.get("k"), `"v${n}"`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("serve: an index.json another tool wrote that is hostile is refused, bounded, without the root's path", async () => {
  const { root } = await makeRoot();
  const s = await serve({ root, addr: "127.0.0.1:0", log: () => {} });
  try {
    // beside a running serve (merged in on the next request): an entry that is no descriptor
    const digest = `sha256:${"a".repeat(64)}`;
    await Deno.writeTextFile(
      `${root}/bad/new.json`,
      JSON.stringify({ manifests: [{ mediaType: "x\r\ny", digest, size: 1 }] }),
    );
    await Deno.rename(`${root}/bad/new.json`, `${root}/bad/index.json`); // as other tools write it
    const a = await answer(await fetch(`${s.url}/v2/bad/tags/list`));
    assertEquals(a.status, 500);
    assertStringIncludes(a.message ?? "", "bad: index.json: entry 0 is not a descriptor");
    assert(!(a.message ?? "").includes(root), a.message);
    // one of 100 MiB (sparse): refused unread
    const f = await Deno.open(`${root}/bad/new.json`, { write: true, create: true });
    await f.truncate(100 << 20);
    f.close();
    await Deno.rename(`${root}/bad/new.json`, `${root}/bad/index.json`);
    const big = await answer(await fetch(`${s.url}/v2/bad/tags/list`));
    assertEquals(big.status, 500);
    assertStringIncludes(big.message ?? "", "bad/index.json is over 67108864 bytes");
    // the other repository is served as before
    assertEquals((await fetch(`${s.url}/v2/ok/tags/list`).then((r) => r.json())).tags, ["1", "2"]);
  } finally {
    await s.close();
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("serve index: a base's check mark is void once the base changed, even in place within the second, mtime put back", async () => {
  const { root } = await makeRoot();
  const base = `${root}/${INDEX}/tags.base`;
  // written with the base at the clean stop: the base's identity
  const mark = await Deno.readTextFile(`${base}.checked`);
  const st = await Deno.stat(base);
  assertEquals(mark, `${st.ino}:${st.mtime?.getTime()}:${st.ctime?.getTime()}:${st.size}`);
  // swap two lines in place, same size, mtime put back: only the ctime tells — enough
  const text = await Deno.readTextFile(base);
  const [a, b, ...rest] = text.split("\n");
  await Deno.writeTextFile(base, [b, a, ...rest].join("\n"));
  await Deno.utime(base, st.atime!, st.mtime!);
  assertEquals((await Deno.stat(base)).size, st.size);
  const lines: string[] = [];
  const ro = await serve({ root, addr: "127.0.0.1:0", log: (l) => lines.push(l), readOnly: true });
  try {
    const a1 = await answer(await fetch(`${ro.url}/v2/bad/manifests/1`));
    assertEquals(a1.status, 500);
    assertStringIncludes(a1.message ?? "", "tags.base");
  } finally {
    await ro.close();
  }
  // --read-only leaves the mark as it was
  assertEquals(await Deno.readTextFile(`${base}.checked`), mark);
  await Deno.remove(root, { recursive: true });
});
