import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";

/** What a controller tells of each reconcile. */
export interface ReconcileReport {
  result: string;
  durationMs: number;
  error?: unknown;
  key: { namespace: string; name: string };
}

/**
 * R28: every reconcile counted and timed by controller and result; a failed one (an error, or a
 * terminal refusal) is a log line at warn with the object it was for.
 */
export function reconcileObserver(metrics: Metrics, log: Logger) {
  return (name: string) =>
    (r: ReconcileReport): void => {
      metrics.reconciles.inc({ controller: name, result: r.result });
      metrics.reconcileDuration.observe({ controller: name }, r.durationMs / 1000);
      if (r.result === "error" || r.result === "terminal")
        log.warn("reconcile failed", {
          controller: name,
          namespace: r.key.namespace,
          name: r.key.name,
          error: r.error,
        });
    };
}
