import {
  API_VERSION,
  type EncryptedDatabase,
  type EncryptedServer,
  type KeyProtector,
} from "../../src/api/index.js";
import {
  EncryptedDatabaseKind,
  EncryptedServerKind,
  KeyProtectorKind,
  type Kube,
} from "../../src/controllers/resources.js";
import { LocalKeyProvider } from "../../src/kms/local.js";
import { InformerFactory, type KubeObject } from "../../src/runtime/index.js";
import type { BenchCluster } from "./cluster.js";
import { pool } from "./util.js";

export interface WorkloadShape {
  namespace: string;
  servers: number;
  keys: number;
  databases: number;
  /** keyAccessGracePeriod of every server */
  grace: string;
  /** client-side concurrency of the benchmark's own creates */
  concurrency: number;
  /** the KeyProtector spec of key i; default a Local key in a Secret (created by createKeys) */
  keyProtector?: (i: number) => Record<string, unknown>;
}

type Conditioned = { status?: { conditions?: { type: string; status: string }[] } };
export const conditionIs = (o: Conditioned, type: string, status: string) =>
  o.status?.conditions?.some((c) => c.type === type && c.status === status) ?? false;

export const keyName = (i: number) => `bench-key-${i}`;
export const serverName = (i: number) => `srv-${i}`;
export const databaseName = (i: number) => `db-${i}`;
/** server i uses key i mod K; database j sits on server j mod N */
export const keyOfServer = (shape: WorkloadShape, i: number) => i % shape.keys;

/**
 * The benchmark's workload in one namespace: K Local keys each with a KeyProtector, N servers
 * with customer-managed keys spread over them, M databases inheriting their server's key. The
 * benchmark watches it through its own informers (no polling lists).
 */
export class Workload {
  readonly local: LocalKeyProvider;
  readonly informers: InformerFactory;
  readonly keyProtectors;
  readonly servers;
  readonly databases;

  constructor(
    private readonly cluster: BenchCluster,
    readonly shape: WorkloadShape,
  ) {
    this.local = new LocalKeyProvider(cluster.core);
    this.informers = new InformerFactory(cluster.client, { namespaces: [shape.namespace] });
    this.keyProtectors = this.informers.for<Kube<KeyProtector>>(KeyProtectorKind);
    this.servers = this.informers.for<Kube<EncryptedServer>>(EncryptedServerKind);
    this.databases = this.informers.for<Kube<EncryptedDatabase>>(EncryptedDatabaseKind);
  }

  async watch(): Promise<void> {
    this.informers.start();
    await Promise.all(this.informers.all().map((i) => i.waitForSync(60_000)));
  }

  async stopWatching(): Promise<void> {
    await this.informers.stop();
  }

  /** The Local keys (2048 bits: key generation is not what is measured). */
  async createKeys(): Promise<void> {
    const { namespace, keys } = this.shape;
    await pool(
      Array.from({ length: keys }, (_, i) => i),
      4,
      async (i) => {
        await this.local.createKey(namespace, keyName(i), { size: 2048 });
        this.cluster.countOwn("POST secrets");
      },
    );
  }

  /** Everything at once: KeyProtectors, servers and databases, as fast as the client can. */
  async createAll(): Promise<void> {
    const { namespace, keys, servers, databases, concurrency, grace } = this.shape;
    const objects: KubeObject[] = [];
    for (let i = 0; i < keys; i++) {
      objects.push(
        this.object(
          "KeyProtector",
          keyName(i),
          this.shape.keyProtector?.(i) ?? { provider: "Local", local: { secretRef: { name: keyName(i) } } },
        ),
      );
    }
    for (let i = 0; i < servers; i++) {
      objects.push(
        this.object("EncryptedServer", serverName(i), {
          protector: {
            type: "CustomerManaged",
            keyProtectorRef: { name: keyName(keyOfServer(this.shape, i)) },
          },
          keyAccessGracePeriod: grace,
          revalidation: "Automatic",
          enforcement: "None",
        }),
      );
    }
    for (let j = 0; j < databases; j++) {
      objects.push(
        this.object("EncryptedDatabase", databaseName(j), { serverRef: { name: serverName(j % servers) } }),
      );
    }
    const kinds = {
      KeyProtector: KeyProtectorKind,
      EncryptedServer: EncryptedServerKind,
      EncryptedDatabase: EncryptedDatabaseKind,
    };
    await pool(objects, concurrency, async (o) => {
      await this.cluster.client.create(kinds[o.kind as keyof typeof kinds], namespace, o);
    });
  }

  object(kind: string, name: string, spec: Record<string, unknown>): KubeObject {
    return {
      apiVersion: API_VERSION,
      kind,
      metadata: { name, namespace: this.shape.namespace },
      spec,
    } as KubeObject;
  }

  counts() {
    const dbs = this.databases.list();
    const srvs = this.servers.list();
    return {
      databasesReady: dbs.filter((d) => conditionIs(d, "Ready", "True")).length,
      serversReady: srvs.filter((s) => conditionIs(s, "Ready", "True")).length,
      keyProtectorsReady: this.keyProtectors.list().filter((k) => conditionIs(k, "Ready", "True")).length,
    };
  }

  allReady(): boolean {
    const c = this.counts();
    return (
      c.databasesReady === this.shape.databases &&
      c.serversReady === this.shape.servers &&
      c.keyProtectorsReady >= this.shape.keys
    );
  }

  progress(): string {
    const c = this.counts();
    return `databases Ready ${c.databasesReady}/${this.shape.databases}, servers ${c.serversReady}/${this.shape.servers}, KeyProtectors ${c.keyProtectorsReady}/${this.shape.keys}`;
  }

  /** Servers (by name) whose key is key `k`, and the databases on them. */
  dependantsOfKey(k: number): { servers: Set<string>; databases: Set<string> } {
    const servers = new Set<string>();
    for (let i = 0; i < this.shape.servers; i++)
      if (keyOfServer(this.shape, i) === k) servers.add(serverName(i));
    const databases = new Set<string>();
    for (let j = 0; j < this.shape.databases; j++)
      if (servers.has(serverName(j % this.shape.servers))) databases.add(databaseName(j));
    return { servers, databases };
  }
}
