// Every default and limit the README quotes is the code's (issue 25: it said `--concurrency` 8
// where `--help` said 4). Each sentence below is rendered from the constants the code uses and
// must appear in the README as written (whitespace aside): change a constant and this names the
// sentence to change with it. `--help` shows the same constants (lib/cli/shared.ts,
// lib/cli/serve.ts), checked here too.
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { ROOT } from "./_helpers.ts";
import { SERVE_DEFAULTS } from "../mod.ts";
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_RATIO } from "../lib/archive/mod.ts";
import { RATIO_SLACK } from "../lib/archive/defaults.ts";
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_LARGE_TRANSFERS,
  DEFAULT_RANGE_PARTS,
  DEFAULT_RANGE_THRESHOLD,
  DEFAULT_TIMEOUTS,
  LARGE_BLOB,
} from "../lib/transport/mod.ts";
import { MAX_DESCRIPTORS } from "../lib/transport/copy.ts";
import { MAX_FALLBACK_REFERRERS } from "../lib/transport/referrers.ts";
import {
  MAX_BODY,
  MAX_ERROR_BODY,
  SHARED_DEADLINE_FACTOR,
} from "../lib/transport/registry/http.ts";
import { DEFAULT_CHUNK, MAX_TAG_PAGES, MAX_TAGS } from "../lib/transport/registry/repository.ts";
import { MAX_REFERRER_PAGES, MAX_REFERRERS } from "../lib/transport/registry/listing.ts";
import { WRITE_BLOCK } from "../lib/util/files.ts";
import { MAX_MANIFEST_SIZE } from "../lib/oci/manifest.ts";
import { MAX_TAG_CHECKS } from "../lib/ops/deletion.ts";
import { DEFAULT_VERIFY_LIMITS } from "../lib/sign/image.ts";
import { MAX_PAYLOAD_SIZE } from "../lib/sign/payload.ts";
import { MAX_SIGNATURE_LAYERS } from "../lib/sign/signature.ts";
import { AUTH_FAILURE_BURST, AUTH_FAILURE_RATE } from "../lib/serve/server.ts";
import {
  REFERRER_ANNOTATION_BYTES,
  REFERRER_DESCRIPTOR_BYTES,
  REFERRERS_PAGE_ANNOTATION_BYTES,
  REFERRERS_PAGE_ENTRIES,
} from "../lib/serve/manifests.ts";
import { MAX_OPTION_FILE } from "../lib/serve/auth.ts";
import { MAX_LINES } from "../lib/cli/progress.ts";
import { STALE_TEMP_AGE, TEMP_TOUCH_SHARE } from "../lib/util/temp.ts";
import { registryOptions } from "../lib/cli/shared.ts";
import serveCommand from "../lib/cli/serve.ts";
import type { OptionTable } from "../lib/cli/options.ts";
import { DEFAULTS as SOAK } from "../scripts/soak.ts";

const README = await Deno.readTextFile(join(ROOT, "README.md"));
/** The README with every run of whitespace one space (sentences wrap anywhere). */
const TEXT = README.replace(/\s+/g, " ");

/** 1000 → "1,000" (the README's way). */
const n = (x: number) => x.toLocaleString("en-US");
const gib = (b: number) => `${b / 1024 ** 3} GiB`;
const mib = (b: number) => `${b / 1024 ** 2} MiB`;
const kib = (b: number) => `${b / 1024} KiB`;
const sec = (ms: number) => `${ms / 1000} s`;
const T = DEFAULT_TIMEOUTS;

/** Sentences of the README, as the constants make them. */
const CLAIMS: string[] = [
  // Commands: options
  `\`--concurrency <n>\` (requests in flight, default ${DEFAULT_CONCURRENCY}, of which at most ${DEFAULT_LARGE_TRANSFERS} transfer blobs of ${
    mib(LARGE_BLOB)
  } or more)`,
  `\`--parallel <n>\` (ranged requests for one blob of ${
    mib(DEFAULT_RANGE_THRESHOLD)
  } or more, default ${DEFAULT_RANGE_PARTS}, 1 for a loopback registry; \`OCIPKG_PARALLEL\`)`,
  // Output and scripting
  `at most ${MAX_LINES}, then "… and N more"`,
  // Managing a registry
  `(\`HEAD\`, ${DEFAULT_CONCURRENCY} at a time, up to ${n(MAX_TAG_CHECKS)} tags)`,
  // ocipkg serve
  `(at most ${n(REFERRERS_PAGE_ENTRIES)} referrers and ${
    mib(REFERRERS_PAGE_ANNOTATION_BYTES)
  } of annotations per answer; a referrer whose annotations are over ${
    kib(REFERRER_ANNOTATION_BYTES)
  } is listed without them, one whose descriptor is otherwise over ${
    kib(REFERRER_DESCRIPTOR_BYTES)
  } is not listed)`,
  `manifests are capped at ${mib(MAX_MANIFEST_SIZE)}.`,
  `of at most ${mib(MAX_OPTION_FILE)}: a fifo, device,`,
  `the requests in flight get \`--shutdown-grace\` (${sec(SERVE_DEFAULTS.shutdownGraceMs)})`,
  // Registries
  `${mib(DEFAULT_CHUNK)} \`PATCH\` chunks are the fallback`,
  `Blob writes to disk go in ${mib(WRITE_BLOCK)} blocks`,
  `at most ${sec(T.retryBudgetMs)} of waiting per request (\`--retry-budget\`;`,
  `${SHARED_DEADLINE_FACTOR} × the connect timeout (${
    sec(T.connectTimeoutMs * SHARED_DEADLINE_FACTOR)
  })`,
  `fails after ${sec(T.connectTimeoutMs * SHARED_DEADLINE_FACTOR)} and two connections`,
  `Manifests, tokens and tag pages are capped at ${mib(MAX_BODY)}, error bodies at ${
    kib(MAX_ERROR_BODY)
  }, an index at ${n(MAX_DESCRIPTORS)} entries, tag listings at ${n(MAX_TAG_PAGES)} pages and ${
    n(MAX_TAGS)
  } tags`,
  `connect + response headers ${sec(T.connectTimeoutMs)} (\`--connect-timeout\`), no bytes for ${
    sec(T.idleTimeoutMs)
  } (\`--idle-timeout\`), ${T.totalTimeoutMs / 60_000} min in all`,
  `must average at least ${kib(T.minBytesPerSecond)}/s`,
  `less than ${kib(T.speedLimit)}/s over any ${
    sec(T.speedTimeMs)
  } of waiting for the network (\`--speed-limit\`, \`--speed-time\`)`,
  `share ${SHARED_DEADLINE_FACTOR} × the idle timeout (${
    sec(T.idleTimeoutMs * SHARED_DEADLINE_FACTOR)
  })`,
  // Durability: a killed writer's temps in an oci-dir
  `removes those untouched for ${
    STALE_TEMP_AGE === 3_600_000 ? "an hour" : `${STALE_TEMP_AGE / 60_000} minutes`
  }`,
  `touches those waiting to be renamed every ${
    (STALE_TEMP_AGE * TEMP_TOUCH_SHARE) / 60_000
  } minutes`,
  // Safety
  `${gib(DEFAULT_MAX_BYTES)} extracted (\`--max-bytes\`), ${
    n(DEFAULT_MAX_ENTRIES)
  } entries (\`--max-entries\`), decompressed ≤ ${DEFAULT_MAX_RATIO} × compressed after the first ${
    mib(RATIO_SLACK)
  } (\`--max-ratio\`)`,
  // Signing
  `reads at most ${DEFAULT_VERIFY_LIMITS.manifests} signature manifests (bundle referrers included), ${DEFAULT_VERIFY_LIMITS.layers} signature layers and ${DEFAULT_VERIFY_LIMITS.payloads} payloads or bundles`,
  `Payloads are at most ${kib(MAX_PAYLOAD_SIZE)}`,
  `signature manifests at most ${n(MAX_SIGNATURE_LAYERS)} layers, a referrers list at most ${
    n(MAX_REFERRERS)
  } referrers in ${MAX_REFERRER_PAGES} pages of ${mib(MAX_BODY)} (${
    n(MAX_FALLBACK_REFERRERS)
  } from a fallback index)`,
  // Tests and benchmarks
  `npx -y deno task soak # ${SOAK.clients} clients against \`ocipkg serve\` for ${
    sec(SOAK.durationMs)
  }, one restart`,
];

Deno.test("readme defaults: every default and limit quoted is the code's", () => {
  const wrong = CLAIMS.filter((c) => !TEXT.includes(c.replace(/\s+/g, " ")));
  assertEquals(wrong, [], "the README should say (or the sentence moved: update this test)");
});

Deno.test("readme defaults: serve's limits table is SERVE_DEFAULTS", () => {
  const rows = new Map<string, string>();
  for (const line of README.split("\n")) {
    const cells = line.trim().split("|").map((c) => c.trim());
    const flag = /^`(--[a-z-]+)`/.exec(cells[1] ?? "");
    if (flag && cells[2] !== undefined && line.includes("`; `")) rows.set(flag[1]!, cells[2]);
  }
  const d = SERVE_DEFAULTS;
  assertEquals(Object.fromEntries(rows), {
    "--max-connections": `${d.maxConnections}`,
    "--max-client-connections": `${d.maxClientConnections}`,
    "--rate": `${n(d.rate)}/s, bursts of ${n(d.burst)}`,
    "--max-uploads": `${d.maxUploads}`,
    "--max-client-uploads": `${d.maxClientUploads}`,
    "--upload-idle": sec(d.uploadIdleMs),
    "--stall-timeout": sec(d.stallMs),
    "--shutdown-grace": sec(d.shutdownGraceMs),
  });
  assert(
    TEXT.includes(
      `also draw on a bucket per address: ${AUTH_FAILURE_BURST}, then ${AUTH_FAILURE_RATE} per second`,
    ),
  );
});

Deno.test("readme defaults: --help shows the same defaults", () => {
  const help = (name: string) => {
    const o = (serveCommand.options as OptionTable)[name];
    return o && "default" in o ? o.default : undefined;
  };
  assertEquals(
    [help("max-connections"), help("rate"), help("upload-idle")],
    [
      `${SERVE_DEFAULTS.maxConnections}`,
      `${SERVE_DEFAULTS.rate}`,
      `${SERVE_DEFAULTS.uploadIdleMs / 1000}`,
    ],
  );
  assertEquals(registryOptions.concurrency.default, `${DEFAULT_CONCURRENCY}`);
  assertEquals(
    registryOptions.parallel.default,
    `${DEFAULT_RANGE_PARTS}; 1 for a loopback registry`,
  );
  assertEquals(registryOptions["connect-timeout"].default, `${T.connectTimeoutMs / 1000}`);
});
