import { describe, expect, it } from "vitest";
import type { EncryptedDatabase } from "../../../src/api/index.js";
import type { EnvelopeSecret } from "../../../src/controllers/dek-operations.js";
import { localizedEnvelope } from "../../../src/controllers/remote-envelope.js";
import {
  demotedBy,
  otherCluster,
  primaryLinked,
  type RemoteSecondary,
  remoteKeyListSynced,
  remotePrimaryLink,
  remoteSecondariesMissingKey,
  remoteSecondariesStatus,
  remoteSecondary,
} from "../../../src/controllers/remote-replication.js";
import { addWrap, createEnvelope, type Envelope } from "../../../src/crypto/index.js";
import type { RemoteRead } from "../../../src/remote/remote-reader.js";
import { database, T, tp } from "./fixtures.js";

type Database = ReturnType<typeof database>;
const A = tp("a");
const B = tp("b");

const secondaryIn = (cluster = "east", extra: Partial<EncryptedDatabase["spec"]> = {}) =>
  database("prod", "orders", {
    encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "w1" } },
    replication: { role: "Secondary", primaryRef: { cluster, namespace: "prod", name: "orders" } },
    ...extra,
  });
const primaryListing = (entries: { cluster?: string; namespace: string; name: string }[]) =>
  database("prod", "orders", { replication: { role: "Primary", secondaries: entries } });
const found = (object: Database | undefined): RemoteRead<Database> => ({ ok: true, object });
const cut: RemoteRead<never> = {
  ok: false,
  cluster: "east",
  reason: "Unreachable",
  message: "cluster east is unreachable: connect ECONNREFUSED",
};

const envelope = (...thumbprints: string[]): Envelope =>
  thumbprints.reduce(
    (e, thumbprint, i) =>
      addWrap(e, {
        keyID: `local://prod/k${i}/v1`,
        thumbprint,
        wrapped: "AAAA",
        addedAt: T(i),
        role: i === 0 ? "protector" : "retained",
      }),
    createEnvelope("dek-1", "0123456789abcdef"),
  );

describe("R19 which cluster a reference names (otherCluster)", () => {
  it.each([
    ["no cluster: this one", undefined, "west", undefined],
    ["empty: this one", "", "west", undefined],
    ["this operator's own name: this one", "west", "west", undefined],
    ["another name: that cluster", "east", "west", "east"],
    ["another name, no --cluster-name here: that cluster", "east", undefined, "east"],
  ])("%s", (_n, cluster, here, want) => {
    expect(otherCluster(cluster, here)).toBe(want);
  });
});

describe("R19 R20 R31 a secondary's link to a primary in another cluster (remotePrimaryLink)", () => {
  const listed = primaryListing([{ cluster: "west", namespace: "prod", name: "orders" }]);

  it("R31 linked when the primary lists it with this cluster's name", () => {
    const link = remotePrimaryLink(secondaryIn(), "east", found(listed), "west", false);
    expect(link.primary).toBe(listed);
    expect(link.block).toBeUndefined();
    expect(link.condition).toMatchObject({ status: "True", message: "secondary of east/prod/orders" });
  });

  it.each<[string, Database, string]>([
    [
      "R31 not linked when the primary lists the name in its own cluster (no cluster)",
      primaryListing([{ namespace: "prod", name: "orders" }]),
      "NotListedByPrimary",
    ],
    [
      "R31 not linked when the primary lists it in a third cluster",
      primaryListing([{ cluster: "north", namespace: "prod", name: "orders" }]),
      "NotListedByPrimary",
    ],
    [
      "R19 no chaining across clusters either",
      database("prod", "orders", {
        replication: { role: "Secondary", primaryRef: { cluster: "south", namespace: "prod", name: "x" } },
      }),
      "PrimaryIsNotPrimary",
    ],
  ])("%s", (_n, primary, reason) => {
    const link = remotePrimaryLink(secondaryIn(), "east", found(primary), "west", false);
    expect(link.primary).toBeUndefined();
    expect(link.block?.reason).toBe(reason);
    expect(link.condition).toMatchObject({ status: "False", reason });
  });

  it("R31 a refusal says how the primary must list it", () => {
    const link = remotePrimaryLink(
      secondaryIn(),
      "east",
      found(primaryListing([{ namespace: "prod", name: "orders" }])),
      "west",
      false,
    );
    expect(link.block?.message).toContain("as {cluster: west, namespace: prod, name: orders}");
  });

  it("R19 waits for a primary that does not exist (yet)", () => {
    const link = remotePrimaryLink(secondaryIn(), "east", found(undefined), "west", false);
    expect(link.block).toMatchObject({
      reason: "PrimaryNotFound",
      message: expect.stringContaining("east/prod/orders"),
    });
  });

  it("R31 without --cluster-name it cannot be named back: refused with the fix", () => {
    const link = remotePrimaryLink(secondaryIn(), "east", found(listed), undefined, true);
    expect(link.block?.reason).toBe("ClusterNameNotSet");
    expect(link.block?.message).toContain("--cluster-name");
  });

  it("R20 an unreachable primary: a secondary holding the DEK keeps it, KeyListSynced says why", () => {
    const link = remotePrimaryLink(secondaryIn(), "east", cut, "west", true);
    expect(link.block).toBeUndefined();
    expect(link.primary).toBeUndefined();
    expect(link.condition).toMatchObject({ status: "Unknown", reason: "RemoteClusterUnreachable" });
    expect(link.keyListSynced).toMatchObject({ status: "False", reason: "RemoteClusterUnreachable" });
    expect(link.keyListSynced?.message).toContain("east/prod/orders");
    expect(link.keyListSynced?.message).toContain("ECONNREFUSED");
  });

  it("R20 an unreachable primary: a secondary without a DEK waits (it never makes one of its own)", () => {
    expect(remotePrimaryLink(secondaryIn(), "east", cut, "west", false).block?.reason).toBe(
      "RemoteClusterUnreachable",
    );
  });
});

describe("R19 R22 R31 a primary's secondary in another cluster (remoteSecondary)", () => {
  const primary = primaryListing([{ cluster: "west", namespace: "prod", name: "orders" }]);
  const entry = { cluster: "west", namespace: "prod", name: "orders" };
  const naming = secondaryIn("east");

  it.each<[string, RemoteRead<Database>, RemoteSecondary["state"]]>([
    ["linked when it names this primary with this cluster's name", found(naming), "linked"],
    [
      "not linked when it names a primary of the same name in its own cluster",
      found(secondaryIn("west")),
      "notLinked",
    ],
    ["not linked when it does not exist (yet)", found(undefined), "notLinked"],
    ["R22 promoted when it became a Primary", found(primaryListing([])), "promoted"],
    ["unreachable when its cluster cannot be read", { ...cut, cluster: "west" }, "unreachable"],
  ])("%s", (_n, read, state) => {
    const s = remoteSecondary(entry, primary, "east", read);
    expect(s.state).toBe(state);
    expect(s.name).toBe("west/prod/orders");
  });

  it("unreachable when its envelope cannot be read", () => {
    expect(remoteSecondary(entry, primary, "east", found(naming), { ...cut, cluster: "west" }).state).toBe(
      "unreachable",
    );
  });
});

describe("R21 what a primary's rotation waits for in other clusters (remoteSecondariesMissingKey)", () => {
  const linked = (envelopeOf?: Envelope, status?: EncryptedDatabase["status"]): RemoteSecondary => ({
    name: "west/prod/orders",
    cluster: "west",
    state: "linked",
    db: database("prod", "orders", {}, status),
    ...(envelopeOf ? { envelope: envelopeOf } : {}),
  });

  it("R21 nothing once the secondary holds a wrap under the new key", () => {
    expect(remoteSecondariesMissingKey([linked(envelope(A, B))], B)).toEqual([]);
  });

  it("R21 a secondary without the wrap, with its own words on why", () => {
    const missing = remoteSecondariesMissingKey(
      [linked(envelope(A), { missingThumbprints: [B] } as EncryptedDatabase["status"])],
      B,
    );
    expect(missing).toEqual([{ name: "west/prod/orders", why: expect.stringContaining("no KeyProtector") }]);
  });

  it("R21 an unreachable cluster blocks, naming the cluster and the reason", () => {
    const missing = remoteSecondariesMissingKey(
      [
        {
          name: "west/prod/orders",
          cluster: "west",
          state: "unreachable",
          failure: { ...cut, cluster: "west" },
        },
      ],
      B,
    );
    expect(missing[0]?.why).toContain("its cluster west cannot be read (Unreachable)");
  });

  it("R22 R31 promoted and unlinked secondaries do not hold a rotation back", () => {
    const others: RemoteSecondary[] = [
      { name: "west/prod/a", cluster: "west", state: "promoted" },
      { name: "west/prod/b", cluster: "west", state: "notLinked" },
    ];
    expect(remoteSecondariesMissingKey(others, B)).toEqual([]);
  });
});

describe("R20 R21 R22 what a primary says of its secondaries in other clusters", () => {
  const synced = (status: "True" | "False") =>
    ({
      conditions: [{ type: "KeyListSynced", status, reason: "r", message: "m", lastTransitionTime: T(0) }],
    }) as EncryptedDatabase["status"];
  const s = (state: RemoteSecondary["state"], status?: EncryptedDatabase["status"]): RemoteSecondary => ({
    name: `west/prod/${state}`,
    cluster: "west",
    state,
    ...(state === "unreachable" ? { failure: { ...cut, cluster: "west" } } : {}),
    ...(status ? { db: database("prod", state, {}, status) } : {}),
  });

  it.each<[string, RemoteSecondary[], string | undefined, string | undefined]>([
    ["none in another cluster: nothing to say", [], undefined, undefined],
    ["all linked and synced", [s("linked", synced("True"))], "True", "KeyListSynced"],
    ["a linked one behind", [s("linked", synced("False"))], "False", "MissingThumbprints"],
    [
      "an unreachable one first",
      [s("linked", synced("False")), s("unreachable")],
      "False",
      "RemoteClusterUnreachable",
    ],
  ])("KeyListSynced: %s", (_n, list, status, reason) => {
    const c = remoteKeyListSynced(list);
    expect(c?.status).toBe(status);
    expect(c?.reason).toBe(reason);
  });

  it("R22 a promoted secondary makes this primary the demoted side, by name", () => {
    const c = demotedBy([s("linked"), s("promoted")]);
    expect(c).toMatchObject({ status: "False", reason: "SecondaryPromoted" });
    expect(c?.message).toContain("west/prod/promoted was promoted to Primary");
    expect(demotedBy([s("linked")])).toBeUndefined();
  });
});

describe("R3 R20 the primary's envelope as this cluster's keys read it (localizedEnvelope)", () => {
  const source: EnvelopeSecret = {
    secret: { metadata: { namespace: "prod", name: "tde-edb-orders", resourceVersion: "7" } },
    envelope: envelope(A, B),
  };
  const local = (t: string) => (t === A ? { thumbprint: A, keyID: "local://prod/w1-kek/v9" } : undefined);

  it("R3 keeps the wraps this cluster holds the key material of, under its own key ids; bytes untouched", () => {
    const r = localizedEnvelope(source, "east", new Set([A, B]), local);
    if (!r.ok) throw new Error(r.message);
    expect(r.source.envelope.wraps).toEqual([
      { ...source.envelope.wraps[0], keyID: "local://prod/w1-kek/v9" },
    ]);
    expect(r.source.envelope.dekID).toBe("dek-1");
    expect(r.source.secret.metadata?.namespace).toBe("east:prod");
  });

  it("R20 only keys of the primary's current key list", () => {
    const r = localizedEnvelope(source, "east", new Set([B]), local);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.missing).toEqual([B]);
      expect(r.message).toContain("import the same key material");
    }
  });
});

describe("R19-R22 status.remoteSecondaries: bounded values only, for kubectl tde status", () => {
  it("each secondary's link, KeyListSynced and protector; an unreachable one with its reason, never the error text", () => {
    const linked = database("prod", "orders", {}, {
      effectiveProtector: { source: "Database", type: "CustomerManaged", keyID: "k", thumbprint: A },
      conditions: [
        { type: "KeyListSynced", status: "True", reason: "r", message: "m", lastTransitionTime: T(0) },
      ],
    } as EncryptedDatabase["status"]);
    expect(
      remoteSecondariesStatus([
        { name: "west/prod/orders", cluster: "west", state: "linked", db: linked },
        {
          name: "north/prod/orders",
          cluster: "north",
          state: "unreachable",
          failure: { ...cut, cluster: "north" },
        },
        { name: "south/prod/orders", cluster: "south", state: "promoted", db: database("prod", "orders") },
      ]),
    ).toEqual([
      {
        cluster: "west",
        namespace: "prod",
        name: "orders",
        state: "Linked",
        keyListSynced: "True",
        protectorThumbprint: A,
      },
      { cluster: "north", namespace: "prod", name: "orders", state: "Unreachable", reason: "Unreachable" },
      { cluster: "south", namespace: "prod", name: "orders", state: "Promoted" },
    ]);
  });
});

describe("R19 R31 ReplicationLinked of a primary with secondaries in other clusters (primaryLinked)", () => {
  const linked: RemoteSecondary = { name: "west/prod/orders", cluster: "west", state: "linked" };
  it.each<[string, RemoteSecondary[], string | undefined, string, string]>([
    [
      "counts this cluster's and the other clusters' linked secondaries",
      [linked],
      "east",
      "ReplicationLinked",
      "primary of 3 secondaries (1 in other clusters)",
    ],
    [
      "R22 demoted once one was promoted",
      [{ ...linked, state: "promoted" }],
      "east",
      "SecondaryPromoted",
      "was promoted to Primary",
    ],
    [
      "R31 refused without --cluster-name, saying how to fix it",
      [linked],
      undefined,
      "ClusterNameNotSet",
      "--cluster-name",
    ],
  ])("%s", (_n, list, here, reason, words) => {
    const c = primaryLinked(2, list, here);
    expect(c.reason).toBe(reason);
    expect(c.message).toContain(words);
  });
});
