import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  chartRuntimeEnv,
  runtimeEnvOfDockerfile,
  runtimeEnvOfManifest,
} from "../../../bench/lib/image-runtime-env.js";

/**
 * The operator's memory settings (V8's NODE_OPTIONS, glibc's MALLOC_ARENA_MAX) are set in three
 * places; `npm run bench` reads the chart's and measures with them, so the figures it prints hold
 * for the image and the kustomize base only while all three agree.
 */
describe("the operator's runtime environment", () => {
  const root = join(import.meta.dirname, "..", "..", "..");
  const read = (...p: string[]) => readFileSync(join(root, ...p), "utf8");

  it("is the same in the chart, the Dockerfile and deploy/base (what the benchmark runs with)", () => {
    const chart = chartRuntimeEnv(root);
    expect(chart.NODE_OPTIONS).toContain("--enable-source-maps");
    expect(chart.MALLOC_ARENA_MAX).toMatch(/^[1-9][0-9]*$/);
    expect(runtimeEnvOfDockerfile(read("Dockerfile"))).toEqual(chart);
    expect(runtimeEnvOfManifest(read("deploy", "base", "deployment.yaml"))).toEqual(chart);
  });

  it("names an entry that is missing", () => {
    expect(() => runtimeEnvOfManifest("- name: NODE_OPTIONS\n  value: --x")).toThrow(/MALLOC_ARENA_MAX/);
  });
});
