// A short soak of `ocipkg serve` (scripts/soak.ts, the same code `deno task soak` runs for 90 s):
// 8 clients — ocipkg's library and skopeo — push and pull random blobs and images for 8 s, some
// cutting their uploads short on purpose, some uploading one blob several times at once, while
// `serve` (a subprocess) is stopped with SIGTERM and started again on the same root. Nothing a
// client saw succeed may be lost, and the root must be consistent afterwards.
import { assert, assertEquals } from "./_assert.ts";
import { formatReport, runSoak } from "../scripts/soak.ts";

Deno.test("serve soak: concurrent pushes, pulls, aborts and a restart lose nothing", async () => {
  const r = await runSoak({
    durationMs: 8_000,
    clients: 8,
    skopeoEvery: 4,
    maxSizeBytes: 512 * 1024,
    largeBytes: 3 * 1024 * 1024,
    largeEvery: 40,
    restarts: 1,
    repos: 4,
  });
  const c = r.consistency;
  const why = formatReport(r);
  // the load ran: pushes were acknowledged, uploads were aborted, serve restarted
  assert(r.acked.blobs > 0 && r.acked.manifests > 0, why);
  assert(Object.values(r.clients.aborts).reduce((n, k) => n + k, 0) > 0, why);
  assertEquals(r.server.exitCodes, [0, 0], why);
  assert(c.cleanStops, why);
  // every blob file hashes to its name, every listed manifest has its blobs, nothing left behind
  assert(c.blobFiles > 0, why);
  assertEquals(c.badBlobs, [], why);
  assertEquals(c.incomplete, [], why);
  // no stop leaves an upload file behind
  assertEquals(c.orphanUploads, [], why);
  assertEquals(c.strayFiles, [], why);
  // every acknowledged push reads back with the same bytes; no aborted upload became a blob
  assertEquals(c.ackedBlobsLost, [], why);
  assertEquals(c.ackedBlobsReadable, r.acked.blobs, why);
  assertEquals(c.ackedManifestsLost, [], why);
  assertEquals(c.ackedManifestsReadable, r.acked.manifests, why);
  assertEquals(c.ackedTagsLost, [], why);
  assertEquals(c.abortedVisible, [], why);
});
