/**
 * `ocipkg discover`: an image's referrers as a tree.
 *
 * @module
 */
import { openImage, resolveLocation, UsageError } from "../../mod.ts";
import { discoverReferrers, type ReferrerNode } from "../transport/mod.ts";
import { ANNOTATION_TITLE } from "../oci/mod.ts";
import { defineCommand } from "./options.ts";
import { out } from "./output.ts";
import { jsonOption, registryHints, registryOptions, remote } from "./shared.ts";

function depth(text: string, flag: string): number {
  if (!/^[1-9]\d?$/.test(text)) throw new UsageError(`invalid ${flag} '${text}': use 1-99`);
  return Number(text);
}

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

/** The command. */
export default defineCommand({
  name: "discover",
  usage: "discover <image> [--artifact-type type] [--depth n] [--json]",
  summary: "List an image's referrers (signatures, SBOMs, attachments) as a tree",
  positionals: [1, 1],
  options: {
    "artifact-type": {
      type: "string",
      value: "type",
      description: "only referrers of this type (at the first level)",
    },
    depth: {
      type: "string",
      value: "n",
      default: "4",
      parse: depth,
      description: "follow referrers of referrers this deep",
    },
    ...jsonOption,
    ...registryOptions,
  },
  examples: [
    {
      command: "ocipkg discover ghcr.io/org/libfoo:1.2",
      description: "everything attached to the image, and what is attached to those",
    },
    {
      command:
        "ocipkg discover localhost:5000/libfoo:1 --artifact-type application/spdx+json --json",
      description: "its SBOMs, as JSON",
    },
  ],
  hints: registryHints,
  async run([image], opts) {
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
  },
});
