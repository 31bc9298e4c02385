/** A KubeConfig for a user the harness's CA vouches for but RBAC grants nothing (a "revoked identity"). */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { inject } from "vitest";
import { type ControlPlanePki, issueClientCert } from "../../harness/pki.js";

export function kubeConfigForUser(user: string): k8s.KubeConfig {
  const kubeconfigPath = inject("kubeconfigPath");
  const pkiDir = dirname(kubeconfigPath);
  const pki = { caCert: join(pkiDir, "ca.crt"), caKey: join(pkiDir, "ca.key") } as ControlPlanePki;
  const work = mkdtempSync(join(tmpdir(), "tde-kms-user-"));
  const { cert, key } = issueClientCert(pki, work, user);
  const admin = new k8s.KubeConfig();
  admin.loadFromFile(kubeconfigPath);
  const cluster = admin.getCurrentCluster()!;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ ...cluster }],
    users: [
      {
        name: user,
        certData: Buffer.from(cert).toString("base64"),
        keyData: Buffer.from(key).toString("base64"),
      },
    ],
    contexts: [{ name: user, cluster: cluster.name, user }],
    currentContext: user,
  });
  return kc;
}
