/**
 * The work of `ocipkg discover`: an image's referrers as a tree. Its table
 * (usage, options, examples) is `discover.ts`; this module is loaded only
 * when the command runs.
 *
 * @module
 */
import { openImage, resolveLocation } from "../transport/location.ts";
import { discoverReferrers, type ReferrerNode } from "../transport/referrers.ts";
import { ANNOTATION_TITLE } from "../oci/media_types.ts";
import { implement } from "./options.ts";
import { out } from "./output.ts";
import { remote } from "./shared.ts";
import command from "./discover.ts";

function printTree(nodes: ReferrerNode[], indent: string): void {
  nodes.forEach((n, i) => {
    const last = i === nodes.length - 1;
    const d = n.descriptor;
    const title = d.annotations?.[ANNOTATION_TITLE];
    out(
      `${indent}${last ? "└── " : "├── "}${d.artifactType ?? d.mediaType} ${d.digest}${
        title ? ` (${title})` : ""
      }`,
    );
    printTree(n.referrers, indent + (last ? "    " : "│   "));
  });
}

function toJson(n: ReferrerNode): unknown {
  return { ...n.descriptor, source: n.source, referrers: n.referrers.map(toJson) };
}

/** Run the command: its positionals and typed options in, the work done. */
export default implement(command, async ([image], opts) => {
  const { target, subject } = await openImage(await resolveLocation(image!), remote(opts));
  let tree: ReferrerNode[];
  try {
    tree = await discoverReferrers(target, subject.digest, {
      artifactType: opts.artifactType,
      depth: opts.depth,
    });
  } finally {
    await target.close();
  }
  if (opts.json) {
    out(JSON.stringify({ image, digest: subject.digest, referrers: tree.map(toJson) }));
    return;
  }
  out(`${image}@${subject.digest}`);
  printTree(tree, "");
});
