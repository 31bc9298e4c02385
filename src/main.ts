#!/usr/bin/env node
import { parseConfig, USAGE, wantsHelp } from "./config.js";
import { startHealthServer } from "./observability/health-server.js";
import { createLogger } from "./observability/logger.js";
import { Metrics } from "./observability/metrics.js";
import { Operator } from "./operator.js";
import { HttpKubeClient, LeaderElector } from "./runtime/index.js";
import { KubeConnection } from "./runtime/kube-connection.js";

/**
 * The operator process: flags and environment, JSON logs, /metrics /healthz /readyz, leader
 * election through a Lease (two replicas are safe), graceful shutdown on SIGTERM.
 */
async function main(): Promise<void> {
  if (wantsHelp()) {
    process.stdout.write(USAGE);
    return;
  }
  const config = parseConfig();
  const log = createLogger(config.logLevel, { component: "tde-operator" });
  const kc = await KubeConnection.load(config.kubeconfig);
  const metrics = new Metrics();
  const operator = new Operator({ config, kubeConfig: kc, log, metrics });
  let leading = !config.leaderElection;
  const server = await startHealthServer(config.metricsPort, metrics, () => operator.hasSynced());
  log.info("starting", {
    operatorNamespace: config.operatorNamespace,
    watchNamespaces: config.watchNamespaces,
    probeIntervalMs: config.probeIntervalMs,
    leaderElection: config.leaderElection,
  });
  operator.startInformers();

  let elector: LeaderElector | undefined;
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { signal });
    elector?.stop({ release: true });
    await operator.stop();
    server.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));

  if (!config.leaderElection) {
    await operator.run();
    return;
  }
  elector = new LeaderElector({
    client: new HttpKubeClient(kc),
    namespace: config.operatorNamespace,
    name: config.leaseName,
    identity: config.identity,
    onStartedLeading: () => {
      leading = true;
      log.info("leading: starting controllers", { identity: config.identity });
      operator.run().catch((error: unknown) => {
        log.error("controllers stopped", { error });
        process.exit(1);
      });
    },
    onStoppedLeading: () => {
      if (leading && !stopping) {
        log.warn("lost leadership: exiting so a fresh process can campaign again");
        process.exit(1);
      }
    },
    onError: (error) => log.warn("leader election", { error }),
  });
  await elector.run();
}

main().catch((error: unknown) => {
  process.stderr.write(
    `${JSON.stringify({ level: "error", msg: "fatal", error: (error as Error).message })}\n`,
  );
  process.exit(1);
});
