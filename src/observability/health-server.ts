import { createServer, type Server } from "node:http";
import type { Metrics } from "./metrics.js";

/** /metrics, /healthz (the process is alive) and /readyz (caches synced and, if elected, leading or standing by). */
export function startHealthServer(
  port: number,
  metrics: Metrics,
  ready: () => boolean,
  host = "0.0.0.0",
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" }).end(ok ? "ok\n" : "not ready\n");
    } else if (path === "/metrics") {
      metrics.registry
        .metrics()
        .then((body) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(body))
        .catch((error: Error) => res.writeHead(500).end(`${error.message}\n`));
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
