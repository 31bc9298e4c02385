/**
 * R32: every name the API server accepts works. Servers and databases named with generated valid
 * names (every length up to 253, dots, digits) become Available at the real API server, each with
 * its own envelope; two long names sharing a prefix do not collide; a write the API server refuses
 * is reported on Ready, naming the object.
 */
import * as k8s from "@kubernetes/client-node";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validName } from "../../fixtures/valid-names.js";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import { eventsFor } from "../watchdog/support.js";
import {
  type Api,
  api,
  cond,
  type EncryptedDatabase,
  type EncryptedServer,
  type KeyProtector,
  kc,
  readEnvelope,
  suffix,
  waitFor,
} from "./helpers.js";

const id = suffix();
const ns = `names-${id}`;
const quotaNs = `names-q-${id}`;
const opNs = `names-op-${id}`;
let a: Api;
let op: TestOperator;
const figures = { names: 0, longest: 0, over63: 0, dotted: 0 };

type Obj = {
  metadata?: { name?: string };
  status?: { state?: string; dekID?: string; envelopeSecretName?: string };
};
const available = (o: Obj) => o.status?.state === "Available" && cond(o as never, "Ready")?.status === "True";

beforeAll(async () => {
  a = api(kc());
  op = await startTestOperator({ watchNamespaces: [ns, quotaNs], operatorNamespace: opNs });
});

afterAll(async () => {
  await op?.stop();
  process.stderr.write(`[R32 names] ${JSON.stringify(figures)}\n`);
});

/** A server and a database of that name, both Available, each with an envelope that names its owner in full. */
async function provisionAndCheck(name: string) {
  await a.create("EncryptedServer", ns, name, {
    protector: { type: "ServiceManaged" },
    deletionPolicy: "Shred",
  });
  await a.create("EncryptedDatabase", ns, name, { serverRef: { name }, deletionPolicy: "Shred" });
  const srv = await waitFor(
    `server ${name.length} chars Available`,
    () => a.get<EncryptedServer>("EncryptedServer", ns, name),
    available,
  );
  const db = await waitFor(
    `database ${name.length} chars Available`,
    () => a.get<EncryptedDatabase>("EncryptedDatabase", ns, name),
    available,
  );
  for (const [o, kind] of [
    [srv, "EncryptedServer"],
    [db, "EncryptedDatabase"],
  ] as const) {
    const secretName = o.status!.envelopeSecretName!;
    expect(secretName.length).toBeLessThanOrEqual(253);
    const secret = await a.core.readNamespacedSecret({ namespace: ns, name: secretName });
    expect(secret.metadata?.labels?.["tde.dev/owner-name"]?.length).toBeLessThanOrEqual(63);
    expect(secret.metadata?.annotations?.["tde.dev/owner-name"]).toBe(name);
    expect(secret.metadata?.labels?.["tde.dev/owner-kind"]).toBe(kind);
    const envelope = await readEnvelope(a, ns, secretName);
    expect(envelope.dekID).toBe(o.status?.dekID);
    expect(envelope.ownerBinding?.name).toBe(name);
  }
  expect(srv.status?.dekID).not.toBe(db.status?.dekID);
  // its Events too: an Event's name is derived from the object's, within 253 characters
  await waitFor(
    `a DEKCreated event for the ${name.length}-char server`,
    () => eventsFor(a.core, ns, "EncryptedServer", name),
    (events) => events.some((e) => e.reason === "DEKCreated"),
  );
  figures.names += 1;
  figures.longest = Math.max(figures.longest, name.length);
  if (name.length > 63) figures.over63 += 1;
  if (name.includes(".")) figures.dotted += 1;
  await a.delete("EncryptedDatabase", ns, name);
  await a.delete("EncryptedServer", ns, name);
}

describe("R32 every valid name works", () => {
  it("property: servers and databases with generated valid names (up to 253 chars, dots, digits) become Available", async () => {
    const used = new Set<string>();
    await fc.assert(
      fc.asyncProperty(validName, async (name) => {
        fc.pre(!used.has(name));
        used.add(name);
        await provisionAndCheck(name);
      }),
      {
        numRuns: 12,
        examples: [["x".repeat(253)], [`${"a".repeat(63)}.b`], ["0.1.2-3.4"], [`${"d".repeat(64)}`]],
      },
    );
  }, 300_000);

  it("two long names sharing their first 250 characters get their own envelopes and DEKs", async () => {
    const common = `${"p".repeat(120)}.${"q".repeat(129)}`;
    const names = [`${common}a`, `${common}b`];
    for (const name of names)
      await a.create("EncryptedServer", ns, name, { protector: { type: "ServiceManaged" } });
    const [one, two] = await Promise.all(
      names.map((name) =>
        waitFor(
          `server ${name.slice(-1)} Available`,
          () => a.get<EncryptedServer>("EncryptedServer", ns, name),
          available,
        ),
      ),
    );
    expect(one!.status?.envelopeSecretName).not.toBe(two!.status?.envelopeSecretName);
    expect(one!.status?.dekID).not.toBe(two!.status?.dekID);
    for (const s of [one!, two!]) {
      const envelope = await readEnvelope(a, ns, s.status!.envelopeSecretName!);
      expect(envelope.dekID).toBe(s.status?.dekID);
      expect(envelope.ownerBinding?.name).toBe(s.metadata?.name);
    }
  });

  it("a write the API server refuses is reported on Ready, naming the object, and the server and KeyProtector converge once it is allowed", async () => {
    // an admission policy (CEL, in the API server itself) that refuses this server's envelope
    const admission = kc().makeApiClient(k8s.AdmissionregistrationV1Api);
    const policy = `tde-refuse-${id}`;
    await admission.createValidatingAdmissionPolicy({
      body: {
        metadata: { name: policy },
        spec: {
          failurePolicy: "Fail",
          matchConstraints: {
            resourceRules: [
              { apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["secrets"] },
              {
                apiGroups: ["tde.dev"],
                apiVersions: ["v1alpha1"],
                operations: ["UPDATE"],
                resources: ["keyprotectors"],
              },
            ],
          },
          validations: [
            {
              expression:
                "request.kind.kind != 'Secret' || !object.metadata.name.startsWith('tde-esrv-refused')",
              message: "envelopes refused by policy",
            },
            {
              expression: "request.kind.kind != 'KeyProtector' || object.metadata.name != 'kp-refused'",
              message: "KeyProtector updates refused by policy",
            },
          ],
        },
      },
    });
    await admission.createValidatingAdmissionPolicyBinding({
      body: {
        metadata: { name: policy },
        spec: {
          policyName: policy,
          validationActions: ["Deny"],
          matchResources: { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": quotaNs } } },
        },
      },
    });
    // the policy takes effect within a moment: wait until a Secret of that name is refused
    await waitFor(
      "the policy refuses",
      () =>
        a.core
          .createNamespacedSecret({
            namespace: quotaNs,
            body: { metadata: { name: "tde-esrv-refused-probe" } },
          })
          .then(
            async () => {
              await a.core.deleteNamespacedSecret({ namespace: quotaNs, name: "tde-esrv-refused-probe" });
              return "allowed";
            },
            (e: { code?: number }) => (e.code === 422 || e.code === 403 ? "refused" : "error"),
          ),
      (v) => v === "refused",
    );
    await a.create("EncryptedServer", quotaNs, "refused", { protector: { type: "ServiceManaged" } });
    const refused = await waitFor(
      "Ready WriteRefused",
      () => a.get<EncryptedServer>("EncryptedServer", quotaNs, "refused"),
      (o) => cond(o, "Ready")?.reason === "WriteRefused",
    );
    const message = (refused.status?.conditions ?? []).find((c) => c.type === "Ready")?.message ?? "";
    expect(message).toContain(`refused to create secrets ${quotaNs}/tde-esrv-refused (422 Invalid)`);
    expect(message).toContain("envelopes refused by policy");
    expect(refused.status?.state).not.toBe("Available");
    const events = await eventsFor(a.core, quotaNs, "EncryptedServer", "refused");
    expect(events.some((e) => e.type === "Warning" && e.reason === "WriteRefused")).toBe(true);
    // a KeyProtector whose finalizer cannot be written says so too
    await a.local.createKey(quotaNs, "kp-refused", { size: 2048 });
    await a.create("KeyProtector", quotaNs, "kp-refused", {
      provider: "Local",
      local: { secretRef: { name: "kp-refused" } },
    });
    const kp = await waitFor(
      "KeyProtector Ready WriteRefused",
      () => a.get<KeyProtector>("KeyProtector", quotaNs, "kp-refused"),
      (o) => cond(o, "Ready")?.reason === "WriteRefused",
    );
    expect((kp.status?.conditions ?? []).find((c) => c.type === "Ready")?.message).toContain(
      `refused to patch keyprotectors ${quotaNs}/kp-refused (422 Invalid): `,
    );
    await admission.deleteValidatingAdmissionPolicyBinding({ name: policy });
    await admission.deleteValidatingAdmissionPolicy({ name: policy });
    await waitFor(
      "server Available once allowed",
      () => a.get<EncryptedServer>("EncryptedServer", quotaNs, "refused"),
      available,
      60_000,
    );
    const allowed = await waitFor(
      "KeyProtector Ready once allowed",
      () => a.get<KeyProtector>("KeyProtector", quotaNs, "kp-refused"),
      (o) => cond(o, "Ready")?.status === "True",
      60_000,
    );
    expect(allowed.metadata?.finalizers).toContain("tde.dev/in-use");
  });
});
