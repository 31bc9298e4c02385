import type { EncryptedDatabase, EncryptedServer, KeyProtector } from "./api/index.js";
import { API_VERSION } from "./api/index.js";
import type { OperatorConfig } from "./config.js";
import type { ControllerContext } from "./controllers/context.js";
import { DekOperations } from "./controllers/dek-operations.js";
import { dependantsIn, SERVICE_MANAGED_KEY_PROTECTOR } from "./controllers/dependants.js";
import { reportsEnvelopeLoss } from "./controllers/envelope-stall.js";
import { envelopeCacheForm } from "./controllers/envelope-summary.js";
import { SERVICE_MANAGED_KEY_SETTING, type ServiceManagedKey } from "./controllers/kek-resolution.js";
import { keyReferenceOf } from "./controllers/key-reference.js";
import { probeIsStale } from "./controllers/key-to-watch.js";
import { setupKeyProtectorController } from "./controllers/keyprotector-setup.js";
import {
  ENVELOPE_LABEL,
  EncryptedDatabaseKind,
  EncryptedServerKind,
  KeyProtectorKind,
  type Kube,
  LOCAL_KEY_LABEL,
  SecretKind,
} from "./controllers/resources.js";
import { setupEnvelopeProtection, setupLocalKeyProtection } from "./controllers/secret-protection-setup.js";
import { indexKeyProtectors, setupDatabaseController, setupServerController } from "./controllers/setup.js";
import { SinglePointOfLossWatch } from "./controllers/single-point-of-loss.js";
import { AzureKeyVaultProvider } from "./kms/azure-key-vault.js";
import { azureProviderOptions } from "./kms/azure-settings.js";
import { withLatency } from "./kms/latency.js";
import { withLimits } from "./kms/limits.js";
import { type LocalKeyCache, LocalKeyProvider, SERVICE_MANAGED_KEY_NAME } from "./kms/local.js";
import { type SecretObject, secretsOverKubeClient } from "./kms/local-secrets.js";
import { DefaultKmsRegistry, type KmsRegistry } from "./kms/provider.js";
import { secretValueReader } from "./kms/secret-value.js";
import type { Logger } from "./observability/logger.js";
import type { Metrics } from "./observability/metrics.js";
import { reconcileObserver } from "./observability/reconcile-observer.js";
import { RemoteClusters } from "./remote/remote-reader.js";
import {
  type ApiObserver,
  type Controller,
  DEFAULT_SYNC_TIMEOUT_MS,
  EventRecorder,
  HttpKubeClient,
  type Informer,
  InformerFactory,
  isAlreadyExists,
  isNotFound,
  type KubeClient,
  type KubeObject,
  StatusWriter,
} from "./runtime/index.js";
import type { KubeEndpoint } from "./runtime/kube-connection.js";
import { Enforcer } from "./watchdog/enforcement.js";
import { KeyProber } from "./watchdog/prober.js";

export { SERVICE_MANAGED_KEY_PROTECTOR };

export interface OperatorOptions {
  config: OperatorConfig;
  /** the API server and credentials (our KubeConnection, or client-node's KubeConfig) */
  kubeConfig: KubeEndpoint;
  log: Logger;
  metrics: Metrics;
  /** replaces the KMS registry (tests give the Local provider an artificial latency) */
  kms?: KmsRegistry;
  /** told of every API call the controllers make (tests count writes) */
  apiObserver?: ApiObserver;
  now?: () => Date;
}

/**
 * Wires the operator: one API client, shared informers, the three controllers, the key prober
 * and the service-managed key. `start` runs the controllers (call it when leading); informers
 * are started first so a standby replica has warm caches.
 */
export class Operator {
  readonly client: KubeClient;
  readonly informers: InformerFactory;
  readonly keyProtectors: Informer<Kube<KeyProtector>>;
  readonly servers: Informer<Kube<EncryptedServer>>;
  readonly databases: Informer<Kube<EncryptedDatabase>>;
  readonly envelopes: Informer<KubeObject>;
  /** Secrets labelled tde.dev/local-key=true: the Local provider's KEKs (R7), for their protection (R33) */
  readonly localKeys: Informer<KubeObject>;
  readonly controllers: Controller[];
  readonly local: LocalKeyProvider;
  readonly prober: KeyProber;
  private readonly smk: ServiceManagedKey;

  constructor(private readonly options: OperatorOptions) {
    const { config, kubeConfig, log, metrics } = options;
    const now = options.now ?? (() => new Date());
    this.client = new HttpKubeClient(
      kubeConfig,
      options.apiObserver ? { observer: options.apiObserver } : {},
    );
    const namespaces =
      config.watchNamespaces.length > 0
        ? [...new Set([...config.watchNamespaces, config.operatorNamespace])]
        : undefined;
    this.informers = new InformerFactory(this.client, {
      ...(namespaces ? { namespaces } : {}),
      observer: (signal) => {
        if (signal.type === "error" || signal.type === "handler-error")
          log.warn("informer trouble", { signal: signal.type, error: (signal as { error?: unknown }).error });
        else if (signal.type === "watch-ended" && signal.reason === "gone")
          log.info("watch expired (410 Gone): relisting", { namespace: signal.namespace });
      },
    });
    this.keyProtectors = this.informers.for<Kube<KeyProtector>>(KeyProtectorKind);
    indexKeyProtectors(this.keyProtectors.store);
    this.servers = this.informers.for<Kube<EncryptedServer>>(EncryptedServerKind);
    this.databases = this.informers.for<Kube<EncryptedDatabase>>(EncryptedDatabaseKind);
    // envelopes are cached as summaries (no wrapped bytes): an unwrap reads its envelope whole
    this.envelopes = this.informers.for<KubeObject>(SecretKind, {
      labelSelector: `${ENVELOPE_LABEL}=true`,
      transform: envelopeCacheForm,
    });
    this.localKeys = this.informers.for<KubeObject>(SecretKind, { labelSelector: `${LOCAL_KEY_LABEL}=true` });

    // the Local provider's "vault" calls: a client of their own, bounded by the provider's timeout
    const keyClient = new HttpKubeClient(kubeConfig, {
      requestTimeoutMs: LocalKeyProvider.DEFAULT_REQUEST_TIMEOUT_MS,
    });
    this.local = new LocalKeyProvider(secretsOverKubeClient(keyClient), {
      keyCache: localKeyCache(this.localKeys),
    });
    const kms = options.kms ?? this.kmsRegistry();
    this.prober = new KeyProber(kms, {
      intervalMs: config.probeIntervalMs,
      now,
      onProbe: (ref, outcome) =>
        metrics.keyProbes.inc({
          provider: ref.provider,
          result: outcome.access.ok ? "ok" : outcome.access.reason,
        }),
    });
    this.smk = serviceManagedKeyOf(config);
    const prober = this.prober;
    this.probeClock = {
      lastProbe: (ref) => prober.lastProbe(ref),
      intervalMs: config.probeIntervalMs,
      // set when the controllers start (a standby replica has probed nothing, and that is not staleness)
      startedAt: new Date(8.64e15),
    };
    const status = new StatusWriter(this.client, { fieldManager: "tde-operator" });
    const events = new EventRecorder(this.client, {
      component: "tde-operator",
      instance: config.identity,
      onError: (error) => log.debug("event not recorded", { error }),
      // R28: every Event is a log line too (Normal at info, Warning at warn), for whoever is on call
      log,
    });
    const ctx: ControllerContext = {
      client: this.client,
      status,
      events,
      dek: new DekOperations(kms, this.client),
      enforcer: new Enforcer(this.client, { holdIntervalMs: config.probeIntervalMs }),
      keyProtectors: this.keyProtectors,
      servers: this.servers,
      databases: this.databases,
      envelopes: this.envelopes,
      smk: this.smk,
      now,
      probes: this.probeClock,
      log,
      metrics,
      remote: remoteOf(config, this.client, metrics),
      ...(config.retainedWrapRetentionMs === undefined
        ? {}
        : { retainedWrapRetentionMs: config.retainedWrapRetentionMs }),
    };
    // R7: the Local service-managed key as a single point of loss, read from the caches
    const singlePointOfLoss = new SinglePointOfLossWatch({
      envelopes: this.envelopes.store,
      keyProtectors: this.keyProtectors.store,
      smk: this.smk,
    });
    this.controllers = this.setupControllers(ctx, singlePointOfLoss);
    metrics.setStateSource(() => stateCounts(this.servers, this.databases));
    metrics.setEnvelopeLossSource(() => envelopeLossCounts(this.servers, this.databases));
    metrics.setSinglePointOfLossSource(() => singlePointOfLoss.counts());
    metrics.setRotationSource(() => ({
      EncryptedServer: this.servers.store.list(),
      EncryptedDatabase: this.databases.store.list(),
    }));
    this.workqueueGauge = setInterval(() => {
      for (const c of this.controllers) metrics.workqueueDepth.set({ controller: c.name }, c.queue.depth);
    }, 5_000);
    this.workqueueGauge.unref();
  }

  /** The KMS registry: the Local provider and Azure Key Vault, each behind the operator's KMS limits, timed as metrics. */
  private kmsRegistry(): KmsRegistry {
    const { config, metrics } = this.options;
    const kmsLimits = { concurrency: config.kmsConcurrency, ratePerSecond: config.kmsRateLimit };
    return new DefaultKmsRegistry({
      // benchmarks: a vault's round trip added to every Local call (--local-kms-latency)
      local: withLimits(withLatency(this.local, config.localKmsLatencyMs ?? 0), kmsLimits),
      azure: withLimits(
        new AzureKeyVaultProvider({
          ...azureProviderOptions(config.azure),
          readSecret: secretValueReader(this.client),
        }),
        kmsLimits,
      ),
      observe: (o) =>
        metrics.kmsDuration.observe(
          { provider: o.provider, operation: o.operation, result: o.outcome },
          o.seconds,
        ),
    });
  }

  /** The five controllers, each set up beside its reconciler with the indexes and watches it relies on. */
  private setupControllers(ctx: ControllerContext, singlePointOfLoss: SinglePointOfLossWatch): Controller[] {
    const { config, metrics, log } = this.options;
    const observer = reconcileObserver(metrics, log);
    const kpController = setupKeyProtectorController(
      {
        ctx,
        localKeys: this.localKeys,
        prober: this.prober,
        probeIntervalMs: config.probeIntervalMs,
        operatorNamespace: config.operatorNamespace,
        createLocalKey: async (namespace, name, size) => {
          try {
            await this.local.createKey(namespace, name, { size });
          } catch (error) {
            if ((error as { code?: number }).code !== 409) throw error;
          }
        },
        singlePointOfLoss,
      },
      { observer: observer("keyprotector"), concurrency: Math.max(1, Math.min(config.workers, 8)) },
    );
    // R33: envelope Secrets and Local KEK Secrets are held while something depends on them
    const envelopeProtection = setupEnvelopeProtection(ctx, {
      name: "envelope-protection",
      observer: observer("envelope-protection"),
      workers: config.workers,
    });
    const localKeyProtection = setupLocalKeyProtection(ctx, this.localKeys, {
      name: "local-key-protection",
      observer: observer("local-key-protection"),
      workers: config.workers,
    });

    const serverController = setupServerController(ctx, {
      observer: observer("encryptedserver"),
      concurrency: config.workers,
    });
    const databaseController = setupDatabaseController(ctx, {
      observer: observer("encrypteddatabase"),
      concurrency: config.workers,
    });

    return [kpController, serverController, databaseController, envelopeProtection, localKeyProtection];
  }

  private readonly workqueueGauge: NodeJS.Timeout;
  private readonly probeClock: NonNullable<ControllerContext["probes"]>;
  private staleSweep: NodeJS.Timeout | undefined;

  /**
   * R33: a key whose probes stopped would leave its dependants showing the last KeyAccessible it
   * saw. Once per probe interval, the dependants of every key not probed for two intervals are
   * reconciled (they then say Unknown) and its KeyProtector is woken. Nothing happens for keys
   * probed on time (no API call, no write).
   */
  private sweepStaleProbes(): void {
    const now = (this.options.now ?? (() => new Date()))();
    for (const kp of this.keyProtectors.store.list()) {
      const lastProbe = this.prober.lastProbe(keyReferenceOf(kp));
      const stale = probeIsStale({
        lastProbe,
        now,
        intervalMs: this.probeClock.intervalMs,
        startedAt: this.probeClock.startedAt,
      });
      if (!stale) continue;
      const [kpController, serverController, databaseController] = this.controllers;
      kpController?.enqueue(keyOfObj(kp));
      for (const s of dependantsIn(kp, this.servers.store, this.smk)) serverController?.enqueue(keyOfObj(s));
      for (const d of dependantsIn(kp, this.databases.store, this.smk))
        databaseController?.enqueue(keyOfObj(d));
    }
  }

  /** Starts the informers (safe on a standby replica: read-only). */
  startInformers(): void {
    this.informers.start();
  }

  hasSynced(): boolean {
    return this.informers.all().every((i) => i.hasSynced());
  }

  /** Creates the service-managed key and its KeyProtector if missing, then runs the controllers until stopped. */
  async run(): Promise<void> {
    await this.ensureServiceManagedKey();
    // R33: the staleness clock starts once the caches are full, when the KeyProtectors can first be
    // probed: a restart that lists 20,000 objects for longer than two probe intervals has probed
    // nothing yet, and that is not staleness (it flipped every dependant to Unknown and back)
    const startClock = () => {
      this.probeClock.startedAt = (this.options.now ?? (() => new Date()))();
    };
    Promise.all(this.informers.all().map((i) => i.waitForSync(DEFAULT_SYNC_TIMEOUT_MS))).then(
      startClock,
      startClock,
    );
    this.staleSweep = setInterval(() => this.sweepStaleProbes(), this.probeClock.intervalMs);
    this.staleSweep.unref();
    await Promise.all(this.controllers.map((c) => c.start()));
  }

  async stop(): Promise<void> {
    clearInterval(this.workqueueGauge);
    clearInterval(this.staleSweep);
    await Promise.all(this.controllers.map((c) => c.stop()));
    await this.informers.stop();
  }

  private async getIfExists<T extends KubeObject>(
    kind: Parameters<KubeClient["get"]>[0],
    namespace: string,
    name: string,
  ): Promise<T | undefined> {
    try {
      return await this.client.get<T>(kind, namespace, name);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /**
   * R7: the operator's own Local key and its KeyProtector, created on first start (a key its
   * KeyProtector once resolved is never made anew: a lost Secret is restored from its backup),
   * unless the setting names another KeyProtector: that one is the platform's to create (the
   * operator creates nothing then, and says when it is missing).
   */
  private async ensureServiceManagedKey(): Promise<void> {
    const ns = this.options.config.operatorNamespace;
    if (this.smk.configured) {
      try {
        await this.client.get(KeyProtectorKind, this.smk.namespace, this.smk.keyProtectorName);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        this.options.log.warn(
          `the service-managed key, KeyProtector ${this.smk.namespace}/${this.smk.keyProtectorName}, does not exist: create it, or change ${SERVICE_MANAGED_KEY_SETTING}; no DEK moves until it is Ready`,
          { namespace: this.smk.namespace, name: this.smk.keyProtectorName },
        );
      }
      return;
    }
    const kp = await this.getIfExists<Kube<KeyProtector>>(
      KeyProtectorKind,
      ns,
      SERVICE_MANAGED_KEY_PROTECTOR,
    );
    if (kp?.status?.keyID && !(await this.getIfExists(SecretKind, ns, SERVICE_MANAGED_KEY_NAME))) {
      // R7: a key that resolved once is never replaced (new material would unwrap no DEK, and a
      // restored backup would then collide with it): its KeyProtector reports KeyNotFound until then
      this.options.log.error(
        `the service-managed key's Secret ${ns}/${SERVICE_MANAGED_KEY_NAME} is gone while KeyProtector ${ns}/${SERVICE_MANAGED_KEY_PROTECTOR} recorded its key ${kp.status.keyID}: restore the Secret from its backup (docs/operating.md, "The service-managed key"); no new key is made in its place`,
        { namespace: ns, name: SERVICE_MANAGED_KEY_NAME },
      );
    } else {
      await this.local.ensureServiceManagedKey(ns, SERVICE_MANAGED_KEY_NAME);
    }
    if (kp) return; // a restart writes nothing
    try {
      await this.client.create(KeyProtectorKind, ns, {
        apiVersion: API_VERSION,
        kind: "KeyProtector",
        metadata: {
          name: SERVICE_MANAGED_KEY_PROTECTOR,
          namespace: ns,
          labels: { "app.kubernetes.io/managed-by": "tde-operator" },
        },
        spec: { provider: "Local", local: { secretRef: { name: SERVICE_MANAGED_KEY_NAME } } },
      });
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
  }
}

/**
 * R7: the service-managed key the config names: its KeyProtector, else the operator's own Local
 * one in its namespace (naming that one explicitly is the same as the default).
 */
export function serviceManagedKeyOf(
  config: Pick<OperatorConfig, "operatorNamespace" | "serviceManagedKey">,
): ServiceManagedKey {
  const own = { namespace: config.operatorNamespace, name: SERVICE_MANAGED_KEY_PROTECTOR };
  const named = config.serviceManagedKey ?? own;
  const configured = named.namespace !== own.namespace || named.name !== own.name;
  return {
    namespace: named.namespace,
    keyProtectorName: named.name,
    operatorNamespace: config.operatorNamespace,
    ...(configured ? { configured: true } : {}),
  };
}

/**
 * R7, R16: the Local provider's wraps and unwraps read their key Secret from the informer of Local
 * KEK Secrets while its watch is open (a disabled or deleted version stops working when the watch
 * delivers the change), and from the API server otherwise.
 */
export function localKeyCache(informer: Informer<KubeObject>): LocalKeyCache {
  return {
    get: (namespace, name) =>
      informer.isWatching() ? (informer.store.get(namespace, name) as SecretObject | undefined) : undefined,
  };
}

function keyOfObj(o: { metadata: { namespace?: string; name?: string } }) {
  return { namespace: o.metadata.namespace ?? "", name: o.metadata.name ?? "" };
}

function stateCounts(servers: Informer<Kube<EncryptedServer>>, databases: Informer<Kube<EncryptedDatabase>>) {
  const counts = new Map<string, number>();
  for (const [kind, list] of [
    ["EncryptedServer", servers.store.list()],
    ["EncryptedDatabase", databases.store.list()],
  ] as const) {
    for (const o of list) {
      const key = `${kind}\u0000${o.status?.state ?? "Provisioning"}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return [...counts].map(([k, count]) => {
    const [kind, state] = k.split("\u0000") as [string, string];
    return { kind, state, count };
  });
}

/** R2: resources whose recorded DEK's envelope is lost, by kind and reason (tde_envelopes_lost). */
function envelopeLossCounts(
  servers: Informer<Kube<EncryptedServer>>,
  databases: Informer<Kube<EncryptedDatabase>>,
) {
  const counts = new Map<string, { kind: string; reason: string; count: number }>();
  for (const [kind, list] of [
    ["EncryptedServer", servers.store.list()],
    ["EncryptedDatabase", databases.store.list()],
  ] as const) {
    for (const o of list) {
      if (!reportsEnvelopeLoss(o.status?.conditions)) continue;
      const reason = o.status?.conditions?.find((c) => c.type === "Ready")?.reason ?? "";
      const entry = counts.get(`${kind}/${reason}`) ?? { kind, reason, count: 0 };
      entry.count += 1;
      counts.set(`${kind}/${reason}`, entry);
    }
  }
  return [...counts.values()];
}

/** R19-R22 across clusters: the read-only reader of the clusters named by kubeconfig Secrets of the operator's namespace. */
function remoteOf(config: OperatorConfig, client: KubeClient, metrics: Metrics): ControllerContext["remote"] {
  const ttlMs = config.remoteReadTtlMs ?? 10_000;
  return {
    reader: new RemoteClusters({
      local: client,
      operatorNamespace: config.operatorNamespace,
      ttlMs,
      metrics,
    }),
    clusterName: config.clusterName,
    ttlMs,
  };
}
