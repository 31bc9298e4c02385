import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type KekProvider, KeyAccessError } from "../../../src/kms/provider.js";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import {
  type Api,
  api,
  cond,
  createLocalKeyProtector,
  type EncryptedDatabase,
  type EncryptedServer,
  kc,
  readEnvelope,
  suffix,
  waitFor,
} from "./helpers.js";

const id = suffix();
const ns = `int-rr-${id}`;
const opNs = `int-rr-op-${id}`;
let a: Api;
let op: TestOperator;

/**
 * The Local provider, answering the next `count` DEK wraps under one key with a transient KMS
 * failure (Throttled), while every probe of that key succeeds: only DEK work pins a key id, a
 * probe's round trip does not.
 */
class RewrapFaults {
  private readonly armed = new Map<string, number>();
  readonly failed = new Map<string, number>();
  /** unwraps of one wrapped DEK (base64) still to fail: a DEK's unwrap, never a probe's */
  private readonly armedUnwraps = new Map<string, number>();
  unwrapsFailed = 0;

  arm(keyName: string, count: number): void {
    this.armed.set(keyName, count);
  }

  armUnwrap(wrapped: string, count: number): void {
    this.armedUnwraps.set(wrapped, count);
  }

  readonly wrap = (inner: KekProvider): KekProvider => ({
    name: inner.name,
    describe: (r) => inner.describe(r),
    listVersions: (r) => inner.listVersions(r),
    unwrap: async (r, w) => {
      const b64 = w.toString("base64");
      const left = this.armedUnwraps.get(b64) ?? 0;
      if (left > 0) {
        this.armedUnwraps.set(b64, left - 1);
        this.unwrapsFailed += 1;
        throw new KeyAccessError("Throttled", "injected: the vault throttled a DEK unwrap");
      }
      return inner.unwrap(r, w);
    },
    wrap: async (r, d) => {
      const left = this.armed.get(r.keyName) ?? 0;
      if (r.keyID && left > 0) {
        this.armed.set(r.keyName, left - 1);
        this.failed.set(r.keyName, (this.failed.get(r.keyName) ?? 0) + 1);
        throw new KeyAccessError("Throttled", `injected: the vault throttled a wrap under ${r.keyName}`);
      }
      return inner.wrap(r, d);
    },
  });
}

const faults = new RewrapFaults();

beforeAll(async () => {
  a = api(kc());
  op = await startTestOperator({ watchNamespaces: [ns], operatorNamespace: opNs, wrapLocal: faults.wrap });
});

afterAll(async () => {
  await op?.stop();
});

describe("R16 a re-wrap that fails with a transient KMS error is retried", () => {
  it("a database converges to the rotated key with no other event, while its key's probes succeed", async () => {
    await createLocalKeyProtector(a, ns, "kdb");
    await a.create("EncryptedServer", ns, "srv-db", { protector: { type: "ServiceManaged" } });
    await a.create("EncryptedDatabase", ns, "db", {
      serverRef: { name: "srv-db" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "kdb" } },
    });
    const before = await waitFor(
      "db Ready",
      () => a.get<EncryptedDatabase>("EncryptedDatabase", ns, "db"),
      (o) => cond(o, "Ready")?.status === "True",
    );
    faults.arm("kdb", 3);
    const rotated = await a.local.rotateKey(ns, "kdb", { size: 2048 });
    // the failure is recorded on Ready (the DEK stays under its current protector) …
    await waitFor(
      "the re-wrap to fail",
      async () => faults.failed.get("kdb") ?? 0,
      (n) => n >= 1,
      30_000,
    );
    // … and retried with backoff until it succeeds: nothing else changes meanwhile
    const after = await waitFor(
      "db on the rotated key",
      () => a.get<EncryptedDatabase>("EncryptedDatabase", ns, "db"),
      (o) => o.status?.effectiveProtector?.keyID === rotated.keyID && cond(o, "Ready")?.status === "True",
      30_000,
    );
    expect(faults.failed.get("kdb")).toBe(3);
    const envelope = await readEnvelope(a, ns, after.status!.envelopeSecretName!);
    expect(envelope.dekID).toBe(before.status!.dekID);
    expect(envelope.wraps.find((w) => w.role === "protector")?.keyID).toBe(rotated.keyID);
  });

  it("a server converges to the rotated key with no other event, while its key's probes succeed", async () => {
    await createLocalKeyProtector(a, ns, "ksrv");
    await a.create("EncryptedServer", ns, "srv", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "ksrv" } },
      enforcement: "None",
    });
    const before = await waitFor(
      "server Ready",
      () => a.get<EncryptedServer>("EncryptedServer", ns, "srv"),
      (o) => cond(o, "Ready")?.status === "True",
    );
    faults.arm("ksrv", 3);
    const rotated = await a.local.rotateKey(ns, "ksrv", { size: 2048 });
    const after = await waitFor(
      "server on the rotated key",
      () => a.get<EncryptedServer>("EncryptedServer", ns, "srv"),
      (o) => o.status?.protector?.keyID === rotated.keyID && cond(o, "Ready")?.status === "True",
      30_000,
    );
    expect(faults.failed.get("ksrv")).toBe(3);
    const envelope = await readEnvelope(a, ns, after.status!.envelopeSecretName!);
    expect(envelope.dekID).toBe(before.status!.dekID);
  });

  it("R11 a revalidation that fails with a transient KMS error is retried until the database is Available, with no other event", async () => {
    await createLocalKeyProtector(a, ns, "krv");
    await a.create("EncryptedServer", ns, "srv-rv", {
      protector: { type: "ServiceManaged" },
      revalidation: "Manual",
    });
    await a.create("EncryptedDatabase", ns, "src-rv", {
      serverRef: { name: "srv-rv" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "krv" } },
    });
    await waitFor(
      "source Ready",
      () => a.get<EncryptedDatabase>("EncryptedDatabase", ns, "src-rv"),
      (o) => cond(o, "Ready")?.status === "True",
    );
    // R23: a restore starts Inaccessible and, on a Manual server, waits for a new token
    await a.create("EncryptedDatabase", ns, "copy-rv", {
      serverRef: { name: "srv-rv" },
      restore: { sourceRef: { name: "src-rv" }, keys: [{ keyProtectorRef: { name: "krv" } }] },
    });
    const copy = await waitFor(
      "the copy Inaccessible",
      () => a.get<EncryptedDatabase>("EncryptedDatabase", ns, "copy-rv"),
      (o) => cond(o, "Restored")?.status === "True" && o.status?.state === "Inaccessible",
    );
    const envelope = await readEnvelope(a, ns, copy.status!.envelopeSecretName!);
    for (const w of envelope.wraps) faults.armUnwrap(w.wrapped, 3);
    await a.patch("EncryptedServer", ns, "srv-rv", { spec: { revalidationToken: "go" } });
    const back = await waitFor(
      "the copy revalidated",
      () => a.get<EncryptedDatabase>("EncryptedDatabase", ns, "copy-rv"),
      (o) => o.status?.state === "Available",
      30_000,
    );
    expect(faults.unwrapsFailed).toBeGreaterThanOrEqual(3);
    expect(cond(back, "Revalidated")?.status).toBe("True");
    expect(back.status?.lastRevalidatedToken).toBe("go");
  });
});
