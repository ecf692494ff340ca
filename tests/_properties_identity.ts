// Properties of the one identity per registry: every spelling of a registry gives one name,
// registry and store path; registries that differ never share one; credentials and store
// entries saved under one spelling are found under every other.
import fc from "fast-check";
import { join } from "node:path";
import { canonicalRegistry, ImageName } from "../lib/oci/reference.ts";
import {
  findCredential,
  removeCredential,
  saveCredential,
} from "../lib/transport/registry/credentials.ts";
import { packDirectory } from "../lib/ops/artifact.ts";
import { loadImage } from "../lib/ops/install_from.ts";
import { Store } from "../lib/store/store.ts";
import { withTempDir } from "./_helpers.ts";
import { errorName, fail } from "./_property_kit.ts";
import {
  expected,
  fields,
  type NameSpec,
  nearbyArb,
  parseOrFail,
  refPart,
  registryArb,
  registryText,
  repoName,
  sameJson,
  specInput,
  spelledRegistryArb,
  spellingArb,
  storePathOf,
} from "./_properties_names.ts";

/** The identity of an image name: what the store, credentials and messages key on. */
export function identity(n: ImageName) {
  return { text: n.toString(), registry: n.registry, store: storePathOf(n)?.join("/") };
}

/** Names that parse under any registry (`library/` on Docker Hub stays within 255). */
export const shortRepoName = repoName.filter((n) => n.length <= 200);

export function canonicalOrFail(spelling: string): string {
  try {
    const { hostname, port } = canonicalRegistry(spelling);
    return port === undefined ? hostname : `${hostname}:${port}`;
  } catch (e) {
    return fail(`canonicalRegistry(${JSON.stringify(spelling)}) threw ${errorName(e)}`);
  }
}

export const spellingsAgree = fc.property(
  spelledRegistryArb,
  shortRepoName,
  refPart,
  ([r, spellings], name, ref) => {
    const want = registryText(r);
    let first: ReturnType<typeof identity> | undefined;
    for (const host of spellings) {
      const got = canonicalOrFail(host);
      if (got !== want) fail(`canonicalRegistry(${JSON.stringify(host)}) is '${got}'`, want);
      const s: NameSpec = { host, registry: r, name, ...ref };
      const n = parseOrFail(specInput(s), "valid name refused");
      if (!sameJson(fields(n), expected(s))) {
        fail(`parse(${JSON.stringify(specInput(s))}) gave ${fc.stringify(fields(n))}`, expected(s));
      }
      const id = identity(n);
      first ??= id;
      if (!sameJson(id, first)) {
        fail(`'${host}' and '${spellings[0]}' give different identities`, [first, id]);
      }
    }
    return true;
  },
);

/** Two registries, one near the other (often the same but for one detail), each spelled. */
export const registryPairArb = registryArb.chain((a) => fc.tuple(fc.constant(a), nearbyArb(a)))
  .chain(([a, b]) => fc.tuple(fc.constant(a), fc.constant(b), spellingArb(a), spellingArb(b)));

export const distinctRegistriesDiffer = fc.property(
  registryPairArb,
  shortRepoName,
  refPart,
  ([a, b, sa, sb], name, ref) => {
    const na = parseOrFail(specInput({ host: sa, name, ...ref }), "valid name refused");
    const nb = parseOrFail(specInput({ host: sb, name, ...ref }), "valid name refused");
    const [ia, ib] = [identity(na), identity(nb)];
    if (registryText(a) === registryText(b)) {
      if (!sameJson(ia, ib)) fail(`'${sa}' and '${sb}' are one registry`, [ia, ib]);
    } else if (
      ia.text === ib.text || ia.registry === ib.registry ||
      (ia.store !== undefined && ia.store === ib.store)
    ) {
      fail(`'${sa}' (${registryText(a)}) and '${sb}' (${registryText(b)}) share an identity`, [
        ia,
        ib,
      ]);
    }
    return true;
  },
);

export const AUTH_ENV = [
  "OCIPKG_AUTH_FILE",
  "DOCKER_CONFIG",
  "REGISTRY_AUTH_FILE",
  "XDG_RUNTIME_DIR",
  "XDG_CONFIG_HOME",
];

/** Run `fn` with every auth file read in a fresh temp directory; the env is restored after. */
export async function withAuthFiles<T>(
  fn: (files: { ocipkg: string; docker: string; podman: string }) => Promise<T>,
): Promise<T> {
  return await withTempDir(async (tmp) => {
    const saved = AUTH_ENV.map((k) => [k, Deno.env.get(k)] as const);
    try {
      Deno.env.set("OCIPKG_AUTH_FILE", join(tmp, "ocipkg", "config.json"));
      Deno.env.set("DOCKER_CONFIG", join(tmp, "docker"));
      Deno.env.set("REGISTRY_AUTH_FILE", join(tmp, "containers", "auth.json"));
      Deno.env.set("XDG_RUNTIME_DIR", join(tmp, "run"));
      Deno.env.set("XDG_CONFIG_HOME", join(tmp, "config"));
      await Deno.mkdir(join(tmp, "docker"));
      await Deno.mkdir(join(tmp, "containers"));
      return await fn({
        ocipkg: join(tmp, "ocipkg", "config.json"),
        docker: join(tmp, "docker", "config.json"),
        podman: join(tmp, "containers", "auth.json"),
      });
    } finally {
      for (const [k, v] of saved) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
    }
  });
}

/** How an auth file may key a registry: `host[:port]`, or docker's URL forms. */
export const keyFormArb = fc.oneof(
  fc.constant((host: string) => host),
  fc.tuple(
    fc.constantFrom("https://", "http://", "HTTPS://"),
    fc.constantFrom("", "/", "/v1/", "/v2/"),
  ).map(([scheme, path]) => (host: string) => `${scheme}${host}${path}`),
);

export const credentialsAnySpelling = fc.asyncProperty(
  spelledRegistryArb.chain(([r, spellings]) =>
    fc.tuple(
      fc.constant(r),
      fc.constant(spellings),
      nearbyArb(r).chain((o) => spellingArb(o).map((s) => [o, s] as const)),
    )
  ),
  fc.constantFrom("ocipkg", "docker", "podman"),
  keyFormArb,
  async ([r, spellings, [other, otherSpelling]], file, keyForm) => {
    const want = registryText(r);
    await withAuthFiles(async (files) => {
      const cred = { username: "me", password: `secret for ${want}` };
      let source: string;
      if (file === "ocipkg") {
        await saveCredential(spellings[0]!, cred);
        source = `ocipkg's auth file ${files.ocipkg}`;
      } else {
        const auths = {
          [keyForm(spellings[0]!)]: { auth: btoa(`${cred.username}:${cred.password}`) },
        };
        await Deno.writeTextFile(files[file], JSON.stringify({ auths }));
        source = file === "docker"
          ? `docker config ${files.docker}`
          : `podman auth file ${files.podman}`;
      }
      for (const spelling of [...spellings, want]) {
        const found = await findCredential(spelling);
        if (!sameJson(found, { ...cred, source })) {
          fail(
            `saved under '${spellings[0]}' (${file}), findCredential('${spelling}') gave`,
            found,
          );
        }
      }
      if (registryText(other) !== want && await findCredential(otherSpelling) !== undefined) {
        fail(
          `saved under '${spellings[0]}', found for '${otherSpelling}' (${registryText(other)})`,
        );
      }
      if (file === "ocipkg") {
        if (!(await removeCredential(spellings[spellings.length - 1]!))) {
          fail(`removeCredential('${spellings[spellings.length - 1]}') found nothing to remove`);
        }
        const left = await findCredential(spellings[0]!);
        if (left !== undefined) fail(`removed, yet findCredential('${spellings[0]}') gave`, left);
      }
    });
    return true;
  },
);

export const storeAnySpelling = fc.asyncProperty(
  registryPairArb.chain(([a, b, sa, sb]) =>
    fc.tuple(fc.constant([a, b, sa, sb] as const), fc.array(spellingArb(a), { maxLength: 3 }))
  ),
  fc.stringMatching(/^[a-z0-9]{1,8}(?:\/[a-z0-9]{1,8})?$/),
  fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,10}$/).filter((t) =>
    !/^sha(256|512)__/i.test(t)
  ),
  async ([[a, b, sa, sb], more], name, tag) => {
    await withTempDir(async (tmp) => {
      await Deno.mkdir(join(tmp, "pkg"));
      await Deno.writeTextFile(join(tmp, "pkg", "a.txt"), "a");
      await packDirectory(join(tmp, "pkg"), join(tmp, "img.tar"), { name: "example.com/x:1" });
      const store = new Store(join(tmp, "store"));
      const image = (host: string) => `${host}/${name}:${tag}`;
      await loadImage(join(tmp, "img.tar"), { store, name: image(sa), policy: false });
      const dir = store.imageDir(image(sa));
      for (const spelling of [sa, ...more]) {
        if (!(await store.has(image(spelling)))) {
          fail(`loaded as '${image(sa)}', store.has('${image(spelling)}') is false`);
        }
        if (store.imageDir(image(spelling)) !== dir) {
          fail(`store.imageDir('${image(spelling)}') is not '${dir}'`);
        }
      }
      const listed = (await store.list()).map((e) => String(e.name));
      const want = ImageName.parse(image(registryText(a))).toString();
      if (!sameJson(listed, [want])) fail(`store.list() after loading '${image(sa)}'`, listed);
      const same = registryText(a) === registryText(b);
      if (await store.has(image(sb)) !== same) {
        fail(`loaded as '${image(sa)}', store.has('${image(sb)}') is ${!same}`);
      }
    });
    return true;
  },
);
