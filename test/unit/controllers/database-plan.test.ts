/** Table tests of the database pass's pure planners (issue #15): target, provisioning, rotation, protector, access. */
import { describe, expect, it } from "vitest";
import type { EncryptedDatabase, EncryptedServer } from "../../../src/api/index.js";
import { heldByServer } from "../../../src/controllers/database-access.js";
import {
  effectiveChoice,
  protectorChangeCondition,
  recordedProtector,
} from "../../../src/controllers/database-protector.js";
import { planProvisioning } from "../../../src/controllers/database-provisioning.js";
import {
  holdsWrap,
  planRotation,
  type RotationPlan,
  rotationBlockedCondition,
} from "../../../src/controllers/database-rotation.js";
import { databaseTarget } from "../../../src/controllers/database-target.js";
import type { EnvelopeSecret, Kek } from "../../../src/controllers/dek-operations.js";
import { chooseProtector } from "../../../src/controllers/protector-choice.js";
import type { RemoteSecondary } from "../../../src/controllers/remote-replication.js";
import { replicationLink } from "../../../src/controllers/replication.js";
import type { Kube } from "../../../src/controllers/resources.js";
import { BY_PRIMARY, primaryIndexValues } from "../../../src/controllers/rotation-blocker.js";
import { addWrap, createEnvelope, type Envelope } from "../../../src/crypto/index.js";
import type { KubeObject } from "../../../src/runtime/index.js";
import { database, keyEntry, keyProtector, storeOf, T, tp } from "./fixtures.js";

const smk = { namespace: "tde-system", keyProtectorName: "tde-service-managed" };
const NOW = new Date(T(5));

const kek = (name: string, version: string, thumbprint: string, keyProtectorName?: string): Kek => ({
  ref: { provider: "Local", namespace: "a", keyName: name },
  keyID: `local://a/${name}/${version}`,
  thumbprint,
  ...(keyProtectorName ? { keyProtectorName } : {}),
});

/** An envelope whose protector is the last of `wraps` (keyID, thumbprint). */
function envelope(...wraps: [string, string][]): Envelope {
  let e = createEnvelope("dek-1", "0123456789abcdef");
  for (const [keyID, thumbprint] of wraps)
    e = addWrap(e, { keyID, thumbprint, wrapped: "AAAA", addedAt: T(1), role: "protector" });
  return e;
}

function server(spec: Partial<EncryptedServer["spec"]> = {}, status?: EncryptedServer["status"]) {
  return {
    apiVersion: "tde.dev/v1alpha1",
    kind: "EncryptedServer",
    metadata: { namespace: "a", name: "srv", generation: 1 },
    spec: {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "kp" } },
      keyAccessGracePeriod: "10m",
      revalidation: "Automatic",
      enforcement: "None",
      deletionPolicy: "Retain",
      ...spec,
    },
    ...(status ? { status } : {}),
  } as Kube<EncryptedServer>;
}

function withPrimaryIndex(...dbs: Kube<EncryptedDatabase>[]) {
  const s = storeOf(...dbs);
  s.addIndex(BY_PRIMARY, primaryIndexValues);
  return s;
}

const readyKP = (name: string, thumbprint: string) =>
  keyProtector("a", name, {
    keyID: `local://a/${name}/v1`,
    thumbprint,
    accessible: "True",
    requirements: "True",
  });

describe("databaseTarget (R6 R13 R21): the key a database's DEK is to be wrapped by", () => {
  const choice = { source: "Server" as const, type: "CustomerManaged" as const, keyProtectorName: "kp" };
  const base = {
    server: server(),
    watched: kek("kp", "v2", tp("2"), "kp"),
    watchingRecorded: false,
    choice,
    recorded: undefined,
    envelope: undefined,
    primary: undefined,
    keyProtectors: storeOf(readyKP("kp", tp("2"))),
    smk,
  };

  it("R13 with no DEK yet: the effective protector's key, as resolved", () => {
    const t = databaseTarget({ ...base, db: database("a", "d1") });
    expect(t).toEqual({ kek: base.watched, choice });
  });

  it.each([
    ["R6 autoRotation on: the key's current version", true, "local://a/kp/v2", tp("2")],
    ["R6 autoRotation off: pinned to the version that protects the DEK", false, "local://a/kp/v1", tp("1")],
  ])("%s", (_name, autoRotation, keyID, thumbprint) => {
    const t = databaseTarget({
      ...base,
      db: database("a", "d1", { autoRotation }),
      envelope: envelope(["local://a/kp/v1", tp("1")]),
    });
    expect([t.kek.keyID, t.kek.thumbprint]).toEqual([keyID, thumbprint]);
  });

  it("R6 autoRotation off never pins to a wrap under another key (a protector change still moves it)", () => {
    const t = databaseTarget({
      ...base,
      db: database("a", "d1", { autoRotation: false }),
      envelope: envelope(["local://a/other/v1", tp("9")]),
    });
    expect(t.kek.thumbprint).toBe(tp("2"));
  });

  it("R33 while the pass watches the key it last knew, the recorded choice stays", () => {
    const recorded = {
      source: "Database" as const,
      type: "CustomerManaged" as const,
      keyProtectorName: "old",
    };
    const t = databaseTarget({ ...base, db: database("a", "d1"), watchingRecorded: true, recorded });
    expect(t.choice).toEqual(recorded);
  });

  it.each<[string, Kube<EncryptedDatabase>["status"] | undefined, string | undefined, string]>([
    [
      "R21 a secondary follows its primary's protector through its own KeyProtector holding the key",
      {
        effectiveProtector: {
          source: "Database",
          type: "CustomerManaged",
          keyProtectorName: "pk",
          keyID: "x",
          thumbprint: tp("7"),
          thumbprintShort: "7",
        },
      } as never,
      "mirror",
      tp("7"),
    ],
    [
      "R21 without a KeyProtector of its own holding the primary's key it stays on its own key",
      {
        effectiveProtector: {
          source: "Database",
          type: "CustomerManaged",
          keyProtectorName: "pk",
          keyID: "x",
          thumbprint: tp("8"),
          thumbprintShort: "8",
        },
      } as never,
      undefined,
      tp("2"),
    ],
    ["a primary with no DEK yet: nothing to follow", undefined, undefined, tp("2")],
  ])("%s", (_name, primaryStatus, followName, thumbprint) => {
    const primary = database("p", "prim", { replication: { role: "Primary" } } as never, primaryStatus);
    const t = databaseTarget({
      ...base,
      db: database("a", "d1", {
        replication: { role: "Secondary", primaryRef: { name: "prim", namespace: "p" } },
      } as never),
      primary,
      keyProtectors: storeOf(readyKP("kp", tp("2")), readyKP("mirror", tp("7"))),
    });
    expect(t.kek.thumbprint).toBe(thumbprint);
    expect(t.choice.keyProtectorName).toBe(followName ?? "kp");
  });
});

describe("planProvisioning (R1 R19 R24): how a database without a DEK gets one", () => {
  type Input = Parameters<typeof planProvisioning>[0];
  const resolved: Input["resolved"] = {
    ok: true,
    kek: kek("kp", "v1", tp("1")),
    ready: true,
    access: { accessible: true },
  };
  const base: Omit<Input, "db"> = {
    resolved,
    block: undefined,
    primary: undefined,
    databases: storeOf<Kube<EncryptedDatabase>>(),
    envelopes: storeOf<KubeObject>(),
    keyProtectors: storeOf(readyKP("kp", tp("1"))),
    envelopeOf: () => undefined,
    now: NOW,
  };
  const primary = database("p", "prim", { replication: { role: "Primary" } } as never);
  const source: EnvelopeSecret = {
    secret: { metadata: { name: "x" } } as KubeObject,
    envelope: envelope(["k", tp("1")]),
  };

  it.each<[string, Partial<Input> & { db: Kube<EncryptedDatabase> }, string, string?]>([
    [
      "R19 a hold (a secondary not linked) waits with its reason",
      { db: database("a", "d"), block: { reason: "NotListedByPrimary", message: "m" } },
      "wait",
      "NotListedByPrimary",
    ],
    [
      "R5 a key that does not meet its requirements: no DEK is made",
      { db: database("a", "d"), resolved: { ...resolved, ready: false, notReadyMessage: "too small" } },
      "wait",
      "KeyProtectorNotReady",
    ],
    [
      "R10 a key not accessible: no DEK is made",
      {
        db: database("a", "d"),
        resolved: { ...resolved, access: { accessible: false, detail: "disabled" } },
      },
      "wait",
      "KeyProtectorNotReady",
    ],
    [
      "R24 a restore whose source is not there waits for it",
      { db: database("a", "d", { restore: { sourceRef: { name: "gone" } } } as never) },
      "wait",
      "SourceNotFound",
    ],
    [
      "R19 a linked secondary waits while its primary has no DEK",
      { db: database("a", "d"), primary },
      "wait",
      "Provisioning",
    ],
    [
      "R20 a linked secondary copies its primary's DEK",
      { db: database("a", "d"), primary, envelopeOf: () => source },
      "replica",
    ],
    ["R1 anything else creates its own", { db: database("a", "d") }, "create"],
  ])("%s", (_name, input, kind, reason) => {
    const plan = planProvisioning({ ...base, ...input });
    expect(plan.kind).toBe(kind);
    if (plan.kind === "wait") expect(plan.block.reason).toBe(reason);
  });

  it.each<[string, Input["resolved"]["access"], number | undefined]>([
    [
      "R33 a key not probed lately: looked at again after a probe interval",
      { accessible: false, unknown: { reason: "KeyNotProbed", message: "m" } },
      10_000,
    ],
    [
      "a key known to be inaccessible: its KeyProtector's change brings the database back",
      { accessible: false, detail: "disabled" },
      undefined,
    ],
  ])("%s", (_name, access, afterMs) => {
    const plan = planProvisioning({
      ...base,
      db: database("a", "d"),
      resolved: { ...resolved, access },
      probeIntervalMs: 10_000,
    });
    expect(plan.kind).toBe("wait");
    expect(plan.kind === "wait" ? plan.afterMs : "not a wait").toBe(afterMs);
  });

  it("R24 a restore that waits records on Restored too (its plan says so)", () => {
    const plan = planProvisioning({
      ...base,
      db: database("a", "d", { restore: { sourceRef: { name: "gone" } } } as never),
    });
    expect(plan).toMatchObject({ kind: "wait", restore: {} });
  });
});

describe("planRotation (R16 R17 R21): what a database whose DEK is not under its target key does", () => {
  const target = kek("kp", "v2", tp("2"), "kp");
  const ok = { ready: true, access: { accessible: true } };
  const onOld = envelope(["local://a/kp/v1", tp("1")]);
  const primarySpec = {
    replication: { role: "Primary", secondaries: [{ namespace: "b", name: "s1" }] },
  } as never;
  const secondary = database("b", "s1", {
    replication: { role: "Secondary", primaryRef: { namespace: "a", name: "p" } },
  } as never);
  const plan = (
    o: Partial<Parameters<typeof planRotation>[0]> & { db: Kube<EncryptedDatabase> },
  ): RotationPlan =>
    planRotation({
      envelope: onOld,
      target,
      resolved: ok,
      databases: withPrimaryIndex(o.db, secondary),
      hasWrap: () => false,
      now: NOW,
      ...o,
    });

  it("nothing to do when the DEK is under the target key", () => {
    expect(plan({ db: database("a", "d"), envelope: envelope(["local://a/kp/v2", tp("2")]) }).kind).toBe(
      "none",
    );
  });

  it("R16 a plain database re-wraps", () => {
    expect(plan({ db: database("a", "d") }).kind).toBe("rewrap");
  });

  it("R5 R16 a new key that cannot take the DEK yet: the DEK stays, Ready says why", () => {
    const p = plan({
      db: database("a", "d"),
      resolved: { ready: false, notReadyMessage: "too small", access: { accessible: true } },
    });
    expect(p).toMatchObject({ kind: "notReady", block: { reason: "KeyProtectorNotReady" } });
    expect(p.kind === "notReady" && p.block.message).toContain("too small");
  });

  it("R21 a primary waits until every secondary holds the new key, recording the pending rotation", () => {
    const p = plan({ db: database("a", "p", primarySpec) });
    expect(p).toMatchObject({
      kind: "waitForSecondaries",
      rotation: {
        phase: "AddingToSecondaries",
        fromThumbprint: tp("1"),
        toThumbprint: tp("2"),
        startedAt: NOW.toISOString(),
      },
      block: { reason: "SecondaryCannotUseKey" },
    });
  });

  it("R21 a rotation already pending keeps its start time", () => {
    const db = database("a", "p", primarySpec, {
      rotation: {
        phase: "AddingToSecondaries",
        toKeyID: target.keyID,
        toThumbprint: tp("2"),
        startedAt: T(2),
      },
    } as never);
    const p = plan({ db });
    expect(p.kind === "waitForSecondaries" && p.rotation.startedAt).toBe(T(2));
  });

  describe("with secondaries in other clusters (remote-replication.ts)", () => {
    const remoteOnly = {
      replication: { role: "Primary", secondaries: [{ cluster: "west", namespace: "b", name: "s1" }] },
    } as never;
    const far = (over: Partial<RemoteSecondary>): RemoteSecondary => ({
      name: "west/b/s1",
      cluster: "west",
      state: "linked",
      db: database("b", "s1"),
      ...over,
    });
    const cut: RemoteSecondary = {
      name: "west/b/s1",
      cluster: "west",
      state: "unreachable",
      failure: {
        ok: false,
        cluster: "west",
        reason: "Unreachable",
        message: "cluster west is unreachable: connect ECONNREFUSED",
      },
    };

    it.each<[string, RemoteSecondary[], string, string | undefined]>([
      [
        "R21 waits for a linked secondary without the new key",
        [far({})],
        "waitForSecondaries",
        "SecondaryCannotUseKey",
      ],
      [
        "R21 re-wraps once its envelope holds the new key",
        [far({ envelope: envelope(["local://b/w/v1", tp("2")]) })],
        "rewrap",
        undefined,
      ],
      [
        "R21 an unreachable cluster blocks: the link is at fault",
        [cut],
        "waitForSecondaries",
        "RemoteClusterUnreachable",
      ],
      ["R22 a promoted secondary does not hold it back", [far({ state: "promoted" })], "rewrap", undefined],
      [
        "R31 nor one that does not name this primary back",
        [far({ state: "notLinked" })],
        "rewrap",
        undefined,
      ],
    ])("%s", (_n, remote, kind, reason) => {
      const p = plan({ db: database("a", "p", remoteOnly), remote });
      expect(p.kind).toBe(kind);
      if (p.kind === "waitForSecondaries") {
        expect(p.block.reason).toBe(reason);
        expect(p.block.message).toContain("west/b/s1");
        expect(p.block.message).toContain("nothing has switched");
      }
    });

    it("R21 a local secondary missing the key keeps the reason SecondaryCannotUseKey beside an unreachable cluster", () => {
      const p = plan({ db: database("a", "p", primarySpec), remote: [cut] });
      expect(p.kind === "waitForSecondaries" && p.block.reason).toBe("SecondaryCannotUseKey");
    });

    it("R17 waits while a secondary in another cluster still uses the previous protector", () => {
      const db = database("a", "p", remoteOnly, {
        effectiveProtector: { source: "Database", type: "CustomerManaged", keyID: "k1", thumbprint: tp("1") },
        keyList: [keyEntry(tp("0"), T(0), T(1)), keyEntry(tp("1"), T(1))],
      } as never);
      const onPrevious = far({
        db: database("b", "s1", {}, {
          effectiveProtector: {
            source: "Database",
            type: "CustomerManaged",
            keyID: "k0",
            thumbprint: tp("0"),
          },
        } as never),
      });
      const p = plan({ db, remote: [onPrevious], hasWrap: () => true });
      expect(p).toMatchObject({
        kind: "blocked",
        block: { reason: "KeyRotationAttemptedWhileOldThumbprintInUse" },
      });
      expect(p.kind === "blocked" && p.block.message).toContain("west/b/s1");
    });
  });

  it("R21 once the secondary holds the new key the primary re-wraps", () => {
    expect(plan({ db: database("a", "p", primarySpec), hasWrap: (_s, t) => t === tp("2") }).kind).toBe(
      "rewrap",
    );
  });

  it("R17 a rotation waits while the previous protector is still a secondary's", () => {
    const db = database("a", "p", primarySpec, {
      effectiveProtector: {
        source: "Server",
        type: "CustomerManaged",
        keyID: "k1",
        thumbprint: tp("1"),
        thumbprintShort: "1",
      },
      keyList: [keyEntry(tp("0"), T(0), T(1)), keyEntry(tp("1"), T(1))],
    } as never);
    const onPrevious = database("b", "s1", secondary.spec, {
      effectiveProtector: {
        source: "Database",
        type: "CustomerManaged",
        keyID: "k0",
        thumbprint: tp("0"),
        thumbprintShort: "0",
      },
    } as never);
    const p = planRotation({
      db,
      envelope: onOld,
      target,
      resolved: ok,
      databases: withPrimaryIndex(db, onPrevious),
      hasWrap: () => true,
      now: NOW,
    });
    expect(p).toMatchObject({
      kind: "blocked",
      block: { reason: "KeyRotationAttemptedWhileOldThumbprintInUse" },
    });
  });

  it.each<[string, RotationPlan, "True" | "False" | undefined, string | undefined]>([
    [
      "R17 blocked says RotationBlocked=True",
      { kind: "blocked", block: { reason: "R", message: "m" } },
      undefined,
      "True",
    ],
    [
      "R21 waiting says RotationBlocked=True",
      { kind: "waitForSecondaries", rotation: {} as never, block: { reason: "S", message: "m" } },
      "False",
      "True",
    ],
    ["a done rotation clears RotationBlocked", { kind: "rewrap" }, "True", "False"],
    ["nothing blocked before and now: left alone", { kind: "none" }, undefined, undefined],
    [
      "a key not ready clears a block that was",
      { kind: "notReady", block: { reason: "K", message: "m" } },
      "True",
      "False",
    ],
  ])("%s", (_name, p, before, after) => {
    const conditions = before
      ? [{ type: "RotationBlocked", status: before, reason: "x", message: "y", lastTransitionTime: T(0) }]
      : undefined;
    expect(rotationBlockedCondition(p, conditions as never)?.status).toBe(after);
  });

  it("holdsWrap reads a secondary's cached envelope for a wrap under the key", () => {
    const has = holdsWrap(() => ({ secret: {} as KubeObject, envelope: onOld }));
    expect([has(secondary, tp("1")), has(secondary, tp("2"))]).toEqual([true, false]);
    expect(holdsWrap(() => undefined)(secondary, tp("1"))).toBe(false);
  });
});

describe("the database's protector (R13-R15 R18): the condition and what the status records", () => {
  it("R15 a refused change says False with the refusal; an accepted one names the level", () => {
    const cm = { type: "CustomerManaged" as const, keyProtectorRef: { name: "kp" } };
    const refused = chooseProtector(cm, { type: "ServiceManaged" }, undefined);
    expect(protectorChangeCondition(refused)).toMatchObject({
      status: "False",
      reason: "ServiceManagedKeyNotAllowed",
    });
    expect(protectorChangeCondition(chooseProtector(cm, undefined, undefined))).toMatchObject({
      status: "True",
      message: "the server's protector is in effect",
    });
    expect(protectorChangeCondition(chooseProtector(cm, cm, undefined)).message).toContain("database's own");
  });

  it("effectiveChoice reads the recorded protector without its key fields", () => {
    expect(effectiveChoice(undefined)).toBeUndefined();
    expect(
      effectiveChoice({
        source: "Server",
        type: "ServiceManaged",
        keyID: "k",
        thumbprint: "t",
        thumbprintShort: "t",
      }),
    ).toEqual({ source: "Server", type: "ServiceManaged" });
  });

  const target = {
    thumbprint: tp("2"),
    choice: { source: "Database" as const, type: "CustomerManaged" as const, keyProtectorName: "new" },
  };
  const recorded = { source: "Server" as const, type: "CustomerManaged" as const, keyProtectorName: "old" };
  it.each([
    ["R16 once the DEK is under the target key the status names the target", tp("2"), "new"],
    ["R16 while the re-wrap is pending or failed the status keeps what it recorded", tp("1"), "old"],
  ])("%s", (_name, wrapThumbprint, name) => {
    const r = recordedProtector({
      wrap: { keyID: "k", thumbprint: wrapThumbprint },
      target,
      recorded,
      extra: [],
      keyList: undefined,
      now: NOW,
    });
    expect(r.effectiveProtector.keyProtectorName).toBe(name);
    expect(r.keyList.map((e) => [e.thumbprint, e.role])).toEqual([[wrapThumbprint, "protector"]]);
  });

  it("R18 the key history closes the old protector and lists the extra keys after the new one", () => {
    const r = recordedProtector({
      wrap: { keyID: "k2", thumbprint: tp("2") },
      target,
      recorded,
      extra: [{ keyID: "kx", thumbprint: tp("x"), role: "additional", keyProtectorName: "extra" }],
      keyList: [keyEntry(tp("1"), T(1))],
      now: NOW,
    });
    expect(r.keyList.map((e) => [e.thumbprint, e.until ?? null])).toEqual([
      [tp("1"), NOW.toISOString()],
      [tp("2"), null],
      [tp("x"), null],
    ]);
  });
});

describe("the database's access (R10 R12)", () => {
  it.each<[string, EncryptedServer["status"], boolean]>([
    ["R10 a server that is Inaccessible holds its databases", { state: "Inaccessible" } as never, true],
    ["a server that is Available holds nothing", { state: "Available" } as never, false],
    [
      "R2 a server Inaccessible because its own envelope is lost holds only its own DEK",
      {
        state: "Inaccessible",
        conditions: [
          {
            type: "Ready",
            status: "False",
            reason: "EnvelopeMissing",
            message: "m",
            lastTransitionTime: T(0),
          },
        ],
      } as never,
      false,
    ],
  ])("%s", (_name, status, held) => {
    expect(heldByServer(server({}, status)) !== undefined).toBe(held);
  });
});

describe("replicationLink (R19 R31): ReplicationLinked and the primary a secondary follows", () => {
  const primary = database("p", "prim", {
    replication: { role: "Primary", secondaries: [{ namespace: "a", name: "sec" }] },
  } as never);
  const secondary = database("a", "sec", {
    replication: { role: "Secondary", primaryRef: { namespace: "p", name: "prim" } },
  } as never);
  const stranger = database("a", "other", {
    replication: { role: "Secondary", primaryRef: { namespace: "p", name: "prim" } },
  } as never);
  const store = storeOf(primary, secondary, stranger);

  it.each<[string, Kube<EncryptedDatabase>, string | undefined, boolean, string | undefined]>([
    ["a database in no replication says nothing", database("a", "plain"), undefined, false, undefined],
    ["R19 a primary counts the secondaries that name it back", primary, "True", false, undefined],
    ["R19 R31 a secondary its primary lists is linked and follows it", secondary, "True", true, undefined],
    [
      "R31 a secondary its primary does not list is held back",
      stranger,
      "False",
      false,
      "NotListedByPrimary",
    ],
  ])("%s", (_name, db, status, follows, block) => {
    const link = replicationLink(db, store);
    expect(link.condition?.status).toBe(status);
    expect(link.primary !== undefined).toBe(follows);
    expect(link.block?.reason).toBe(block);
  });

  it("a primary's message counts only linked secondaries", () => {
    expect(replicationLink(primary, store).condition?.message).toBe("primary of 1 secondaries");
  });
});
