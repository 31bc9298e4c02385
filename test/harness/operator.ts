import * as k8s from "@kubernetes/client-node";
import type { OperatorConfig } from "../../src/config.js";
import { LocalKeyProvider } from "../../src/kms/local.js";
import { DefaultKmsRegistry, type KekProvider, type KmsRegistry } from "../../src/kms/provider.js";
import { createLogger, type Logger, type LogLevel, silentLogger } from "../../src/observability/logger.js";
import { Metrics } from "../../src/observability/metrics.js";
import { localKeyCache, Operator } from "../../src/operator.js";
import type { ApiCall } from "../../src/runtime/index.js";
import { testKubeConfig } from "./kube.js";
import { canaryLogSink, recordDek, recordMetrics } from "./leak-scan.js";

export interface TestOperator {
  operator: Operator;
  metrics: Metrics;
  /** Counters of what the operator asked of the KMS and the API server since the last reset. */
  counts: { kms: Record<string, number>; writes: ApiCall[] };
  /** every request the API server refused with 403 since the start (never reset): what RBAC lacks */
  refused: ApiCall[];
  resetCounts(): void;
  stop(): Promise<void>;
}

export interface TestOperatorOptions {
  watchNamespaces: string[];
  operatorNamespace: string;
  probeIntervalMs?: number;
  /** wraps the Local provider, e.g. to inject a failure at one step */
  wrapLocal?: (local: KekProvider) => KekProvider;
  /** run as another user (e.g. the chart's ServiceAccount) instead of the harness's admin */
  kubeConfig?: k8s.KubeConfig;
  /** prom-client's process and Node.js metrics too, as the operator's /metrics serves them (default off) */
  defaultMetrics?: boolean;
  /** every log line of the operator at `logLevel` (default info), as a person on call reads it */
  logSink?: (line: string) => void;
  logLevel?: LogLevel;
  /** R7: --service-managed-key (default: the operator's own Local key) */
  serviceManagedKey?: { namespace: string; name: string };
  /** R16: --retained-wrap-retention in ms (default 2h) */
  retainedWrapRetentionMs?: number;
  /** R19: the cluster this operator runs in when not the harness's (an admin kubeconfig of it: another control plane) */
  cluster?: k8s.KubeConfig;
  /** R19, R31: --cluster-name, the name other clusters list this one's secondaries with */
  clusterName?: string;
  /** --remote-read-ttl in ms (default 10s) */
  remoteReadTtlMs?: number;
  /** an Azure Key Vault provider (e.g. against Lowkey Vault), counted like the Local one; default none */
  azure?: KekProvider;
}

/**
 * The operator run in-process against the harness's real API server, scoped to the test's own
 * namespaces (test files run in parallel, each with its own operator), counting KMS calls and
 * API writes so tests can assert a quiet steady state.
 */
export async function startTestOperator(options: TestOperatorOptions): Promise<TestOperator> {
  const admin: k8s.KubeConfig = options.cluster ?? testKubeConfig();
  const kc: k8s.KubeConfig = options.kubeConfig ?? admin;
  const core = admin.makeApiClient(k8s.CoreV1Api);
  for (const ns of [options.operatorNamespace, ...options.watchNamespaces]) {
    try {
      await core.createNamespace({ body: { metadata: { name: ns } } });
    } catch (error) {
      if ((error as { code?: number }).code !== 409) throw error;
    }
  }
  const counts = { kms: {} as Record<string, number>, writes: [] as ApiCall[] };
  const refused: ApiCall[] = [];
  const local = new LocalKeyProvider(kc.makeApiClient(k8s.CoreV1Api));
  const counting = (inner: KekProvider): KekProvider => {
    const counted = <T>(op: string, call: () => Promise<T>): Promise<T> => {
      counts.kms[op] = (counts.kms[op] ?? 0) + 1;
      return call();
    };
    return {
      name: inner.name,
      describe: (r) => counted("describe", () => inner.describe(r)),
      listVersions: (r) => counted("list", () => inner.listVersions(r)),
      // a wrap pinned to a key id is DEK work (recorded for the run-wide leak scan, before the
      // caller can zero it); a probe's round trip wraps random bytes with the key's reference
      wrap: (r, d) => {
        if (r.keyID) recordDek(d);
        return counted(r.keyID ? "dekWrap" : "wrap", () => inner.wrap(r, d));
      },
      unwrap: (r, w) => counted("unwrap", () => inner.unwrap(r, w)),
    };
  };
  const provider = counting(options.wrapLocal ? options.wrapLocal(local) : local);
  const kms: KmsRegistry = new DefaultKmsRegistry({
    local: provider,
    ...(options.azure ? { azure: counting(options.azure) } : {}),
  });
  const config: OperatorConfig = {
    kubeconfig: undefined,
    operatorNamespace: options.operatorNamespace,
    watchNamespaces: options.watchNamespaces,
    probeIntervalMs: options.probeIntervalMs ?? 1_000,
    workers: 4,
    kmsRateLimit: 0,
    kmsConcurrency: 16,
    logLevel: "warn",
    metricsPort: 0,
    leaderElection: false,
    leaseName: "tde-test",
    identity: "test",
    ...(options.serviceManagedKey ? { serviceManagedKey: options.serviceManagedKey } : {}),
    ...(options.retainedWrapRetentionMs === undefined
      ? {}
      : { retainedWrapRetentionMs: options.retainedWrapRetentionMs }),
    ...(options.clusterName ? { clusterName: options.clusterName } : {}),
    ...(options.remoteReadTtlMs === undefined ? {} : { remoteReadTtlMs: options.remoteReadTtlMs }),
  };
  const metrics = new Metrics({ defaultMetrics: options.defaultMetrics ?? false });
  // debug level, into the run directory for the run-wide leak scan (and to stderr with TDE_TEST_LOG)
  const sink = canaryLogSink(`operator-${options.operatorNamespace}`);
  const toStderr = Boolean(process.env.TDE_TEST_LOG);
  const debugLog =
    sink || toStderr
      ? createLogger("debug", {}, (line) => {
          sink?.write(line);
          if (toStderr) process.stderr.write(`${line}\n`);
        })
      : silentLogger;
  const log = options.logSink
    ? tee(debugLog, createLogger(options.logLevel ?? "info", {}, options.logSink))
    : debugLog;
  const operator = new Operator({
    config,
    kubeConfig: kc,
    log,
    metrics,
    kms,
    apiObserver: (call) => {
      if (call.verb !== "get" && call.verb !== "list" && call.verb !== "discover") counts.writes.push(call);
      if (call.code === 403) refused.push(call);
    },
  });
  // as the operator wires its own provider: wraps and unwraps read keys from its informer
  local.useKeyCache(localKeyCache(operator.localKeys));
  operator.startInformers();
  const running = operator.run();
  running.catch(() => {});
  return {
    operator,
    metrics,
    counts,
    refused,
    resetCounts() {
      counts.kms = {};
      counts.writes = [];
    },
    async stop() {
      await operator.stop();
      await running.catch(() => {});
      recordMetrics(`operator-${options.operatorNamespace}`, await metrics.registry.metrics());
      sink?.close();
    },
  };
}

/** One logger writing to both. */
function tee(a: Logger, b: Logger): Logger {
  const both =
    (level: "debug" | "info" | "warn" | "error") => (msg: string, fields?: Record<string, unknown>) => {
      a[level](msg, fields);
      b[level](msg, fields);
    };
  return {
    debug: both("debug"),
    info: both("info"),
    warn: both("warn"),
    error: both("error"),
    child: (fields) => tee(a.child(fields), b.child(fields)),
  };
}
