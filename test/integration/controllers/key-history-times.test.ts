import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findWrapByThumbprint } from "../../../src/crypto/index.js";
import type { KekProvider } from "../../../src/kms/provider.js";
import { interposed } from "../../harness/kek-interposer.js";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import { type Api, api, cond, type EncryptedDatabase, kc, readEnvelope, suffix, waitFor } from "./helpers.js";

const id = suffix();
const ns = `int-${id}`;
const opNs = `int-op-${id}`;
const db = "orders";
// long enough that a pass's start and its envelope write are far apart on any machine
const wrapDelayMs = 400;
let a: Api;
let op: TestOperator;

/** Every DEK wrap (a wrap pinned to a key id) takes `wrapDelayMs`; probes are untouched. */
const slowDekWraps = (local: KekProvider): KekProvider =>
  interposed(local, {
    wrap: async (ref, dek) => {
      if (ref.keyID) await new Promise((r) => setTimeout(r, wrapDelayMs));
      return local.wrap(ref, dek);
    },
  });

const get = () => a.get<EncryptedDatabase>("EncryptedDatabase", ns, db);

beforeAll(async () => {
  a = api(kc());
  op = await startTestOperator({ watchNamespaces: [ns], operatorNamespace: opNs, wrapLocal: slowDekWraps });
  for (const k of ["k-one", "k-two"]) {
    await a.local.createKey(ns, k, { size: 2048 });
    await a.create("KeyProtector", ns, k, { provider: "Local", local: { secretRef: { name: k } } });
  }
  await a.create("EncryptedServer", ns, "srv", { protector: { type: "ServiceManaged" } });
  await a.create("EncryptedDatabase", ns, db, {
    serverRef: { name: "srv" },
    encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "k-one" } },
  });
  await waitFor("Ready", get, (o) => cond(o, "Ready")?.status === "True");
});

afterAll(async () => {
  await op?.stop();
});

describe("R18 R21 the key history's times, on a real API server", () => {
  it("starts a new protector's entry no earlier than its wrap was written, and ends the old one there", async () => {
    const before = await get();
    const one = before.status?.effectiveProtector?.thumbprint;
    await a.patch("EncryptedDatabase", ns, db, {
      spec: { encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "k-two" } } },
    });
    const moved = await waitFor(
      "the key history records k-two as the protector",
      get,
      (o) =>
        o.status?.keyList?.some((k) => k.role === "protector" && k.keyProtectorName === "k-two") === true,
    );
    const two = moved.status?.effectiveProtector?.thumbprint ?? "";
    expect(two).not.toBe(one);
    const wrap = findWrapByThumbprint(await readEnvelope(a, ns, moved.status?.envelopeSecretName ?? ""), two);
    expect(wrap?.role).toBe("protector");
    const keyList = moved.status?.keyList ?? [];
    const now = keyList.find((k) => k.thumbprint === two && k.role === "protector" && !k.until);
    const was = keyList.find((k) => k.thumbprint === one && k.role === "protector");
    // "which key protected at T" (a restore's question) never names a key before its wrap existed
    expect(Date.parse(now?.since ?? "")).toBeGreaterThanOrEqual(Date.parse(wrap?.addedAt ?? ""));
    expect(was?.until).toBe(now?.since);
  });
});
