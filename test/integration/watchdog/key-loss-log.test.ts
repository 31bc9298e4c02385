/**
 * R28: the log of a key-loss journey, as a person on call reads it at the default level (info):
 * the operator (in-process, Local provider, the real API server) loses a server's key past the
 * grace period, then gets it back and revalidates. Every state change is a JSON line with the
 * object, the transition and its cause, Inaccessible at warn; no key material anywhere.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import { type Api, api, cond, kc, suffix, waitFor } from "../controllers/helpers.js";
import { KeyFaults } from "./support.js";

const id = suffix();
const ns = `wdlog-${id}`;
const faults = new KeyFaults();
const lines: string[] = [];
let a: Api;
let op: TestOperator;

type Line = Record<string, unknown> & { level: string; msg: string };
const parsed = () => lines.map((l) => JSON.parse(l) as Line);
const stateChange = (kind: string, name: string, to: string) =>
  parsed().find((l) => l.kind === kind && l.name === name && l.to === to);

beforeAll(async () => {
  a = api(kc());
  op = await startTestOperator({
    watchNamespaces: [ns],
    operatorNamespace: `wdlog-op-${id}`,
    probeIntervalMs: 1_000,
    wrapLocal: faults.wrap,
    logSink: (line) => lines.push(line),
  });
});

afterAll(async () => {
  await op?.stop();
});

describe("R28 the log of a key-loss journey", () => {
  it("names every state change of the server and its database with its cause, Inaccessible at warn", async () => {
    await a.local.createKey(ns, "shop-kek", { size: 2048 });
    await a.create("KeyProtector", ns, "shop-key", {
      provider: "Local",
      local: { secretRef: { name: "shop-kek" } },
      requirements: { requireRecoverable: false },
    });
    await a.create("EncryptedServer", ns, "shop", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "shop-key" } },
      keyAccessGracePeriod: "5s",
      revalidation: "Automatic",
    });
    await a.create("EncryptedDatabase", ns, "orders", { serverRef: { name: "shop" } });
    const state = (kind: "EncryptedServer" | "EncryptedDatabase", name: string, want: string) =>
      waitFor(
        `${name} ${want}`,
        () => a.get<{ status?: { state?: string } }>(kind, ns, name),
        (o) => o.status?.state === want,
        60_000,
      );
    await state("EncryptedDatabase", "orders", "Available");
    await waitFor(
      "shop Ready",
      () =>
        a.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
          "EncryptedServer",
          ns,
          "shop",
        ),
      (o) => cond(o as never, "Ready")?.status === "True",
    );

    faults.fail(ns, "shop-kek", "KeyDisabled");
    await state("EncryptedServer", "shop", "Inaccessible");
    await state("EncryptedDatabase", "orders", "Inaccessible");
    faults.heal(ns, "shop-kek");
    await state("EncryptedServer", "shop", "Available");
    await state("EncryptedDatabase", "orders", "Available");
    await waitFor(
      "the log lines",
      async () => lines.length,
      () =>
        Boolean(
          stateChange("EncryptedServer", "shop", "Available") &&
            stateChange("EncryptedDatabase", "orders", "Available"),
        ),
    );

    const all = parsed();
    for (const l of all) {
      expect(typeof l.ts).toBe("string");
      expect(["info", "warn", "error"]).toContain(l.level);
    }
    const serverLost = stateChange("EncryptedServer", "shop", "Inaccessible");
    expect(serverLost).toMatchObject({
      level: "warn",
      namespace: ns,
      from: "Available",
      reason: "Inaccessible",
    });
    expect(String(serverLost?.cause)).toMatch(/disabled/i);
    const databaseLost = stateChange("EncryptedDatabase", "orders", "Inaccessible");
    expect(databaseLost).toMatchObject({ level: "warn", namespace: ns, from: "Available" });
    expect(String(databaseLost?.cause)).toMatch(/KeyDisabled/);
    expect(stateChange("EncryptedServer", "shop", "Available")).toMatchObject({
      level: "info",
      reason: "Available",
    });
    expect(stateChange("EncryptedDatabase", "orders", "Available")).toMatchObject({ level: "info" });
    // the server's journey in order, each change once
    const journey = all
      .filter((l) => l.kind === "EncryptedServer" && l.name === "shop" && l.to !== undefined)
      .map((l) => `${l.from}->${l.to}`);
    // the first change is from no state: to Provisioning while the KeyProtector is still being
    // probed, or straight to Available when its first probe landed before the server's first pass
    expect(journey[0]).toMatch(/^None->(Provisioning|Available)$/);
    expect(journey).toContain("Available->Inaccessible");
    expect(journey.at(-1)).toMatch(/->Available$/);
    // R1: key material never in a log line (the run-wide leak scan also checks for every DEK)
    expect(lines.join("\n")).not.toMatch(/PRIVATE KEY|BEGIN RSA/);
  });
});
