import {
  type Condition,
  ConditionType,
  ENVELOPE_LOSS_REASONS,
  findCondition,
  Reason,
  removeCondition,
  setCondition,
} from "../api/index.js";
import type { State } from "../watchdog/access-decision.js";
import type { ControllerContext } from "./context.js";
import type { EnvelopeSecret } from "./dek-operations.js";
import { observeOwnEnvelope } from "./envelope-cache.js";
import { type EnvelopeLoss, envelopeLoss } from "./envelope-loss.js";

type Set = (type: string, status: "True" | "False" | "Unknown", reason: string, message: string) => void;

/** How often a resource whose envelope is lost looks again (a Secret restored without its labels is not watched). */
export const ENVELOPE_LOSS_RECHECK_MS = 60_000;

/** Whether a status says its envelope was lost (R1, R2): a Ready reason `envelopeLoss` gives. */
export function reportsEnvelopeLoss(conditions: readonly Condition[] | undefined): boolean {
  return ENVELOPE_LOSS_REASONS.has(findCondition(conditions, ConditionType.Ready)?.reason ?? "");
}

/**
 * R1, R2, R4, R27: a lost envelope is terminal: Ready=False names the Secret and the DEK id (and
 * so does Stalled=True, which the health model derives from that Ready reason when the status is
 * written: health-status.ts, the one source of Stalled); a resource whose DEK was recorded is Inaccessible (never Available, and nothing is
 * enforced: without its envelope no new start can get the key anyway); a Warning event when the
 * message is new. Returns the state to record.
 */
export function stallOnEnvelopeLoss(
  ctx: ControllerContext,
  obj: Parameters<ControllerContext["events"]["warning"]>[0],
  loss: EnvelopeLoss,
  prev: { state?: State; conditions?: Condition[]; dekID?: string },
  set: Set,
): State {
  set(ConditionType.Ready, "False", loss.reason, loss.message);
  if (findCondition(prev.conditions, ConditionType.Ready)?.message !== loss.message)
    void ctx.events.warning(obj, loss.reason, loss.message);
  return prev.dekID ? "Inaccessible" : (prev.state ?? "Provisioning");
}

/** What a server's or database's pass starts from: its own envelope, or the loss it reports. */
export type OwnEnvelope =
  | { lost: true; state: State }
  | {
      lost: false;
      envelope: EnvelopeSecret | undefined;
      /** the envelope was lost at the last pass and is back: a revalidation proves it (R11) */
      returned: boolean;
      conditions: Condition[] | undefined;
    };

/**
 * R1, R2, R4: reads the resource's own envelope and, when it is lost while a DEK id is recorded
 * (or unreadable), reports it through `set` (see `stallOnEnvelopeLoss`) instead of going on.
 */
export async function ownEnvelope(
  ctx: ControllerContext,
  kind: "EncryptedServer" | "EncryptedDatabase",
  obj: Parameters<ControllerContext["events"]["warning"]>[0] & {
    metadata: { namespace?: string; name?: string; generation?: number };
  },
  secretName: string,
  prev: { state?: State; conditions?: Condition[]; dekID?: string },
  conditions: Condition[] | undefined,
  set: Set,
): Promise<OwnEnvelope> {
  const namespace = obj.metadata.namespace ?? "";
  const observed = await observeOwnEnvelope(ctx, namespace, secretName, prev.dekID);
  const loss = envelopeLoss({
    kind,
    namespace,
    secretName,
    recordedDekID: prev.dekID,
    found: observed.found,
  });
  if (loss) return { lost: true, state: stallOnEnvelopeLoss(ctx, obj, loss, prev, set) };
  // R33: a deletion of the envelope waits while this resource lives; say so, and whom it waits for
  let next = conditions;
  const deleting = observed.envelope?.secret.metadata?.deletionTimestamp;
  const noun = kind === "EncryptedServer" ? "server" : "database";
  const blocked = deleting
    ? `the envelope Secret ${namespace}/${secretName} holding DEK ${observed.envelope?.envelope.dekID} was asked to be deleted at ${deleting}, and ${kind} ${namespace}/${obj.metadata.name} uses it: the deletion waits until this ${noun} is deleted (R33), and the envelope stays usable until then. A Kubernetes deletion cannot be called off: once the ${noun} is deleted the envelope goes with it whatever its deletionPolicy, so take a backup of the Secret now if the ${noun} is to be restored later`
    : undefined;
  const before = findCondition(prev.conditions, ConditionType.EnvelopeDeletionBlocked)?.message;
  if (blocked) {
    next = setCondition(
      next,
      { type: ConditionType.EnvelopeDeletionBlocked, status: "True", reason: Reason.InUse, message: blocked },
      obj.metadata.generation,
      ctx.now(),
    );
    if (before !== blocked) void ctx.events.warning(obj, Reason.InUse, blocked);
  } else if (findCondition(next, ConditionType.EnvelopeDeletionBlocked)) {
    next = removeCondition(next, ConditionType.EnvelopeDeletionBlocked);
  }
  return {
    lost: false,
    envelope: observed.envelope,
    returned: reportsEnvelopeLoss(prev.conditions),
    conditions: next,
  };
}
