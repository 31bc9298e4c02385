import type { EncryptedDatabase, EncryptedServer, KeyProtector } from "../api/index.js";
import type { KeyReference } from "../kms/provider.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import type { RemoteReader } from "../remote/remote-reader.js";
import type { EventRecorder, Informer, KubeClient, KubeObject, StatusWriter } from "../runtime/index.js";
import type { Enforcer } from "../watchdog/enforcement.js";
import type { DekOperations } from "./dek-operations.js";
import type { ServiceManagedKey } from "./kek-resolution.js";
import type { Kube } from "./resources.js";

/** What the server and database reconcilers share: caches, writers and adapters, passed in by `operator.ts`. */
export interface ControllerContext {
  client: KubeClient;
  status: StatusWriter;
  events: EventRecorder;
  dek: DekOperations;
  enforcer: Enforcer;
  keyProtectors: Informer<Kube<KeyProtector>>;
  servers: Informer<Kube<EncryptedServer>>;
  databases: Informer<Kube<EncryptedDatabase>>;
  /** Secrets labelled tde.dev/envelope=true */
  envelopes: Informer<KubeObject>;
  smk: ServiceManagedKey;
  now: () => Date;
  /** R33: when each key was last probed (the prober's memory), to tell a stale KeyAccessible=True */
  probes?: { lastProbe(ref: KeyReference): Date | undefined; intervalMs: number; startedAt: Date };
  log: Logger;
  /** R16: how long a retained wrap is kept after nothing depends on it (default 2h) */
  retainedWrapRetentionMs?: number;
  metrics?: Metrics;
  /**
   * R19-R22 across clusters: the read-only reader of other clusters, the name other clusters know
   * this one by (--cluster-name), and how long a remote read is reused (a linked database looks
   * again that often: no event tells of a change in another cluster).
   */
  remote?: { reader: RemoteReader; clusterName?: string | undefined; ttlMs: number };
}
