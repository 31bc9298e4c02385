/**
 * #22: a dependant is re-checked whenever an object it references changes. For each kind of
 * reference, the dependant is blocked by the referenced object, then that object (and only it) is
 * fixed, and the dependant converges. The operator's probe interval is a minute and nothing else
 * requeues a waiting resource by a timer, so converging within the 20 s allowed here proves the
 * watch, not a timer. R23's start state is proven here too: a copy that waited for its server is
 * never Available before a revalidation.
 */
import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { thumbprint } from "../../../src/crypto/index.js";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
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
const ns = `refs-${id}`; // the dependants' namespace
const other = `refs-o-${id}`; // another namespace: sources and primaries named across namespaces (R31)
const opNs = `refs-op-${id}`;
/** long enough that no probe timer can unblock anything within FIX_MS */
const PROBE_MS = 60_000;
/** how long a fix may take to reach its dependant: generous, and well under PROBE_MS */
const FIX_MS = 20_000;
let a: Api;
let op: TestOperator;

const pem = () =>
  generateKeyPairSync("rsa", { modulusLength: 2048 })
    .privateKey.export({ type: "pkcs8", format: "pem" })
    .toString();

const db = (namespace: string, name: string) =>
  a.get<EncryptedDatabase>("EncryptedDatabase", namespace, name);
const srv = (namespace: string, name: string) => a.get<EncryptedServer>("EncryptedServer", namespace, name);
const kp = (namespace: string, name: string) => a.get<KeyProtector>("KeyProtector", namespace, name);
const message = (o: Parameters<typeof cond>[0], type: string) =>
  (o.status?.conditions as { type: string; message: string }[] | undefined)?.find((c) => c.type === type)
    ?.message ?? "";

/** A Local KEK with this key material (imported, R7) and a KeyProtector on it, once Ready. */
async function importedKeyProtector(namespace: string, name: string, material: string) {
  await a.local.importKey(namespace, `${name}-kek`, material);
  await a.create("KeyProtector", namespace, name, {
    provider: "Local",
    local: { secretRef: { name: `${name}-kek` } },
    requirements: { requireRecoverable: false },
  });
  return (
    await waitFor(
      `KeyProtector ${namespace}/${name} Ready`,
      () => kp(namespace, name),
      (o) => cond(o, "Ready")?.status === "True",
    )
  ).status!.thumbprint!;
}

/** A KeyProtector on a key the operator creates on first use (R7). */
async function createdKeyProtector(namespace: string, name: string) {
  await a.create("KeyProtector", namespace, name, {
    provider: "Local",
    local: { secretRef: { name: `${name}-kek` } },
  });
  return (
    await waitFor(
      `KeyProtector ${namespace}/${name} Ready`,
      () => kp(namespace, name),
      (o) => cond(o, "Ready")?.status === "True",
    )
  ).status!.thumbprint!;
}

/** Every state each database of a namespace is seen in, from a watch (every status write is an event). */
async function watchStates(namespace: string) {
  const seen = new Map<string, string[]>();
  const watch = new k8s.Watch(kc());
  const req = await watch.watch(
    `/apis/tde.dev/v1alpha1/namespaces/${namespace}/encrypteddatabases`,
    {},
    (_type: string, obj: EncryptedDatabase) => {
      const name = obj.metadata?.name ?? "";
      const state = obj.status?.state ?? "(none)";
      const list = seen.get(name) ?? [];
      if (list.at(-1) !== state) list.push(state);
      seen.set(name, list);
    },
    () => {},
  );
  return { seen: (name: string) => seen.get(name) ?? [], stop: () => req.abort() };
}

beforeAll(async () => {
  a = api(kc());
  op = await startTestOperator({
    watchNamespaces: [ns, other],
    operatorNamespace: opNs,
    probeIntervalMs: PROBE_MS,
  });
});

afterAll(async () => {
  await op?.stop();
});

describe("#22 fixing the referenced object, and only it, unblocks its dependant", () => {
  it.concurrent("R13 serverRef: a database waiting for its server provisions once the server exists", async () => {
    await a.create("EncryptedDatabase", ns, "waits-for-server", { serverRef: { name: "late-server" } });
    const waiting = await waitFor(
      "ServerNotFound",
      () => db(ns, "waits-for-server"),
      (o) => cond(o, "Ready")?.reason === "ServerNotFound",
    );
    expect(message(waiting, "Ready")).toContain("waiting for EncryptedServer late-server");
    await a.create("EncryptedServer", ns, "late-server", { protector: { type: "ServiceManaged" } });
    await waitFor(
      "database Available",
      () => db(ns, "waits-for-server"),
      (o) => o.status?.state === "Available",
      FIX_MS,
    );
  });

  it.concurrent("R9 R13 keyProtectorRef: a server and a database waiting for their KeyProtector provision once it exists", async () => {
    await a.create("EncryptedServer", ns, "waits-for-kp", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "late-kp" } },
    });
    await a.create("EncryptedDatabase", ns, "inherits-late-kp", { serverRef: { name: "waits-for-kp" } });
    await a.create("EncryptedDatabase", ns, "own-late-kp", {
      serverRef: { name: "waits-for-kp" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "late-db-kp" } },
    });
    await waitFor(
      "server waits",
      () => srv(ns, "waits-for-kp"),
      (o) => cond(o, "Ready")?.reason === "KeyProtectorNotFound",
    );
    await createdKeyProtector(ns, "late-kp");
    await waitFor(
      "server Available",
      () => srv(ns, "waits-for-kp"),
      (o) => o.status?.state === "Available",
      FIX_MS,
    );
    await waitFor(
      "inheriting database Available",
      () => db(ns, "inherits-late-kp"),
      (o) => o.status?.state === "Available",
      FIX_MS,
    );
    const own = await waitFor(
      "database waits for its own KeyProtector",
      () => db(ns, "own-late-kp"),
      (o) => cond(o, "Ready")?.reason === "KeyProtectorNotFound",
    );
    expect(message(own, "Ready")).toContain("KeyProtector late-db-kp");
    await createdKeyProtector(ns, "late-db-kp");
    await waitFor(
      "database on its own key",
      () => db(ns, "own-late-kp"),
      (o) => o.status?.state === "Available",
      FIX_MS,
    );
  });

  it.concurrent("R7 the KEK Secret of imported material (create: Never): a KeyProtector applied before its Secret waits for it, and the Secret, only it, brings the imported key to the KeyProtector and its server", async () => {
    await a.create("KeyProtector", ns, "imported-late", {
      provider: "Local",
      local: { secretRef: { name: "imported-late-kek" }, create: "Never" },
      requirements: { requireRecoverable: false },
    });
    await a.create("EncryptedServer", ns, "on-imported-late", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "imported-late" } },
    });
    const waiting = await waitFor(
      "KeyProtector waits for its Secret",
      () => kp(ns, "imported-late"),
      (o) => cond(o, "Ready")?.reason === "KeySecretNotFound",
    );
    expect(message(waiting, "Ready")).toContain(`the Secret ${ns}/imported-late-kek does not exist`);
    expect(cond(waiting, "Reconciling")?.status).toBe("True"); // waiting, not failed
    expect(cond(waiting, "Stalled")?.status).not.toBe("True");
    expect(waiting.status?.thumbprint).toBeUndefined(); // no key was made
    await waitFor(
      "server waits for its KeyProtector",
      () => srv(ns, "on-imported-late"),
      (o) => cond(o, "Ready")?.reason === "KeyProtectorNotReady",
    );
    const material = pem();
    await a.local.importKey(ns, "imported-late-kek", material);
    const ready = await waitFor(
      "KeyProtector Ready on the imported key",
      () => kp(ns, "imported-late"),
      (o) => cond(o, "Ready")?.status === "True",
      FIX_MS,
    );
    const server = await waitFor(
      "server Available",
      () => srv(ns, "on-imported-late"),
      (o) => o.status?.state === "Available",
      FIX_MS,
    );
    expect(ready.status?.thumbprint).toBe(thumbprint(createPrivateKey(material)));
    expect((server.status?.protector as { thumbprint?: string } | undefined)?.thumbprint).toBe(
      ready.status?.thumbprint,
    );
  });

  it.concurrent("R7 R20 keys and the KEK Secret: a spec.keys KeyProtector whose key is disabled is named with KeyDisabled; enabling the key in its Secret (only that) unblocks the database", async () => {
    await a.create("EncryptedServer", ns, "keys-server", { protector: { type: "ServiceManaged" } });
    await createdKeyProtector(ns, "extra");
    // the key's own Secret changes: its KeyProtector is probed at once, not at the next interval
    await a.local.setEnabled(ns, "extra-kek", false);
    await waitFor(
      "KeyProtector sees its key disabled",
      () => kp(ns, "extra"),
      (o) => cond(o, "Accessible")?.reason === "KeyDisabled",
      FIX_MS,
    );
    await a.create("EncryptedDatabase", ns, "with-extra", {
      serverRef: { name: "keys-server" },
      keys: [{ keyProtectorRef: { name: "extra" } }],
    });
    const blocked = await waitFor(
      "blocked by spec.keys",
      () => db(ns, "with-extra"),
      (o) => message(o, "Ready").startsWith("spec.keys"),
    );
    expect(message(blocked, "Ready")).toMatch(
      /KeyProtector extra cannot take a wrap yet: its Accessible condition says KeyDisabled/,
    );
    expect(message(blocked, "Ready")).toContain("Enable the key");
    await a.local.setEnabled(ns, "extra-kek", true);
    const ready = await waitFor(
      "database Ready with the extra key",
      () => db(ns, "with-extra"),
      (o) => cond(o, "Ready")?.status === "True",
      FIX_MS,
    );
    expect(
      ready.status?.keyList?.some((e) => e.role === "additional" && e.keyProtectorName === "extra"),
    ).toBe(true);
  });

  it.concurrent("R24 R31 restore.sourceRef: a restore its source does not name back restores once the source adds it to allowedRestoreTargets", async () => {
    const material = pem();
    await importedKeyProtector(other, "src-key", material);
    await importedKeyProtector(ns, "restore-key", material);
    await a.create("EncryptedServer", other, "src-server", { protector: { type: "ServiceManaged" } });
    await a.create("EncryptedDatabase", other, "restore-src", {
      serverRef: { name: "src-server" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "src-key" } },
    });
    const source = await waitFor(
      "source Ready",
      () => db(other, "restore-src"),
      (o) => cond(o, "Ready")?.status === "True",
    );
    await a.create("EncryptedServer", ns, "restore-server", {
      protector: { type: "ServiceManaged" },
      revalidation: "Automatic",
    });
    await a.create("EncryptedDatabase", ns, "not-named-back", {
      serverRef: { name: "restore-server" },
      restore: {
        sourceRef: { namespace: other, name: "restore-src" },
        keys: [{ keyProtectorRef: { name: "restore-key" } }],
      },
    });
    const refused = await waitFor(
      "refused: not named back",
      () => db(ns, "not-named-back"),
      (o) => cond(o, "Restored")?.reason === "NotAllowedBySource",
    );
    expect(message(refused, "Restored")).toContain("does not list");
    await a.patch("EncryptedDatabase", other, "restore-src", {
      spec: { allowedRestoreTargets: [{ namespace: ns, name: "not-named-back" }] },
    });
    const restored = await waitFor(
      "restored once named back",
      () => db(ns, "not-named-back"),
      (o) => cond(o, "Restored")?.status === "True",
      FIX_MS,
    );
    expect(restored.status?.dekID).toBe(source.status?.dekID);
  });

  it.concurrent("R24 restore.keys: a restore lacking a key says which, and restores once a KeyProtector holding it is created", async () => {
    const material = pem();
    await importedKeyProtector(ns, "rk-src-key", material);
    await a.create("EncryptedServer", ns, "rk-server", {
      protector: { type: "ServiceManaged" },
      revalidation: "Automatic",
    });
    await a.create("EncryptedDatabase", ns, "rk-src", {
      serverRef: { name: "rk-server" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "rk-src-key" } },
    });
    await waitFor(
      "source Ready",
      () => db(ns, "rk-src"),
      (o) => cond(o, "Ready")?.status === "True",
    );
    await a.create("EncryptedDatabase", ns, "rk-restore", {
      serverRef: { name: "rk-server" },
      restore: { sourceRef: { name: "rk-src" }, keys: [{ keyProtectorRef: { name: "rk-late" } }] },
    });
    const refused = await waitFor(
      "MissingRestoreKeys",
      () => db(ns, "rk-restore"),
      (o) => cond(o, "Restored")?.reason === "MissingRestoreKeys",
    );
    expect(message(refused, "Restored")).toContain(
      `KeyProtector rk-late (spec.restore.keys) does not exist in namespace ${ns}: create it`,
    );
    // the same key material, in a KeyProtector of the name the restore gives
    await a.local.importKey(ns, "rk-late-kek", material);
    await a.create("KeyProtector", ns, "rk-late", {
      provider: "Local",
      local: { secretRef: { name: "rk-late-kek" } },
      requirements: { requireRecoverable: false },
    });
    await waitFor(
      "restored",
      () => db(ns, "rk-restore"),
      (o) => cond(o, "Restored")?.status === "True",
      FIX_MS,
    );
  });

  it.concurrent("R24 R25 envelopes: a restore of a dropped database whose envelope is missing restores once the envelope Secret is given back", async () => {
    const thumbprint = await createdKeyProtector(ns, "drop-key");
    await a.create("EncryptedServer", ns, "drop-server", {
      protector: { type: "ServiceManaged" },
      revalidation: "Automatic",
    });
    await a.create("EncryptedDatabase", ns, "dropped", {
      serverRef: { name: "drop-server" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "drop-key" } },
    });
    const before = await waitFor(
      "dropped Ready",
      () => db(ns, "dropped"),
      (o) => cond(o, "Ready")?.status === "True",
    );
    const secretName = before.status!.envelopeSecretName!;
    const backup = await a.core.readNamespacedSecret({ namespace: ns, name: secretName });
    await a.delete("EncryptedDatabase", ns, "dropped");
    await waitFor(
      "database gone",
      () =>
        db(ns, "dropped").then(
          () => false,
          () => true,
        ),
      (gone) => gone,
    );
    // a person deletes the retained envelope (it is not held once its owner is gone), and keeps a backup
    await waitFor(
      "envelope deletable",
      () =>
        a.core.deleteNamespacedSecret({ namespace: ns, name: secretName }).then(
          () => true,
          () => false,
        ),
      (deleted) => deleted,
    );
    await waitFor(
      "envelope gone",
      () =>
        a.core.readNamespacedSecret({ namespace: ns, name: secretName }).then(
          () => false,
          () => true,
        ),
      (gone) => gone,
    );
    await a.create("EncryptedDatabase", ns, "undropped", {
      serverRef: { name: "drop-server" },
      restore: { sourceRef: { name: "dropped" }, keys: [{ keyProtectorRef: { name: "drop-key" } }] },
    });
    await waitFor(
      "nothing to restore",
      () => db(ns, "undropped"),
      (o) => cond(o, "Restored")?.reason === "SourceNotFound",
    );
    await a.core.createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: {
          name: secretName,
          labels: backup.metadata?.labels,
          annotations: backup.metadata?.annotations,
        },
        type: backup.type,
        data: backup.data,
      },
    });
    const restored = await waitFor(
      "restored from the envelope given back",
      () => db(ns, "undropped"),
      (o) => cond(o, "Restored")?.status === "True",
      FIX_MS,
    );
    expect(restored.status?.dekID).toBe(before.status?.dekID);
    const envelope = await readEnvelope(a, ns, restored.status!.envelopeSecretName!);
    expect(envelope.kcv).toBe((await readEnvelope(a, ns, secretName)).kcv);
    expect(thumbprint).toBeTruthy();
  });

  it.concurrent("R19 R31 replication.primaryRef and the primary's secondaries: the secondary's refusal follows the primary (absent, then not listing it), and it links once the primary lists it", async () => {
    const material = pem();
    await importedKeyProtector(other, "geo-primary-key", material);
    await importedKeyProtector(ns, "geo-secondary-key", material);
    await a.create("EncryptedServer", ns, "dr-server", {
      protector: { type: "ServiceManaged" },
      revalidation: "Automatic",
    });
    await a.create("EncryptedDatabase", ns, "follower", {
      serverRef: { name: "dr-server" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "geo-secondary-key" } },
      replication: { role: "Secondary", primaryRef: { namespace: other, name: "leader" } },
    });
    await waitFor(
      "PrimaryNotFound",
      () => db(ns, "follower"),
      (o) => cond(o, "ReplicationLinked")?.reason === "PrimaryNotFound",
    );
    await a.create("EncryptedServer", other, "leader-server", { protector: { type: "ServiceManaged" } });
    await a.create("EncryptedDatabase", other, "leader", {
      serverRef: { name: "leader-server" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "geo-primary-key" } },
      replication: { role: "Primary", secondaries: [] },
    });
    const unlisted = await waitFor(
      "NotListedByPrimary",
      () => db(ns, "follower"),
      (o) => cond(o, "ReplicationLinked")?.reason === "NotListedByPrimary",
      FIX_MS,
    );
    expect(message(unlisted, "ReplicationLinked")).toContain("add it there");
    const primary = await waitFor(
      "primary Ready",
      () => db(other, "leader"),
      (o) => cond(o, "Ready")?.status === "True",
    );
    await a.patch("EncryptedDatabase", other, "leader", {
      spec: { replication: { role: "Primary", secondaries: [{ namespace: ns, name: "follower" }] } },
    });
    const linked = await waitFor(
      "secondary Available",
      () => db(ns, "follower"),
      (o) => o.status?.state === "Available",
      FIX_MS,
    );
    expect(linked.status?.dekID).toBe(primary.status?.dekID);
    expect(cond(linked, "Revalidated")?.status).toBe("True");
  });

  it.concurrent("R21 R10 the primary's rotation waits for a secondary whose KeyProtector for the new key is present but disabled, and both say so; enabling that key (its Secret only) lets the rotation through", async () => {
    const one = pem();
    const two = pem();
    await importedKeyProtector(other, "rot-p1", one);
    const t2 = await importedKeyProtector(other, "rot-p2", two);
    await importedKeyProtector(ns, "rot-s1", one);
    await importedKeyProtector(ns, "rot-s2", two);
    await a.local.setEnabled(ns, "rot-s2-kek", false);
    await waitFor(
      "rot-s2 disabled",
      () => kp(ns, "rot-s2"),
      (o) => cond(o, "Accessible")?.reason === "KeyDisabled",
      FIX_MS,
    );
    await a.create("EncryptedServer", other, "rot-server", { protector: { type: "ServiceManaged" } });
    await a.create("EncryptedServer", ns, "rot-dr", {
      protector: { type: "ServiceManaged" },
      revalidation: "Automatic",
    });
    await a.create("EncryptedDatabase", other, "rot-primary", {
      serverRef: { name: "rot-server" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "rot-p1" } },
      replication: { role: "Primary", secondaries: [{ namespace: ns, name: "rot-secondary" }] },
    });
    await a.create("EncryptedDatabase", ns, "rot-secondary", {
      serverRef: { name: "rot-dr" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "rot-s1" } },
      replication: { role: "Secondary", primaryRef: { namespace: other, name: "rot-primary" } },
    });
    await waitFor(
      "secondary Available",
      () => db(ns, "rot-secondary"),
      (o) => o.status?.state === "Available",
    );
    await a.patch("EncryptedDatabase", other, "rot-primary", {
      spec: { encryptionProtector: { keyProtectorRef: { name: "rot-p2" } } },
    });
    const blocked = await waitFor(
      "primary blocked",
      () => db(other, "rot-primary"),
      (o) =>
        cond(o, "RotationBlocked")?.reason === "SecondaryCannotUseKey" &&
        message(o, "RotationBlocked").includes("KeyDisabled"),
    );
    const says = message(blocked, "RotationBlocked");
    expect(says).toContain(`${ns}/rot-secondary`);
    expect(says).toContain(`KeyProtector rot-s2 in namespace ${ns} holds the key ${t2.slice(0, 12)}`);
    expect(says).toContain("Enable the key");
    expect(says).not.toContain("no KeyProtector");
    const secondary = await db(ns, "rot-secondary");
    expect(cond(secondary, "KeyListSynced")).toMatchObject({
      status: "False",
      reason: "KeyProtectorNotReady",
    });
    expect(message(secondary, "KeyListSynced")).toContain("KeyProtector rot-s2");
    expect(message(secondary, "KeyListSynced")).toContain("KeyDisabled");
    expect(message(secondary, "KeyListSynced")).not.toContain("no KeyProtector");

    await a.local.setEnabled(ns, "rot-s2-kek", true);
    await waitFor(
      "primary switched",
      () => db(other, "rot-primary"),
      (o) => o.status?.effectiveProtector?.thumbprint === t2,
      FIX_MS,
    );
    await waitFor(
      "secondary follows",
      () => db(ns, "rot-secondary"),
      (o) => o.status?.effectiveProtector?.thumbprint === t2,
      FIX_MS,
    );
  });
});

describe("#22 R23 a copy applied before its server starts Inaccessible, whatever it recorded while waiting", () => {
  it("R23 R11 a restore and a secondary applied before their server (revalidation Manual, a token copied in) are never Available until a new token", async () => {
    const states = await watchStates(ns);
    try {
      const material = pem();
      await importedKeyProtector(other, "copy-src-key", material);
      await importedKeyProtector(ns, "copy-key", material);
      await a.create("EncryptedServer", other, "copy-src-server", { protector: { type: "ServiceManaged" } });
      await a.create("EncryptedDatabase", other, "copy-primary", {
        serverRef: { name: "copy-src-server" },
        encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "copy-src-key" } },
        replication: { role: "Primary", secondaries: [{ namespace: ns, name: "early-secondary" }] },
        allowedRestoreTargets: [{ namespace: ns, name: "early-restore" }],
      });
      const primary = await waitFor(
        "primary Ready",
        () => db(other, "copy-primary"),
        (o) => cond(o, "Ready")?.status === "True",
      );
      await a.create("EncryptedDatabase", ns, "early-restore", {
        serverRef: { name: "copy-server" },
        restore: {
          sourceRef: { namespace: other, name: "copy-primary" },
          keys: [{ keyProtectorRef: { name: "copy-key" } }],
        },
      });
      await a.create("EncryptedDatabase", ns, "early-secondary", {
        serverRef: { name: "copy-server" },
        encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "copy-key" } },
        replication: { role: "Secondary", primaryRef: { namespace: other, name: "copy-primary" } },
      });
      for (const name of ["early-restore", "early-secondary"])
        await waitFor(
          `${name} waits Provisioning`,
          () => db(ns, name),
          (o) => o.status?.state === "Provisioning" && cond(o, "Ready")?.reason === "ServerNotFound",
        );
      await a.create("EncryptedServer", ns, "copy-server", {
        protector: { type: "ServiceManaged" },
        revalidation: "Manual",
        revalidationToken: "copied-from-elsewhere",
      });
      for (const name of ["early-restore", "early-secondary"]) {
        const held = await waitFor(
          `${name} Inaccessible`,
          () => db(ns, name),
          (o) => o.status?.state === "Inaccessible" && Boolean(o.status?.dekID),
          FIX_MS,
        );
        expect(held.status?.dekID).toBe(primary.status?.dekID);
        expect(cond(held, "Revalidated")).toMatchObject({
          status: "False",
          reason: "WaitingForRevalidation",
        });
        expect(message(held, "Revalidated")).toContain("server's spec.revalidationToken");
        expect(cond(held, "Ready")).toMatchObject({ status: "False", reason: "Inaccessible" });
        expect(message(held, "Ready")).toContain("a copy starts Inaccessible until it is revalidated");
        expect(held.status?.lastRevalidatedToken).toBe("copied-from-elsewhere");
      }
      await a.patch("EncryptedServer", ns, "copy-server", { spec: { revalidationToken: "go" } });
      for (const name of ["early-restore", "early-secondary"]) {
        const back = await waitFor(
          `${name} revalidated`,
          () => db(ns, name),
          (o) => o.status?.state === "Available",
          FIX_MS,
        );
        expect(cond(back, "Revalidated")).toMatchObject({ status: "True", reason: "Revalidated" });
        // every state it was ever seen in, from the watch (which may deliver Available a moment
        // after the read above saw it): never Available before Inaccessible
        const seen = await waitFor(
          `${name} Available on the watch`,
          async () => states.seen(name),
          (list) => list.includes("Available"),
          FIX_MS,
        );
        expect(seen).toEqual(["(none)", "Provisioning", "Inaccessible", "Available"]);
      }
    } finally {
      states.stop();
    }
  });
});
