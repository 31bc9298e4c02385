import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  chartRuntimeEnv,
  runtimeEnvOfDockerfile,
  runtimeEnvOfManifest,
  withDefaults,
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

  it("gives V8 three quarters of the chart's memory limit as its heap limit, and the chart's value reaches NODE_OPTIONS", () => {
    const values = parse(read("charts", "tde-operator", "values.yaml"));
    const limit = /^(\d+)Mi$/.exec(values.resources.limits.memory)?.[1];
    // the rest of the process (code, buffers, native memory) needs the last quarter
    expect(values.operator.heapLimitMiB).toBe((Number(limit) * 3) / 4);
    expect(chartRuntimeEnv(root).NODE_OPTIONS).toContain(
      `--max-old-space-size=${values.operator.heapLimitMiB}`,
    );
    expect(() => withDefaults("{{ .Values.operator.none }}", values)).toThrow(/operator\.none/);
  });

  it("names an entry that is missing", () => {
    expect(() => runtimeEnvOfManifest("- name: NODE_OPTIONS\n  value: --x")).toThrow(/MALLOC_ARENA_MAX/);
  });
});
