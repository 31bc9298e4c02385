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
} from "../api/index.js";
import { sameKeyOtherVersion } from "../kms/key-id.js";
import type { KeyReference } from "../kms/provider.js";
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
import { statusFrom } from "./keyprotector-status.js";
import { keySecretWaitMessage, missingLocalKey } from "./local-key-creation.js";
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

  /** Probes to write again though fresh: their last status write met a 409, so it is decided again from the newer object. */
  private readonly writePending = new Set<string>();

  private async pass(key: ObjectKey): Promise<Result | undefined> {
    const { keyProtectors, prober, probeIntervalMs, now } = this.deps;
    const id = `${key.namespace}/${key.name}`;
    const found = keyProtectors.store.get(key.namespace, key.name);
    if (!found) {
      this.probedSecretVersion.delete(id);
      this.writePending.delete(id);
      this.deps.onGone?.(key);
      return undefined;
    }
    const protectedKp = await this.protect(found, key);
    if ("result" in protectedKp) return protectedKp.result;
    const { kp, blocked } = protectedKp;
    const secretBlocked = this.deps.keySecretBlocked?.(kp);
    const ref = keyReferenceOf(kp);
    const last = prober.lastProbe(ref);
    const age = last ? now().getTime() - last.getTime() : Number.POSITIVE_INFINITY;
    const secretVersion = this.deps.keySecretVersion?.(kp);
    const probedAt = this.probedSecretVersion.get(id);
    const secretChanged = secretVersion !== undefined && probedAt !== undefined && probedAt !== secretVersion;
    const loss = this.deps.singlePointOfLoss?.(kp);
    const shown =
      !this.writePending.has(id) &&
      kp.status?.observedGeneration === kp.metadata.generation &&
      conditionMessage(kp.status?.conditions, ConditionType.DeletionBlocked) === blocked &&
      conditionMessage(kp.status?.conditions, ConditionType.KeyDeletionBlocked) === secretBlocked &&
      sameCondition(findCondition(kp.status?.conditions, ConditionType.SinglePointOfLoss), loss);
    // R8: a key probed within the interval, whose status already says all there is, costs nothing
    if (shown && !secretChanged && age < probeIntervalMs) return { requeueAfterMs: probeIntervalMs - age };
    if (secretVersion !== undefined) this.probedSecretVersion.set(id, secretVersion);
    const outcome = await this.probe(kp, ref, secretChanged);
    const next = statusFrom(kp, outcome, now(), outcome.waiting);
    next.conditions = this.withHealth(
      kp,
      withSinglePointOfLoss(
        withProtection(next.conditions, blocked, secretBlocked, kp.metadata.generation, now()),
        loss,
        kp.metadata.generation,
        now(),
      ),
    );
    const outcomeOfWrite = await this.deps.status.write(KeyProtectorKind, kp, next);
    // the next pass reads what was written, not the cache before its watch event (an envelope's
    // change may bring it at once: R7), so a change is written and told once
    if (outcomeOfWrite.written || outcomeOfWrite.conflict) keyProtectors.writeThrough(outcomeOfWrite.object);
    if (outcomeOfWrite.conflict) {
      // R27: decided from an object that is no longer the latest: decide again from the newer one
      this.writePending.add(id);
      return { requeue: true };
    }
    this.writePending.delete(id);
    this.tell(kp, { next, outcome, loss, blocked, secretBlocked });
    if (outcomeOfWrite.written)
      this.deps.log.debug("key protector status updated", { namespace: key.namespace, name: key.name });
    return { requeueAfterMs: probeIntervalMs };
  }

  /**
   * R33: held while anything uses it (the in-use finalizer); a deletion waits for its dependants
   * and says which, and the key is still probed meanwhile so the watchdog keeps its clock on it
   * (R10). Without a client nothing is protected.
   */
  private async protect(
    kp: Kube<KeyProtector>,
    key: ObjectKey,
  ): Promise<{ kp: Kube<KeyProtector>; blocked: string | undefined } | { result: Result | undefined }> {
    const client = this.deps.client;
    if (!client) return { kp, blocked: undefined };
    const deleting = Boolean(kp.metadata.deletionTimestamp);
    const dependants = deleting ? (this.deps.dependants?.(kp) ?? []) : [];
    const step = protectionStep({ deleting, protected: hasFinalizer(kp, IN_USE_FINALIZER), dependants });
    if (step === "add")
      return {
        kp: (await addFinalizer(client, KeyProtectorKind, kp, IN_USE_FINALIZER)).object,
        blocked: undefined,
      };
    if (step === "release") {
      await removeFinalizer(client, KeyProtectorKind, kp, IN_USE_FINALIZER);
      this.deps.onGone?.(key);
      return { result: undefined };
    }
    const blocked =
      step === "wait"
        ? deletionBlockedMessage(
            `KeyProtector ${key.namespace}/${key.name}`,
            dependants,
            "Point them at another key (their DEKs are re-wrapped online) or delete them",
          )
        : undefined;
    return { kp, blocked };
  }

  /**
   * R8: the probe (shared by every KeyProtector naming the same key within the interval; `force`
   * when its Local KEK Secret changed). R7: a Local KeyProtector that never resolved a key gets
   * one made on first use, unless `create: Never` says to wait for its Secret (`waiting`); a key
   * that vanished later is reported KeyNotFound, never replaced.
   */
  private async probe(
    kp: Kube<KeyProtector>,
    ref: KeyReference,
    force: boolean,
  ): Promise<ProbeOutcome & { waiting?: string }> {
    const { prober } = this.deps;
    const outcome = await prober.probe(ref, requirementsOf(kp), { force });
    const missing = missingLocalKey(kp, outcome);
    if (missing === "wait") return { ...outcome, waiting: keySecretWaitMessage(kp) };
    if (missing !== "create" || !this.deps.createLocalKey) return outcome;
    const sizes = requirementsOf(kp).allowedKeySizes ?? [3072];
    const size = sizes.includes(3072) ? 3072 : (sizes[0] ?? 3072);
    await this.deps.createLocalKey(ref.namespace, ref.keyName, size);
    this.deps.log.info("created a Local KEK on first use", {
      namespace: ref.namespace,
      key: ref.keyName,
      size,
    });
    return prober.probe(ref, requirementsOf(kp), { force: true });
  }

  /** What a written status tells, once each: a deletion that waits, an access flip, a new key version, a single point of loss starting or ending, the probe's metrics. */
  private tell(
    kp: Kube<KeyProtector>,
    o: {
      next: KeyProtectorStatus;
      outcome: ProbeOutcome & { waiting?: string };
      loss: ConditionInput | undefined;
      blocked: string | undefined;
      secretBlocked: string | undefined;
    },
  ): void {
    const before = kp.status?.conditions;
    for (const [type, message] of [
      [ConditionType.DeletionBlocked, o.blocked],
      [ConditionType.KeyDeletionBlocked, o.secretBlocked],
    ] as const)
      if (message && conditionMessage(before, type) !== message) this.deps.warn?.(kp, Reason.InUse, message);
    const wasAccessible = findCondition(before, ConditionType.Accessible)?.status;
    const { access, waiting } = o.outcome;
    // R7: waiting for a Secret is no loss of access: said once, as a Normal event
    if (waiting !== undefined) {
      if (findCondition(before, ConditionType.Accessible)?.reason !== Reason.KeySecretNotFound)
        this.deps.notice?.(kp, Reason.KeySecretNotFound, waiting);
    } else if (wasAccessible !== (access.ok ? "True" : "False"))
      this.deps.onAccessChange?.(
        kp,
        access.ok,
        access.ok ? Reason.KeyAccessible : access.reason,
        accessMessage(o.outcome),
      );
    const rotated = rotationNotice(kp, o.next, () => this.deps.dependants?.(kp).length);
    if (rotated) this.deps.notice?.(kp, Reason.KeyRotated, rotated);
    this.deps.onProbed?.(kp, o.next);
    const lossBefore = findCondition(before, ConditionType.SinglePointOfLoss)?.status;
    if (o.loss?.status === "True" && lossBefore !== "True")
      this.deps.warn?.(kp, o.loss.reason, o.loss.message);
    else if (o.loss?.status === "False" && lossBefore === "True")
      this.deps.notice?.(kp, Reason.SinglePointOfLossResolved, o.loss.message);
  }
}

/**
 * R16: a KeyProtector's key has a new version in place of the one its status recorded: told once,
 * here, for every DEK it moves (their own Events are kept for a move to another key).
 */
export function rotationNotice(
  kp: KeyProtector,
  next: KeyProtectorStatus,
  countDependants: () => number | undefined,
): string | undefined {
  const before = kp.status?.keyID;
  if (!before || !next.keyID || !sameKeyOtherVersion(before, next.keyID)) return undefined;
  const dependants = countDependants();
  const who = dependants === undefined ? "its dependants'" : `the ${dependants} dependants'`;
  return `the key's current version is now ${next.keyID} (thumbprint ${next.thumbprintShort ?? "unknown"}) in place of ${before}: ${who} DEKs are re-wrapped under it online (R16), each one's status.effectiveProtector (database) or status.protector (server) names the key that wraps it, and tde_rotations_total counts them; keep the old version enabled until their retained wraps are pruned`;
}

const conditionMessage = (conditions: Condition[] | undefined, type: string) =>
  findCondition(conditions, type)?.message;

const sameCondition = (a: ConditionInput | undefined, b: ConditionInput | undefined) =>
  a?.status === b?.status && a?.reason === b?.reason && a?.message === b?.message;

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
