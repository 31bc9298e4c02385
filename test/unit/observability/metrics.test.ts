import { describe, expect, it } from "vitest";
import { Metrics, rotationsBlocked } from "../../../src/observability/metrics.js";

const db = (namespace: string, blocked: "True" | "False" | undefined) => ({
  metadata: { namespace },
  status: {
    conditions:
      blocked === undefined
        ? []
        : [
            {
              type: "RotationBlocked",
              status: blocked,
              reason: "KeyRotationAttemptedWhileOldThumbprintInUse",
              message: "",
              lastTransitionTime: "2025-01-01T00:00:00Z",
            },
          ],
  },
});

describe("R28 metrics", () => {
  it("R17 R21: tde_rotations_blocked counts RotationBlocked=True by kind and namespace, nothing else", () => {
    expect(
      rotationsBlocked({
        EncryptedDatabase: [
          db("a", "True"),
          db("a", "True"),
          db("b", "True"),
          db("a", "False"),
          db("c", undefined),
        ],
        EncryptedServer: [db("a", "False")],
      }),
    ).toEqual([
      { labels: { kind: "EncryptedDatabase", namespace: "a" }, value: 2 },
      { labels: { kind: "EncryptedDatabase", namespace: "b" }, value: 1 },
    ]);
  });

  it("tde_rotations_blocked is derived at scrape time and disappears when the block is lifted", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    let databases = [db("shop", "True")];
    metrics.setRotationSource(() => ({ EncryptedDatabase: databases }));
    expect(await metrics.registry.metrics()).toContain(
      'tde_rotations_blocked{kind="EncryptedDatabase",namespace="shop"} 1',
    );
    databases = [db("shop", "False")];
    expect(await metrics.registry.metrics()).not.toMatch(/^tde_rotations_blocked\{/m);
  });

  it("no gauge is named like a counter (…_total): prom-client's three are left out", async () => {
    const metrics = new Metrics();
    const text = await metrics.registry.metrics();
    const gauges = [...text.matchAll(/^# TYPE (\S+) gauge$/gm)].map((m) => m[1]);
    expect(gauges).toContain("tde_nodejs_active_handles");
    expect(gauges.filter((name) => name?.endsWith("_total"))).toEqual([]);
  });
});
