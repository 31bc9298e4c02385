import { generateKeyPairSync } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import { describe, expect, it, vi } from "vitest";
import { LOCAL_KEY_LABEL, SecretKind } from "../../../src/controllers/resources.js";
import { generateDek } from "../../../src/crypto/dek.js";
import { LOCAL_KEY_SECRET_TYPE, LocalKeyProvider, SERVICE_MANAGED_KEY_NAME } from "../../../src/kms/local.js";
import {
  type LocalKeySecrets,
  type SecretObject,
  secretsOverCoreV1,
} from "../../../src/kms/local-secrets.js";
import { KeyAccessError, type KeyReference } from "../../../src/kms/provider.js";
import { localKeyCache } from "../../../src/operator.js";
import { HttpKubeClient, Informer, type KubeObject } from "../../../src/runtime/index.js";
import { FaultProxy, kubeConfigThrough, upstreamFromKubeConfig } from "../../harness/fault-proxy.js";
import { createTestNamespace, testKubeConfig } from "../../harness/kube.js";
import { freePort } from "../../harness/ports.js";
import { kekProviderContract } from "./contract.js";
import { kubeConfigForUser } from "./users.js";

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);

kekProviderContract("KMS contract: Local provider on the real API server (R7)", async () => {
  const namespace = await createTestNamespace(kc, "kms-local");
  const provider = new LocalKeyProvider(core);
  const ref = (name: string): KeyReference => ({ provider: "Local", namespace, keyName: name });
  // Key material made before the tests: a new version is then an import, as quick as a vault's
  // (making an RSA key takes up to seconds on a loaded machine, and "five versions within one
  // second" is the case the contract is about). Beyond the pool, rotations generate keys.
  const material = Array.from({ length: 8 }, () =>
    generateKeyPairSync("rsa", { modulusLength: 2048 })
      .privateKey.export({ type: "pkcs8", format: "pem" })
      .toString(),
  );
  return {
    provider,
    namespace,
    recoverable90: true,
    retriesThrottled: false,
    keyName: (base) => base,
    async createKey(name, options = {}) {
      await provider.createKey(namespace, name, options);
      return ref(name);
    },
    rotateKey: async (r) => {
      const pem = material.pop();
      return pem
        ? (await provider.importKey(namespace, r.keyName, pem)).version
        : (await provider.rotateKey(namespace, r.keyName)).version;
    },
    // the Local key's current version is its last one (what `kubectl tde local-key rotate` made)
    currentVersion: async (r) => (await provider.listVersions(r))[0]!.version,
    setEnabled: (r, enabled) => provider.setEnabled(namespace, r.keyName, enabled),
    deleteKey: (r) => provider.deleteKey(namespace, r.keyName),
    recoverKey: (r) => provider.recoverKey(namespace, r.keyName),
    async importKey(name, pem) {
      await provider.importKey(namespace, name, pem);
      return ref(name);
    },
    async revoked(r) {
      // A user the API server authenticates but RBAC grants nothing: it cannot read the Secret.
      const nobody = kubeConfigForUser(`nobody-${namespace}`).makeApiClient(k8s.CoreV1Api);
      return { provider: new LocalKeyProvider(nobody), ref: r };
    },
    async throttled(r) {
      // the Local provider's "vault" is the API server: the fault proxy in front of it answers 429
      const proxy = await FaultProxy.start({ upstream: await upstreamFromKubeConfig(kc) });
      const through = new LocalKeyProvider(kubeConfigThrough(proxy).makeApiClient(k8s.CoreV1Api));
      return {
        provider: through,
        ref: r,
        throttleOnce: (seconds) => proxy.throttle(seconds, 1),
        throttleAlways: (seconds) => proxy.throttle(seconds),
        throttledSeen: () => proxy.counts.faults.throttle,
        stop: () => proxy.stop(),
      };
    },
    async unreachable(r) {
      const closed = new k8s.KubeConfig();
      closed.loadFromOptions({
        clusters: [{ name: "closed", server: `https://127.0.0.1:${await freePort()}`, skipTLSVerify: false }],
        users: [{ name: "nobody" }],
        contexts: [{ name: "closed", cluster: "closed", user: "nobody" }],
        currentContext: "closed",
      });
      return { provider: new LocalKeyProvider(closed.makeApiClient(k8s.CoreV1Api)), ref: r };
    },
  };
});

describe("Local provider specifics", () => {
  it("R7 ensureServiceManagedKey creates the operator's own KEK once, and both racers see the same key", async () => {
    const namespace = await createTestNamespace(kc, "kms-smk");
    const a = new LocalKeyProvider(core);
    const b = new LocalKeyProvider(core);
    const [ra, rb] = await Promise.all([
      a.ensureServiceManagedKey(namespace),
      b.ensureServiceManagedKey(namespace),
    ]);
    expect(ra.keyName).toBe(SERVICE_MANAGED_KEY_NAME);
    const [da, db] = await Promise.all([a.describe(ra), b.describe(rb)]);
    expect(da.thumbprint).toBe(db.thumbprint);
    expect(da.keySize).toBe(3072);
    const secret = await core.readNamespacedSecret({ namespace, name: SERVICE_MANAGED_KEY_NAME });
    expect(secret.type).toBe(LOCAL_KEY_SECRET_TYPE);
    expect((await a.ensureServiceManagedKey(namespace)).keyName).toBe(SERVICE_MANAGED_KEY_NAME);
    expect((await a.listVersions(ra)).length).toBe(1);
  });

  it("R7 a soft-deleted service-managed key is recovered, not replaced", async () => {
    const namespace = await createTestNamespace(kc, "kms-smk2");
    const p = new LocalKeyProvider(core);
    const ref = await p.ensureServiceManagedKey(namespace);
    const before = await p.describe(ref);
    await p.deleteKey(namespace, ref.keyName);
    await p.ensureServiceManagedKey(namespace);
    expect((await p.describe(ref)).thumbprint).toBe(before.thumbprint);
  });

  it("R1 R7 errors and descriptions never carry the private key", async () => {
    const namespace = await createTestNamespace(kc, "kms-leak");
    const p = new LocalKeyProvider(core);
    await p.createKey(namespace, "k", { size: 2048 });
    const ref: KeyReference = { provider: "Local", namespace, keyName: "k" };
    await p.setEnabled(namespace, "k", false);
    const error = await p.wrap(ref, generateDek()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyAccessError);
    const text = `${(error as Error).message} ${JSON.stringify(await p.describe(ref))}`;
    expect(text).not.toMatch(/PRIVATE KEY/);
    expect(text).not.toMatch(/privateKeyPem/);
  });

  it("R31 a key id from another namespace is refused", async () => {
    const namespace = await createTestNamespace(kc, "kms-ns");
    const p = new LocalKeyProvider(core);
    await p.createKey(namespace, "k", { size: 2048 });
    const wrapped = await p.wrap({ provider: "Local", namespace, keyName: "k" }, generateDek());
    const other: KeyReference = {
      provider: "Local",
      namespace: "elsewhere",
      keyName: "k",
      keyID: wrapped.keyID,
    };
    await expect(p.unwrap(other, wrapped.wrapped)).rejects.toMatchObject({ reason: "PermissionDenied" });
  });
});

describe("Local provider reading keys from the operator's informer (R7 R16)", () => {
  /** A provider whose wraps and unwraps read from a real informer of Local KEK Secrets; reads counted. */
  async function cachedProvider(prefix: string) {
    const namespace = await createTestNamespace(kc, prefix);
    const reads: string[] = [];
    const live = secretsOverCoreV1(core, LocalKeyProvider.DEFAULT_REQUEST_TIMEOUT_MS);
    const counted: LocalKeySecrets = {
      ...live,
      read: (ns, name) => {
        reads.push(`${ns}/${name}`);
        return live.read(ns, name);
      },
    };
    const informer = new Informer<KubeObject>({
      client: new HttpKubeClient(kc),
      kind: SecretKind,
      namespaces: [namespace],
      labelSelector: `${LOCAL_KEY_LABEL}=true`,
    });
    const provider = new LocalKeyProvider(counted, { keyCache: localKeyCache(informer) });
    const admin = new LocalKeyProvider(core);
    informer.start();
    await informer.waitForSync();
    /** Waits until the informer holds the Secret as the API server has it now (or its absence). */
    const caughtUp = async (name: string) => {
      const now = await core.readNamespacedSecret({ namespace, name }).catch(() => undefined);
      const want = now?.metadata?.resourceVersion;
      await vi.waitFor(
        () => {
          expect(informer.store.get(namespace, name)?.metadata?.resourceVersion).toBe(want);
          expect(informer.isWatching()).toBe(true);
        },
        { timeout: 10_000, interval: 20 },
      );
    };
    const ref = (name: string): KeyReference => ({ provider: "Local", namespace, keyName: name });
    return { namespace, reads, informer, provider, admin, caughtUp, ref };
  }

  it("R7 a DEK's wrap and unwrap read no Secret once the informer holds the key; describe and list read it live", async () => {
    const t = await cachedProvider("kms-cache");
    try {
      await t.admin.createKey(t.namespace, "k", { size: 2048 });
      await t.caughtUp("k");
      const d = await t.provider.describe(t.ref("k"));
      expect(t.reads).toEqual([`${t.namespace}/k`]);
      const pinned = { ...t.ref("k"), keyID: d.keyID };
      const dek = generateDek();
      const wrapped = await t.provider.wrap(pinned, dek);
      expect((await t.provider.unwrap(pinned, wrapped.wrapped)).equals(dek)).toBe(true);
      expect(t.reads).toHaveLength(1);
      await t.provider.listVersions(t.ref("k"));
      expect(t.reads).toHaveLength(2);
    } finally {
      await t.informer.stop();
    }
  });

  it("R16 a disabled version stops wrapping and unwrapping once the watch has delivered the change; a deleted key is KeyNotFound", async () => {
    const t = await cachedProvider("kms-cache-revoke");
    try {
      await t.admin.createKey(t.namespace, "k", { size: 2048 });
      await t.caughtUp("k");
      const d = await t.provider.describe(t.ref("k"));
      const pinned = { ...t.ref("k"), keyID: d.keyID };
      const wrapped = await t.provider.wrap(pinned, generateDek());
      await t.admin.setEnabled(t.namespace, "k", false, d.version);
      await t.caughtUp("k");
      await expect(t.provider.wrap(pinned, generateDek())).rejects.toMatchObject({ reason: "KeyDisabled" });
      await expect(t.provider.unwrap(pinned, wrapped.wrapped)).rejects.toMatchObject({
        reason: "KeyDisabled",
      });
      await t.admin.setEnabled(t.namespace, "k", true, d.version);
      await t.admin.deleteKey(t.namespace, "k");
      await t.caughtUp("k");
      await expect(t.provider.unwrap(pinned, wrapped.wrapped)).rejects.toMatchObject({
        reason: "KeyNotFound",
      });
      await t.admin.purgeKey(t.namespace, "k");
      await t.caughtUp("k");
      await expect(t.provider.unwrap(pinned, wrapped.wrapped)).rejects.toMatchObject({
        reason: "KeyNotFound",
      });
    } finally {
      await t.informer.stop();
    }
  });

  it("R6 a version newer than the informer's copy is read live; with the watch stopped every call reads live", async () => {
    const t = await cachedProvider("kms-cache-new");
    try {
      await t.admin.createKey(t.namespace, "k", { size: 2048 });
      await t.caughtUp("k");
      // a cache frozen before the rotation (as a watch that has not delivered it yet)
      const frozen = t.informer.store.get(t.namespace, "k") as SecretObject;
      const lagging = new LocalKeyProvider(
        secretsOverCoreV1(core, LocalKeyProvider.DEFAULT_REQUEST_TIMEOUT_MS),
        { keyCache: { get: () => frozen } },
      );
      const v2 = await t.admin.rotateKey(t.namespace, "k", { size: 2048 });
      const dek = generateDek();
      const wrapped = await lagging.wrap({ ...t.ref("k"), keyID: v2.keyID }, dek);
      expect(wrapped.keyID).toBe(v2.keyID);
      await t.caughtUp("k");
      await t.informer.stop();
      t.reads.length = 0;
      await t.provider.unwrap({ ...t.ref("k"), keyID: v2.keyID }, wrapped.wrapped);
      expect(t.reads).toEqual([`${t.namespace}/k`]);
    } finally {
      await t.informer.stop();
    }
  });
});
