import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ControlPlaneBinaries, ensureControlPlaneBinaries } from "./binaries.js";
import { type ControlPlanePki, generatePki } from "./pki.js";
import { freePort } from "./ports.js";
import { type ManagedProcess, ProcessExited, startProcess, waitFor } from "./processes.js";

export interface ControlPlaneInfo {
  /** https://127.0.0.1:PORT */
  server: string;
  /** kubeconfig for a system:masters user */
  kubeconfigPath: string;
  dir: string;
  pki: ControlPlanePki;
  binaries: ControlPlaneBinaries;
  etcdURL: string;
}

export interface ControlPlaneOptions {
  log?: (line: string) => void;
  /** Extra kube-apiserver flags, e.g. a short etcd compaction interval for watch-expiry tests. */
  extraApiserverArgs?: string[];
  /** Where free ports come from (freePort); a test of the retry hands out a taken one first. */
  freePort?: () => Promise<number>;
}

/**
 * A real kube-apiserver backed by a real etcd, started on free loopback ports the way
 * controller-runtime's envtest does. There is no controller-manager: no garbage collection,
 * no namespace finalization, no pods.
 */
export class ControlPlane {
  private etcd: ManagedProcess | undefined;
  private apiserver: ManagedProcess | undefined;
  private info: ControlPlaneInfo | undefined;
  private ports: { etcdPeerPort: number; securePort: number } | undefined;

  constructor(private readonly options: ControlPlaneOptions = {}) {}

  get started(): ControlPlaneInfo {
    if (!this.info) throw new Error("control plane not started");
    return this.info;
  }

  async start(): Promise<ControlPlaneInfo> {
    const log = this.options.log ?? (() => {});
    const binaries = ensureControlPlaneBinaries(log);
    const dir = mkdtempSync(join(tmpdir(), "tde-control-plane-"));
    const pki = generatePki(dir);

    // a free port can be taken by another process before etcd or kube-apiserver binds it (many
    // control planes start at once in a run): then start again on fresh ports
    const port = this.options.freePort ?? freePort;
    for (let attempt = 1; ; attempt++) {
      const [etcdClientPort, etcdPeerPort, securePort] = [await port(), await port(), await port()];
      const etcdURL = `http://127.0.0.1:${etcdClientPort}`;
      this.ports = { etcdPeerPort, securePort };
      const server = `https://127.0.0.1:${securePort}`;
      const kubeconfigPath = join(dir, "kubeconfig");
      this.info = { server, kubeconfigPath, dir, pki, binaries, etcdURL };
      try {
        await this.startEtcd();
        this.spawnApiserver();
        writeFileSync(kubeconfigPath, kubeconfig(server, pki));
        await this.waitApiserverReady();
        break;
      } catch (error) {
        if (attempt >= 3 || !/address already in use/.test(String(error))) {
          await this.stop();
          throw error;
        }
        // the processes go, the PKI stays; etcd starts afresh on its new ports
        await this.apiserver?.stop();
        await this.etcd?.stop();
        rmSync(join(dir, "etcd"), { recursive: true, force: true });
        log(`control plane: a port was taken before it was bound, starting again (attempt ${attempt + 1})`);
      }
    }
    const { server, etcdURL } = this.info;
    log(`control plane ready at ${server} (etcd ${etcdURL})`);
    return this.info;
  }

  /**
   * Starts etcd (again) on the same ports and data directory, and waits for its /health. With
   * `startApiserver`, `stopEtcd` and `stopApiserver`, a test can take the control plane down and
   * bring it back while the kubeconfig stays valid.
   */
  async startEtcd(): Promise<void> {
    const { dir, binaries, etcdURL } = this.started;
    const peer = `http://127.0.0.1:${this.ports!.etcdPeerPort}`;
    this.etcd = startProcess(
      "etcd",
      binaries.etcd,
      [
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=${etcdURL}`,
        `--advertise-client-urls=${etcdURL}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=default=${peer}`,
        "--unsafe-no-fsync=true",
        "--log-level=warn",
      ],
      join(dir, "etcd.log"),
    );
    const etcd = this.etcd;
    await waitFor(
      "etcd /health",
      async () => {
        if (etcd.exited()) throw new ProcessExited(`etcd exited:\n${etcd.tail()}`);
        // bounded: a port held by something that accepts and never answers would hang the wait
        return (await fetch(`${etcdURL}/health`, { signal: AbortSignal.timeout(2_000) })).ok;
      },
      30_000,
    );
  }

  /** Starts the API server (again) on the same port, and waits until /readyz answers 200. */
  async startApiserver(): Promise<void> {
    this.spawnApiserver();
    await this.waitApiserverReady();
  }

  /** SIGTERM by default; SIGKILL for a crash. Keeps etcd's data directory. */
  async stopEtcd(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await this.etcd?.stop(signal);
  }

  /** Stops both and starts both again on the same ports and data: the kubeconfig stays valid. */
  async restart(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await this.stopApiserver(signal);
    await this.stopEtcd(signal);
    await this.startEtcd();
    await this.startApiserver();
  }

  private spawnApiserver(): void {
    const { dir, pki, binaries, etcdURL } = this.started;
    this.apiserver = startProcess(
      "kube-apiserver",
      binaries.kubeApiserver,
      [
        `--etcd-servers=${etcdURL}`,
        `--cert-dir=${join(dir, "apiserver-certs")}`,
        `--tls-cert-file=${pki.servingCert}`,
        `--tls-private-key-file=${pki.servingKey}`,
        `--client-ca-file=${pki.caCert}`,
        `--secure-port=${this.ports!.securePort}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--allow-privileged=true",
        "--authorization-mode=RBAC",
        "--disable-admission-plugins=ServiceAccount",
        `--service-account-key-file=${pki.serviceAccountPub}`,
        `--service-account-signing-key-file=${pki.serviceAccountKey}`,
        "--service-account-issuer=https://kubernetes.default.svc",
        "--enable-priority-and-fairness=false",
        "--v=0",
        ...(this.options.extraApiserverArgs ?? []),
      ],
      join(dir, "kube-apiserver.log"),
    );
  }

  private async waitApiserverReady(): Promise<void> {
    const { server, pki } = this.started;
    const apiserver = this.apiserver;
    await waitFor(
      "kube-apiserver /readyz",
      async () => {
        if (apiserver?.exited()) throw new ProcessExited(`kube-apiserver exited:\n${apiserver.tail()}`);
        return (await getStatus(server, "/readyz", pki)) === 200;
      },
      90_000,
      250,
    );
  }

  /** Stops the API server without removing state; `startApiserver` or `restart` brings it back. */
  async stopApiserver(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await this.apiserver?.stop(signal);
  }

  async stop(): Promise<void> {
    await this.apiserver?.stop();
    await this.etcd?.stop();
    if (this.info) rmSync(this.info.dir, { recursive: true, force: true });
  }
}

function kubeconfig(server: string, pki: ControlPlanePki): string {
  const b64 = (file: string) => readFileSync(file).toString("base64");
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: tde-test",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(pki.caCert)}`,
    "users:",
    "- name: tde-test-admin",
    "  user:",
    `    client-certificate-data: ${b64(pki.adminCert)}`,
    `    client-key-data: ${b64(pki.adminKey)}`,
    "contexts:",
    "- name: tde-test",
    "  context:",
    "    cluster: tde-test",
    "    user: tde-test-admin",
    "current-context: tde-test",
    "",
  ].join("\n");
}

function getStatus(server: string, path: string, pki: ControlPlanePki): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${server}${path}`,
      {
        ca: readFileSync(pki.caCert),
        cert: readFileSync(pki.adminCert),
        key: readFileSync(pki.adminKey),
        timeout: 5_000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}
