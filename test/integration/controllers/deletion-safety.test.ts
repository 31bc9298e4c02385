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

type Status = {
  status?: { conditions?: { type: string; status: string; reason: string; message?: string }[] };
};
const ready = (o: Status) => cond(o, "Ready")?.status === "True";
const server = (name: string) => a.get<EncryptedServer>("EncryptedServer", ns, name);
const database = (name: string) => a.get<EncryptedDatabase>("EncryptedDatabase", ns, name);
const message = (o: Status, type: string) =>
  (o.status?.conditions?.find((c) => c.type === type) as { message?: string } | undefined)?.message ?? "";

const localKeyProtector = (name: string, keyName = name) => createLocalKeyProtector(a, ns, name, keyName);

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
      const lost = await waitFor(
        `${name} reports EnvelopeMissing`,
        read,
        (o) => cond(o, "Ready")?.reason === "EnvelopeMissing",
      );
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
      await a.core.createNamespacedSecret({ namespace: ns, body: saved });
      const back = await waitFor(
        `${name} Available again`,
        read,
        (o) => o.status?.state === "Available" && ready(o),
      );
      expect(back.status?.dekID).toBe(dekID);
      expect(cond(back, "Stalled")).toBeUndefined();
      expect(cond(back, "Revalidated")?.status).toBe("True");
      const envelope = await readEnvelope(a, ns, secretName);
      expect(envelope.dekID).toBe(dekID);
      expect(await unwrapsWithKcv(a, envelope, ns, `${name}-key`)).toBe(true);
    },
  );
});
