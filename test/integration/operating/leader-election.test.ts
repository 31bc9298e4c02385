import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, describe, expect, inject, it } from "vitest";
import { freePort } from "../../harness/ports.js";
import { api, type EncryptedServer, kc, suffix, waitFor } from "../controllers/helpers.js";

const id = suffix();
const ns = `le-${id}`;
const opNs = `le-op-${id}`;
const logDir = mkdtempSync(join(tmpdir(), "tde-le-"));

interface Replica {
  name: string;
  child: ChildProcess;
  port: number;
  log: string;
}
const replicas: Replica[] = [];

/** The operator as its own process, with leader election through a Lease in its namespace (R28). */
async function startReplica(name: string): Promise<Replica> {
  const port = await freePort();
  const log = join(logDir, `${name}.log`);
  const fd = openSync(log, "a");
  const child = spawn(
    "node_modules/.bin/tsx",
    [
      "src/main.ts",
      "--kubeconfig",
      inject("kubeconfigPath"),
      "--operator-namespace",
      opNs,
      "--watch-namespaces",
      ns,
      "--leader-election",
      "--lease-name",
      `tde-le-${id}`,
      "--identity",
      name,
      "--metrics-port",
      String(port),
      "--probe-interval",
      "2s",
      "--log-level",
      "info",
    ],
    { stdio: ["ignore", fd, fd], detached: true },
  );
  closeSync(fd);
  const replica = { name, child, port, log };
  replicas.push(replica);
  await waitFor(
    `${name} ready`,
    async () => {
      if (child.exitCode !== null)
        throw new Error(`${name} exited: ${readFileSync(log, "utf8").slice(-2000)}`);
      try {
        return (await fetch(`http://127.0.0.1:${port}/readyz`)).status;
      } catch {
        return 0;
      }
    },
    (s) => s === 200,
    90_000,
  );
  return replica;
}

async function metrics(r: Replica): Promise<string> {
  return (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
}

function sum(text: string, name: string, filter = ""): number {
  return text
    .split("\n")
    .filter((l) => l.startsWith(name) && l.includes(filter))
    .reduce((acc, l) => acc + Number(l.split(" ").pop()), 0);
}

afterAll(async () => {
  for (const r of replicas) {
    if (r.child.exitCode === null && r.child.pid) {
      try {
        process.kill(-r.child.pid, "SIGKILL");
      } catch {}
    }
  }
});

describe("two operator replicas", () => {
  it("R28 only the Lease holder reconciles; killed, the other takes over within the lease duration", async () => {
    const a = api(kc());
    const core = kc().makeApiClient(k8s.CoreV1Api);
    for (const n of [ns, opNs]) await core.createNamespace({ body: { metadata: { name: n } } });
    const first = await startReplica("replica-a");
    const second = await startReplica("replica-b");
    const coordination = kc().makeApiClient(k8s.CoordinationV1Api);
    const holder = async () =>
      (await coordination.readNamespacedLease({ namespace: opNs, name: `tde-le-${id}` })).spec
        ?.holderIdentity ?? "";
    const leaderName = await waitFor("a leader", holder, (h) => h === "replica-a" || h === "replica-b");

    await a.create("EncryptedServer", ns, "one", { protector: { type: "ServiceManaged" } });
    await waitFor(
      "server one Available",
      () => a.get<EncryptedServer>("EncryptedServer", ns, "one"),
      (o) => o.status?.state === "Available",
      60_000,
    );
    const leader = leaderName === first.name ? first : second;
    const follower = leader === first ? second : first;
    expect(sum(await metrics(leader), "tde_reconcile_total", 'controller="encryptedserver"')).toBeGreaterThan(
      0,
    );
    expect(sum(await metrics(follower), "tde_reconcile_total")).toBe(0);

    // the leader dies without releasing the Lease
    const killedAt = Date.now();
    process.kill(-(leader.child.pid ?? 0), "SIGKILL");
    await a.create("EncryptedServer", ns, "two", { protector: { type: "ServiceManaged" } });
    await waitFor("the follower leads", holder, (h) => h === follower.name, 40_000);
    await waitFor(
      "server two Available",
      () => a.get<EncryptedServer>("EncryptedServer", ns, "two"),
      (o) => o.status?.state === "Available",
      40_000,
    );
    const takeoverMs = Date.now() - killedAt;
    // lease 15 s + one retry period (2 s) + the reconcile itself
    expect(takeoverMs).toBeLessThan(25_000);

    // R28: after the scenario the new leader's /metrics holds the expected series
    const text = await metrics(follower);
    for (const series of [
      "tde_reconcile_total",
      "tde_reconcile_duration_seconds_bucket",
      "tde_key_probes_total",
      "tde_key_accessible",
      "tde_kms_operation_duration_seconds_bucket",
      "tde_resources",
      "tde_state_transitions_total",
      "tde_workqueue_depth",
      "tde_process_resident_memory_bytes",
    ]) {
      expect(text, series).toContain(series);
    }
    expect(sum(text, "tde_resources", 'state="Available"')).toBeGreaterThanOrEqual(2);
  }, 180_000);
});
