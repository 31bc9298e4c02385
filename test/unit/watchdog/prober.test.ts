import { describe, expect, it } from "vitest";
import {
  type KekProvider,
  KeyAccessError,
  type KeyDescription,
  type KeyReference,
  type KmsRegistry,
} from "../../../src/kms/provider.js";
import { KeyProber } from "../../../src/watchdog/prober.js";

/** A fake vault: one key per name, with a switch to make it fail, counting calls by operation. */
function fakeVault() {
  const calls: Record<string, number> = {};
  const failing = new Map<string, KeyAccessError>();
  const count = (op: string, ref: KeyReference) => {
    calls[op] = (calls[op] ?? 0) + 1;
    calls[`${op}:${ref.keyName}`] = (calls[`${op}:${ref.keyName}`] ?? 0) + 1;
    const error = failing.get(ref.keyName);
    if (error) throw error;
  };
  const description = (ref: KeyReference): KeyDescription => ({
    keyID: `local://${ref.namespace}/${ref.keyName}/v1`,
    version: "v1",
    keyType: "RSA",
    keySize: 3072,
    enabled: true,
    recoveryLevel: "Recoverable",
    recoverableDays: 90,
    publicKeyDer: Buffer.alloc(0),
    thumbprint: `tp-${ref.keyName}`,
    publicKeyKnown: true,
  });
  const provider: KekProvider = {
    name: "Local",
    describe: async (ref) => {
      count("describe", ref);
      return description(ref);
    },
    listVersions: async (ref) => [description(ref)],
    wrap: async (ref, dek) => {
      count("wrap", ref);
      return { keyID: description(ref).keyID, algorithm: "RSA-OAEP-256", wrapped: Buffer.from(dek) };
    },
    unwrap: async (ref, wrapped) => {
      count("unwrap", ref);
      return Buffer.from(wrapped);
    },
  };
  const registry: KmsRegistry = { providerFor: () => provider };
  return { calls, failing, registry };
}

const ref = (keyName: string, namespace = "ns"): KeyReference => ({ provider: "Local", namespace, keyName });

function clock(start = Date.parse("2026-01-01T00:00:00Z")) {
  let t = start;
  return { now: () => new Date(t), advance: (ms: number) => (t += ms) };
}

describe("R10 KeyProber: one probe per distinct key per interval", () => {
  it("R10 many callers of one key within the interval share one probe (describe + wrap/unwrap round trip)", async () => {
    const vault = fakeVault();
    const c = clock();
    const probed: string[] = [];
    const prober = new KeyProber(vault.registry, {
      intervalMs: 60_000,
      now: c.now,
      onProbe: (r) => probed.push(r.keyName),
    });
    const outcomes = await Promise.all(Array.from({ length: 50 }, () => prober.probe(ref("k1"), {})));
    expect(outcomes.every((o) => o.access.ok)).toBe(true);
    c.advance(30_000);
    await prober.probe(ref("k1"), {});
    expect(probed).toEqual(["k1"]);
    expect(vault.calls["wrap:k1"]).toBe(1);
    expect(vault.calls["unwrap:k1"]).toBe(1);
    c.advance(30_000);
    await prober.probe(ref("k1"), {});
    expect(probed).toEqual(["k1", "k1"]);
  });

  it("R10 10 keys with 1000 dependants each cost 10 probes per interval", async () => {
    const vault = fakeVault();
    const prober = new KeyProber(vault.registry, { intervalMs: 60_000, now: clock().now });
    await Promise.all(Array.from({ length: 10_000 }, (_, i) => prober.probe(ref(`key-${i % 10}`), {})));
    expect(vault.calls.wrap).toBe(10);
  });

  it("R10 the same key name in two namespaces is two Local keys; force probes again at once", async () => {
    const vault = fakeVault();
    const prober = new KeyProber(vault.registry, { intervalMs: 60_000, now: clock().now });
    await prober.probe(ref("k", "a"), {});
    await prober.probe(ref("k", "b"), {});
    expect(vault.calls.wrap).toBe(2);
    await prober.probe(ref("k", "a"), {}, { force: true });
    expect(vault.calls.wrap).toBe(3);
  });

  it("R10 a failed probe keeps its reason, and is shared like a good one until the next interval", async () => {
    const vault = fakeVault();
    const c = clock();
    const prober = new KeyProber(vault.registry, { intervalMs: 1_000, now: c.now });
    vault.failing.set("k", new KeyAccessError("PermissionDenied", "the identity may not get the key"));
    const first = await prober.probe(ref("k"), {});
    const second = await prober.probe(ref("k"), {});
    expect(first.access).toMatchObject({ ok: false, reason: "PermissionDenied", failedAt: "get" });
    expect(first.description).toBeUndefined();
    expect(second.at).toEqual(first.at);
    expect(vault.calls.describe).toBe(1);
    vault.failing.delete("k");
    c.advance(1_000);
    expect((await prober.probe(ref("k"), {})).access.ok).toBe(true);
    expect(prober.lastProbe(ref("k"))).toEqual(c.now());
  });

  it("R10 a wrap refused after a successful describe is seen (a revoked wrapKey permission)", async () => {
    const vault = fakeVault();
    const base = vault.registry.providerFor(ref("k"));
    const registry: KmsRegistry = {
      providerFor: () => ({
        ...base,
        wrap: async () => {
          throw new KeyAccessError("PermissionDenied", "wrapKey is not allowed");
        },
      }),
    };
    const prober = new KeyProber(registry, { intervalMs: 1_000, now: clock().now });
    const outcome = await prober.probe(ref("k"), {});
    expect(outcome.description?.thumbprint).toBe("tp-k");
    expect(outcome.access).toMatchObject({ ok: false, reason: "PermissionDenied", failedAt: "wrapKey" });
  });
});
