import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  chartNodeOptions,
  nodeOptionsOfDockerfile,
  nodeOptionsOfManifest,
} from "../../../bench/lib/image-node-options.js";

/**
 * The operator's V8 settings are set in three places; `npm run bench` reads the chart's and
 * measures with them, so the figures it prints hold for the image and the kustomize base only
 * while all three agree.
 */
describe("the operator's NODE_OPTIONS", () => {
  const root = join(import.meta.dirname, "..", "..", "..");
  const read = (...p: string[]) => readFileSync(join(root, ...p), "utf8");

  it("are the same in the chart, the Dockerfile and deploy/base (what the benchmark runs with)", () => {
    const chart = chartNodeOptions(root);
    expect(chart).toContain("--enable-source-maps");
    expect(nodeOptionsOfDockerfile(read("Dockerfile"))).toBe(chart);
    expect(nodeOptionsOfManifest(read("deploy", "base", "deployment.yaml"))).toBe(chart);
  });
});
