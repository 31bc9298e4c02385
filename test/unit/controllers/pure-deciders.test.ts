/** Table tests of the controllers' pure deciders that were proven only end to end (issue #15). */
import { describe, expect, it } from "vitest";
import type { EncryptedDatabase, KeyProtector } from "../../../src/api/index.js";
import { resolveKek } from "../../../src/controllers/kek-resolution.js";
import { statusFrom } from "../../../src/controllers/keyprotector-status.js";
import { envelopeRefusal } from "../../../src/controllers/owner-binding.js";
import type { Kube } from "../../../src/controllers/resources.js";
import { envelopeSecretName } from "../../../src/controllers/resources.js";
import { planRestore } from "../../../src/controllers/restore.js";
import {
  BY_PRIMARY,
  primaryIndexValues,
  rotationBlocker,
} from "../../../src/controllers/rotation-blocker.js";
import { OwnerBindingError } from "../../../src/crypto/index.js";
import { KeyAccessError } from "../../../src/kms/provider.js";
import type { KubeObject } from "../../../src/runtime/index.js";
import type { ProbeOutcome } from "../../../src/watchdog/prober.js";
import { database, envelopeOf, keyEntry, keyProtector, storeOf, T, tp } from "./fixtures.js";

const smk = { namespace: "tde-system", keyProtectorName: "tde-service-managed" };

describe("resolveKek: the KEK behind a protector choice, from the KeyProtector's status", () => {
  const ready = keyProtector("a", "kp", {
    keyID: "local://a/kp/v2",
    thumbprint: tp("b"),
    accessible: "True",
    requirements: "True",
  });
  const store = storeOf(
    ready,
    keyProtector("a", "unprobed", {}),
    keyProtector("a", "lost", {
      keyID: "local://a/lost/v1",
      thumbprint: tp("c"),
      accessible: "False",
      requirements: "True",
      keyAccessLostSince: T(1),
    }),
    keyProtector("b", "elsewhere", {
      keyID: "local://b/elsewhere/v1",
      thumbprint: tp("d"),
      accessible: "True",
      requirements: "True",
    }),
    keyProtector("tde-system", "tde-service-managed", {
      keyID: "local://tde-system/smk/v1",
      thumbprint: tp("e"),
      accessible: "True",
      requirements: "True",
    }),
  );
  it.each<
    [
      string,
      { type: "ServiceManaged" | "CustomerManaged"; keyProtectorName?: string },
      Record<string, unknown>,
    ]
  >([
    [
      "R13 a customer KeyProtector, ready and accessible",
      { type: "CustomerManaged", keyProtectorName: "kp" },
      {
        ok: true,
        ready: true,
        access: { accessible: true },
        kek: { keyID: "local://a/kp/v2", thumbprint: tp("b"), keyProtectorName: "kp" },
      },
    ],
    [
      "R31 a KeyProtector of another namespace is not found",
      { type: "CustomerManaged", keyProtectorName: "elsewhere" },
      { ok: false, reason: "KeyProtectorNotFound" },
    ],
    [
      "R5 a KeyProtector whose key is not resolved yet waits",
      { type: "CustomerManaged", keyProtectorName: "unprobed" },
      { ok: false, reason: "KeyProtectorNotReady" },
    ],
    [
      "R10 a lost key carries its reason and since when",
      { type: "CustomerManaged", keyProtectorName: "lost" },
      { ok: true, access: { accessible: false, reason: "KeyDisabled", lostSince: T(1) } },
    ],
    [
      "R7 R9 the service-managed key is the operator's own KeyProtector",
      { type: "ServiceManaged" },
      { ok: true, kek: { keyID: "local://tde-system/smk/v1", thumbprint: tp("e") } },
    ],
  ])("%s", (_n, choice, want) => {
    const r = resolveKek(store, "a", choice, smk);
    expect(r).toMatchObject(want);
    if (r.ok && choice.type === "ServiceManaged") expect(r.kek.keyProtectorName).toBeUndefined();
  });
});

describe("rotationBlocker (R17): a rotation waits while the protector before the current one is in use", () => {
  const A = tp("a");
  const B = tp("b");
  const C = tp("c");
  const primary = (keyList = [keyEntry(A, T(0), T(1)), keyEntry(B, T(1))]) =>
    database(
      "p",
      "primary",
      { replication: { role: "Primary", secondaries: [{ namespace: "s", name: "sec" }] } } as Partial<
        EncryptedDatabase["spec"]
      >,
      {
        effectiveProtector: {
          source: "Database",
          type: "CustomerManaged",
          keyID: "k-b",
          thumbprint: B,
          thumbprintShort: "b",
        },
        keyList,
      } as EncryptedDatabase["status"],
    );
  const secondary = (thumbprint: string) =>
    database(
      "s",
      "sec",
      { replication: { role: "Secondary", primaryRef: { namespace: "p", name: "primary" } } } as Partial<
        EncryptedDatabase["spec"]
      >,
      {
        effectiveProtector: {
          source: "Database",
          type: "CustomerManaged",
          keyID: "k",
          thumbprint,
          thumbprintShort: "x",
        },
      } as EncryptedDatabase["status"],
    );
  const withIndex = (...dbs: Kube<EncryptedDatabase>[]) => {
    const s = storeOf(...dbs);
    s.addIndex(BY_PRIMARY, primaryIndexValues);
    return s;
  };
  it.each<[string, Kube<EncryptedDatabase>, Kube<EncryptedDatabase>[], string, boolean]>([
    [
      "R17 refused: a secondary still has A (the protector before B) and C is asked",
      primary(),
      [secondary(A)],
      C,
      true,
    ],
    ["R17 allowed once A is released (the secondary moved to B)", primary(), [secondary(B)], C, false],
    ["R17 allowed: going back to A itself is not a rotation past it", primary(), [secondary(A)], A, false],
    [
      "R17 allowed: no previous protector in the key list",
      primary([keyEntry(B, T(1))]),
      [secondary(A)],
      C,
      false,
    ],
    ["R17 allowed: no secondaries", primary(), [], C, false],
  ])("%s", (_n, db, secondaries, target, blocked) => {
    const message = rotationBlocker(db, withIndex(db, ...secondaries), target);
    expect(message !== undefined).toBe(blocked);
    if (blocked) expect(message).toContain("KeyRotationAttemptedWhileOldThumbprintInUse");
    if (blocked) expect(message).toContain("s/sec");
  });
});

describe("planRestore (R24, R31): where a restore's DEK comes from and whether it may be taken", () => {
  const A = tp("a");
  const B = tp("b");
  const envelope = (ns: string, name: string) =>
    envelopeOf(ns, envelopeSecretName("EncryptedDatabase", name), [
      { thumbprint: A, at: T(0) },
      { thumbprint: B, at: T(5) },
    ]);
  const source = (ns = "a", targets?: { namespace: string; name: string }[]) =>
    database(
      ns,
      "src",
      targets ? ({ allowedRestoreTargets: targets } as Partial<EncryptedDatabase["spec"]>) : {},
      {
        dekID: "dek-1",
        keyList: [keyEntry(A, T(0), T(5)), keyEntry(B, T(5))],
      } as EncryptedDatabase["status"],
    );
  const target = (o: { ns?: string; sourceNs?: string; pointInTime?: string; keys: string[] }) =>
    database(o.ns ?? "a", "copy", {
      restore: {
        sourceRef: { name: "src", ...(o.sourceNs ? { namespace: o.sourceNs } : {}) },
        ...(o.pointInTime ? { pointInTime: o.pointInTime } : {}),
        keys: o.keys.map((k) => ({ keyProtectorRef: { name: k } })),
      },
    } as Partial<EncryptedDatabase["spec"]>);
  const kps = (ns = "a") =>
    storeOf<Kube<KeyProtector>>(
      keyProtector(ns, "ka", { thumbprint: A }),
      keyProtector(ns, "kb", { thumbprint: B }),
    );
  const now = new Date(T(10));
  it.each<[string, () => ReturnType<typeof planRestore>, Record<string, unknown>]>([
    [
      "R24 every key that protected the source now is given: the plan holds",
      () =>
        planRestore(
          target({ keys: ["kb"] }),
          storeOf(source()),
          storeOf<KubeObject>(envelope("a", "src")),
          kps(),
          now,
        ),
      { ok: true, needed: [B], sourceNamespace: "a", sourceRecordedDekID: "dek-1" },
    ],
    [
      "R24 R18 at a point in time the keys of then are needed",
      () =>
        planRestore(
          target({ keys: ["kb"], pointInTime: T(2) }),
          storeOf(source()),
          storeOf<KubeObject>(envelope("a", "src")),
          kps(),
          now,
        ),
      { ok: false, reason: "MissingRestoreKeys", missing: [A] },
    ],
    [
      "R24 a missing key is reported by thumbprint",
      () =>
        planRestore(
          target({ keys: [] }),
          storeOf(source()),
          storeOf<KubeObject>(envelope("a", "src")),
          kps(),
          now,
        ),
      { ok: false, reason: "MissingRestoreKeys", missing: [B] },
    ],
    [
      "R25 R24 a dropped source: its retained envelope's wraps say which keys",
      () =>
        planRestore(
          target({ keys: ["ka"], pointInTime: T(1) }),
          storeOf<Kube<EncryptedDatabase>>(),
          storeOf<KubeObject>(envelope("a", "src")),
          kps(),
          now,
        ),
      { ok: true, needed: [A] },
    ],
    [
      "R24 no envelope (never created, or shredded): nothing to restore",
      () => planRestore(target({ keys: ["kb"] }), storeOf(source()), storeOf<KubeObject>(), kps(), now),
      { ok: false, reason: "SourceNotFound" },
    ],
    [
      "R24 a point in time before the source existed",
      () =>
        planRestore(
          target({ keys: ["kb"], pointInTime: "2025-01-01T00:00:00Z" }),
          storeOf(source()),
          storeOf<KubeObject>(envelope("a", "src")),
          kps(),
          now,
        ),
      { ok: false, reason: "SourceNotFound" },
    ],
    [
      "R31 another namespace's source that does not list this target is refused",
      () =>
        planRestore(
          target({ ns: "b", sourceNs: "a", keys: ["kb"] }),
          storeOf(source("a")),
          storeOf<KubeObject>(envelope("a", "src")),
          kps("b"),
          now,
        ),
      { ok: false, reason: "NotAllowedBySource" },
    ],
    [
      "R31 another namespace's source that lists this target is taken",
      () =>
        planRestore(
          target({ ns: "b", sourceNs: "a", keys: ["kb"] }),
          storeOf(source("a", [{ namespace: "b", name: "copy" }])),
          storeOf<KubeObject>(envelope("a", "src")),
          kps("b"),
          now,
        ),
      { ok: true, sourceNamespace: "a" },
    ],
  ])("%s", (_n, plan, want) => {
    expect(plan()).toMatchObject(want);
  });

  it.each<[string, string[], Kube<KeyProtector>[], string[]]>([
    [
      "R24 a KeyProtector named in spec.restore.keys that does not exist: create it",
      ["gone"],
      [],
      ["KeyProtector gone (spec.restore.keys) does not exist in namespace a: create it"],
    ],
    [
      "R24 one that has not resolved its key: why, from its Ready condition",
      ["new"],
      [
        {
          ...keyProtector("a", "new"),
          status: {
            conditions: [
              {
                type: "Ready",
                status: "False",
                reason: "KeyNotFound",
                message: "no such key",
                lastTransitionTime: T(0),
              },
            ],
          },
        } as Kube<KeyProtector>,
      ],
      ["KeyProtector new (spec.restore.keys) has not resolved its key yet (KeyNotFound: no such key)"],
    ],
    [
      "R24 one of the namespace holds the key but is not named: add it",
      [],
      [keyProtector("a", "kb", { thumbprint: B })],
      [`KeyProtector kb holds ${B.slice(0, 12)}: add it to spec.restore.keys`],
    ],
  ])("%s", (_n, keys, present, says) => {
    const plan = planRestore(
      target({ keys }),
      storeOf(source()),
      storeOf<KubeObject>(envelope("a", "src")),
      storeOf<Kube<KeyProtector>>(...present),
      now,
    );
    expect(plan).toMatchObject({ ok: false, reason: "MissingRestoreKeys", missing: [B] });
    for (const text of says) expect(plan.ok ? "" : plan.message).toContain(text);
  });

  it("R31 a source in another namespace that does not exist (yet): create it naming this target", () => {
    const plan = planRestore(
      target({ ns: "b", sourceNs: "a", keys: ["kb"] }),
      storeOf<Kube<EncryptedDatabase>>(),
      storeOf<KubeObject>(),
      kps("b"),
      now,
    );
    expect(plan).toMatchObject({ ok: false, reason: "NotAllowedBySource" });
    expect(plan.ok ? "" : plan.message).toContain("does not exist (not created yet, or deleted)");
    expect(plan.ok ? "" : plan.message).toContain("b/copy in spec.allowedRestoreTargets");
  });
});

describe("envelopeRefusal (R31): an envelope use refused, or an error to throw", () => {
  const secret = { namespace: "a", name: "tde-edb-x" };
  const foreign = new OwnerBindingError(
    "OtherOwner",
    "dek-1",
    { kind: "EncryptedDatabase", namespace: "a", name: "x" },
    { kind: "EncryptedDatabase", namespace: "b", name: "y" },
  );
  it.each<[string, unknown, { own: boolean; adopting: boolean }, Record<string, unknown> | undefined]>([
    [
      "R31 an envelope bound to another owner: ForeignEnvelope, warned, not retried",
      foreign,
      { own: true, adopting: false },
      { reason: "ForeignEnvelope", foreign: true },
    ],
    [
      "R31 a foreign envelope also while adopting",
      foreign,
      { own: false, adopting: true },
      { reason: "ForeignEnvelope", foreign: true },
    ],
    [
      "R31 adopting an unrecorded envelope whose unwrap failed waits for the key",
      new KeyAccessError("VaultUnreachable", "timeout"),
      { own: true, adopting: true },
      { reason: "VaultUnreachable", foreign: false, requeueAfterMs: 30_000 },
    ],
    [
      "a KMS error outside an adoption is not a refusal (the caller throws: retried)",
      new KeyAccessError("VaultUnreachable", "timeout"),
      { own: true, adopting: false },
      undefined,
    ],
    ["any other error is not a refusal", new Error("boom"), { own: true, adopting: true }, undefined],
  ])("%s", (_n, error, o, want) => {
    const r = envelopeRefusal(error, secret, { ...o, noun: "database" });
    if (want === undefined) expect(r).toBeUndefined();
    else expect(r).toMatchObject(want);
    if (r) expect(r.message).toContain("a/tde-edb-x");
  });
});

describe("statusFrom (R5, R6, R8, R10): the KeyProtector status a probe leads to", () => {
  const description = (o: Partial<ProbeOutcome["description"] & object> = {}) => ({
    keyID: "local://a/k/v2",
    version: "v2",
    keyType: "RSA",
    keySize: 2048,
    enabled: true,
    publicKeyDer: Buffer.alloc(0),
    thumbprint: tp("b"),
    publicKeyKnown: true,
    ...o,
  });
  const ok = (o: Partial<ProbeOutcome> = {}): ProbeOutcome => ({
    at: new Date(T(2)),
    description: description(),
    unmet: [],
    access: {
      ok: true,
      permissions: ["get", "wrapKey", "unwrapKey"],
      keyID: "local://a/k/v2",
      thumbprint: tp("b"),
      provedAt: new Date(T(2)),
    },
    ...o,
  });
  const failed: ProbeOutcome = {
    at: new Date(T(2)),
    description: description(),
    unmet: [],
    access: {
      ok: false,
      permissions: ["get"],
      failedAt: "wrapKey",
      reason: "PermissionDenied",
      message: "wrapKey refused",
    },
  };
  const kp = (status?: NonNullable<KeyProtector["status"]>) =>
    ({ ...keyProtector("a", "k"), ...(status ? { status } : {}) }) as KeyProtector;
  const cond = (s: ReturnType<typeof statusFrom>, type: string) => s.conditions?.find((c) => c.type === type);
  const healthy = statusFrom(kp(), ok(), new Date(T(2)));

  it.each<[string, ReturnType<typeof statusFrom>, Record<string, string>, Record<string, unknown>]>([
    [
      "R8 a first successful probe records the key and its times",
      healthy,
      { Ready: "True", Accessible: "True", RequirementsMet: "True" },
      {
        keyID: "local://a/k/v2",
        thumbprint: tp("b"),
        lastProbeTime: T(2),
        lastSuccessTime: T(2),
        consecutiveFailures: 0,
      },
    ],
    [
      "R8 a healthy key probed again later moves no time (no write per probe)",
      statusFrom(kp(healthy), ok({ at: new Date(T(3)) }), new Date(T(3))),
      { Ready: "True" },
      { lastProbeTime: T(2), lastSuccessTime: T(2) },
    ],
    [
      "R10 a failed probe: Accessible=False with its reason, since when, failures counted",
      statusFrom(kp(healthy), failed, new Date(T(3))),
      { Accessible: "False", Ready: "False" },
      { keyAccessLostSince: T(3), consecutiveFailures: 1, lastProbeTime: T(3) },
    ],
    [
      "R5 an unmet requirement: RequirementsMet=False with its reason",
      statusFrom(
        kp(),
        ok({
          unmet: [{ reason: "KeySizeNotAllowed", message: "4096 not allowed" }] as ProbeOutcome["unmet"],
        }),
        new Date(T(2)),
      ),
      { RequirementsMet: "False", Ready: "False" },
      {},
    ],
    [
      "R6 a new current version the vault will not show: the key kept, not enabled",
      statusFrom(
        kp(healthy),
        ok({ description: description({ keyID: "local://a/k/v3", publicKeyKnown: false, thumbprint: "" }) }),
        new Date(T(3)),
      ),
      {},
      { keyID: "local://a/k/v2", thumbprint: tp("b"), enabled: false },
    ],
  ])("%s", (_n, status, conditions, fields) => {
    for (const [type, want] of Object.entries(conditions))
      expect(cond(status, type)?.status, type).toBe(want);
    expect(status).toMatchObject(fields);
  });

  it("R10 access lost and back: the loss time goes, the success time moves", () => {
    const lost = statusFrom(kp(healthy), failed, new Date(T(3)));
    const back = statusFrom(kp(lost), ok({ at: new Date(T(4)) }), new Date(T(4)));
    expect(back.keyAccessLostSince).toBeUndefined();
    expect(back.lastSuccessTime).toBe(T(4));
    expect(cond(back, "Accessible")?.status).toBe("True");
  });
});
