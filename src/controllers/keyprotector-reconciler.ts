import {
  type Condition,
  type ConditionInput,
  ConditionType,
  findCondition,
  type KeyProtector,
  type KeyProtectorStatus,
  Reason,
  removeCondition,
  setCondition,
  shortThumbprint,
} from "../api/index.js";
import type { Logger } from "../observability/logger.js";
import {
  addFinalizer,
  hasFinalizer,
  type Informer,
  type KubeClient,
  type ObjectKey,
  type Reconciler,
  type Result,
  removeFinalizer,
  type StatusWriter,
} from "../runtime/index.js";
import type { KeyProber, ProbeOutcome } from "../watchdog/prober.js";
import { deletionBlockedMessage, IN_USE_FINALIZER, protectionStep } from "./deletion-protection.js";
import { withHealth } from "./health-status.js";
import { keyReferenceOf, requirementsOf } from "./key-reference.js";
import { KeyProtectorKind, type Kube } from "./resources.js";
import { writeRefusal } from "./write-refusal.js";

export interface KeyProtectorReconcilerDeps {
  keyProtectors: Informer<Kube<KeyProtector>>;
  status: StatusWriter;
  prober: KeyProber;
  probeIntervalMs: number;
  now: () => Date;
  log: Logger;
  /** told when a KeyProtector's accessibility flips, for events and metrics */
  onAccessChange?: (kp: Kube<KeyProtector>, accessible: boolean, reason: string, message: string) => void;
  onProbed?: (kp: Kube<KeyProtector>, status: KeyProtectorStatus) => void;
  /**
   * R7: the embedded default creates a Local KEK on first use. Only for a KeyProtector that has
   * never resolved a key: a key that vanished later is reported KeyNotFound, never replaced.
   */
  createLocalKey?: (namespace: string, name: string, size: number) => Promise<void>;
  /**
   * R33: deletion protection. `dependants` names the servers and databases that use the
   * KeyProtector; `keySecretBlocked` says why the deletion of its Local KEK Secret waits, if it
   * does. Without `client` nothing is protected (unit tests of the probe alone).
   */
  client?: KubeClient;
  dependants?: (kp: Kube<KeyProtector>) => string[];
  keySecretBlocked?: (kp: Kube<KeyProtector>) => string | undefined;
  /** told of what deserves a Warning event: a deletion that waits (InUse), a write refused (WriteRefused) */
  warn?: (kp: Kube<KeyProtector>, reason: string, message: string) => void;
  /** told when a KeyProtector is gone, so its metrics are no longer exported */
  onGone?: (key: ObjectKey) => void;
  /**
   * The resourceVersion of a Local KeyProtector's KEK Secret as the cache holds it ("" when it
   * is absent; undefined for other providers). A change since the last probe (a version enabled,
   * disabled, rotated, imported, or the Secret given back) is probed at once, not at the next
   * probe interval: its watch wakes the KeyProtector, and this says the key itself changed.
   */
  keySecretVersion?: (kp: Kube<KeyProtector>) => string | undefined;
  /**
   * R7: the SinglePointOfLoss condition a KeyProtector should carry (the Local service-managed
   * key's), from the caches; undefined for none. A change of verdict is written with the status
   * and is an Event (Warning when it starts, Normal when it ends); an unchanged one costs nothing.
   */
  singlePointOfLoss?: (kp: Kube<KeyProtector>) => ConditionInput | undefined;
  /** told of what deserves a Normal event (a single point of loss that ended) */
  notice?: (kp: Kube<KeyProtector>, reason: string, message: string) => void;
}

/**
 * R5, R6, R8, R10: resolves the key a KeyProtector names (the vault's current version when no
 * version is pinned), checks its requirements, proves access by a real round trip, and records
 * what it found. Probes happen when the spec changed or the probe interval has passed (shared by
 * every KeyProtector naming the same key); status is written only when what it says changed, so
 * an unchanged key costs no API write.
 */
export class KeyProtectorReconciler implements Reconciler {
  /** the KEK Secret's resourceVersion each KeyProtector was last probed at ("namespace/name") */
  private readonly probedSecretVersion = new Map<string, string>();

  constructor(private readonly deps: KeyProtectorReconcilerDeps) {}

  async reconcile(key: ObjectKey): Promise<Result | undefined> {
    try {
      return await this.pass(key);
    } catch (error) {
      await this.reportWriteRefusal(key, error);
      throw error;
    }
  }

  /** R32: a write the API server refused is said on Ready and in a Warning event, not only in the log. */
  private async reportWriteRefusal(key: ObjectKey, error: unknown): Promise<void> {
    const refusal = writeRefusal(error);
    const kp = refusal && this.deps.keyProtectors.store.get(key.namespace, key.name);
    if (!refusal || !kp || conditionMessage(kp.status?.conditions, ConditionType.Ready) === refusal.message)
      return;
    this.deps.warn?.(kp, refusal.reason, refusal.message);
    const conditions = setCondition(
      kp.status?.conditions,
      { type: ConditionType.Ready, status: "False", reason: refusal.reason, message: refusal.message },
      kp.metadata.generation,
      this.deps.now(),
    );
    try {
      await this.deps.status.set(KeyProtectorKind, kp, {
        ...(kp.status ?? {}),
        conditions: this.withHealth(kp, conditions),
      });
    } catch {
      // the refused write may be this status itself: the event and the pass's error still say it
    }
  }

  /** R27: Reconciling and Stalled beside Ready, in the same write. */
  private withHealth(kp: KeyProtector, conditions: Condition[] | undefined): Condition[] {
    return withHealth(
      {
        kind: "KeyProtector",
        generation: kp.metadata.generation,
        deleting: Boolean(kp.metadata.deletionTimestamp),
        conditions,
      },
      this.deps.now(),
    );
  }

  private async pass(key: ObjectKey): Promise<Result | undefined> {
    const { keyProtectors, prober, probeIntervalMs, now } = this.deps;
    let kp = keyProtectors.store.get(key.namespace, key.name);
    if (!kp) {
      this.probedSecretVersion.delete(`${key.namespace}/${key.name}`);
      this.deps.onGone?.(key);
      return undefined;
    }
    // R33: held while anything uses it; a deletion waits for its dependants, and the key is still
    // probed meanwhile, so the watchdog keeps its clock on it (R10)
    let blocked: string | undefined;
    const client = this.deps.client;
    if (client) {
      const dependants = kp.metadata.deletionTimestamp ? (this.deps.dependants?.(kp) ?? []) : [];
      const step = protectionStep({
        deleting: Boolean(kp.metadata.deletionTimestamp),
        protected: hasFinalizer(kp, IN_USE_FINALIZER),
        dependants,
      });
      if (step === "add") kp = (await addFinalizer(client, KeyProtectorKind, kp, IN_USE_FINALIZER)).object;
      if (step === "release") {
        await removeFinalizer(client, KeyProtectorKind, kp, IN_USE_FINALIZER);
        this.deps.onGone?.(key);
        return undefined;
      }
      if (step === "wait")
        blocked = deletionBlockedMessage(
          `KeyProtector ${key.namespace}/${key.name}`,
          dependants,
          "Point them at another key (their DEKs are re-wrapped online) or delete them",
        );
    }
    const secretBlocked = this.deps.keySecretBlocked?.(kp);
    const ref = keyReferenceOf(kp);
    const last = prober.lastProbe(ref);
    const specChanged = kp.status?.observedGeneration !== kp.metadata.generation;
    const age = last ? now().getTime() - last.getTime() : Number.POSITIVE_INFINITY;
    const protectionShown =
      conditionMessage(kp.status?.conditions, ConditionType.DeletionBlocked) === blocked &&
      conditionMessage(kp.status?.conditions, ConditionType.KeyDeletionBlocked) === secretBlocked;
    const secretVersion = this.deps.keySecretVersion?.(kp);
    const probedAt = this.probedSecretVersion.get(`${key.namespace}/${key.name}`);
    const secretChanged = secretVersion !== undefined && probedAt !== undefined && probedAt !== secretVersion;
    const loss = this.deps.singlePointOfLoss?.(kp);
    const lossBefore = findCondition(kp.status?.conditions, ConditionType.SinglePointOfLoss);
    const lossShown =
      lossBefore?.status === loss?.status &&
      lossBefore?.reason === loss?.reason &&
      lossBefore?.message === loss?.message;
    if (!specChanged && !secretChanged && age < probeIntervalMs && protectionShown && lossShown) {
      return { requeueAfterMs: probeIntervalMs - age };
    }
    if (secretVersion !== undefined)
      this.probedSecretVersion.set(`${key.namespace}/${key.name}`, secretVersion);
    let outcome = await prober.probe(ref, requirementsOf(kp), { force: secretChanged });
    if (
      this.deps.createLocalKey &&
      ref.provider === "Local" &&
      !kp.status?.keyID &&
      !outcome.description &&
      !outcome.access.ok &&
      outcome.access.reason === "KeyNotFound"
    ) {
      const sizes = requirementsOf(kp).allowedKeySizes ?? [3072];
      const size = sizes.includes(3072) ? 3072 : (sizes[0] ?? 3072);
      await this.deps.createLocalKey(ref.namespace, ref.keyName, size);
      this.deps.log.info("created a Local KEK on first use", {
        namespace: ref.namespace,
        key: ref.keyName,
        size,
      });
      outcome = await prober.probe(ref, requirementsOf(kp), { force: true });
    }
    const next = statusFrom(kp, outcome, now());
    next.conditions = this.withHealth(
      kp,
      withSinglePointOfLoss(
        withProtection(next.conditions, blocked, secretBlocked, kp.metadata.generation, now()),
        loss,
        kp.metadata.generation,
        now(),
      ),
    );
    if (blocked && conditionMessage(kp.status?.conditions, ConditionType.DeletionBlocked) !== blocked)
      this.deps.warn?.(kp, Reason.InUse, blocked);
    if (
      secretBlocked &&
      conditionMessage(kp.status?.conditions, ConditionType.KeyDeletionBlocked) !== secretBlocked
    )
      this.deps.warn?.(kp, Reason.InUse, secretBlocked);
    const { written, object } = await this.deps.status.set(KeyProtectorKind, kp, next);
    // the next pass reads what was written, not the cache before its watch event (an envelope's
    // change may bring it at once: R7), so a change is written and told once
    if (written) keyProtectors.writeThrough(object);
    const wasAccessible = findCondition(kp.status?.conditions, ConditionType.Accessible)?.status;
    const isAccessible = outcome.access.ok ? "True" : "False";
    if (wasAccessible !== isAccessible) {
      const reason = outcome.access.ok ? Reason.KeyAccessible : outcome.access.reason;
      this.deps.onAccessChange?.(kp, outcome.access.ok, reason, accessMessage(outcome));
    }
    this.deps.onProbed?.(kp, next);
    if (loss?.status === "True" && lossBefore?.status !== "True")
      this.deps.warn?.(kp, loss.reason, loss.message);
    else if (loss?.status === "False" && lossBefore?.status === "True")
      this.deps.notice?.(kp, Reason.SinglePointOfLossResolved, loss.message);
    if (written)
      this.deps.log.debug("key protector status updated", { namespace: key.namespace, name: key.name });
    return { requeueAfterMs: probeIntervalMs };
  }
}

const conditionMessage = (conditions: Condition[] | undefined, type: string) =>
  findCondition(conditions, type)?.message;

/** R33: DeletionBlocked and KeyDeletionBlocked while a deletion waits; absent otherwise (no write for most). */
function withProtection(
  conditions: Condition[] | undefined,
  blocked: string | undefined,
  secretBlocked: string | undefined,
  generation: number | undefined,
  now: Date,
): Condition[] | undefined {
  let out = conditions;
  for (const [type, message] of [
    [ConditionType.DeletionBlocked, blocked],
    [ConditionType.KeyDeletionBlocked, secretBlocked],
  ] as const) {
    if (message)
      out = setCondition(out, { type, status: "True", reason: Reason.InUse, message }, generation, now);
    else if (findCondition(out, type)) out = removeCondition(out, type);
  }
  return out;
}

/** R7: SinglePointOfLoss as decided, or absent (a KeyProtector that is not the Local service-managed key). */
function withSinglePointOfLoss(
  conditions: Condition[] | undefined,
  loss: ConditionInput | undefined,
  generation: number | undefined,
  now: Date,
): Condition[] | undefined {
  if (loss) return setCondition(conditions, loss, generation, now);
  return findCondition(conditions, ConditionType.SinglePointOfLoss)
    ? removeCondition(conditions, ConditionType.SinglePointOfLoss)
    : conditions;
}

function accessMessage(outcome: ProbeOutcome): string {
  if (outcome.access.ok) {
    return `the key ${outcome.access.keyID} answered a wrap/unwrap round trip (get, wrapKey, unwrapKey proven)`;
  }
  return `${outcome.access.message} (failed at ${outcome.access.failedAt})`;
}

/**
 * The status a probe leads to. Times of the last probe and success move only when something else
 * changes (an outage starts or ends, the key changes): the live probe times are metrics, so a
 * healthy key costs no write per probe.
 */
export function statusFrom(kp: KeyProtector, outcome: ProbeOutcome, now: Date): KeyProtectorStatus {
  const prev = kp.status ?? {};
  const gen = kp.metadata.generation;
  const at = now.toISOString();
  const d = outcome.description;
  const next: KeyProtectorStatus = { ...prev, observedGeneration: gen };
  if (d && !d.publicKeyKnown && prev.thumbprint && d.keyID !== prev.keyID) {
    // R6: a new current version the vault will not show (disabled): its key is unknown, so the
    // status keeps the key its dependants use and says it is not enabled; access is lost (R10).
    next.enabled = false;
  } else if (d) {
    Object.assign(next, {
      keyID: d.keyID,
      keyVersion: d.version,
      keyType: d.keyType,
      keySize: d.keySize,
      enabled: d.enabled,
    });
    if (d.thumbprint) {
      next.thumbprint = d.thumbprint;
      next.thumbprintShort = shortThumbprint(d.thumbprint);
    }
    setOptional(next, "notBefore", d.notBefore?.toISOString());
    setOptional(next, "expiresOn", d.expiresOn?.toISOString());
    setOptional(next, "recoveryLevel", d.recoveryLevel);
    setOptional(next, "recoverableDays", d.recoverableDays);
  }
  const access = outcome.access;
  next.provenPermissions = [...access.permissions];
  let conditions = prev.conditions;
  if (access.ok) {
    const recovering = prev.keyAccessLostSince !== undefined || prev.lastSuccessTime === undefined;
    const keyChanged = prev.keyID !== next.keyID;
    if (recovering || keyChanged || specChangedSince(prev, gen)) {
      next.lastProbeTime = at;
      next.lastSuccessTime = at;
    }
    next.consecutiveFailures = 0;
    delete next.keyAccessLostSince;
    conditions = setCondition(
      conditions,
      {
        type: ConditionType.Accessible,
        status: "True",
        reason: Reason.KeyAccessible,
        message: `the key answered a wrap/unwrap round trip; permissions proven: ${access.permissions.join(", ")}`,
      },
      gen,
      now,
    );
  } else {
    next.lastProbeTime = at;
    next.consecutiveFailures = (prev.consecutiveFailures ?? 0) + 1;
    next.keyAccessLostSince = prev.keyAccessLostSince ?? at;
    conditions = setCondition(
      conditions,
      {
        type: ConditionType.Accessible,
        status: "False",
        reason: access.reason,
        message: `${access.message}; dependants become Inaccessible when their grace period runs out. Fix the key or its permissions in the vault.`,
      },
      gen,
      now,
    );
  }
  const unmet = outcome.unmet;
  next.unmetRequirements = unmet.map((u) => ({ reason: u.reason, message: u.message }));
  conditions = setCondition(
    conditions,
    unmet.length === 0 && d
      ? {
          type: ConditionType.RequirementsMet,
          status: "True",
          reason: Reason.RequirementsMet,
          message: "the key meets every requirement (R5)",
        }
      : {
          type: ConditionType.RequirementsMet,
          status: d ? "False" : "Unknown",
          reason: unmet[0]?.reason ?? (d ? Reason.RequirementsMet : "KeyNotDescribed"),
          message: d
            ? unmet.map((u) => u.message).join("; ")
            : "the key could not be read, so its requirements could not be checked",
        },
    gen,
    now,
  );
  const ready = access.ok && unmet.length === 0 && d !== undefined;
  conditions = setCondition(
    conditions,
    ready
      ? {
          type: ConditionType.Ready,
          status: "True",
          reason: Reason.Reconciled,
          message: "the key may protect DEKs",
        }
      : {
          type: ConditionType.Ready,
          status: "False",
          reason: access.ok ? (unmet[0]?.reason ?? "KeyNotDescribed") : access.reason,
          message: access.ok
            ? "the key does not meet its requirements: see RequirementsMet"
            : "the key is not accessible: see Accessible",
        },
    gen,
    now,
  );
  next.conditions = conditions;
  return next;
}

function specChangedSince(prev: KeyProtectorStatus, gen: number | undefined): boolean {
  return prev.observedGeneration !== gen;
}

function setOptional<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value === undefined) delete target[key];
  else target[key] = value;
}
