/**
 * R27 R33: the answer to one of the operator's own writes may come after what happened next. A
 * KeyProtector's status write (DeletionBlocked, as it is deleted while in use) is answered only
 * after someone has stripped its finalizer and it is gone. The operator, whose every request goes
 * through the fault proxy, must not cache the deleted KeyProtector again from that answer: its
 * dependant then says KeyAccessible=Unknown, never a stale True.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultProxy, kubeConfigThrough, upstreamFromKubeConfig } from "../../harness/fault-proxy.js";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import {
  type Api,
  api,
  cond,
  createLocalKeyProtector,
  type EncryptedServer,
  type KeyProtector,
  kc,
  suffix,
  waitFor,
} from "./helpers.js";

const id = suffix();
const ns = `late-${id}`;
const opNs = `late-op-${id}`;
const LATE_MS = 3_000;
let a: Api;
let op: TestOperator;
let proxy: FaultProxy;

beforeAll(async () => {
  a = api(kc());
  proxy = await FaultProxy.start({ upstream: await upstreamFromKubeConfig(kc()) });
  op = await startTestOperator({
    watchNamespaces: [ns],
    operatorNamespace: opNs,
    kubeConfig: kubeConfigThrough(proxy),
  });
});

afterAll(async () => {
  await op?.stop();
  await proxy?.stop();
});

describe("a write answered after the object is gone (R27 R33)", () => {
  it("R33 a KeyProtector deleted by force while its status write is still unanswered stays gone: its dependant says KeyAccessible=Unknown", async () => {
    await createLocalKeyProtector(a, ns, "late-kp");
    await a.create("EncryptedServer", ns, "late-srv", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "late-kp" } },
    });
    const server = () => a.get<EncryptedServer>("EncryptedServer", ns, "late-srv");
    await waitFor("late-srv Available", server, (o) => o.status?.state === "Available");

    // every write of the KeyProtector's status is answered LATE_MS after it took effect
    await proxy.setFaults({
      rate: 1,
      mix: { late: 1 },
      lateMs: LATE_MS,
      applies: (method, path) => method !== "GET" && path.includes("/keyprotectors/late-kp/status"),
    });
    await a.delete("KeyProtector", ns, "late-kp");
    // the operator has written DeletionBlocked (it took effect upstream) and waits for the answer
    await waitFor(
      "DeletionBlocked written",
      () => a.get<KeyProtector>("KeyProtector", ns, "late-kp"),
      (o) => cond(o, "DeletionBlocked")?.status === "True",
    );
    expect(proxy.counts.faults.late).toBeGreaterThanOrEqual(1);
    await a.patch("KeyProtector", ns, "late-kp", { metadata: { finalizers: null } });
    const goneAt = Date.now();
    await expect
      .poll(() => op.operator.keyProtectors.get(ns, "late-kp"), { timeout: 10_000 })
      .toBeUndefined();

    // the late answers have all come (the last one written before the delete, at most LATE_MS on)
    await new Promise((r) => setTimeout(r, LATE_MS + 1_000 - (Date.now() - goneAt)));
    expect(op.operator.keyProtectors.get(ns, "late-kp")).toBeUndefined();
    const unknown = await waitFor(
      "KeyAccessible Unknown",
      server,
      (o) => cond(o, "KeyAccessible")?.status === "Unknown",
    );
    expect(cond(unknown, "KeyAccessible")?.reason).toBe("KeyNotProbed");
    // and it stays so: no later pass finds the KeyProtector again (probe interval 1 s)
    await new Promise((r) => setTimeout(r, 3_000));
    expect(op.operator.keyProtectors.get(ns, "late-kp")).toBeUndefined();
    expect(cond(await server(), "KeyAccessible")?.status).toBe("Unknown");
    await proxy.heal();
  });
});
