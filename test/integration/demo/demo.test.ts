import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** Runs `tsx scripts/demo.ts` (what `npm run demo` runs after ensure-deps) and collects its output. */
function runDemo(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(root, "scripts/demo.ts")], {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, output }));
  });
}

describe("npm run demo", () => {
  it("tells the whole story on the embedded default and cleans up after itself", async () => {
    const { code, output } = await runDemo();
    if (code !== 0) console.error(output);
    expect(code).toBe(0);
    // 1. the samples: four envelopes, the plugin's status
    for (const envelope of [
      "tde-esrv-shop-mariadb",
      "tde-esrv-shop-postgres",
      "tde-edb-shop-orders",
      "tde-edb-invoices",
    ]) {
      expect(output).toContain(envelope);
    }
    expect(output).toContain("$ kubectl tde status -n demo");
    // 2. override, R14, R15
    expect(output).toMatch(/R14: shop-mariadb is now [0-9a-f]{12}; shop-orders kept its own/);
    expect(output).toContain("ProtectorChangeAccepted=False reason ServiceManagedKeyNotAllowed");
    expect(output).toContain("error: not reverted: RevertToServerKeyNotAllowed");
    // 3. rotation: the retained wrap and the new protector
    expect(output).toMatch(/Same DEK [0-9a-f-]{36}, protector [0-9a-f]{12} -> [0-9a-f]{12}/);
    // 4. key loss: countdown, Inaccessible at the deadline with 0 replicas, back with 3
    expect(output).toMatch(/becomes Inaccessible in \d+s/);
    expect(output).toMatch(/state=Inaccessible replicas=0/);
    expect(output).toMatch(/Revalidated [\d.]+s after the key came back: Available, replicas 3 given back/);
    // R7: every key operation is a command a reader can repeat, never an in-process call
    expect(output).toContain("$ kubectl tde local-key list -n demo");
    expect(output).toContain("$ kubectl tde local-key rotate invoices-kek -n demo");
    expect(output).toMatch(
      /error: refused: disabling version [0-9a-f]+ of local key demo\/shop-local-kek .*esrv\/shop-postgres \(protector\)/,
    );
    expect(output).toContain("$ kubectl tde local-key disable shop-local-kek -n demo --force");
    expect(output).toContain("$ kubectl tde local-key enable shop-local-kek -n demo");
    expect(output).not.toContain("LocalKeyProvider");
    expect(output).toContain("Demo complete");
    // never key material: no PEM, no envelope bytes
    expect(output).not.toMatch(/BEGIN [A-Z ]*PRIVATE KEY/);
    expect(output).not.toMatch(/"wrapped"/);
  }, 240_000);
});
