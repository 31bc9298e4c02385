import { parseArgs } from "node:util";
import { parseDuration } from "./api/duration.js";
import {
  AZURE_SETTING_FLAGS,
  AZURE_SETTINGS_USAGE,
  type AzureSettings,
  parseAzureSettings,
} from "./kms/azure-settings.js";
import type { LogLevel } from "./observability/logger.js";

/** Everything the operator process can be told, from flags or the environment (flags win). */
export interface OperatorConfig {
  /** kubeconfig file; empty: in-cluster config, then the default kubeconfig */
  kubeconfig: string | undefined;
  /** namespace of the operator itself: its service-managed KEK and its Lease live here */
  operatorNamespace: string;
  /** namespaces to watch; empty: all */
  watchNamespaces: string[];
  probeIntervalMs: number;
  workers: number;
  /** upper bound on KMS calls per second across all keys (0: unbounded) */
  kmsRateLimit: number;
  /** maximum KMS calls in flight */
  kmsConcurrency: number;
  /** artificial latency added to every Local provider call, in ms (benchmarks: a vault's round trip); 0: none */
  localKmsLatencyMs?: number;
  logLevel: LogLevel;
  metricsPort: number;
  leaderElection: boolean;
  leaseName: string;
  /** this replica's identity in the Lease (pod name) */
  identity: string;
  /** R16: how long a retained wrap is kept once nothing depends on it */
  retainedWrapRetentionMs?: number;
  /**
   * R7, R9, R16: the KeyProtector that serves as the service-managed key (any provider). Absent:
   * the operator's own Local key, KeyProtector `tde-service-managed` in `operatorNamespace`,
   * created on first start. Changing it re-wraps every service-managed DEK online.
   */
  serviceManagedKey?: { namespace: string; name: string };
  azure?: AzureSettings;
  /**
   * R19, R31: the name other clusters know this one by (the `cluster` a remote primary lists its
   * secondaries with). Needed only for geo-replication across clusters.
   */
  clusterName?: string;
  /** R19-R21: how long a read of a remote cluster is reused before it is read again (default 10s) */
  remoteReadTtlMs?: number;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * `[NAMESPACE/]NAME` of the service-managed key's KeyProtector; the namespace defaults to the
 * operator's. Refuses what the API server would never accept as a namespace or object name, and a
 * namespace the operator does not watch (it could never see the KeyProtector).
 */
export function parseServiceManagedKey(
  text: string,
  operatorNamespace: string,
  watchNamespaces: readonly string[],
): { namespace: string; name: string } {
  const parts = text.trim().split("/");
  const [namespace, name] = parts.length === 2 ? parts : [operatorNamespace, parts[0]];
  const fix =
    "name a KeyProtector as NAME (in the operator's namespace) or NAMESPACE/NAME, e.g. tde-system/platform-kek";
  if (
    parts.length > 2 ||
    !namespace ||
    !name ||
    namespace.length > 63 ||
    !DNS_LABEL.test(namespace) ||
    name.length > 253 ||
    !DNS_SUBDOMAIN.test(name)
  )
    throw new Error(`--service-managed-key: "${text}" is not a KeyProtector reference: ${fix}`);
  if (watchNamespaces.length > 0 && namespace !== operatorNamespace && !watchNamespaces.includes(namespace))
    throw new Error(
      `--service-managed-key names a KeyProtector in namespace ${namespace}, which the operator does not watch: add ${namespace} to --watch-namespaces, or keep the KeyProtector in the operator's namespace ${operatorNamespace}`,
    );
  return { namespace, name };
}

const env = (name: string) => process.env[name];

/** `tde-operator --help`: every flag, its environment variable and its default. */
export const USAGE = `tde-operator [flags]

  --kubeconfig PATH          kubeconfig file (KUBECONFIG; default: in-cluster, then ~/.kube/config)
  --operator-namespace NS    the operator's own namespace: service-managed key and Lease (TDE_OPERATOR_NAMESPACE; tde-system)
  --watch-namespaces A,B     namespaces to reconcile (TDE_WATCH_NAMESPACES; default: all)
  --probe-interval D         how often each distinct key is probed (TDE_PROBE_INTERVAL; 60s)
  --workers N                reconciles in flight per controller (TDE_WORKERS; 32)
  --kms-concurrency N        KMS calls in flight across all keys (TDE_KMS_CONCURRENCY; 16)
  --kms-rate-limit N         KMS calls per second across all keys, 0 = unbounded (TDE_KMS_RATE_LIMIT; 0)
  --local-kms-latency MS     artificial latency of every Local provider call, for benchmarks (TDE_LOCAL_KMS_LATENCY; 0)
  --log-level L              debug, info, warn or error (TDE_LOG_LEVEL; info)
  --metrics-port P           /metrics, /healthz and /readyz (TDE_METRICS_PORT; 8080)
  --[no-]leader-election     campaign for a Lease before reconciling (TDE_LEADER_ELECTION; on)
  --lease-name NAME          the Lease (TDE_LEASE_NAME; tde-operator-leader)
  --identity ID              this replica in the Lease (POD_NAME; hostname-pid)
  --retained-wrap-retention D  how long a retained wrap is kept once nothing depends on it (TDE_RETAINED_WRAP_RETENTION; 2h)
  --cluster-name NAME        the name other clusters know this one by, for geo-replication across clusters
                             (TDE_CLUSTER_NAME; none: only replication within this cluster)
  --remote-read-ttl D        how long a read of another cluster is reused before it is read again (TDE_REMOTE_READ_TTL; 10s)
  --service-managed-key [NS/]NAME  the KeyProtector serving as the service-managed key, any provider; changing it
                             re-wraps every service-managed DEK online (TDE_SERVICE_MANAGED_KEY; the operator's own
                             Local key, tde-service-managed in the operator's namespace)

 Azure Key Vault:
${AZURE_SETTINGS_USAGE}
  --help                     this text
`;

/** True when the arguments ask for the usage text rather than a run. */
export function wantsHelp(argv: string[] = process.argv.slice(2)): boolean {
  return argv.includes("--help") || argv.includes("-h");
}

export function parseConfig(argv: string[] = process.argv.slice(2)): OperatorConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: "string" },
      "operator-namespace": { type: "string" },
      "watch-namespaces": { type: "string" },
      "probe-interval": { type: "string" },
      workers: { type: "string" },
      "kms-rate-limit": { type: "string" },
      "kms-concurrency": { type: "string" },
      "local-kms-latency": { type: "string" },
      "log-level": { type: "string" },
      "metrics-port": { type: "string" },
      "leader-election": { type: "boolean" },
      "no-leader-election": { type: "boolean" },
      "lease-name": { type: "string" },
      identity: { type: "string" },
      "retained-wrap-retention": { type: "string" },
      "service-managed-key": { type: "string" },
      "cluster-name": { type: "string" },
      "remote-read-ttl": { type: "string" },
      ...AZURE_SETTING_FLAGS,
    },
    strict: true,
  });
  const pick = (flag: string | undefined, name: string) => flag ?? env(name);
  const int = (text: string | undefined, fallback: number, what: string) => {
    if (text === undefined || text === "") return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${what} must be a whole number >= 0, got "${text}"`);
    return n;
  };
  const level = (pick(values["log-level"], "TDE_LOG_LEVEL") ?? "info") as LogLevel;
  if (!["debug", "info", "warn", "error"].includes(level)) {
    throw new Error(`--log-level must be debug, info, warn or error, got "${level}"`);
  }
  const namespaces = (pick(values["watch-namespaces"], "TDE_WATCH_NAMESPACES") ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const operatorNamespace = pick(values["operator-namespace"], "TDE_OPERATOR_NAMESPACE") ?? "tde-system";
  const serviceManagedKey = pick(values["service-managed-key"], "TDE_SERVICE_MANAGED_KEY");
  return {
    kubeconfig: pick(values.kubeconfig, "KUBECONFIG") || undefined,
    operatorNamespace,
    watchNamespaces: namespaces,
    probeIntervalMs: parseDuration(pick(values["probe-interval"], "TDE_PROBE_INTERVAL") ?? "60s"),
    // a reconcile mostly waits on the API server or the KMS: 32 in flight keep a rotation of
    // 10,000 DEKs near their floors on two cores, where 16 left it at 1.7x (bench/README.md, #21)
    workers: int(pick(values.workers, "TDE_WORKERS"), 32, "--workers") || 1,
    kmsRateLimit: int(pick(values["kms-rate-limit"], "TDE_KMS_RATE_LIMIT"), 0, "--kms-rate-limit"),
    kmsConcurrency: int(pick(values["kms-concurrency"], "TDE_KMS_CONCURRENCY"), 16, "--kms-concurrency") || 1,
    localKmsLatencyMs: int(
      pick(values["local-kms-latency"], "TDE_LOCAL_KMS_LATENCY"),
      0,
      "--local-kms-latency",
    ),
    logLevel: level,
    metricsPort: int(pick(values["metrics-port"], "TDE_METRICS_PORT"), 8080, "--metrics-port"),
    leaderElection: values["no-leader-election"]
      ? false
      : (values["leader-election"] ?? env("TDE_LEADER_ELECTION") !== "false"),
    leaseName: pick(values["lease-name"], "TDE_LEASE_NAME") ?? "tde-operator-leader",
    identity: pick(values.identity, "POD_NAME") ?? `${process.env.HOSTNAME ?? "tde-operator"}-${process.pid}`,
    retainedWrapRetentionMs: parseDuration(
      pick(values["retained-wrap-retention"], "TDE_RETAINED_WRAP_RETENTION") ?? "2h",
    ),
    ...(serviceManagedKey
      ? { serviceManagedKey: parseServiceManagedKey(serviceManagedKey, operatorNamespace, namespaces) }
      : {}),
    azure: parseAzureSettings(values, process.env),
    ...clusterSettings(
      pick(values["cluster-name"], "TDE_CLUSTER_NAME"),
      pick(values["remote-read-ttl"], "TDE_REMOTE_READ_TTL"),
    ),
  };
}

/** R19: `--cluster-name` must be a cluster name as the CRDs accept it; `--remote-read-ttl` a duration. */
export function clusterSettings(
  name: string | undefined,
  ttl: string | undefined,
): Pick<OperatorConfig, "clusterName" | "remoteReadTtlMs"> {
  const out: Pick<OperatorConfig, "clusterName" | "remoteReadTtlMs"> = {
    remoteReadTtlMs: parseDuration(ttl ?? "10s"),
  };
  if (name === undefined || name === "") return out;
  if (name.length > 52 || !DNS_LABEL.test(name))
    throw new Error(
      `--cluster-name: "${name}" is not a cluster name: at most 52 lowercase letters, digits and '-', starting and ending with a letter or digit (the name remote primaries list this cluster's secondaries with)`,
    );
  return { ...out, clusterName: name };
}
