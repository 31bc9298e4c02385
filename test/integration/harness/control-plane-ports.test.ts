import { createServer, type Server } from "node:net";
import * as k8s from "@kubernetes/client-node";
import { afterAll, describe, expect, it } from "vitest";
import { ControlPlane } from "../../harness/control-plane.js";
import { freePort } from "../../harness/ports.js";

/** A loopback port something else holds, as when another control plane bound it first. */
async function takenPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return { port: address.port, server };
}

const held: Server[] = [];
const planes: ControlPlane[] = [];

afterAll(async () => {
  for (const p of planes) await p.stop();
  for (const s of held) s.close();
});

describe("the harness's control plane and ports taken before they are bound", () => {
  it("starts again on fresh ports when etcd finds its port taken, and serves", async () => {
    const taken = await takenPort();
    held.push(taken.server);
    const handed: number[] = [];
    // the first port handed out (etcd's client port) is already held; every later one is free
    const port = async () => {
      const p = handed.length === 0 ? taken.port : await freePort();
      handed.push(p);
      return p;
    };
    const lines: string[] = [];
    const plane = new ControlPlane({ freePort: port, log: (l) => lines.push(l) });
    planes.push(plane);
    const info = await plane.start();
    expect(
      lines.some((l) => /port was taken before it was bound, starting again \(attempt 2\)/.test(l)),
    ).toBe(true);
    expect(handed).toHaveLength(6); // two attempts of three ports each
    expect(info.etcdURL).not.toContain(`:${taken.port}`);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(info.kubeconfigPath);
    const list = await kc.makeApiClient(k8s.CoreV1Api).listNamespace();
    expect(list.items.map((n) => n.metadata?.name)).toContain("default");
  });

  it("gives up after three attempts, with the bind error", async () => {
    const taken = await takenPort();
    held.push(taken.server);
    let calls = 0;
    // etcd's client port is the held one on every attempt
    const port = async () => (calls++ % 3 === 0 ? taken.port : freePort());
    const plane = new ControlPlane({ freePort: port });
    planes.push(plane);
    await expect(plane.start()).rejects.toThrow(/address already in use/);
    expect(calls).toBe(9);
  });
});
