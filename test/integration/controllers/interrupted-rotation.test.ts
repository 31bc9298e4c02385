import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KekProvider } from "../../../src/kms/provider.js";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import {
  type Api,
  api,
  cond,
  type EncryptedDatabase,
  kc,
  readEnvelope,
  suffix,
  unwrapsWithKcv,
  waitFor,
} from "./helpers.js";

const id = suffix();
const ns = `int-${id}`;
const opNs = `int-op-${id}`;
let a: Api;
let op: TestOperator | undefined;

type Step = "unwrap-old" | "wrap-new" | "prove-new";

/**
 * The Local provider, dying at one step of a rotation (R16): the unwrap of the DEK under the old
 * key, the wrap under the new key, or the proof unwrap of that new wrap. A probe's own round
 * trip is told apart by its bytes: only DEK work handles the envelope's wraps.
 */
function dyingAt(step: Step, oldWrapped: string, state: { died: boolean }) {
  return (inner: KekProvider): KekProvider => {
    const newWraps = new Set<string>();
    const die = (): never => {
      state.died = true;
      throw new Error(`operator killed at ${step}`);
    };
    return {
      name: inner.name,
      describe: (r) => inner.describe(r),
      listVersions: (r) => inner.listVersions(r),
      wrap: async (r, d) => {
        if (!r.keyID) return inner.wrap(r, d); // a probe
        if (step === "wrap-new") return die();
        const result = await inner.wrap(r, d);
        newWraps.add(result.wrapped.toString("base64"));
        return result;
      },
      unwrap: async (r, w) => {
        const b64 = Buffer.from(w).toString("base64");
        if (step === "unwrap-old" && b64 === oldWrapped) return die();
        if (step === "prove-new" && newWraps.has(b64)) return die();
        return inner.unwrap(r, w);
      },
    };
  };
}

beforeAll(async () => {
  a = api(kc());
});

afterAll(async () => {
  await op?.stop();
});

describe("R16 a rotation interrupted at each of its steps", () => {
  for (const step of ["unwrap-old", "wrap-new", "prove-new"] as const) {
    it(`resumes after the operator dies at ${step}, with no DEK lost`, async () => {
      const key = `k-${step}`;
      const name = `db-${step}`;
      op = await startTestOperator({ watchNamespaces: [ns], operatorNamespace: opNs });
      await a.local.createKey(ns, key, { size: 2048 });
      await a.create("KeyProtector", ns, key, { provider: "Local", local: { secretRef: { name: key } } });
      await a.create("EncryptedServer", ns, `srv-${step}`, { protector: { type: "ServiceManaged" } });
      await a.create("EncryptedDatabase", ns, name, {
        serverRef: { name: `srv-${step}` },
        encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: key } },
      });
      const before = await waitFor(
        "db Ready",
        () => a.get<EncryptedDatabase>("EncryptedDatabase", ns, name),
        (o) => cond(o, "Ready")?.status === "True",
      );
      const envelopeBefore = await readEnvelope(a, ns, before.status!.envelopeSecretName!);
      await op.stop();

      // the rotation starts under an operator that dies at `step`
      const state = { died: false };
      op = await startTestOperator({
        watchNamespaces: [ns],
        operatorNamespace: opNs,
        wrapLocal: dyingAt(step, envelopeBefore.wraps[0]!.wrapped, state),
      });
      const rotated = await a.local.rotateKey(ns, key, { size: 2048 });
      await waitFor(
        "the operator to die mid-rotation",
        async () => state.died,
        (d) => d,
        30_000,
      );
      await op.stop();
      const midway = await readEnvelope(a, ns, before.status!.envelopeSecretName!);
      expect(midway.dekID).toBe(envelopeBefore.dekID);
      expect(await unwrapsWithKcv(a, midway, ns, key)).toBe(true); // the current protector still unwraps

      // a fresh operator resumes and completes it
      op = await startTestOperator({ watchNamespaces: [ns], operatorNamespace: opNs });
      const after = await waitFor(
        "rotation resumed",
        () => a.get<EncryptedDatabase>("EncryptedDatabase", ns, name),
        (o) => o.status?.effectiveProtector?.keyID === rotated.keyID,
        30_000,
      );
      const envelope = await readEnvelope(a, ns, after.status!.envelopeSecretName!);
      expect(envelope.dekID).toBe(envelopeBefore.dekID);
      expect(envelope.kcv).toBe(envelopeBefore.kcv);
      expect(await unwrapsWithKcv(a, envelope, ns, key)).toBe(true);
      expect(await unwrapsWithKcv(a, envelope, ns, key, envelopeBefore.wraps[0]?.thumbprint)).toBe(true);
      await op.stop();
      op = undefined;
    });
  }
});
