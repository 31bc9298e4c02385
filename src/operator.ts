import type { EncryptedDatabase, EncryptedServer, KeyProtector } from "./api/index.js";
import { API_VERSION } from "./api/index.js";
import type { OperatorConfig } from "./config.js";
import type { ControllerContext } from "./controllers/context.js";
import { DekOperations } from "./controllers/dek-operations.js";
import { deletionBlockedMessage } from "./controllers/deletion-protection.js";
import {
  BY_KEY_PROTECTOR,
  envelopeDependants,
  keyProtectorDependants,
  keyProtectorIndexValue,
  localKeyDependants,
  SERVICE_MANAGED_KEY_PROTECTOR,
} from "./controllers/dependants.js";
import { reportsEnvelopeLoss } from "./controllers/envelope-stall.js";
import { envelopeCacheForm } from "./controllers/envelope-summary.js";
import type { ServiceManagedKey } from "./controllers/kek-resolution.js";
import { keyReferenceOf } from "./controllers/key-reference.js";
import { probeIsStale } from "./controllers/key-to-watch.js";
import { KeyProtectorReconciler } from "./controllers/keyprotector-reconciler.js";
import {
  ENVELOPE_LABEL,
  EncryptedDatabaseKind,
  EncryptedServerKind,
  envelopeSecretName,
  KeyProtectorKind,
  type Kube,
  LOCAL_KEY_LABEL,
  SecretKind,
} from "./controllers/resources.js";
import { SecretProtectionReconciler } from "./controllers/secret-protection.js";
import { setupDatabaseController, setupServerController } from "./controllers/setup.js";
import { AzureKeyVaultProvider } from "./kms/azure-key-vault.js";
import { azureProviderOptions } from "./kms/azure-settings.js";
import { withLatency } from "./kms/latency.js";
import { withLimits } from "./kms/limits.js";
import { type LocalKeyCache, LocalKeyProvider, SERVICE_MANAGED_KEY_NAME } from "./kms/local.js";
import { type SecretObject, secretsOverKubeClient } from "./kms/local-secrets.js";
import { DefaultKmsRegistry, type KmsRegistry } from "./kms/provider.js";
import type { Logger } from "./observability/logger.js";
import type { Metrics } from "./observability/metrics.js";
import {
  type ApiObserver,
  Controller,
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
    const kmsLimits = { concurrency: config.kmsConcurrency, ratePerSecond: config.kmsRateLimit };
    const kms =
      options.kms ??
      new DefaultKmsRegistry({
        // benchmarks: a vault's round trip added to every Local call (--local-kms-latency)
        local: withLimits(withLatency(this.local, config.localKmsLatencyMs ?? 0), kmsLimits),
        azure: withLimits(
          new AzureKeyVaultProvider({
            ...azureProviderOptions(config.azure),
            readSecret: async (namespace, name, key) => {
              const secret = await this.client.get<KubeObject & { data?: Record<string, string> }>(
                SecretKind,
                namespace,
                name,
              );
              const value = secret.data?.[key];
              if (value === undefined) throw new Error(`Secret ${namespace}/${name} has no key ${key}`);
              return Buffer.from(value, "base64").toString("utf8");
            },
          }),
          kmsLimits,
        ),
        observe: (o) =>
          metrics.kmsDuration.observe(
            { provider: o.provider, operation: o.operation, result: o.outcome },
            o.seconds,
          ),
      });
    this.prober = new KeyProber(kms, {
      intervalMs: config.probeIntervalMs,
      now,
      onProbe: (ref, outcome) =>
        metrics.keyProbes.inc({
          provider: ref.provider,
          result: outcome.access.ok ? "ok" : outcome.access.reason,
        }),
    });
    this.smk = { namespace: config.operatorNamespace, keyProtectorName: SERVICE_MANAGED_KEY_PROTECTOR };
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
      ...(config.retainedWrapRetentionMs === undefined
        ? {}
        : { retainedWrapRetentionMs: config.retainedWrapRetentionMs }),
    };
    const observer =
      (name: string) =>
      (r: {
        result: string;
        durationMs: number;
        error?: unknown;
        key: { namespace: string; name: string };
      }) => {
        metrics.reconciles.inc({ controller: name, result: r.result });
        metrics.reconcileDuration.observe({ controller: name }, r.durationMs / 1000);
        if (r.result === "error" || r.result === "terminal") {
          log.warn("reconcile failed", {
            controller: name,
            namespace: r.key.namespace,
            name: r.key.name,
            error: r.error,
          });
        }
      };

    const kpController = new Controller({
      name: "keyprotector",
      observer: observer("keyprotector"),
      concurrency: Math.max(1, Math.min(config.workers, 8)),
      reconciler: new KeyProtectorReconciler({
        keyProtectors: this.keyProtectors,
        status,
        prober: this.prober,
        probeIntervalMs: config.probeIntervalMs,
        now,
        log,
        createLocalKey: async (namespace, name, size) => {
          try {
            await this.local.createKey(namespace, name, { size });
          } catch (error) {
            if ((error as { code?: number }).code !== 409) throw error;
          }
        },
        onAccessChange: (kp, accessible, reason, message) => {
          if (accessible) void events.normal(kp, "KeyAccessible", message);
          else void events.warning(kp, reason, message);
        },
        client: this.client,
        dependants: (kp) => keyProtectorDependants(kp, this.servers.store, this.databases.store),
        keySecretBlocked: (kp) => this.keySecretBlocked(kp),
        warn: (kp, reason, message) => void events.warning(kp, reason, message),
        onGone: (key) => {
          // R28: a KeyProtector that is gone exports no key metrics (they would go stale)
          const labels = { namespace: key.namespace, keyprotector: key.name };
          metrics.keyAccessible.remove(labels);
          metrics.keyAccessLostSeconds.remove(labels);
          metrics.keyExpiry.remove(labels);
        },
        onProbed: (kp, st) => {
          const labels = { namespace: kp.metadata.namespace ?? "", keyprotector: kp.metadata.name ?? "" };
          const ok = st.conditions?.find((c) => c.type === "Accessible")?.status === "True";
          metrics.keyAccessible.set(labels, ok ? 1 : 0);
          metrics.keyAccessLostSeconds.set(
            labels,
            st.keyAccessLostSince ? (now().getTime() - Date.parse(st.keyAccessLostSince)) / 1000 : 0,
          );
          if (st.expiresOn) metrics.keyExpiry.set(labels, Date.parse(st.expiresOn) / 1000);
        },
      }),
    })
      .watchPrimary(
        this.keyProtectors,
        ({ type, old, obj }) =>
          type !== "update" ||
          old?.metadata.generation !== obj.metadata.generation ||
          Boolean(old?.metadata.deletionTimestamp) !== Boolean(obj.metadata.deletionTimestamp),
      )
      // R33: a KeyProtector whose deletion waits looks again when a dependant changes or goes,
      // and one whose Local KEK Secret's deletion waits shows it
      .watch(this.servers, (s) => this.deletingKeyProtectors(s.metadata.namespace))
      .watch(this.databases, (d) => this.deletingKeyProtectors(d.metadata.namespace))
      .watch(this.localKeys, (secret) => this.keyProtectorsNaming(secret));

    // R33: envelope Secrets and Local KEK Secrets are held while something depends on them
    const envelopeProtection = new Controller({
      name: "envelope-protection",
      observer: observer("envelope-protection"),
      concurrency: Math.max(1, Math.min(config.workers, 4)),
      reconciler: new SecretProtectionReconciler({
        client: this.client,
        secrets: this.envelopes,
        events,
        subject: (secret) => `the envelope Secret ${secret.metadata?.namespace}/${secret.metadata?.name}`,
        dependants: (secret) => envelopeDependants(secret, this.servers.store, this.databases.store),
        // an envelope retained after its owner was deleted is not held (a person may delete it)
        protects: (secret) => envelopeDependants(secret, this.servers.store, this.databases.store).length > 0,
        advice:
          "Delete the resource that uses it (its deletionPolicy then decides), or leave the envelope in place",
      }),
    })
      .watchPrimary(this.envelopes)
      // an owner that goes (or starts going) lets its envelope go; its other changes do not matter here
      .watch(this.servers, (s) => [envelopeKey(s, "EncryptedServer")], ownerLeaving)
      .watch(this.databases, (d) => [envelopeKey(d, "EncryptedDatabase")], ownerLeaving);
    const localKeyProtection = new Controller({
      name: "local-key-protection",
      observer: observer("local-key-protection"),
      concurrency: 1,
      reconciler: new SecretProtectionReconciler({
        client: this.client,
        secrets: this.localKeys,
        events,
        subject: (secret) => `the Local KEK Secret ${secret.metadata?.namespace}/${secret.metadata?.name}`,
        dependants: (secret) => localKeyDependants(secret, this.keyProtectors.store, this.envelopes.store),
        advice:
          "Point the KeyProtectors at another key and let their dependants re-wrap, delete them, or delete the envelopes; deleting the key material would make those DEKs undecryptable",
      }),
    })
      .watchPrimary(this.localKeys)
      .watch(this.keyProtectors, (kp) => localKeyOf(kp))
      .watch(this.envelopes, () => this.deletingLocalKeys());

    const serverController = setupServerController(ctx, {
      observer: observer("encryptedserver"),
      concurrency: config.workers,
    });
    const databaseController = setupDatabaseController(ctx, {
      observer: observer("encrypteddatabase"),
      concurrency: config.workers,
    });

    this.controllers = [
      kpController,
      serverController,
      databaseController,
      envelopeProtection,
      localKeyProtection,
    ];
    metrics.setStateSource(() => stateCounts(this.servers, this.databases));
    metrics.setEnvelopeLossSource(() => envelopeLossCounts(this.servers, this.databases));
    metrics.setRotationSource(() => ({
      EncryptedServer: this.servers.store.list(),
      EncryptedDatabase: this.databases.store.list(),
    }));
    this.workqueueGauge = setInterval(() => {
      for (const c of this.controllers) metrics.workqueueDepth.set({ controller: c.name }, c.queue.depth);
    }, 5_000);
    this.workqueueGauge.unref();
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
      const value = keyProtectorIndexValue(kp);
      for (const s of this.servers.store.byIndex(BY_KEY_PROTECTOR, value))
        serverController?.enqueue(keyOfObj(s));
      for (const d of this.databases.store.byIndex(BY_KEY_PROTECTOR, value))
        databaseController?.enqueue(keyOfObj(d));
    }
  }

  /** KeyProtectors being deleted that a change in this namespace may release (and the service-managed one). */
  private deletingKeyProtectors(namespace: string | undefined) {
    const smk = this.keyProtectors.store.get(this.smk.namespace, this.smk.keyProtectorName);
    return [...this.keyProtectors.store.list(namespace), ...(smk ? [smk] : [])]
      .filter((kp) => kp.metadata.deletionTimestamp)
      .map((kp) => keyOfObj(kp));
  }

  /** The KeyProtectors that name a Local KEK Secret. */
  private keyProtectorsNaming(secret: KubeObject) {
    return this.keyProtectors.store
      .list(secret.metadata?.namespace)
      .filter((kp) => kp.spec.provider === "Local" && kp.spec.local?.secretRef.name === secret.metadata?.name)
      .map((kp) => keyOfObj(kp));
  }

  /** Local KEK Secrets being deleted: an envelope's change may release them. */
  private deletingLocalKeys() {
    return this.localKeys.store
      .list()
      .filter((s) => s.metadata?.deletionTimestamp)
      .map((s) => ({ namespace: s.metadata?.namespace ?? "", name: s.metadata?.name ?? "" }));
  }

  /** R33: why the deletion of a Local KeyProtector's KEK Secret waits, when it does. */
  private keySecretBlocked(kp: Kube<KeyProtector>): string | undefined {
    if (kp.spec.provider !== "Local" || !kp.spec.local) return undefined;
    const secret = this.localKeys.store.get(kp.metadata.namespace ?? "", kp.spec.local.secretRef.name);
    if (!secret?.metadata?.deletionTimestamp) return undefined;
    return deletionBlockedMessage(
      `the Local KEK Secret ${secret.metadata.namespace}/${secret.metadata.name}`,
      localKeyDependants(secret, this.keyProtectors.store, this.envelopes.store),
      "Point this KeyProtector's dependants at another key (their DEKs are re-wrapped online), then delete this KeyProtector",
    );
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
    this.probeClock.startedAt = (this.options.now ?? (() => new Date()))();
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

  private async ensureServiceManagedKey(): Promise<void> {
    const ns = this.options.config.operatorNamespace;
    await this.local.ensureServiceManagedKey(ns, SERVICE_MANAGED_KEY_NAME);
    try {
      await this.client.get(KeyProtectorKind, ns, SERVICE_MANAGED_KEY_PROTECTOR);
      return; // a restart writes nothing
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
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

function envelopeKey(
  o: { metadata: { namespace?: string; name?: string } },
  kind: "EncryptedServer" | "EncryptedDatabase",
) {
  return { namespace: o.metadata.namespace ?? "", name: envelopeSecretName(kind, o.metadata.name ?? "") };
}

function ownerLeaving({ type, obj }: { type: string; obj: KubeObject }): boolean {
  return type === "delete" || Boolean(obj.metadata?.deletionTimestamp);
}

function localKeyOf(kp: Kube<KeyProtector>) {
  return kp.spec.provider === "Local" && kp.spec.local
    ? [{ namespace: kp.metadata.namespace ?? "", name: kp.spec.local.secretRef.name }]
    : [];
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
