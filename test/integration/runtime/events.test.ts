import { beforeAll, describe, expect, it } from "vitest";
import { CoreEventKind, EventRecorder, HttpKubeClient, type KubeObject } from "../../../src/runtime/index.js";
import { createTestNamespace, testKubeConfig } from "../../harness/kube.js";
import { ensureGadgetCrd, GadgetKind, gadget } from "./gadget-crd.js";

type Event = KubeObject & {
  reason?: string;
  message?: string;
  type?: string;
  count?: number;
  involvedObject?: { uid?: string; kind?: string };
};

describe("EventRecorder against the real API server", () => {
  const kc = testKubeConfig();
  const client = new HttpKubeClient(kc);
  let namespace: string;

  beforeAll(async () => {
    await ensureGadgetCrd(kc);
    namespace = await createTestNamespace(kc, "rt-events");
  });

  it("creates an Event for the involved object and counts identical repeats instead of adding more", async () => {
    const errors: unknown[] = [];
    const recorder = new EventRecorder(client, { component: "tde-test", onError: (e) => errors.push(e) });
    const g = await client.create<KubeObject>(GadgetKind, namespace, gadget("e1"));
    await Promise.all([
      recorder.normal(g, "Created", "DEK created"),
      recorder.normal(g, "Created", "DEK created"),
      recorder.normal(g, "Created", "DEK created"),
    ]);
    await recorder.warning(g, "KeyUnavailable", "the key vault refused unwrapKey");
    expect(errors).toEqual([]);

    const list = await client.list<Event>(CoreEventKind, namespace);
    const mine = list.items.filter((e) => e.involvedObject?.uid === g.metadata?.uid);
    expect(mine.map((e) => [e.type, e.reason, e.message, e.count]).sort()).toEqual([
      ["Normal", "Created", "DEK created", 3],
      ["Warning", "KeyUnavailable", "the key vault refused unwrapKey", 1],
    ]);
    expect(mine[0]?.involvedObject?.kind).toBe("Gadget");
  });

  it("starts a new Event once the de-duplication window has passed", async () => {
    let now = new Date("2030-01-01T00:00:00Z");
    const recorder = new EventRecorder(client, {
      component: "tde-test",
      dedupWindowMs: 60_000,
      now: () => now,
    });
    const g = await client.create<KubeObject>(GadgetKind, namespace, gadget("e2"));
    await recorder.normal(g, "Rotated", "rotated to v2");
    now = new Date(now.getTime() + 61_000);
    await recorder.normal(g, "Rotated", "rotated to v2");
    const list = await client.list<Event>(CoreEventKind, namespace);
    expect(list.items.filter((e) => e.involvedObject?.uid === g.metadata?.uid)).toHaveLength(2);
  });

  it("never throws into the caller when the write fails", async () => {
    const errors: unknown[] = [];
    const recorder = new EventRecorder(client, { component: "tde-test", onError: (e) => errors.push(e) });
    await recorder.normal(
      { apiVersion: "v1", kind: "Thing", metadata: { name: "x", namespace: "no-such-namespace-zz" } },
      "R",
      "m",
    );
    expect(errors).toHaveLength(1);
  });
});
