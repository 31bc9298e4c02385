import { readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..", "..");

/**
 * The NODE_OPTIONS the operator runs with when installed: the chart's Deployment sets them (the
 * Dockerfile and deploy/base carry the same, test/unit/project/node-options.test.ts). The
 * benchmark starts the operator with them unless told otherwise (--node-options), so its memory
 * figures are those of the V8 settings users get.
 */
export function chartNodeOptions(root = ROOT): string {
  return nodeOptionsOfManifest(
    readFileSync(join(root, "charts", "tde-operator", "templates", "deployment.yaml"), "utf8"),
  );
}

/** The value of the NODE_OPTIONS env entry of a Deployment manifest or template. */
export function nodeOptionsOfManifest(text: string): string {
  const m = /- name: NODE_OPTIONS\s*\n\s*value:\s*(.+)/.exec(text);
  if (!m) throw new Error("no NODE_OPTIONS env entry");
  return unquote(m[1]!.trim());
}

/** The NODE_OPTIONS of a Dockerfile's ENV. */
export function nodeOptionsOfDockerfile(text: string): string {
  const m = /NODE_OPTIONS=("[^"]*"|\S+)/.exec(text);
  if (!m) throw new Error("no NODE_OPTIONS in the Dockerfile");
  return unquote(m[1]!);
}

function unquote(s: string): string {
  return /^(["']).*\1$/.test(s) ? s.slice(1, -1) : s;
}
