/**
 * R1 R2 R4 R33: nothing a user can delete loses a key. A recorded DEK is never replaced (its
 * envelope lost is a terminal condition naming the DEK id, and a backup brings it back); a
 * KeyProtector, a Local KEK Secret and an envelope Secret in use wait for their dependants.
 */
import type * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import { eventsFor } from "../watchdog/support.js";
import {
  type Api,
  api,
  cond,
  createLocalKeyProtector,
  type EncryptedDatabase,
  type EncryptedServer,
  type KeyProtector,
  kc,
  readEnvelope,
  suffix,
  unwrapsWithKcv,
  waitFor,
} from "./helpers.js";

const id = suffix();
const ns = `del-${id}`;
const opNs = `del-op-${id}`;
let a: Api;
let op: TestOperator;
const figures: Record<string, number> = {};

type Status = {
  status?: { conditions?: { type: string; status: string; reason: string; message?: string }[] };
};
const ready = (o: Status) => cond(o, "Ready")?.status === "True";
const server = (name: string) => a.get<EncryptedServer>("EncryptedServer", ns, name);
const database = (name: string) => a.get<EncryptedDatabase>("EncryptedDatabase", ns, name);
const message = (o: Status, type: string) =>
  (o.status?.conditions?.find((c) => c.type === type) as { message?: string } | undefined)?.message ?? "";

const localKeyProtector = (name: string, keyName = name) => createLocalKeyProtector(a, ns, name, keyName);
/** Each DEK the test itself unwraps (KCV checked), counted for docs/reliability.md. */
const checkedUnwrap = async (...args: Parameters<typeof unwrapsWithKcv>) => {
  const ok = await unwrapsWithKcv(...args);
  figures.unwrapsKcvChecked = (figures.unwrapsKcvChecked ?? 0) + 1;
  return ok;
};

/** A Secret as a backup tool keeps it: the object without its server-side fields. */
async function backup(name: string): Promise<k8s.V1Secret> {
  const s = await a.core.readNamespacedSecret({ namespace: ns, name });
  const { resourceVersion, uid, creationTimestamp, managedFields, deletionTimestamp, finalizers, ...meta } =
    s.metadata ?? {};
  return { apiVersion: "v1", kind: "Secret", type: s.type, data: s.data, metadata: meta };
}

/** Deletes a Secret for good, as a person who strips its finalizers does. */
async function deleteForGood(name: string) {
  await a.core.deleteNamespacedSecret({ namespace: ns, name });
  await stripFinalizers(name);
  await waitFor(
    `Secret ${name} gone`,
    () =>
      a.core.readNamespacedSecret({ namespace: ns, name }).then(
        () => "present",
        (e: { code?: number }) => (e.code === 404 ? "gone" : "error"),
      ),
    (v) => v === "gone",
  );
}

async function stripFinalizers(name: string) {
  try {
    await a.core.patchNamespacedSecret(
      { namespace: ns, name, body: [{ op: "remove", path: "/metadata/finalizers" }] },
      { headers: { "Content-Type": "application/json-patch+json" } } as never,
    );
  } catch (error) {
    const code = (error as { code?: number }).code;
    if (code !== 404 && code !== 422) throw error;
  }
}

async function secretExists(name: string): Promise<boolean> {
  try {
    await a.core.readNamespacedSecret({ namespace: ns, name });
    return true;
  } catch (error) {
    if ((error as { code?: number }).code === 404) return false;
    throw error;
  }
}

beforeAll(async () => {
  a = api(kc());
  op = await startTestOperator({ watchNamespaces: [ns], operatorNamespace: opNs });
});

afterAll(async () => {
  await op?.stop();
});

describe("a recorded DEK is never replaced (R1 R2 R4)", () => {
  it.each([
    ["EncryptedDatabase", "lost-db"],
    ["EncryptedServer", "lost-srv"],
  ] as const)(
    "R2 R4 deleting the envelope of a live %s: the DEK id never changes, EnvelopeMissing names it, the backup brings it back",
    async (kind, name) => {
      await localKeyProtector(`${name}-key`);
      const serverName = kind === "EncryptedServer" ? name : `${name}-server`;
      await a.create("EncryptedServer", ns, serverName, {
        protector: { type: "CustomerManaged", keyProtectorRef: { name: `${name}-key` } },
      });
      if (kind === "EncryptedDatabase")
        await a.create("EncryptedDatabase", ns, name, { serverRef: { name: serverName } });
      const read = () =>
        (kind === "EncryptedServer" ? server(name) : database(name)) as Promise<EncryptedServer & Status>;
      const live = await waitFor(`${name} Available`, read, (o) => o.status?.state === "Available");
      const dekID = live.status!.dekID!;
      const secretName = live.status!.envelopeSecretName!;
      const saved = await backup(secretName);

      await deleteForGood(secretName);
      const deletedAt = Date.now();
      const lost = await waitFor(
        `${name} reports EnvelopeMissing`,
        read,
        (o) => cond(o, "Ready")?.reason === "EnvelopeMissing",
      );
      figures[`${kind}EnvelopeMissingReportedMs`] = Date.now() - deletedAt;
      expect(lost.status?.state).toBe("Inaccessible");
      expect(lost.status?.dekID).toBe(dekID);
      expect(cond(lost, "Ready")?.status).toBe("False");
      expect(cond(lost, "Stalled")).toMatchObject({ status: "True", reason: "EnvelopeMissing" });
      for (const text of [dekID, `${ns}/${secretName}`, "from a backup", "spec.restore"])
        expect(message(lost, "Ready")).toContain(text);
      await waitFor(
        "an EnvelopeMissing Warning",
        () => eventsFor(a.core, ns, kind, name),
        (events) =>
          events.some(
            (e) => e.type === "Warning" && e.reason === "EnvelopeMissing" && e.message.includes(dekID),
          ),
      );
      const metrics = await op.metrics.registry.getSingleMetricAsString("tde_envelopes_lost");
      expect(metrics).toContain(`tde_envelopes_lost{kind="${kind}",reason="EnvelopeMissing"} 1`);
      // no new envelope, no new DEK, however long it waits
      await new Promise((r) => setTimeout(r, 2_500));
      expect(await secretExists(secretName)).toBe(false);
      expect((await read()).status?.dekID).toBe(dekID);

      // the Secret restored from its backup: proven (unwrap + KCV) and Available again, same DEK
      const restoredAt = Date.now();
      await a.core.createNamespacedSecret({ namespace: ns, body: saved });
      const back = await waitFor(
        `${name} Available again`,
        read,
        (o) => o.status?.state === "Available" && ready(o),
      );
      figures[`${kind}AvailableAfterRestoreMs`] = Date.now() - restoredAt;
      expect(back.status?.dekID).toBe(dekID);
      expect(cond(back, "Stalled")).toMatchObject({ status: "False", reason: "NotStalled" });
      expect(cond(back, "Revalidated")?.status).toBe("True");
      const envelope = await readEnvelope(a, ns, secretName);
      expect(envelope.dekID).toBe(dekID);
      expect(await checkedUnwrap(a, envelope, ns, `${name}-key`)).toBe(true);
    },
  );
});

const keyProtector = (name: string) => a.get<KeyProtector>("KeyProtector", ns, name);
const gone = (read: () => Promise<unknown>) =>
  read().then(
    () => false,
    (e: { code?: number }) => e.code === 404,
  );
const deletionTimestamp = async (name: string) =>
  (await a.core.readNamespacedSecret({ namespace: ns, name })).metadata?.deletionTimestamp;
const secretEvents = (name: string) => eventsFor(a.core, ns, "Secret", name);

describe("a key or envelope in use cannot be deleted out from under its dependants (R33)", () => {
  it("R33 a KeyProtector in use: its deletion waits, names its dependants, and it goes once they moved; each DEK still unwraps", async () => {
    await localKeyProtector("kp-in-use");
    await localKeyProtector("kp-next");
    await a.create("EncryptedServer", ns, "kp-srv", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "kp-in-use" } },
    });
    await a.create("EncryptedDatabase", ns, "kp-db", { serverRef: { name: "kp-srv" } });
    const srv = await waitFor("kp-srv Available", () => server("kp-srv"), ready);
    const db = await waitFor("kp-db Ready", () => database("kp-db"), ready);
    expect((await keyProtector("kp-in-use")).metadata?.finalizers).toContain("tde.dev/in-use");

    await a.delete("KeyProtector", ns, "kp-in-use");
    const waiting = await waitFor(
      "DeletionBlocked on the KeyProtector",
      () => keyProtector("kp-in-use"),
      (o) => cond(o, "DeletionBlocked")?.status === "True",
    );
    expect(waiting.metadata?.deletionTimestamp).toBeDefined();
    expect(cond(waiting, "DeletionBlocked")?.reason).toBe("InUse");
    expect(message(waiting, "DeletionBlocked")).toContain(`EncryptedServer ${ns}/kp-srv`);
    expect(message(waiting, "DeletionBlocked")).toContain(`EncryptedDatabase ${ns}/kp-db`);
    expect(cond(waiting, "Accessible")?.status).toBe("True"); // still probed
    await waitFor(
      "an InUse Warning on the KeyProtector",
      () => eventsFor(a.core, ns, "KeyProtector", "kp-in-use"),
      (events) =>
        events.some((e) => e.type === "Warning" && e.reason === "InUse" && e.message.includes("kp-srv")),
    );
    expect((await server("kp-srv")).status?.state).toBe("Available");

    // the dependants move to another key (re-wrapped online); then the KeyProtector goes
    await a.patch("EncryptedServer", ns, "kp-srv", {
      spec: { protector: { keyProtectorRef: { name: "kp-next" } } },
    });
    await waitFor(
      "KeyProtector gone",
      async () => gone(() => keyProtector("kp-in-use")),
      (v) => v,
      30_000,
    );
    for (const [o, read] of [
      [srv, () => server("kp-srv")],
      [db, () => database("kp-db")],
    ] as const) {
      const now = (await read()) as { status?: { dekID?: string; envelopeSecretName?: string } };
      expect(now.status?.dekID).toBe(o.status?.dekID);
      const envelope = await readEnvelope(a, ns, now.status!.envelopeSecretName!);
      expect(await checkedUnwrap(a, envelope, ns, "kp-next")).toBe(true);
    }
    const exported = await op.metrics.registry.getSingleMetricAsString("tde_key_accessible");
    expect(exported).not.toContain('keyprotector="kp-in-use"');
    expect(exported).toContain('keyprotector="kp-next"');
  });

  it("R33 a Local KEK Secret in use: its deletion waits (never KeyNotFound), names the KeyProtector and the envelope, and it goes once nothing uses it", async () => {
    await localKeyProtector("kek-in-use");
    await a.create("EncryptedServer", ns, "kek-srv", { protector: { type: "ServiceManaged" } });
    await a.create("EncryptedDatabase", ns, "kek-db", {
      serverRef: { name: "kek-srv" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "kek-in-use" } },
      deletionPolicy: "Shred",
    });
    const db = await waitFor("kek-db Ready", () => database("kek-db"), ready);
    await waitFor(
      "the KEK Secret protected",
      () => a.core.readNamespacedSecret({ namespace: ns, name: "kek-in-use" }),
      (s) => s.metadata?.finalizers?.includes("tde.dev/in-use") === true,
    );

    await a.core.deleteNamespacedSecret({ namespace: ns, name: "kek-in-use" });
    const kp = await waitFor(
      "KeyDeletionBlocked on the KeyProtector",
      () => keyProtector("kek-in-use"),
      (o) => cond(o, "KeyDeletionBlocked")?.status === "True",
    );
    expect(await deletionTimestamp("kek-in-use")).toBeDefined();
    expect(message(kp, "KeyDeletionBlocked")).toContain(`KeyProtector ${ns}/kek-in-use`);
    expect(message(kp, "KeyDeletionBlocked")).toContain(`DEK ${db.status?.dekID}`);
    await waitFor(
      "an InUse Warning on the Secret",
      () => secretEvents("kek-in-use"),
      (events) =>
        events.some((e) => e.type === "Warning" && e.reason === "InUse" && e.message.includes("kek-in-use")),
    );
    // the key is still there and usable: no KeyNotFound, the DEK unwraps and its KCV matches
    await new Promise((r) => setTimeout(r, 2_000));
    expect(cond(await keyProtector("kek-in-use"), "Accessible")?.status).toBe("True");
    expect((await database("kek-db")).status?.state).toBe("Available");
    const envelope = await readEnvelope(a, ns, db.status!.envelopeSecretName!);
    expect(await checkedUnwrap(a, envelope, ns, "kek-in-use")).toBe(true);

    // released once nothing uses it: the database (Shred) and the KeyProtector go, then the Secret
    await a.delete("EncryptedDatabase", ns, "kek-db");
    await a.delete("KeyProtector", ns, "kek-in-use");
    await waitFor(
      "the KEK Secret gone",
      async () => gone(() => a.core.readNamespacedSecret({ namespace: ns, name: "kek-in-use" })),
      (v) => v,
      30_000,
    );
  });

  it("R33 R25 an envelope Secret in use: its deletion waits while its database lives; Retain releases it to people, Shred shreds", async () => {
    await a.create("EncryptedServer", ns, "env-srv", { protector: { type: "ServiceManaged" } });
    await a.create("EncryptedDatabase", ns, "env-db", { serverRef: { name: "env-srv" } });
    await a.create("EncryptedDatabase", ns, "env-kept", { serverRef: { name: "env-srv" } });
    const db = await waitFor("env-db Ready", () => database("env-db"), ready);
    const kept = await waitFor("env-kept Ready", () => database("env-kept"), ready);
    const secretName = db.status!.envelopeSecretName!;
    expect(
      (await a.core.readNamespacedSecret({ namespace: ns, name: secretName })).metadata?.finalizers,
    ).toContain("tde.dev/in-use");

    // the service-managed KEK Secret is held as well
    await waitFor(
      "the service-managed KEK Secret protected",
      () => a.core.readNamespacedSecret({ namespace: opNs, name: "tde-service-managed-key" }),
      (s) => s.metadata?.finalizers?.includes("tde.dev/in-use") === true,
    );

    await a.core.deleteNamespacedSecret({ namespace: ns, name: secretName });
    const blocked = await waitFor(
      "EnvelopeDeletionBlocked on the database",
      () => database("env-db"),
      (o) => cond(o, "EnvelopeDeletionBlocked")?.status === "True",
    );
    expect(message(blocked, "EnvelopeDeletionBlocked")).toContain(`${ns}/${secretName}`);
    expect(message(blocked, "EnvelopeDeletionBlocked")).toContain(`DEK ${db.status?.dekID}`);
    expect(blocked.status?.state).toBe("Available");
    expect(blocked.status?.dekID).toBe(db.status?.dekID);
    await waitFor(
      "an InUse Warning on the envelope",
      () => secretEvents(secretName),
      (events) =>
        events.some((e) => e.type === "Warning" && e.reason === "InUse" && e.message.includes("env-db")),
    );
    const envelope = await readEnvelope(a, ns, secretName);
    expect(envelope.dekID).toBe(db.status?.dekID);
    expect(await checkedUnwrap(a, envelope, opNs, "tde-service-managed-key")).toBe(true);

    // the database goes: the deletion that was asked for goes through
    await a.delete("EncryptedDatabase", ns, "env-db");
    await waitFor(
      "the envelope gone with its database",
      async () => gone(() => a.core.readNamespacedSecret({ namespace: ns, name: secretName })),
      (v) => v,
    );

    // Retain: the database goes, its envelope stays, released (no finalizer of ours), so a person may delete it later
    await a.delete("EncryptedDatabase", ns, "env-kept");
    await waitFor(
      "env-kept gone",
      async () => gone(() => database("env-kept")),
      (v) => v,
    );
    const retained = await a.core.readNamespacedSecret({
      namespace: ns,
      name: kept.status!.envelopeSecretName!,
    });
    expect(retained.metadata?.finalizers ?? []).not.toContain("tde.dev/in-use");
    expect((await readEnvelope(a, ns, kept.status!.envelopeSecretName!)).dekID).toBe(kept.status?.dekID);
  });

  it("R10 R33 a KeyProtector deleted, then its key disabled: the server still goes Inaccessible at the grace deadline", async () => {
    await localKeyProtector("stale-kp");
    await a.create("EncryptedServer", ns, "stale-srv", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "stale-kp" } },
      keyAccessGracePeriod: "6s",
    });
    await waitFor(
      "stale-srv Available",
      () => server("stale-srv"),
      (o) => o.status?.state === "Available",
    );
    await a.delete("KeyProtector", ns, "stale-kp");
    await waitFor(
      "deletion waits",
      () => keyProtector("stale-kp"),
      (o) => cond(o, "DeletionBlocked")?.status === "True",
    );
    await a.local.setEnabled(ns, "stale-kp", false);
    const lost = await waitFor(
      "KeyAccessible=False KeyDisabled",
      () => server("stale-srv"),
      (o) => cond(o, "KeyAccessible")?.reason === "KeyDisabled",
    );
    expect(lost.status?.state).toBe("Available");
    const inaccessible = await waitFor(
      "Inaccessible at the deadline",
      () => server("stale-srv"),
      (o) => o.status?.state === "Inaccessible",
      20_000,
    );
    const deadline = Date.parse(lost.status!.keyAccessLostSince!) + 6_000;
    expect(Date.parse(inaccessible.status!.inaccessibleSince!)).toBeGreaterThanOrEqual(deadline - 50);
    figures.staleDeadlineLateMs = Date.parse(inaccessible.status!.inaccessibleSince!) - deadline;
  });

  it("R33 a KeyProtector removed by force: its dependant says KeyAccessible=Unknown, never a stale True, and a known loss still runs out", async () => {
    await localKeyProtector("forced-kp");
    await a.create("EncryptedServer", ns, "forced-srv", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "forced-kp" } },
      keyAccessGracePeriod: "6s",
    });
    await waitFor(
      "forced-srv Available",
      () => server("forced-srv"),
      (o) => o.status?.state === "Available",
    );
    await a.local.setEnabled(ns, "forced-kp", false);
    const lost = await waitFor(
      "loss seen",
      () => server("forced-srv"),
      (o) => cond(o, "KeyAccessible")?.reason === "KeyDisabled",
    );
    // someone strips the finalizer: the KeyProtector is gone at once
    await a.delete("KeyProtector", ns, "forced-kp");
    await a.patch("KeyProtector", ns, "forced-kp", { metadata: { finalizers: null } });
    const unknown = await waitFor(
      "KeyAccessible Unknown",
      () => server("forced-srv"),
      (o) => cond(o, "KeyAccessible")?.status === "Unknown",
    );
    expect(cond(unknown, "KeyAccessible")?.reason).toBe("KeyNotProbed");
    expect(cond(unknown, "Ready")?.status).toBe("False");
    expect(unknown.status?.keyAccessLostSince).toBe(lost.status?.keyAccessLostSince);
    const inaccessible = await waitFor(
      "Inaccessible at the kept deadline",
      () => server("forced-srv"),
      (o) => o.status?.state === "Inaccessible",
      20_000,
    );
    expect(Date.parse(inaccessible.status!.inaccessibleSince!)).toBeGreaterThanOrEqual(
      Date.parse(lost.status!.keyAccessLostSince!) + 6_000 - 50,
    );
    expect(cond(inaccessible, "KeyAccessible")?.status).toBe("Unknown");
  });
});

afterAll(() => {
  process.stderr.write(`[R33 deletion safety] ${JSON.stringify(figures)}\n`);
});
