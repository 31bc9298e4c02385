/**
 * R7 R9 R16: the service-managed key where the platform keeps it, against the real API server.
 * The operator (in-process, Local provider) starts on its own Local service-managed key, which it
 * reports as a single point of loss; its Secret is backed up, lost and restored as
 * docs/operating.md says; then `--service-managed-key` names another KeyProtector and every
 * service-managed DEK moves online, the old wrap kept until the last DEK has the new one (one DEK
 * is held back by refusing the unwrap of its old wrap); finally a setting that names a missing
 * KeyProtector, or one whose key is disabled, moves nothing. Every DEK keeps its id and KCV.
 */
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KeyProtector } from "../../../src/api/index.js";
import { type Envelope, protectorWrap } from "../../../src/crypto/index.js";
import { type KekProvider, KeyAccessError } from "../../../src/kms/provider.js";
import { startTestOperator, type TestOperator, type TestOperatorOptions } from "../../harness/operator.js";
import {
  type Api,
  api,
  cond,
  createLocalKeyProtector,
  type EncryptedDatabase,
  type EncryptedServer,
  envelopeOfResource,
  kc,
  type ResourceKind,
  recordedProtector,
  suffix,
  unwrapsWithKcv,
  waitFor,
} from "./helpers.js";

const id = suffix();
const ns = `int-smk-${id}`;
const opNs = `int-smk-op-${id}`;
const RETENTION_MS = 2_000;
const OWN = "tde-service-managed"; // the operator's own KeyProtector, its KEK in Secret tde-service-managed-key
const OWN_SECRET = "tde-service-managed-key";
const NEXT = "platform-kek"; // the KeyProtector the setting names next (its KEK in Secret platform-kek)
const mergePatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

/** Refuses (Throttled, a transient KMS error) every unwrap of the wrapped bytes it holds; probes unwrap other bytes. */
class HeldUnwraps {
  private readonly held = new Set<string>();
  refused = 0;
  hold(wrapped: string): void {
    this.held.add(wrapped);
  }
  release(): void {
    this.held.clear();
  }
  readonly wrap = (inner: KekProvider): KekProvider => ({
    name: inner.name,
    describe: (r) => inner.describe(r),
    listVersions: (r) => inner.listVersions(r),
    wrap: (r, d) => inner.wrap(r, d),
    unwrap: async (r, w) => {
      if (this.held.has(w.toString("base64"))) {
        this.refused += 1;
        throw new KeyAccessError(
          "Throttled",
          "injected: the vault throttled the unwrap of one DEK's old wrap",
        );
      }
      return inner.unwrap(r, w);
    },
  });
}

const held = new HeldUnwraps();
const logs: string[] = [];
let a: Api;
let op: TestOperator;

type Kind = ResourceKind;
const SERVERS = ["s1", "s2", "s3"];
const DATABASES = [
  { name: "d1", server: "s1" },
  { name: "d2", server: "s2", extra: true }, // a second wrap under a tenant's key (R13)
  { name: "d3", server: "s3" },
];
const all = (): [Kind, string][] => [
  ...SERVERS.map((s) => ["EncryptedServer", s] as [Kind, string]),
  ...DATABASES.map((d) => ["EncryptedDatabase", d.name] as [Kind, string]),
  ["EncryptedDatabase", "d4"],
];
const get = (kind: Kind, name: string) => a.get<EncryptedServer | EncryptedDatabase>(kind, ns, name);
const envelopeOf = (kind: Kind, name: string) => envelopeOfResource(a, kind, ns, name);
const recorded = recordedProtector;
const kp = (namespace: string, name: string) => a.get<KeyProtector>("KeyProtector", namespace, name);

async function start(options: Partial<TestOperatorOptions> = {}) {
  op = await startTestOperator({
    watchNamespaces: [ns],
    operatorNamespace: opNs,
    retainedWrapRetentionMs: RETENTION_MS,
    wrapLocal: held.wrap,
    logSink: (line) => logs.push(line),
    logLevel: "warn",
    ...options,
  });
}

async function restart(options: Partial<TestOperatorOptions> = {}) {
  await op.stop();
  await start(options);
}

/** The gauge's samples as the operator exports them. */
async function gauge(): Promise<Record<string, number>> {
  const text = await op.metrics.registry.metrics();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^tde_service_managed_single_point_of_loss\{kind="(\w+)"\} (\d+)$/gm))
    out[m[1]!] = Number(m[2]);
  return out;
}

/** Events of a reason about a KeyProtector of the operator's namespace, counting repeats. */
async function events(name: string, reason: string): Promise<number> {
  const list = await a.core.listNamespacedEvent({
    namespace: opNs,
    fieldSelector: `involvedObject.kind=KeyProtector,involvedObject.name=${name},reason=${reason}`,
  });
  return list.items.reduce((sum, e) => sum + (e.count ?? 1), 0);
}

async function reconcilesOfKeyProtectors(): Promise<number> {
  const text = await op.metrics.registry.metrics();
  return [...text.matchAll(/^tde_reconcile_total\{controller="keyprotector",result="\w+"\} (\d+)$/gm)].reduce(
    (sum, m) => sum + Number(m[1]),
    0,
  );
}

/** Each resource's DEK as first seen: id and KCV never change (R4). */
const deks = new Map<string, { dekID: string; kcv: string }>();
const snapshot = (e: Envelope) => e.wraps.map((w) => `${w.role}:${w.thumbprint}`).sort();

beforeAll(async () => {
  a = api(kc());
  await start();
});

afterAll(async () => {
  await op?.stop();
});

describe("R7 R9 R16 the service-managed key where the platform keeps it (--service-managed-key)", () => {
  it("R7 the Local service-managed key is a single point of loss: SinglePointOfLoss=True on its KeyProtector, one Warning event, the gauge counts the DEKs on it alone", async () => {
    await createLocalKeyProtector(a, ns, "extra");
    for (const s of SERVERS)
      await a.create("EncryptedServer", ns, s, { protector: { type: "ServiceManaged" } });
    for (const d of DATABASES)
      await a.create("EncryptedDatabase", ns, d.name, {
        serverRef: { name: d.server },
        ...(d.extra ? { keys: [{ keyProtectorRef: { name: "extra" } }] } : {}),
      });
    for (const [kind, name] of all().slice(0, -1))
      await waitFor(
        `${kind} ${name} Ready`,
        () => get(kind, name),
        (o) => cond(o, "Ready")?.status === "True",
      );

    const own = await waitFor(
      "SinglePointOfLoss=True on the service-managed key's KeyProtector",
      () => kp(opNs, OWN),
      (o) => cond(o, "SinglePointOfLoss")?.status === "True",
    );
    const condition = own.status?.conditions?.find((c) => c.type === "SinglePointOfLoss");
    expect(condition?.reason).toBe("OnlyWrappedByLocalKey");
    expect(condition?.message).toContain(`Secret ${opNs}/${OWN_SECRET}`);
    expect(condition?.message).toContain(
      `deleting that Secret or the namespace ${opNs} makes them unrecoverable`,
    );
    expect(condition?.message).toContain("--service-managed-key");
    expect(cond(own, "Ready")?.status).toBe("True"); // a warning, not a fault of the key
    // d2 has a second wrap under the tenant's key "extra", kept outside the operator's namespace
    await waitFor("the gauge", gauge, (g) => g.EncryptedServer === 3 && g.EncryptedDatabase === 2);
    await waitFor(
      "the Warning event",
      () => events(OWN, "OnlyWrappedByLocalKey"),
      (n) => n >= 1,
    );

    // once per transition: another DEK on it alone changes neither the condition nor the events
    await a.create("EncryptedDatabase", ns, "d4", { serverRef: { name: "s1" } });
    await waitFor(
      "d4 Ready",
      () => get("EncryptedDatabase", "d4"),
      (o) => cond(o, "Ready")?.status === "True",
    );
    await waitFor("the gauge with d4", gauge, (g) => g.EncryptedDatabase === 3);
    // its envelope woke the KeyProtector; three probe intervals of reconciles of both KeyProtectors after that
    const reconciled = await reconcilesOfKeyProtectors();
    await waitFor(
      "the KeyProtectors reconciled since",
      reconcilesOfKeyProtectors,
      (n) => n >= reconciled + 6,
    );
    expect(await events(OWN, "OnlyWrappedByLocalKey")).toBe(1);
    expect((await kp(opNs, OWN)).status?.conditions?.find((c) => c.type === "SinglePointOfLoss")).toEqual(
      condition,
    );

    const thumbprint = own.status?.thumbprint;
    for (const [kind, name] of all()) {
      const e = await envelopeOf(kind, name);
      expect(protectorWrap(e)?.thumbprint, `${kind} ${name}`).toBe(thumbprint);
      deks.set(`${kind}/${name}`, { dekID: e.dekID, kcv: e.kcv });
    }
  });

  it("R7 its Secret backed up, lost and restored (docs/operating.md): the operator makes no new key in its place, and every DEK unwraps again", async () => {
    // the backup: the Secret as kubectl get -o yaml shows it, less what the API server assigns
    const secret = await a.core.readNamespacedSecret({ namespace: opNs, name: OWN_SECRET });
    const backup = {
      metadata: {
        name: OWN_SECRET,
        namespace: opNs,
        labels: secret.metadata?.labels ?? {},
        annotations: secret.metadata?.annotations ?? {},
      },
      type: secret.type,
      data: secret.data,
    };
    await op.stop();
    // lost: deleted, and its in-use finalizer (R33) taken off by hand
    await a.core.deleteNamespacedSecret({ namespace: opNs, name: OWN_SECRET });
    await a.core.patchNamespacedSecret(
      { namespace: opNs, name: OWN_SECRET, body: { metadata: { finalizers: null } } },
      mergePatch,
    );
    await waitFor(
      "the Secret gone",
      () =>
        a.core.readNamespacedSecret({ namespace: opNs, name: OWN_SECRET }).then(
          () => "present",
          () => "gone",
        ),
      (s) => s === "gone",
    );
    await start();
    await waitFor(
      "its KeyProtector reporting KeyNotFound",
      () => kp(opNs, OWN),
      (o) => cond(o, "Accessible")?.reason === "KeyNotFound",
    );
    const absent = await a.core.readNamespacedSecret({ namespace: opNs, name: OWN_SECRET }).then(
      () => "a new Secret was made",
      () => "absent",
    );
    expect(absent).toBe("absent");
    expect(logs.some((l) => l.includes("restore the Secret from its backup"))).toBe(true);
    await waitFor(
      "s1 sees the key lost (within its grace period)",
      () => get("EncryptedServer", "s1"),
      (o) => cond(o, "KeyAccessible")?.status === "False" && o.status?.state === "Available",
    );

    // restored: the backup applied as it was
    await a.core.createNamespacedSecret({ namespace: opNs, body: backup });
    await waitFor(
      "its KeyProtector accessible again",
      () => kp(opNs, OWN),
      (o) => cond(o, "Ready")?.status === "True",
    );
    for (const [kind, name] of all()) {
      await waitFor(
        `${kind} ${name} KeyAccessible again`,
        () => get(kind, name),
        (o) => cond(o, "KeyAccessible")?.status === "True" && o.status?.state === "Available",
      );
      const e = await envelopeOf(kind, name);
      expect({ dekID: e.dekID, kcv: e.kcv }).toEqual(deks.get(`${kind}/${name}`));
      expect(await unwrapsWithKcv(a, e, opNs, OWN_SECRET)).toBe(true);
    }
  });

  it("R16 --service-managed-key naming another KeyProtector re-wraps every service-managed DEK online; the old wrap is kept until every DEK has the new one; no DEK lost", async () => {
    const old = (await kp(opNs, OWN)).status?.thumbprint ?? "";
    const next = (await createLocalKeyProtector(a, opNs, NEXT)).status?.thumbprint ?? "";
    expect(next).not.toBe(old);
    // s3 is held back: the unwrap of its old wrap fails (transiently) until released
    const s3 = await envelopeOf("EncryptedServer", "s3");
    held.hold(protectorWrap(s3)?.wrapped ?? "");
    await restart({ serviceManagedKey: { namespace: opNs, name: NEXT } });

    const moving = all().filter(([, name]) => name !== "s3");
    const onNew = async () => {
      const out: Record<string, Envelope> = {};
      for (const [kind, name] of moving) out[name] = await envelopeOf(kind, name);
      return out;
    };
    await waitFor(
      "every DEK but s3's re-wrapped under the new key, the old wrap retained",
      onNew,
      (es) =>
        Object.values(es).every(
          (e) =>
            protectorWrap(e)?.thumbprint === next &&
            e.wraps.some((w) => w.thumbprint === old && w.role === "retained"),
        ),
      60_000,
    );
    for (const [kind, name] of moving) {
      const o = await waitFor(
        `${kind} ${name} on the new key`,
        () => get(kind, name),
        (r) => recorded(r)?.thumbprint === next,
      );
      expect(recorded(o)?.type).toBe("ServiceManaged");
    }
    const stuck = await waitFor(
      "s3's re-wrap failing, retried, its DEK under the old key",
      () => get("EncryptedServer", "s3"),
      (o) => cond(o, "Ready")?.reason === "Throttled",
    );
    expect(stuck.status?.state).toBe("Available");
    expect(stuck.status?.conditions?.find((c) => c.type === "Ready")?.message).toContain(
      "the DEK stays under its current protector",
    );
    expect(protectorWrap(await envelopeOf("EncryptedServer", "s3"))?.thumbprint).toBe(old);

    // while s3 is under the old key, no moved DEK loses its old wrap, though its retention window
    // (2 s) passes several times over: the hold, not the window, keeps it
    const movedAt = Date.now();
    while (Date.now() - movedAt < 4 * RETENTION_MS) {
      for (const [kind, name] of moving) {
        const e = await envelopeOf(kind, name);
        expect(
          e.wraps.some((w) => w.thumbprint === old),
          `${kind} ${name} kept its wrap under the old key while s3 is still under it`,
        ).toBe(true);
      }
      expect(protectorWrap(await envelopeOf("EncryptedServer", "s3"))?.thumbprint).toBe(old);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(held.refused).toBeGreaterThanOrEqual(2); // retried, not given up
    // the old KeyProtector is no longer the service-managed key: no condition there
    await waitFor(
      "the old KeyProtector without SinglePointOfLoss",
      () => kp(opNs, OWN),
      (o) => !cond(o, "SinglePointOfLoss"),
    );

    held.release();
    await waitFor(
      "s3 re-wrapped under the new key",
      () => get("EncryptedServer", "s3"),
      (o) => recorded(o)?.thumbprint === next && cond(o, "Ready")?.status === "True",
      60_000,
    );
    // every DEK has the new wrap: now the old wraps go, once their window has passed
    await waitFor(
      "the old wraps pruned",
      async () => Promise.all(all().map(([kind, name]) => envelopeOf(kind, name))),
      (es) => es.every((e) => !e.wraps.some((w) => w.thumbprint === old)),
      60_000,
    );
    for (const [kind, name] of all()) {
      const o = await get(kind, name);
      expect(o.status?.state, `${kind} ${name}`).toBe("Available");
      expect(cond(o, "Ready")?.status, `${kind} ${name}`).toBe("True");
      const e = await envelopeOf(kind, name);
      expect({ dekID: e.dekID, kcv: e.kcv }, `${kind} ${name}: the same DEK`).toEqual(
        deks.get(`${kind}/${name}`),
      );
      expect(protectorWrap(e)?.thumbprint).toBe(next);
      expect(await unwrapsWithKcv(a, e, opNs, NEXT)).toBe(true);
    }
    // d2 keeps its extra key (R13)
    expect((await envelopeOf("EncryptedDatabase", "d2")).wraps).toHaveLength(2);
  });

  it("R7 the warning follows the setting to the new Local key, once each: and a DEK stops counting once it has a second wrap kept elsewhere", async () => {
    const next = await waitFor(
      "SinglePointOfLoss=True on the new service-managed key's KeyProtector",
      () => kp(opNs, NEXT),
      (o) => cond(o, "SinglePointOfLoss")?.status === "True",
    );
    expect(next.status?.conditions?.find((c) => c.type === "SinglePointOfLoss")?.message).toContain(
      `Secret ${opNs}/${NEXT}`,
    );
    await waitFor("the gauge", gauge, (g) => g.EncryptedServer === 3 && g.EncryptedDatabase === 3);
    await waitFor(
      "its Warning event",
      () => events(NEXT, "OnlyWrappedByLocalKey"),
      (n) => n >= 1,
    );
    expect(await events(NEXT, "OnlyWrappedByLocalKey")).toBe(1);
    expect(await events(OWN, "OnlyWrappedByLocalKey")).toBe(1);

    for (const d of ["d1", "d3", "d4"])
      await a.patch("EncryptedDatabase", ns, d, { spec: { keys: [{ keyProtectorRef: { name: "extra" } }] } });
    await waitFor(
      "the databases off the gauge",
      gauge,
      (g) => g.EncryptedServer === 3 && g.EncryptedDatabase === 0,
    );
    // the servers still depend on it alone
    expect(cond(await kp(opNs, NEXT), "SinglePointOfLoss")?.status).toBe("True");
  });

  it("R7 R9 a setting naming a KeyProtector that does not exist, or whose key is disabled, moves nothing: Ready names the setting and the fix, every DEK stays under its key, Available", async () => {
    const before = new Map<string, string[]>();
    for (const [kind, name] of all()) before.set(name, snapshot(await envelopeOf(kind, name)));
    const next = (await kp(opNs, NEXT)).status?.thumbprint;

    await restart({ serviceManagedKey: { namespace: opNs, name: "absent" } });
    for (const [kind, name] of all()) {
      const o = await waitFor(
        `${kind} ${name}: Ready=False naming the setting`,
        () => get(kind, name),
        (r) => cond(r, "Ready")?.reason === "KeyProtectorNotFound",
      );
      const message = o.status?.conditions?.find((c) => c.type === "Ready")?.message ?? "";
      expect(message).toContain(`KeyProtector ${opNs}/absent`);
      expect(message).toContain("--service-managed-key");
      expect(message).toContain("create it, or set the setting back");
      expect(o.status?.state).toBe("Available");
      expect(cond(o, "KeyAccessible")?.status).toBe("True"); // the key protecting the DEK is still watched
      expect(recorded(o)?.thumbprint).toBe(next);
    }
    expect(logs.some((l) => l.includes(`KeyProtector ${opNs}/absent, does not exist`))).toBe(true);

    await a.local.createKey(opNs, "disabled-kek", { size: 2048 });
    await a.local.setEnabled(opNs, "disabled-kek", false);
    await a.create("KeyProtector", opNs, "disabled", {
      provider: "Local",
      local: { secretRef: { name: "disabled-kek" } },
    });
    await restart({ serviceManagedKey: { namespace: opNs, name: "disabled" } });
    await waitFor(
      "the disabled key's KeyProtector probed",
      () => kp(opNs, "disabled"),
      (o) => cond(o, "Accessible")?.status === "False",
    );
    for (const [kind, name] of all()) {
      const o = await waitFor(
        `${kind} ${name}: Ready=False, the new key cannot take DEKs`,
        () => get(kind, name),
        (r) => cond(r, "Ready")?.reason === "KeyProtectorNotReady",
      );
      expect(o.status?.conditions?.find((c) => c.type === "Ready")?.message).toContain(
        "--service-managed-key",
      );
      expect(o.status?.state).toBe("Available");
      expect(cond(o, "KeyAccessible")?.status).toBe("True");
    }
    expect(op.counts.kms.dekWrap ?? 0).toBe(0); // nothing was wrapped under any key
    for (const [kind, name] of all()) {
      const e = await envelopeOf(kind, name);
      expect(snapshot(e), `${kind} ${name}: its wraps untouched`).toEqual(before.get(name));
      expect({ dekID: e.dekID, kcv: e.kcv }).toEqual(deks.get(`${kind}/${name}`));
      expect(await unwrapsWithKcv(a, e, opNs, NEXT)).toBe(true);
    }
  });
});
