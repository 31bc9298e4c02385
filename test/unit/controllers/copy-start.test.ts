/** R23: a copy's start state, decided by what the object is (copy-start.ts). */
import { describe, expect, it } from "vitest";
import type { Condition, EncryptedServer } from "../../../src/api/index.js";
import { accessInput, answeredToken } from "../../../src/controllers/access-state.js";
import {
  type Copy,
  copyStart,
  databaseCopy,
  inaccessibleMessage,
  serverCopy,
} from "../../../src/controllers/copy-start.js";
import type { Kube } from "../../../src/controllers/resources.js";
import { decideAccess, type State } from "../../../src/watchdog/access-decision.js";
import { database, T } from "./fixtures.js";

const revalidated = (
  status: "True" | "False",
  reason = status === "True" ? "Revalidated" : "RevalidationFailed",
) => [{ type: "Revalidated", status, reason, message: "m", lastTransitionTime: T(0) }] as Condition[];

const restore = database("t", "restored", { restore: { sourceRef: { namespace: "s", name: "orders" } } });
const secondary = database("t", "dr", {
  replication: { role: "Secondary", primaryRef: { namespace: "p", name: "orders" } },
});
const primary = database("p", "orders", {
  replication: { role: "Primary", secondaries: [{ namespace: "t", name: "dr" }] },
});
const plain = database("t", "plain");
const serverOf = (source?: EncryptedServer["spec"]["source"]) =>
  ({
    apiVersion: "tde.dev/v1alpha1",
    kind: "EncryptedServer",
    metadata: { namespace: "t", name: "copy", generation: 1 },
    spec: { protector: { type: "ServiceManaged" }, ...(source ? { source } : {}) },
  }) as Kube<EncryptedServer>;

describe("what a resource is (R23: decided by its spec)", () => {
  it.each<[string, Copy | undefined, Copy | undefined]>([
    ["R24 a restore", databaseCopy(restore), { kind: "Restore", of: "s/orders", noun: "database" }],
    ["R19 a geo-secondary", databaseCopy(secondary), { kind: "Secondary", of: "p/orders", noun: "database" }],
    ["R19 a primary is not a copy", databaseCopy(primary), undefined],
    ["a plain database is not a copy", databaseCopy(plain), undefined],
    [
      "R24 a server restored from another (its own namespace when none is named)",
      serverCopy(serverOf({ kind: "Restore", sourceRef: { name: "src" } })),
      { kind: "ServerRestore", of: "t/src", noun: "server" },
    ],
    [
      "a server replica",
      serverCopy(serverOf({ kind: "Replica", sourceRef: { namespace: "o", name: "src" } })),
      { kind: "ServerReplica", of: "o/src", noun: "server" },
    ],
    ["a server without spec.source is not a copy", serverCopy(serverOf()), undefined],
  ])("%s", (_n, got, want) => {
    expect(got).toEqual(want);
  });
});

describe("R23 copyStart: held until a revalidation proves the copy, whatever state it recorded", () => {
  const copy = databaseCopy(restore);
  it.each<[string, Copy | undefined, State | undefined, Condition[] | undefined, boolean]>([
    ["R23 a new copy (no state yet) is held", copy, undefined, undefined, true],
    [
      "R23 a copy that waited Provisioning (its server, key or source came later) is held",
      copy,
      "Provisioning",
      undefined,
      true,
    ],
    [
      "R23 a copy Available without ever being revalidated (an earlier version's bug) is held",
      copy,
      "Available",
      undefined,
      true,
    ],
    [
      "R23 a copy whose revalidation failed and that is not Inaccessible is held",
      copy,
      "Available",
      revalidated("False"),
      true,
    ],
    [
      "R11 a copy already Inaccessible leaves by the ordinary revalidation, not held again",
      copy,
      "Inaccessible",
      undefined,
      false,
    ],
    ["R11 likewise while Revalidating", copy, "Revalidating", undefined, false],
    ["R23 a proven copy (Revalidated=True) is not held", copy, "Available", revalidated("True"), false],
    [
      "R23 a proven copy that waits for its server again is not held",
      copy,
      "Provisioning",
      revalidated("True"),
      false,
    ],
    ["not a copy: never held", undefined, undefined, undefined, false],
    [
      "not a copy: never held, whatever its conditions",
      undefined,
      "Provisioning",
      revalidated("False"),
      false,
    ],
  ])("%s", (_n, c, state, conditions, held) => {
    const start = copyStart(c, { state, conditions }, "Manual");
    expect(start !== undefined).toBe(held);
    if (start) {
      expect(start.held.reason).toBe("WaitingForRevalidation");
      expect(start.held.message).toContain("a restore of s/orders");
      expect(start.waiting).toMatchObject({
        type: "Revalidated",
        status: "False",
        reason: "WaitingForRevalidation",
      });
    }
  });

  it.each<[string, Copy | undefined, "Automatic" | "Manual", RegExp]>([
    [
      "R11 Manual, a database: its server's token",
      databaseCopy(secondary),
      "Manual",
      /server's spec\.revalidationToken \(kubectl tde revalidate SERVER\)/,
    ],
    [
      "R11 Manual, a server: its own token",
      serverCopy(serverOf({ kind: "Replica", sourceRef: { name: "s" } })),
      "Manual",
      /change spec\.revalidationToken \(kubectl tde revalidate\)/,
    ],
    [
      "R11 Automatic: at the next probe",
      databaseCopy(restore),
      "Automatic",
      /as soon as its key answers a probe/,
    ],
  ])("the waiting condition says what brings it back: %s", (_n, c, mode, want) => {
    expect(copyStart(c, {}, mode)?.waiting.message).toMatch(want);
  });

  it("R23 Ready names the copy's wait while it has not been revalidated", () => {
    const waiting = copyStart(copy, {}, "Manual")!.waiting;
    const conditions = [{ ...waiting, lastTransitionTime: T(0) }] as Condition[];
    expect(inaccessibleMessage(conditions, "key ok")).toBe(
      "a copy starts Inaccessible until it is revalidated (R23): key ok",
    );
    expect(inaccessibleMessage(revalidated("False"), "key ok")).toBe("key ok");
  });

  /**
   * The issue's case, through the pure pieces the database's pass joins: a restore applied before
   * its server (Manual, a token copied from elsewhere) first records Provisioning; once the server
   * is there the copy goes Inaccessible (enforced once), not Available, and the token it found is
   * recorded as answered, so only a new one brings it back.
   */
  it("R23 R11 a restore that waited Provisioning for its server goes Inaccessible, and only a new token revalidates it", () => {
    const server = {
      keyAccessGracePeriod: "10m",
      revalidation: "Manual" as const,
      revalidationToken: "copied",
    };
    const decide = (state: State | undefined, lastRevalidatedToken: string | undefined, token = "copied") => {
      const start = copyStart(copy, { state }, server.revalidation);
      return decideAccess(
        accessInput({
          state,
          access: { accessible: true },
          server: { ...server, revalidationToken: token },
          lastRevalidatedToken,
          envelopeReturned: false,
          heldInaccessible: start?.held,
          now: new Date(T(1)),
        }),
      );
    };
    const first = decide("Provisioning", undefined);
    expect(first).toMatchObject({ state: "Inaccessible", action: "enforce" });
    const answered = answeredToken("copied", first.state, first.action);
    expect(answered).toBe("copied");
    expect(decide("Inaccessible", answered)).toMatchObject({ state: "Inaccessible", action: "none" });
    expect(decide("Inaccessible", answered, "go")).toMatchObject({ action: "revalidate" });
  });
});
