/**
 * R10: one probe per distinct key per interval, however many resources depend on it. Twenty
 * servers on four KeyProtectors that name two keys cost two probes of those keys per interval
 * (and one of the operator's own service-managed key); the servers themselves call no KMS.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KekProvider } from "../../../src/kms/provider.js";
import { interposed } from "../../harness/kek-interposer.js";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import {
  type Api,
  api,
  cond,
  type EncryptedServer,
  type KeyProtector,
  kc,
  suffix,
  waitFor,
} from "../controllers/helpers.js";
import { metricSum, sleep } from "./support.js";

const id = suffix();
const ns = `wd-fan-${id}`;
const opNs = `wd-fan-op-${id}`;
const PROBE_MS = 1_000;
const SERVERS = 20;
const KEYS = ["fan-key-1", "fan-key-2"];
const KEY_PROTECTORS = ["fan-1a", "fan-1b", "fan-2a", "fan-2b"];

/** Probe round trips per key: a probe wraps with the key's reference, DEK work with a pinned key id. */
const probeWraps = new Map<string, number>();
const countProbes = (local: KekProvider): KekProvider =>
  interposed(local, {
    wrap: (r, d) => {
      if (!r.keyID) probeWraps.set(r.keyName, (probeWraps.get(r.keyName) ?? 0) + 1);
      return local.wrap(r, d);
    },
  });

let a: Api;
let op: TestOperator;

beforeAll(async () => {
  a = api(kc());
  op = await startTestOperator({
    watchNamespaces: [ns],
    operatorNamespace: opNs,
    probeIntervalMs: PROBE_MS,
    wrapLocal: countProbes,
  });
});

afterAll(async () => {
  await op?.stop();
});

const ready = (o: { status?: { conditions?: { type: string; status: string; reason: string }[] } }) =>
  cond(o, "Ready")?.status === "True";

describe("R10 probes per distinct key", () => {
  it("R10 20 servers on 4 KeyProtectors naming 2 keys: at most one probe per key per interval, none per server", async () => {
    for (const key of KEYS) await a.local.createKey(ns, key, { size: 2048 });
    for (const kp of KEY_PROTECTORS) {
      const key = kp.startsWith("fan-1") ? KEYS[0] : KEYS[1];
      await a.create("KeyProtector", ns, kp, { provider: "Local", local: { secretRef: { name: key } } });
    }
    for (const kp of KEY_PROTECTORS)
      await waitFor(`${kp} Ready`, () => a.get<KeyProtector>("KeyProtector", ns, kp), ready);
    await Promise.all(
      Array.from({ length: SERVERS }, (_, i) =>
        a.create("EncryptedServer", ns, `fan-srv-${i}`, {
          protector: {
            type: "CustomerManaged",
            keyProtectorRef: { name: KEY_PROTECTORS[i % KEY_PROTECTORS.length] },
          },
        }),
      ),
    );
    await waitFor(
      "every server Available",
      async () => {
        const states = [];
        for (let i = 0; i < SERVERS; i++)
          states.push((await a.get<EncryptedServer>("EncryptedServer", ns, `fan-srv-${i}`)).status?.state);
        return states;
      },
      (states) => states.every((s) => s === "Available"),
      30_000,
    );

    // settle, then watch several probe intervals
    await sleep(2 * PROBE_MS);
    const windowMs = 6 * PROBE_MS;
    const before = await metricSum(op.metrics.keyProbes);
    probeWraps.clear();
    op.resetCounts();
    await sleep(windowMs);
    const probes = (await metricSum(op.metrics.keyProbes)) - before;
    const perKey = Object.fromEntries(KEYS.map((k) => [k, probeWraps.get(k) ?? 0]));

    // each key is probed about once per interval (one more for a probe in flight at an edge)...
    const intervals = windowMs / PROBE_MS;
    for (const key of KEYS) {
      expect(perKey[key], key).toBeGreaterThanOrEqual(intervals - 2);
      expect(perKey[key], key).toBeLessThanOrEqual(intervals + 1);
    }
    // ...and in all, the two keys plus the operator's own service-managed key, never per server
    // or per KeyProtector (20 servers or 4 KeyProtectors would be 5 or 2 times as many)
    expect(probes).toBeLessThanOrEqual(3 * (intervals + 1));
    // the servers read the KeyProtectors' status: no DEK wrap, no unwrap beyond the probes'
    // (give or take a probe in flight at either edge of the window: one per key)
    expect(op.counts.kms.dekWrap ?? 0).toBe(0);
    expect(op.counts.kms.unwrap ?? 0).toBeLessThanOrEqual((op.counts.kms.wrap ?? 0) + 3);
  });
});
