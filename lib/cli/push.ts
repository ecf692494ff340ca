/**
 * `ocipkg push`: oci-archives/oci-dirs to a registry.
 *
 * @module
 */
import { imageName, type LayoutLocation, pushImage, resolveLocation } from "../../mod.ts";
import { defineCommand } from "./options.ts";
import { out } from "./output.ts";
import { progressOptions, withProgress } from "./progress.ts";
import { registryHints, registryOptions, remote } from "./shared.ts";

/** The command. */
export default defineCommand({
  name: "push",
  usage: "push <layout>... [image | -t image] [--plain-http] [--ca-file pem] [--concurrency n]",
  summary: "Push oci-archives/oci-dirs to a registry; several platform packages become one index",
  positionals: [1, Infinity],
  options: {
    tag: {
      type: "string",
      short: "t",
      value: "image",
      default: "the last argument when it names an image, else the layout's ref name",
      description: "the image to push to",
    },
    ...registryOptions,
    ...progressOptions,
  },
  examples: [
    {
      command: "ocipkg push libfoo.tar ghcr.io/org/libfoo:1.0",
      description: "push an oci-archive to a registry",
    },
    {
      command: "ocipkg push libfoo-amd64.tar libfoo-arm64.tar -t ghcr.io/org/libfoo:1.0",
      description: "push two platform packages as one multi-platform index",
    },
    {
      command: "ssh build-host cat libfoo.tar | ocipkg push - ghcr.io/org/libfoo:1.0",
      description: "push an oci-archive read from stdin",
    },
  ],
  hints: [{ when: /has no platform/, add: "; pack it with --platform" }, ...registryHints],
  async run(args, opts) {
    let image = opts.tag === undefined ? undefined : imageName(opts.tag);
    let layouts = args;
    // the last argument is the image when the one resolver says it names one
    const last = args.length >= 2 ? await resolveLocation(args.at(-1)!) : undefined;
    if (!image && last?.kind === "registry") {
      image = last.name;
      layouts = args.slice(0, -1);
    }
    const from = await Promise.all(
      layouts.map((l) => resolveLocation(l, { accept: "layout" }) as Promise<LayoutLocation>),
    );
    const r = await withProgress(
      opts,
      image?.toString() ?? layouts.join(" "),
      (p) => pushImage(from, image, { ...remote(opts), ...p }),
      () => "pushed",
    );
    out(
      opts.json
        ? JSON.stringify({ name: String(r.name), digest: r.digest })
        : `${r.name} ${r.digest}`,
    );
  },
});
