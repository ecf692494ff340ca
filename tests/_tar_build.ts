// Building tar archives by hand for the tar reader's tests (any header field, pax and GNU
// records, sparse files) and reading them back through every source: a StreamSource in one
// chunk and in odd chunks, and a FileSource (which seeks to skip), each with and without
// reading the entries' data. The readers must agree; readAll() checks that they do.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { ArchiveError } from "../mod.ts";
import { readTar, type ReadTarOptions, type TarEntry } from "../lib/archive/tar.ts";
import { FileSource, StreamSource } from "../lib/archive/tar_source.ts";
import { TAR_END } from "../lib/archive/tar_writer.ts";
import { concat, withTempDir } from "./_helpers.ts";

export const enc = new TextEncoder();
export const BLOCK = 512;

// ---------------------------------------------------------------------------
// Building archives by hand

export type Num = number | { b256: bigint } | { text: string };

export interface H {
  name?: string;
  flag?: string;
  size?: Num;
  mode?: Num;
  mtime?: Num;
  uid?: Num;
  linkname?: string;
  magic?: "ustar" | "gnu" | "v7" | "star";
  prefix?: string;
  checksum?: "unsigned" | "signed" | "bad" | { text: string };
}

export function header(o: H): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const put = (off: number, len: number, v: string) => {
    const b = enc.encode(v);
    if (b.length > len) throw new Error(`test builder: '${v}' does not fit ${len} bytes`);
    h.set(b, off);
  };
  const num = (off: number, len: number, v: Num) => {
    if (typeof v === "number") put(off, len, v.toString(8).padStart(len - 1, "0") + "\0");
    else if ("text" in v) put(off, len, v.text);
    else {
      let x = v.b256 < 0n ? (1n << BigInt(8 * len)) + v.b256 : v.b256;
      for (let i = len - 1; i >= 0; i--) {
        h[off + i] = Number(x & 0xffn);
        x >>= 8n;
      }
      h[off] = h[off]! | 0x80;
    }
  };
  put(0, 100, o.name ?? "f");
  num(100, 8, o.mode ?? 0o644);
  num(108, 8, o.uid ?? 0);
  num(116, 8, 0);
  num(124, 12, o.size ?? 0);
  num(136, 12, o.mtime ?? 0);
  put(156, 1, o.flag ?? "0");
  put(157, 100, o.linkname ?? "");
  const magic = o.magic ?? "ustar";
  if (magic === "ustar" || magic === "star") put(257, 8, "ustar\x0000");
  if (magic === "gnu") put(257, 8, "ustar  \0");
  if (magic === "star") put(508, 4, "tar\0");
  if (o.prefix) put(345, magic === "star" ? 131 : 155, o.prefix);
  h.fill(0x20, 148, 156);
  let unsigned = 0;
  let signed = 0;
  for (const b of h) {
    unsigned += b;
    signed += b < 0x80 ? b : b - 0x100;
  }
  const ck = o.checksum ?? "unsigned";
  if (typeof ck === "object") put(148, 8, ck.text);
  else {
    const v = ck === "signed" ? signed : ck === "bad" ? unsigned + 1 : unsigned;
    put(148, 8, v.toString(8).padStart(6, "0") + "\0 ");
  }
  return h;
}

export const pad = (n: number) => new Uint8Array((BLOCK - (n % BLOCK)) % BLOCK);
export const bytes = (d: string | Uint8Array) => typeof d === "string" ? enc.encode(d) : d;

/** A regular file (or any type, with `extra`). */
export function file(name: string, data: string | Uint8Array = "", extra: H = {}): Uint8Array[] {
  const b = bytes(data);
  return [header({ name, size: b.length, ...extra }), b, pad(b.length)];
}

/** One pax record, its length counting itself. */
export function rec(k: string, v: string): string {
  const body = ` ${k}=${v}\n`;
  const n = enc.encode(body).length;
  let len = n + 1;
  while (len !== n + String(len).length) len = n + String(len).length;
  return `${len}${body}`;
}

/** A pax header ('x', or 'g') from records, or raw record text. */
export function pax(records: [string, string][] | string, flag = "x"): Uint8Array[] {
  const data = enc.encode(
    typeof records === "string" ? records : records.map(([k, v]) => rec(k, v)).join(""),
  );
  return [header({ name: "PaxHeader", flag, size: data.length }), data, pad(data.length)];
}

/** A GNU long name ('L') or long link ('K'). */
export function gnuLong(flag: "L" | "K", value: string | Uint8Array): Uint8Array[] {
  const data = bytes(value);
  return [
    header({ name: "././@LongLink", flag, size: data.length, magic: "gnu" }),
    data,
    pad(data.length),
  ];
}

/** A GNU pax sparse 1.0 file: `map` is the raw map text (or built from `segments`). */
export function sparse1(o: {
  name: string;
  realSize: number;
  segments?: [number, string][];
  map?: string;
  data?: string;
  records?: [string, string][];
  flag?: string;
}): Uint8Array[] {
  const segs = o.segments ?? [];
  const map = enc.encode(
    o.map ?? [String(segs.length), ...segs.flatMap(([off, s]) => [off, s.length])].join("\n") +
        "\n",
  );
  const data = enc.encode(o.data ?? segs.map(([, s]) => s).join(""));
  const size = map.length + pad(map.length).length + data.length;
  return [
    ...pax(
      o.records ?? [
        ["GNU.sparse.major", "1"],
        ["GNU.sparse.minor", "0"],
        ["GNU.sparse.name", o.name],
        ["GNU.sparse.realsize", String(o.realSize)],
      ],
    ),
    header({ name: `GNUSparseFile.0/${o.name}`, size, flag: o.flag ?? "0" }),
    map,
    pad(map.length),
    data,
    pad(size),
  ];
}

export const tar = (...parts: (Uint8Array | Uint8Array[])[]) => concat([...parts, TAR_END]);

// ---------------------------------------------------------------------------
// Reading through both sources

export interface Got {
  name: string;
  type: string;
  size: number;
  linkname: string;
  mode: number;
  mtime: number;
  data?: string;
}

export const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

export async function collect(entries: AsyncIterable<TarEntry>, read: boolean): Promise<Got[]> {
  const out: Got[] = [];
  for await (const e of entries) {
    const g: Got = {
      name: e.name,
      type: e.type,
      size: e.size,
      linkname: e.linkname,
      mode: e.mode,
      mtime: e.mtime,
    };
    if (read) {
      const h = createHash("sha256");
      let n = 0;
      let small = "";
      for await (const c of e.body()) {
        h.update(c);
        n += c.length;
        if (n <= 64) small += new TextDecoder().decode(c);
      }
      assertEquals(n, e.size, `body of '${e.name}' holds its size`);
      g.data = n <= 64 ? small : `sha256:${h.digest("hex")}`;
    }
    out.push(g);
  }
  return out;
}

export function* chunked(b: Uint8Array, n: number): Generator<Uint8Array> {
  for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n);
}

/** Run `fn` over the archive as a file, removed afterwards. */
export async function withFile<T>(b: Uint8Array, fn: (path: string) => Promise<T>): Promise<T> {
  return await withTempDir(async (dir) => {
    const path = join(dir, "a.tar");
    await Deno.writeFile(path, b);
    return await fn(path);
  });
}

export type Outcome = { ok: Got[] } | { error: string };

export async function outcome(fn: () => Promise<Got[]>): Promise<Outcome> {
  try {
    return { ok: await fn() };
  } catch (e) {
    if (!(e instanceof ArchiveError)) throw e;
    assert(!e.message.includes("\n"), "one-line error");
    return { error: e.message };
  }
}

/**
 * Read `b` six ways (stream in one chunk, stream in 333-byte chunks, file;
 * each reading the data or not) and check that they agree. Returns what the
 * readers saw (entries read with data) or the error.
 */
export async function readAll(b: Uint8Array, options: ReadTarOptions = {}): Promise<Outcome> {
  const results: Outcome[] = [];
  for (const read of [true, false]) {
    results.push(
      await outcome(() => collect(readTar(new StreamSource([b], "A"), "A", options), read)),
    );
    results.push(
      await outcome(() =>
        collect(readTar(new StreamSource(chunked(b, 333), "A"), "A", options), read)
      ),
    );
    results.push(
      await withFile(b, async (path) => {
        const f = await Deno.open(path);
        try {
          return await outcome(() => collect(readTar(new FileSource(f, "A"), "A", options), read));
        } finally {
          f.close();
        }
      }),
    );
  }
  const [first] = results;
  const strip = (o: Outcome): Outcome =>
    "ok" in o ? { ok: o.ok.map(({ data: _, ...g }) => g) } : {
      // the file source says "end of file" where a stream says "end of data"
      error: o.error.replace("end of file", "end of data"),
    };
  for (const r of results) {
    assertEquals("ok" in r, "ok" in first!, `readers agree: ${JSON.stringify(results)}`);
    assertEquals(strip(r), strip(first!), "readers agree");
  }
  return first!;
}

export async function entries(b: Uint8Array, options?: ReadTarOptions): Promise<Got[]> {
  const r = await readAll(b, options);
  if ("error" in r) throw new Error(`expected success, got: ${r.error}`);
  return r.ok;
}

export async function refused(b: Uint8Array, ...includes: string[]): Promise<string> {
  const r = await readAll(b);
  if ("ok" in r) throw new Error(`expected an error, got ${JSON.stringify(r.ok)}`);
  for (const s of includes) {
    assert(
      r.error.includes(s),
      `expected ${JSON.stringify(r.error)} to include ${JSON.stringify(s)}`,
    );
  }
  return r.error;
}

export const names = (g: Got[]) => g.map((e) => e.name);
