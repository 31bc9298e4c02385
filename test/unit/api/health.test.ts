import { describe, expect, it } from "vitest";
import type { Condition } from "../../../src/api/conditions.js";
import { type HealthInput, type HealthKind, healthConditions } from "../../../src/api/health.js";

const c = (
  type: string,
  status: Condition["status"],
  reason: string,
  message = `${reason} message`,
): Condition => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: "2025-01-01T00:00:00Z",
  observedGeneration: 3,
});
const ready = c("Ready", "True", "Available");
const accessible = c("KeyAccessible", "True", "KeyAccessible");

interface Row {
  name: string;
  kind?: HealthKind;
  state?: string;
  deleting?: boolean;
  conditions: Condition[];
  /** R: Reconciling=True, S: Stalled=True, "": neither */
  expect: "R" | "S" | "";
  reason: string;
  /** a part of the message a person must see */
  says?: string;
}

// R27: one row per state of the table in docs/operating.md
const rows: Row[] = [
  ...(["EnvelopeMissing", "EnvelopeUnreadable", "EnvelopeDEKMismatch"] as const).map(
    (reason): Row => ({
      name: `R1 R2 envelope loss ${reason}: Stalled names the loss, before a refused change`,
      kind: "EncryptedDatabase",
      state: "Inaccessible",
      conditions: [
        c("Ready", "False", reason),
        c("KeyAccessible", "True", "KeyAccessible"),
        c("ProtectorChangeAccepted", "False", "RevertToServerKeyNotAllowed"),
      ],
      expect: "S",
      reason,
      says: `${reason} message`,
    }),
  ),
  {
    name: "Available",
    state: "Available",
    conditions: [ready, accessible],
    expect: "",
    reason: "Reconciled",
  },
  {
    name: "brand-new: no state, no Ready yet",
    conditions: [],
    expect: "R",
    reason: "Provisioning",
    says: "creating the DEK",
  },
  {
    name: "provisioning",
    state: "Provisioning",
    conditions: [c("Ready", "False", "Provisioning", "wrapping the DEK")],
    expect: "R",
    reason: "Provisioning",
    says: "wrapping the DEK",
  },
  {
    name: "R10 key lost within the grace period",
    state: "Available",
    conditions: [
      c("Ready", "False", "KeyDisabled", "key disabled; Inaccessible at 2025-01-01T00:10:00Z"),
      c("KeyAccessible", "False", "KeyDisabled", "key disabled; Inaccessible at 2025-01-01T00:10:00Z"),
    ],
    expect: "R",
    reason: "KeyDisabled",
    says: "Inaccessible at 2025-01-01T00:10:00Z",
  },
  {
    name: "R10 Inaccessible (server)",
    state: "Inaccessible",
    conditions: [
      c("Ready", "False", "Inaccessible", "key disabled since T"),
      c("KeyAccessible", "False", "KeyDisabled"),
    ],
    expect: "S",
    reason: "Inaccessible",
    says: "key disabled since T",
  },
  {
    name: "R10 database Inaccessible because its server is: the message names the server",
    kind: "EncryptedDatabase",
    state: "Inaccessible",
    conditions: [
      c("Ready", "False", "Inaccessible", "server shop-mariadb is Inaccessible"),
      c("KeyAccessible", "True", "KeyAccessible", "the protector's key answered its last probe"),
    ],
    expect: "S",
    reason: "Inaccessible",
    says: "server shop-mariadb is Inaccessible",
  },
  {
    name: "R11 Revalidating",
    state: "Revalidating",
    conditions: [c("Ready", "False", "Revalidating", "unwrapping")],
    expect: "R",
    reason: "Revalidating",
  },
  {
    name: "R15 refused change keeps Ready=True yet Stalls",
    kind: "EncryptedDatabase",
    state: "Available",
    conditions: [ready, accessible, c("ProtectorChangeAccepted", "False", "ServiceManagedKeyNotAllowed")],
    expect: "S",
    reason: "ServiceManagedKeyNotAllowed",
    says: "ServiceManagedKeyNotAllowed message",
  },
  {
    name: "R15 a refused change beats a key loss within grace (the refusal is not hidden)",
    kind: "EncryptedDatabase",
    state: "Available",
    conditions: [
      c("Ready", "False", "VaultUnreachable"),
      c("KeyAccessible", "False", "VaultUnreachable"),
      c("ProtectorChangeAccepted", "False", "RevertToServerKeyNotAllowed"),
    ],
    expect: "S",
    reason: "RevertToServerKeyNotAllowed",
  },
  ...(
    [
      "PrimaryIsNotPrimary",
      "TooManySecondaries",
      "SecondaryNeedsDatabaseProtector",
      "NotListedByPrimary",
      "NotAllowedBySource",
      "MissingRestoreKeys",
      "ForeignEnvelope",
      "EnvelopeLost",
    ] as const
  ).map(
    (reason): Row => ({
      name: `R19 R24 R31 refusal ${reason}`,
      kind: "EncryptedDatabase",
      state: "Provisioning",
      conditions: [c("Ready", "False", reason)],
      expect: "S",
      reason,
      says: `${reason} message`,
    }),
  ),
  {
    name: "R17 rotation blocked: waits, names what it waits for",
    kind: "EncryptedDatabase",
    state: "Available",
    conditions: [
      ready,
      accessible,
      c(
        "RotationBlocked",
        "True",
        "KeyRotationAttemptedWhileOldThumbprintInUse",
        "key A is still used by shop/replica",
      ),
    ],
    expect: "R",
    reason: "KeyRotationAttemptedWhileOldThumbprintInUse",
    says: "shop/replica",
  },
  {
    name: "R21 a secondary cannot use the new key",
    kind: "EncryptedDatabase",
    state: "Available",
    conditions: [
      ready,
      c("RotationBlocked", "True", "SecondaryCannotUseKey", "secondary eu/orders: KeyNotFound"),
    ],
    expect: "R",
    reason: "SecondaryCannotUseKey",
    says: "eu/orders",
  },
  ...(["KeyProtectorNotFound", "KeyProtectorNotReady", "ServerNotFound", "ServerNotReady"] as const).map(
    (reason): Row => ({
      name: `waiting: ${reason}`,
      kind: "EncryptedDatabase",
      state: "Provisioning",
      conditions: [c("Ready", "False", reason, "KeyProtector shop-key not found")],
      expect: "R",
      reason,
      says: "waiting: KeyProtector shop-key not found",
    }),
  ),
  {
    name: "deleting",
    state: "Deleting",
    deleting: true,
    conditions: [ready],
    expect: "R",
    reason: "Deleting",
  },
  {
    name: "a write the operator could not make (R32): in progress with Ready's reason",
    state: "Available",
    conditions: [c("Ready", "False", "InternalError", "status write refused"), accessible],
    expect: "R",
    reason: "InternalError",
    says: "status write refused",
  },
  {
    name: "KeyProtector ready",
    kind: "KeyProtector",
    conditions: [c("Ready", "True", "Reconciled"), c("Accessible", "True", "KeyAccessible")],
    expect: "",
    reason: "Reconciled",
  },
  {
    name: "R7 KeyProtector of the Local service-managed key with DEKs on it alone: a warning, still healthy",
    kind: "KeyProtector",
    conditions: [
      c("Ready", "True", "Reconciled"),
      c("Accessible", "True", "KeyAccessible"),
      c("SinglePointOfLoss", "True", "OnlyWrappedByLocalKey"),
    ],
    expect: "",
    reason: "Reconciled",
  },
  ...(["KeyDisabled", "KeyExpired", "KeyNotFound", "PermissionDenied", "AuthenticationFailed"] as const).map(
    (reason): Row => ({
      name: `KeyProtector ${reason}: a person must act`,
      kind: "KeyProtector",
      conditions: [c("Ready", "False", reason), c("Accessible", "False", reason)],
      expect: "S",
      reason,
    }),
  ),
  {
    name: "R7 a Local KeyProtector with create: Never waits for its Secret: in progress, not failed",
    kind: "KeyProtector",
    conditions: [
      c(
        "Ready",
        "False",
        "KeySecretNotFound",
        "the Secret shop/kek does not exist and spec.local.create is Never",
      ),
      c("Accessible", "False", "KeySecretNotFound", "the Secret shop/kek does not exist"),
    ],
    expect: "R",
    reason: "KeySecretNotFound",
    says: "waiting: the Secret shop/kek does not exist",
  },
  ...(["VaultUnreachable", "Throttled"] as const).map(
    (reason): Row => ({
      name: `KeyProtector ${reason}: retried every probe`,
      kind: "KeyProtector",
      conditions: [c("Ready", "False", reason), c("Accessible", "False", reason)],
      expect: "R",
      reason,
      says: "retrying",
    }),
  ),
  {
    name: "KeyProtector whose key misses a requirement (R5)",
    kind: "KeyProtector",
    conditions: [
      c("Ready", "False", "KeySizeNotAllowed"),
      c("Accessible", "True", "KeyAccessible"),
      c("RequirementsMet", "False", "KeySizeNotAllowed", "RSA 1024 is not in allowedKeySizes"),
    ],
    expect: "S",
    reason: "KeySizeNotAllowed",
    says: "allowedKeySizes",
  },
  {
    name: "KeyProtector not probed yet",
    kind: "KeyProtector",
    conditions: [],
    expect: "R",
    reason: "AwaitingProbe",
  },
];

describe("R27 health model: Reconciling and Stalled from state and conditions", () => {
  it.each(rows)("$name", (row) => {
    const input: HealthInput = {
      kind: row.kind ?? "EncryptedServer",
      generation: 3,
      state: row.state,
      conditions: row.conditions,
      ...(row.deleting ? { deleting: true } : {}),
    };
    const { reconciling, stalled, observedGeneration } = healthConditions(input);
    expect(observedGeneration).toBe(3);
    expect(reconciling.type).toBe("Reconciling");
    expect(stalled.type).toBe("Stalled");
    expect([reconciling.status, stalled.status]).toEqual(
      row.expect === "R" ? ["True", "False"] : row.expect === "S" ? ["False", "True"] : ["False", "False"],
    );
    const decisive = row.expect === "S" ? stalled : reconciling;
    expect(decisive.reason).toBe(row.reason);
    expect(decisive.reason).toMatch(/^[A-Z][A-Za-z]+$/);
    expect(decisive.message.length).toBeGreaterThan(0);
    if (row.says) expect(decisive.message).toContain(row.says);
  });

  it("never both True, whatever the conditions", () => {
    const reasons = ["KeyDisabled", "VaultUnreachable", "ForeignEnvelope", "ServerNotFound", "Available"];
    for (const state of [undefined, "Provisioning", "Available", "Inaccessible", "Revalidating", "Deleting"])
      for (const readyReason of reasons)
        for (const blocked of ["True", "False"] as const) {
          const { reconciling, stalled } = healthConditions({
            kind: "EncryptedDatabase",
            generation: 1,
            state,
            conditions: [
              c("Ready", readyReason === "Available" ? "True" : "False", readyReason),
              c("RotationBlocked", blocked, "KeyRotationAttemptedWhileOldThumbprintInUse"),
            ],
          });
          expect(reconciling.status === "True" && stalled.status === "True").toBe(false);
        }
  });
});
