import { beforeAll, describe, expect, it } from "vitest";
import { HttpKubeClient, LeaderElector, type LeaderElectorOptions } from "../../../src/runtime/index.js";
import { createTestNamespace, testKubeConfig } from "../../harness/kube.js";

describe("LeaderElector on one Lease against the real API server", () => {
  const kc = testKubeConfig();
  const client = new HttpKubeClient(kc);
  let namespace: string;

  beforeAll(async () => {
    namespace = await createTestNamespace(kc, "rt-lease");
  });

  function replica(
    identity: string,
    lease: string,
    log: string[],
    extra: Partial<LeaderElectorOptions> = {},
  ) {
    const elector = new LeaderElector({
      client,
      namespace,
      name: lease,
      identity,
      leaseDurationMs: 3_000,
      renewDeadlineMs: 2_000,
      retryPeriodMs: 250,
      onStartedLeading: () => log.push(`${identity} leads`),
      onStoppedLeading: () => log.push(`${identity} stops`),
      ...extra,
    });
    const done = elector.run();
    return { elector, done };
  }

  it("lets only one of two replicas lead; the other takes over within the lease duration after a crash", async () => {
    const log: string[] = [];
    const a = replica("a", "crash", log);
    await expect.poll(() => log).toEqual(["a leads"]);
    const b = replica("b", "crash", log);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(b.elector.isLeader).toBe(false);
    expect(log).toEqual(["a leads"]);

    const crashedAt = Date.now();
    a.elector.stop({ release: false }); // stops renewing; the lease is left to expire
    await a.done;
    await expect.poll(() => b.elector.isLeader, { timeout: 10_000, interval: 50 }).toBe(true);
    const takeover = Date.now() - crashedAt;
    // B counts the lease duration from the last change it observed, so at most duration + a retry or two.
    expect(takeover).toBeGreaterThanOrEqual(2_000);
    expect(takeover).toBeLessThan(3_000 + 1_500);
    expect(log).toEqual(["a leads", "a stops", "b leads"]);
    const lease = await client.get<{ spec?: { holderIdentity?: string; leaseTransitions?: number } }>(
      { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease" },
      namespace,
      "crash",
    );
    expect(lease.spec?.holderIdentity).toBe("b");
    expect(lease.spec?.leaseTransitions).toBe(1);
    b.elector.stop();
    await b.done;
  });

  it("hands over at once when the leader releases the lease on a graceful stop", async () => {
    const log: string[] = [];
    const a = replica("a", "release", log);
    await expect.poll(() => a.elector.isLeader).toBe(true);
    const b = replica("b", "release", log);
    await new Promise((r) => setTimeout(r, 600));
    const stoppedAt = Date.now();
    a.elector.stop();
    await a.done;
    await expect.poll(() => b.elector.isLeader, { timeout: 5_000, interval: 50 }).toBe(true);
    expect(Date.now() - stoppedAt).toBeLessThan(1_500);
    expect(log).toEqual(["a leads", "a stops", "b leads"]);
    b.elector.stop();
    await b.done;
  });

  it("never has two leaders at once while both campaign", async () => {
    let leaders = 0;
    let maxLeaders = 0;
    const hooks = {
      onStartedLeading: () => {
        leaders++;
        maxLeaders = Math.max(maxLeaders, leaders);
      },
      onStoppedLeading: () => {
        leaders--;
      },
    };
    const log: string[] = [];
    const rs = ["r1", "r2", "r3"].map((id) => replica(id, "race", log, hooks));
    await new Promise((r) => setTimeout(r, 2_000));
    expect(maxLeaders).toBe(1);
    expect(rs.filter((r) => r.elector.isLeader)).toHaveLength(1);
    for (const r of rs) r.elector.stop();
    await Promise.all(rs.map((r) => r.done));
  });
});
