import { describe, expect, it } from "vitest";
import { createLogger } from "../../../src/observability/logger.js";
import { EventRecorder, type KubeClient } from "../../../src/runtime/index.js";

describe("R28 every Event is also a log line a person on call can read", () => {
  it("Normal at info, Warning at warn, as JSON with the object and the reason; below the level nothing", async () => {
    const created: unknown[] = [];
    const client = {
      create: async (_kind: unknown, _ns: string, body: unknown) => {
        created.push(body);
        return body;
      },
      patch: async () => ({}),
    } as unknown as KubeClient;
    const lines: string[] = [];
    const recorder = new EventRecorder(client, {
      component: "tde-operator",
      log: createLogger("info", {}, (line) => lines.push(line)),
    });
    const server = {
      apiVersion: "tde.dev/v1alpha1",
      kind: "EncryptedServer",
      metadata: { name: "shop-mariadb", namespace: "shop", uid: "u1" },
    };
    await recorder.warning(server, "KeyDisabled", "key local://shop/shop-kek/v1 is disabled");
    await recorder.normal(server, "KeyAccessRestored", "the key answered its probe");
    const quiet = new EventRecorder(client, {
      component: "tde-operator",
      log: createLogger("warn", {}, (line) => lines.push(line)),
    });
    await quiet.normal(server, "Revalidated", "KCV matched");

    expect(created).toHaveLength(3); // the Events themselves are still written
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({
        level: "warn",
        msg: "key local://shop/shop-kek/v1 is disabled",
        event: "KeyDisabled",
        kind: "EncryptedServer",
        namespace: "shop",
        name: "shop-mariadb",
      }),
      expect.objectContaining({ level: "info", event: "KeyAccessRestored", name: "shop-mariadb" }),
    ]);
  });
});
