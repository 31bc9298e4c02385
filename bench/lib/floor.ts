import { randomBytes } from "node:crypto";
import { API_VERSION } from "../../src/api/index.js";
import {
  ENVELOPE_LABEL,
  EncryptedDatabaseKind,
  EncryptedServerKind,
  SecretKind,
} from "../../src/controllers/resources.js";
import {
  addWrap,
  computeKcv,
  createEnvelope,
  type Envelope,
  encodeEnvelope,
  envelopeSecret,
  generateDek,
  newDekID,
} from "../../src/crypto/index.js";
import {
  EventRecorder,
  InformerFactory,
  type KubeObject,
  type ResourceKind,
} from "../../src/runtime/index.js";
import type { BenchCluster } from "./cluster.js";
import { pool } from "./util.js";

/**
 * What a convergence's floor may add to its four writes per DEK (`--floor-breakdown`), to tell
 * where the operator's seconds over the plain floor go.
 */
export interface FloorExtras {
  /** R12: the Event a new DEK's resource gets (DEKCreated), written beside its status as the operator does */
  events?: boolean;
  /**
   * The watches a convergence has open on its namespace: the operator's informers (resources,
   * servers, envelope Secrets) and the benchmark's own (resources, servers).
   */
  watches?: boolean;
}

/**
 * The API floor: what the same API server takes to accept the writes convergence (or a
 * rotation) needs when a plain client makes them with no KMS work, at the same client
 * concurrency, in a namespace the operator does not watch. Per DEK, convergence needs: create
 * the resource, add the finalizer, create the envelope Secret, write the status. A rotation
 * needs: read the envelope, replace it with the new wrap, write the status.
 */
export class ApiFloor {
  private readonly objects = new Map<string, KubeObject>();
  private readonly envelopes = new Map<string, Envelope>();

  constructor(
    private readonly cluster: BenchCluster,
    readonly namespace: string,
    private readonly concurrency: number,
  ) {}

  /** Milliseconds to make the writes of a convergence of `servers` + `databases` DEKs. */
  async convergence(
    servers: number,
    databases: number,
    extras: FloorExtras = {},
  ): Promise<{ ms: number; requests: number }> {
    const items: Array<{ kind: ResourceKind; name: string; spec: Record<string, unknown> }> = [];
    for (let i = 0; i < servers; i++)
      items.push({
        kind: EncryptedServerKind,
        name: `srv-${i}`,
        spec: { protector: { type: "ServiceManaged" } },
      });
    for (let j = 0; j < databases; j++)
      items.push({
        kind: EncryptedDatabaseKind,
        name: `db-${j}`,
        spec: { serverRef: { name: `srv-${j % Math.max(1, servers)}` } },
      });
    const watchers = extras.watches ? await this.watch() : [];
    const events = extras.events
      ? new EventRecorder(this.cluster.client, { component: "tde-floor" })
      : undefined;
    const before = this.requests();
    const started = Date.now();
    await pool(items, this.concurrency, async ({ kind, name, spec }) => {
      const ns = this.namespace;
      const client = this.cluster.client;
      await client.create(kind, ns, {
        apiVersion: API_VERSION,
        kind: kind.kind,
        metadata: { name, namespace: ns },
        spec,
      } as KubeObject);
      let obj = await client.patch(kind, ns, name, {
        metadata: { finalizers: ["tde.dev/envelope-protection"] },
      });
      const envelope = fakeEnvelope(ns, name);
      const secretName = `tde-floor-${name}`;
      await client.create(
        SecretKind,
        ns,
        envelopeSecret(ns, secretName, envelope, {
          labels: { [ENVELOPE_LABEL]: "true" },
        }) as unknown as KubeObject,
      );
      const event = events?.normal(
        obj,
        "DEKCreated",
        `database DEK ${envelope.dekID} created and wrapped by ${envelope.wraps[0]!.keyID}`,
      );
      obj = await client.replace(
        kind,
        ns,
        name,
        { ...obj, status: fakeStatus(kind, secretName, envelope, "v1") },
        { subresource: "status" },
      );
      await event;
      this.objects.set(`${kind.kind}/${name}`, obj);
      this.envelopes.set(`${kind.kind}/${name}`, envelope);
    });
    const ms = Date.now() - started;
    const requests = this.requests() - before;
    await Promise.all(watchers.map((w) => w.stop()));
    return { ms, requests };
  }

  /** The operator's informers and the benchmark's on this namespace, listed before the clock starts. */
  private async watch(): Promise<InformerFactory[]> {
    const client = this.cluster.client;
    const operator = new InformerFactory(client, { namespaces: [this.namespace] });
    const bench = new InformerFactory(client, { namespaces: [this.namespace] });
    for (const f of [operator, bench]) {
      f.for(EncryptedDatabaseKind);
      f.for(EncryptedServerKind);
    }
    operator.for(SecretKind, { labelSelector: `${ENVELOPE_LABEL}=true` });
    const factories = [operator, bench];
    for (const f of factories) f.start();
    await Promise.all(factories.flatMap((f) => f.all().map((i) => i.waitForSync(60_000))));
    return factories;
  }

  /** Milliseconds to re-wrap every DEK made by `convergence`: read, replace the envelope, write the status. */
  async rotation(): Promise<{ ms: number; requests: number; deks: number }> {
    const entries = [...this.objects.entries()];
    const before = this.requests();
    const started = Date.now();
    await pool(entries, this.concurrency, async ([id, obj]) => {
      const ns = this.namespace;
      const client = this.cluster.client;
      const name = obj.metadata?.name ?? "";
      const kind = obj.kind === "EncryptedServer" ? EncryptedServerKind : EncryptedDatabaseKind;
      const secretName = `tde-floor-${name}`;
      const secret = await client.get(SecretKind, ns, secretName);
      const rotated = addWrap(this.envelopes.get(id)!, {
        keyID: `local://${ns}/bench-key/v2`,
        thumbprint: randomBytes(32).toString("hex"),
        wrapped: randomBytes(256),
        role: "protector",
      });
      await client.replace(SecretKind, ns, secretName, {
        ...secret,
        data: encodeEnvelope(rotated),
      } as KubeObject);
      const updated = await client.replace(
        kind,
        ns,
        name,
        { ...obj, status: fakeStatus(kind, secretName, rotated, "v2") },
        { subresource: "status" },
      );
      this.objects.set(id, updated);
    });
    return { ms: Date.now() - started, requests: this.requests() - before, deks: entries.length };
  }

  private requests(): number {
    return Object.values(this.cluster.own).reduce((a, b) => a + b, 0);
  }
}

function fakeEnvelope(namespace: string, name: string): Envelope {
  const dek = generateDek();
  const envelope = createEnvelope(newDekID(), computeKcv(dek));
  dek.fill(0);
  return addWrap(envelope, {
    keyID: `local://${namespace}/bench-key/${name.length}`,
    thumbprint: randomBytes(32).toString("hex"),
    wrapped: randomBytes(256),
    role: "protector",
  });
}

/** A status of the size the operator writes: state, two conditions, envelope, DEK id and protector. */
function fakeStatus(kind: ResourceKind, secretName: string, envelope: Envelope, version: string) {
  const now = new Date().toISOString();
  const wrap = envelope.wraps.at(-1)!;
  const condition = (type: string) => ({
    type,
    status: "True",
    reason: type === "Ready" ? "Available" : "KeyAccessible",
    message: "the DEK is protected and its key is reachable",
    lastTransitionTime: now,
    observedGeneration: 1,
  });
  const protector = {
    type: "CustomerManaged",
    keyProtectorName: "bench-key",
    keyID: `${wrap.keyID}-${version}`,
    thumbprint: wrap.thumbprint,
    thumbprintShort: wrap.thumbprint.slice(0, 12),
  };
  return {
    observedGeneration: 1,
    state: "Available",
    conditions: [condition("Ready"), condition("KeyAccessible")],
    envelopeSecretName: secretName,
    dekID: envelope.dekID,
    ...(kind.kind === "EncryptedServer"
      ? { protector }
      : { effectiveProtector: { source: "Server", ...protector } }),
  };
}
