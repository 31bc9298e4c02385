/**
 * R31 owner binding through the controllers' DEK operations, against an in-memory KMS and
 * Secret store: a copy of one owner's envelope is refused for another owner (before any unwrap
 * when its clear owner says so, after it when only the tag can), nothing is written, and what
 * the operator writes is always bound to the owner it writes for.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DekOperations, type EnvelopeSecret, type Kek } from "../../../src/controllers/dek-operations.js";
import { foreignEnvelopeMessage } from "../../../src/controllers/owner-binding.js";
import {
  addWrap,
  computeKcv,
  createEnvelope,
  type Envelope,
  encodeEnvelope,
  envelopeFromDocument,
  envelopeSecret,
  generateDek,
  OwnerBindingError,
  verifyOwnerBinding,
} from "../../../src/crypto/index.js";
import type { KekProvider, KeyReference, KmsRegistry } from "../../../src/kms/provider.js";
import { ApiError, type KubeClient, type KubeObject } from "../../../src/runtime/index.js";

/** A toy KMS: a "wrap" is the key's name then the DEK XORed with a pad derived from it. */
class ToyKms implements KmsRegistry {
  calls: { op: "wrap" | "unwrap"; key: string }[] = [];
  private pad(ref: KeyReference): Buffer {
    return createHash("sha256").update(`${ref.namespace}/${ref.keyName}`).digest();
  }
  providerFor(): KekProvider {
    const self = this;
    return {
      name: "Local",
      describe: async () => {
        throw new Error("not used");
      },
      listVersions: async () => [],
      async wrap(ref, dek) {
        self.calls.push({ op: "wrap", key: `${ref.namespace}/${ref.keyName}` });
        const pad = self.pad(ref);
        return {
          keyID: `local://${ref.namespace}/${ref.keyName}/v1`,
          algorithm: "RSA-OAEP-256" as const,
          wrapped: Buffer.from(dek.map((b, i) => b ^ pad[i]!)),
        };
      },
      async unwrap(ref, wrapped) {
        self.calls.push({ op: "unwrap", key: `${ref.namespace}/${ref.keyName}` });
        const pad = self.pad(ref);
        return Buffer.from(wrapped.map((b, i) => b ^ pad[i]!));
      },
    };
  }
}

/** Secrets in memory, with resourceVersions; create answers AlreadyExists as the API server does. */
class SecretStore {
  objects = new Map<string, KubeObject>();
  writes: string[] = [];
  private rv = 1;
  client(): KubeClient {
    const self = this;
    const key = (ns: string, name: string) => `${ns}/${name}`;
    return {
      async get(_k: unknown, ns: string, name: string) {
        const o = self.objects.get(key(ns, name));
        if (!o) throw new ApiError(404, "NotFound", "not found");
        return structuredClone(o);
      },
      async create(_k: unknown, ns: string, body: KubeObject) {
        const name = body.metadata?.name ?? "";
        if (self.objects.has(key(ns, name))) throw new ApiError(409, "AlreadyExists", "exists");
        const o = { ...body, metadata: { ...body.metadata, resourceVersion: String(self.rv++) } };
        self.objects.set(key(ns, name), o);
        self.writes.push(`create ${key(ns, name)}`);
        return structuredClone(o);
      },
      async replace(_k: unknown, ns: string, name: string, body: KubeObject) {
        const o = { ...body, metadata: { ...body.metadata, resourceVersion: String(self.rv++) } };
        self.objects.set(key(ns, name), o);
        self.writes.push(`replace ${key(ns, name)}`);
        return structuredClone(o);
      },
    } as unknown as KubeClient;
  }
}

const ref = (namespace: string, keyName: string): KeyReference => ({ provider: "Local", namespace, keyName });
const kek = (namespace: string, keyName: string, c: string): Kek => ({
  ref: ref(namespace, keyName),
  keyID: `local://${namespace}/${keyName}/v1`,
  thumbprint: c.repeat(64),
});
const SMK = kek("op", "tde-service-managed-key", "0");
const A_KEY = kek("a", "a-kek", "a");
const A_KEY_2 = kek("a", "a-kek-2", "c");
/** what unwrapCandidates gives any namespace: its own keys and the service-managed key */
const candidatesOf = (ns: string) => [ref(ns, `${ns}-kek`), ref(ns, `${ns}-kek-2`), SMK.ref];
const server = (namespace: string, name: string) => ({ kind: "EncryptedServer", namespace, name });

function setup() {
  const kms = new ToyKms();
  const secrets = new SecretStore();
  const ops = new DekOperations(kms, secrets.client());
  return { kms, secrets, ops };
}

/** B's server on the service-managed key, as the operator made it. */
async function bServer(ops: DekOperations): Promise<EnvelopeSecret> {
  return ops.create(
    "b",
    "tde-esrv-b-sm",
    SMK,
    { kind: "EncryptedServer", name: "b-sm" },
    {
      candidates: candidatesOf("b"),
    },
  );
}

/** What a tenant of A plants: B's envelope document (optionally edited) under the name of A's server. */
function plant(secrets: SecretStore, envelope: Envelope, name: string): EnvelopeSecret {
  const body = envelopeSecret("a", `tde-esrv-${name}`, envelope) as unknown as KubeObject;
  const secret = { ...body, metadata: { ...body.metadata, resourceVersion: "1" } };
  secrets.objects.set(`a/tde-esrv-${name}`, secret);
  return { secret, envelope };
}

function edited(envelope: Envelope, change: (doc: Record<string, unknown>) => void): Envelope {
  const doc = JSON.parse(Buffer.from(encodeEnvelope(envelope)["envelope.json"]!, "base64").toString("utf8"));
  change(doc);
  return envelopeFromDocument(doc);
}

async function refused(p: Promise<unknown>): Promise<OwnerBindingError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OwnerBindingError);
  return error as OwnerBindingError;
}

describe("R31 the operator writes every envelope bound to its owner", () => {
  it("create and copy bind to the owner they write for; the tag verifies with the DEK", async () => {
    const { ops, kms } = setup();
    const b = await bServer(ops);
    expect(b.envelope.ownerBinding).toMatchObject(server("b", "b-sm"));
    // a restore or a secondary in A of B's envelope, allowed by B (R24, R20, R31): bound to A's owner
    const copy = await ops.copy(
      b,
      candidatesOf("b"),
      { owner: server("b", "b-sm") },
      "a",
      "tde-edb-restored",
      A_KEY,
      { kind: "EncryptedDatabase", name: "restored" },
      { candidates: candidatesOf("a") },
    );
    expect(copy.envelope.ownerBinding).toMatchObject({
      kind: "EncryptedDatabase",
      namespace: "a",
      name: "restored",
    });
    expect(copy.envelope.dekID).toBe(b.envelope.dekID);
    const { dek } = await ops.unwrap(copy.envelope, candidatesOf("a"), {
      owner: { kind: "EncryptedDatabase", namespace: "a", name: "restored" },
    });
    expect(computeKcv(dek)).toBe(b.envelope.kcv);
    expect(kms.calls.filter((c) => c.op === "wrap").map((c) => c.key)).toEqual([
      "op/tde-service-managed-key",
      "a/a-kek",
    ]);
  });
});

describe("R31 a copy of another owner's envelope is useless elsewhere", () => {
  it("as copied (its clear owner is B's): refused before any KMS call, for adoption, re-wrap, keys and revalidation", async () => {
    const { ops, kms, secrets } = setup();
    const b = await bServer(ops);
    const planted = plant(secrets, b.envelope, "x");
    kms.calls.length = 0;
    secrets.writes.length = 0;
    const check = { owner: server("a", "x") };
    const e = await refused(ops.adopt(planted, candidatesOf("a"), check));
    expect(e.problem).toBe("OtherOwner");
    expect((await refused(ops.addWrap(planted, candidatesOf("a"), A_KEY, "protector", check))).problem).toBe(
      "OtherOwner",
    );
    expect((await refused(ops.addWrap(planted, candidatesOf("a"), A_KEY, "retained", check))).problem).toBe(
      "OtherOwner",
    );
    await refused(ops.unwrap(planted.envelope, candidatesOf("a"), check));
    // planted as a create's existing Secret (the cache had not seen it yet): not adopted
    await refused(
      ops.create(
        "a",
        "tde-esrv-x",
        A_KEY,
        { kind: "EncryptedServer", name: "x" },
        { candidates: candidatesOf("a") },
      ),
    );
    expect(kms.calls.filter((c) => c.op === "unwrap")).toEqual([]);
    expect(secrets.writes).toEqual([]);
    const message = foreignEnvelopeMessage(e, { namespace: "a", name: "tde-esrv-x" }, true);
    expect(message).toContain("a/tde-esrv-x");
    expect(message).toContain("EncryptedServer b/b-sm");
    expect(message).toMatch(/delete the Secret/i);
  });

  it("relabelled to A in clear: the unwrap happens, the tag does not match, nothing is wrapped or written", async () => {
    const { ops, kms, secrets } = setup();
    const b = await bServer(ops);
    const relabelled = edited(b.envelope, (doc) => {
      (doc.ownerBinding as Record<string, string>).namespace = "a";
      (doc.ownerBinding as Record<string, string>).name = "x";
    });
    const planted = plant(secrets, relabelled, "x");
    kms.calls.length = 0;
    secrets.writes.length = 0;
    const check = { owner: server("a", "x") };
    expect((await refused(ops.adopt(planted, candidatesOf("a"), check))).problem).toBe("TagMismatch");
    expect(kms.calls).toEqual([{ op: "unwrap", key: "op/tde-service-managed-key" }]);
    // the same Secret version is refused again without asking the KMS (no unwrap per reconcile)
    expect((await refused(ops.adopt(planted, candidatesOf("a"), check))).problem).toBe("TagMismatch");
    expect((await refused(ops.addWrap(planted, candidatesOf("a"), A_KEY, "protector", check))).problem).toBe(
      "TagMismatch",
    );
    expect(kms.calls).toHaveLength(1);
    // ... even when A also forged its status to record B's DEK id
    const recorded = { ...check, recordedDekID: b.envelope.dekID };
    expect(
      (await refused(ops.addWrap(planted, candidatesOf("a"), A_KEY, "protector", recorded))).problem,
    ).toBe("TagMismatch");
    expect(kms.calls.filter((c) => c.op === "wrap")).toEqual([]);
    expect(secrets.writes).toEqual([]);
  });

  it("stripped of its binding: refused unless the owner's status records that DEK (before owner binding)", async () => {
    const { ops, kms, secrets } = setup();
    const b = await bServer(ops);
    const stripped = edited(b.envelope, (doc) => {
      delete doc.ownerBinding;
    });
    const planted = plant(secrets, stripped, "x");
    kms.calls.length = 0;
    const check = { owner: server("a", "x"), recordedDekID: "some-other-dek" };
    expect((await refused(ops.adopt(planted, candidatesOf("a"), check))).problem).toBe("Unbound");
    expect((await refused(ops.addWrap(planted, candidatesOf("a"), A_KEY, "protector", check))).problem).toBe(
      "Unbound",
    );
    expect(kms.calls).toEqual([]);
  });

  it("a secondary or restore whose source envelope is not its source's gets nothing copied", async () => {
    const { ops, kms, secrets } = setup();
    const b = await bServer(ops);
    kms.calls.length = 0;
    secrets.writes.length = 0;
    // A names its own database "p" as the source/primary, whose Secret holds B's envelope
    const e = await refused(
      ops.copy(
        b,
        candidatesOf("a"),
        { owner: { kind: "EncryptedDatabase", namespace: "a", name: "p" } },
        "a",
        "tde-edb-s",
        A_KEY,
        { kind: "EncryptedDatabase", name: "s" },
        { candidates: candidatesOf("a") },
      ),
    );
    expect(e.expected).toEqual({ kind: "EncryptedDatabase", namespace: "a", name: "p" });
    expect(kms.calls).toEqual([]);
    expect(secrets.writes).toEqual([]);
  });
});

describe("R31 what stays as it was", () => {
  it("a crash between writing the envelope and the status: the envelope is adopted after one unwrap", async () => {
    const { ops, kms } = setup();
    const first = await ops.create(
      "a",
      "tde-esrv-x",
      A_KEY,
      { kind: "EncryptedServer", name: "x" },
      {
        candidates: candidatesOf("a"),
      },
    );
    kms.calls.length = 0;
    // the retry's create finds the first envelope and takes it on
    const again = await ops.create(
      "a",
      "tde-esrv-x",
      A_KEY,
      { kind: "EncryptedServer", name: "x" },
      {
        candidates: candidatesOf("a"),
      },
    );
    expect(again.envelope.dekID).toBe(first.envelope.dekID);
    expect(kms.calls.map((c) => c.op)).toEqual(["wrap", "unwrap"]); // the discarded DEK's wrap, the proof
    // once the status records it, a plain reconcile makes no KMS call
    kms.calls.length = 0;
    await ops.adopt(again, candidatesOf("a"), {
      owner: server("a", "x"),
      recordedDekID: first.envelope.dekID,
    });
    expect(kms.calls).toEqual([]);
  });

  it("an envelope written before owner binding, recorded in status, is used and gets its binding on the next re-wrap", async () => {
    const { ops, secrets } = setup();
    const dek = generateDek();
    const wrapped = await new ToyKms().providerFor().wrap(A_KEY.ref, dek);
    const legacy = addWrap(createEnvelope("legacy-dek", computeKcv(dek)), {
      keyID: wrapped.keyID,
      thumbprint: A_KEY.thumbprint,
      wrapped: wrapped.wrapped,
      role: "protector",
    });
    const current = plant(secrets, legacy, "old");
    const check = { owner: server("a", "old"), recordedDekID: "legacy-dek" };
    expect(await ops.adopt(current, candidatesOf("a"), check)).toBe(current);
    const next = await ops.addWrap(current, candidatesOf("a"), A_KEY_2, "protector", check);
    expect(next.envelope.ownerBinding).toMatchObject(server("a", "old"));
    expect(() =>
      verifyOwnerBinding(next.envelope, Buffer.from(dek), server("a", "old"), false),
    ).not.toThrow();
    expect(secrets.writes).toEqual(["replace a/tde-esrv-old"]);
  });
});
