import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { inject } from "vitest";

const execFileAsync = promisify(execFile);

/** A KubeConfig for the harness's system:masters user. */
export function testKubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(inject("kubeconfigPath"));
  return kc;
}

/** A fresh namespace with a random suffix, so every test file has its own. */
export async function createTestNamespace(kc: k8s.KubeConfig, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}

/** Runs the harness's kubectl against the test control plane. */
export async function kubectl(args: string[], input?: string): Promise<{ stdout: string; stderr: string }> {
  const bin = inject("kubectlPath");
  if (!bin) throw new Error("kubectl is not available in this harness");
  const child = execFileAsync(bin, ["--kubeconfig", inject("kubeconfigPath"), ...args], {
    maxBuffer: 16 * 1024 * 1024,
  });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  return child;
}
