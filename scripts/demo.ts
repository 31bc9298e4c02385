/**
 * `npm run demo`: the operator's story on the embedded default, with no cloud.
 *
 * A real kube-apiserver + etcd (the test harness's control plane, in temp folders), the CRDs,
 * the operator as its own process with the Local key provider, and then:
 *   1. the samples applied (service-managed server, Local customer-key server, a database that
 *      inherits its server's key, a database with its own key), their envelope Secrets and status;
 *   2. a database-level override (R13, R14) and an R15 refusal;
 *   3. a rotation of a Local KEK (`kubectl tde local-key rotate`): the DEK re-wrapped, same DEK id,
 *      new thumbprint (R4, R6, R16, R18);
 *   4. key loss (R10, R11): the KEK disabled (`kubectl tde local-key disable`, refused first because
 *      it protects a server, then --force), the countdown, Inaccessible with the StatefulSet scaled
 *      to zero at the deadline, the key enabled again, automatic revalidation.
 *
 * Every step is a kubectl or kubectl tde command the demo prints, so a reader can repeat it by hand.
 *
 * It prints names, key ids and thumbprints only, never a DEK or KEK. Every step waits for the
 * operator with a deadline; a step that does not converge ends the demo with exit code 1 and the
 * tail of the operator's log. Ctrl-C stops what the demo started (by pid) and removes its folders.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as k8s from "@kubernetes/client-node";
import type { EncryptedDatabase, EncryptedServer, KeyProtector } from "../src/api/types.js";
import { decodeEnvelopeSecret } from "../src/crypto/envelope.js";
import { ControlPlane } from "../test/harness/control-plane.js";
import { freePort } from "../test/harness/ports.js";
import { type ManagedProcess, startProcess } from "../test/harness/processes.js";
import {
  bold,
  clock,
  DemoError,
  dim,
  explain,
  green,
  heading,
  indent,
  kubectlRunner,
  red,
  say,
  short,
  sleep,
  waitUntil,
  yellow,
} from "./demo/lib.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const NS = "demo";
const OPERATOR_NS = "tde-system";
const GROUP = "tde.dev";
const VERSION = "v1alpha1";
const PROBE_INTERVAL = "2s";
/** The grace period of the key-loss story (the sample says 30s; the demo makes it 15s). */
const GRACE_SECONDS = 15;
const SAMPLES = join(ROOT, "deploy", "samples");

type Plural = "keyprotectors" | "encryptedservers" | "encrypteddatabases";
type Cond = { type: string; status: string; reason: string; message: string; observedGeneration?: number };

let plane: ControlPlane | undefined;
let operator: ManagedProcess | undefined;
let workDir: string | undefined;
let cleaning: Promise<void> | undefined;
let expectingOperatorExit = false;
/** What the cluster looked like when a step failed (names, states and conditions; no Secret data). */
let diagnose: (() => Promise<void>) | undefined;
/** Ctrl-C or SIGTERM: cleanup runs from the signal handler; the story stops quietly. */
let interrupted = false;

async function cleanup(keepLogs: boolean): Promise<void> {
  cleaning ??= (async () => {
    expectingOperatorExit = true;
    const t = Date.now();
    try {
      await operator?.stop("SIGTERM", 10_000);
    } catch {
      // already gone
    }
    if (operator)
      explain(dim(`operator (pid ${operator.pid}) stopped in ${((Date.now() - t) / 1000).toFixed(1)}s`));
    const tp = Date.now();
    try {
      await plane?.stop();
    } catch {
      // already gone
    }
    if (plane) explain(dim(`control plane stopped in ${((Date.now() - tp) / 1000).toFixed(1)}s`));
    if (workDir && !keepLogs) rmSync(workDir, { recursive: true, force: true });
  })();
  return cleaning;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    say();
    say(yellow(`${signal}: stopping the operator and the control plane the demo started`));
    void cleanup(false).then(() => process.exit(signal === "SIGINT" ? 130 : 143));
  });
}

/** The versions `kubectl tde local-key list NAME -o json` prints, newest (current) first. */
function localKeyVersions(json: string): { version: string; current: boolean; thumbprint: string }[] {
  return (JSON.parse(json) as { versions: { version: string; current: boolean; thumbprint: string }[] })
    .versions;
}

function cond(obj: { status?: { conditions?: Cond[] } } | undefined, type: string): Cond | undefined {
  return obj?.status?.conditions?.find((c) => c.type === type);
}

function summary(kind: string, obj: { metadata?: { name?: string }; status?: object } | undefined): string {
  if (!obj) return `${kind} not found`;
  const status = obj.status as { state?: string; conditions?: Cond[] } | undefined;
  const ready = cond(obj as { status?: { conditions?: Cond[] } }, "Ready");
  const notTrue = (status?.conditions ?? []).filter((c) => c.status !== "True");
  return [
    `${kind}/${obj.metadata?.name}: state=${status?.state ?? "-"} Ready=${ready?.status ?? "-"}`,
    ...notTrue.map((c) => `${c.type}=${c.status} ${c.reason}: ${c.message}`),
  ].join("; ");
}

async function main(): Promise<void> {
  const t0 = Date.now();
  workDir = mkdtempSync(join(tmpdir(), "tde-demo-"));
  const operatorLog = join(workDir, "operator.log");

  heading("0. A control plane, the CRDs and the operator");
  explain(
    "Starting a real kube-apiserver v1.34 + etcd v3.6 on loopback ports (the test harness's control plane).",
  );
  explain(dim("There is no controller-manager: no pods, no garbage collection. Enough for an operator."));
  plane = new ControlPlane({ log: (line) => explain(dim(line)) });
  const info = await plane.start();
  if (!info.binaries.kubectl)
    throw new DemoError("the harness has no kubectl: run node scripts/ensure-deps.mjs");

  // the kubectl-tde plugin, from this checkout, on the PATH of the kubectl the demo runs
  const bin = join(workDir, "bin");
  mkdirSync(bin);
  const tsx = import.meta.resolve("tsx");
  writeFileSync(
    join(bin, "kubectl-tde"),
    `#!/bin/sh\nexec "${process.execPath}" --import "${tsx}" "${join(ROOT, "src/cli/main.ts")}" "$@"\n`,
  );
  chmodSync(join(bin, "kubectl-tde"), 0o755);
  const kubectl = kubectlRunner(info.binaries.kubectl, info.kubeconfigPath, bin);
  diagnose = async () => {
    say(bold("What the cluster looks like now:"));
    await kubectl.show(["get", "tde,statefulsets", "-n", NS], { allowFailure: true });
    await kubectl.show(
      [
        "get",
        "encryptedservers,encrypteddatabases",
        "-n",
        NS,
        "-o",
        'jsonpath={range .items[*]}{.kind}/{.metadata.name} state={.status.state}{"\\n"}{range .status.conditions[*]}  {.type}={.status} {.reason}: {.message}{"\\n"}{end}{end}',
      ],
      {
        allowFailure: true,
        shown: `get encryptedservers,encrypteddatabases -n ${NS} -o jsonpath=<conditions>`,
      },
    );
    await kubectl.show(["get", "events", "-n", NS, "--sort-by", ".lastTimestamp"], {
      allowFailure: true,
      maxWidth: 220,
    });
  };

  await kubectl.show(["apply", "--server-side", "-f", join(ROOT, "crds")], {
    shown: "apply --server-side -f crds/",
  });
  await kubectl.run(["wait", "--for", "condition=Established", "crd", "--all", "--timeout=60s"]);
  await kubectl.run(["create", "namespace", OPERATOR_NS]);
  await kubectl.show(["create", "namespace", NS]);

  const kc = new k8s.KubeConfig();
  kc.loadFromFile(info.kubeconfigPath);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const objects = kc.makeApiClient(k8s.CustomObjectsApi);

  const metricsPort = await freePort();
  const operatorArgs = [
    "--kubeconfig",
    info.kubeconfigPath,
    "--operator-namespace",
    OPERATOR_NS,
    "--probe-interval",
    PROBE_INTERVAL,
    "--no-leader-election",
    "--metrics-port",
    String(metricsPort),
    "--log-level",
    process.env.TDE_DEMO_LOG_LEVEL ?? "info",
  ];
  operator = startProcess(
    "tde-operator",
    process.execPath,
    ["--import", tsx, join(ROOT, "src/main.ts"), ...operatorArgs],
    operatorLog,
  );
  operator.child.once("exit", (code, signal) => {
    if (!expectingOperatorExit) {
      say(red(`${clock()} the operator exited unexpectedly (code ${code}, signal ${signal})`));
    }
  });
  const alive = () => {
    if (interrupted) throw new DemoError("interrupted");
    if (operator?.exited() && !expectingOperatorExit) throw new DemoError("the operator process exited");
  };
  explain(
    `Operator started as its own process (pid ${operator.pid}): tsx src/main.ts --operator-namespace ${OPERATOR_NS} ` +
      `--probe-interval ${PROBE_INTERVAL} --no-leader-election --metrics-port ${metricsPort}`,
  );
  explain(`Operator log: ${bold(operatorLog)}`);
  await waitUntil(
    "the operator's /readyz",
    60_000,
    async () => {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
      return res.ok || `/readyz answered ${res.status}`;
    },
    { alive },
  );
  explain(green("Operator ready (/readyz 200), informers synced."));

  const get = async <T>(plural: Plural, name: string, namespace = NS): Promise<T | undefined> => {
    try {
      return (await objects.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural,
        name,
      })) as T;
    } catch (error) {
      if ((error as { code?: number }).code === 404) return undefined;
      throw error;
    }
  };
  const server = (name: string) => get<EncryptedServer>("encryptedservers", name);
  const database = (name: string) => get<EncryptedDatabase>("encrypteddatabases", name);
  const keyProtector = (name: string) => get<KeyProtector>("keyprotectors", name);
  const replicas = async (name: string) =>
    (await apps.readNamespacedStatefulSet({ name, namespace: NS })).spec?.replicas;
  const wait = (what: string, timeoutMs: number, check: () => Promise<true | string>, intervalMs = 250) =>
    waitUntil(what, timeoutMs, check, { alive, intervalMs });
  const getTde = () => kubectl.show(["get", "tde", "-n", NS]);

  const kpReady = async (name: string): Promise<true | string> => {
    const kp = await keyProtector(name);
    return (cond(kp, "Ready")?.status === "True" && !!kp?.status?.thumbprint) || summary("keyprotector", kp);
  };
  const serverAvailable = async (name: string): Promise<true | string> => {
    const s = await server(name);
    return (
      (s?.status?.state === "Available" && cond(s, "Ready")?.status === "True") ||
      summary("encryptedserver", s)
    );
  };
  const databaseAvailable = async (name: string): Promise<true | string> => {
    const d = await database(name);
    return (
      (d?.status?.state === "Available" && cond(d, "Ready")?.status === "True" && !d.status.rotation) ||
      summary("encrypteddatabase", d)
    );
  };
  const all =
    (...checks: (() => Promise<true | string>)[]) =>
    async (): Promise<true | string> => {
      const results = await Promise.all(checks.map((c) => c()));
      const pending = results.filter((r) => r !== true);
      return pending.length === 0 || pending.join("\n             ");
    };

  // ---------------------------------------------------------------------------------------
  heading("1. The samples: two servers, two databases, four DEKs");
  const sample = (file: string) => readFileSync(join(SAMPLES, file), "utf8");
  await kubectl.show(["apply", "-n", NS, "-f", join(SAMPLES, "01-server-service-managed.yaml")], {
    shown: `apply -n ${NS} -f deploy/samples/01-server-service-managed.yaml`,
  });
  const sample02 = sample("02-local-key-customer-managed-server.yaml").replace(
    /keyAccessGracePeriod: 30s/,
    `keyAccessGracePeriod: ${GRACE_SECONDS}s`,
  );
  if (!sample02.includes(`keyAccessGracePeriod: ${GRACE_SECONDS}s`)) {
    throw new DemoError("deploy/samples/02 no longer says keyAccessGracePeriod: 30s; update the demo");
  }
  await kubectl.show(["apply", "-n", NS, "-f", "-"], {
    input: sample02,
    shown: `apply -n ${NS} -f <(sed 's/keyAccessGracePeriod: 30s/keyAccessGracePeriod: ${GRACE_SECONDS}s/' deploy/samples/02-local-key-customer-managed-server.yaml)`,
  });
  for (const file of ["08-database-inherits-server-key.yaml", "09-database-own-key.yaml"]) {
    await kubectl.show(["apply", "-n", NS, "-f", join(SAMPLES, file)], {
      shown: `apply -n ${NS} -f deploy/samples/${file}`,
    });
  }
  explain("Waiting for every KeyProtector Ready and every server and database Available ...");
  const t1 = Date.now();
  await wait(
    "the samples to become Ready/Available",
    90_000,
    all(
      () => kpReady("shop-local-key"),
      () => kpReady("invoices-key"),
      () => kpReady("invoices-escrow-key"),
      () => serverAvailable("shop-mariadb"),
      () => serverAvailable("shop-postgres"),
      () => databaseAvailable("shop-orders"),
      () => databaseAvailable("invoices"),
    ),
  );
  explain(green(`All Ready in ${((Date.now() - t1) / 1000).toFixed(1)}s.`));
  await getTde();
  explain(
    "The Local KEKs did not exist: the operator created each one on first use, in the Secret the KeyProtector names (R7).",
  );
  await kubectl.show([
    "get",
    "secrets",
    "-n",
    NS,
    "--field-selector",
    "type=tde.dev/local-key",
    "-o",
    "custom-columns=NAME:.metadata.name,TYPE:.type",
  ]);
  explain(
    "The same keys as the plugin lists them (versions, size, thumbprint, and the KeyProtectors naming each):",
  );
  await kubectl.show(["tde", "local-key", "list", "-n", NS]);
  explain(
    `The service-managed key (shop-mariadb's protector) is the operator's own KEK in ${OPERATOR_NS}, also created on first use:`,
  );
  await kubectl.show(["get", "keyprotectors", "-n", OPERATOR_NS]);
  explain(
    "Each server and database has its own DEK, stored only wrapped, in an envelope Secret (R2). Names only:",
  );
  await kubectl.show([
    "get",
    "secrets",
    "-n",
    NS,
    "--field-selector",
    "type=tde.dev/envelope",
    "-o",
    "custom-columns=NAME:.metadata.name,TYPE:.type",
  ]);
  await kubectl.show([
    "get",
    "encryptedservers,encrypteddatabases",
    "-n",
    NS,
    "-o",
    "custom-columns=KIND:.kind,NAME:.metadata.name,ENVELOPE:.status.envelopeSecretName,DEK-ID:.status.dekID",
  ]);
  explain("The kubectl-tde plugin's view of the same namespace:");
  await kubectl.show(["tde", "status", "-n", NS]);

  // ---------------------------------------------------------------------------------------
  heading("2. A database-level protector overrides the server's (R13, R14, R15)");
  const mariadbBefore = (await server("shop-mariadb"))!.status!.protector!;
  explain(
    `shop-orders inherits shop-mariadb's service-managed key (Source Server, ${short(mariadbBefore.thumbprint)}). ` +
      "Give it its own Local key:",
  );
  const kpManifest = (name: string, secret: string) =>
    [
      "apiVersion: tde.dev/v1alpha1",
      "kind: KeyProtector",
      "metadata:",
      `  name: ${name}`,
      "spec:",
      "  provider: Local",
      "  local:",
      "    secretRef:",
      `      name: ${secret}`,
      "",
    ].join("\n");
  await kubectl.show(["apply", "-n", NS, "-f", "-"], {
    input: kpManifest("orders-key", "orders-kek"),
    shown: `apply -n ${NS} -f -   # KeyProtector orders-key, provider Local, secretRef orders-kek`,
  });
  await wait("KeyProtector orders-key Ready", 30_000, () => kpReady("orders-key"));
  const ordersKey = (await keyProtector("orders-key"))!.status!.thumbprint!;
  const ordersDekBefore = (await database("shop-orders"))!.status!.dekID;
  await kubectl.show([
    "patch",
    "edb",
    "shop-orders",
    "-n",
    NS,
    "--type",
    "merge",
    "-p",
    '{"spec":{"encryptionProtector":{"type":"CustomerManaged","keyProtectorRef":{"name":"orders-key"}}}}',
  ]);
  await wait("shop-orders to be re-wrapped under orders-key (Source Database)", 30_000, async () => {
    const d = await database("shop-orders");
    const p = d?.status?.effectiveProtector;
    return (
      (p?.source === "Database" && p.thumbprint === ordersKey && !d?.status?.rotation) ||
      `shop-orders effectiveProtector=${JSON.stringify(p)}; ${summary("encrypteddatabase", d)}`
    );
  });
  await kubectl.show(["get", "encryptedservers,encrypteddatabases", "-n", NS]);
  const mariadbAfter = (await server("shop-mariadb"))!.status!.protector!;
  const ordersAfter = (await database("shop-orders"))!.status!;
  if (mariadbAfter.thumbprint !== mariadbBefore.thumbprint) {
    throw new DemoError("shop-mariadb's protector changed when only the database's override was set");
  }
  if (ordersAfter.dekID !== ordersDekBefore)
    throw new DemoError("shop-orders' DEK id changed on a re-wrap (R4)");
  explain(
    `shop-orders: Source ${bold("Database")}, key ${short(ordersKey)}, same DEK ${ordersAfter.dekID}; ` +
      `shop-mariadb still ${short(mariadbAfter.thumbprint)} (unchanged).`,
  );

  explain(
    "Now change the server's key: shop-mariadb moves from the service-managed key to its own Local key.",
  );
  await kubectl.show(["apply", "-n", NS, "-f", "-"], {
    input: kpManifest("mariadb-key", "mariadb-kek"),
    shown: `apply -n ${NS} -f -   # KeyProtector mariadb-key, provider Local, secretRef mariadb-kek`,
  });
  await wait("KeyProtector mariadb-key Ready", 30_000, () => kpReady("mariadb-key"));
  const mariadbKey = (await keyProtector("mariadb-key"))!.status!.thumbprint!;
  await kubectl.show([
    "patch",
    "esrv",
    "shop-mariadb",
    "-n",
    NS,
    "--type",
    "merge",
    "-p",
    '{"spec":{"protector":{"type":"CustomerManaged","keyProtectorRef":{"name":"mariadb-key"}}}}',
  ]);
  await wait("shop-mariadb to be re-wrapped under mariadb-key", 30_000, async () => {
    const s = await server("shop-mariadb");
    return (
      (s?.status?.protector?.thumbprint === mariadbKey && s.status.state === "Available") ||
      `shop-mariadb protector=${JSON.stringify(s?.status?.protector)}; ${summary("encryptedserver", s)}`
    );
  });
  // give a wrong cascade time to show itself before asserting it did not happen
  await sleep(3_000);
  await kubectl.show(["get", "encryptedservers,encrypteddatabases", "-n", NS]);
  const ordersNow = (await database("shop-orders"))!.status!.effectiveProtector!;
  if (ordersNow.thumbprint !== ordersKey || ordersNow.source !== "Database") {
    throw new DemoError(
      `R14 violated: shop-orders' protector changed with its server's (now ${JSON.stringify(ordersNow)})`,
    );
  }
  explain(
    `${green("R14")}: shop-mariadb is now ${short(mariadbKey)}; shop-orders kept its own ${short(ordersKey)} (Source Database).`,
  );

  explain(
    "R15: invoices has its own key on shop-postgres, a customer-managed server. Ask for the service-managed key:",
  );
  const invoicesBefore = (await database("invoices"))!.status!.effectiveProtector!;
  await kubectl.show([
    "patch",
    "edb",
    "invoices",
    "-n",
    NS,
    "--type",
    "merge",
    "-p",
    '{"spec":{"encryptionProtector":{"type":"ServiceManaged","keyProtectorRef":null}}}',
  ]);
  const generation = (await database("invoices"))!.metadata.generation;
  await wait("the R15 refusal on invoices (ProtectorChangeAccepted=False)", 30_000, async () => {
    const d = await database("invoices");
    const c = cond(d, "ProtectorChangeAccepted");
    return (
      (c?.status === "False" &&
        (c.observedGeneration === undefined || c.observedGeneration === generation)) ||
      summary("encrypteddatabase", d)
    );
  });
  const refused = (await database("invoices"))!;
  const refusal = cond(refused, "ProtectorChangeAccepted")!;
  say(indent(`${yellow("ProtectorChangeAccepted=False")} reason ${bold(refusal.reason)}`));
  say(indent(`message: ${refusal.message}`));
  if (refused.status?.effectiveProtector?.thumbprint !== invoicesBefore.thumbprint) {
    throw new DemoError("R15 violated: invoices' protector changed although the change was refused");
  }
  explain(
    `invoices keeps its key ${short(invoicesBefore.thumbprint)}. The plugin refuses a revert the same way:`,
  );
  await kubectl.show(["tde", "revert", "invoices", "-n", NS], { allowFailure: true });
  explain("Put the spec back (the refused request is withdrawn):");
  await kubectl.show([
    "patch",
    "edb",
    "invoices",
    "-n",
    NS,
    "--type",
    "merge",
    "-p",
    '{"spec":{"encryptionProtector":{"type":"CustomerManaged","keyProtectorRef":{"name":"invoices-key"}}}}',
  ]);
  await wait("invoices to accept its spec again", 30_000, async () => {
    const d = await database("invoices");
    const c = cond(d, "ProtectorChangeAccepted");
    return (
      ((c === undefined || c.status === "True") && (await databaseAvailable("invoices")) === true) ||
      summary("encrypteddatabase", d)
    );
  });

  // ---------------------------------------------------------------------------------------
  heading("3. Rotating a KEK re-wraps the DEK; the DEK itself never changes (R4, R6, R16, R18)");
  const invoicesKpBefore = (await keyProtector("invoices-key"))!.status!;
  const invoicesDbBefore = (await database("invoices"))!.status!;
  explain(
    `invoices-key is at version ${invoicesKpBefore.keyVersion} (${short(invoicesKpBefore.thumbprint)}); ` +
      `invoices' DEK is ${invoicesDbBefore.dekID}.`,
  );
  explain(`A new version of the Local KEK, as a vault's "rotate key" would make:`);
  await kubectl.show(["tde", "local-key", "rotate", "invoices-kek", "-n", NS]);
  const rotated = localKeyVersions(
    await kubectl.run(["tde", "local-key", "list", "invoices-kek", "-n", NS, "-o", "json"]),
  )[0];
  if (!rotated?.current)
    throw new DemoError("kubectl tde local-key list shows no current version of invoices-kek");
  explain(
    `New version ${rotated.version} (${short(rotated.thumbprint)}). The KeyProtector follows the newest version (empty keyVersion, R6):`,
  );
  const t3 = Date.now();
  await wait("invoices to be re-wrapped under the new KEK version", 45_000, async () => {
    const d = await database("invoices");
    const p = d?.status?.effectiveProtector;
    return (
      (p?.thumbprint === rotated.thumbprint && !d?.status?.rotation && d?.status?.state === "Available") ||
      `invoices effectiveProtector=${p?.keyID} ${short(p?.thumbprint)} rotation=${JSON.stringify(d?.status?.rotation)}`
    );
  });
  explain(green(`Re-wrapped ${((Date.now() - t3) / 1000).toFixed(1)}s after the new version appeared.`));
  await kubectl.show(["get", "keyprotector", "invoices-key", "-n", NS]);
  await kubectl.show(["get", "encrypteddatabase", "invoices", "-n", NS]);
  const invoicesDbAfter = (await database("invoices"))!.status!;
  if (invoicesDbAfter.dekID !== invoicesDbBefore.dekID) {
    throw new DemoError(
      `R4 violated: the DEK id changed on rotation (${invoicesDbBefore.dekID} -> ${invoicesDbAfter.dekID})`,
    );
  }
  explain(
    `Same DEK ${bold(invoicesDbAfter.dekID ?? "-")}, protector ${short(invoicesDbBefore.effectiveProtector?.thumbprint)} -> ` +
      `${bold(short(invoicesDbAfter.effectiveProtector?.thumbprint))}. The key history (R18):`,
  );
  await kubectl.show(["tde", "keys", "invoices", "-n", NS]);
  explain("The envelope's wraps (key ids and roles; the wrapped bytes are not shown):");
  const envelopeSecret = await core.readNamespacedSecret({
    name: invoicesDbAfter.envelopeSecretName!,
    namespace: NS,
  });
  const envelope = decodeEnvelopeSecret(envelopeSecret);
  say(indent(`secret/${invoicesDbAfter.envelopeSecretName}  dekID ${envelope.dekID}`));
  for (const w of envelope.wraps) {
    say(indent(`${w.role.padEnd(10)} ${short(w.thumbprint)}  ${w.keyID}  added ${w.addedAt}`, "      "));
  }

  // ---------------------------------------------------------------------------------------
  heading(`4. Losing the key: ${GRACE_SECONDS}s grace, Inaccessible, scaled to zero, revalidated (R10, R11)`);
  explain(
    "shop-postgres' workloadRef is the StatefulSet shop-postgres. Create it with 3 replicas " +
      dim("(there is no controller-manager here, so no pods run: the demo watches spec.replicas)."),
  );
  await kubectl.show(["create", "-n", NS, "-f", "-"], {
    input: [
      "apiVersion: apps/v1",
      "kind: StatefulSet",
      "metadata:",
      "  name: shop-postgres",
      "spec:",
      "  replicas: 3",
      "  serviceName: shop-postgres",
      "  selector:",
      "    matchLabels: {app: shop-postgres}",
      "  template:",
      "    metadata:",
      "      labels: {app: shop-postgres}",
      "    spec:",
      "      containers:",
      "        - name: postgres",
      "          image: postgres:17",
      "",
    ].join("\n"),
    shown: `create -n ${NS} -f -   # StatefulSet shop-postgres, replicas 3`,
  });
  const showSts = () =>
    kubectl.show([
      "get",
      "statefulset",
      "shop-postgres",
      "-n",
      NS,
      "-o",
      "custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas,PREVIOUS:.metadata.annotations.tde\\.dev/previous-replicas,ENFORCED-BY:.metadata.annotations.tde\\.dev/enforced-by",
    ]);
  await showSts();
  explain(
    "Disable the KEK version protecting shop-postgres, as revoking it in a vault would. The plugin first refuses:",
  );
  const refusedDisable = await kubectl.show(["tde", "local-key", "disable", "shop-local-kek", "-n", NS], {
    allowFailure: true,
  });
  if (!refusedDisable.includes("esrv/shop-postgres"))
    throw new DemoError(
      "kubectl tde local-key disable did not refuse, naming shop-postgres, without --force",
    );
  explain("It names who would lose key access. This is the outage the demo wants, so --force:");
  await kubectl.show(["tde", "local-key", "disable", "shop-local-kek", "-n", NS, "--force"]);
  const disabledAt = Date.now();
  explain(`Probes run every ${PROBE_INTERVAL}; the server's KeyAccessible condition counts down:`);
  let inaccessible: EncryptedServer | undefined;
  let shownFull = false;
  let lastLine = "";
  let lastPrinted = 0;
  const countdownDeadline = disabledAt + (GRACE_SECONDS + 45) * 1000;
  while (!inaccessible) {
    alive();
    const s = await server("shop-postgres");
    const c = cond(s, "KeyAccessible");
    const n = await replicas("shop-postgres");
    const elapsed = `+${((Date.now() - disabledAt) / 1000).toFixed(0)}s`.padStart(5);
    if (s?.status?.state === "Inaccessible" && n === 0) inaccessible = s;
    if (c?.status === "False" && !shownFull) {
      say(indent(`${dim(elapsed)} KeyAccessible=False ${bold(c.reason)}: ${c.message}`));
      shownFull = true;
    }
    // the condition names the fixed deadline ("becomes Inaccessible at <time>"); count down to it here
    const deadline = c ? /becomes Inaccessible at (\S+)/.exec(c.message)?.[1] : undefined;
    const countdown = c
      ? c.status === "True"
        ? "key still answering (next probe pending)"
        : deadline
          ? `becomes Inaccessible in ${Math.max(0, Math.ceil((Date.parse(deadline) - Date.now()) / 1000))}s (at ${deadline})`
          : (/(the grace period has run out[^.;]*)/.exec(c.message)?.[1] ?? c.reason)
      : "KeyAccessible not reported yet";
    const line = `state=${s?.status?.state ?? "-"} replicas=${n} KeyAccessible=${c?.status ?? "-"} ${c?.reason ?? ""}: ${countdown}`;
    if (line !== lastLine && (Date.now() - lastPrinted >= 2_500 || inaccessible || !lastLine)) {
      say(indent(`${dim(elapsed)} ${line.replace(/state=(\w+)/, (_m, st: string) => `state=${bold(st)}`)}`));
      lastLine = line;
      lastPrinted = Date.now();
    }
    if (inaccessible) break;
    if (Date.now() > countdownDeadline) {
      throw new DemoError(
        `timed out after ${GRACE_SECONDS + 45}s waiting for shop-postgres to become Inaccessible with replicas 0\n` +
          `  last seen: ${summary("encryptedserver", s)}; replicas=${n}`,
      );
    }
    await sleep(500);
  }
  const lostSince = inaccessible.status?.keyAccessLostSince;
  const since = inaccessible.status?.inaccessibleSince;
  const afterGrace =
    lostSince && since ? (new Date(since).getTime() - new Date(lostSince).getTime()) / 1000 : Number.NaN;
  explain(
    `${red("Inaccessible")}: access lost at ${lostSince}, Inaccessible at ${since} ` +
      `(${Number.isNaN(afterGrace) ? "?" : afterGrace.toFixed(1)}s later; grace ${GRACE_SECONDS}s). ScaleToZero took the StatefulSet to 0:`,
  );
  if (!Number.isNaN(afterGrace) && afterGrace < GRACE_SECONDS - 1) {
    throw new DemoError(
      `R10 violated: Inaccessible ${afterGrace}s after access was lost, before the ${GRACE_SECONDS}s grace`,
    );
  }
  await getTde();
  await showSts();
  await kubectl.show(
    [
      "get",
      "events",
      "-n",
      NS,
      "--field-selector",
      "involvedObject.name=shop-postgres",
      "--sort-by",
      ".lastTimestamp",
    ],
    { maxWidth: 180 },
  );

  explain("Enable the key again:");
  await kubectl.show(["tde", "local-key", "enable", "shop-local-kek", "-n", NS]);
  const enabledAt = Date.now();
  explain(
    "revalidation: Automatic — on the next good probe the operator unwraps the DEK, checks its KCV (R11) ...",
  );
  await wait(
    "shop-postgres to be revalidated (Available, replicas 3)",
    45_000,
    async () => {
      const s = await server("shop-postgres");
      const n = await replicas("shop-postgres");
      return (
        (s?.status?.state === "Available" && n === 3) || `${summary("encryptedserver", s)}; replicas=${n}`
      );
    },
    500,
  );
  explain(
    green(
      `Revalidated ${((Date.now() - enabledAt) / 1000).toFixed(1)}s after the key came back: Available, replicas 3 given back.`,
    ),
  );
  // invoices (its own key, on shop-postgres) was held Inaccessible by its server; it follows the
  // server back when the operator reconciles it after the server's status change.
  await wait("invoices (on shop-postgres) to follow its server back to Available", 30_000, () =>
    databaseAvailable("invoices"),
  );
  await getTde();
  await showSts();
  const revalidated = cond(await server("shop-postgres"), "Revalidated");
  if (revalidated)
    say(indent(`Revalidated=${revalidated.status} ${revalidated.reason}: ${revalidated.message}`));

  // ---------------------------------------------------------------------------------------
  heading("Summary");
  const lines = [
    "1. Four DEKs created and stored only wrapped (envelope Secrets, R2): under the service-managed key (R7, R9),",
    "   under a Local customer key created on first use, inherited by a database, and under a database's own key.",
    "2. A database-level protector re-wrapped shop-orders (Source Database) and survived its server's key change (R14);",
    `   asking for the service-managed key on a customer-managed server was refused: ${refusal.reason} (R15).`,
    `3. A new Local KEK version re-wrapped invoices' DEK: same DEK id, new thumbprint, history kept (R4, R6, R16, R18).`,
    `4. A disabled KEK: KeyAccessible=False with a countdown, Inaccessible after the ${GRACE_SECONDS}s grace with the`,
    "   StatefulSet scaled to 0 (R10), then revalidated automatically with 3 replicas back once the key returned (R11).",
  ];
  for (const line of lines) say(`  ${line}`);
  say();
  explain(
    `Done in ${((Date.now() - t0) / 1000).toFixed(0)}s. Stopping the operator and the control plane ...`,
  );
}

main()
  .then(async () => {
    if (interrupted) return;
    await cleanup(process.env.TDE_DEMO_KEEP === "1");
    say(green("Demo complete: everything it started is stopped and its temp folders removed."));
    process.exit(0);
  })
  .catch(async (error: unknown) => {
    if (interrupted) return;
    say();
    say(red(bold(`Demo failed: ${(error as Error).message}`)));
    if (!(error instanceof DemoError)) say(dim((error as Error).stack ?? ""));
    if (error instanceof DemoError) {
      try {
        await diagnose?.();
      } catch {
        // the control plane may be gone
      }
    }
    if (operator) {
      say(bold("Last lines of the operator log:"));
      say(indent(operator.tail(40)));
      say(`Full operator log kept at ${operator.logFile}`);
    }
    await cleanup(true);
    process.exit(1);
  });
